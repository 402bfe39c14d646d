from __future__ import annotations

import pytest

from breaker.clock import FakeClock
from breaker.persistence import InMemoryPersistence

from .contract import FakeClockExpiryContract


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def store(clock: FakeClock) -> InMemoryPersistence:
    return InMemoryPersistence(clock=clock)


class TestInMemoryStore(FakeClockExpiryContract):
    pass


def test_reset_repairs_a_corrupt_record(store: InMemoryPersistence, clock: FakeClock) -> None:
    from breaker import CircuitBreaker, CircuitBreakerPersistenceError, CircuitState, Environment
    from breaker.persistence import CircuitRecord

    # A record no decoder accepts (HALF_OPEN without an owner or lease).
    store._records["db"] = CircuitRecord("db", CircuitState.HALF_OPEN, version=3, opened_at=1.0)
    breaker = CircuitBreaker("db", store, clock=clock, environment=Environment())
    with pytest.raises(CircuitBreakerPersistenceError):
        breaker.force_open()
    info = breaker.reset()
    assert info.state is CircuitState.CLOSED
    stored = store.read("db")
    assert stored is not None
    assert stored.version == 1
    assert stored.state is CircuitState.CLOSED
