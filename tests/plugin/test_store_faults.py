"""store_faults: failing reads and writes, timeouts on the fake clock, corrupt records, restore."""

from __future__ import annotations

from .conftest import Runner

BREAKER = """
import pytest
from breaker import CircuitBreakerConfig, CircuitBreakerOpenError, circuit_breaker

CONFIG = CircuitBreakerConfig(failure_threshold=2, recovery_timeout=30, local_cache_max_age=0, store_backoff=5)

@circuit_breaker(name="payments", config=CONFIG)
def charge(api, amount):
    return api(amount)
"""


def test_faults_stay_inside_the_breaker(run: Runner) -> None:
    run.file(
        BREAKER
        + """
def test_failing_reads(downstream, store_faults):
    with store_faults.fail_reads():
        assert store_faults.active() == ["read: fail_reads()"]
        assert charge(downstream, 1) == "ok"  # the store error never reaches the caller
        assert charge(downstream, 1) == "ok"
    assert store_faults.active() == []
    assert store_faults.injected == 1  # then the breaker backed off the store
    assert store_faults.reads == 1

def test_failing_writes_trip_locally_then_store_the_trip(downstream, store_faults, circuit_clock,
                                                         circuit_transitions, circuit_store):
    store_faults.fail_writes(TimeoutError)
    downstream.outage()
    for _ in range(2):
        with pytest.raises(ConnectionError):
            charge(downstream, 1)
    with pytest.raises(CircuitBreakerOpenError):
        charge(downstream, 1)  # open as a local breaker
    assert circuit_store.read("payments") is None
    circuit_transitions.assert_path("payments", "CLOSED", "OPEN", local=True)
    store_faults.restore()
    circuit_clock.advance(5)  # past store_backoff: the next call reads the store and stores the trip
    with pytest.raises(CircuitBreakerOpenError):
        charge(downstream, 1)
    assert circuit_store.read("payments").state == "OPEN"
    circuit_transitions.assert_path("payments", "CLOSED", "OPEN")

def test_a_timeout_costs_one_call_only(downstream, store_faults, circuit_clock):
    start = circuit_clock.now()
    with store_faults.timeout(2.5):
        charge(downstream, 1)
        assert circuit_clock.now() == start + 2.5
        for _ in range(10):
            charge(downstream, 1)
        assert circuit_clock.now() == start + 2.5  # backed off: no further timeouts
    assert store_faults.injected == 1
    assert downstream.call_count == 11

def test_corrupt_record_is_a_store_fault(downstream, store_faults, circuit_store):
    with store_faults.corrupt():
        assert store_faults.store.read("payments").version == -1
        assert charge(downstream, 1) == "ok"
    assert store_faults.injected == 2

def test_until_restored_and_nested_blocks(store_faults):
    store_faults.fail_reads()
    with store_faults.corrupt():
        assert store_faults.active() == ["read: corrupt()"]
    assert store_faults.active() == ["read: fail_reads()"]
    store_faults.restore()
    assert store_faults.store.read("payments") is None

def test_bad_arguments(store_faults):
    with pytest.raises(TypeError, match="fail_reads... exc must be an exception class or instance .or None., got 3"):
        store_faults.fail_reads(3)
    with pytest.raises(ValueError, match="timeout... seconds must be a number >= 0, got -1"):
        store_faults.timeout(-1)
    with pytest.raises(ValueError, match="leaves nothing to time out"):
        store_faults.timeout(1, reads=False, writes=False)

@pytest.mark.asyncio
async def test_async_breakers_see_the_faults(downstream, store_faults):
    @circuit_breaker(name="search", config=CONFIG)
    async def search(query):
        return await downstream.acall(query)

    with store_faults.fail_reads():
        assert await search("q") == "ok"
    assert store_faults.injected == 1
"""
    )
    run().assert_outcomes(passed=7)


def test_faults_on_a_dynamodb_store(run: Runner) -> None:
    run.file(
        BREAKER
        + """
@pytest.mark.circuit_store("dynamodb")
def test_dynamodb(downstream, store_faults):
    assert store_faults.store.kind == "dynamodb"
    with store_faults.fail_writes():
        downstream.outage()
        for _ in range(2):
            with pytest.raises(ConnectionError):
                charge(downstream, 1)
    assert store_faults.inner.read("payments") is None
"""
    )
    run().assert_outcomes(passed=1)
