"""Checkers: one function per DESIGN §4 invariant, each from a history to a verdict.

A checker takes a :class:`~pytest_circuitbreaker.history.History` and returns a
:class:`Verdict`: ``valid`` (True, False, or None for unknown: the history lacks what
the checker needs), the anomaly types found with the ops that show each, and one
:class:`Anomaly` per instance with a sentence saying what went wrong. Compose checkers
with :func:`compose`, run them with :func:`check`, and add your own: any callable
``History -> Verdict`` is a checker.

Checkers that reason about the shared record (which environment may call the
downstream, which write overwrote which) use the *store truth*: the stored record
after each store operation, which the harness records (``value["truth"]``). For a
breaker without a shared store (a per-process breaker such as pybreaker) they answer
unknown. Bounds (``recovery_timeout``, ``local_cache_max_age``...) come from
``history.meta["config"]`` (``CircuitBreakerConfig``'s defaults where it says nothing).

======================  ==========================================  ===================================
checker                 invariant (DESIGN §4)                        anomaly types
======================  ==========================================  ===================================
``legal_paths``         1 legal paths, reported iff stored, once     illegal transition,
                                                                     transition reported but not stored,
                                                                     transition stored but not reported
``open_means_shut``     2 open means shut (staleness bounded)        call while open
``one_probe``           3 one probe in flight                        two concurrent probes,
                                                                     unelected probe
``write_free_health``   4 write-free health                          write while healthy, read while fresh
``no_lost_updates``     5 compare-and-set, no stale overwrite        lost update
``nothing_lost``        6 every invocation ends exactly once         invocation lost, invocation ended twice
``liveness``            7 closes after recovery; never stuck         stuck half-open, stuck open
``store_faults_inside`` 8 store faults stay inside                   store error leaked,
                                                                     repeated store timeout,
                                                                     not a local breaker
``trips_on_streak``     §3 trips on consecutive failures only        premature trip
======================  ==========================================  ===================================

Example:
    >>> from pytest_circuitbreaker.history import History
    >>> history = History(meta={"config": {"failure_threshold": 1}})
    >>> _ = history.append("call_started", {"slow": False}, time=0.0, environment="env-0", call=1)
    >>> verdict = check(history, [nothing_lost])
    >>> verdict.valid, verdict.anomaly_types
    (False, ['invocation lost'])
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_circuitbreaker.history import (
    CALL_FAILED,
    CALL_OK,
    CALL_STARTED,
    COLD_START,
    CRASH,
    DOWNSTREAM_CALL,
    FALLBACK,
    LOCAL_TRANSITION,
    OUTCOMES,
    REJECTED,
    STORE_FAULT,
    STORE_OUTAGE,
    STORE_READ,
    STORE_WRITE,
    TRANSITION,
    History,
    Op,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    Checker = Callable[[History], "Verdict"]

__all__ = [
    "ALL",
    "ANOMALY_TYPES",
    "LEGAL_TRANSITIONS",
    "Anomaly",
    "Verdict",
    "check",
    "compose",
    "ignoring",
    "legal_paths",
    "liveness",
    "no_lost_updates",
    "nothing_lost",
    "one_probe",
    "open_means_shut",
    "store_faults_inside",
    "trips_on_streak",
    "write_free_health",
]

CLOSED, OPEN, HALF_OPEN = "CLOSED", "OPEN", "HALF_OPEN"

#: The transitions DESIGN §3 allows (manual commands aside).
LEGAL_TRANSITIONS = frozenset({(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (HALF_OPEN, OPEN)})

_EPS = 1e-9
#: Extra seconds the liveness bounds allow: a breaker may keep whole-second timestamps.
LIVENESS_SLACK = 1.0


@dataclass(frozen=True)
class Anomaly:
    """One instance of an anomaly: its ``type``, the ``ops`` that show it, a ``message``, the ``checker``.

    Example:
        >>> Anomaly("lost update", (), "a stale write", "no_lost_updates").type
        'lost update'
    """

    type: str
    ops: tuple[Op, ...]
    message: str
    checker: str


@dataclass
class Verdict:
    """What checkers concluded: ``valid`` (True, False, None = unknown), anomalies and the ops showing them.

    ``anomalies`` maps each anomaly type to the ops that show it (sorted, once each);
    ``instances`` lists each anomaly with its message; ``checks`` maps each checker's
    name to its own ``valid``; ``unknown`` says why checkers could not decide.

    Example:
        >>> Verdict(True).valid, Verdict(True).anomaly_types
        (True, [])
    """

    valid: bool | None
    anomalies: dict[str, list[Op]] = field(default_factory=dict)
    instances: list[Anomaly] = field(default_factory=list)
    checks: dict[str, bool | None] = field(default_factory=dict)
    unknown: dict[str, str] = field(default_factory=dict)

    @property
    def anomaly_types(self) -> list[str]:
        """The anomaly types found, sorted."""
        return sorted(self.anomalies)

    @classmethod
    def of(cls, checker: str, instances: Sequence[Anomaly]) -> Verdict:
        """The verdict of one checker that found ``instances`` (valid when none)."""
        verdict = cls(not instances, checks={checker: not instances})
        for anomaly in instances:
            verdict._add(anomaly)
        return verdict

    @classmethod
    def unknown_because(cls, checker: str, reason: str) -> Verdict:
        """The verdict of a checker that cannot decide on this history.

        Example:
            >>> Verdict.unknown_because("liveness", "no store operations").valid is None
            True
        """
        return cls(None, checks={checker: None}, unknown={checker: reason})

    def _add(self, anomaly: Anomaly) -> None:
        self.instances.append(anomaly)
        ops = self.anomalies.setdefault(anomaly.type, [])
        known = {op.index for op in ops}
        for op in anomaly.ops:
            if op.index not in known:
                known.add(op.index)
                ops.append(op)
        ops.sort(key=lambda op: op.index)

    def merge(self, other: Verdict) -> Verdict:
        """Both verdicts as one: False if either is False, else unknown if either is unknown.

        Example:
            >>> Verdict(True).merge(Verdict(None)).valid is None
            True
        """
        if self.valid is False or other.valid is False:
            valid: bool | None = False
        elif self.valid is None or other.valid is None:
            valid = None
        else:
            valid = True
        merged = Verdict(
            valid, checks={**self.checks, **other.checks}, unknown={**self.unknown, **other.unknown}
        )
        for anomaly in (*self.instances, *other.instances):
            merged._add(anomaly)
        return merged

    def report(self, history: History | None = None, *, limit: int = 12) -> str:
        """Every anomaly with its message and ops (at most ``limit`` instances per type).

        Example:
            >>> Verdict(True).report()
            'valid: no anomaly found'
        """
        if self.valid is True:
            return "valid: no anomaly found"
        start = history.start_time if history is not None else 0.0
        lines = []
        if self.valid is None and not self.instances:
            lines.append(
                "unknown: " + "; ".join(f"{name}: {why}" for name, why in sorted(self.unknown.items()))
            )
        shown: dict[str, int] = {}
        for anomaly in self.instances:
            shown[anomaly.type] = shown.get(anomaly.type, 0) + 1
            if shown[anomaly.type] > limit:
                continue
            lines.append(f'anomaly "{anomaly.type}" ({anomaly.checker}): {anomaly.message}')
            lines.extend("    " + op.describe(start) for op in anomaly.ops)
        for kind, count in shown.items():
            if count > limit:
                lines.append(f'... and {count - limit} more "{kind}" anomalies')
        return "\n".join(lines)


# ---------------------------------------------------------------------- helpers


class _Bounds:
    """The config numbers checkers need, from ``history.meta["config"]``."""

    def __init__(self, history: History) -> None:
        config = history.meta.get("config") or {}  # missing numbers: CircuitBreakerConfig's defaults
        self.failure_threshold = int(config.get("failure_threshold", 5))
        self.recovery_timeout = float(config.get("recovery_timeout", 30))
        self.success_threshold = int(config.get("success_threshold", 3))
        self.local_cache_max_age = float(config.get("local_cache_max_age", 5))
        lease = config.get("probe_lease")
        self.probe_lease = float(lease) if lease is not None else self.recovery_timeout
        self.store_backoff = float(config.get("store_backoff") or 0.0)


def _state(record: dict[str, Any] | None) -> str:
    if not record:
        return CLOSED
    return str(record.get("state", CLOSED))


def _shared(history: History) -> bool:
    shared = history.meta.get("shared_store")
    return bool(shared) if shared is not None else history.has_store_ops


def _no_store(name: str) -> Verdict:
    return Verdict.unknown_because(
        name, "the history has no store operations (a breaker without a shared store, or none recorded)"
    )


class _Walk:
    """Replays a history op by op: the stored record, what each environment last did."""

    def __init__(self) -> None:
        self.truth: dict[str, Any] | None = None
        self.truth_op: Op | None = None  # the store op that made the truth what it is
        self.last_store: dict[str, Op] = {}  # per environment: its last store op of any kind
        self.dead: set[str] = set()
        self.store_outage = False
        self.in_flight: dict[str, Op] = {}  # environment -> its downstream_call "start"

    def excused(self, environment: str, now: float, max_age: float) -> bool:
        """Whether ``environment`` may run the downstream on what it last saw (bounded staleness).

        Excused: its last store operation failed (it acts as a local breaker), or it is
        younger than ``max_age`` and the record it saw then allows the call: CLOSED, or
        HALF_OPEN with this environment holding an unexpired lease.
        """
        last = self.last_store.get(environment)
        if last is None:
            return False  # it never read: it had to, before calling
        if last.kind == STORE_FAULT:
            return True
        if now >= last.time + max_age - _EPS:
            return False  # its view is too old: it had to read again
        value = last.value if isinstance(last.value, dict) else {}
        if last.kind == STORE_WRITE and not value.get("stored"):
            return False  # it lost a compare-and-set: it knows its view is stale
        seen = value.get("record")
        state = _state(seen)
        if state == CLOSED:
            return True
        lease = (seen or {}).get("probe_lease_expiry")
        return (
            state == HALF_OPEN
            and (seen or {}).get("half_open_owner") == environment
            and (lease is None or now < lease - _EPS)
        )

    def step(self, op: Op) -> None:
        kind = op.kind
        value = op.value if isinstance(op.value, dict) else {}
        if kind in (STORE_READ, STORE_WRITE, STORE_FAULT):
            if op.environment is not None:
                self.last_store[op.environment] = op
            if "truth" in value:
                truth = value["truth"]
                if truth != self.truth:
                    self.truth_op = op  # the op after which the store held this record
                self.truth = truth
        elif kind == CRASH and op.environment is not None:
            self.dead.add(op.environment)
            self.in_flight.pop(op.environment, None)
        elif kind == STORE_OUTAGE:
            self.store_outage = value.get("fault") is not None
        elif kind == DOWNSTREAM_CALL and op.environment is not None:
            if op.value == "start":
                self.in_flight[op.environment] = op
            else:
                self.in_flight.pop(op.environment, None)


def _evidence(*ops: Op | None) -> tuple[Op, ...]:
    seen: dict[int, Op] = {}
    for op in ops:
        if op is not None:
            seen.setdefault(op.index, op)
    return tuple(sorted(seen.values(), key=lambda op: op.index))


def _name(checker: object) -> str:
    return str(getattr(checker, "__name__", type(checker).__name__))


# ---------------------------------------------------------------------- 1. legal paths


def legal_paths(history: History) -> Verdict:
    """DESIGN §4.1: only legal transitions; each stored one reported once, none reported unstored.

    With a shared store, each stored write that changed the state must match exactly
    one ``transition`` op of the writing environment (same from/to, after the write).
    Without one, each environment's reported transitions must form a legal path.

    Example:
        >>> h = History(meta={"shared_store": False})
        >>> _ = h.append("transition", {"from": "CLOSED", "to": "HALF_OPEN"}, time=0.0, environment="e")
        >>> legal_paths(h).anomaly_types
        ['illegal transition']
    """
    name = "legal_paths"
    found: list[Anomaly] = []
    if not _shared(history):
        current: dict[str | None, str] = {}
        for op in history.filter((TRANSITION, COLD_START)):
            if op.kind == COLD_START:
                current.pop(op.environment, None)  # a new process starts CLOSED
                continue
            pair = (op.value.get("from"), op.value.get("to"))
            previous = current.get(op.environment, CLOSED)
            if pair not in LEGAL_TRANSITIONS:
                found.append(
                    Anomaly("illegal transition", (op,), f"{pair[0]}→{pair[1]} is not a legal path", name)
                )
            elif pair[0] != previous:
                found.append(
                    Anomaly(
                        "illegal transition",
                        (op,),
                        f"reported {pair[0]}→{pair[1]} while its last reported state was {previous}",
                        name,
                    )
                )
            current[op.environment] = str(pair[1])
        return Verdict.of(name, found)

    stored: list[tuple[Op, tuple[str, str]]] = []
    matched: set[int] = set()
    for op in history:
        if op.kind == STORE_WRITE and op.value.get("stored"):
            before, after = op.value.get("before"), op.value.get("truth")
            pair = (_state(before), _state(after))
            if pair[0] == pair[1]:
                continue
            manual = bool((after or {}).get("pinned")) or bool((before or {}).get("pinned"))
            if pair not in LEGAL_TRANSITIONS and not manual:
                found.append(
                    Anomaly("illegal transition", (op,), f"the store went {pair[0]}→{pair[1]}", name)
                )
            stored.append((op, pair))
        elif op.kind == TRANSITION:
            # Legality is judged on the stored write a report matches (manual commands may jump).
            pair = (str(op.value.get("from")), str(op.value.get("to")))
            match = next(
                (
                    write
                    for write, written in stored
                    if write.index not in matched
                    and write.index < op.index
                    and write.environment == op.environment
                    and written == pair
                ),
                None,
            )
            if match is None:
                found.append(
                    Anomaly(
                        "transition reported but not stored",
                        (op,),
                        f"{op.environment} reported {pair[0]}→{pair[1]} but stored no such state change",
                        name,
                    )
                )
            else:
                matched.add(match.index)
    for write, pair in stored:
        if write.index not in matched:
            found.append(
                Anomaly(
                    "transition stored but not reported",
                    (write,),
                    f"{write.environment} stored {pair[0]}→{pair[1]} and reported no transition",
                    name,
                )
            )
    return Verdict.of(name, found)


# ---------------------------------------------------------------------- 2 and 3. shut while open, one probe


def _unsafe_runs(history: History, name: str) -> list[Anomaly]:
    bounds = _Bounds(history)
    walk = _Walk()
    found: list[Anomaly] = []
    for op in history:
        env = op.environment
        if op.kind == DOWNSTREAM_CALL and op.value == "start" and env is not None and env not in walk.dead:
            record = walk.truth
            state = _state(record)
            if (
                state != CLOSED
                and record is not None
                and not walk.excused(env, op.time, bounds.local_cache_max_age)
            ):
                last = walk.last_store.get(env)
                evidence = _evidence(walk.truth_op, last, op)
                if state == OPEN:
                    opened_at = record.get("opened_at")
                    due = (opened_at if opened_at is not None else op.time) + bounds.recovery_timeout
                    if record.get("pinned") or op.time < due - _EPS:
                        found.append(
                            Anomaly(
                                "call while open",
                                evidence,
                                f"{env} ran the downstream while the stored record was OPEN "
                                f"(opened at +{(opened_at or 0) - history.start_time:g}, window until "
                                f"+{due - history.start_time:g}) and its view was not excused as stale",
                                name,
                            )
                        )
                    else:
                        found.append(
                            Anomaly(
                                "unelected probe",
                                evidence,
                                f"{env} ran the downstream after the OPEN window without winning the probe election",
                                name,
                            )
                        )
                elif state == HALF_OPEN and record.get("half_open_owner") != env:
                    lease = record.get("probe_lease_expiry")
                    if lease is None or op.time < lease - _EPS:
                        found.append(
                            Anomaly(
                                "two concurrent probes",
                                evidence,
                                f"{env} ran the downstream while {record.get('half_open_owner')} held the probe "
                                f"(lease until +{(lease or 0) - history.start_time:g})",
                                name,
                            )
                        )
                    else:
                        found.append(
                            Anomaly(
                                "unelected probe",
                                evidence,
                                f"{env} ran the downstream after {record.get('half_open_owner')}'s lease "
                                "ended without taking the probe over",
                                name,
                            )
                        )
        walk.step(op)
    return found


def open_means_shut(history: History) -> Verdict:
    """DESIGN §4.2: while the record is OPEN (inside its window), no environment with a fresh view runs the downstream.

    An environment is excused while what it last saw (its last store read or write,
    younger than ``local_cache_max_age``) allowed the call: a CLOSED record, or its
    own unexpired probe lease (bounded staleness); or when its last store operation
    failed (it acts as a local breaker: see ``store_faults_inside``).

    Example:
        >>> open_means_shut(History(meta={"shared_store": True, "config": {}})).valid
        True
    """
    name = "open_means_shut"
    if not _shared(history):
        return _no_store(name)
    found = [a for a in _unsafe_runs(history, name) if a.type == "call while open"]
    return Verdict.of(name, found)


def one_probe(history: History) -> Verdict:
    """DESIGN §4.3: while an environment holds the probe (lease unexpired), no other runs the downstream.

    Also flags an ``unelected probe``: a downstream call after the open window or
    after a lease ended, by an environment that did not win the election first.

    Example:
        >>> one_probe(History(meta={"shared_store": True, "config": {}})).valid
        True
    """
    name = "one_probe"
    if not _shared(history):
        return _no_store(name)
    found = [a for a in _unsafe_runs(history, name) if a.type != "call while open"]
    return Verdict.of(name, found)


# ---------------------------------------------------------------------- 4. write-free health


def write_free_health(history: History) -> Verdict:
    """DESIGN §4.4: a healthy CLOSED circuit writes nothing and reads once per ``local_cache_max_age``.

    ``write while healthy``: a store write over a CLOSED record that is not a trip
    (it writes CLOSED again), or made during a call whose downstream succeeded.
    ``read while fresh``: two reads by one environment less than
    ``local_cache_max_age`` apart while the circuit stayed CLOSED and nothing (a
    failure, a write, a store fault, a cold start) gave it a reason to read again.

    Example:
        >>> write_free_health(History(meta={"shared_store": True, "config": {}})).valid
        True
    """
    name = "write_free_health"
    if not _shared(history):
        return _no_store(name)
    bounds = _Bounds(history)
    walk = _Walk()
    found: list[Anomaly] = []
    last_read: dict[str, Op] = {}
    ok_calls: dict[int, Op] = {}
    for op in history:
        env = op.environment
        if op.kind == DOWNSTREAM_CALL and op.value == "ok" and op.call is not None:
            ok_calls[op.call] = op
        elif op.kind == DOWNSTREAM_CALL and op.value == "failed" and env is not None:
            last_read.pop(env, None)
        elif op.kind == STORE_WRITE and env is not None:
            last_read.pop(env, None)
            before = op.value.get("before")
            record = op.value.get("record") or {}
            # Judged only when the writer knew the record it wrote over (its base is the truth):
            # a write based on an older, non-CLOSED record that lost its compare-and-set is no
            # write on the healthy path.
            expected = op.value.get("expected_version")
            based_on_truth = expected is None or expected == (
                (before or {}).get("version", 0) if before else 0
            )
            if (
                based_on_truth
                and _state(before) == CLOSED
                and not (before or {}).get("pinned")
                and not record.get("pinned")
            ):
                if _state(record) == CLOSED:
                    found.append(
                        Anomaly(
                            "write while healthy", (op,), f"{env} wrote CLOSED over a CLOSED record", name
                        )
                    )
                elif op.call is not None and op.call in ok_calls:
                    found.append(
                        Anomaly(
                            "write while healthy",
                            (ok_calls[op.call], op),
                            f"{env} wrote during a call whose downstream succeeded",
                            name,
                        )
                    )
        elif op.kind in (STORE_FAULT, COLD_START, CRASH) and env is not None:
            last_read.pop(env, None)
        elif op.kind == STORE_READ and env is not None:
            if _state(op.value.get("truth")) == CLOSED and _state(op.value.get("record")) == CLOSED:
                previous = last_read.get(env)
                if previous is not None and op.time - previous.time < bounds.local_cache_max_age - _EPS:
                    found.append(
                        Anomaly(
                            "read while fresh",
                            (previous, op),
                            f"{env} read the store again after {op.time - previous.time:g}s "
                            f"(local_cache_max_age={bounds.local_cache_max_age:g}) with nothing changed",
                            name,
                        )
                    )
                last_read[env] = op
            else:
                last_read.pop(env, None)
        walk.step(op)
        if _state(walk.truth) != CLOSED:
            last_read.clear()
    return Verdict.of(name, found)


# ---------------------------------------------------------------------- 5. no lost updates


def no_lost_updates(history: History) -> Verdict:
    """DESIGN §4.5: every stored transition replaced the record its writer based it on.

    A ``lost update`` is a stored write whose expected version is not the version it
    replaced (an unconditional or stale write), one that replaced another
    environment's live probe (HALF_OPEN, lease unexpired), or one that moved an OPEN
    window (a stale trip extending another's transition).

    Example:
        >>> h = History(meta={"shared_store": True})
        >>> _ = h.append("store_write", {"stored": True, "expected_version": 1,
        ...     "before": {"state": "OPEN", "version": 2}, "record": {"state": "OPEN"},
        ...     "truth": {"state": "OPEN", "version": 3}}, time=0.0, environment="e")
        >>> no_lost_updates(h).anomaly_types
        ['lost update']
    """
    name = "no_lost_updates"
    if not _shared(history):
        return _no_store(name)
    bounds = _Bounds(history)
    found: list[Anomaly] = []
    start = history.start_time
    for op in history.filter(STORE_WRITE):
        value = op.value
        if not value.get("stored"):
            continue
        before = value.get("before")
        record = value.get("record") or {}
        expected = value.get("expected_version")
        replaced = (before or {}).get("version", 0) if before else 0
        if value.get("conditional") != "state" and expected is not None and expected != replaced:
            found.append(
                Anomaly(
                    "lost update",
                    (op,),
                    f"{op.environment} wrote {_state(record)} based on version {expected} over version "
                    f"{replaced} ({_state(before)}): a newer transition was overwritten",
                    name,
                )
            )
            continue
        if not before or record.get("pinned") or before.get("pinned"):
            continue
        if _state(before) == HALF_OPEN:
            owner, lease = before.get("half_open_owner"), before.get("probe_lease_expiry")
            if owner not in (None, op.environment) and (lease is None or op.time < lease - _EPS):
                found.append(
                    Anomaly(
                        "lost update",
                        (op,),
                        f"{op.environment} overwrote {owner}'s live probe (lease until +{(lease or 0) - start:g}) "
                        f"with {_state(record)}",
                        name,
                    )
                )
        elif _state(before) == OPEN and _state(record) == OPEN:
            opened_at = before.get("opened_at")
            if (
                opened_at is not None
                and record.get("opened_at") != opened_at
                and op.time < opened_at + bounds.recovery_timeout - _EPS
            ):
                found.append(
                    Anomaly(
                        "lost update",
                        (op,),
                        f"{op.environment} re-opened an OPEN circuit inside its window "
                        f"(opened_at +{opened_at - start:g} -> +{(record.get('opened_at') or 0) - start:g})",
                        name,
                    )
                )
    return Verdict.of(name, found)


# ---------------------------------------------------------------------- 6. nothing lost


def nothing_lost(history: History) -> Verdict:
    """DESIGN §4.6: each call ends exactly once: the downstream ran, the fallback ran, or the open error.

    ``invocation lost``: a call with no outcome (not in flight, its environment alive),
    or one whose caller got neither the downstream's result, nor the fallback's, nor
    the open error (without a store fault: see ``store_faults_inside``).
    ``invocation ended twice``: two outcomes, or a downstream run plus a rejection or
    fallback.

    Example:
        >>> nothing_lost(History()).valid
        True
    """
    name = "nothing_lost"
    started: dict[int, Op] = {}
    outcomes: dict[int, list[Op]] = {}
    ran: dict[int, Op] = {}
    finished: set[int] = set()
    faulted: set[int] = set()
    crashed: set[int] = set()
    open_calls: dict[str, set[int]] = {}
    for op in history:
        call = op.call
        if op.kind == CRASH and op.environment is not None:
            crashed.update(open_calls.pop(op.environment, set()))
        if call is None:
            continue
        if op.kind == CALL_STARTED:
            started[call] = op
            if op.environment is not None:
                open_calls.setdefault(op.environment, set()).add(call)
        elif op.kind in OUTCOMES:
            outcomes.setdefault(call, []).append(op)
            if op.environment is not None:
                open_calls.get(op.environment, set()).discard(call)
        elif op.kind == DOWNSTREAM_CALL:
            if op.value == "start":
                ran[call] = op
            else:
                finished.add(call)
        elif op.kind == STORE_FAULT:
            faulted.add(call)
    found: list[Anomaly] = []
    for call, start in started.items():
        ends = outcomes.get(call, [])
        if len(ends) > 1:
            found.append(
                Anomaly(
                    "invocation ended twice", (start, *ends), f"call {call} ended {len(ends)} times", name
                )
            )
            continue
        if not ends:
            if call in crashed or (call in ran and call not in finished):
                continue  # its environment crashed, or it is still in flight
            found.append(Anomaly("invocation lost", (start,), f"call {call} never ended", name))
            continue
        end = ends[0]
        value = end.value if isinstance(end.value, dict) else {}
        did_run, did_fallback = bool(value.get("ran")), bool(value.get("fallback"))
        if end.kind in (REJECTED, FALLBACK) and did_run:
            found.append(
                Anomaly(
                    "invocation ended twice",
                    _evidence(start, ran.get(call), end),
                    f"call {call} ran the downstream and was also {end.kind}",
                    name,
                )
            )
        elif end.kind in (CALL_OK, CALL_FAILED) and did_fallback:
            found.append(
                Anomaly(
                    "invocation ended twice",
                    (start, end),
                    f"call {call} ran the fallback but the caller got {end.kind}",
                    name,
                )
            )
        elif end.kind == CALL_OK and not did_run:
            found.append(
                Anomaly(
                    "invocation lost",
                    (start, end),
                    f"call {call} returned without running the downstream or the fallback",
                    name,
                )
            )
        elif end.kind == CALL_FAILED and value.get("source") != "downstream" and call not in faulted:
            found.append(
                Anomaly(
                    "invocation lost",
                    (start, end),
                    f"call {call} raised {value.get('error')!r}: not the downstream's error nor the open error",
                    name,
                )
            )
    return Verdict.of(name, found)


# ---------------------------------------------------------------------- 7. liveness


def liveness(history: History) -> Verdict:
    """DESIGN §4.7: with a working store, an expired window or lease never keeps rejecting calls.

    ``stuck open``: a rejected call after ``opened_at + recovery_timeout`` (plus
    ``local_cache_max_age`` of staleness) while the record is still that OPEN record.
    ``stuck half-open``: a rejected call after the probe lease ended (or by the probe
    owner itself) while the record is still that HALF_OPEN record, or a probe owner
    that ran more than ``success_threshold`` successful probes without closing.
    Calls within ``store_backoff`` of a store fault, and during a store outage, are
    not judged.

    Example:
        >>> liveness(History(meta={"shared_store": True, "config": {}})).valid
        True
    """
    name = "liveness"
    if not _shared(history):
        return _no_store(name)
    bounds = _Bounds(history)
    walk = _Walk()
    found: list[Anomaly] = []
    store_ok_from = float("-inf")
    probe_truth: dict[int, dict[str, Any] | None] = {}
    streaks: dict[str, tuple[tuple[Any, Any], list[Op]]] = {}
    start = history.start_time
    for op in history:
        env = op.environment
        kind = op.kind
        if kind == STORE_OUTAGE and (op.value or {}).get("fault") is None:
            store_ok_from = max(store_ok_from, op.time + bounds.store_backoff)
        elif kind == STORE_FAULT:
            store_ok_from = max(store_ok_from, op.time + bounds.store_backoff)
            if env is not None:
                streaks.pop(env, None)
        elif kind in (COLD_START, CRASH) and env is not None:
            streaks.pop(env, None)
        elif kind == STORE_WRITE and op.value.get("stored"):
            before, record = op.value.get("before") or {}, op.value.get("truth") or {}
            if before.get("half_open_owner") != record.get("half_open_owner"):
                streaks.clear()  # the probe changed hands: every streak starts again
        elif kind in (REJECTED, FALLBACK) and env is not None and env not in walk.dead:
            record = walk.truth or {}
            state = _state(walk.truth)
            judged = not walk.store_outage and env not in walk.in_flight and not record.get("pinned")
            staleness = bounds.local_cache_max_age + LIVENESS_SLACK
            if judged and state == OPEN and record.get("opened_at") is not None:
                due = record["opened_at"] + bounds.recovery_timeout
                if op.time >= max(due, store_ok_from) + staleness:
                    found.append(
                        Anomaly(
                            "stuck open",
                            _evidence(walk.truth_op, op),
                            f"{env} was rejected at +{op.time - start:g}, after the OPEN window ended at "
                            f"+{due - start:g}, and the record is still that OPEN record",
                            name,
                        )
                    )
            elif judged and state == HALF_OPEN:
                owner, lease = record.get("half_open_owner"), record.get("probe_lease_expiry")
                if owner == env:
                    if op.time >= store_ok_from + staleness:
                        found.append(
                            Anomaly(
                                "stuck half-open",
                                _evidence(walk.truth_op, op),
                                f"{env} holds the probe but its call was rejected",
                                name,
                            )
                        )
                elif lease is not None and op.time >= max(lease, store_ok_from) + staleness:
                    found.append(
                        Anomaly(
                            "stuck half-open",
                            _evidence(walk.truth_op, op),
                            f"{env} was rejected at +{op.time - start:g}, after {owner}'s probe lease ended at "
                            f"+{lease - start:g}, and nobody took the probe over",
                            name,
                        )
                    )
        elif kind == DOWNSTREAM_CALL and env is not None and op.call is not None:
            if op.value == "start":
                probe_truth[op.call] = walk.truth
                record = walk.truth or {}
                if _state(walk.truth) == HALF_OPEN and record.get("half_open_owner") == env:
                    key = (record.get("opened_at"), env)
                    streak = streaks.get(env)
                    if streak is not None and streak[0] == key and len(streak[1]) >= bounds.success_threshold:
                        found.append(
                            Anomaly(
                                "stuck half-open",
                                _evidence(walk.truth_op, *streak[1], op),
                                f"{env} ran {len(streak[1])} successful probes "
                                f"(success_threshold={bounds.success_threshold}) and the circuit is still HALF_OPEN",
                                name,
                            )
                        )
            elif op.value == "ok":
                record = probe_truth.get(op.call) or {}
                if (
                    _state(record) == HALF_OPEN
                    and record.get("half_open_owner") == env
                    and not walk.store_outage
                    and _state(walk.truth) == HALF_OPEN
                ):
                    key = (record.get("opened_at"), env)
                    streak = streaks.get(env)
                    ops = streak[1] if streak is not None and streak[0] == key else []
                    streaks[env] = (key, [*ops, op])
            else:
                streaks.pop(env, None)
        walk.step(op)
    return Verdict.of(name, found)


# ---------------------------------------------------------------------- 8. store faults stay inside


def store_faults_inside(history: History) -> Verdict:
    """DESIGN §4.8: no store error reaches a caller; an outage is paid once per backoff; local breaking.

    ``store error leaked``: a caller got an exception other than the downstream's or
    the open error from a call that saw a store fault. ``repeated store timeout``: an
    environment waited for a store timeout again, in a later call, less than
    ``store_backoff`` after the last one. ``not a local breaker``: with its store
    calls failing, an environment ran the downstream again within
    ``recovery_timeout`` of reaching ``failure_threshold`` consecutive failures.

    Example:
        >>> store_faults_inside(History()).valid
        True
    """
    name = "store_faults_inside"
    bounds = _Bounds(history)
    found: list[Anomaly] = []
    faulted: dict[int, Op] = {}
    last_timeout: dict[str, Op] = {}
    local: dict[str, bool] = {}
    failures: dict[str, list[Op]] = {}
    for op in history:
        env = op.environment
        kind = op.kind
        if kind == STORE_FAULT and env is not None:
            if op.call is not None:
                faulted.setdefault(op.call, op)
            local[env] = True
            if (op.value or {}).get("timeout"):
                previous = last_timeout.get(env)
                if (
                    previous is not None
                    and previous.call != op.call
                    and op.time - previous.time < bounds.store_backoff - _EPS
                ):
                    found.append(
                        Anomaly(
                            "repeated store timeout",
                            (previous, op),
                            f"{env} waited for the store to time out again {op.time - previous.time:g}s after the "
                            f"last timeout (store_backoff={bounds.store_backoff:g})",
                            name,
                        )
                    )
                last_timeout[env] = op
        elif kind in (STORE_READ, STORE_WRITE) and env is not None:
            local[env] = False
            failures.pop(env, None)
        elif kind in (COLD_START, CRASH) and env is not None:
            local[env] = False
            failures.pop(env, None)
            last_timeout.pop(env, None)  # a new process knows of no outage
        elif kind == DOWNSTREAM_CALL and env is not None:
            if op.value == "start" and local.get(env):
                streak = failures.get(env, [])
                if (
                    len(streak) >= bounds.failure_threshold
                    and op.time < streak[-1].time + bounds.recovery_timeout - _EPS
                ):
                    found.append(
                        Anomaly(
                            "not a local breaker",
                            (*streak[-bounds.failure_threshold :], op),
                            f"{env} could not reach the store, had {len(streak)} consecutive failures, and ran the "
                            f"downstream again {op.time - streak[-1].time:g}s after the last "
                            f"(recovery_timeout={bounds.recovery_timeout:g})",
                            name,
                        )
                    )
            elif op.value == "failed" and local.get(env):
                failures.setdefault(env, []).append(op)
            elif op.value == "ok":
                failures.pop(env, None)
        elif kind == CALL_FAILED and op.call is not None:
            value = op.value if isinstance(op.value, dict) else {}
            if value.get("source") != "downstream" and op.call in faulted:
                found.append(
                    Anomaly(
                        "store error leaked",
                        (faulted[op.call], op),
                        f"the caller got {value.get('error')!r} after a store fault",
                        name,
                    )
                )
    return Verdict.of(name, found)


# ---------------------------------------------------------------------- §3 trips on a streak


def trips_on_streak(history: History) -> Verdict:
    """DESIGN §3: a circuit trips only after ``failure_threshold`` consecutive failures in one environment.

    ``premature trip``: an environment stored (or, without a store, reported)
    CLOSED→OPEN while its own streak of consecutive downstream failures (reset by a
    success or a cold start) was shorter than ``failure_threshold``. A trip decided
    while the store was unreachable (a ``local_transition``) is judged when it was
    decided, and may be stored later.

    Example:
        >>> trips_on_streak(History()).valid
        True
    """
    name = "trips_on_streak"
    bounds = _Bounds(history)
    shared = _shared(history)
    streaks: dict[str, list[Op]] = {}
    decided: dict[str, list[Op]] = {}  # a local trip (store unreachable) made on a full streak, stored later
    found: list[Anomaly] = []
    for op in history:
        env = op.environment
        if env is None:
            continue
        if op.kind == DOWNSTREAM_CALL:
            if op.value == "failed":
                streaks.setdefault(env, []).append(op)
            elif op.value == "ok":
                streaks.pop(env, None)
        elif op.kind in (COLD_START, CRASH):
            streaks.pop(env, None)
            decided.pop(env, None)
        elif (
            op.kind == LOCAL_TRANSITION
            and (op.value or {}).get("from") == CLOSED
            and op.value.get("to") == OPEN
        ):
            streak = streaks.pop(env, [])
            if len(streak) >= bounds.failure_threshold:
                decided[env] = [*streak, op]
        else:
            trip = False
            if shared and op.kind == STORE_WRITE and op.value.get("stored"):
                value = op.value
                trip = (
                    _state(value.get("before")) == CLOSED
                    and _state(value.get("truth")) == OPEN
                    and not (value.get("truth") or {}).get("pinned")
                )
            elif not shared and op.kind == TRANSITION:
                trip = op.value.get("from") == CLOSED and op.value.get("to") == OPEN
            if trip:
                streak = streaks.get(env, [])
                if decided.pop(env, None) is not None:
                    pass  # the trip was decided locally, on a full streak, and is stored now
                elif len(streak) < bounds.failure_threshold:
                    found.append(
                        Anomaly(
                            "premature trip",
                            (*streak, op),
                            f"{env} tripped after {len(streak)} consecutive failures "
                            f"(failure_threshold={bounds.failure_threshold})",
                            name,
                        )
                    )
                streaks.pop(env, None)
    return Verdict.of(name, found)


# ---------------------------------------------------------------------- composing

#: Every built-in checker.
ALL: tuple[Checker, ...] = (
    legal_paths,
    open_means_shut,
    one_probe,
    write_free_health,
    no_lost_updates,
    nothing_lost,
    liveness,
    store_faults_inside,
    trips_on_streak,
)

#: Each built-in anomaly type and the checker that reports it.
ANOMALY_TYPES: dict[str, str] = {
    "illegal transition": "legal_paths",
    "transition reported but not stored": "legal_paths",
    "transition stored but not reported": "legal_paths",
    "call while open": "open_means_shut",
    "two concurrent probes": "one_probe",
    "unelected probe": "one_probe",
    "write while healthy": "write_free_health",
    "read while fresh": "write_free_health",
    "lost update": "no_lost_updates",
    "invocation lost": "nothing_lost",
    "invocation ended twice": "nothing_lost",
    "stuck open": "liveness",
    "stuck half-open": "liveness",
    "store error leaked": "store_faults_inside",
    "repeated store timeout": "store_faults_inside",
    "not a local breaker": "store_faults_inside",
    "premature trip": "trips_on_streak",
}


def compose(*checkers: Checker) -> Checker:
    """One checker running all of ``checkers`` per circuit of the history, their verdicts merged.

    Example:
        >>> both = compose(nothing_lost, legal_paths)
        >>> both(History(meta={"shared_store": True})).checks
        {'nothing_lost': True, 'legal_paths': True}
    """
    for checker in checkers:
        if not callable(checker):
            raise TypeError(f"a checker is a callable History -> Verdict, got {checker!r}.")

    def composed(history: History) -> Verdict:
        circuits = history.circuits()
        parts = [history] if len(circuits) <= 1 else [history.for_circuit(c) for c in circuits]
        verdict = Verdict(True)
        for part in parts:
            for checker in checkers:
                result = checker(part)
                if not isinstance(result, Verdict):
                    raise TypeError(
                        f"checker {_name(checker)} returned {result!r}; a checker must return a Verdict."
                    )
                verdict = verdict.merge(result)
        return verdict

    composed.__name__ = "compose(" + ", ".join(_name(c) for c in checkers) + ")"
    return composed


def check(history: History, checkers: Iterable[Checker] | None = None) -> Verdict:
    """Run ``checkers`` (default: every built-in one, ``ALL``) over ``history``.

    Example:
        >>> check(History(meta={"shared_store": True, "config": {}})).valid
        True
    """
    chosen = tuple(ALL if checkers is None else checkers)
    if not chosen:
        raise ValueError("check() needs at least one checker (None means all of checkers.ALL).")
    return compose(*chosen)(history)


def ignoring(*anomaly_types: str, checkers: Iterable[Checker] | None = None) -> Checker:
    """A checker running ``checkers`` (default all) but not reporting ``anomaly_types``.

    To look past a known anomaly for the next one (how the Powertools findings were
    collected), or to accept a documented limitation of your breaker.

    Example:
        >>> h = History(); _ = h.append("call_started", time=0.0, call=1)
        >>> ignoring("invocation lost", checkers=[nothing_lost])(h).valid
        True
    """
    unknown_types = [kind for kind in anomaly_types if kind not in ANOMALY_TYPES]
    if unknown_types:
        raise ValueError(f"unknown anomaly types {unknown_types!r}; known: {sorted(ANOMALY_TYPES)!r}.")
    inner = compose(*(ALL if checkers is None else tuple(checkers)))
    skipped = frozenset(anomaly_types)

    def ignoring_checker(history: History) -> Verdict:
        verdict = inner(history)
        kept = [anomaly for anomaly in verdict.instances if anomaly.type not in skipped]
        valid: bool | None = verdict.valid
        if valid is False and not kept:
            valid = None if any(value is None for value in verdict.checks.values()) else True
        result = Verdict(valid, checks=dict(verdict.checks), unknown=dict(verdict.unknown))
        for anomaly in kept:
            result._add(anomaly)
        return result

    ignoring_checker.__name__ = f"ignoring({', '.join(map(repr, anomaly_types))})"
    return ignoring_checker
