"""Shared test doubles for the core breaker tests: recording hooks, stores and downstreams."""

from __future__ import annotations

import threading
from typing import Any

from breaker import CircuitBreaker, CircuitBreakerConfig, CircuitState, CircuitTransition, Environment
from breaker.clock import Clock, FakeClock
from breaker.persistence import CircuitRecord, InMemoryPersistence

START = 1_700_000_000.0

CLOSED = CircuitState.CLOSED
OPEN = CircuitState.OPEN
HALF_OPEN = CircuitState.HALF_OPEN


class Hooks:
    """An on_transition hook that records every transition it is given."""

    def __init__(self) -> None:
        self.seen: list[CircuitTransition] = []
        self._lock = threading.Lock()

    def __call__(self, transition: CircuitTransition) -> None:
        with self._lock:
            self.seen.append(transition)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(t.from_state.value, t.to_state.value) for t in self.seen]


class RecordingStore(InMemoryPersistence):
    """The in-memory store, counting reads and writes and keeping every accepted write.

    ``history`` holds (previous record or None, new record) for each write the store
    accepted, in order; ``in_flight``/``max_in_flight`` count concurrent operations.
    """

    def __init__(self, *, clock: Clock | None = None, op_delay: float = 0.0) -> None:
        super().__init__(clock=clock)
        self.reads = 0
        self.writes = 0
        self.conflicts = 0
        self.history: list[tuple[CircuitRecord | None, CircuitRecord]] = []
        self.op_delay = op_delay
        self.in_flight = 0
        self.max_in_flight = 0
        self._count_lock = threading.Lock()

    def _enter(self) -> None:
        with self._count_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._count_lock:
            self.in_flight -= 1

    def read(self, name: str) -> CircuitRecord | None:
        self._enter()
        try:
            with self._count_lock:
                self.reads += 1
            if self.op_delay:
                threading.Event().wait(self.op_delay)
            return super().read(name)
        finally:
            self._leave()

    def write(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        self._enter()
        try:
            with self._count_lock:
                self.writes += 1
            if self.op_delay:
                threading.Event().wait(self.op_delay)
            with self._lock:
                previous = self._live(record.name)
            stored = super().write(record, expected)
            with self._count_lock:
                if stored:
                    self.history.append((previous, record))
                else:
                    self.conflicts += 1
            return stored
        finally:
            self._leave()

    def state_changes(self) -> list[tuple[str, str]]:
        """(from, to) of every accepted write that changed the state (a missing record is CLOSED)."""
        changes = []
        for previous, new in self.history:
            before = CLOSED if previous is None else previous.state
            if before is not new.state:
                changes.append((before.value, new.state.value))
        return changes


class Downstream:
    """A scriptable dependency: succeeds, or raises ``error`` while ``failing`` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False
        self.error: type[BaseException] = ConnectionError
        self.in_flight = 0
        self.max_in_flight = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.failing:
            raise self.error("downstream is down")
        return ("ok", args, kwargs)


def make_breaker(
    store: InMemoryPersistence,
    clock: FakeClock,
    environment: Environment | None = None,
    *,
    name: str = "db",
    hooks: Hooks | None = None,
    on_circuit_open: Any = None,
    **config: Any,
) -> CircuitBreaker:
    """A breaker on ``store`` and ``clock``, in a fresh environment unless one is given."""
    return CircuitBreaker(
        name,
        store,
        on_circuit_open=on_circuit_open,
        on_transition=hooks,
        config=CircuitBreakerConfig(**config),
        clock=clock,
        environment=Environment() if environment is None else environment,
    )


def fail(breaker: CircuitBreaker, times: int = 1, error: type[Exception] = ConnectionError) -> None:
    """Make ``times`` calls through ``breaker`` that raise ``error`` (each re-raised and swallowed)."""

    def broken() -> None:
        raise error("boom")

    for _ in range(times):
        try:
            breaker.call(broken)
        except error:
            pass
