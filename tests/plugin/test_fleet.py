"""circuit_fleet: environments with their own local views, one store, one clock, fleet metrics."""

from __future__ import annotations

import shutil

import pytest

from .conftest import Runner

BREAKER = """
import pytest
from breaker import CircuitBreaker, CircuitBreakerConfig, CircuitBreakerOpenError, circuit_breaker

CONFIG = CircuitBreakerConfig(failure_threshold=3, recovery_timeout=30, success_threshold=1, local_cache_max_age=5)

@circuit_breaker(name="payments", config=CONFIG)
def charge(api, amount):
    return api(amount)

def attempt(fleet, env, *args):
    try:
        return fleet.call(env, charge, *args)
    except Exception as exc:
        return type(exc).__name__
"""


def test_environments_keep_their_own_views_and_share_the_store(run: Runner) -> None:
    run.file(
        BREAKER
        + """
def test_fleet(circuit_fleet, circuit_clock, circuit_store, downstream, circuit_transitions):
    assert [env.id for env in circuit_fleet] == ["env-0", "env-1", "env-2"]
    downstream.outage()
    # Two failures in each environment: no environment reaches its threshold of 3.
    for env in (0, 1, 2, 0, 1, 2):
        assert attempt(circuit_fleet, env, downstream, 1) == "ConnectionError"
    assert circuit_store.read("payments") is None
    # A third failure in env-0 trips the shared circuit.
    assert attempt(circuit_fleet, 0, downstream, 1) == "ConnectionError"
    assert circuit_store.read("payments").state == "OPEN"
    assert attempt(circuit_fleet, 0, downstream, 1) == "CircuitBreakerOpenError"
    # env-1's view is still fresh (local_cache_max_age=5): it calls the downstream once more.
    assert attempt(circuit_fleet, 1, downstream, 1) == "ConnectionError"
    circuit_clock.advance(5)
    assert attempt(circuit_fleet, 1, downstream, 1) == "CircuitBreakerOpenError"
    assert attempt(circuit_fleet, 2, downstream, 1) == "CircuitBreakerOpenError"
    # Past the window one environment wins the probe; the others are rejected meanwhile.
    downstream.recover()
    circuit_clock.past_open_window(charge)
    assert attempt(circuit_fleet, 2, downstream, 1) == "ok"
    circuit_transitions.assert_path("payments", "CLOSED", "OPEN", "HALF_OPEN", "CLOSED")
    assert [t.environment for t in circuit_transitions] == ["env-0", "env-2", "env-2"]

    metrics = circuit_fleet.metrics()
    assert metrics.invocations == 12
    assert metrics.downstream_calls == 9
    assert metrics.rejections == 3 and metrics.fallbacks == 0
    assert metrics.probes == 1
    assert metrics.transitions == 3
    assert metrics.store_writes == 4 and metrics.store_conflicts == 1  # env-1 tripped too, and lost
    assert metrics.store_reads >= 4 and metrics.store_faults == 0
    assert circuit_fleet.metrics(0).as_dict()["downstream_calls"] == 3
    assert circuit_fleet.metrics(circuit_fleet[1]).rejections == 1
    assert sum(m.invocations for m in circuit_fleet.metrics_by_environment().values()) == 12
    assert [c.environment for c in downstream.calls[:3]] == ["env-0", "env-1", "env-2"]
"""
    )
    run().assert_outcomes(passed=1)


def test_marker_size_breakers_cold_start_and_the_breaker_form(run: Runner) -> None:
    run.file(
        BREAKER
        + """
@pytest.mark.circuit_fleet(size=5)
def test_size(circuit_fleet, downstream):
    assert circuit_fleet.size == len(circuit_fleet) == 5
    breakers = circuit_fleet.breakers(charge)
    assert [b.environment.id for b in breakers] == [f"env-{i}" for i in range(5)]
    assert circuit_fleet.breaker(charge.circuit_breaker, 4) is breakers[4]
    cb = CircuitBreaker("inventory")
    assert circuit_fleet.call(3, cb, lambda sku: sku * 2, 21) == 42
    downstream.fail(2)
    for _ in range(2):
        attempt(circuit_fleet, 0, downstream, 1)
    assert circuit_fleet.breaker(charge, 0).environment.view("payments").failures == 2
    circuit_fleet.cold_start(0)
    assert circuit_fleet.breaker(charge, 0).environment.view("payments").failures == 0

@pytest.mark.circuit_fleet(2)
def test_positional_size(circuit_fleet):
    assert circuit_fleet.size == 2

@pytest.mark.asyncio
async def test_async(circuit_fleet, downstream):
    @circuit_breaker(name="search")
    async def search(query):
        return await downstream.acall(query)

    assert await circuit_fleet.acall(1, search, "q") == "ok"
    assert downstream.last_call.environment == "env-1"
    with pytest.raises(TypeError, match="is async: use `await fleet.acall"):
        circuit_fleet.call(0, search, "q")

def test_errors_say_what_is_allowed(circuit_fleet):
    with pytest.raises(ValueError, match="env must be an index from 0 to 2 or one of the fleet's Environments, got 3"):
        circuit_fleet.call(3, charge, None, 1)
    with pytest.raises(TypeError, match="fleet.call.. takes a function decorated with @circuit_breaker"):
        circuit_fleet.call(0, print, 1)
    with pytest.raises(TypeError, match="after a CircuitBreaker pass the function to call"):
        circuit_fleet.call(0, charge.circuit_breaker)

@pytest.mark.circuit_fleet(size=0)
def test_bad_size(circuit_fleet):
    pass
"""
    )
    result = run()
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.circuit_fleet: a fleet's size must be an int >= 1, got 0.*"])


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server binary")
def test_fleet_on_a_real_redis_server(run: Runner) -> None:
    run.file(
        BREAKER
        + """
@pytest.mark.circuit_store("redis")
def test_redis(circuit_fleet, circuit_store, downstream):
    downstream.outage()
    for _ in range(3):
        attempt(circuit_fleet, 1, downstream, 1)
    assert circuit_store.read("payments").state == "OPEN"
    assert attempt(circuit_fleet, 0, downstream, 1) == "CircuitBreakerOpenError"  # a cold view reads the store
"""
    )
    run().assert_outcomes(passed=1)
