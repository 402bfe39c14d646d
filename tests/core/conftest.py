from __future__ import annotations

import pytest

from breaker import Environment, FakeClock

from .support import START, Hooks, RecordingStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


@pytest.fixture
def store(clock: FakeClock) -> RecordingStore:
    return RecordingStore(clock=clock)


@pytest.fixture
def env() -> Environment:
    return Environment("env-a")


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()
