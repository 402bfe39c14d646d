"""Histories: every operation of a harness run, in order (DESIGN §7 vocabulary).

A :class:`History` is a list of :class:`Op`: ``index``, fake-clock ``time``,
``environment``, ``kind`` and ``value`` (plus the ``circuit`` and the harness ``call``
id it belongs to). Checkers (:mod:`pytest_circuitbreaker.checkers`) read histories and
return verdicts; a history round-trips through JSON so a failing run can be kept,
shared and checked again.

A :class:`Recorder` builds a history while a breaker runs: it subscribes to
``breaker.events`` (transitions, probes), and the harness and adapters report the rest
through it (calls and their outcomes, the downstream's runs, every store operation with
what the store really holds afterwards, and the faults injected).

Kinds (the ``kind`` of an op) and their values:

=====================  ==============================================================
``call_started``       a harness call entered the breaker; value ``{"slow": bool}``
``call_ok``            the caller got the downstream's value
``call_failed``        the caller got an exception: the downstream's own
                       (``source: "downstream"``) or something else (``"breaker"``)
``rejected``           the caller got the breaker's open error
``fallback``           the caller got ``on_circuit_open``'s value
                       (outcome values: ``ran``, ``fallback``, ``error``, ``source``)
``probe``              the breaker reported a probe: ``{"phase": "started" |
                       "finished" | "takeover", ...}``
``transition``         the breaker reported a transition: ``{"from", "to", "opened_at"}``
``local_transition``   a transition made while the store was unreachable (not stored)
``store_read``         ``{"record": what the breaker got, "truth": what the store holds}``
``store_write``        ``{"record", "expected_version", "stored", "before", "truth",
                       "conditional"}``: ``before``/``truth`` are the stored record
                       just before and just after the write
``store_fault``        a store operation failed (or returned a corrupt record):
                       ``{"op", "error", "timeout", "truth"}``
``downstream_call``    the downstream ran: ``"start"``, then ``"ok"`` or ``"failed"``
``downstream_fault``   the harness changed the downstream: ``{"fault": "outage" | None}``
``store_outage``       the harness changed the store: ``{"fault": "fail_reads" | ... | None}``
``clock``              the harness advanced the fake clock: ``{"seconds": s}``
``cold_start``         the environment forgot its local state
``crash``              the environment vanished (mid-call too); ``{"replaced_by": id}``
=====================  ==============================================================

Records in values are dicts (``CircuitRecord.to_dict()`` shape: ``name``, ``state``,
``version``, ``failure_count``, ``opened_at``, ``half_open_owner``,
``probe_lease_expiry``, ``pinned``, ``expires_at``); None means no record (CLOSED).

Example:
    >>> history = History(meta={"start_time": 100.0})
    >>> op = history.append("call_started", {"slow": False}, time=100.0, environment="env-0", call=1)
    >>> _ = history.append("call_ok", {"ran": True}, time=101.0, environment="env-0", call=1)
    >>> [o.kind for o in history.filter(environment="env-0")]
    ['call_started', 'call_ok']
    >>> History.from_json(history.to_json()).ops == history.ops
    True
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator
    from typing import Any

    from breaker.clock import Clock
    from breaker.events import Event

__all__ = [
    "CALL_FAILED",
    "CALL_OK",
    "CALL_STARTED",
    "CLOCK",
    "COLD_START",
    "CRASH",
    "DOWNSTREAM_CALL",
    "DOWNSTREAM_FAULT",
    "FALLBACK",
    "KINDS",
    "LOCAL_TRANSITION",
    "OUTCOMES",
    "PROBE",
    "REJECTED",
    "STORE_FAULT",
    "STORE_OUTAGE",
    "STORE_READ",
    "STORE_WRITE",
    "TRANSITION",
    "History",
    "Op",
    "Recorder",
    "jsonable",
]

CALL_STARTED = "call_started"
CALL_OK = "call_ok"
CALL_FAILED = "call_failed"
REJECTED = "rejected"
FALLBACK = "fallback"
PROBE = "probe"
TRANSITION = "transition"
LOCAL_TRANSITION = "local_transition"
STORE_READ = "store_read"
STORE_WRITE = "store_write"
STORE_FAULT = "store_fault"
DOWNSTREAM_CALL = "downstream_call"
DOWNSTREAM_FAULT = "downstream_fault"
STORE_OUTAGE = "store_outage"
CLOCK = "clock"
COLD_START = "cold_start"
CRASH = "crash"

#: How a call can end (exactly one per call: DESIGN §4 invariant 6).
OUTCOMES = frozenset({CALL_OK, CALL_FAILED, REJECTED, FALLBACK})

#: Every kind the harness records.
KINDS = (
    CALL_STARTED,
    CALL_OK,
    CALL_FAILED,
    REJECTED,
    FALLBACK,
    PROBE,
    TRANSITION,
    LOCAL_TRANSITION,
    STORE_READ,
    STORE_WRITE,
    STORE_FAULT,
    DOWNSTREAM_CALL,
    DOWNSTREAM_FAULT,
    STORE_OUTAGE,
    CLOCK,
    COLD_START,
    CRASH,
)

_STORE_KINDS = frozenset({STORE_READ, STORE_WRITE, STORE_FAULT})


@dataclass(frozen=True, slots=True)
class Op:
    """One operation of a history.

    Example:
        >>> Op(0, 10.0, "env-0", "call_started", {"slow": False}, call=1).kind
        'call_started'
    """

    index: int
    time: float
    environment: str | None
    kind: str
    value: Any = None
    circuit: str | None = None
    call: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The op as a JSON-ready dict."""
        return {
            "index": self.index,
            "time": self.time,
            "environment": self.environment,
            "kind": self.kind,
            "value": self.value,
            "circuit": self.circuit,
            "call": self.call,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Op:
        """Build an op from ``to_dict()`` output.

        Example:
            >>> Op.from_dict({"index": 0, "time": 1.0, "environment": None, "kind": "clock"}).kind
            'clock'
        """
        missing = [field for field in ("index", "time", "kind") if field not in data]
        if missing:
            raise ValueError(f"an op needs the fields index, time and kind; {data!r} lacks {missing}.")
        return cls(
            int(data["index"]),
            float(data["time"]),
            data.get("environment"),
            str(data["kind"]),
            data.get("value"),
            data.get("circuit"),
            data.get("call"),
        )

    def describe(self, start: float = 0.0) -> str:
        """One line: ``#index t=+seconds environment kind value``.

        Example:
            >>> Op(3, 12.5, "env-1", "clock", {"seconds": 2}).describe(start=10.0)
            '#3 t=+2.5 env-1 clock {seconds: 2}'
        """
        where = self.environment or "-"
        call = f" call={self.call}" if self.call is not None else ""
        value = "" if self.value is None else " " + _compact(self.value, start)
        return f"#{self.index} t=+{self.time - start:g} {where}{call} {self.kind}{value}"


def _is_record(value: Any) -> bool:
    return isinstance(value, dict) and "state" in value and "version" in value


def _compact(value: Any, start: float) -> str:
    """An op value for a human: records as ``OPEN v3 opened=+12 owner=env-1 lease=+40``."""
    if _is_record(value):
        parts = [f"{value['state']} v{value['version']}"]
        for key, label in (
            ("opened_at", "opened"),
            ("half_open_owner", "owner"),
            ("probe_lease_expiry", "lease"),
        ):
            item = value.get(key)
            if item is not None:
                parts.append(
                    f"{label}=+{item - start:g}" if isinstance(item, (int, float)) else f"{label}={item}"
                )
        if value.get("pinned"):
            parts.append("pinned")
        return "<" + " ".join(parts) + ">"
    if isinstance(value, dict):
        if set(value) >= {"from", "to"} and len(value) <= 3:
            return f"{value['from']}->{value['to']}"
        shown = {
            key: item
            for key, item in value.items()
            if item is not None and item is not False and key not in ("name",)
        }
        return "{" + ", ".join(f"{key}: {_compact(item, start)}" for key, item in shown.items()) + "}"
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    return json.dumps(value, default=repr)


class History:
    """Ordered ops of one run, plus ``meta`` (adapter, config, seed...). Thread-safe appends.

    Example:
        >>> history = History()
        >>> history.append("clock", {"seconds": 1}, time=1.0).index
        0
        >>> len(history), history[0].kind
        (1, 'clock')
    """

    def __init__(self, ops: Iterable[Op] = (), meta: dict[str, Any] | None = None) -> None:
        self.ops: list[Op] = list(ops)
        self.meta: dict[str, Any] = dict(meta or {})
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"History({len(self.ops)} ops, meta={self.meta!r})"

    def __len__(self) -> int:
        return len(self.ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __getitem__(self, index: int) -> Op:
        return self.ops[index]

    @property
    def start_time(self) -> float:
        """The time the run started (``meta["start_time"]``, else the first op's time, else 0)."""
        start = self.meta.get("start_time")
        if isinstance(start, (int, float)):
            return float(start)
        return self.ops[0].time if self.ops else 0.0

    def append(
        self,
        kind: str,
        value: Any = None,
        *,
        time: float,
        environment: str | None = None,
        circuit: str | None = None,
        call: int | None = None,
    ) -> Op:
        """Add an op at the end; its index is its position.

        Example:
            >>> History().append("cold_start", time=0.0, environment="env-2").environment
            'env-2'
        """
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"an op's kind must be a non-empty string (see history.KINDS), got {kind!r}.")
        with self._lock:
            op = Op(len(self.ops), float(time), environment, kind, value, circuit, call)
            self.ops.append(op)
        return op

    def filter(
        self,
        kind: str | Collection[str] | None = None,
        *,
        environment: str | None = None,
        circuit: str | None = None,
        call: int | None = None,
        where: Callable[[Op], bool] | None = None,
    ) -> list[Op]:
        """The ops matching every given criterion (``kind`` may be one kind or several).

        Example:
            >>> h = History()
            >>> _ = h.append("clock", time=0.0); _ = h.append("crash", time=1.0, environment="e")
            >>> [op.index for op in h.filter(["clock", "crash"], where=lambda op: op.time > 0)]
            [1]
        """
        kinds = {kind} if isinstance(kind, str) else (set(kind) if kind is not None else None)
        return [
            op
            for op in self.ops
            if (kinds is None or op.kind in kinds)
            and (environment is None or op.environment == environment)
            and (circuit is None or op.circuit == circuit)
            and (call is None or op.call == call)
            and (where is None or where(op))
        ]

    def circuits(self) -> list[str]:
        """The circuits the ops name, in order of first appearance.

        Example:
            >>> h = History(); _ = h.append("clock", time=0.0, circuit="db")
            >>> h.circuits()
            ['db']
        """
        seen: dict[str, None] = {}
        for op in self.ops:
            if op.circuit is not None:
                seen.setdefault(op.circuit, None)
        return list(seen)

    def for_circuit(self, circuit: str) -> History:
        """The ops of ``circuit`` plus the ops of no circuit (clock steps, faults, crashes).

        Example:
            >>> h = History(); _ = h.append("clock", time=0.0); _ = h.append("call_started", time=0.0, circuit="x")
            >>> len(h.for_circuit("x")), len(h.for_circuit("y"))
            (2, 1)
        """
        return History(
            [op for op in self.ops if op.circuit is None or op.circuit == circuit], dict(self.meta)
        )

    @property
    def has_store_ops(self) -> bool:
        """Whether the history shows store operations (else checkers of the store answer unknown)."""
        return any(op.kind in _STORE_KINDS for op in self.ops)

    # ------------------------------------------------------------------ JSON

    def to_json(self, indent: int | None = None) -> str:
        """The history as JSON: ``{"meta": {...}, "ops": [...]}``.

        Example:
            >>> History(meta={"adapter": "breaker"}).to_json()
            '{"meta": {"adapter": "breaker"}, "ops": []}'
        """
        return json.dumps(
            {"meta": jsonable(self.meta), "ops": [jsonable(op.to_dict()) for op in self.ops]},
            indent=indent,
            sort_keys=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> History:
        """Read a history written by ``to_json()``.

        Example:
            >>> History.from_json('{"meta": {}, "ops": []}').ops
            []
        """
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("ops"), list):
            raise ValueError(
                'a history is a JSON object {"meta": {...}, "ops": [...]} (as History.to_json() writes), '
                f"got {str(text)[:80]!r}."
            )
        meta = data.get("meta") or {}
        return cls((Op.from_dict(item) for item in data["ops"]), meta)

    # ------------------------------------------------------------------ display

    def format(self, ops: Iterable[Op] | None = None, *, limit: int | None = None) -> str:
        """Ops as lines (every op when ``ops`` is None; the last ``limit`` of them if given).

        Example:
            >>> h = History(meta={"start_time": 0.0}); _ = h.append("clock", {"seconds": 1}, time=0.0)
            >>> h.format()
            '#0 t=+0 - clock {seconds: 1}'
        """
        chosen = list(self.ops if ops is None else ops)
        skipped = 0
        if limit is not None and len(chosen) > limit:
            skipped = len(chosen) - limit
            chosen = chosen[-limit:]
        start = self.start_time
        lines = [f"... ({skipped} earlier ops)"] if skipped else []
        lines.extend(op.describe(start) for op in chosen)
        return "\n".join(lines)


def jsonable(value: Any) -> Any:
    """``value`` made of JSON types only: records and transitions as dicts, errors as strings.

    Example:
        >>> jsonable({"error": ValueError("bad"), "items": (1, 2)})
        {'error': 'ValueError: bad', 'items': [1, 2]}
    """
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return str.__str__(value)  # CircuitState is a str subclass: keep the plain value
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(item) for item in value]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    if hasattr(value, "from_state") and hasattr(value, "to_state"):
        return transition_value(value)
    return repr(value)


def transition_value(transition: Any) -> dict[str, Any]:
    """A transition object (ours, Powertools', or any with from_state/to_state) as an op value.

    Example:
        >>> from breaker import CircuitState, CircuitTransition
        >>> transition_value(CircuitTransition("db", CircuitState.CLOSED, CircuitState.OPEN, 5.0))
        {'from': 'CLOSED', 'to': 'OPEN', 'opened_at': 5.0}
    """
    return {
        "from": state_name(transition.from_state),
        "to": state_name(transition.to_state),
        "opened_at": jsonable(getattr(transition, "opened_at", None)),
    }


def state_name(state: Any) -> str:
    """``"CLOSED"``, ``"OPEN"`` or ``"HALF_OPEN"`` for any library's state object or string.

    Example:
        >>> state_name("half-open"), state_name("closed")
        ('HALF_OPEN', 'CLOSED')
    """
    text = str(getattr(state, "value", state)).upper().replace("-", "_")
    return text.rsplit(".", 1)[-1]


class Recorder:
    """Builds a history while a breaker runs: the harness, the adapters and ``breaker.events`` report here.

    Parameters:
        history: where ops go.
        clock: whose ``time()`` stamps each op.
        circuit: the circuit name recorded on each op; events of other circuits are ignored.

    ``current`` is the (environment id, call id) the harness is running now: ops
    recorded without an explicit environment are attributed to it. Environments are
    ``add``-ed as the harness creates them; events of others (and of ``kill``-ed ones)
    are ignored. ``start()`` subscribes to ``breaker.events``; ``stop()`` ends recording.

    Example:
        >>> from breaker import FakeClock
        >>> recorder = Recorder(History(), FakeClock(start=0), circuit="db")
        >>> recorder.add("env-0"); recorder.current = ("env-0", 1)
        >>> recorder.record("call_started", {"slow": False}).environment
        'env-0'
    """

    def __init__(self, history: History, clock: Clock, *, circuit: str) -> None:
        self.history = history
        self.clock = clock
        self.circuit = circuit
        self.current: tuple[str | None, int | None] = (None, None)
        self.live: set[str] = set()
        self.dead: set[str] = set()
        self.active = True
        self._unsubscribe: Callable[[], None] | None = None

    def add(self, environment: str) -> None:
        """Start recording events of ``environment``."""
        self.live.add(environment)
        self.dead.discard(environment)

    def kill(self, environment: str) -> None:
        """Stop recording ``environment`` (it crashed): what it does later is not part of the run."""
        self.live.discard(environment)
        self.dead.add(environment)

    def record(
        self,
        kind: str,
        value: Any = None,
        *,
        environment: str | None = None,
        call: int | None = None,
        circuit: str | None = None,
        harness: bool = False,
    ) -> Op | None:
        """Append an op now (None once stopped, or for a crashed environment's late work).

        ``harness=True`` marks an op of the harness itself (clock, faults): no
        environment or call is attributed to it unless given.
        """
        if not self.active:
            return None
        if not harness:
            current_env, current_call = self.current
            environment = current_env if environment is None else environment
            call = current_call if call is None else call
            circuit = self.circuit if circuit is None else circuit
        if environment is not None and environment in self.dead and kind != CRASH:
            return None
        return self.history.append(
            kind, jsonable(value), time=self.clock.time(), environment=environment, circuit=circuit, call=call
        )

    def transition(self, transition: Any, environment: str | None = None) -> None:
        """Record a transition a breaker reported (an ``on_transition`` hook for other libraries).

        Example:
            >>> from breaker import FakeClock, CircuitState, CircuitTransition
            >>> recorder = Recorder(History(), FakeClock(start=0), circuit="db")
            >>> recorder.transition(CircuitTransition("db", CircuitState.CLOSED, CircuitState.OPEN), "env-0")
            >>> recorder.history[0].value["to"]
            'OPEN'
        """
        self.record(TRANSITION, transition_value(transition), environment=environment)

    # ------------------------------------------------------------------ breaker.events

    def start(self) -> None:
        """Subscribe to ``breaker.events`` (our breaker's transitions and probes)."""
        if self._unsubscribe is None:
            from breaker import events

            self._unsubscribe = events.subscribe(self._on_event)

    def stop(self) -> None:
        """Unsubscribe and record nothing more."""
        self.active = False
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_event(self, event: Event) -> None:
        if event.name != self.circuit or event.environment not in self.live:
            return
        kind = event.kind
        if kind == "transition":
            self.record(TRANSITION, transition_value(event.value), environment=event.environment)
        elif kind == "local_transition":
            self.record(LOCAL_TRANSITION, transition_value(event.value), environment=event.environment)
        elif kind == "probe_started":
            self.record(PROBE, {"phase": "started"}, environment=event.environment)
        elif kind == "probe_finished":
            self.record(PROBE, {"phase": "finished", "outcome": event.value}, environment=event.environment)
        elif kind == "takeover":
            self.record(PROBE, {"phase": "takeover", "previous": event.value}, environment=event.environment)
        # rejections, fallbacks and store operations are recorded by the harness itself,
        # with what the caller saw and what the store really holds.
