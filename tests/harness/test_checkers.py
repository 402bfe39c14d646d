"""Each checker on hand-built histories: with its anomaly (flagged, with the ops) and without (valid)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_circuitbreaker.checkers import (
    ALL,
    ANOMALY_TYPES,
    Verdict,
    check,
    compose,
    ignoring,
    legal_paths,
    liveness,
    no_lost_updates,
    nothing_lost,
    one_probe,
    open_means_shut,
    store_faults_inside,
    trips_on_streak,
    write_free_health,
)
from pytest_circuitbreaker.history import History, Op

START = 1000.0
CONFIG = {
    "failure_threshold": 2,
    "recovery_timeout": 10,
    "success_threshold": 2,
    "local_cache_max_age": 3,
    "probe_lease": 10,
    "store_backoff": 5,
}


def record(state: str, version: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "db",
        "state": state,
        "version": version,
        "failure_count": 0,
        "opened_at": None,
        "half_open_owner": None,
        "probe_lease_expiry": None,
        "pinned": False,
        "expires_at": None,
    }
    for key, value in fields.items():
        base[key] = START + value if key in ("opened_at", "probe_lease_expiry") else value
    return base


class Build:
    """Appends realistic ops; ``at(seconds)`` sets the time since START; tracks the store truth."""

    def __init__(self, *, shared: bool = True, config: dict[str, Any] | None = None) -> None:
        self.history = History(meta={"shared_store": shared, "config": config or CONFIG, "start_time": START})
        self.now = START
        self.truth: dict[str, Any] | None = None
        self.calls = 0

    def at(self, seconds: float) -> Build:
        self.now = START + seconds
        return self

    def op(self, kind: str, value: Any = None, env: str | None = None, call: int | None = None) -> Op:
        return self.history.append(kind, value, time=self.now, environment=env, call=call, circuit="db")

    def read(self, env: str, call: int | None = None) -> Op:
        return self.op("store_read", {"record": self.truth, "truth": self.truth}, env, call)

    def write(
        self, env: str, new: dict[str, Any], *, expected: int | None = None, stored: bool = True,
        call: int | None = None, conditional: str = "version",
    ) -> Op:  # fmt: skip
        before = self.truth
        if expected is None:
            expected = before["version"] if before else 0
        if stored:
            self.truth = new
        value = {"record": new, "expected_version": expected, "stored": stored, "before": before,
                 "truth": self.truth, "conditional": conditional}  # fmt: skip
        return self.op("store_write", value, env, call)

    def fault(self, env: str, *, op: str = "read", timeout: bool = False, call: int | None = None) -> Op:
        return self.op("store_fault", {"op": op, "error": "ConnectionError: down", "timeout": timeout,
                                       "truth": self.truth}, env, call)  # fmt: skip

    def transition(self, env: str, frm: str, to: str, call: int | None = None) -> Op:
        return self.op("transition", {"from": frm, "to": to, "opened_at": None}, env, call)

    def start(self, env: str) -> int:
        self.calls += 1
        self.op("call_started", {"slow": False}, env, self.calls)
        return self.calls

    def run(self, env: str, call: int, ok: bool = True) -> None:
        self.op("downstream_call", "start", env, call)
        self.op("downstream_call", "ok" if ok else "failed", env, call)

    def end(self, env: str, call: int, kind: str = "call_ok", **value: Any) -> Op:
        info = {"ran": kind in ("call_ok", "call_failed"), "fallback": kind == "fallback", "error": None,
                "source": {"call_failed": "downstream", "rejected": "open"}.get(kind)}  # fmt: skip
        info.update(value)
        return self.op(kind, info, env, call)

    def call(self, env: str, *, ok: bool = True, read: bool = False) -> int:
        call = self.start(env)
        if read:
            self.read(env, call)
        self.run(env, call, ok)
        self.end(env, call, "call_ok" if ok else "call_failed")
        return call

    def rejected(self, env: str, *, read: bool = False) -> int:
        call = self.start(env)
        if read:
            self.read(env, call)
        self.end(env, call, "rejected")
        return call

    def trip(self, env: str, at: float = 0.0) -> None:
        """env fails twice (reading first) and stores CLOSED->OPEN at ``at``."""
        self.at(at)
        self.call(env, ok=False, read=True)
        call = self.start(env)
        self.run(env, call, ok=False)
        self.write(env, record("OPEN", (self.truth or {}).get("version", 0) + 1, opened_at=at), call=call)
        self.transition(env, "CLOSED", "OPEN", call)
        self.end(env, call, "call_failed")

    def elect(self, env: str, at: float, lease: float) -> int:
        """env wins the probe election at ``at`` and runs its first probe."""
        self.at(at)
        call = self.start(env)
        self.read(env, call)
        previous = self.truth or {}
        self.write(env, record("HALF_OPEN", previous.get("version", 0) + 1, opened_at=previous.get("opened_at", START) - START,
                               half_open_owner=env, probe_lease_expiry=lease), call=call)  # fmt: skip
        if previous.get("state") == "OPEN":
            self.transition(env, "OPEN", "HALF_OPEN", call)
        self.run(env, call)
        self.end(env, call)
        return call


def types(verdict: Verdict) -> list[str]:
    return verdict.anomaly_types


# ---------------------------------------------------------------------- 1. legal paths


def test_a_full_recovery_cycle_is_valid_for_every_checker() -> None:
    b = Build()
    b.call("env-1", read=True)
    b.trip("env-0")
    b.at(1).rejected("env-0")
    b.elect("env-0", at=10, lease=20)
    call = b.start("env-0")
    b.run("env-0", call)
    b.write("env-0", record("CLOSED", 4), call=call)
    b.transition("env-0", "HALF_OPEN", "CLOSED", call)
    b.end("env-0", call)
    verdict = check(b.history)
    assert verdict.valid is True, verdict.report(b.history)
    assert set(verdict.checks) == {checker.__name__ for checker in ALL}


def test_transition_reported_but_not_stored() -> None:
    b = Build()
    b.trip("env-0")
    phantom = b.transition("env-1", "CLOSED", "OPEN")
    verdict = legal_paths(b.history)
    assert types(verdict) == ["transition reported but not stored"]
    assert verdict.anomalies["transition reported but not stored"] == [phantom]


def test_a_transition_reported_twice_is_reported_but_not_stored_once() -> None:
    b = Build()
    b.trip("env-0")
    again = b.transition("env-0", "CLOSED", "OPEN")
    assert legal_paths(b.history).anomalies == {"transition reported but not stored": [again]}


def test_transition_stored_but_not_reported() -> None:
    b = Build()
    silent = b.write("env-0", record("OPEN", 1, opened_at=0))
    assert legal_paths(b.history).anomalies == {"transition stored but not reported": [silent]}


def test_illegal_transition_in_the_store() -> None:
    b = Build()
    jump = b.write(
        "env-0", record("HALF_OPEN", 1, opened_at=0, half_open_owner="env-0", probe_lease_expiry=10)
    )
    b.transition("env-0", "CLOSED", "HALF_OPEN")
    verdict = legal_paths(b.history)
    assert "illegal transition" in types(verdict)
    assert jump in verdict.anomalies["illegal transition"]


def test_manual_commands_may_jump_states() -> None:
    b = Build()
    b.write("env-0", record("OPEN", 1, opened_at=0, pinned=True))
    b.transition("env-0", "CLOSED", "OPEN")
    b.write("env-0", record("CLOSED", 2))
    b.transition("env-0", "OPEN", "CLOSED")
    assert legal_paths(b.history).valid is True


def test_without_a_store_each_environment_must_report_a_legal_path() -> None:
    b = Build(shared=False)
    b.transition("env-0", "CLOSED", "OPEN")
    b.transition("env-0", "OPEN", "HALF_OPEN")
    b.op("cold_start", None, "env-0")
    b.transition("env-0", "CLOSED", "OPEN")  # a new process starts CLOSED
    assert legal_paths(b.history).valid is True
    bad = b.transition("env-0", "CLOSED", "OPEN")  # but it is OPEN now
    assert legal_paths(b.history).anomalies == {"illegal transition": [bad]}


# ---------------------------------------------------------------------- 2. open means shut


def test_call_while_open_by_an_environment_that_read_the_open_record() -> None:
    b = Build()
    b.trip("env-0")
    b.at(2)
    call = b.start("env-1")
    read = b.read("env-1", call)
    b.run("env-1", call)
    b.end("env-1", call)
    verdict = open_means_shut(b.history)
    assert types(verdict) == ["call while open"]
    assert read in verdict.anomalies["call while open"]


def test_a_stale_view_is_excused_within_local_cache_max_age_only() -> None:
    b = Build()
    b.call("env-1", read=True)  # env-1 sees CLOSED at +0 (fresh for 3 s)
    b.trip("env-0", at=1)
    b.at(2.5).call("env-1")  # its view is 2.5 s old: excused
    assert open_means_shut(b.history).valid is True
    b.at(3).call("env-1")  # 3 s old: it had to read again
    assert types(open_means_shut(b.history)) == ["call while open"]


def test_an_environment_whose_store_calls_fail_is_excused() -> None:
    b = Build()
    b.trip("env-0")
    b.at(5)
    call = b.start("env-1")
    b.fault("env-1", call=call)
    b.run("env-1", call)
    b.end("env-1", call)
    assert open_means_shut(b.history).valid is True


# ---------------------------------------------------------------------- 3. one probe


def test_two_concurrent_probes() -> None:
    b = Build()
    b.trip("env-0")
    b.elect("env-0", at=10, lease=20)
    b.at(11)
    call = b.start("env-1")
    b.read("env-1", call)
    b.run("env-1", call)
    b.end("env-1", call)
    verdict = one_probe(b.history)
    assert types(verdict) == ["two concurrent probes"]
    assert open_means_shut(b.history).valid is True  # HALF_OPEN is the probe checker's business


def test_a_takeover_after_the_lease_is_not_a_second_probe() -> None:
    b = Build()
    b.trip("env-0")
    b.elect("env-0", at=10, lease=20)
    b.elect("env-1", at=20, lease=30)
    assert one_probe(b.history).valid is True


def test_a_probe_without_winning_the_election_is_unelected() -> None:
    b = Build()
    b.trip("env-0")
    b.at(12)
    call = b.start("env-1")
    b.read("env-1", call)
    b.run("env-1", call)
    b.end("env-1", call)
    assert types(one_probe(b.history)) == ["unelected probe"]


# ---------------------------------------------------------------------- 4. write-free health


def test_write_while_healthy() -> None:
    b = Build()
    call = b.start("env-0")
    b.read("env-0", call)
    b.run("env-0", call)
    noise = b.write("env-0", record("CLOSED", 1), call=call)
    b.end("env-0", call)
    assert write_free_health(b.history).anomalies == {"write while healthy": [noise]}


def test_read_while_fresh_and_reads_once_per_max_age() -> None:
    b = Build()
    b.call("env-0", read=True)
    b.at(3).call("env-0", read=True)  # exactly local_cache_max_age later: fine
    b.at(6).call("env-1", read=True)  # another environment: fine
    assert write_free_health(b.history).valid is True
    b.at(7).call("env-1", read=True)
    verdict = write_free_health(b.history)
    assert types(verdict) == ["read while fresh"]
    assert [op.time - START for op in verdict.anomalies["read while fresh"]] == [6, 7]


def test_a_failure_is_a_reason_to_read_again() -> None:
    b = Build()
    b.call("env-0", read=True, ok=False)
    b.at(1).call("env-0", read=True)
    assert write_free_health(b.history).valid is True


# ---------------------------------------------------------------------- 5. no lost updates


def test_lost_update_by_version() -> None:
    b = Build()
    b.trip("env-0")
    stale = b.write("env-1", record("OPEN", 2, opened_at=0), expected=0, conditional="")
    assert no_lost_updates(b.history).anomalies == {"lost update": [stale]}


def test_lost_update_over_a_live_probe_even_with_a_matching_version() -> None:
    b = Build()
    b.trip("env-0")
    b.elect("env-0", at=10, lease=20)
    b.at(12)
    blind = b.write("env-1", record("OPEN", 3, opened_at=12))
    assert no_lost_updates(b.history).anomalies == {"lost update": [blind]}


def test_lost_update_extending_an_open_window() -> None:
    b = Build()
    b.trip("env-0")
    b.at(4)
    extended = b.write("env-1", record("OPEN", 2, opened_at=4))
    assert types(no_lost_updates(b.history)) == ["lost update"]
    assert no_lost_updates(b.history).anomalies["lost update"] == [extended]


def test_compare_and_set_chains_and_conditional_elections_are_not_lost_updates() -> None:
    b = Build()
    b.trip("env-0")
    b.at(10).write("env-1", record("HALF_OPEN", 2, opened_at=0, half_open_owner="env-1", probe_lease_expiry=20),
                   expected=0, conditional="state")  # fmt: skip
    b.at(11).write("env-1", record("CLOSED", 3))
    assert no_lost_updates(b.history).valid is True


# ---------------------------------------------------------------------- 6. nothing lost


def test_invocation_lost_when_a_call_never_ends() -> None:
    b = Build()
    call = b.start("env-0")
    verdict = nothing_lost(b.history)
    assert types(verdict) == ["invocation lost"]
    assert verdict.anomalies["invocation lost"][0].call == call


def test_in_flight_and_crashed_calls_are_not_lost() -> None:
    b = Build()
    slow = b.start("env-0")
    b.op("downstream_call", "start", "env-0", slow)
    stuck = b.start("env-1")
    b.op("crash", {"replaced_by": "env-1#1"}, "env-1")
    assert nothing_lost(b.history).valid is True
    assert stuck == slow + 1


def test_a_value_from_nowhere_is_a_lost_invocation() -> None:
    b = Build()
    call = b.start("env-0")
    b.end("env-0", call, "call_ok", ran=False)
    assert types(nothing_lost(b.history)) == ["invocation lost"]


def test_invocation_ended_twice() -> None:
    b = Build()
    call = b.start("env-0")
    b.run("env-0", call)
    b.end("env-0", call, "rejected", ran=True)
    assert types(nothing_lost(b.history)) == ["invocation ended twice"]
    b2 = Build()
    call = b2.call("env-0")
    b2.end("env-0", call)
    assert types(nothing_lost(b2.history)) == ["invocation ended twice"]


def test_a_foreign_error_is_lost_unless_a_store_fault_explains_it() -> None:
    b = Build()
    call = b.start("env-0")
    b.end("env-0", call, "call_failed", ran=False, source="breaker", error="KeyError: x")
    assert types(nothing_lost(b.history)) == ["invocation lost"]
    b2 = Build()
    call = b2.start("env-0")
    b2.fault("env-0", call=call)
    b2.end("env-0", call, "call_failed", ran=False, source="breaker", error="ConnectionError: down")
    assert nothing_lost(b2.history).valid is True
    assert types(store_faults_inside(b2.history)) == ["store error leaked"]


# ---------------------------------------------------------------------- 7. liveness


def test_stuck_open_after_the_window_and_the_staleness_bound() -> None:
    b = Build()
    b.trip("env-0")
    b.at(13.5).rejected("env-1", read=True)  # window ends at 10, +3 s stale, +1 s slack: not yet
    assert liveness(b.history).valid is True
    late = b.at(14).rejected("env-1", read=True)
    verdict = liveness(b.history)
    assert types(verdict) == ["stuck open"]
    assert verdict.anomalies["stuck open"][-1].call == late


def test_stuck_half_open_when_nobody_takes_over_a_dead_owners_probe() -> None:
    b = Build()
    b.trip("env-0")
    b.elect("env-0", at=10, lease=20)
    b.op("crash", {"replaced_by": "env-0#1"}, "env-0")
    b.at(23.5).rejected("env-1", read=True)
    assert liveness(b.history).valid is True
    b.at(24).rejected("env-1", read=True)
    assert types(liveness(b.history)) == ["stuck half-open"]


def test_stuck_half_open_when_enough_probes_succeed_without_closing() -> None:
    b = Build()
    b.trip("env-0")
    b.elect("env-0", at=10, lease=30)
    b.at(11).call("env-0")  # success_threshold = 2 successes now
    assert liveness(b.history).valid is True
    b.at(12).call("env-0")  # a third probe while still HALF_OPEN
    verdict = liveness(b.history)
    assert types(verdict) == ["stuck half-open"]
    assert len([op for op in verdict.anomalies["stuck half-open"] if op.kind == "downstream_call"]) == 3


def test_liveness_is_not_judged_during_a_store_outage() -> None:
    b = Build()
    b.trip("env-0")
    b.op("store_outage", {"fault": "fail_all"})
    b.at(30).rejected("env-1")
    assert liveness(b.history).valid is True


# ---------------------------------------------------------------------- 8. store faults stay inside


def test_store_error_leaked() -> None:
    b = Build()
    call = b.start("env-0")
    fault = b.fault("env-0", call=call)
    leaked = b.end("env-0", call, "call_failed", ran=False, source="breaker", error="ConnectionError: down")
    assert store_faults_inside(b.history).anomalies == {"store error leaked": [fault, leaked]}


def test_repeated_store_timeout_within_the_backoff() -> None:
    b = Build()
    b.at(1).fault("env-0", timeout=True, call=b.start("env-0"))
    b.at(6).fault("env-0", timeout=True, call=b.start("env-0"))  # after store_backoff: fine
    assert store_faults_inside(b.history).valid is True
    b.at(7).fault("env-0", timeout=True, call=b.start("env-0"))
    assert types(store_faults_inside(b.history)) == ["repeated store timeout"]


def test_not_a_local_breaker_when_failures_keep_running_without_a_store() -> None:
    b = Build()
    for second in range(3):
        call = b.at(second).start("env-0")
        b.fault("env-0", call=call)
        b.run("env-0", call, ok=False)
        b.end("env-0", call, "call_failed")
    verdict = store_faults_inside(b.history)
    assert types(verdict) == ["not a local breaker"]


def test_a_local_breaker_that_waits_out_its_window_is_fine() -> None:
    b = Build()
    for second in (0, 1, 11):
        call = b.at(second).start("env-0")
        b.fault("env-0", call=call)
        b.run("env-0", call, ok=False)
        b.end("env-0", call, "call_failed")
    assert store_faults_inside(b.history).valid is True


# ---------------------------------------------------------------------- §3 trips on a streak


def test_premature_trip() -> None:
    b = Build()
    b.call("env-0", ok=False, read=True)
    b.call("env-0")
    call = b.start("env-0")
    b.run("env-0", call, ok=False)
    trip = b.write("env-0", record("OPEN", 1, opened_at=0), call=call)
    verdict = trips_on_streak(b.history)
    assert types(verdict) == ["premature trip"]
    assert trip in verdict.anomalies["premature trip"]


def test_a_trip_after_a_streak_is_fine_and_without_a_store_transitions_count() -> None:
    b = Build()
    b.trip("env-0")
    assert trips_on_streak(b.history).valid is True
    local = Build(shared=False)
    local.call("env-0", ok=False)
    local.transition("env-0", "CLOSED", "OPEN")
    assert types(trips_on_streak(local.history)) == ["premature trip"]


# ---------------------------------------------------------------------- composing


def test_store_checkers_answer_unknown_without_a_store() -> None:
    b = Build(shared=False)
    b.call("env-0")
    verdict = check(b.history)
    assert verdict.valid is None
    assert verdict.checks["open_means_shut"] is None
    assert verdict.checks["nothing_lost"] is True
    assert "no store operations" in verdict.unknown["liveness"]
    assert verdict.report().startswith("unknown: ")


def test_compose_merges_and_a_user_checker_joins_in() -> None:
    def no_fallbacks(history: History) -> Verdict:
        from pytest_circuitbreaker.checkers import Anomaly

        ops = history.filter("fallback")
        return Verdict.of(
            "no_fallbacks",
            [Anomaly("fallback used", tuple(ops), "a fallback ran", "no_fallbacks")] if ops else [],
        )

    b = Build()
    call = b.start("env-0")
    b.end("env-0", call, "fallback")
    verdict = compose(nothing_lost, no_fallbacks)(b.history)
    assert verdict.valid is False
    assert verdict.checks == {"nothing_lost": True, "no_fallbacks": False}
    assert "fallback used" in verdict.report(b.history)
    with pytest.raises(TypeError, match="callable History -> Verdict"):
        compose("legal_paths")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must return a Verdict"):
        compose(lambda history: True)(b.history)  # type: ignore[arg-type,return-value]


def test_ignoring_drops_known_anomaly_types_and_refuses_unknown_names() -> None:
    b = Build()
    b.start("env-0")
    assert check(b.history, [ignoring("invocation lost")]).valid is True
    with pytest.raises(ValueError, match="unknown anomaly types"):
        ignoring("lost invocation")


def test_every_checker_reports_only_its_documented_types() -> None:
    assert set(ANOMALY_TYPES.values()) == {checker.__name__ for checker in ALL}
    with pytest.raises(ValueError, match="at least one checker"):
        check(History(), [])
