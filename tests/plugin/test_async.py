"""Async tests (pytest-asyncio): an async breaker trips, time-travels, recovers; fixtures work in them."""

from __future__ import annotations

from .conftest import Runner


def test_async_trip_and_recover(run: Runner) -> None:
    run.file(
        """
import asyncio

import pytest
from breaker import CircuitBreakerConfig, CircuitBreakerOpenError, circuit_breaker

class SearchApi:
    async def find(self, query):
        raise AssertionError("the real API is not called in tests")

search_api = SearchApi()

@circuit_breaker(name="search", config=CircuitBreakerConfig(failure_threshold=2, recovery_timeout=10, success_threshold=2))
async def search(query):
    return await search_api.find(query)

@pytest.mark.asyncio
async def test_search_trips_and_recovers(downstream, circuit_clock, circuit_transitions, monkeypatch):
    monkeypatch.setattr(search_api, "find", downstream.acall)
    downstream.outage().latency(0.5)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            await search("q")
    with pytest.raises(CircuitBreakerOpenError) as info:
        await search("q")
    assert info.value.retry_after == 10  # opened after the 2nd call's latency; no time passed since
    downstream.recover()
    circuit_clock.past_open_window(search)
    results = await asyncio.gather(search("a"), search("b"), return_exceptions=True)
    assert results[0] == "ok" and isinstance(results[1], CircuitBreakerOpenError)  # one probe at a time
    assert await search("c") == "ok"
    circuit_transitions.assert_path("search", "CLOSED", "OPEN", "HALF_OPEN", "CLOSED")
    assert circuit_transitions.calls_to_open("search") == 2

@pytest.mark.asyncio
async def test_the_next_async_test_starts_clean(circuit_transitions):
    assert (await search.circuit_breaker.ainfo()).state == "CLOSED"
"""
    )
    run().assert_outcomes(passed=2)
