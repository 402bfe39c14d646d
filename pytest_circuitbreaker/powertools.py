"""Testing code that uses Powertools for AWS Lambda's circuit breaker (3.37).

Powertools' breaker needs a persistence layer; :class:`InMemoryPowertoolsPersistence`
is one that keeps records in memory with the conditions of its DynamoDB layer (the
probe election is a compare-and-set), so a test needs neither DynamoDB nor moto. Its
records and local cache, and Powertools' own per-process counters, are cleared between
tests by the plugin.

Powertools reads ``datetime.now()``: freeze wall time with ``circuit_clock``
(``@pytest.mark.circuit_clock(freeze_wall_time=True)``) so the fake clock moves it.
Its transitions do not go through ``breaker.events``: pass ``circuit_transitions.hook``
(or :func:`pytest_circuitbreaker.record_transition`) as ``on_transition``.

Example::

    from aws_lambda_powertools.utilities.circuit_breaker import circuit_breaker
    from pytest_circuitbreaker import record_transition
    from pytest_circuitbreaker.powertools import InMemoryPowertoolsPersistence

    @circuit_breaker(name="payments", persistence_store=InMemoryPowertoolsPersistence(),
                     on_transition=record_transition)
    def charge(amount): ...
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from dataclasses import replace

from aws_lambda_powertools.utilities.circuit_breaker.persistence.base import (
    CircuitBreakerExistingLockError,
    CircuitBreakerPersistenceLayer,
)
from aws_lambda_powertools.utilities.circuit_breaker.persistence.record import CircuitStateRecord
from aws_lambda_powertools.utilities.circuit_breaker.states import CircuitState

__all__ = ["InMemoryPowertoolsPersistence", "clear_all_stores"]

_STORES: weakref.WeakSet[InMemoryPowertoolsPersistence] = weakref.WeakSet()


class InMemoryPowertoolsPersistence(CircuitBreakerPersistenceLayer):
    """A Powertools persistence layer in memory, with its DynamoDB layer's write conditions.

    Example:
        >>> store = InMemoryPowertoolsPersistence()
        >>> store.get_state("payments").state
        <CircuitState.CLOSED: 'CLOSED'>
    """

    def __init__(self) -> None:
        super().__init__()
        self._records: dict[str, CircuitStateRecord] = {}
        self._records_lock = threading.Lock()
        _STORES.add(self)

    def clear(self) -> None:
        """Drop every record and the local cache (the plugin does this between tests)."""
        with self._records_lock:
            self._records.clear()
        with self._lock:
            self._cache.clear()

    def _get_record(self, name: str) -> CircuitStateRecord | None:
        with self._records_lock:
            record = self._records.get(name)
            return None if record is None else replace(record)

    def _put_record(
        self,
        record: CircuitStateRecord,
        condition: str | None = None,
        expected_opened_at: int | None = None,
    ) -> None:
        with self._records_lock:
            if condition == "half_open":
                current = self._records.get(record.name)
                now = int(dt.datetime.now().timestamp())
                electable = current is not None and (
                    (
                        current.state == CircuitState.OPEN
                        and current.half_open_owner is None
                        and (expected_opened_at is None or current.opened_at == expected_opened_at)
                    )
                    or (
                        current.state == CircuitState.HALF_OPEN
                        and current.probe_lease_expiry is not None
                        and current.probe_lease_expiry <= now
                    )
                )
                if not electable:
                    raise CircuitBreakerExistingLockError
            self._records[record.name] = replace(record)

    def _update_record(self, record: CircuitStateRecord) -> None:
        # As DynamoDB's update_item: an upsert that clears the probe owner and lease.
        with self._records_lock:
            current = self._records.get(record.name) or CircuitStateRecord(
                name=record.name, state=record.state
            )
            self._records[record.name] = replace(
                current,
                state=record.state,
                failure_count=record.failure_count,
                expiry_timestamp=record.expiry_timestamp
                if record.expiry_timestamp is not None
                else current.expiry_timestamp,
                opened_at=record.opened_at,
                half_open_owner=None,
                probe_lease_expiry=None,
            )


def clear_all_stores() -> None:
    """Clear every InMemoryPowertoolsPersistence alive (called between tests).

    Example:
        >>> clear_all_stores()
    """
    for store in list(_STORES):
        store.clear()
