"""Each transition of DESIGN §3, and invariants 1, 2, 4, 5 and 7 of §4, on a fake clock."""

from __future__ import annotations

import asyncio
import logging
import math

import pytest

from breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitInfo,
    CircuitTransition,
    Environment,
    FakeClock,
)

from .support import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    START,
    Downstream,
    Hooks,
    RecordingStore,
    fail,
    make_breaker,
)


def trip(cb, times: int) -> None:
    fail(cb, times)
    assert cb.info().state is OPEN


# ---------------------------------------------------------------- CLOSED -> OPEN


@pytest.mark.parametrize("threshold", [1, 2, 5])
def test_trips_after_exactly_failure_threshold_consecutive_failures(
    store, clock, env, hooks, threshold
) -> None:
    cb = make_breaker(store, clock, env, hooks=hooks, failure_threshold=threshold)
    fail(cb, threshold - 1)
    assert store.read("db") is None  # nothing written below the threshold
    assert hooks.seen == []
    downstream = Downstream()
    assert cb.call(downstream) == ("ok", (), {})  # still closed
    fail(cb, threshold - 1)  # the success reset the streak
    assert cb.info().state is CLOSED
    fail(cb, 1)
    record = store.read("db")
    assert record is not None
    assert (record.state, record.failure_count, record.opened_at) == (OPEN, threshold, START)
    assert hooks.seen == [CircuitTransition("db", CLOSED, OPEN, START)]


def test_the_tripping_call_reraises_its_own_exception(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=1)
    error = ConnectionError("the very one")

    def broken() -> None:
        raise error

    with pytest.raises(ConnectionError) as excinfo:
        cb.call(broken)
    assert excinfo.value is error
    assert store.read("db").state is OPEN


def test_success_between_failures_resets_the_streak(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=3)
    for _ in range(10):
        fail(cb, 2)
        cb.call(Downstream())
    assert cb.info().state is CLOSED
    fail(cb, 3)
    assert cb.info().state is OPEN


def test_failures_are_consecutive_per_environment(store, clock) -> None:
    a = make_breaker(store, clock, Environment("a"), failure_threshold=3)
    b = a.with_environment(Environment("b"))
    fail(a, 2)
    fail(b, 2)
    assert a.info().state is CLOSED
    fail(b, 1)
    assert a.info() == CircuitInfo("db", OPEN, 3, START)


# ---------------------------------------------------------------- OPEN: rejection


def test_open_circuit_rejects_with_info_and_retry_after(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=2, recovery_timeout=30)
    trip(cb, 2)
    downstream = Downstream()
    clock.advance(10)
    with pytest.raises(CircuitBreakerOpenError) as excinfo:
        cb.call(downstream)
    assert downstream.calls == 0
    error = excinfo.value
    assert error.circuit == CircuitInfo("db", OPEN, 2, START)
    assert error.retry_after == pytest.approx(20)
    assert "db" in str(error)
    clock.advance(19.5)
    with pytest.raises(CircuitBreakerOpenError) as excinfo:
        cb.call(downstream)
    assert excinfo.value.retry_after == pytest.approx(0.5)
    assert downstream.calls == 0


def test_on_circuit_open_gets_the_call_arguments_and_its_value_is_returned(store, clock, env) -> None:
    received: list[tuple] = []

    def fallback(*args: object, **kwargs: object) -> str:
        received.append((args, kwargs))
        return "queued"

    cb = make_breaker(store, clock, env, on_circuit_open=fallback, failure_threshold=1)
    fail(cb, 1)
    downstream = Downstream()
    assert cb.call(downstream, 1, "two", three=3) == "queued"
    assert downstream.calls == 0
    assert received == [((1, "two"), {"three": 3, "circuit": CircuitInfo("db", OPEN, 1, START)})]


def test_on_circuit_open_exception_propagates(store, clock, env) -> None:
    class Refused(Exception):
        pass

    def fallback(*args: object, circuit: CircuitInfo) -> None:
        raise Refused(circuit.name)

    cb = make_breaker(store, clock, env, on_circuit_open=fallback, failure_threshold=1)
    fail(cb, 1)
    with pytest.raises(Refused, match="db"):
        cb.call(Downstream())
    # the fallback's error is not a downstream failure: still open, same opened_at
    assert store.read("db").opened_at == START


def test_decorated_function_fallback_receives_positional_and_keyword_arguments(store, clock, env) -> None:
    def fallback(order: dict, *, priority: int = 0, circuit: CircuitInfo) -> tuple:
        return ("buffered", order, priority, circuit.state)

    cb = make_breaker(store, clock, env, on_circuit_open=fallback, failure_threshold=1)

    @cb
    def submit(order: dict, *, priority: int = 0) -> str:
        raise ConnectionError

    with pytest.raises(ConnectionError):
        submit({"id": 1})
    assert submit({"id": 2}, priority=7) == ("buffered", {"id": 2}, 7, OPEN)


# ---------------------------------------------------------------- OPEN -> HALF_OPEN -> CLOSED / OPEN


def test_after_recovery_timeout_one_probe_runs_and_success_threshold_closes(store, clock, env, hooks) -> None:
    cb = make_breaker(
        store, clock, env, hooks=hooks, failure_threshold=1, recovery_timeout=30, success_threshold=3
    )
    trip(cb, 1)
    downstream = Downstream()
    clock.advance(29.999)
    with pytest.raises(CircuitBreakerOpenError):
        cb.call(downstream)
    clock.advance(0.001)
    assert cb.call(downstream) == ("ok", (), {})
    assert downstream.calls == 1
    record = store.read("db")
    assert (record.state, record.half_open_owner) == (HALF_OPEN, env.id)
    assert record.probe_lease_expiry == pytest.approx(START + 60)
    assert hooks.seen[-1] == CircuitTransition("db", OPEN, HALF_OPEN, START)
    cb.call(downstream)
    assert store.read("db").state is HALF_OPEN  # 2 of 3
    cb.call(downstream)
    assert store.read("db").state is CLOSED
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
    assert hooks.seen[-1].opened_at is None
    assert downstream.calls == 3
    # closed again: normal service, and a fresh streak is needed to trip
    for _ in range(5):
        cb.call(downstream)
    assert cb.info() == CircuitInfo("db", CLOSED, 0, None)


def test_one_probe_failure_reopens_with_a_new_opened_at(store, clock, env, hooks) -> None:
    cb = make_breaker(
        store, clock, env, hooks=hooks, failure_threshold=1, recovery_timeout=30, success_threshold=3
    )
    trip(cb, 1)
    clock.advance(30)
    cb.call(Downstream())  # probe 1 ok
    clock.advance(2)
    fail(cb, 1)  # probe 2 fails
    reopened = START + 32
    assert cb.info() == CircuitInfo("db", OPEN, 0, reopened)
    assert hooks.seen[-1] == CircuitTransition("db", HALF_OPEN, OPEN, reopened)
    clock.advance(29)
    with pytest.raises(CircuitBreakerOpenError) as excinfo:
        cb.call(Downstream())
    assert excinfo.value.retry_after == pytest.approx(1)
    clock.advance(1)
    assert cb.call(Downstream())[0] == "ok"  # the next probe
    assert hooks.pairs[-1] == ("OPEN", "HALF_OPEN")


def test_probe_successes_must_be_consecutive(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=1, recovery_timeout=10, success_threshold=2)
    trip(cb, 1)
    clock.advance(10)
    cb.call(Downstream())  # 1 of 2
    fail(cb, 1)  # reopens
    clock.advance(10)
    cb.call(Downstream())  # 1 of 2 again (not 2 of 2)
    assert store.read("db").state is HALF_OPEN
    cb.call(Downstream())
    assert store.read("db").state is CLOSED


def test_a_call_made_inside_the_probe_is_rejected(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=1, recovery_timeout=10, success_threshold=1)
    trip(cb, 1)
    clock.advance(10)
    inner = Downstream()
    outcomes = []

    def probe() -> str:
        try:
            cb.call(inner)
        except CircuitBreakerOpenError as exc:
            outcomes.append(exc.circuit.state)
        return "probed"

    assert cb.call(probe) == "probed"
    assert inner.calls == 0
    assert outcomes == [HALF_OPEN]
    assert store.read("db").state is CLOSED


def test_half_open_circuit_rejects_other_environments(store, clock, hooks) -> None:
    a = make_breaker(store, clock, Environment("a"), hooks=hooks, failure_threshold=1, recovery_timeout=10)
    b = a.with_environment(Environment("b"))
    trip(a, 1)
    clock.advance(10)
    a.call(Downstream())  # a owns the probe
    downstream = Downstream()
    with pytest.raises(CircuitBreakerOpenError) as excinfo:
        b.call(downstream)
    assert downstream.calls == 0
    assert excinfo.value.circuit.state is HALF_OPEN
    assert excinfo.value.retry_after is None


# ---------------------------------------------------------------- exceptions that do not count


def test_handled_exceptions_only_count_listed_types(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=2, handled_exceptions=(TimeoutError, OSError))
    fail(cb, 5, ValueError)
    fail(cb, 5, KeyError)
    assert cb.info().state is CLOSED
    fail(cb, 1, TimeoutError)
    fail(cb, 3, ValueError)  # does not count, and does not end the streak either
    fail(cb, 1, ConnectionError)  # an OSError subclass
    assert cb.info().state is OPEN


def test_ignored_exceptions_never_count(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=2, ignored_exceptions=[KeyError])
    fail(cb, 10, KeyError)
    assert store.read("db") is None
    fail(cb, 2, LookupError)  # the base class of KeyError is not ignored
    assert cb.info().state is OPEN


def test_an_uncounted_exception_in_a_probe_changes_nothing(store, clock, env, hooks) -> None:
    cb = make_breaker(
        store,
        clock,
        env,
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=1,
        ignored_exceptions=KeyError,
    )
    trip(cb, 1)
    clock.advance(10)
    fail(cb, 1, KeyError)  # the probe raised, but it does not count
    assert store.read("db").state is HALF_OPEN
    fail(cb, 1, KeyError)  # the probe slot was freed: this is a probe again
    assert cb.call(Downstream())[0] == "ok"
    assert store.read("db").state is CLOSED
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


BASE_EXCEPTIONS = [KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit]


@pytest.mark.parametrize("error", BASE_EXCEPTIONS)
def test_base_exceptions_never_count_while_closed(store, clock, env, error) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=1)

    def interrupted() -> None:
        raise error()

    for _ in range(3):
        with pytest.raises(error):
            cb.call(interrupted)
    assert store.read("db") is None
    assert cb.call(Downstream())[0] == "ok"


@pytest.mark.parametrize("error", BASE_EXCEPTIONS)
def test_base_exceptions_never_count_even_when_listed_in_handled_bases(store, clock, env, error) -> None:
    # handled_exceptions=Exception: every Exception counts, a BaseException still does not
    cb = make_breaker(store, clock, env, failure_threshold=1, handled_exceptions=Exception)

    def interrupted() -> None:
        raise error()

    with pytest.raises(error):
        cb.call(interrupted)
    assert store.read("db") is None


@pytest.mark.parametrize("error", BASE_EXCEPTIONS)
def test_base_exception_in_a_probe_frees_the_slot(store, clock, env, hooks, error) -> None:
    cb = make_breaker(
        store, clock, env, hooks=hooks, failure_threshold=1, recovery_timeout=10, success_threshold=1
    )
    trip(cb, 1)
    clock.advance(10)

    def interrupted() -> None:
        raise error()

    with pytest.raises(error):
        cb.call(interrupted)
    assert store.read("db").state is HALF_OPEN  # neither closed nor reopened
    assert env.view("db").probing is False
    downstream = Downstream()
    cb.call(downstream)  # the next call is the probe
    assert downstream.calls == 1
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


# ---------------------------------------------------------------- hooks


def test_hooks_fire_exactly_once_per_stored_transition(store, clock, env, hooks) -> None:
    cb = make_breaker(
        store, clock, env, hooks=hooks, failure_threshold=2, recovery_timeout=5, success_threshold=2
    )
    fail(cb, 2)  # CLOSED -> OPEN
    clock.advance(5)
    fail(cb, 1)  # OPEN -> HALF_OPEN, HALF_OPEN -> OPEN
    clock.advance(5)
    cb.call(Downstream())  # OPEN -> HALF_OPEN
    cb.call(Downstream())  # HALF_OPEN -> CLOSED
    for _ in range(20):
        cb.call(Downstream())
        clock.advance(1)
    expected = [
        ("CLOSED", "OPEN"),
        ("OPEN", "HALF_OPEN"),
        ("HALF_OPEN", "OPEN"),
        ("OPEN", "HALF_OPEN"),
        ("HALF_OPEN", "CLOSED"),
    ]
    assert hooks.pairs == expected
    assert store.state_changes() == expected
    assert len(store.history) == len(expected)
    assert [t.opened_at for t in hooks.seen] == [START, START, START + 5, START + 5, None]


def test_hook_errors_are_logged_and_swallowed(store, clock, env, caplog) -> None:
    calls = []

    def bad_hook(transition: CircuitTransition) -> None:
        calls.append(transition)
        raise RuntimeError("hook exploded")

    cb = make_breaker(
        store, clock, env, hooks=bad_hook, failure_threshold=1, recovery_timeout=1, success_threshold=1
    )  # type: ignore[arg-type]
    error = ConnectionError("mine")

    def broken() -> None:
        raise error

    with caplog.at_level(logging.WARNING, logger="breaker"):
        with pytest.raises(ConnectionError) as excinfo:
            cb.call(broken)
        assert excinfo.value is error  # not the hook's RuntimeError
        clock.advance(1)
        assert cb.call(Downstream())[0] == "ok"  # probe + close, both hooks raise
    assert [(t.from_state, t.to_state) for t in calls] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]
    hook_logs = [r for r in caplog.records if "on_transition" in r.getMessage()]
    assert len(hook_logs) == 3
    assert all(r.levelno == logging.WARNING and r.exc_info is not None for r in hook_logs)
    assert "hook exploded" in caplog.text
    assert store.read("db").state is CLOSED


def test_async_hook_through_the_sync_api_is_run_not_dropped(store, clock, env) -> None:
    """An async on_transition hook (allowed for async functions) reached through the sync API."""
    seen = []

    async def hook(transition: CircuitTransition) -> None:
        await asyncio.sleep(0)
        seen.append((transition.from_state, transition.to_state))

    cb = make_breaker(store, clock, env, hooks=hook)  # type: ignore[arg-type]
    cb.force_open()
    cb.reset()
    assert seen == [(CLOSED, OPEN), (OPEN, CLOSED)]


# ---------------------------------------------------------------- time


def test_sub_second_recovery_timeout(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=1, recovery_timeout=0.25, success_threshold=1)
    trip(cb, 1)
    clock.advance(0.2)
    with pytest.raises(CircuitBreakerOpenError) as excinfo:
        cb.call(Downstream())
    assert excinfo.value.retry_after == pytest.approx(0.05)
    clock.advance(0.05)
    assert cb.call(Downstream())[0] == "ok"
    assert store.read("db").state is CLOSED


def test_sub_second_local_cache_max_age(store, clock) -> None:
    a = make_breaker(store, clock, Environment("a"), failure_threshold=1, local_cache_max_age=0.5)
    b = a.with_environment(Environment("b"))
    b.call(Downstream())
    fail(a, 1)
    clock.advance(0.4)
    assert b.call(Downstream())[0] == "ok"  # still inside b's 0.5 s cache
    clock.advance(0.1)
    with pytest.raises(CircuitBreakerOpenError):
        b.call(Downstream())


@pytest.mark.parametrize("max_age", [5, 1.5])
def test_a_second_environment_sees_the_trip_after_its_cache_age(store, clock, max_age) -> None:
    a = make_breaker(store, clock, Environment("a"), failure_threshold=1, local_cache_max_age=max_age)
    b = a.with_environment(Environment("b"))
    downstream = Downstream()
    b.call(downstream)  # b reads CLOSED at START, fresh until START + max_age
    clock.advance(0.5)
    fail(a, 1)  # a trips at START + 0.5
    steps = 0
    while clock.now() + 0.25 < START + max_age:
        clock.advance(0.25)
        b.call(downstream)  # stale but within the bound: allowed
        steps += 1
    assert steps >= 1
    clock.travel_to(START + max_age)
    runs = downstream.calls
    with pytest.raises(CircuitBreakerOpenError):
        b.call(downstream)
    assert downstream.calls == runs


def test_with_zero_cache_age_other_environments_see_the_trip_immediately(store, clock) -> None:
    a = make_breaker(store, clock, Environment("a"), failure_threshold=1, local_cache_max_age=0)
    b = a.with_environment(Environment("b"))
    downstream = Downstream()
    b.call(downstream)
    fail(a, 1)
    with pytest.raises(CircuitBreakerOpenError):
        b.call(downstream)
    assert downstream.calls == 1
    a.reset()
    b.call(downstream)  # and the reset, too
    assert downstream.calls == 2


def test_a_stale_environment_reaching_the_threshold_does_not_write_a_second_trip(store, clock, hooks) -> None:
    a = make_breaker(store, clock, Environment("a"), hooks=hooks, failure_threshold=2, local_cache_max_age=60)
    b = a.with_environment(Environment("b"))
    b.call(Downstream())  # b caches CLOSED for 60 s
    fail(a, 2)  # a trips
    clock.advance(1)
    fail(b, 2)  # b's view is stale: its trip write loses the compare-and-set
    assert hooks.pairs == [("CLOSED", "OPEN")]
    assert len(store.history) == 1
    assert store.read("db").opened_at == START  # not extended by b
    with pytest.raises(CircuitBreakerOpenError):
        b.call(Downstream())  # b adopted the stored trip


# ---------------------------------------------------------------- manual commands


def test_force_open_is_pinned_no_probe_until_reset(store, clock, env, hooks) -> None:
    cb = make_breaker(store, clock, env, hooks=hooks, recovery_timeout=10)
    assert cb.force_open() == CircuitInfo("db", OPEN, 0, START)
    record = store.read("db")
    assert record.pinned is True
    assert record.expires_at is None
    downstream = Downstream()
    for _ in range(5):
        clock.advance(100)
        with pytest.raises(CircuitBreakerOpenError) as excinfo:
            cb.call(downstream)
        assert excinfo.value.retry_after is None
    assert downstream.calls == 0
    assert cb.reset() == CircuitInfo("db", CLOSED, 0, None)
    assert cb.call(downstream)[0] == "ok"
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "CLOSED")]


def test_force_open_reaches_other_environments(store, clock, hooks) -> None:
    a = make_breaker(store, clock, Environment("a"), hooks=hooks, local_cache_max_age=5)
    b = a.with_environment(Environment("b"))
    b.call(Downstream())
    a.force_open()
    clock.advance(5)
    with pytest.raises(CircuitBreakerOpenError):
        b.call(Downstream())
    assert hooks.pairs == [("CLOSED", "OPEN")]  # b reported nothing: it only read


def test_force_closed_never_trips_until_reset(store, clock, env, hooks) -> None:
    cb = make_breaker(store, clock, env, hooks=hooks, failure_threshold=1)
    assert cb.force_closed() == CircuitInfo("db", CLOSED, 0, None)
    assert hooks.seen == []  # it was closed already: no transition
    fail(cb, 20)
    assert cb.info().state is CLOSED
    cb.reset()
    fail(cb, 1)  # the streak during the pin does not carry over: one fresh failure trips
    assert cb.info().state is OPEN
    assert hooks.pairs == [("CLOSED", "OPEN")]


def test_force_closed_closes_an_open_circuit(store, clock, env, hooks) -> None:
    cb = make_breaker(store, clock, env, hooks=hooks, failure_threshold=1)
    trip(cb, 1)
    cb.force_closed()
    assert cb.call(Downstream())[0] == "ok"
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "CLOSED")]


def test_reset_during_half_open_clears_the_probe(store, clock, hooks) -> None:
    a = make_breaker(store, clock, Environment("a"), hooks=hooks, failure_threshold=1, recovery_timeout=5)
    b = a.with_environment(Environment("b"))
    trip(a, 1)
    clock.advance(5)
    a.call(Downstream())
    b.reset()
    record = store.read("db")
    assert (record.state, record.half_open_owner, record.pinned) == (CLOSED, None, False)
    assert hooks.pairs[-1] == ("HALF_OPEN", "CLOSED")
    assert b.call(Downstream())[0] == "ok"


def test_force_open_ttl_expires_back_to_closed(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, local_cache_max_age=1)
    cb.force_open(ttl=10)
    assert store.read("db").expires_at == START + 10
    clock.advance(9.9)
    with pytest.raises(CircuitBreakerOpenError):
        cb.call(Downstream())
    clock.advance(1.1)
    assert store.read("db") is None
    assert cb.call(Downstream())[0] == "ok"


def test_force_closed_ttl_expires_back_to_normal_operation(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=1, local_cache_max_age=0)
    cb.force_closed(ttl=30)
    fail(cb, 3)
    assert cb.info().state is CLOSED
    clock.advance(30)
    fail(cb, 1)
    assert cb.info().state is OPEN


def test_reset_of_an_unpinned_record_keeps_a_finite_ttl(store, clock, env) -> None:
    cb = make_breaker(store, clock, env)
    cb.reset()
    expires_at = store.read("db").expires_at
    assert expires_at is not None
    assert math.isfinite(expires_at)
    assert expires_at > START


# ---------------------------------------------------------------- takeover and liveness (invariant 7)


def test_takeover_after_the_probe_lease_expires(store, clock, hooks) -> None:
    config = {"failure_threshold": 1, "recovery_timeout": 10, "success_threshold": 3, "probe_lease": 4}
    a = make_breaker(store, clock, Environment("a"), hooks=hooks, local_cache_max_age=1000, **config)
    b = a.with_environment(Environment("b"))
    trip(a, 1)
    clock.advance(10)
    a.call(Downstream())  # a probes once (1 of 3) and then its environment vanishes
    assert store.read("db").half_open_owner == "a"
    clock.advance(3.9)
    with pytest.raises(CircuitBreakerOpenError):
        b.call(Downstream())
    clock.advance(0.1)  # the lease has expired
    downstream = Downstream()
    b.call(downstream)
    assert downstream.calls == 1
    record = store.read("db")
    assert (record.state, record.half_open_owner) == (HALF_OPEN, "b")
    assert record.probe_lease_expiry == pytest.approx(START + 14 + 4)
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN")]  # a takeover is no transition
    b.call(downstream)
    b.call(downstream)
    assert store.read("db").state is CLOSED
    assert hooks.pairs[-1] == ("HALF_OPEN", "CLOSED")
    # liveness: closed within recovery_timeout + lease + success_threshold probes
    assert clock.now() <= START + 10 + 4


def test_a_former_probe_owner_cannot_close_after_a_takeover(store, clock, hooks) -> None:
    """Invariant 5 under clock skew: a's wall clock lags 3 s, so it still believes its lease holds."""
    config = CircuitBreakerConfig(
        failure_threshold=1, recovery_timeout=10, success_threshold=2, probe_lease=4, local_cache_max_age=1000
    )
    lagging = FakeClock(start=START - 3)
    b = make_breaker(
        store,
        clock,
        Environment("b"),
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=2,
        probe_lease=4,
        local_cache_max_age=0,
    )
    a = CircuitBreaker(
        "db", store, on_transition=hooks, config=config, clock=lagging, environment=Environment("a")
    )
    trip(b, 1)
    for c in (clock, lagging):
        c.advance(13)
    a.call(Downstream())  # a is elected at its START + 10 (lease until START + 14): 1 of 2
    assert store.read("db").half_open_owner == "a"
    for c in (clock, lagging):
        c.advance(1)
    b.call(Downstream())  # at b's START + 14 the lease has expired: b takes over, 1 of 2
    taken = store.read("db")
    assert taken.half_open_owner == "b"
    a.call(Downstream())  # a's view: its own probe, lease valid; its close must not be stored
    assert store.read("db") == taken
    assert ("HALF_OPEN", "CLOSED") not in hooks.pairs
    with pytest.raises(CircuitBreakerOpenError):
        a.call(Downstream())  # a lost the compare-and-set and re-read: b owns it
    b.call(Downstream())
    assert store.read("db").state is CLOSED
    assert hooks.pairs.count(("HALF_OPEN", "CLOSED")) == 1


def test_the_owner_renews_its_expired_lease_instead_of_probing_unleased(store, clock, hooks) -> None:
    """One probe: between its probes the owner's lease may run out; it renews it before probing."""
    a = make_breaker(
        store,
        clock,
        Environment("a"),
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=3,
        probe_lease=4,
    )
    b = a.with_environment(Environment("b"))
    trip(a, 1)
    clock.advance(10)
    a.call(Downstream())  # 1 of 3, lease until START + 14
    clock.advance(5)
    a.call(Downstream())  # lease expired: renewed (until START + 19), then 2 of 3
    record = store.read("db")
    assert (record.half_open_owner, record.probe_lease_expiry) == ("a", START + 19)
    with pytest.raises(CircuitBreakerOpenError):
        b.call(Downstream())  # so b cannot take over now
    a.call(Downstream())  # 3 of 3: the renewal kept the streak
    assert store.read("db").state is CLOSED
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


def test_an_owner_that_lost_its_lease_is_rejected(store, clock, hooks) -> None:
    a = make_breaker(
        store,
        clock,
        Environment("a"),
        hooks=hooks,
        failure_threshold=1,
        recovery_timeout=10,
        success_threshold=3,
        probe_lease=4,
        local_cache_max_age=1000,
    )
    b = a.with_environment(Environment("b"))
    trip(a, 1)
    clock.advance(10)
    a.call(Downstream())
    clock.advance(4)
    b.call(Downstream())  # takeover
    downstream = Downstream()
    with pytest.raises(CircuitBreakerOpenError):
        a.call(downstream)  # a's renewal loses the compare-and-set
    assert downstream.calls == 0
    assert store.read("db").half_open_owner == "b"


def test_a_stale_environment_cannot_undo_a_newer_transition(store, clock, hooks) -> None:
    """Invariant 5: a writer that read an older version loses; it never reopens a closed circuit."""
    config = {"failure_threshold": 1, "recovery_timeout": 10, "success_threshold": 1}
    a = make_breaker(store, clock, Environment("a"), hooks=hooks, local_cache_max_age=1000, **config)
    b = a.with_environment(Environment("b"))
    trip(a, 1)
    b.info()  # b caches OPEN (opened at START) for 1000 s
    clock.advance(10)
    a.call(Downstream())  # a probes and closes
    assert store.read("db").state is CLOSED
    version = store.read("db").version
    with pytest.raises(CircuitBreakerOpenError):
        b.call(Downstream())  # b's election over its stale OPEN record loses
    assert store.read("db").version == version
    assert store.read("db").state is CLOSED
    assert b.call(Downstream())[0] == "ok"  # and after re-reading b sees CLOSED


def test_two_environments_racing_the_election_elect_one(store, clock, hooks) -> None:
    a = make_breaker(store, clock, Environment("a"), hooks=hooks, failure_threshold=1, recovery_timeout=10)
    b = a.with_environment(Environment("b"))
    trip(a, 1)
    b.info()  # both views hold the same OPEN record
    clock.advance(10)
    ran = Downstream()
    a.call(ran)
    with pytest.raises(CircuitBreakerOpenError):
        b.call(ran)
    assert ran.calls == 1
    assert hooks.pairs.count(("OPEN", "HALF_OPEN")) == 1


# ---------------------------------------------------------------- write-free health (invariant 4)


@pytest.mark.parametrize("max_age", [5, 0.5, 2])
def test_healthy_calls_make_no_writes_and_one_read_per_cache_age(clock, max_age) -> None:
    store = RecordingStore(clock=clock)
    environments = [Environment(f"env-{i}") for i in range(3)]
    breakers = [make_breaker(store, clock, e, local_cache_max_age=max_age) for e in environments]
    downstream = Downstream()
    elapsed = 0.0
    for i in range(3000):
        breakers[i % 3].call(downstream)
        clock.advance(0.01)
        elapsed += 0.01
    assert downstream.calls == 3000
    assert store.writes == 0
    assert store.reads <= 3 * (math.ceil(elapsed / max_age) + 1)
    # ...and the cache does expire: each environment calls every 0.03 s
    assert store.reads >= 3 * math.floor(elapsed / (max_age + 0.03))


def test_failures_below_the_threshold_make_no_writes(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=3)
    for _ in range(100):
        fail(cb, 2)
        cb.call(Downstream())
    assert store.writes == 0
    assert store.reads == 1


def test_zero_cache_age_reads_once_per_call_and_never_writes(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, local_cache_max_age=0)
    for _ in range(50):
        cb.call(Downstream())
    assert (store.reads, store.writes) == (50, 0)


def test_system_clock_fast_path_is_write_free_and_read_once() -> None:
    store = RecordingStore()
    cb = make_breaker(store, None, Environment("fast"), local_cache_max_age=300)  # type: ignore[arg-type]
    downstream = Downstream()
    for _ in range(2000):
        cb.call(downstream)
    assert downstream.calls == 2000
    assert (store.reads, store.writes) == (1, 0)
    assert math.isfinite(cb.environment.view("db").closed_until)


@pytest.mark.parametrize("via", ["call", "decorator"])
def test_fast_path_counts_failures_and_trips(via: str) -> None:
    """On the real clock, a warm CLOSED view takes the fast path; it must still count and trip."""
    store = RecordingStore()
    hooks = Hooks()
    cb = make_breaker(
        store, None, Environment("fast"), hooks=hooks, failure_threshold=3, local_cache_max_age=300
    )  # type: ignore[arg-type]

    def downstream(fail: bool) -> str:
        if fail:
            raise ConnectionError
        return "ok"

    protected = cb(downstream)

    def run(fail: bool) -> None:
        try:
            cb.call(downstream, fail) if via == "call" else protected(fail)
        except ConnectionError:
            pass

    run(False)
    assert math.isfinite(cb.environment.view("db").closed_until)  # on the fast path now
    for _ in range(5):
        run(True)
        run(True)
        run(False)  # resets the streak on the fast path too
    assert store.read("db") is None
    for _ in range(3):
        run(True)
    assert store.read("db").state is OPEN
    assert hooks.pairs == [("CLOSED", "OPEN")]
    assert cb.environment.view("db").closed_until == -math.inf
    with pytest.raises(CircuitBreakerOpenError):
        cb.call(downstream, False) if via == "call" else protected(False)


@pytest.mark.parametrize("via", ["acall", "decorator"])
def test_async_fast_path_counts_failures_and_trips(via: str) -> None:
    store = RecordingStore()
    hooks = Hooks()
    cb = make_breaker(
        store, None, Environment("fast"), hooks=hooks, failure_threshold=3, local_cache_max_age=300
    )  # type: ignore[arg-type]

    async def downstream(fail: bool) -> str:
        await asyncio.sleep(0)
        if fail:
            raise ConnectionError
        return "ok"

    protected = cb(downstream)

    async def run(fail: bool) -> str | None:
        try:
            return await (cb.acall(downstream, fail) if via == "acall" else protected(fail))
        except ConnectionError:
            return None

    async def scenario() -> None:
        assert await run(False) == "ok"
        assert math.isfinite(cb.environment.view("db").closed_until)
        for _ in range(5):
            await run(True)
            await run(True)
            await run(False)
        assert store.read("db") is None
        for _ in range(3):
            await run(True)
        assert store.read("db").state is OPEN
        with pytest.raises(CircuitBreakerOpenError):
            await run(False)

    asyncio.run(scenario())
    assert hooks.pairs == [("CLOSED", "OPEN")]
