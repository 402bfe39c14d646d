"""The strategies users reuse: fault schedules, configs, fleets, step lists; and a schedule driver."""

from __future__ import annotations

import pytest
from hypothesis import find, given, settings

from breaker import CircuitBreakerConfig
from pytest_circuitbreaker.adapters import BreakerLibraryAdapter
from pytest_circuitbreaker.stateful import run_schedule
from pytest_circuitbreaker.strategies import (
    FAULT_KINDS,
    ScheduledFault,
    breaker_configs,
    fault_schedules,
    fleets,
    schedule_steps,
    steps,
)

QUICK = settings(max_examples=15, deadline=None, database=None)


def test_fault_schedules_shrink_toward_fewer_and_shorter_faults() -> None:
    quick = settings(max_examples=200, database=None)
    smallest = find(fault_schedules(), lambda faults: len(faults) >= 2, settings=quick)
    assert smallest == [ScheduledFault(0, 1, FAULT_KINDS[0]), ScheduledFault(0, 1, FAULT_KINDS[0])]
    long_one = find(
        fault_schedules(), lambda faults: any(fault.duration >= 10 for fault in faults), settings=quick
    )
    assert long_one == [ScheduledFault(0, 10, FAULT_KINDS[0])]


@QUICK
@given(fault_schedules(max_faults=3, horizon=20, max_duration=15))
def test_fault_schedules_are_sorted_and_inside_their_bounds(faults: list[ScheduledFault]) -> None:
    assert faults == sorted(faults)
    assert all(
        0 <= fault.start <= 20 and 1 <= fault.duration <= 15 and fault.kind in FAULT_KINDS for fault in faults
    )


@QUICK
@given(breaker_configs(whole_seconds=True), fleets(max_size=3))
def test_configs_and_fleets(config: CircuitBreakerConfig, size: int) -> None:
    assert isinstance(config, CircuitBreakerConfig)
    assert 1 <= size <= 3
    assert config.probe_lease == config.recovery_timeout
    assert all(
        float(getattr(config, field)).is_integer() for field in ("recovery_timeout", "local_cache_max_age")
    )


@QUICK
@given(fault_schedules(max_faults=3, horizon=40), breaker_configs())
def test_the_library_survives_any_fault_schedule(
    faults: list[ScheduledFault], config: CircuitBreakerConfig
) -> None:
    history, verdict = run_schedule(
        BreakerLibraryAdapter(), schedule_steps(faults, environments=2, horizon=60, tick=2), config=config,
        environments=2,
    )  # fmt: skip
    assert verdict.valid is True, verdict.report(history)


@QUICK
@given(steps(2, max_steps=25), breaker_configs())
def test_the_library_survives_any_step_list(schedule: list[str], config: CircuitBreakerConfig) -> None:
    history, verdict = run_schedule(BreakerLibraryAdapter(), schedule, config=config, environments=2)
    assert verdict.valid is True, verdict.report(history)


def test_schedule_steps_turns_faults_into_steps_under_traffic() -> None:
    faults = [ScheduledFault(1, 2, "store_fail_reads"), ScheduledFault(2, 3, "store_timeout")]
    result = schedule_steps(faults, environments=1, horizon=6)
    assert result == [
        "call(env=0)", "advance(seconds=1)",
        "store_fault(kind='fail_reads')", "call(env=0)", "advance(seconds=1)",
        "store_fault(kind='timeout')", "call(env=0)", "advance(seconds=1)",
        "call(env=0)", "advance(seconds=1)",
        "call(env=0)", "advance(seconds=1)",
        "store_recover()", "call(env=0)", "advance(seconds=1)",
    ]  # fmt: skip


def test_strategy_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="non-empty selection"):
        fault_schedules(kinds=["meteor"])
    with pytest.raises(ValueError, match="max_duration >= 1"):
        fault_schedules(max_duration=0)
    with pytest.raises(ValueError, match="max_threshold"):
        breaker_configs(max_threshold=0)
    with pytest.raises(ValueError, match="min_size <= max_size"):
        fleets(3, 2)
    with pytest.raises(ValueError, match="environments must be >= 1"):
        steps(0)
    with pytest.raises(ValueError, match="unknown fault kind"):
        schedule_steps([ScheduledFault(0, 1, "meteor")])
