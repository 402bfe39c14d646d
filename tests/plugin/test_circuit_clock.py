"""circuit_clock: the fake clock of every breaker in the test; time travel; frozen wall time."""

from __future__ import annotations

from .conftest import Runner

BREAKER = """
import datetime as dt
import time

import pytest
from breaker import SYSTEM_CLOCK, CircuitBreaker, CircuitBreakerConfig, CircuitBreakerOpenError, circuit_breaker

@circuit_breaker(name="payments", config=CircuitBreakerConfig(failure_threshold=1, recovery_timeout=30))
def charge(api, amount):
    return api(amount)
"""


def test_advance_now_travel_to_and_every_breaker_reads_it(run: Runner) -> None:
    run.file(
        BREAKER
        + """
def test_moves(circuit_clock):
    start = circuit_clock.now()
    assert start == int(start) and abs(start - time.time()) < 5  # starts at the real time, whole seconds
    circuit_clock.advance(12.5)
    assert circuit_clock.now() == SYSTEM_CLOCK.time() == start + 12.5
    circuit_clock.advance(dt.timedelta(minutes=1))
    assert circuit_clock.now() == start + 72.5
    circuit_clock.travel_to(1_700_000_000)
    assert SYSTEM_CLOCK.time() == 1_700_000_000
    circuit_clock.travel_to(dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))
    assert circuit_clock.now() == 1_893_456_000
    assert not SYSTEM_CLOCK.realtime

def test_bad_values_say_what_is_allowed(circuit_clock):
    with pytest.raises(ValueError, match="seconds must be a number >= 0, got -1"):
        circuit_clock.advance(-1)
    with pytest.raises(TypeError, match=r"advance\\(\\): seconds must be a number of seconds or a datetime.timedelta, got '5'"):
        circuit_clock.advance("5")

def test_the_default_clock_is_back_after_the_test():
    assert SYSTEM_CLOCK.realtime
"""
    )
    run().assert_outcomes(passed=3)


def test_past_open_window_takes_a_function_a_breaker_or_a_name(run: Runner) -> None:
    run.file(
        BREAKER
        + """
def trip(downstream):
    downstream.fail(1)
    with pytest.raises(ConnectionError):
        charge(downstream, 1)
    with pytest.raises(CircuitBreakerOpenError):
        charge(downstream, 1)

def test_decorated_function(circuit_clock, downstream):
    trip(downstream)
    opened = circuit_clock.now()
    assert circuit_clock.past_open_window(charge) == opened + 30.001
    assert charge(downstream, 1) == "ok"

def test_breaker(circuit_clock, downstream):
    trip(downstream)
    circuit_clock.past_open_window(charge.circuit_breaker, by=5)
    assert charge(downstream, 1) == "ok"

def test_name(circuit_clock, downstream):
    trip(downstream)
    circuit_clock.past_open_window("payments", recovery_timeout=30)
    assert charge(downstream, 1) == "ok"

def test_never_moves_back(circuit_clock, downstream):
    trip(downstream)
    circuit_clock.advance(100)
    now = circuit_clock.now()
    assert circuit_clock.past_open_window(charge) == now
"""
    )
    run().assert_outcomes(passed=4)


def test_past_open_window_errors(run: Runner) -> None:
    run.file(
        BREAKER
        + """
def test_closed(circuit_clock):
    with pytest.raises(ValueError, match="circuit 'payments' is CLOSED, not OPEN: past_open_window.. moves past"):
        circuit_clock.past_open_window(charge)

def test_name_needs_the_window(circuit_clock):
    with pytest.raises(ValueError, match=r"past_open_window\\('payments'\\) needs recovery_timeout=SECONDS"):
        circuit_clock.past_open_window("payments")

def test_name_never_opened(circuit_clock):
    with pytest.raises(ValueError, match="circuit 'payments' has no recorded opening in this test"):
        circuit_clock.past_open_window("payments", recovery_timeout=3)

def test_wrong_type(circuit_clock):
    with pytest.raises(TypeError, match="past_open_window.. takes a function decorated with @circuit_breaker"):
        circuit_clock.past_open_window(42)
"""
    )
    run().assert_outcomes(passed=4)


def test_marker_sets_start_and_freezes_wall_time(run: Runner) -> None:
    run.file(
        BREAKER
        + """
@pytest.mark.circuit_clock(start=1_700_000_000)
def test_start(circuit_clock):
    assert circuit_clock.now() == 1_700_000_000
    assert not circuit_clock.wall_time_frozen
    assert time.time() > 1_700_000_000 + 1000  # user code still sees real time

@pytest.mark.circuit_clock(start=1_700_000_000, freeze_wall_time=True)
def test_frozen(circuit_clock):
    assert time.time() == 1_700_000_000
    circuit_clock.advance(90)
    assert time.time() == 1_700_000_090
    assert dt.datetime.now(dt.timezone.utc) == dt.datetime(2023, 11, 14, 22, 14, 50, tzinfo=dt.timezone.utc)
    circuit_clock.travel_to(1_800_000_000)
    assert int(dt.datetime.now().timestamp()) == 1_800_000_000
    assert time.monotonic() > 0  # left alone: asyncio keeps working

def test_thawed_after():
    assert time.time() > 1_700_000_000 + 1000

@pytest.mark.circuit_clock(begin=5)
def test_bad_marker(circuit_clock):
    pass
"""
    )
    result = run()
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.circuit_clock takes only start=UNIX_SECONDS and freeze_wall_time=BOOL*begin*"]
    )


def test_option_and_ini_freeze_wall_time(run: Runner) -> None:
    run.file(
        """
import time

def test_frozen(circuit_clock):
    before = time.time()
    circuit_clock.advance(3600)
    assert time.time() == before + 3600
"""
    )
    run("--circuitbreaker-freeze-wall-time").assert_outcomes(passed=1)
    run().assert_outcomes(failed=1)
    run.ini(
        "[pytest]\naddopts = -p no:hypothesispytest\nasyncio_default_fixture_loop_scope = function\n"
        "circuitbreaker_freeze_wall_time = true\n"
    )
    run().assert_outcomes(passed=1)
