"""The state machines against this library: embedded store (fast profile), DynamoDB on moto and a
real Redis server (smaller profile); plus the Simulation's steps, replay and failure report."""

from __future__ import annotations

import hypothesis
import pytest

from breaker import CircuitBreakerConfig
from breaker.persistence import InMemoryPersistence
from pytest_circuitbreaker.adapters import BreakerLibraryAdapter, PybreakerAdapter
from pytest_circuitbreaker.checkers import check
from pytest_circuitbreaker.stateful import (
    FAST,
    SMALL,
    HarnessError,
    InvariantViolation,
    Simulation,
    find_failure,
    machine_class,
    make_test_case,
    run_machine,
    run_schedule,
)

# ---------------------------------------------------------------------- the library, as users run it

#: The embedded store, default harness config (fast profile; the seed is random and printed on failure).
TestBreakerOnMemory = make_test_case(BreakerLibraryAdapter(), settings=FAST)

#: Views that stay fresh longer than the open window, a short probe lease, a fallback, two environments.
TestBreakerWithStaleViewsAndFallback = make_test_case(
    BreakerLibraryAdapter(),
    config=CircuitBreakerConfig(
        failure_threshold=1, recovery_timeout=2, success_threshold=2, local_cache_max_age=5, probe_lease=1
    ),
    environments=2,
    fallback=True,
    settings=FAST,
)

#: Every call reads the store, no store backoff.
TestBreakerReadingEveryCall = make_test_case(
    BreakerLibraryAdapter(),
    config=CircuitBreakerConfig(
        failure_threshold=3, recovery_timeout=5, success_threshold=1, local_cache_max_age=0, store_backoff=0
    ),
    settings=hypothesis.settings(FAST, max_examples=20),
)


def test_on_dynamodb_with_moto(dynamodb_store: object) -> None:
    machine = machine_class(BreakerLibraryAdapter(dynamodb_store))  # type: ignore[arg-type]
    run_machine(machine, settings=SMALL)


def test_on_a_real_redis_server(redis_store: object) -> None:
    machine = machine_class(BreakerLibraryAdapter(redis_store))  # type: ignore[arg-type]
    run_machine(machine, settings=SMALL)


# ---------------------------------------------------------------------- known histories


def test_a_trip_and_recovery_is_valid_and_reported_once() -> None:
    history, verdict = run_schedule(
        BreakerLibraryAdapter(),
        ["outage()", "call(env=0)", "call(env=0)", "call(env=1)", "advance(seconds=10)", "recover()",
         "call(env=2)", "call(env=2)", "call(env=1)"],
    )  # fmt: skip
    assert verdict.valid is True, verdict.report(history)
    paths = [(op.environment, op.value["from"], op.value["to"]) for op in history.filter("transition")]
    assert paths == [
        ("env-0", "CLOSED", "OPEN"),
        ("env-2", "OPEN", "HALF_OPEN"),
        ("env-2", "HALF_OPEN", "CLOSED"),
    ]
    assert [op.kind for op in history.filter(("rejected", "call_ok"), environment="env-1")] == [
        "rejected",
        "call_ok",
    ]


def test_a_crash_mid_probe_is_taken_over_after_the_lease() -> None:
    history, verdict = run_schedule(
        BreakerLibraryAdapter(),
        ["outage()", "call(env=0)", "call(env=0)", "advance(seconds=10)", "recover()",
         "slow_call(env=0)",  # env-0 wins the election; its probe hangs in the downstream
         "crash(env=0)",  # ... and its process vanishes
         "call(env=1)",  # the lease holds: rejected
         "advance(seconds=11)", "call(env=1)", "call(env=1)"],
    )  # fmt: skip
    assert verdict.valid is True, verdict.report(history)
    assert [op.kind for op in history.filter(("rejected", "call_ok"), environment="env-1")] == [
        "rejected", "call_ok", "call_ok",
    ]  # fmt: skip
    assert history.filter("crash")[0].value == {"replaced_by": "env-0#1"}
    assert history.filter("probe", environment="env-1")[0].value == {"phase": "takeover", "previous": "env-0"}


def test_a_local_retrip_over_a_still_open_record_is_not_reported_as_a_transition() -> None:
    """Found by this harness: env-0 probes and closes locally during a read outage, trips again, and
    once the store answers its pending trip must not report CLOSED→OPEN over the OPEN record."""
    history, verdict = run_schedule(
        BreakerLibraryAdapter(),
        ["call(env=0, fail=True)", "call(env=0, fail=True)", "store_fault(kind='fail_reads')",
         "advance(seconds=10)", "call(env=0)", "call(env=0)", "call(env=0, fail=True)", "call(env=0, fail=True)",
         "store_recover()", "advance(seconds=5)", "call(env=0)"],
    )  # fmt: skip
    assert verdict.valid is True, verdict.report(history)
    # The shared record was OPEN all along: its window has passed, so env-0 elects itself and probes.
    assert [(op.value["from"], op.value["to"]) for op in history.filter("transition")] == [
        ("CLOSED", "OPEN"), ("OPEN", "HALF_OPEN"),
    ]  # fmt: skip


def test_the_harness_flags_an_ambiguous_write_reported_twice() -> None:
    """env-1's trip write fails; env-0 stored the very same record meanwhile: one transition, one report."""
    history, verdict = run_schedule(
        BreakerLibraryAdapter(),
        ["call(env=1, fail=True)", "call(env=0, fail=True)", "call(env=0, fail=True)",
         "store_fault(kind='fail_writes')", "call(env=1, fail=True)", "store_recover()",
         "advance(seconds=5)", "call(env=1)"],
    )  # fmt: skip
    assert verdict.valid is True, verdict.report(history)


def test_slow_calls_stay_in_flight_and_a_busy_environment_skips_calls() -> None:
    with Simulation(BreakerLibraryAdapter(), environments=2) as sim:
        slow = sim.slow_call(env=0)
        assert slow is not None
        assert slow.env == 0
        assert sim.call(env=0) is None  # one invocation at a time per environment
        assert sim.cold_start(env=0) is None
        assert sim.call(env=1) == "call_ok"
        assert sim.finish(env=0) == "call_ok"
        assert sim.finish(env=0) is None
        assert sim.check().valid is True
        started = [op.call for op in sim.history.filter("call_started")]
        assert started == [1, 2]  # the skipped call never started


def test_a_rejected_slow_call_ends_at_once() -> None:
    config = CircuitBreakerConfig(failure_threshold=1)
    with Simulation(BreakerLibraryAdapter(), config=config) as sim:
        sim.call(env=0, fail=True)
        assert sim.slow_call(env=0) is None
        assert sim.history.filter("rejected")


def test_close_unwinds_calls_left_in_flight_and_recording_stops() -> None:
    sim = Simulation(BreakerLibraryAdapter(), environments=2)
    sim.slow_call(env=0)
    sim.slow_call(env=1)
    sim.crash(env=1)
    ops = len(sim.history)
    sim.close()
    sim.close()  # idempotent
    assert len(sim.history) == ops
    with pytest.raises(HarnessError, match="closed"):
        sim.call(env=0)


def test_steps_replay_from_their_code() -> None:
    with Simulation(BreakerLibraryAdapter(), environments=2) as sim:
        sim.outage()
        sim.call(env=0)
        sim.store_fault("timeout")
        sim.store_recover()
        sim.advance(2.5)
        code = sim.replay_code()
        steps = list(sim.steps)
    assert steps == [
        "outage()",
        "call(env=0)",
        "store_fault(kind='timeout')",
        "store_recover()",
        "advance(seconds=2.5)",
    ]
    assert code.splitlines()[0].startswith(
        "sim = Simulation(BreakerLibraryAdapter(), config=CircuitBreakerConfig("
    )
    history, _ = run_schedule(BreakerLibraryAdapter(), [f"sim.{step}" for step in steps], environments=2)
    assert [op.kind for op in history.filter(("store_outage", "clock"))] == [
        "store_outage",
        "store_outage",
        "clock",
    ]
    history, _ = run_schedule(BreakerLibraryAdapter(), [("call", {"env": 1})], environments=2)
    assert history.filter("call_ok", environment="env-1")


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("explode()", "unknown step 'explode'"),
        ("call(0)", "keyword arguments"),
        ("call(env=x)", "literal values"),
        (42, "a string such as"),
    ],
)
def test_bad_steps_say_what_a_step_looks_like(step: object, message: str) -> None:
    with pytest.raises(HarnessError, match=message):
        run_schedule(BreakerLibraryAdapter(), [step])  # type: ignore[list-item]


def test_bad_arguments_name_what_is_allowed() -> None:
    with pytest.raises(TypeError, match="BreakerAdapter instance"):
        Simulation("breaker")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="environments must be an int >= 1"):
        Simulation(BreakerLibraryAdapter(), environments=0)
    with pytest.raises(ValueError, match="let ConnectionError count"):
        Simulation(BreakerLibraryAdapter(), config=CircuitBreakerConfig(handled_exceptions=TimeoutError))
    with pytest.raises(ValueError, match="no on_circuit_open fallback"):
        Simulation(PybreakerAdapter(), fallback=True)
    with Simulation(BreakerLibraryAdapter(), environments=1) as sim:
        with pytest.raises(ValueError, match="from 0 to 0"):
            sim.call(env=1)
        with pytest.raises(ValueError, match="store_fault"):
            sim.store_fault("flood")
    with pytest.raises(TypeError, match="pass store= to the adapter"):
        machine_class(BreakerLibraryAdapter(), store=InMemoryPersistence())
    with pytest.raises(TypeError, match=r"breaker\.CircuitBreaker or a subclass"):
        BreakerLibraryAdapter(breaker_class=dict)  # type: ignore[arg-type]


def test_a_failure_reports_anomalies_shrunk_steps_seed_and_history() -> None:
    from pytest_circuitbreaker.checkers import Anomaly, Verdict
    from pytest_circuitbreaker.history import History

    def no_rejections(history: History) -> Verdict:  # a user's own checker
        ops = history.filter("rejected")
        return Verdict.of(
            "no_rejections",
            [Anomaly("rejection", tuple(ops[:1]), "a call was rejected", "no_rejections")] if ops else [],
        )

    machine = machine_class(BreakerLibraryAdapter(), checkers=[no_rejections], environments=2)
    failure = find_failure(machine, settings=hypothesis.settings(FAST, max_examples=100), seed=42)
    assert isinstance(failure, InvariantViolation)
    message = str(failure)
    assert 'anomaly "rejection" (no_rejections)' in message
    assert "Steps (as hypothesis shrank them), as code that replays them:" in message
    assert "Seed: 42" in message
    assert "--hypothesis-seed=42" in message
    assert failure.seed == 42
    assert failure.steps
    assert len(failure.history) > 0
    assert len(failure.steps) <= 2 + 5, failure.steps  # the warm-up, a trip and one rejected call
    _, verdict = run_schedule(
        BreakerLibraryAdapter(), failure.steps, environments=2, checkers=[no_rejections]
    )
    assert verdict.valid is False


def test_make_test_case_is_a_unittest_case_with_its_machine() -> None:
    import unittest

    case = make_test_case(
        BreakerLibraryAdapter(), environments=1, settings=hypothesis.settings(FAST, max_examples=3), seed=1
    )
    assert issubclass(case, unittest.TestCase)
    result = unittest.TestResult()
    case().run(result)
    assert result.wasSuccessful(), result.failures
    assert case.machine.environments == 1  # type: ignore[attr-defined]


def test_check_runs_on_a_history_read_back_from_json() -> None:
    from pytest_circuitbreaker.history import History

    history, verdict = run_schedule(
        BreakerLibraryAdapter(), ["outage()", "call(env=0)", "call(env=0)", "call(env=1)"]
    )
    again = check(History.from_json(history.to_json()))
    assert again.valid is verdict.valid is True
    assert again.checks == verdict.checks
