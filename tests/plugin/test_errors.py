"""The plugin's objects used directly: each error says what was given and what is allowed."""

from __future__ import annotations

import pytest

from breaker import CircuitBreaker, Environment
from breaker.persistence import CircuitRecord, InMemoryPersistence
from pytest_circuitbreaker import Downstream, DownstreamFactory, Fleet, FleetMetrics, StoreFaults


def test_downstream_errors() -> None:
    with pytest.raises(ValueError, match="a downstream name must be a non-empty string, got ''"):
        Downstream("")
    with pytest.raises(AssertionError, match="downstream 'api' was never called"):
        _ = Downstream("api").last_call
    with pytest.raises(AssertionError, match=r"called 0 time\(s\), expected at least once:\n  \(no calls\)"):
        Downstream("api").assert_called()
    with pytest.raises(KeyError, match=r"no downstream named 'x'; made so far: \[\]"):
        DownstreamFactory()["x"]


def test_fleet_errors() -> None:
    with pytest.raises(ValueError, match="a fleet's size must be an int >= 1, got 0"):
        Fleet(0)
    fleet = Fleet(2)
    try:
        with pytest.raises(
            ValueError, match=r"Environment\('elsewhere'.*is not an environment of this fleet"
        ):
            fleet.breaker(CircuitBreaker("db"), Environment("elsewhere"))
        with pytest.raises(
            TypeError, match=r"fleet\.breakers\(\) takes a function decorated with @circuit_breaker"
        ):
            fleet.breakers("db")
        assert fleet.breaker(CircuitBreaker("db"), fleet[1]).environment is fleet[1]
        assert fleet.breaker(CircuitBreaker("db"), -1).environment is fleet[1]
    finally:
        fleet.close()
    with pytest.raises(
        TypeError, match=r"unknown FleetMetrics field\(s\) \['leaks'\]; allowed: \['invocations'"
    ):
        FleetMetrics(leaks=1)
    assert FleetMetrics(probes=1) == {**FleetMetrics().as_dict(), "probes": 1}


def test_store_faults_errors() -> None:
    with pytest.raises(
        TypeError, match=r"StoreFaults wraps a breaker\.persistence\.CircuitStore, got 'redis://x'"
    ):
        StoreFaults("redis://x")  # type: ignore[arg-type]
    faults = StoreFaults(InMemoryPersistence())
    with faults.fail_writes(KeyError("custom")), pytest.raises(KeyError, match="custom"):
        faults.store.write(CircuitRecord.closed("db").evolve(), None)
    assert faults.writes == 1
    assert faults.injected == 1
