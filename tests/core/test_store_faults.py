"""Invariant 8: store faults stay inside; a correct local breaker meanwhile; re-sync when it returns."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitBreakerPersistenceError,
    CircuitInfo,
    CircuitTransition,
    Environment,
    FakeClock,
)
from breaker.persistence import CircuitRecord, CircuitStore, InMemoryPersistence

from .support import CLOSED, HALF_OPEN, OPEN, START, Downstream, Hooks, fail

MODES = ["raise", "persistence", "timeout", "garbage", "corrupt", "wrong_name", "bad_types"]


class FlakyStore(CircuitStore):
    """Delegates to ``inner`` unless ``down``; then reads and/or writes fail in the way ``mode`` says."""

    kind = "flaky"

    def __init__(self, inner: InMemoryPersistence, mode: str = "raise") -> None:
        self.inner = inner
        self.mode = mode
        self.down = False
        self.fail_reads = True
        self.fail_writes = True
        self.reads = 0
        self.writes = 0
        self.threads: set[int] = set()

    @property
    def calls(self) -> int:
        return self.reads + self.writes

    def _raise(self) -> None:
        if self.mode == "raise":
            raise ConnectionError("store unreachable")
        if self.mode == "persistence":
            raise CircuitBreakerPersistenceError("store failed", "throttled")
        if self.mode == "timeout":
            raise TimeoutError("store timed out")

    def read(self, name: str) -> Any:
        self.reads += 1
        self.threads.add(threading.get_ident())
        if not (self.down and self.fail_reads):
            return self.inner.read(name)
        self._raise()
        return {
            "garbage": "garbage",
            "corrupt": CircuitRecord(name, OPEN, version=1),  # OPEN without opened_at
            "wrong_name": CircuitRecord.closed("another-circuit").evolve(),
            "bad_types": CircuitRecord(name, OPEN, version=1, opened_at="yesterday"),  # type: ignore[arg-type]
        }[self.mode]

    def write(self, record: CircuitRecord, expected: CircuitRecord | None) -> Any:
        self.writes += 1
        self.threads.add(threading.get_ident())
        if not (self.down and self.fail_writes):
            return self.inner.write(record, expected)
        self._raise()
        return {"garbage": "yes", "corrupt": None, "wrong_name": 1, "bad_types": "True"}[self.mode]

    def delete(self, name: str) -> None:
        self.inner.delete(name)

    async def aread(self, name: str) -> Any:
        return self.read(name)

    async def awrite(self, record: CircuitRecord, expected: CircuitRecord | None) -> Any:
        return self.write(record, expected)


class ThreadedFlakyStore(FlakyStore):
    """The same, with CircuitStore's default async twins (the sync operation in a worker thread)."""

    aread = CircuitStore.aread  # type: ignore[assignment]
    awrite = CircuitStore.awrite  # type: ignore[assignment]


@pytest.fixture
def inner(clock: FakeClock) -> InMemoryPersistence:
    return InMemoryPersistence(clock=clock)


def breaker_on(
    store: CircuitStore, clock: FakeClock, env: str = "a", hooks: Hooks | None = None, **config: Any
) -> CircuitBreaker:
    config.setdefault("store_backoff", 5)
    return CircuitBreaker(
        "db",
        store,
        on_transition=hooks,
        config=CircuitBreakerConfig(**config),
        clock=clock,
        environment=Environment(env),
    )


# ---------------------------------------------------------------- nothing reaches the caller


@pytest.mark.parametrize("mode", MODES)
def test_no_store_error_reaches_the_caller(inner, clock, mode, caplog) -> None:
    store = FlakyStore(inner, mode)
    store.down = True
    hooks = Hooks()
    cb = breaker_on(store, clock, hooks=hooks, failure_threshold=3, local_cache_max_age=0)
    downstream = Downstream()
    with caplog.at_level(logging.WARNING, logger="breaker"):
        for _ in range(5):
            assert cb.call(downstream, 1) == ("ok", (1,), {})
            clock.advance(2)
        own = ConnectionError("the downstream's own")

        def broken() -> None:
            raise own

        for _ in range(2):
            with pytest.raises(ConnectionError) as excinfo:
                cb.call(broken)
            assert excinfo.value is own
    assert downstream.calls == 5
    assert "acting as a local breaker" in caplog.text
    assert hooks.seen == []


@pytest.mark.asyncio
@pytest.mark.parametrize("store_type", [FlakyStore, ThreadedFlakyStore])
@pytest.mark.parametrize("mode", MODES)
async def test_no_store_error_reaches_an_async_caller(inner, clock, mode, store_type) -> None:
    store = store_type(inner, mode)
    store.down = True
    cb = breaker_on(store, clock, failure_threshold=2, local_cache_max_age=0)

    @cb
    async def fetch(fail: bool) -> str:
        await asyncio.sleep(0)
        if fail:
            raise TimeoutError("own")
        return "ok"

    assert await fetch(False) == "ok"
    with pytest.raises(TimeoutError, match="own"):
        await fetch(True)
    with pytest.raises(TimeoutError, match="own"):
        await fetch(True)  # trips locally
    with pytest.raises(CircuitBreakerOpenError):
        await fetch(False)
    assert store.calls >= 1
    if store_type is ThreadedFlakyStore:
        assert threading.get_ident() not in store.threads  # the loop never ran blocking store I/O


# ---------------------------------------------------------------- backoff


def test_after_a_fault_the_store_is_left_alone_until_store_backoff_passes(inner, clock) -> None:
    store = FlakyStore(inner)
    cb = breaker_on(store, clock, local_cache_max_age=0, store_backoff=5)
    cb.call(Downstream())
    assert store.calls == 1  # healthy: one read per call (max age 0)
    store.down = True
    clock.advance(1)
    cb.call(Downstream())  # detects the outage
    assert store.calls == 2
    for _ in range(49):
        clock.advance(0.1)
        cb.call(Downstream())  # 4.9 s of calls: no store access
    assert store.calls == 2
    clock.advance(0.1)
    cb.call(Downstream())  # backoff over: one attempt (still down)
    assert store.calls == 3
    clock.advance(4.9)
    cb.call(Downstream())
    assert store.calls == 3
    store.down = False
    clock.advance(0.1)
    cb.call(Downstream())  # store back: read again
    assert store.calls == 4
    cb.call(Downstream())
    assert store.calls == 5  # and normal reads resume


def test_zero_store_backoff_retries_on_the_next_call(inner, clock) -> None:
    store = FlakyStore(inner)
    store.down = True
    cb = breaker_on(store, clock, local_cache_max_age=0, store_backoff=0)
    for _ in range(3):
        cb.call(Downstream())
    assert store.calls == 3


def test_the_outage_is_logged_once_per_detection(inner, clock, caplog) -> None:
    store = FlakyStore(inner)
    store.down = True
    cb = breaker_on(store, clock, local_cache_max_age=0, store_backoff=5)
    with caplog.at_level(logging.WARNING, logger="breaker"):
        for _ in range(20):
            cb.call(Downstream())
            clock.advance(0.1)
    faults = [r for r in caplog.records if "acting as a local breaker" in r.getMessage()]
    assert len(faults) == 1
    assert "flaky" in faults[0].getMessage()
    assert "ConnectionError" in faults[0].getMessage()


# ---------------------------------------------------------------- the local breaker


def test_while_the_store_is_down_the_environment_trips_locally_without_a_hook(inner, clock) -> None:
    store = FlakyStore(inner)
    hooks = Hooks()
    cb = breaker_on(
        store, clock, hooks=hooks, failure_threshold=2, recovery_timeout=60, local_cache_max_age=1
    )
    cb.call(Downstream())
    store.down = True
    clock.advance(1)
    fail(cb, 2)  # the first call detects the outage; the second trips, locally
    calls = store.calls
    downstream = Downstream()
    for _ in range(5):
        with pytest.raises(CircuitBreakerOpenError) as excinfo:
            cb.call(downstream)
        assert excinfo.value.circuit == CircuitInfo("db", OPEN, 2, START + 1)
        assert excinfo.value.retry_after == pytest.approx(60)
    assert downstream.calls == 0
    assert hooks.seen == []  # nothing stored, nothing reported
    assert store.calls == calls  # and no store access within the backoff
    assert inner.read("db") is None


def test_a_local_breaker_runs_the_whole_cycle_while_the_store_is_down(inner, clock) -> None:
    store = FlakyStore(inner)
    store.down = True
    hooks = Hooks()
    cb = breaker_on(
        store,
        clock,
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=2,
        store_backoff=100,
    )
    fail(cb, 1)
    clock.advance(10)
    downstream = Downstream()
    cb.call(downstream)  # local probe 1
    nested: list[str] = []

    def probe_calling_again() -> str:
        try:
            cb.call(downstream)
        except CircuitBreakerOpenError:
            nested.append("rejected")  # only one probe at a time, locally too
        return "probed"

    assert cb.call(probe_calling_again) == "probed"  # local probe 2: closed locally
    assert nested == ["rejected"]
    for _ in range(3):
        cb.call(downstream)
    assert downstream.calls == 4
    assert hooks.seen == []
    assert inner.read("db") is None
    assert store.calls == 1  # the first detection only (backoff 100 s)


def test_a_failed_local_probe_reopens_locally(inner, clock) -> None:
    store = FlakyStore(inner)
    store.down = True
    cb = breaker_on(store, clock, failure_threshold=1, recovery_timeout=10, store_backoff=100)
    fail(cb, 1)
    clock.advance(10)
    fail(cb, 1)  # the probe fails
    with pytest.raises(CircuitBreakerOpenError) as excinfo:
        cb.call(Downstream())
    assert excinfo.value.circuit.state is OPEN
    assert excinfo.value.retry_after == pytest.approx(10)


def test_an_election_write_failure_becomes_a_local_probe_not_an_error(inner, clock) -> None:
    """Powertools 3.37 raises the raw store error from a failed election write into the caller."""
    store = FlakyStore(inner)
    hooks = Hooks()
    cb = breaker_on(store, clock, hooks=hooks, failure_threshold=1, recovery_timeout=10, success_threshold=1)
    fail(cb, 1)
    store.down, store.fail_reads = True, False  # reads work, writes fail
    clock.advance(10)
    downstream = Downstream()
    assert cb.call(downstream)[0] == "ok"
    assert downstream.calls == 1
    assert hooks.pairs == [("CLOSED", "OPEN")]  # neither the election nor the close was stored
    assert inner.read("db").state is OPEN


def test_a_failed_trip_write_is_not_reported_as_a_transition(inner, clock) -> None:
    """Powertools 3.37 reports CLOSED->OPEN to on_transition even when the trip write failed."""
    store = FlakyStore(inner)
    hooks = Hooks()
    cb = breaker_on(store, clock, hooks=hooks, failure_threshold=2, local_cache_max_age=60)
    cb.call(Downstream())
    store.down, store.fail_reads = True, False
    fail(cb, 2)
    assert hooks.seen == []
    assert inner.read("db") is None
    with pytest.raises(CircuitBreakerOpenError):
        cb.call(Downstream())  # but the environment is protected


# ---------------------------------------------------------------- re-sync


@pytest.mark.parametrize("mode", ["raise", "garbage"])
def test_when_the_store_returns_the_pending_trip_is_stored_and_reported_once(inner, clock, mode) -> None:
    store = FlakyStore(inner, mode)
    hooks = Hooks()
    cb = breaker_on(
        store, clock, hooks=hooks, failure_threshold=2, recovery_timeout=60, local_cache_max_age=1
    )
    cb.call(Downstream())
    store.down = True
    clock.advance(1)
    fail(cb, 2)  # local trip at START + 1
    clock.advance(6)
    store.down = False
    with pytest.raises(CircuitBreakerOpenError) as excinfo:
        cb.call(Downstream())  # reads, then stores the pending trip (compare-and-set)
    assert excinfo.value.retry_after == pytest.approx(54)
    record = inner.read("db")
    assert (record.state, record.opened_at, record.failure_count, record.version) == (OPEN, START + 1, 2, 1)
    assert hooks.seen == [CircuitTransition("db", CLOSED, OPEN, START + 1)]
    for _ in range(5):
        clock.advance(1)
        with pytest.raises(CircuitBreakerOpenError):
            cb.call(Downstream())
    assert len(hooks.seen) == 1  # exactly once


def test_other_environments_see_the_resynced_trip(inner, clock) -> None:
    store = FlakyStore(inner)
    a = breaker_on(store, clock, "a", failure_threshold=1, recovery_timeout=60, local_cache_max_age=1)
    b = breaker_on(inner, clock, "b", failure_threshold=1, recovery_timeout=60, local_cache_max_age=0)
    store.down = True
    fail(a, 1)
    assert b.call(Downstream())[0] == "ok"  # the trip is not stored yet: b cannot know
    clock.advance(5)
    store.down = False
    with pytest.raises(CircuitBreakerOpenError):
        a.call(Downstream())
    with pytest.raises(CircuitBreakerOpenError):
        b.call(Downstream())


@pytest.mark.parametrize("meanwhile", ["reset", "trip", "force_closed"])
def test_a_pending_trip_is_dropped_if_the_store_changed_meanwhile(inner, clock, meanwhile) -> None:
    store = FlakyStore(inner)
    hooks_a, hooks_b = Hooks(), Hooks()
    a = breaker_on(
        store, clock, "a", hooks=hooks_a, failure_threshold=1, recovery_timeout=60, local_cache_max_age=1
    )
    b = breaker_on(inner, clock, "b", hooks=hooks_b, failure_threshold=1, recovery_timeout=60)
    a.call(Downstream())
    store.down = True
    clock.advance(1)
    fail(a, 1)  # a's local trip, pending, based on "no record"
    clock.advance(2)
    if meanwhile == "reset":
        b.reset()
    elif meanwhile == "trip":
        fail(b, 1)
    else:
        b.force_closed()
    stored = inner.read("db")
    clock.advance(5)
    store.down = False
    a.info()  # a reads the store again
    assert inner.read("db") == stored  # a's trip was not written over b's record
    assert hooks_a.seen == []
    assert a.info() == stored.to_circuit_info()
    if stored.state is CLOSED:
        assert a.call(Downstream())[0] == "ok"
    else:
        with pytest.raises(CircuitBreakerOpenError) as excinfo:
            a.call(Downstream())
        assert excinfo.value.circuit.opened_at == START + 3  # b's trip, not a's


def test_a_local_close_clears_the_pending_trip(inner, clock) -> None:
    store = FlakyStore(inner)
    hooks = Hooks()
    cb = breaker_on(
        store,
        clock,
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=1,
        store_backoff=100,
    )
    store.down = True
    fail(cb, 1)
    clock.advance(10)
    cb.call(Downstream())  # local probe closes locally
    store.down = False
    clock.advance(100)
    cb.call(Downstream())
    assert inner.read("db") is None  # nothing to replay: it recovered meanwhile
    assert hooks.seen == []


@pytest.mark.asyncio
async def test_async_resync_reports_the_pending_trip_once(inner, clock) -> None:
    store = FlakyStore(inner)
    seen: list[CircuitTransition] = []

    async def hook(transition: CircuitTransition) -> None:
        await asyncio.sleep(0)
        seen.append(transition)

    cb = CircuitBreaker(
        "db",
        store,
        on_transition=hook,
        config=CircuitBreakerConfig(failure_threshold=1, recovery_timeout=60, store_backoff=5),
        clock=clock,
        environment=Environment("a"),
    )

    async def broken() -> None:
        raise ConnectionError

    store.down = True
    with pytest.raises(ConnectionError):
        await cb.acall(broken)
    assert seen == []
    clock.advance(5)
    store.down = False
    with pytest.raises(CircuitBreakerOpenError):
        await cb.acall(broken)
    assert seen == [CircuitTransition("db", CLOSED, OPEN, START)]
    assert inner.read("db").state is OPEN


# ---------------------------------------------------------------- manual commands and info


@pytest.mark.parametrize("command", ["force_open", "force_closed", "reset"])
@pytest.mark.parametrize("failing", ["reads", "writes"])
def test_manual_commands_raise_when_the_store_is_down(inner, clock, command, failing) -> None:
    store = FlakyStore(inner)
    store.down = True
    store.fail_reads = failing == "reads"
    hooks = Hooks()
    cb = breaker_on(store, clock, hooks=hooks)
    with pytest.raises(
        CircuitBreakerPersistenceError,
        match=f"cannot change circuit 'db'.*could not be {'read' if failing == 'reads' else 'written'}",
    ):
        getattr(cb, command)()
    assert hooks.seen == []
    assert inner.read("db") is None


@pytest.mark.asyncio
@pytest.mark.parametrize("command", ["aforce_open", "aforce_closed", "areset"])
async def test_async_manual_commands_raise_when_the_store_is_down(inner, clock, command) -> None:
    store = FlakyStore(inner, "garbage")
    store.down = True
    cb = breaker_on(store, clock)
    with pytest.raises(CircuitBreakerPersistenceError, match="cannot change circuit 'db'"):
        await getattr(cb, command)()


def test_manual_commands_work_again_once_the_store_is_back(inner, clock) -> None:
    store = FlakyStore(inner)
    cb = breaker_on(store, clock)
    store.down = True
    with pytest.raises(CircuitBreakerPersistenceError):
        cb.force_open()
    store.down = False
    assert cb.force_open().state is OPEN
    assert inner.read("db").pinned is True


def test_info_falls_back_to_the_local_view_while_the_store_is_down(inner, clock) -> None:
    store = FlakyStore(inner)
    cb = breaker_on(store, clock, failure_threshold=1)
    store.down = True
    assert cb.info() == CircuitInfo("db", CLOSED, 0, None)
    fail(cb, 1)
    assert cb.info() == CircuitInfo("db", OPEN, 1, START)


def test_a_corrupt_record_in_a_real_store_is_a_fault_not_a_state(clock) -> None:
    """A store that hands back an undecodable record (raising from read) leaves the breaker working."""
    store = InMemoryPersistence(clock=clock)
    cb = breaker_on(store, clock, failure_threshold=1)
    store._records["db"] = CircuitRecord("db", HALF_OPEN, version=3, opened_at=START)  # no owner/lease
    downstream = Downstream()
    assert cb.call(downstream)[0] == "ok"
    fail(cb, 1)
    with pytest.raises(CircuitBreakerOpenError):
        cb.call(downstream)
    assert downstream.calls == 1


def test_reset_repairs_a_corrupt_record(clock) -> None:
    store = InMemoryPersistence(clock=clock)
    hooks = Hooks()
    cb = breaker_on(store, clock, hooks=hooks, failure_threshold=1)
    store._records["db"] = CircuitRecord("db", OPEN, version=7)  # OPEN without opened_at
    with pytest.raises(CircuitBreakerPersistenceError):
        cb.force_open()  # a command other than reset() does not touch it
    assert cb.reset() == CircuitInfo("db", CLOSED, 0, None)
    assert store.read("db").state is CLOSED
    fail(cb, 1)
    assert store.read("db").state is OPEN
    assert hooks.pairs == [("CLOSED", "OPEN")]
