"""Mutation tests of the harness: each broken breaker is caught with its anomaly type; the real one passes.

Two ways per mutant: a deterministic schedule run through every checker, and a
hypothesis search by the state machine (with only the expected anomaly type reported,
so the search cannot stop at another one). The real breaker runs the same schedule and
the same search and must pass both.
"""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import Phase

from breaker import CircuitBreaker, CircuitBreakerConfig
from pytest_circuitbreaker.adapters import BreakerLibraryAdapter
from pytest_circuitbreaker.checkers import ANOMALY_TYPES, ignoring
from pytest_circuitbreaker.stateful import FAST, find_failure, machine_class, run_schedule

from .mutants import (
    EXPECTED,
    LeaksStoreErrors,
    NeverCloses,
    NonConsecutive,
    PhantomTransition,
    RejectsNothing,
    StaleTrip,
    SwallowsRejections,
    TwoProbes,
)

DEFAULT = CircuitBreakerConfig(
    failure_threshold=2, recovery_timeout=10, success_threshold=2, local_cache_max_age=3
)
# A view may stay fresh longer than the open window: a stale environment can act on an old CLOSED record.
STALE = CircuitBreakerConfig(
    failure_threshold=2, recovery_timeout=2, success_threshold=3, local_cache_max_age=5
)

TRIP = ["outage()", "call(env=0)", "call(env=0)"]
PROBING = [*TRIP, "advance(seconds=11)", "recover()", "call(env=0)"]

SCHEDULES: dict[type[CircuitBreaker], tuple[CircuitBreakerConfig, list[str]]] = {
    TwoProbes: (
        CircuitBreakerConfig(failure_threshold=2, recovery_timeout=10, success_threshold=3),
        [*PROBING, "call(env=1)"],
    ),
    RejectsNothing: (DEFAULT, [*TRIP, "call(env=1)"]),
    StaleTrip: (
        STALE,
        [
            "call(env=1)",
            *TRIP,
            "advance(seconds=2)",
            "recover()",
            "call(env=0)",
            "call(env=1, fail=True)",
            "call(env=1, fail=True)",
        ],
    ),
    NonConsecutive: (DEFAULT, ["call(env=0, fail=True)", "call(env=0)", "call(env=0, fail=True)"]),
    NeverCloses: (DEFAULT, [*PROBING, "call(env=0)", "call(env=0)"]),
    PhantomTransition: (
        DEFAULT,
        ["store_fault(kind='fail_writes')", "call(env=0, fail=True)", "call(env=0, fail=True)"],
    ),
    LeaksStoreErrors: (DEFAULT, ["store_fault(kind='fail_reads')", "call(env=0)"]),
    SwallowsRejections: (DEFAULT, [*TRIP, "call(env=0)"]),
}

# Views fresh for 30 s against a 10 s window: an environment acting on an old CLOSED view is common.
SEARCH_CONFIG = {
    StaleTrip: CircuitBreakerConfig(
        failure_threshold=2, recovery_timeout=10, success_threshold=3, local_cache_max_age=30
    )
}
# Deep mutants need a few coordinated steps (trip, wait out the window, probe...): their searches
# leave out the rules they do not need, as a user focusing the harness on one behaviour would.
FOCUSED = {"store_faults": False, "crashes": False, "slow_calls": False}
SEARCH_OPTIONS: dict[type[CircuitBreaker], dict[str, object]] = {
    NeverCloses: {"environments": 1, **FOCUSED},  # every call is the probe owner's
    TwoProbes: {"environments": 2, **FOCUSED},
    StaleTrip: {"environments": 2, **FOCUSED},
}
# The searches only need to find each mutant (shrinking one costs ~1000 more runs): one test below
# shows the shrunk report, the others skip the shrink phase.
SEARCH = hypothesis.settings(
    FAST,
    max_examples=200,
    stateful_step_count=25,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target),
)
MUTANTS = sorted(EXPECTED, key=lambda cls: cls.__name__)


def only(anomaly: str) -> object:
    """The checkers, reporting only ``anomaly``."""
    return ignoring(*(kind for kind in ANOMALY_TYPES if kind != anomaly))


def test_at_least_five_mutants_with_distinct_anomalies() -> None:
    assert len(EXPECTED) >= 5
    assert len(set(EXPECTED.values())) == len(EXPECTED)
    assert set(EXPECTED.values()) <= set(ANOMALY_TYPES)
    assert set(SCHEDULES) == set(EXPECTED)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda cls: cls.__name__)
def test_the_schedule_catches_the_mutant_with_its_anomaly(mutant: type[CircuitBreaker]) -> None:
    config, steps = SCHEDULES[mutant]
    history, verdict = run_schedule(BreakerLibraryAdapter(breaker_class=mutant), steps, config=config)
    assert verdict.valid is False, f"{mutant.__name__} was not caught:\n{history.format()}"
    assert EXPECTED[mutant] in verdict.anomaly_types, verdict.report(history)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda cls: cls.__name__)
def test_the_real_breaker_passes_the_same_schedule(mutant: type[CircuitBreaker]) -> None:
    config, steps = SCHEDULES[mutant]
    history, verdict = run_schedule(BreakerLibraryAdapter(), steps, config=config)
    assert verdict.valid is True, verdict.report(history)


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda cls: cls.__name__)
def test_the_state_machine_finds_the_mutant(mutant: type[CircuitBreaker]) -> None:
    expected = EXPECTED[mutant]
    machine = machine_class(
        BreakerLibraryAdapter(breaker_class=mutant),
        config=SEARCH_CONFIG.get(mutant, DEFAULT),
        checkers=[only(expected)],  # type: ignore[list-item]
        **SEARCH_OPTIONS.get(mutant, {}),  # type: ignore[arg-type]
    )
    # A search is random: up to three seeds of 200 runs (the first finds every mutant today).
    for seed in (0, 1, 2):
        failure = find_failure(machine, settings=SEARCH, seed=seed)
        if failure is not None:
            break
    assert failure is not None, f"hypothesis did not find {mutant.__name__} in 3 x {SEARCH.max_examples} runs"
    assert failure.verdict.anomaly_types == [expected]
    message = str(failure)
    assert f'anomaly "{expected}"' in message
    assert "sim = Simulation(" in message
    assert f"Seed: {seed}" in message
    # The shrunk steps replay the anomaly without hypothesis.
    _, verdict = run_schedule(
        BreakerLibraryAdapter(breaker_class=mutant), failure.steps, config=SEARCH_CONFIG.get(mutant, DEFAULT),
        environments=int(SEARCH_OPTIONS.get(mutant, {}).get("environments", 3)),  # type: ignore[call-overload]
    )  # fmt: skip
    assert expected in verdict.anomaly_types


def test_a_found_mutant_is_shrunk_to_the_few_steps_that_show_it() -> None:
    machine = machine_class(BreakerLibraryAdapter(breaker_class=RejectsNothing), config=DEFAULT)
    failure = find_failure(machine, settings=hypothesis.settings(FAST, max_examples=100), seed=3)
    assert failure is not None
    assert failure.verdict.anomaly_types == ["call while open"]
    # After the warm-up (one call per environment), a few calls trip it and one more runs while open.
    warm_up, rest = failure.steps[:3], failure.steps[3:]
    assert warm_up == ["call(env=0)", "call(env=1)", "call(env=2)"]
    assert len(rest) <= 6, failure.steps
    assert "Steps (as hypothesis shrank them)" in str(failure)
    assert "--hypothesis-seed=3" in str(failure)


@pytest.mark.parametrize("config", [DEFAULT, STALE], ids=["default", "stale-views"])
def test_the_real_breaker_passes_the_same_search(config: CircuitBreakerConfig) -> None:
    machine = machine_class(BreakerLibraryAdapter(), config=config)
    failure = find_failure(machine, settings=hypothesis.settings(SEARCH, max_examples=100), seed=0)
    assert failure is None, str(failure)
