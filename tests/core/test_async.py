"""async def functions are really protected (Powertools 3.37 lets their failures pass as successes)."""

from __future__ import annotations

import asyncio
import functools
import inspect
from unittest import mock

import pytest

from breaker import (
    CircuitBreakerConfigError,
    CircuitBreakerOpenError,
    CircuitInfo,
    CircuitTransition,
    Environment,
    circuit_breaker,
)

from .support import CLOSED, HALF_OPEN, OPEN, START, make_breaker


@pytest.mark.asyncio
async def test_awaited_failures_count_and_trip(store, clock, env, hooks) -> None:
    cb = make_breaker(store, clock, env, hooks=hooks, failure_threshold=3)
    calls = 0

    @cb
    async def fetch() -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise ConnectionError("down")

    for _ in range(3):
        with pytest.raises(ConnectionError):
            await fetch()
    assert store.read("db").state is OPEN
    assert hooks.seen == [CircuitTransition("db", CLOSED, OPEN, START)]
    with pytest.raises(CircuitBreakerOpenError) as excinfo:
        await fetch()
    assert calls == 3
    assert excinfo.value.circuit == CircuitInfo("db", OPEN, 3, START)
    assert excinfo.value.retry_after == pytest.approx(30)


@pytest.mark.asyncio
async def test_async_success_resets_the_streak_and_returns_the_value(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=2)
    outcomes = iter(["fail", "ok", "fail", "ok", "fail"])

    @cb
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        if next(outcomes) == "fail":
            raise TimeoutError
        return x * 2

    for expected in [None, 42, None, 42, None]:
        if expected is None:
            with pytest.raises(TimeoutError):
                await fetch(21)
        else:
            assert await fetch(21) == expected
    assert store.read("db") is None  # never two in a row


@pytest.mark.asyncio
async def test_async_full_cycle_with_probe(store, clock, env, hooks) -> None:
    cb = make_breaker(
        store, clock, env, hooks=hooks, failure_threshold=1, recovery_timeout=5, success_threshold=2
    )
    healthy = False

    @cb
    async def fetch() -> str:
        await asyncio.sleep(0)
        if not healthy:
            raise ConnectionError
        return "ok"

    with pytest.raises(ConnectionError):
        await fetch()
    clock.advance(5)
    with pytest.raises(ConnectionError):
        await fetch()  # failed probe: reopens
    clock.advance(5)
    healthy = True
    assert await fetch() == "ok"
    assert store.read("db").state is HALF_OPEN
    assert await fetch() == "ok"
    assert hooks.pairs == [
        ("CLOSED", "OPEN"),
        ("OPEN", "HALF_OPEN"),
        ("HALF_OPEN", "OPEN"),
        ("OPEN", "HALF_OPEN"),
        ("HALF_OPEN", "CLOSED"),
    ]


@pytest.mark.asyncio
async def test_async_on_circuit_open_is_awaited(store, clock, env) -> None:
    async def fallback(order: dict, *, circuit: CircuitInfo) -> tuple:
        await asyncio.sleep(0)
        return ("queued", order, circuit.state)

    cb = make_breaker(store, clock, env, on_circuit_open=fallback, failure_threshold=1)

    @cb
    async def submit(order: dict) -> str:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        await submit({"id": 1})
    assert await submit({"id": 2}) == ("queued", {"id": 2}, OPEN)


@pytest.mark.asyncio
async def test_async_on_circuit_open_exception_propagates(store, clock, env) -> None:
    async def fallback(*args: object, circuit: CircuitInfo) -> None:
        await asyncio.sleep(0)
        raise LookupError("no fallback either")

    cb = make_breaker(store, clock, env, on_circuit_open=fallback, failure_threshold=1)

    @cb
    async def submit() -> str:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        await submit()
    with pytest.raises(LookupError, match="no fallback either"):
        await submit()


@pytest.mark.asyncio
async def test_sync_on_circuit_open_works_with_async_functions(store, clock, env) -> None:
    def fallback(*args: object, circuit: CircuitInfo) -> str:
        return f"fallback for {args} ({circuit.state})"

    cb = make_breaker(store, clock, env, on_circuit_open=fallback, failure_threshold=1)

    @cb
    async def submit(x: int) -> str:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        await submit(1)
    assert await submit(2) == "fallback for (2,) (OPEN)"


@pytest.mark.asyncio
async def test_async_on_transition_hooks_are_awaited(store, clock, env) -> None:
    seen: list[tuple[str, str]] = []

    async def hook(transition: CircuitTransition) -> None:
        await asyncio.sleep(0)
        seen.append((transition.from_state.value, transition.to_state.value))

    cb = make_breaker(
        store, clock, env, hooks=hook, failure_threshold=1, recovery_timeout=1, success_threshold=1
    )  # type: ignore[arg-type]

    @cb
    async def fetch(fail: bool) -> str:
        if fail:
            raise ConnectionError
        return "ok"

    with pytest.raises(ConnectionError):
        await fetch(True)
    assert seen == [("CLOSED", "OPEN")]
    clock.advance(1)
    assert await fetch(False) == "ok"
    assert seen == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
    await cb.aforce_open()
    await cb.areset()
    assert seen[-2:] == [("CLOSED", "OPEN"), ("OPEN", "CLOSED")]


@pytest.mark.asyncio
async def test_async_hook_errors_are_logged_and_swallowed(store, clock, env, caplog) -> None:
    async def hook(transition: CircuitTransition) -> None:
        await asyncio.sleep(0)
        raise RuntimeError("async hook exploded")

    cb = make_breaker(store, clock, env, hooks=hook, failure_threshold=1)  # type: ignore[arg-type]

    @cb
    async def fetch() -> None:
        raise ConnectionError("mine")

    with pytest.raises(ConnectionError, match="mine"):
        await fetch()
    assert "async hook exploded" in caplog.text
    assert store.read("db").state is OPEN


@pytest.mark.asyncio
async def test_sync_api_inside_a_running_loop_schedules_an_async_hook(store, clock, env) -> None:
    seen: list[CircuitTransition] = []

    async def hook(transition: CircuitTransition) -> None:
        seen.append(transition)

    cb = make_breaker(store, clock, env, hooks=hook)  # type: ignore[arg-type]
    cb.force_open()  # sync call from inside the loop: the hook cannot run to completion here
    for _ in range(3):
        await asyncio.sleep(0)
    assert [(t.from_state, t.to_state) for t in seen] == [(CLOSED, OPEN)]


@pytest.mark.asyncio
async def test_acall_protects_an_async_function(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=1)

    async def broken() -> None:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        await cb.acall(broken)
    with pytest.raises(CircuitBreakerOpenError):
        await cb.acall(broken)


@pytest.mark.asyncio
async def test_async_store_default_twins_run_in_a_thread(clock, env) -> None:
    """A store with only sync primitives works from async code (CircuitStore's to_thread twins)."""
    import threading

    from breaker.persistence import CircuitRecord, CircuitStore

    class SyncOnly(CircuitStore):
        def __init__(self) -> None:
            self.records: dict[str, CircuitRecord] = {}
            self.threads: set[int] = set()

        def read(self, name: str) -> CircuitRecord | None:
            self.threads.add(threading.get_ident())
            return self.records.get(name)

        def write(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
            self.threads.add(threading.get_ident())
            current = self.records.get(record.name)
            if (current.version if current else 0) != (expected.version if expected else 0):
                return False
            self.records[record.name] = record
            return True

        def delete(self, name: str) -> None:
            self.records.pop(name, None)

    store = SyncOnly()
    cb = make_breaker(store, clock, env, failure_threshold=1)  # type: ignore[arg-type]

    async def broken() -> None:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        await cb.acall(broken)
    assert store.records["db"].state is OPEN
    assert threading.get_ident() not in store.threads  # the loop's thread never blocked on the store


# ---------------------------------------------------------------- what is detected as async


def test_sync_function_with_async_on_circuit_open_is_refused(store, clock, env) -> None:
    async def fallback(*args: object, circuit: CircuitInfo) -> str:
        return "never awaited"

    cb = make_breaker(store, clock, env, on_circuit_open=fallback)

    def fetch() -> int:
        return 1

    with pytest.raises(CircuitBreakerConfigError, match=r"on_circuit_open=.*fallback.*is async.*fetch"):
        cb(fetch)


def test_sync_function_with_async_on_transition_is_refused(store, clock, env) -> None:
    async def hook(transition: CircuitTransition) -> None:
        pass

    with pytest.raises(CircuitBreakerConfigError, match=r"on_transition=.*hook.*is async"):

        @circuit_breaker("db", store, on_transition=hook, clock=clock, environment=env)
        def fetch() -> int:
            return 1


def test_generators_are_refused(store, clock, env) -> None:
    def rows():
        yield 1

    with pytest.raises(CircuitBreakerConfigError, match=r"generator function.*rows"):
        circuit_breaker("db", store, clock=clock, environment=env)(rows)


def test_async_generators_are_refused(store, clock, env) -> None:
    async def rows():
        yield 1

    with pytest.raises(CircuitBreakerConfigError, match=r"generator function.*rows"):
        circuit_breaker("db", store, clock=clock, environment=env)(rows)


def test_generator_methods_and_partials_are_refused(store, clock, env) -> None:
    class Repo:
        def rows(self, n: int):
            yield from range(n)

    cb = make_breaker(store, clock, env)
    with pytest.raises(CircuitBreakerConfigError, match="generator"):
        cb(Repo().rows)
    with pytest.raises(CircuitBreakerConfigError, match="generator"):
        cb(functools.partial(Repo().rows, 3))


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


class AsyncCallable:
    async def __call__(self, x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x


class AsyncMethods:
    async def double(self, x: int) -> int:
        return 2 * x

    @staticmethod
    async def static(x: int) -> int:
        return 2 * x

    @classmethod
    async def klass(cls, x: int) -> int:
        return 2 * x


class InheritsAsyncCall(AsyncCallable):
    pass


def _marked(x: int):
    return _double(x)


ASYNC_CALLABLES = {
    "coroutine function": _double,
    "partial": functools.partial(_double),
    "nested partial": functools.partial(functools.partial(_double)),
    "async __call__": AsyncCallable(),
    "inherited async __call__": InheritsAsyncCall(),
    "bound async method": AsyncMethods().double,
    "async staticmethod": AsyncMethods.static,
    "async classmethod": AsyncMethods.klass,
    "partial of a bound method": functools.partial(AsyncMethods().double),
}
if hasattr(inspect, "markcoroutinefunction"):  # Python 3.12+
    ASYNC_CALLABLES["markcoroutinefunction"] = inspect.markcoroutinefunction(_marked)


@pytest.mark.parametrize("fn", list(ASYNC_CALLABLES.values()), ids=list(ASYNC_CALLABLES))
@pytest.mark.asyncio
async def test_async_callables_are_detected_and_their_failures_count(store, clock, env, fn) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=1)
    wrapped = cb(fn)
    assert inspect.iscoroutinefunction(wrapped)
    assert await wrapped(21) == 42
    with pytest.raises(TypeError):
        await wrapped("x", "too many")  # an awaited failure: counted
    assert store.read("db").state is OPEN
    with pytest.raises(CircuitBreakerOpenError):
        await wrapped(21)


@pytest.mark.asyncio
async def test_async_mock_is_detected_as_async(store, clock, env) -> None:
    fn = mock.AsyncMock(side_effect=ConnectionError)
    wrapped = make_breaker(store, clock, env, failure_threshold=1)(fn)
    with pytest.raises(ConnectionError):
        await wrapped()
    assert store.read("db").state is OPEN


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (len, ("abc",)),
        (functools.partial(int, base=2), ("101",)),
        (dict, ()),
        (lambda: 1, ()),
        (mock.Mock(return_value=1), ()),
        (mock.MagicMock(return_value=1), ()),
    ],
    ids=["builtin", "partial of builtin", "class", "lambda", "Mock", "MagicMock"],
)
def test_sync_callables_stay_sync(store, clock, env, fn, args) -> None:
    wrapped = make_breaker(store, clock, env)(fn)
    assert not inspect.iscoroutinefunction(wrapped)
    result = wrapped(*args)
    assert not inspect.isawaitable(result)
    assert result == fn(*args)


def test_async_function_gets_an_async_wrapper_per_environment(store, clock) -> None:
    """Each environment's breaker protects async functions independently of other environments."""
    a = make_breaker(
        store, clock, Environment("a"), failure_threshold=1, recovery_timeout=1000, local_cache_max_age=60
    )
    b = a.with_environment(Environment("b"))

    async def broken() -> None:
        raise ConnectionError

    async def ok() -> str:
        return "ok"

    assert asyncio.run(b.acall(ok)) == "ok"  # b caches CLOSED for 60 s
    with pytest.raises(ConnectionError):
        asyncio.run(a.acall(broken))
    with pytest.raises(CircuitBreakerOpenError):
        asyncio.run(a.acall(ok))
    assert asyncio.run(b.acall(ok)) == "ok"  # stale within its bound
    clock.advance(60)
    with pytest.raises(CircuitBreakerOpenError):
        asyncio.run(b.acall(ok))
