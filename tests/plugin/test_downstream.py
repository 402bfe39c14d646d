"""downstream and downstream_factory: scripted failures, outages, seeded error rates, latency, records."""

from __future__ import annotations

import re

from .conftest import Runner


def test_fail_outage_script_returns_and_records(run: Runner) -> None:
    run.file(
        """
import pytest

def test_fail_n(downstream):
    downstream.returns({"status": "paid"}).fail(2, TimeoutError("slow"))
    for _ in range(2):
        with pytest.raises(TimeoutError, match="slow"):
            downstream(10, currency="EUR")
    assert downstream(11) == {"status": "paid"}
    assert [c.args for c in downstream.calls] == [(10,), (10,), (11,)]
    assert downstream.calls[0].kwargs == {"currency": "EUR"}
    assert [c.ok for c in downstream.calls] == [False, False, True]
    assert downstream.failures == 2 and downstream.successes == 1 and downstream.call_count == 3
    assert downstream.last_call.result == {"status": "paid"}
    downstream.assert_called(3)

def test_default_exception_names_the_downstream(downstream):
    downstream.fail()
    with pytest.raises(ConnectionError, match=r"downstream failed \\(fail\\(\\), injected by the test\\)"):
        downstream()

def test_outage_until_recover(downstream):
    downstream.outage(OSError)
    for _ in range(5):
        with pytest.raises(OSError):
            downstream()
    downstream.recover()
    assert downstream() == "ok"

def test_script_then_back_to_rules(downstream):
    downstream.script("a", KeyError, ValueError("bad"), "b")
    assert downstream() == "a"
    with pytest.raises(KeyError):
        downstream()
    with pytest.raises(ValueError, match="bad"):
        downstream()
    assert downstream() == "b"
    assert downstream() == "ok"

def test_latency_moves_the_fake_clock(downstream, circuit_clock):
    start = circuit_clock.now()
    downstream.latency(0.25)
    downstream()
    downstream()
    assert circuit_clock.now() == start + 0.5
    assert downstream.calls[1].time == start + 0.5

def test_assert_called_lists_the_calls(downstream):
    downstream(1)
    with pytest.raises(AssertionError, match=r"downstream 'downstream' was called 1 time\\(s\\), expected 2 time\\(s\\):\\n  downstream#1\\(1\\) -> 'ok'"):
        downstream.assert_called(2)

def test_bad_arguments_say_what_is_allowed(downstream):
    with pytest.raises(ValueError, match="fail... times must be an int >= 0, got -1"):
        downstream.fail(-1)
    with pytest.raises(TypeError, match="exc must be an exception class or instance .or None., got 'boom'"):
        downstream.outage("boom")
    with pytest.raises(ValueError, match="rate must be a number from 0 to 1, got 1.5"):
        downstream.error_rate(1.5)
    with pytest.raises(ValueError, match="latency... seconds must be a number >= 0, got -2"):
        downstream.latency(-2)
    with pytest.raises(ValueError, match="give at least one outcome"):
        downstream.script()
"""
    )
    run().assert_outcomes(passed=7)


def test_async_calls_share_the_script(run: Runner) -> None:
    run.file(
        """
import pytest

@pytest.mark.asyncio
async def test_async(downstream, circuit_clock):
    downstream.latency(1).fail(1)
    start = circuit_clock.now()
    with pytest.raises(ConnectionError):
        await downstream.acall("q")
    assert await downstream.acall("q") == "ok"
    assert circuit_clock.now() == start + 2
    assert [c.is_async for c in downstream.calls] == [True, True]
    assert repr(downstream.calls[1]) == "await downstream#2('q') -> 'ok'"
"""
    )
    run().assert_outcomes(passed=1)


ERROR_RATE = """
def test_rate(downstream):
    downstream.error_rate(0.5)
    outcomes = []
    for _ in range(40):
        try:
            downstream()
            outcomes.append("o")
        except ConnectionError:
            outcomes.append("x")
    print("OUTCOMES", "".join(outcomes))
    assert 5 < outcomes.count("x") < 35

def test_explicit_seed(downstream):
    downstream.error_rate(0.5, seed=1)
    outcomes = []
    for _ in range(20):
        try:
            downstream()
            outcomes.append("o")
        except ConnectionError:
            outcomes.append("x")
    print("EXPLICIT", "".join(outcomes))
"""


def _outcomes(result: object, label: str) -> str:
    match = re.search(rf"{label} ([ox]+)", str(result.stdout))  # type: ignore[attr-defined]
    assert match, result
    return match.group(1)


def test_error_rate_replays_with_the_session_seed(run: Runner) -> None:
    run.file(ERROR_RATE)
    first = run("-s", "--circuitbreaker-seed=1234")
    second = run("-s", "--circuitbreaker-seed=1234")
    other = run("-s", "--circuitbreaker-seed=99")
    first.assert_outcomes(passed=2)
    assert _outcomes(first, "OUTCOMES") == _outcomes(second, "OUTCOMES")
    assert _outcomes(first, "OUTCOMES") != _outcomes(other, "OUTCOMES")
    assert _outcomes(first, "EXPLICIT") == _outcomes(other, "EXPLICIT")  # seed= wins over the session seed


def test_factory_gives_several_named_downstreams(run: Runner) -> None:
    run.file(
        """
import pytest

def test_named(downstream_factory, downstream):
    payments = downstream_factory("payments").fail(1)
    search = downstream_factory("search")
    assert downstream_factory("payments") is payments
    assert downstream_factory["downstream"] is downstream
    with pytest.raises(ConnectionError, match="payments failed"):
        payments()
    assert search() == "ok"
    assert downstream_factory.names() == ["downstream", "payments", "search"]
    assert len(downstream_factory) == 3 and [d.name for d in downstream_factory] == downstream_factory.names()
    with pytest.raises(KeyError, match="no downstream named 'inventory'; made so far"):
        downstream_factory["inventory"]
"""
    )
    run().assert_outcomes(passed=1)
