"""The store contract suite: every backend runs these same tests.

A backend's test module subclasses ``StoreContract`` and provides a ``store`` fixture
returning a fresh, empty store (and ``clock``, a FakeClock the store uses for expiry,
when the backend can follow one: those subclass ``FakeClockExpiryContract``; real
servers expire keys on their own clocks and subclass ``StoreContract`` only).
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from breaker.persistence import CircuitRecord, CircuitStore
from breaker.states import CircuitState


def _open(record: CircuitRecord, at: float = 1000.0) -> CircuitRecord:
    return record.evolve(state=CircuitState.OPEN, opened_at=at, failure_count=5)


class StoreContract:
    def test_read_missing_is_none(self, store: CircuitStore) -> None:
        assert store.read("nobody") is None

    def test_first_write_then_read_round_trips_every_field(self, store: CircuitStore) -> None:
        record = CircuitRecord(
            "db",
            CircuitState.HALF_OPEN,
            version=1,
            failure_count=7,
            opened_at=1700000000.25,
            half_open_owner="env-1",
            probe_lease_expiry=1700000030.5,
            pinned=False,
            expires_at=4102444800.0,
        )
        assert store.write(record, expected=None) is True
        assert store.read("db") == record

    def test_second_create_conflicts(self, store: CircuitStore) -> None:
        first = CircuitRecord.closed("db").evolve()
        assert store.write(first, expected=None) is True
        assert store.write(_open(CircuitRecord.closed("db")), expected=None) is False
        assert store.read("db") == first

    def test_write_against_current_version_succeeds(self, store: CircuitStore) -> None:
        v1 = CircuitRecord.closed("db").evolve()
        assert store.write(v1, None)
        v2 = _open(v1)
        assert store.write(v2, v1) is True
        assert store.read("db") == v2

    def test_stale_writer_loses(self, store: CircuitStore) -> None:
        v1 = CircuitRecord.closed("db").evolve()
        assert store.write(v1, None)
        v2 = _open(v1)
        assert store.write(v2, v1)
        stale = v1.evolve(state=CircuitState.OPEN, opened_at=5.0)
        assert store.write(stale, v1) is False
        assert store.read("db") == v2

    def test_write_expecting_a_record_that_is_gone_conflicts(self, store: CircuitStore) -> None:
        v1 = CircuitRecord.closed("db").evolve()
        assert store.write(v1, None)
        store.delete("db")
        assert store.write(_open(v1), v1) is False
        assert store.read("db") is None

    def test_misuse_of_versions_is_rejected(self, store: CircuitStore) -> None:
        with pytest.raises(ValueError, match=r"record\.version must be 1"):
            store.write(CircuitRecord.closed("db"), None)

    def test_circuits_are_independent(self, store: CircuitStore) -> None:
        a = CircuitRecord.closed("a").evolve()
        b = _open(CircuitRecord.closed("b"))
        assert store.write(a, None)
        assert store.write(b, None)
        assert store.read("a") == a
        assert store.read("b") == b

    def test_delete_missing_is_fine(self, store: CircuitStore) -> None:
        store.delete("never-written")

    def test_names_with_odd_characters(self, store: CircuitStore) -> None:
        name = "payments/eu-west-1:{shard 7} é#" + "x" * 150
        record = CircuitRecord.closed(name).evolve()
        assert store.write(record, None)
        assert store.read(name) == record

    def test_exactly_one_of_many_racing_writers_wins(self, store: CircuitStore) -> None:
        base = CircuitRecord.closed("race").evolve()
        assert store.write(base, None)
        results: list[bool] = []
        barrier = threading.Barrier(8)

        def contend(i: int) -> None:
            barrier.wait()
            results.append(store.write(base.evolve(half_open_owner=f"env-{i}"), base))

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == [False] * 7 + [True]

    def test_async_twins_follow_the_same_rules(self, store: CircuitStore) -> None:
        async def scenario() -> None:
            assert await store.aread("db") is None
            v1 = CircuitRecord.closed("db").evolve()
            assert await store.awrite(v1, None) is True
            assert await store.awrite(v1, None) is False
            assert await store.aread("db") == v1
            await store.adelete("db")
            assert await store.aread("db") is None

        asyncio.run(scenario())

    def test_a_write_drops_fields_the_new_record_lacks(self, store: CircuitStore) -> None:
        half_open = CircuitRecord(
            "db",
            CircuitState.HALF_OPEN,
            version=1,
            opened_at=1000.0,
            half_open_owner="env-1",
            probe_lease_expiry=1030.0,
        )
        assert store.write(half_open, None)
        reopened = half_open.evolve(
            state=CircuitState.OPEN, opened_at=1031.0, half_open_owner=None, probe_lease_expiry=None
        )
        assert store.write(reopened, half_open)
        stored = store.read("db")
        assert stored == reopened
        assert stored is not None
        assert stored.half_open_owner is None
        assert stored.probe_lease_expiry is None


class FakeClockExpiryContract(StoreContract):
    """The contract plus expiry on the fake clock, for stores that read a Clock for TTLs.

    Real servers (Redis) expire keys on their own clock; their suites test expiry in real
    time instead and subclass ``StoreContract`` only, so no test is skipped for them.
    """

    def test_expired_record_reads_as_missing(self, store: CircuitStore, clock: object) -> None:
        from breaker.clock import FakeClock

        assert isinstance(clock, FakeClock)
        record = CircuitRecord.closed("ttl").evolve(expires_at=clock.time() + 10)
        assert store.write(record, None)
        clock.advance(11)
        assert store.read("ttl") is None
        # and a fresh first write is allowed again
        assert store.write(CircuitRecord.closed("ttl").evolve(), None) is True

    def test_write_expecting_an_expired_record_conflicts(self, store: CircuitStore, clock: object) -> None:
        from breaker.clock import FakeClock

        assert isinstance(clock, FakeClock)
        v1 = CircuitRecord.closed("ttl").evolve(expires_at=clock.time() + 10)
        assert store.write(v1, None)
        clock.advance(11)
        assert store.write(_open(v1), v1) is False
