"""Invariant 3 (one probe) and single trips under threads and asyncio tasks (DESIGN §4)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from breaker import CircuitBreaker, CircuitBreakerOpenError, Environment, FakeClock
from breaker.persistence import CircuitRecord

from .support import CLOSED, HALF_OPEN, OPEN, RecordingStore, fail, make_breaker

THREADS = 16


class Gauge:
    """Counts concurrent executions of the downstream (threads or tasks)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.max = 0
        self.runs = 0

    def __enter__(self) -> Gauge:
        with self.lock:
            self.now += 1
            self.runs += 1
            self.max = max(self.max, self.now)
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def hammer(calls: list[Callable[[], Any]]) -> list[str]:
    """Run each call in its own thread, released together; return 'ran' / 'open' / the error type."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> str:
        barrier.wait()
        try:
            call()
        except CircuitBreakerOpenError:
            return "open"
        except Exception as exc:
            return type(exc).__name__
        return "ran"

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def slow_downstream(gauge: Gauge, seconds: float = 0.05) -> Callable[[], str]:
    def downstream() -> str:
        with gauge:
            threading.Event().wait(seconds)
        return "ok"

    return downstream


# ---------------------------------------------------------------- threads


def test_threads_at_the_end_of_the_open_window_run_exactly_one_probe(clock, hooks) -> None:
    store = RecordingStore(clock=clock, op_delay=0.002)
    cb = make_breaker(
        store,
        clock,
        Environment("a"),
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=100,
    )
    fail(cb, 1)
    clock.advance(10)
    gauge = Gauge()
    downstream = slow_downstream(gauge)
    results = hammer([lambda: cb.call(downstream)] * THREADS)
    assert gauge.max == 1
    assert gauge.runs >= 1
    assert results.count("ran") == gauge.runs
    assert results.count("open") == THREADS - gauge.runs
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN")]
    assert store.read("db").state is HALF_OPEN


def test_threads_in_many_environments_elect_one_probe_owner(clock, hooks) -> None:
    store = RecordingStore(clock=clock, op_delay=0.002)
    first = make_breaker(
        store,
        clock,
        Environment("e0"),
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=100,
    )
    breakers = [first] + [first.with_environment(Environment(f"e{i}")) for i in range(1, THREADS)]
    fail(first, 1)
    for cb in breakers:
        cb.info()  # every environment caches the same OPEN record
    clock.advance(10)
    gauge = Gauge()
    downstream = slow_downstream(gauge)
    results = hammer([(lambda cb=cb: cb.call(downstream)) for cb in breakers])
    assert gauge.max == 1
    owner = store.read("db").half_open_owner
    ran = [cb.environment.id for cb, result in zip(breakers, results, strict=True) if result == "ran"]
    assert ran
    assert set(ran) == {owner}
    assert hooks.pairs.count(("OPEN", "HALF_OPEN")) == 1
    assert store.state_changes() == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN")]
    assert store.max_in_flight > 1  # the store really saw overlapping operations
    assert store.conflicts >= 1  # and the elections really raced


def test_concurrent_failures_in_one_environment_store_one_trip(clock, hooks) -> None:
    store = RecordingStore(clock=clock, op_delay=0.002)
    cb = make_breaker(store, clock, Environment("a"), hooks=hooks, failure_threshold=5)
    cb.info()

    def broken() -> None:
        threading.Event().wait(0.01)
        raise ConnectionError

    results = hammer([lambda: cb.call(broken)] * THREADS)
    assert set(results) <= {"ConnectionError", "open"}
    assert results.count("ConnectionError") >= 5
    assert hooks.pairs == [("CLOSED", "OPEN")]
    assert store.state_changes() == [("CLOSED", "OPEN")]
    assert len(store.history) == 1
    assert store.read("db").failure_count >= 5


def test_concurrent_failures_across_environments_store_one_trip(clock, hooks) -> None:
    store = RecordingStore(clock=clock, op_delay=0.002)
    first = make_breaker(store, clock, Environment("e0"), hooks=hooks, failure_threshold=2)
    breakers = [first] + [first.with_environment(Environment(f"e{i}")) for i in range(1, 8)]
    for cb in breakers:
        cb.info()

    def broken() -> None:
        raise ConnectionError

    calls = [(lambda cb=cb: cb.call(broken)) for cb in breakers for _ in range(2)]
    results = hammer(calls)
    assert results == ["ConnectionError"] * 16  # each environment's own two calls ran
    # every environment reached its threshold and tried to trip: one write won
    assert (store.writes, store.conflicts) == (8, 7)
    assert hooks.pairs == [("CLOSED", "OPEN")]
    assert len(store.history) == 1
    for cb in breakers:
        with pytest.raises(CircuitBreakerOpenError):
            cb.call(broken)  # and every environment adopted the stored trip


def test_threads_closing_with_probes_store_one_close(clock, hooks) -> None:
    store = RecordingStore(clock=clock, op_delay=0.001)
    cb = make_breaker(
        store,
        clock,
        Environment("a"),
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=3,
    )
    fail(cb, 1)
    clock.advance(10)
    gauge = Gauge()
    downstream = slow_downstream(gauge, 0.002)

    def keep_calling() -> None:
        for _ in range(30):
            try:
                cb.call(downstream)
            except CircuitBreakerOpenError:
                pass

    hammer([keep_calling] * 8)
    assert gauge.max <= 8
    assert store.read("db").state is CLOSED
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


class GatedStore(RecordingStore):
    """Holds the next read until ``release`` is set, to interleave a thread's read with a write."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.hold_next_read = False
        self.holding = threading.Event()
        self.release = threading.Event()

    def read(self, name: str) -> CircuitRecord | None:
        record = super().read(name)
        if self.hold_next_read:
            self.hold_next_read = False
            self.holding.set()
            assert self.release.wait(5)
        return record


def test_a_slow_read_does_not_undo_a_trip_made_meanwhile_in_the_same_environment(clock, hooks) -> None:
    """A read that started before this environment tripped must not make its view CLOSED again."""
    store = GatedStore(clock)
    env = Environment("a")
    cb = make_breaker(store, clock, env, hooks=hooks, failure_threshold=1, local_cache_max_age=5)
    ran: list[str] = []

    def slow_call() -> None:
        try:
            cb.call(lambda: ran.append("slow"))
        except CircuitBreakerOpenError:
            ran.append("slow call rejected")

    store.hold_next_read = True
    slow = threading.Thread(target=slow_call)
    slow.start()
    assert store.holding.wait(5)  # its read returned CLOSED and is held
    fail(cb, 1)  # this environment trips meanwhile (its own read, then the trip write)
    assert store.read("db").state is OPEN
    store.release.set()
    slow.join(5)
    # Either outcome is fine for the slow call itself (its read began before the trip)...
    assert len(ran) == 1
    # ...but afterwards the environment that tripped must not act on the older read.
    with pytest.raises(CircuitBreakerOpenError):
        cb.call(lambda: ran.append("after the trip"))
    assert "after the trip" not in ran
    assert hooks.pairs == [("CLOSED", "OPEN")]


# ---------------------------------------------------------------- asyncio


@pytest.mark.asyncio
async def test_many_tasks_at_the_end_of_the_open_window_run_one_probe(store, clock, hooks) -> None:
    cb = make_breaker(
        store,
        clock,
        Environment("a"),
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=1,
    )
    fail(cb, 1)
    clock.advance(10)
    gate = asyncio.Event()
    gauge = Gauge()

    async def probe() -> str:
        with gauge:
            for _ in range(5):
                await asyncio.sleep(0)  # hold the slot across several awaits
            await gate.wait()
        return "ok"

    tasks = [asyncio.create_task(cb.acall(probe)) for _ in range(50)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert gauge.now == 1  # the probe is in flight, holding the slot
    rejected = [task for task in tasks if task.done()]
    assert len(rejected) == 49
    assert all(isinstance(task.exception(), CircuitBreakerOpenError) for task in rejected)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results.count("ok") == 1
    assert gauge.max == 1
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
    assert await cb.acall(probe) == "ok"  # closed: calls run again


@pytest.mark.asyncio
async def test_cancelling_a_probe_frees_the_slot(store, clock, hooks) -> None:
    cb = make_breaker(
        store,
        clock,
        Environment("a"),
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=1,
    )
    fail(cb, 1)
    clock.advance(10)
    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(cb.acall(hangs))
    await started.wait()

    async def quick() -> str:
        return "ok"

    with pytest.raises(CircuitBreakerOpenError):
        await cb.acall(quick)  # the hanging probe holds the slot
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.read("db").state is HALF_OPEN  # a cancellation is no verdict
    assert cb.environment.view("db").probing is False
    assert await cb.acall(quick) == "ok"  # the next call is the probe
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


@pytest.mark.asyncio
async def test_timeout_around_a_probe_frees_the_slot(store, clock) -> None:
    cb = make_breaker(
        store, clock, Environment("a"), failure_threshold=1, recovery_timeout=10, success_threshold=1
    )
    fail(cb, 1)
    clock.advance(10)

    async def hangs() -> None:
        await asyncio.Event().wait()

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await cb.acall(hangs)
    assert store.read("db").state is HALF_OPEN

    async def quick() -> str:
        return "ok"

    assert await cb.acall(quick) == "ok"
    assert store.read("db").state is CLOSED


class YieldingStore(RecordingStore):
    """Async twins that yield to the event loop, so tasks interleave at every store operation."""

    async def aread(self, name: str) -> CircuitRecord | None:
        await asyncio.sleep(0)
        result = self.read(name)
        await asyncio.sleep(0)
        return result

    async def awrite(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        await asyncio.sleep(0)
        result = self.write(record, expected)
        await asyncio.sleep(0)
        return result


@pytest.mark.asyncio
async def test_tasks_in_many_environments_elect_one_probe(clock, hooks) -> None:
    store = YieldingStore(clock=clock)
    first = make_breaker(
        store,
        clock,
        Environment("e0"),
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=50,
    )
    breakers = [first] + [first.with_environment(Environment(f"e{i}")) for i in range(1, 10)]
    fail(first, 1)
    for cb in breakers:
        await cb.ainfo()
    clock.advance(10)
    gauge = Gauge()

    async def probe() -> str:
        with gauge:
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        return "ok"

    results = await asyncio.gather(
        *(cb.acall(probe) for cb in breakers for _ in range(5)), return_exceptions=True
    )
    assert gauge.max == 1
    assert results.count("ok") == gauge.runs >= 1
    assert all(r == "ok" or isinstance(r, CircuitBreakerOpenError) for r in results)
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN")]
    assert store.conflicts >= 1  # the elections really raced


@pytest.mark.asyncio
async def test_concurrent_async_failures_store_one_trip(clock, hooks) -> None:
    store = YieldingStore(clock=clock)
    first = make_breaker(store, clock, Environment("e0"), hooks=hooks, failure_threshold=3)
    breakers = [first] + [first.with_environment(Environment(f"e{i}")) for i in range(1, 6)]

    async def broken() -> None:
        await asyncio.sleep(0)
        raise ConnectionError

    results = await asyncio.gather(
        *(cb.acall(broken) for cb in breakers for _ in range(6)), return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError | CircuitBreakerOpenError) for r in results)
    assert hooks.pairs == [("CLOSED", "OPEN")]
    assert len(store.history) == 1


def test_threads_and_one_breaker_object_shared_by_decorated_functions(clock) -> None:
    """Two functions decorated by one breaker share the probe slot."""
    store = RecordingStore(clock=clock)
    cb: CircuitBreaker = make_breaker(
        store, clock, Environment("a"), failure_threshold=1, recovery_timeout=10, success_threshold=100
    )
    gauge = Gauge()

    @cb
    def one() -> str:
        with gauge:
            threading.Event().wait(0.03)
        return "one"

    @cb
    def two() -> str:
        with gauge:
            threading.Event().wait(0.03)
        return "two"

    fail(cb, 1)
    clock.advance(10)
    hammer([one, two] * 8)
    assert gauge.max == 1
    assert store.read("db").state is HALF_OPEN
    assert {CLOSED, OPEN, HALF_OPEN} >= {store.read("db").state}
