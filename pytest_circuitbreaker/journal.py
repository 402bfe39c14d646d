"""The per-test journal: every breaker event and every fake-downstream call, in order.

One :class:`Journal` per test, started by the plugin's autouse fixture (or by the first
circuit fixture the test asks for). It subscribes to ``breaker.events`` and is what
``circuit_transitions`` reads, what ``calls_to_open`` counts, and what the failure
report section prints. Each entry gets a sequence number (``seq``) so transitions and
calls recorded from different sources can be put in one order.

Example:
    >>> journal = Journal()
    >>> journal.start()
    >>> journal.transitions
    []
    >>> journal.stop()
"""

from __future__ import annotations

from _thread import allocate_lock
from collections import deque
from contextvars import ContextVar

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from breaker.events import Event
    from pytest_circuitbreaker.downstream import Call, Downstream

#: The environment id a fleet is calling through right now (set by ``Fleet.call``), so
#: a fake downstream can say which simulated worker called it.
CURRENT_ENVIRONMENT: ContextVar[str | None] = ContextVar("circuitbreaker_environment", default=None)

#: How many calls, rejections and other per-call entries a journal keeps for the report.
KEEP_RECENT = 500

_STATES = ("CLOSED", "OPEN", "HALF_OPEN")

# Journals of the tests running now (one, or two with pytester's in-process runs).
_ACTIVE: list[Journal] = []


def state_name(state: object) -> str:
    """The plain name of a circuit state: ours, Powertools' or a string ("open" works too).

    Raises ValueError, naming what was given and what is allowed, for anything else.

    Example:
        >>> state_name("half_open")
        'HALF_OPEN'
    """
    value = getattr(state, "value", state)
    if isinstance(value, str) and value.upper() in _STATES:
        return value.upper()
    raise ValueError(
        f"a circuit state must be one of 'CLOSED', 'OPEN', 'HALF_OPEN' (or a CircuitState), got {state!r}."
    )


class RecordedTransition:
    """One state change of one circuit, as the journal recorded it.

    Attributes: ``seq`` (order in the journal), ``time`` (clock seconds), ``name``
    (the circuit), ``from_state`` and ``to_state`` (plain names: ``"OPEN"``...),
    ``opened_at``, ``environment`` (the id of the environment that made it; None for a
    transition reported through a hook), ``local`` (True when made while the store was
    unreachable and not stored yet) and ``transition`` (the original object).

    Example:
        >>> t = RecordedTransition(1, 0.0, "db", "CLOSED", "OPEN", 0.0, "env-1", False, None)
        >>> t
        RecordedTransition('db': CLOSED -> OPEN, environment='env-1')
    """

    __slots__ = (
        "environment",
        "from_state",
        "local",
        "name",
        "opened_at",
        "seq",
        "time",
        "to_state",
        "transition",
    )

    def __init__(
        self,
        seq: int,
        time: float,
        name: str,
        from_state: str,
        to_state: str,
        opened_at: float | None,
        environment: str | None,
        local: bool,
        transition: object,
    ) -> None:
        self.seq = seq
        self.time = time
        self.name = name
        self.from_state = from_state
        self.to_state = to_state
        self.opened_at = opened_at
        self.environment = environment
        self.local = local
        self.transition = transition

    def __repr__(self) -> str:
        local = ", local" if self.local else ""
        return (
            f"RecordedTransition({self.name!r}: {self.from_state} -> {self.to_state}, "
            f"environment={self.environment!r}{local})"
        )


class Journal:
    """Records breaker events and fake-downstream calls for one test.

    ``transitions`` keeps every transition; ``recent`` the last :data:`KEEP_RECENT`
    per-call entries (downstream calls, rejections, fallbacks, probes, store faults);
    ``counts`` the number of events of each kind. ``on_transition(recorded, event)``
    is called for each transition (the plugin forwards it to the
    ``pytest_circuitbreaker_transition`` hook).

    Example:
        >>> journal = Journal()
        >>> journal.counts
        {}
    """

    def __init__(
        self,
        *,
        on_transition: Callable[[RecordedTransition, Event | None], object] | None = None,
        keep: int = KEEP_RECENT,
    ) -> None:
        self.transitions: list[RecordedTransition] = []
        self.recent: deque[tuple[int, float, str, object]] = deque(maxlen=keep)
        self.counts: dict[str, int] = {}
        self.downstreams: list[Downstream] = []
        self.on_transition = on_transition
        self.used_fixture = False
        self._seq = 0
        self._lock = allocate_lock()
        self._unsubscribe: Callable[[], None] | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Subscribe to every breaker's events (idempotent)."""
        if self._unsubscribe is not None:
            return
        from breaker import events

        self._unsubscribe = events.subscribe(self._on_event)
        _ACTIVE.append(self)

    def stop(self) -> None:
        """Unsubscribe; what was recorded stays readable."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self in _ACTIVE:
            _ACTIVE.remove(self)

    @property
    def active(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._unsubscribe is not None

    # ------------------------------------------------------------------ recording

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _on_event(self, event: Event) -> None:
        kind = event.kind
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if kind in ("store_read", "store_write"):
                return  # counted only: one entry per call would drown the report
            if kind not in ("transition", "local_transition"):
                self.recent.append((self._next(), event.time, "event", event))
                return
            value = event.value
            recorded = RecordedTransition(
                self._next(),
                event.time,
                event.name,
                state_name(getattr(value, "from_state", None)),
                state_name(getattr(value, "to_state", None)),
                getattr(value, "opened_at", None),
                event.environment,
                kind == "local_transition",
                value,
            )
            self.transitions.append(recorded)
        if self.on_transition is not None:  # outside the lock: the hook may read the journal
            self.on_transition(recorded, event)

    def record_call(self, call: Call) -> int:
        """Record a finished fake-downstream call; returns its sequence number."""
        with self._lock:
            seq = self._next()
            self.recent.append((seq, call.time, "call", call))
            self.counts["downstream_call"] = self.counts.get("downstream_call", 0) + 1
        return seq

    def record_foreign_transition(self, transition: object, time: float) -> None:
        """Record a transition reported through a hook (Powertools' ``on_transition``)."""
        name = getattr(transition, "circuit_name", None) or getattr(transition, "name", None)
        if not isinstance(name, str):
            raise TypeError(
                "circuit_transitions.hook expects a CircuitTransition-like object with circuit_name, "
                f"from_state and to_state, got {transition!r}."
            )
        with self._lock:
            recorded = RecordedTransition(
                self._next(),
                time,
                name,
                state_name(getattr(transition, "from_state", None)),
                state_name(getattr(transition, "to_state", None)),
                getattr(transition, "opened_at", None),
                None,
                False,
                transition,
            )
            self.transitions.append(recorded)
            self.counts["transition"] = self.counts.get("transition", 0) + 1
        if self.on_transition is not None:
            self.on_transition(recorded, None)

    def add_downstream(self, downstream: Downstream) -> None:
        """Remember a fake downstream so ``calls_to_open`` can count its calls."""
        with self._lock:
            if downstream not in self.downstreams:
                self.downstreams.append(downstream)

    # ------------------------------------------------------------------ report

    def empty(self) -> bool:
        """True when nothing at all was recorded."""
        return not self.transitions and not self.recent and not self.counts

    def render(self, last: int = 20) -> str:
        """The report section: every transition, then the last ``last`` calls (transitions inline).

        Example:
            >>> Journal().render()
            'no circuit breaker activity was recorded in this test'
        """
        if self.empty():
            return "no circuit breaker activity was recorded in this test"
        with self._lock:
            transitions = list(self.transitions)
            recent = list(self.recent)
            counts = dict(self.counts)
        times = [t.time for t in transitions] + [entry[1] for entry in recent]
        base = min(times) if times else 0.0
        environments = {t.environment for t in transitions if t.environment} | {
            getattr(value, "environment", None) for _, _, _, value in recent
        }
        environments.discard(None)
        show_env = len(environments) > 1
        lines = [f"transitions ({len(transitions)}):"]
        lines += [f"  {_stamp(t.time, base)}  {_describe_transition(t, show_env)}" for t in transitions] or [
            "  (none)"
        ]
        timeline = [(seq, time, kind, value) for seq, time, kind, value in recent]
        timeline += [(t.seq, t.time, "transition", t) for t in transitions]
        timeline.sort(key=lambda entry: entry[0])
        kept = [entry[0] for entry in timeline if entry[2] != "transition"][-last:] if last > 0 else []
        floor = kept[0] if kept else float("inf")
        shown = [entry for entry in timeline if entry[0] >= floor]
        count = len(kept)
        total = counts.get("downstream_call", 0) + sum(
            counts.get(kind, 0)
            for kind in ("rejected", "fallback", "probe_started", "probe_finished", "takeover", "store_fault")
        )
        lines.append(f"last {count} of {total} calls, rejections, probes and store faults (==> transitions):")
        for _, time, kind, value in shown:
            if kind == "transition":
                lines.append(f"  {_stamp(time, base)}  ==> {_describe_transition(value, show_env)}")  # type: ignore[arg-type]
            else:
                lines.append(f"  {_stamp(time, base)}  {_describe(kind, value, show_env)}")
        lines.append(
            f"store: {counts.get('store_read', 0)} reads, {counts.get('store_write', 0)} writes, "
            f"{counts.get('store_fault', 0)} faults"
        )
        return "\n".join(lines)


def _stamp(time: float, base: float) -> str:
    return f"t={time - base:+.3f}s"


def _describe_transition(t: RecordedTransition, show_env: bool) -> str:
    where = ""
    if t.environment is None:
        where = " (reported by hook)"
    elif show_env:
        where = f" (environment {t.environment})"
    local = " [local: store unreachable, not stored]" if t.local else ""
    return f"{t.name}: {t.from_state} -> {t.to_state}{where}{local}"


def _describe(kind: str, value: object, show_env: bool) -> str:
    if kind == "call":
        return repr(value)
    event: Event = value  # type: ignore[assignment]
    what = {
        "rejected": "rejected (CircuitBreakerOpenError)",
        "fallback": "rejected (on_circuit_open called)",
        "probe_started": "probe started",
        "probe_finished": f"probe finished: {event.value}",
        "takeover": f"probe taken over from {event.value}",
        "store_fault": f"store fault: {type(event.value).__name__}: {event.value}",
    }.get(event.kind, f"{event.kind}: {event.value!r}")
    where = f" (environment {event.environment})" if show_env else ""
    return f"{event.name}: {what}{where}"


def active_journals() -> Iterable[Journal]:
    """The journals of the tests running now (for hooks called from user code)."""
    return tuple(_ACTIVE)
