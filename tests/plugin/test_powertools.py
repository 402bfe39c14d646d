"""Powertools' circuit breaker (3.37) with downstream, circuit_clock and circuit_transitions."""

from __future__ import annotations

import pytest

from .conftest import Runner

pytest.importorskip("aws_lambda_powertools.utilities.circuit_breaker")

POWERTOOLS = """
import pytest
from aws_lambda_powertools.utilities.circuit_breaker import (
    CircuitBreakerConfig, CircuitBreakerOpenError, circuit_breaker,
)
from pytest_circuitbreaker import record_transition
from pytest_circuitbreaker.powertools import InMemoryPowertoolsPersistence

class PaymentsApi:
    def charge(self, amount):
        raise AssertionError("the real API is not called in tests")

api = PaymentsApi()

@circuit_breaker(
    name="payments",
    persistence_store=InMemoryPowertoolsPersistence(),
    on_transition=record_transition,
    config=CircuitBreakerConfig(failure_threshold=3, recovery_timeout=30, success_threshold=1),
)
def charge(amount):
    return api.charge(amount)
"""


def test_powertools_trip_time_travel_recover(run: Runner) -> None:
    run.file(
        POWERTOOLS
        + """
@pytest.mark.circuit_clock(freeze_wall_time=True)
def test_trips_and_recovers(downstream, circuit_clock, circuit_transitions, monkeypatch):
    monkeypatch.setattr(api, "charge", downstream)
    downstream.fail(3)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            charge(10)
    with pytest.raises(CircuitBreakerOpenError):
        charge(10)
    assert downstream.call_count == 3
    circuit_clock.past_open_window(charge)  # reads Powertools' config and store through the decorator
    assert charge(10) == "ok"
    circuit_transitions.assert_path("payments", "CLOSED", "OPEN", "HALF_OPEN", "CLOSED")
    assert circuit_transitions.calls_to_open("payments") == 3

@pytest.mark.circuit_clock(freeze_wall_time=True)
def test_by_name_and_the_hook_fixture(downstream, circuit_clock, circuit_transitions, monkeypatch):
    @circuit_breaker(
        name="search",
        persistence_store=InMemoryPowertoolsPersistence(),
        on_transition=circuit_transitions.hook,
        config=CircuitBreakerConfig(failure_threshold=1, recovery_timeout=60),
    )
    def search(query):
        return downstream(query)

    downstream.fail(1)
    with pytest.raises(ConnectionError):
        search("q")
    circuit_clock.past_open_window("search", recovery_timeout=60)  # opened_at from the recorded transition
    assert search("q") == "ok"
    circuit_transitions.assert_path("search", "CLOSED", "OPEN", "HALF_OPEN")

def test_without_frozen_wall_time_powertools_does_not_move(downstream, circuit_clock, monkeypatch):
    monkeypatch.setattr(api, "charge", downstream)
    downstream.fail(3)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            charge(10)
    circuit_clock.past_open_window(charge)
    with pytest.raises(CircuitBreakerOpenError):
        charge(10)  # Powertools reads datetime.now(), which only freeze_wall_time moves
"""
    )
    run().assert_outcomes(passed=3)


def test_in_memory_powertools_store_elects_one_probe(run: Runner) -> None:
    run.file(
        """
from aws_lambda_powertools.utilities.circuit_breaker import CircuitBreakerConfig
from pytest_circuitbreaker.powertools import InMemoryPowertoolsPersistence

def test_election():
    store = InMemoryPowertoolsPersistence()
    store.configure(CircuitBreakerConfig(recovery_timeout=30), "db")
    assert not store.try_acquire_half_open("db", "a", opened_at=0)  # no record: nothing to elect
    store.save_open("db", failure_count=5, opened_at=100)
    assert not store.try_acquire_half_open("db", "a", opened_at=99)  # stale opened_at
    assert store.try_acquire_half_open("db", "a", opened_at=100)
    assert not store.try_acquire_half_open("db", "b", opened_at=100)  # already owned
    store.save_reopen("db", opened_at=200)
    record = store._get_record("db")
    assert (record.state, record.opened_at, record.half_open_owner) == ("OPEN", 200, None)
    store.save_closed("db")
    assert store._get_record("db").state == "CLOSED" and store._get_record("db").opened_at is None
"""
    )
    run().assert_outcomes(passed=1)
