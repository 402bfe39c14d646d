"""History, Op, Recorder and RecordingStore: what a run records and how it round-trips."""

from __future__ import annotations

import json

import pytest

from breaker import CircuitBreaker, CircuitBreakerConfig, Environment, FakeClock
from breaker.persistence import CircuitRecord, InMemoryPersistence
from pytest_circuitbreaker.adapters import RecordingStore
from pytest_circuitbreaker.faults import StoreFaults
from pytest_circuitbreaker.history import KINDS, History, Op, Recorder, jsonable, state_name


def test_ops_get_their_position_as_index_and_filter_by_every_field() -> None:
    history = History(meta={"start_time": 100.0})
    history.append("call_started", {"slow": False}, time=100.0, environment="env-0", circuit="db", call=1)
    history.append("clock", {"seconds": 2}, time=102.0)
    history.append("call_ok", {"ran": True}, time=102.0, environment="env-0", circuit="db", call=1)
    assert [op.index for op in history] == [0, 1, 2]
    assert [op.kind for op in history.filter(call=1)] == ["call_started", "call_ok"]
    assert [op.kind for op in history.filter({"clock", "call_ok"})] == ["clock", "call_ok"]
    assert history.filter("call_ok", environment="env-1") == []
    assert history.circuits() == ["db"]
    assert len(history.for_circuit("other")) == 1  # only the op of no circuit


def test_json_round_trip_keeps_every_op_and_the_meta() -> None:
    history = History(meta={"adapter": "breaker", "config": {"failure_threshold": 2}})
    history.append(
        "store_write", {"record": {"state": "OPEN", "version": 1}, "stored": True}, time=1.5, environment="e"
    )
    text = history.to_json(indent=2)
    again = History.from_json(text)
    assert again.ops == history.ops
    assert again.meta == history.meta
    assert json.loads(text)["ops"][0]["kind"] == "store_write"


@pytest.mark.parametrize("text", ["[]", '{"ops": 3}', '{"meta": {}}'])
def test_from_json_says_what_a_history_looks_like(text: str) -> None:
    with pytest.raises(ValueError, match=r'\{"meta": \{\.\.\.\}, "ops": \[\.\.\.\]\}'):
        History.from_json(text)


def test_an_op_without_its_fields_is_refused_with_their_names() -> None:
    with pytest.raises(ValueError, match="index, time and kind"):
        Op.from_dict({"time": 1.0})
    with pytest.raises(ValueError, match="non-empty string"):
        History().append("", time=0.0)


def test_describe_and_format_show_relative_times_and_compact_records() -> None:
    history = History(meta={"start_time": 1000.0})
    record = {
        "state": "HALF_OPEN",
        "version": 3,
        "opened_at": 1010.0,
        "half_open_owner": "env-1",
        "probe_lease_expiry": 1040.0,
    }
    history.append(
        "store_read", {"record": record, "truth": record}, time=1012.0, environment="env-1", call=4
    )
    line = history.format()
    assert line.startswith("#0 t=+12 env-1 call=4 store_read")
    assert "<HALF_OPEN v3 opened=+10 owner=env-1 lease=+40>" in line
    many = History()
    for i in range(5):
        many.append("clock", {"seconds": 1}, time=float(i))
    assert many.format(limit=2).splitlines()[0] == "... (3 earlier ops)"


def test_jsonable_turns_library_objects_into_json_types() -> None:
    from breaker import CircuitState, CircuitTransition

    value = {
        "record": CircuitRecord.closed("db").evolve(state=CircuitState.OPEN, opened_at=1.0),
        "transition": CircuitTransition("db", CircuitState.OPEN, CircuitState.HALF_OPEN, 1.0),
        "error": TimeoutError("slow"),
        "state": CircuitState.OPEN,
    }
    data = jsonable(value)
    json.dumps(data)  # serializable
    assert data["record"]["state"] == "OPEN"
    assert data["record"]["version"] == 1
    assert data["transition"] == {"from": "OPEN", "to": "HALF_OPEN", "opened_at": 1.0}
    assert data["error"] == "TimeoutError: slow"
    assert type(data["state"]) is str
    assert state_name("half-open") == "HALF_OPEN"


def test_recorder_takes_transitions_and_probes_from_breaker_events_of_its_circuit_only() -> None:
    clock = FakeClock(start=0)
    history = History()
    recorder = Recorder(history, clock, circuit="db")
    recorder.add("env-a")
    recorder.start()
    try:
        store = InMemoryPersistence(clock=clock)
        config = CircuitBreakerConfig(failure_threshold=1, recovery_timeout=1, success_threshold=1)
        ours = CircuitBreaker("db", store, config=config, clock=clock, environment=Environment("env-a"))
        theirs = CircuitBreaker(
            "db",
            InMemoryPersistence(clock=clock),
            config=config,
            clock=clock,
            environment=Environment("env-b"),
        )
        other = CircuitBreaker("other", store, config=config, clock=clock, environment=Environment("env-a"))
        for breaker in (ours, theirs, other):
            with pytest.raises(ZeroDivisionError):
                breaker.call(lambda: 1 / 0)
        clock.advance(2)
        ours.call(lambda: "ok")
    finally:
        recorder.stop()
    assert [(op.kind, op.environment) for op in history] == [
        ("transition", "env-a"),
        ("probe", "env-a"),
        ("transition", "env-a"),
        ("probe", "env-a"),
        ("transition", "env-a"),
    ]
    assert [op.value["to"] for op in history.filter("transition")] == ["OPEN", "HALF_OPEN", "CLOSED"]
    recorder.record("clock", {"seconds": 1}, harness=True)
    assert len(history) == 5  # stopped: nothing more


def test_a_killed_environment_records_nothing_but_its_crash() -> None:
    recorder = Recorder(History(), FakeClock(start=0), circuit="db")
    recorder.add("env-0")
    recorder.kill("env-0")
    assert recorder.record("call_started", environment="env-0") is None
    crash = recorder.record("crash", {"replaced_by": "env-0#1"}, environment="env-0", harness=True)
    assert crash is not None
    assert crash.kind == "crash"


def test_recording_store_records_reads_writes_and_the_truth_behind_faults() -> None:
    clock = FakeClock(start=0)
    real = InMemoryPersistence(clock=clock)
    faults = StoreFaults(real, clock=clock)
    recorder = Recorder(History(), clock, circuit="db")
    recorder.current = ("env-0", 7)
    store = RecordingStore(faults.store, truth=real, recorder=recorder)
    first = CircuitRecord.closed("db").evolve()
    assert store.write(first, None) is True
    assert store.write(first, None) is False  # a conflict is recorded as not stored
    assert store.read("db") == first
    with faults.corrupt():
        store.read("db")
    with faults.fail_writes(), pytest.raises(ConnectionError):
        store.write(first.evolve(), first)
    with faults.timeout(1.0), pytest.raises(TimeoutError):
        store.read("db")
    ops = recorder.history.ops
    assert [op.kind for op in ops] == [
        "store_write",
        "store_write",
        "store_read",
        "store_fault",
        "store_fault",
        "store_fault",
    ]
    assert ops[0].value["stored"] is True
    assert ops[0].value["before"] is None
    assert ops[1].value["stored"] is False
    assert ops[1].value["before"]["version"] == 1
    assert ops[3].value["corrupt"] is True
    assert ops[3].value["truth"]["version"] == 1
    assert ops[4].value["op"] == "write"
    assert ops[4].value["truth"]["version"] == 1
    assert ops[5].value["timeout"] is True
    assert ops[5].time == 1.0
    assert all(op.environment == "env-0" and op.call == 7 for op in ops)


def test_kinds_are_the_design_vocabulary() -> None:
    for word in ("call_started", "call_ok", "call_failed", "rejected", "fallback", "probe", "transition",
                 "store_read", "store_write", "store_fault", "downstream_fault"):  # fmt: skip
        assert word in KINDS
