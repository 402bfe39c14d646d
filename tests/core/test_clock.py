"""DESIGN §6: the default clock follows freezegun and time-machine; SYSTEM_CLOCK.use() drives breakers."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from freezegun import freeze_time

from breaker import (
    SYSTEM_CLOCK,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    Environment,
    FakeClock,
)
from breaker.persistence import InMemoryPersistence

from .support import CLOSED, HALF_OPEN, OPEN, Downstream, Hooks, fail

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def real_system_clock() -> Iterator[None]:
    """Each test starts and ends with SYSTEM_CLOCK reading the time module."""
    previous = SYSTEM_CLOCK._override
    SYSTEM_CLOCK.restore()
    yield
    SYSTEM_CLOCK._override = previous


def default_clock_breaker(hooks: Hooks | None = None, **config: object) -> CircuitBreaker:
    """A breaker that reads SYSTEM_CLOCK (no clock= given), with its own store and environment."""
    return CircuitBreaker(
        "db",
        InMemoryPersistence(),
        on_transition=hooks,
        config=CircuitBreakerConfig(**config),  # type: ignore[arg-type]
        environment=Environment(),
    )


def view(cb: CircuitBreaker):
    return cb.environment.view(cb.name)


# ---------------------------------------------------------------- freezegun


@pytest.mark.parametrize("how", ["tick", "move_to"])
def test_freezegun_moves_the_default_clock_through_the_open_window(how: str) -> None:
    hooks = Hooks()
    cb = default_clock_breaker(hooks, failure_threshold=2, recovery_timeout=30, success_threshold=1)
    with freeze_time(T0) as frozen:
        assert SYSTEM_CLOCK.time() == T0.timestamp()
        fail(cb, 2)
        info = cb.info()
        assert (info.state, info.opened_at) == (OPEN, T0.timestamp())
        if how == "tick":
            frozen.tick(29.5)
        else:
            frozen.move_to(T0 + timedelta(seconds=29.5))
        with pytest.raises(CircuitBreakerOpenError) as excinfo:
            cb.call(Downstream())
        assert excinfo.value.retry_after == pytest.approx(0.5)
        if how == "tick":
            frozen.tick(timedelta(seconds=0.5))
        else:
            frozen.move_to(T0 + timedelta(seconds=30))
        downstream = Downstream()
        assert cb.call(downstream)[0] == "ok"  # the probe
        assert downstream.calls == 1
        assert cb.info().state is CLOSED
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]
    assert [t.opened_at for t in hooks.seen[:2]] == [T0.timestamp()] * 2


def test_freezegun_disables_the_fast_path_while_time_is_frozen() -> None:
    cb = default_clock_breaker()
    with freeze_time(T0):
        assert SYSTEM_CLOCK.realtime is False
        for _ in range(3):
            cb.call(Downstream())
        assert view(cb).closed_until == -math.inf
    assert SYSTEM_CLOCK.realtime is True
    cb.call(Downstream())
    assert math.isfinite(view(cb).closed_until)  # back on the fast path


def test_after_a_freeze_ends_a_view_is_not_fresh_for_decades() -> None:
    """Deadlines taken on freezegun's monotonic clock (~1.7e9) must not outlive the freeze."""
    a = default_clock_breaker(failure_threshold=1, local_cache_max_age=0)
    b = a.with_environment(Environment())
    with freeze_time(T0):
        b.call(Downstream())  # b reads the store under the frozen clock
    fail(a, 1)  # real time again: a trips
    downstream = Downstream()
    with pytest.raises(CircuitBreakerOpenError):
        b.call(downstream)  # b re-reads at once (local_cache_max_age=0)
    assert downstream.calls == 0


def test_moving_frozen_time_backwards_does_not_extend_freshness() -> None:
    a = default_clock_breaker(failure_threshold=1, local_cache_max_age=1)
    b = a.with_environment(Environment())
    with freeze_time(T0) as frozen:
        b.call(Downstream())  # b fresh until T0 + 1 (frozen monotonic)
        frozen.move_to(T0 - timedelta(seconds=100))
        fail(a, 1)
        downstream = Downstream()
        with pytest.raises(CircuitBreakerOpenError):
            b.call(downstream)  # not fresh for another 101 s
        assert downstream.calls == 0


# ---------------------------------------------------------------- time-machine


@pytest.mark.parametrize("how", ["shift", "move_to"])
def test_time_machine_moves_the_default_clock_through_the_open_window(how: str) -> None:
    hooks = Hooks()
    cb = default_clock_breaker(hooks, failure_threshold=1, recovery_timeout=30, success_threshold=2)
    with time_machine.travel(T0, tick=False) as traveller:
        assert SYSTEM_CLOCK.time() == T0.timestamp()
        fail(cb, 1)
        assert cb.info().opened_at == T0.timestamp()
        if how == "shift":
            traveller.shift(29)
        else:
            traveller.move_to(T0 + timedelta(seconds=29))
        with pytest.raises(CircuitBreakerOpenError) as excinfo:
            cb.call(Downstream())
        assert excinfo.value.retry_after == pytest.approx(1)
        if how == "shift":
            traveller.shift(1)
        else:
            traveller.move_to(T0 + timedelta(seconds=30))
        cb.call(Downstream())
        assert cb.info().state is HALF_OPEN
        record = cb.store.read("db")
        assert record.probe_lease_expiry == T0.timestamp() + 60  # 30 + probe_lease (=recovery_timeout)
        cb.call(Downstream())
        assert cb.info().state is CLOSED
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


def test_time_machine_travel_with_tick() -> None:
    cb = default_clock_breaker(failure_threshold=1, recovery_timeout=5)
    with time_machine.travel(T0) as traveller:
        fail(cb, 1)
        with pytest.raises(CircuitBreakerOpenError):
            cb.call(Downstream())
        traveller.shift(5.5)
        assert cb.call(Downstream())[0] == "ok"


# ---------------------------------------------------------------- SYSTEM_CLOCK.use


def test_system_clock_use_drives_breakers_defined_with_the_default_clock() -> None:
    hooks = Hooks()
    cb = default_clock_breaker(hooks, failure_threshold=1, recovery_timeout=30, success_threshold=1)
    fake = FakeClock(start=1_000_000.0)
    with SYSTEM_CLOCK.use(fake) as installed:
        assert installed is fake
        assert SYSTEM_CLOCK.time() == 1_000_000.0
        assert SYSTEM_CLOCK.realtime is False
        cb.call(Downstream())
        assert view(cb).closed_until == -math.inf  # no fast path while faked
        fail(cb, 1)
        assert cb.info().opened_at == 1_000_000.0
        fake.advance(29.9)
        with pytest.raises(CircuitBreakerOpenError):
            cb.call(Downstream())
        fake.advance(0.1)
        cb.call(Downstream())
        assert cb.info().state is CLOSED
        for _ in range(3):
            cb.call(Downstream())
        assert view(cb).closed_until == -math.inf
    assert SYSTEM_CLOCK.realtime is True
    assert SYSTEM_CLOCK.time() == pytest.approx(time.time(), abs=5)
    cb.call(Downstream())
    assert math.isfinite(view(cb).closed_until)  # fast path re-enabled after restore
    assert hooks.pairs == [("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"), ("HALF_OPEN", "CLOSED")]


def test_system_clock_use_nests_and_restore_goes_back_to_real_time() -> None:
    outer, inner = FakeClock(start=100.0), FakeClock(start=200.0)
    with SYSTEM_CLOCK.use(outer):
        with SYSTEM_CLOCK.use(inner):
            assert SYSTEM_CLOCK.time() == 200.0
        assert SYSTEM_CLOCK.time() == 100.0
    assert SYSTEM_CLOCK.time() == pytest.approx(time.time(), abs=5)
    SYSTEM_CLOCK.use(outer)  # already in effect without the with block
    assert SYSTEM_CLOCK.monotonic() == outer.monotonic()
    SYSTEM_CLOCK.restore()
    assert SYSTEM_CLOCK.realtime is True


def test_views_taken_under_a_fake_clock_re_read_after_restore() -> None:
    """A FakeClock's monotonic deadlines must not keep a view fresh once real time is back."""
    a = default_clock_breaker(failure_threshold=1, local_cache_max_age=0)
    b = a.with_environment(Environment())
    far_ahead = FakeClock(start=1_000_000.0)
    far_ahead.advance(10**9)  # monotonic far beyond the real one
    with SYSTEM_CLOCK.use(far_ahead):
        b.call(Downstream())
    fail(a, 1)
    with pytest.raises(CircuitBreakerOpenError):
        b.call(Downstream())


def test_fake_clock_moves_wall_and_monotonic_together() -> None:
    clock = FakeClock(start=50.0)
    mono = clock.monotonic()
    clock.advance(2.5)
    assert (clock.time(), clock.now(), clock.monotonic()) == (52.5, 52.5, mono + 2.5)
    clock.travel_to(40.0)  # wall back, monotonic stays
    assert (clock.time(), clock.monotonic()) == (40.0, mono + 2.5)
    clock.travel_to(45.0)
    assert (clock.time(), clock.monotonic()) == (45.0, mono + 7.5)
    assert FakeClock().time() == pytest.approx(time.time(), abs=5)
