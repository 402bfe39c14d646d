"""The 'circuit breaker' section under a failed test: transitions and the last calls."""

from __future__ import annotations

from .conftest import Runner

TESTS = """
import pytest
from breaker import CircuitBreakerConfig, circuit_breaker

@circuit_breaker(name="payments", config=CircuitBreakerConfig(failure_threshold=3))
def charge(api, amount):
    return api(amount)

def test_fails_after_a_trip(downstream):
    downstream.outage(TimeoutError("payments down"))
    for amount in range(10):
        try:
            charge(downstream, amount)
        except Exception:
            pass
    assert charge.circuit_breaker.state == "CLOSED"

def test_passes(downstream):
    downstream.outage()
    for _ in range(3):
        with pytest.raises(ConnectionError):
            charge(downstream, 1)

def test_fails_without_breakers():
    assert 1 == 2

def test_fails_with_a_fixture_but_no_activity(circuit_transitions):
    assert 1 == 2

def test_fails_with_activity_but_no_fixture():
    charge.circuit_breaker.force_open()
    assert 1 == 2
"""


def test_section_lists_transitions_and_the_last_calls(run: Runner) -> None:
    run.file(TESTS)
    result = run()
    result.assert_outcomes(passed=1, failed=4)
    result.stdout.fnmatch_lines(
        [
            "*_ test_fails_after_a_trip _*",
            "E   *assert*",
            "*- circuit breaker -*",
            "transitions (1):",
            "  t=+0.000s  payments: CLOSED -> OPEN",
            "last 10 of 10 calls, rejections, probes and store faults (==> transitions):",
            "  t=+0.000s  downstream#1(0) -> raised TimeoutError: payments down",
            "  t=+0.000s  downstream#2(1) -> raised TimeoutError: payments down",
            "  t=+0.000s  downstream#3(2) -> raised TimeoutError: payments down",
            "  t=+0.000s  ==> payments: CLOSED -> OPEN",
            "  t=+0.000s  payments: rejected (CircuitBreakerOpenError)",
            "*",
            "store: 2 reads, 1 writes, 0 faults",
            "replay with --circuitbreaker-seed=*",
        ]
    )
    text = str(result.stdout)
    section = text[text.index("- circuit breaker -") : text.index("_ test_fails_without_breakers")]
    assert section.count("rejected (CircuitBreakerOpenError)") == 7
    # A failure with no breaker involved gets no section; with a fixture, a note; with activity, a section.
    after = text[text.index("_ test_fails_without_breakers _") :]
    assert after[: after.index("_ test_fails_with_a_fixture")].count("circuit breaker") == 0
    after = text[text.index("_ test_fails_with_a_fixture_but_no_activity _") :]
    assert "no circuit breaker activity was recorded in this test" in after
    after = text[text.index("_ test_fails_with_activity_but_no_fixture _") :]
    assert "payments: CLOSED -> OPEN" in after


def test_option_sets_how_many_calls_and_zero_hides_the_section(run: Runner) -> None:
    run.file(TESTS)
    result = run("--circuitbreaker-report-calls=3", "-k", "after_a_trip")
    result.stdout.fnmatch_lines(
        [
            "transitions (1):",
            "  t=+0.000s  payments: CLOSED -> OPEN",
            "last 3 of 10 calls, rejections, probes and store faults (==> transitions):",
            "  t=+0.000s  payments: rejected (CircuitBreakerOpenError)",
            "  t=+0.000s  payments: rejected (CircuitBreakerOpenError)",
            "  t=+0.000s  payments: rejected (CircuitBreakerOpenError)",
            "store: 2 reads, 1 writes, 0 faults",
        ]
    )
    result = run("--circuitbreaker-report-calls=0", "-k", "after_a_trip")
    assert "circuit breaker" not in str(result.stdout)
    run.ini(
        "[pytest]\naddopts = -p no:hypothesispytest\nasyncio_default_fixture_loop_scope = function\n"
        "circuitbreaker_report_calls = 0\n"
    )
    assert "- circuit breaker -" not in str(run("-k", "after_a_trip").stdout)
