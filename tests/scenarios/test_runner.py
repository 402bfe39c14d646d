"""The runner: each fault kind has its effect; this library passes every pack; exploration shrinks and seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_circuitbreaker.history import COLD_START, CRASH, STORE_FAULT, STORE_OUTAGE
from pytest_circuitbreaker.scenario_format import Expectations, Fault, Scenario, load_scenario
from pytest_circuitbreaker.scenarios import Example, Unsupported, explore, run_scenario

from .conftest import PACKS

CONFIG = {"failure_threshold": 2, "recovery_timeout": 10, "success_threshold": 2, "local_cache_max_age": 2}


def scenario(*faults: Fault, **kwargs: object) -> Scenario:
    values: dict[str, object] = {
        "name": "t",
        "path": "t.toml",
        "environments": 3,
        "duration": 60.0,
        "tick": 0.5,
        "config": CONFIG,
        "schedule": list(faults),
    }
    values.update(kwargs)
    return Scenario(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", PACKS, ids=[p.stem for p in PACKS])
def test_this_library_passes_every_pack(path: Path) -> None:
    result = explore(load_scenario(path), "breaker", seed=20240601, examples=2)
    assert result.status == "pass", result.message()


def test_no_fault_no_trip_and_no_writes() -> None:
    result = run_scenario(scenario(), "breaker", seed=1)
    assert result.status == "pass"
    assert result.metrics["transitions"] == 0
    assert result.metrics["store_writes_per_call"] == 0
    assert result.metrics["store_reads_per_call"] <= 0.5 * 2 / 2  # one read per local_cache_max_age per env


def test_outage_trips_and_recovery_closes() -> None:
    result = run_scenario(scenario(Fault("downstream_outage", at=5, duration=10)), "breaker", seed=1)
    assert result.metrics["path"].startswith("CLOSED>OPEN>HALF_OPEN")
    assert result.metrics["final_state"] == "CLOSED"
    assert result.metrics["fallbacks"] > 0
    assert 5 <= result.metrics["opened_at"] <= 7


def test_error_rate_is_seeded() -> None:
    faults = (Fault("downstream_error_rate", at=0, duration=60, options={"rate": 0.5}),)
    one = run_scenario(scenario(*faults), "breaker", seed=7)
    two = run_scenario(scenario(*faults), "breaker", seed=7)
    other = run_scenario(scenario(*faults), "breaker", seed=8)
    assert one.metrics == two.metrics
    assert one.metrics["downstream_failures"] > 10
    assert one.metrics != other.metrics


def test_ignored_errors_never_trip() -> None:
    result = run_scenario(
        scenario(Fault("ignored_errors", at=0, duration=60, options={"rate": 1.0})), "breaker", seed=1
    )
    assert result.metrics["downstream_failures"] == 0  # counted failures
    assert result.metrics["transitions"] == 0
    assert result.status == "pass"


def test_slow_calls_stay_in_flight_for_their_latency() -> None:
    result = run_scenario(
        scenario(Fault("downstream_slow", at=0, duration=20, options={"latency": 2.0})), "breaker", seed=1
    )
    assert result.history is not None
    starts = result.history.filter("call_started", where=lambda op: op.value == {"slow": True})
    assert starts
    # one invocation at a time per environment: about one call per environment per 2 s
    assert len(starts) <= 3 * (20 / 2) + 3


def test_store_outage_is_injected_and_stays_inside() -> None:
    result = run_scenario(
        scenario(
            Fault("store_outage", at=3, duration=20, options={"kind": "fail_all"}),
            Fault("downstream_outage", at=5, duration=10),
        ),
        "breaker",
        seed=1,
    )
    assert result.history is not None
    assert [op.value["fault"] for op in result.history.filter(STORE_OUTAGE)] == ["fail_all", None]
    assert result.history.filter(STORE_FAULT)
    assert result.metrics["caller_errors"] == 0
    assert result.status == "pass"


def test_cold_start_resets_the_chosen_environments() -> None:
    result = run_scenario(scenario(Fault("cold_start", at=5, options={"environments": 2})), "breaker", seed=1)
    assert result.history is not None
    assert sorted(op.environment or "" for op in result.history.filter(COLD_START)) == ["env-0", "env-1"]


def test_probe_owner_crash_kills_the_owner_and_the_circuit_still_closes() -> None:
    result = run_scenario(
        scenario(
            Fault("downstream_outage", at=2, duration=8),
            Fault("downstream_slow", at=10, duration=10, options={"latency": 3.0}),
            Fault("probe_owner_crash", at=10, duration=15),
            config={**CONFIG, "probe_lease": 5},
        ),
        "breaker",
        seed=1,
    )
    assert result.history is not None
    (crash,) = result.history.filter(CRASH)
    assert crash.environment == "env-0", result.notes  # the owner, mid-probe
    assert result.metrics["final_state"] == "CLOSED"
    assert result.status == "pass", result.message()


def test_probe_owner_crash_without_owner_is_noted() -> None:
    result = run_scenario(scenario(Fault("probe_owner_crash", at=5)), "breaker", seed=1)
    assert any("nobody held the probe" in note for note in result.notes)


def test_clock_skew_moves_one_environments_wall_clock() -> None:
    from pytest_circuitbreaker.scenarios import ScenarioBreakerAdapter

    result = run_scenario(
        scenario(
            Fault("clock_skew", at=0, options={"environment": 1, "seconds": 4.0}),
            Fault("downstream_outage", at=5, duration=10),
        ),
        "breaker",
        seed=1,
    )
    assert result.status == "pass", result.message()
    adapter = ScenarioBreakerAdapter()
    adapter.skews[1] = 4.0
    assert "clock_skew" in [f["fault"] for f in result.faults]


def test_async_mode_protects_awaited_failures_and_powertools_does_not() -> None:
    s = scenario(Fault("downstream_outage", at=5, duration=10), mode="async", expect=Expectations(opens=True))
    ours = run_scenario(s, "breaker", seed=1)
    theirs = run_scenario(s, "powertools", seed=1)
    assert ours.status == "pass"
    assert ours.metrics["opened_at"] is not None
    assert theirs.status == "fail"
    assert theirs.expectation_failures == ["opens = true: the circuit never opened"]


def test_adapter_without_a_feature_is_unsupported() -> None:
    with pytest.raises(Unsupported, match="async"):
        run_scenario(scenario(mode="async"), "pybreaker", seed=1)
    with pytest.raises(Unsupported, match="skew"):
        run_scenario(
            scenario(Fault("clock_skew", at=0, options={"environment": 0, "seconds": 1.0})),
            "pybreaker",
            seed=1,
        )


def test_expectations_report_each_broken_one() -> None:
    s = scenario(
        Fault("downstream_outage", at=5, duration=50),
        expect=Expectations(
            opens=False, closes_by=30.0, max_downstream_calls_after_trip=0, min_fallbacks=10**6
        ),
    )
    result = run_scenario(s, "breaker", seed=1)
    assert result.status == "fail"
    joined = "\n".join(result.expectation_failures)
    for key in ("opens = false", "closes_by = 30", "min_fallbacks"):
        assert key in joined
    assert "replay:" in result.message()


def test_jitter_moves_faults_in_whole_ticks() -> None:
    s = scenario(Fault("downstream_outage", at=10, duration=10))
    result = run_scenario(s, "breaker", seed=1, example=Example(order=5, shifts=((-1.0, 1.5),)))
    assert result.faults[0]["start"] == 9.0
    assert result.faults[0]["end"] == 21.5
    assert "order=5" in result.example.describe()


def test_exploration_finds_and_shrinks_a_failing_interleaving() -> None:
    # Powertools' unconditional writes lose updates when two environments trip together:
    # hypothesis finds an order that shows it (the natural order may not).
    s = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "thundering_herd.toml")
    result = explore(s, "powertools", seed=3, examples=10)
    assert result.status == "fail"
    assert "lost update" in result.anomalies or result.expectation_failures
