"""circuit_transitions: every transition without wiring, path assertions, calls_to_open, hooks."""

from __future__ import annotations

from .conftest import Runner

BREAKERS = """
import pytest
from breaker import CircuitBreaker, CircuitBreakerConfig, CircuitBreakerOpenError, CircuitState, circuit_breaker

CONFIG = CircuitBreakerConfig(failure_threshold=3, recovery_timeout=10, success_threshold=2)

@circuit_breaker(name="payments", config=CONFIG)
def charge(api, amount):
    return api(amount)

@circuit_breaker(name="search", config=CONFIG)
def search(api, query):
    return api(query)

def trip(fn, api):
    api.outage()
    for _ in range(3):
        with pytest.raises(ConnectionError):
            fn(api, 1)
    api.recover()
"""


def test_paths_of_every_breaker_without_wiring(run: Runner) -> None:
    run.file(
        BREAKERS
        + """
def test_trip_recover_reopen(downstream, circuit_clock, circuit_transitions):
    trip(charge, downstream)
    circuit_clock.past_open_window(charge)
    downstream.fail(1)
    with pytest.raises(ConnectionError):
        charge(downstream, 1)  # the probe fails: reopen
    circuit_clock.past_open_window(charge)
    charge(downstream, 1)
    charge(downstream, 1)  # two probe successes close it
    circuit_transitions.assert_path(
        "payments", CircuitState.CLOSED, "OPEN", "HALF_OPEN", "OPEN", "half_open", "CLOSED"
    )
    circuit_transitions.assert_path("search")  # no transition at all
    circuit_transitions.assert_never("payments", "CLOSED", "HALF_OPEN")
    assert circuit_transitions.circuits() == ["payments"]
    assert len(circuit_transitions) == 5
    first = circuit_transitions[0]
    assert (first.name, first.from_state, first.to_state, first.local) == ("payments", "CLOSED", "OPEN", False)
    assert first.opened_at == first.time and first.environment
    assert [t.to_state for t in circuit_transitions.of("payments")] == ["OPEN", "HALF_OPEN", "OPEN", "HALF_OPEN", "CLOSED"]

def test_manual_commands_are_transitions_too(circuit_transitions):
    charge.circuit_breaker.force_open()
    charge.circuit_breaker.reset()
    circuit_transitions.assert_path("payments", "CLOSED", "OPEN", "CLOSED")
"""
    )
    run().assert_outcomes(passed=2)


def test_assertion_messages_show_the_path_and_the_recording(run: Runner) -> None:
    run.file(
        BREAKERS
        + """
def test_wrong_path(downstream, circuit_transitions):
    trip(charge, downstream)
    circuit_transitions.assert_path("payments", "CLOSED", "OPEN", "HALF_OPEN", "CLOSED")

def test_never(downstream, circuit_transitions):
    trip(charge, downstream)
    circuit_transitions.assert_never("payments", "CLOSED", "OPEN")

def test_no_transition(circuit_transitions):
    circuit_transitions.assert_path("payments", "CLOSED", "OPEN")

def test_bad_state(circuit_transitions):
    circuit_transitions.assert_path("payments", "CLOSED", "OPNE")
"""
    )
    result = run()
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "E*AssertionError: circuit 'payments' went CLOSED -> OPEN, expected CLOSED -> OPEN -> HALF_OPEN -> CLOSED.",
            "E*recorded transitions:",
            "E*  1. payments: CLOSED -> OPEN",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E*AssertionError: circuit 'payments' went CLOSED -> OPEN, which it should never do (transition #1)."
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E*AssertionError: circuit 'payments' made no transition, expected CLOSED -> OPEN.",
            "E*(no circuit made any transition in this test)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E*ValueError: a circuit state must be one of 'CLOSED', 'OPEN', 'HALF_OPEN' (or a CircuitState), got 'OPNE'."
        ]
    )


def test_calls_to_open(run: Runner) -> None:
    run.file(
        BREAKERS
        + """
def test_counts_the_calls_before_the_trip(downstream, circuit_clock, circuit_transitions):
    downstream.script("ok", ConnectionError, "ok", ConnectionError, ConnectionError, ConnectionError)
    for _ in range(6):
        try:
            charge(downstream, 1)
        except ConnectionError:
            pass
    assert circuit_transitions.calls_to_open("payments") == 6
    circuit_clock.past_open_window(charge)
    charge(downstream, 1)
    charge(downstream, 1)
    trip(charge, downstream)  # second trip: counted from the close
    assert circuit_transitions.calls_to_open("payments", nth=2) == 3

def test_only_one_downstream(downstream_factory, circuit_transitions):
    payments, other = downstream_factory("payments"), downstream_factory("other")
    other()
    trip(charge, payments)
    assert circuit_transitions.calls_to_open("payments", downstream=payments) == 3
    assert circuit_transitions.calls_to_open("payments") == 4

def test_never_opened(downstream, circuit_transitions):
    charge(downstream, 1)
    with pytest.raises(AssertionError, match="circuit 'payments' never opened"):
        circuit_transitions.calls_to_open("payments")
    trip(charge, downstream)
    with pytest.raises(AssertionError, match="circuit 'payments' opened only 1 time.s., not 2"):
        circuit_transitions.calls_to_open("payments", nth=2)

class DownApi:  # not a fake downstream: nothing is recorded
    def outage(self): pass
    def recover(self): pass
    def __call__(self, amount): raise ConnectionError("down")

def test_without_fake_downstream(circuit_transitions):
    trip(charge, DownApi())
    with pytest.raises(AssertionError, match="calls_to_open.. counts the calls made to the test's fake downstreams"):
        circuit_transitions.calls_to_open("payments")
"""
    )
    run().assert_outcomes(passed=4)


def test_hook_records_transitions_of_other_breakers(run: Runner) -> None:
    run.file(
        """
from types import SimpleNamespace

from breaker import CircuitBreaker
from pytest_circuitbreaker import record_transition

def test_foreign(circuit_transitions):
    assert circuit_transitions.hook is record_transition
    circuit_transitions.hook(SimpleNamespace(circuit_name="legacy", from_state="CLOSED", to_state="OPEN", opened_at=5))
    circuit_transitions.hook(SimpleNamespace(circuit_name="legacy", from_state="OPEN", to_state="HALF_OPEN", opened_at=5))
    circuit_transitions.assert_path("legacy", "CLOSED", "OPEN", "HALF_OPEN")
    assert circuit_transitions[0].environment is None

def test_ours_are_not_counted_twice(circuit_transitions):
    cb = CircuitBreaker("db", on_transition=circuit_transitions.hook)
    cb.force_open()
    circuit_transitions.assert_path("db", "CLOSED", "OPEN")
"""
    )
    run().assert_outcomes(passed=2)


def test_transition_hookspec_sees_every_transition(run: Runner) -> None:
    run.pytester.makeconftest(
        """
def pytest_circuitbreaker_transition(transition, event, item):
    item.user_properties.append(("transition", f"{transition.name}:{transition.from_state}->{transition.to_state}"))
    print("HOOK", item.name, transition.name, transition.to_state, event.kind if event else None)
"""
    )
    run.file(
        """
from types import SimpleNamespace
from breaker import CircuitBreaker

def test_it(request, circuit_transitions):
    cb = CircuitBreaker("db")
    cb.force_open()
    cb.reset()
    circuit_transitions.hook(SimpleNamespace(circuit_name="pt", from_state="CLOSED", to_state="OPEN"))
    assert request.node.user_properties == [
        ("transition", "db:CLOSED->OPEN"), ("transition", "db:OPEN->CLOSED"), ("transition", "pt:CLOSED->OPEN")
    ]

def test_without_the_fixture():
    CircuitBreaker("db").force_open()
"""
    )
    result = run("-s")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*HOOK test_it db OPEN transition*",
            "*HOOK test_it db CLOSED transition*",
            "*HOOK test_it pt OPEN None*",
            "*HOOK test_without_the_fixture db OPEN transition*",
        ]
    )


def test_local_transitions_while_the_store_is_down(run: Runner) -> None:
    run.file(
        BREAKERS
        + """
def test_local(downstream, store_faults, circuit_transitions):
    with store_faults.fail_writes():
        trip(charge, downstream)
    assert circuit_transitions.path("payments") == []
    circuit_transitions.assert_path("payments", "CLOSED", "OPEN", local=True)
    assert circuit_transitions.of("payments", local=True)[0].local
"""
    )
    run().assert_outcomes(passed=1)
