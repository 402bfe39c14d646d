"""Between tests, breakers defined at import time start clean, with no autouse fixture of the user's."""

from __future__ import annotations

from .conftest import Runner


def test_import_time_breakers_start_every_test_clean(run: Runner) -> None:
    run.file(
        """
import pytest
from breaker import SYSTEM_CLOCK, CircuitBreakerConfig, CircuitBreakerOpenError, FakeClock, circuit_breaker
from breaker.environment import DEFAULT_ENVIRONMENT
from breaker.persistence import InMemoryPersistence
from breaker.persistence.memory import default_store, use_default_store

calls = []

@circuit_breaker(name="payments", config=CircuitBreakerConfig(failure_threshold=2))
def charge(amount):
    calls.append(amount)
    raise ConnectionError("down")

def trip_and_leak():
    for _ in range(2):
        with pytest.raises(ConnectionError):
            charge(1)
    with pytest.raises(CircuitBreakerOpenError):
        charge(1)
    SYSTEM_CLOCK.use(FakeClock(start=0))   # never undone by the test
    use_default_store(InMemoryPersistence())  # never undone by the test either

@pytest.mark.parametrize("round", range(3))
def test_trips_from_scratch(round):
    assert SYSTEM_CLOCK.realtime
    assert default_store().names() == []
    assert DEFAULT_ENVIRONMENT.view("payments").failures == 0
    trip_and_leak()

def test_one_failure_does_not_trip_after_a_tripping_test():
    with pytest.raises(ConnectionError):
        charge(1)
    assert charge.circuit_breaker.state == "CLOSED"
"""
    )
    run().assert_outcomes(passed=4)
    run("-k", "test_one").assert_outcomes(passed=1, deselected=3)


def test_powertools_counters_and_stores_are_reset(run: Runner) -> None:
    run.file(
        """
import pytest
from aws_lambda_powertools.utilities.circuit_breaker import CircuitBreakerConfig, circuit_breaker
from aws_lambda_powertools.utilities.circuit_breaker import base
from pytest_circuitbreaker.powertools import InMemoryPowertoolsPersistence

store = InMemoryPowertoolsPersistence()  # at import time, as production code would

@circuit_breaker(name="pt", persistence_store=store, config=CircuitBreakerConfig(failure_threshold=2))
def call():
    raise ConnectionError("down")

@pytest.mark.parametrize("round", range(2))
def test_starts_clean(round):
    assert base._LOCAL_FAILURES.get("pt", 0) == 0
    assert store.get_state("pt").state == "CLOSED"
    for _ in range(2):
        with pytest.raises(ConnectionError):
            call()
    assert store.get_state("pt").state == "OPEN"
"""
    )
    run().assert_outcomes(passed=2)
