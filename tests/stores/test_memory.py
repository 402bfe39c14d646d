from __future__ import annotations

import pytest

from breaker.clock import FakeClock
from breaker.persistence import InMemoryPersistence

from .contract import StoreContract


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1_700_000_000.0)


@pytest.fixture
def store(clock: FakeClock) -> InMemoryPersistence:
    return InMemoryPersistence(clock=clock)


class TestInMemoryStore(StoreContract):
    pass
