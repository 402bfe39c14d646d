"""The harness against Powertools 3.37 (and pybreaker) through their adapters.

These tests do not ask Powertools to pass: they check that the harness drives it, that
its globals and clock are restored, and that each finding documented in docs/harness.md
still reproduces from its shrunk steps (and that this library passes the same steps).
"""

from __future__ import annotations

import hypothesis
import pytest

from breaker import CircuitBreakerConfig
from pytest_circuitbreaker.adapters import BreakerLibraryAdapter, PowertoolsAdapter, PybreakerAdapter
from pytest_circuitbreaker.checkers import ANOMALY_TYPES
from pytest_circuitbreaker.stateful import FAST, InvariantViolation, find_failure, machine_class, run_schedule

pytest.importorskip("aws_lambda_powertools.utilities.circuit_breaker")

DEFAULT = CircuitBreakerConfig(
    failure_threshold=2, recovery_timeout=10, success_threshold=2, local_cache_max_age=3
)
STALE = CircuitBreakerConfig(
    failure_threshold=2, recovery_timeout=2, success_threshold=3, local_cache_max_age=5
)

#: docs/harness.md, "What the harness finds in Powertools 3.37": each anomaly, its config and shrunk steps.
FINDINGS: list[tuple[str, CircuitBreakerConfig, list[str]]] = [
    (
        "transition reported but not stored",
        DEFAULT,
        [
            "call(env=0)",
            "call(env=1)",
            "call(env=2)",
            "store_fault(kind='fail_writes')",
            "call(env=0, fail=True)",
            "call(env=0, fail=True)",
        ],
    ),
    (
        "repeated store timeout",
        DEFAULT,
        [
            "call(env=0)",
            "call(env=1)",
            "call(env=2)",
            "advance(seconds=3)",
            "store_fault(kind='timeout')",
            "call(env=0, fail=True)",
            "call(env=0, fail=True)",
        ],
    ),
    (
        "lost update",
        DEFAULT,
        [
            "call(env=0)",
            "call(env=1)",
            "call(env=2)",
            "call(env=0, fail=True)",
            "call(env=0, fail=True)",
            "call(env=1, fail=True)",
            "call(env=1, fail=True)",
        ],
    ),
    (
        "not a local breaker",
        DEFAULT,
        [
            "call(env=0)",
            "call(env=1)",
            "call(env=2)",
            "recover()",
            "advance(seconds=10)",
            "call(env=0)",
            "outage()",
            "store_fault(kind='fail_all')",
            "call(env=1)",
            "call(env=1)",
            "call(env=1)",
        ],
    ),
    (
        "store error leaked",
        DEFAULT,
        [
            "call(env=0)",
            "call(env=1)",
            "call(env=2)",
            "outage()",
            "call(env=0)",
            "call(env=0)",
            "advance(seconds=10)",
            "store_fault(kind='fail_writes')",
            "call(env=0, fail=True)",
            "call(env=0, fail=True)",
        ],
    ),
    (
        "transition stored but not reported",
        STALE,
        [
            "call(env=0)",
            "call(env=1)",
            "call(env=2)",
            "outage()",
            "call(env=1, fail=True)",
            "call(env=0)",
            "call(env=0)",
            "recover()",
            "advance(seconds=2)",
            "call(env=0)",
            "call(env=1, fail=True)",
        ],
    ),
    (
        "two concurrent probes",
        STALE,
        [
            "call(env=0)",
            "call(env=1)",
            "call(env=2)",
            "outage()",
            "advance(seconds=1)",
            "call(env=0)",
            "call(env=0)",
            "recover()",
            "advance(seconds=2)",
            "call(env=0)",
            "advance(seconds=1)",
            "advance(seconds=1)",
            "slow_call(env=1)",
            "call(env=0, fail=True)",
        ],
    ),
    (
        "call while open",
        STALE,
        [
            "call(env=0)",
            "call(env=1)",
            "call(env=2)",
            "outage()",
            "advance(seconds=1)",
            "call(env=0)",
            "call(env=0)",
            "recover()",
            "advance(seconds=2)",
            "call(env=0)",
            "advance(seconds=1)",
            "advance(seconds=1)",
            "call(env=1, fail=True)",
            "call(env=0, fail=True)",
        ],
    ),
    (
        "unelected probe",
        STALE,
        [
            "call(env=0)",
            "call(env=1)",
            "call(env=2)",
            "outage()",
            "call(env=0)",
            "call(env=0)",
            "recover()",
            "advance(seconds=2)",
            "call(env=0)",
            "outage()",
            "call(env=1)",
            "call(env=1)",
            "advance(seconds=2)",
            "call(env=0, fail=True)",
        ],
    ),
    (
        "premature trip",
        STALE,
        [
            "call(env=0)",
            "call(env=1)",
            "call(env=2)",
            "outage()",
            "advance(seconds=1)",
            "call(env=0)",
            "call(env=0)",
            "recover()",
            "advance(seconds=2)",
            "call(env=0)",
            "recover()",
            "advance(seconds=2)",
            "call(env=1)",
            "call(env=1)",
            "call(env=1)",
            "outage()",
            "call(env=0)",
        ],
    ),
]


def test_a_trip_and_recovery_through_the_powertools_adapter() -> None:
    from aws_lambda_powertools.utilities.circuit_breaker import base

    before = (base._LOCAL_FAILURES, base._PROBE_OWNER)  # type: ignore[attr-defined]
    history, verdict = run_schedule(
        PowertoolsAdapter(),
        ["outage()", "call(env=0)", "call(env=0)", "call(env=1)", "advance(seconds=10)", "recover()",
         "call(env=1)", "call(env=1)", "call(env=0)"],
        config=DEFAULT,
    )  # fmt: skip
    assert verdict.valid is True, verdict.report(history)
    assert [(op.environment, op.value["to"]) for op in history.filter("transition")] == [
        ("env-0", "OPEN"), ("env-1", "HALF_OPEN"), ("env-1", "CLOSED"),
    ]  # fmt: skip
    owners = [
        op.value["truth"]["half_open_owner"] for op in history.filter("store_write") if op.value["stored"]
    ]
    assert owners == [None, "env-1", None]  # one simulated process, one probe owner id
    after = (base._LOCAL_FAILURES, base._PROBE_OWNER)  # type: ignore[attr-defined]
    assert after == before


def test_the_powertools_clock_is_the_fake_clock_and_is_restored() -> None:
    import datetime as real

    from aws_lambda_powertools.utilities.circuit_breaker import base

    history, _ = run_schedule(PowertoolsAdapter(), ["outage()", "call(env=0)", "call(env=0)"], config=DEFAULT)
    opened_at = history.filter("store_write")[0].value["truth"]["opened_at"]
    assert opened_at == int(history.start_time)
    assert base.dt is real


def test_powertools_needs_whole_seconds_and_a_refused_run_leaves_nothing_behind() -> None:
    from aws_lambda_powertools.utilities.circuit_breaker import base

    from breaker import events

    listeners = list(events._listeners)
    with pytest.raises(ValueError, match=r"whole seconds: recovery_timeout=2\.5"):
        run_schedule(PowertoolsAdapter(), [], config=CircuitBreakerConfig(recovery_timeout=2.5))
    assert events._listeners == listeners
    import datetime as real

    assert base.dt is real


def test_the_harness_reports_on_powertools() -> None:
    """Run the state machine on Powertools: it produces a verdict (here: the anomalies it finds)."""
    machine = machine_class(PowertoolsAdapter(), config=DEFAULT)
    failure = find_failure(machine, settings=hypothesis.settings(FAST, max_examples=100), seed=1)
    if failure is not None:
        assert isinstance(failure, InvariantViolation)
        assert failure.verdict.valid is False
        assert set(failure.verdict.anomaly_types) <= set(ANOMALY_TYPES)
        assert "Seed: 1" in str(failure)


@pytest.mark.parametrize(("anomaly", "config", "steps"), FINDINGS, ids=[finding[0] for finding in FINDINGS])
def test_each_documented_finding_reproduces_and_this_library_passes_it(
    anomaly: str, config: CircuitBreakerConfig, steps: list[str]
) -> None:
    history, verdict = run_schedule(PowertoolsAdapter(), steps, config=config)
    assert anomaly in verdict.anomaly_types, verdict.report(history)
    ours, ours_verdict = run_schedule(BreakerLibraryAdapter(), steps, config=config)
    assert ours_verdict.valid is True, ours_verdict.report(ours)


def test_pybreaker_through_its_adapter() -> None:
    history, verdict = run_schedule(
        PybreakerAdapter(),
        ["outage()", "call(env=0)", "call(env=0)", "call(env=0)", "call(env=1)", "advance(seconds=10)",
         "recover()", "call(env=0)", "call(env=0)"],
        config=DEFAULT,
    )  # fmt: skip
    assert [op.kind for op in history.filter(("call_ok", "call_failed", "rejected"), environment="env-0")] == [
        "call_failed", "call_failed", "rejected", "call_ok", "call_ok",
    ]  # fmt: skip
    assert [op.value["to"] for op in history.filter("transition")] == ["OPEN", "HALF_OPEN", "CLOSED"]
    assert verdict.valid is None  # no shared store: the store checkers cannot tell
    assert verdict.checks["nothing_lost"] is True
    assert verdict.checks["legal_paths"] is True
    machine = machine_class(PybreakerAdapter(), config=DEFAULT)
    assert find_failure(machine, settings=hypothesis.settings(FAST, max_examples=30), seed=1) is None
