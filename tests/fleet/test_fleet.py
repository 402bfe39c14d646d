"""Fleet invariants with real processes sharing a real store (DESIGN §4: 1, 3, 5, 7).

Each worker is a separate process (forked by the forkserver) with its own default
Environment, its own breaker and its own store connections, sharing one record in a
real ``redis-server`` or in DynamoDB served over HTTP by a moto server. Processes cannot
share a fake clock, so the windows are real and short (0.5 to 1 s). Every hook call,
downstream call, store write, takeover and probe of every process is appended to one
journal file, and the assertions count them fleet-wide.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from breaker.persistence import CircuitStore
from breaker.states import CircuitState

from .support import Fleet, Parent, sleep_until
from .workers import Journal, StoreSpec

pytestmark = pytest.mark.slow

CLOSED, OPEN, HALF_OPEN = "CLOSED", "OPEN", "HALF_OPEN"


def test_exactly_one_probe_reaches_the_downstream_when_the_window_ends(
    spec: StoreSpec, store: CircuitStore, name: str, journal: Journal
) -> None:
    config = {"failure_threshold": 1, "recovery_timeout": 1.0, "success_threshold": 2, "probe_lease": 10.0}
    with Fleet(6, spec, name, config, journal) as fleet:
        parent = Parent(store, name, config, journal)
        opened = parent.trip()
        assert opened.opened_at is not None
        due = opened.opened_at + config["recovery_timeout"]

        # Inside the window every worker reads OPEN and is rejected (and caches that view).
        assert [worker.call() for worker in fleet] == ["rejected"] * 6
        assert time.time() < due, "the machine is too slow for this window"
        assert journal.entries("downstream") == []

        # All six meet at a barrier, then call at the same instant just after the window.
        for worker in fleet:
            worker.start(barrier=True, at=due + 0.02, sleep=0.2)
        results = [worker.result() for worker in fleet]

        assert sorted(results) == ["ok"] + ["rejected"] * 5, results
        winner = fleet[results.index("ok")]
        starts = journal.entries("downstream", phase="start")
        assert [entry["env"] for entry in starts] == [winner.env], "exactly one probe reached the downstream"

        # Everyone really contested the election: one compare-and-set stored, five lost.
        elections = journal.entries("store_write", to_state=HALF_OPEN)
        assert sorted(e["stored"] for e in elections) == [False] * 5 + [True], elections
        assert [e["env"] for e in elections if e["stored"]] == [winner.env]
        probing = parent.read()
        assert probing.state is CircuitState.HALF_OPEN
        assert probing.half_open_owner == winner.env

        # The winner's second probe closes the circuit; nobody else ever probed.
        assert winner.call() == "ok"
        assert parent.read().state is CircuitState.CLOSED

    assert [e["env"] for e in journal.entries("probe_started")] == [winner.env] * 2
    assert journal.transitions() == [
        ("parent", CLOSED, OPEN),
        (winner.env, OPEN, HALF_OPEN),
        (winner.env, HALF_OPEN, CLOSED),
    ]


def test_a_stale_trip_during_a_live_probe_loses_its_compare_and_set(
    spec: StoreSpec, store: CircuitStore, name: str, journal: Journal
) -> None:
    config = {
        "failure_threshold": 2,
        "recovery_timeout": 0.5,
        "success_threshold": 1,
        "probe_lease": 10.0,
        "local_cache_max_age": 30.0,  # B trusts its CLOSED view for the whole test
    }
    with Fleet(2, spec, name, config, journal) as fleet:
        a, b = fleet
        parent = Parent(store, name, config, journal)
        parent.reset()
        assert b.call() == "ok"  # B reads CLOSED now; it will not look again for 30 s

        opened = parent.trip()
        assert opened.opened_at is not None
        a.start(at=opened.opened_at + config["recovery_timeout"] + 0.02, hold=True)
        a.wait_entered()  # A owns the probe, and its probe is in the downstream
        live = parent.read()
        assert (live.state, live.half_open_owner) == (CircuitState.HALF_OPEN, a.env)

        # B, still seeing CLOSED, fails twice: the second failure reaches its threshold and
        # B tries CLOSED→OPEN. Its compare-and-set must lose; the caller sees its own error.
        assert b.call(outcome="fail") == "failed"
        assert b.call(outcome="fail") == "failed"
        b_writes = journal.entries("store_write", env=b.env)
        assert [(w["to_state"], w["stored"]) for w in b_writes] == [(OPEN, False)]
        assert parent.read() == live, "the probe record must be untouched"
        assert b.call() == "rejected"  # B re-read after losing: it now sees A's probe

        a.release()
        assert a.result() == "ok"
        assert parent.read().state is CircuitState.CLOSED

    assert journal.transitions() == [
        ("parent", CLOSED, OPEN),
        (a.env, OPEN, HALF_OPEN),
        (a.env, HALF_OPEN, CLOSED),
    ]


@pytest.mark.parametrize("former_outcome", ["ok", "fail"])
def test_a_former_probe_owner_cannot_close_or_reopen_after_a_takeover(
    spec: StoreSpec, store: CircuitStore, name: str, journal: Journal, former_outcome: str
) -> None:
    config = {"failure_threshold": 1, "recovery_timeout": 0.5, "success_threshold": 1, "probe_lease": 0.5}
    with Fleet(2, spec, name, config, journal) as fleet:
        a, b = fleet
        parent = Parent(store, name, config, journal)
        parent.reset()
        opened = parent.trip()
        assert opened.opened_at is not None

        # A wins the probe, then stalls in the downstream past its lease.
        a.start(at=opened.opened_at + config["recovery_timeout"] + 0.02, hold=True, outcome=former_outcome)
        a.wait_entered()
        elected = parent.read()
        assert (elected.state, elected.half_open_owner) == (CircuitState.HALF_OPEN, a.env)
        assert elected.probe_lease_expiry is not None
        sleep_until(elected.probe_lease_expiry + 0.05)

        # B takes the expired probe over, and its own probe stalls too.
        b.start(hold=True)
        b.wait_entered()
        taken = parent.read()
        assert (taken.state, taken.half_open_owner) == (CircuitState.HALF_OPEN, b.env)
        assert taken.version == elected.version + 1
        assert [e["env"] for e in journal.entries("takeover")] == [b.env]

        # A finishes: success would close, failure would reopen. Its write must lose.
        a.release()
        assert a.result() == ("ok" if former_outcome == "ok" else "failed")
        a_writes = [(w["to_state"], w["stored"]) for w in journal.entries("store_write", env=a.env)]
        assert a_writes == [(HALF_OPEN, True), (CLOSED if former_outcome == "ok" else OPEN, False)]
        assert parent.read() == taken, "the former owner changed the taken-over record"

        b.release()
        assert b.result() == "ok"
        assert parent.read().state is CircuitState.CLOSED

    # Hooks fired only for stored writes: A reported its election and nothing else.
    assert journal.transitions() == [
        ("parent", CLOSED, OPEN),
        (a.env, OPEN, HALF_OPEN),
        (b.env, HALF_OPEN, CLOSED),
    ]


def test_the_probe_is_taken_over_and_the_circuit_closes_when_its_owner_is_killed(
    spec: StoreSpec, store: CircuitStore, name: str, journal: Journal
) -> None:
    config = {
        "failure_threshold": 1,
        "recovery_timeout": 0.5,
        "success_threshold": 2,
        "probe_lease": 1.0,
        "local_cache_max_age": 0.2,
    }
    with Fleet(4, spec, name, config, journal) as fleet:
        owner, *survivors = fleet
        parent = Parent(store, name, config, journal)
        parent.reset()
        opened = parent.trip()
        assert opened.opened_at is not None

        owner.start(at=opened.opened_at + config["recovery_timeout"] + 0.02, hold=True)
        owner.wait_entered()
        elected = parent.read()
        assert (elected.state, elected.half_open_owner) == (CircuitState.HALF_OPEN, owner.env)
        assert elected.probe_lease_expiry is not None
        owner.kill()  # SIGKILL mid-probe: it will never settle its probe
        assert parent.read() == elected

        # Continuing traffic from the survivors: after the lease, one takes over and closes it
        # (the traffic lasts past the liveness bound, from the config, not from the record).
        until = opened.opened_at + config["recovery_timeout"] + config["probe_lease"] + 1.5
        for worker in survivors:
            worker.send(op="traffic", until=until, interval=0.02)
        traffic = [worker.receive("traffic") for worker in survivors]

        assert parent.read().state is CircuitState.CLOSED
        assert [t["last"] for t in traffic] == ["ok"] * len(survivors), traffic
        for t in traffic:
            assert not [result for result in t["counts"] if result.startswith("leaked")], t

    takeovers = journal.entries("takeover")
    assert len(takeovers) == 1, takeovers
    successor = takeovers[0]["env"]
    assert successor in {worker.env for worker in survivors}
    assert takeovers[0]["t"] >= elected.probe_lease_expiry

    transitions = journal.transitions()
    assert transitions == [
        ("parent", CLOSED, OPEN),
        (owner.env, OPEN, HALF_OPEN),
        (successor, HALF_OPEN, CLOSED),
    ]
    # One probe at a time: the dead owner's, then the successor's success_threshold probes.
    assert [e["env"] for e in journal.entries("probe_started")] == [owner.env] + [successor] * 2
    # Liveness bound (DESIGN §4.7): recovery_timeout + lease + the probes (plus scheduling slack).
    closed_at = journal.entries("transition", to_state=CLOSED)[0]["t"]
    assert closed_at - opened.opened_at <= config["recovery_timeout"] + config["probe_lease"] + 1.0
    counted = Counter(e["env"] for e in journal.entries("downstream", phase="start"))
    assert counted[owner.env] == 1
