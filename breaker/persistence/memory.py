"""The embedded in-memory store: process-wide, thread-safe, same semantics as the real ones."""

from __future__ import annotations

from _thread import allocate_lock

from breaker.clock import SYSTEM_CLOCK
from breaker.persistence.base import CircuitStore, check_write_arguments

TYPE_CHECKING = False
if TYPE_CHECKING:
    from breaker.clock import Clock
    from breaker.persistence.record import CircuitRecord


class InMemoryPersistence(CircuitStore):
    """Keeps records in a dict guarded by a lock; shared by every breaker that uses it.

    It is the default store (``persistence_store=None``) and has exactly the
    compare-and-set and expiry semantics of the DynamoDB and Redis stores, so a test
    on it says something about production. It is shared by the threads and asyncio
    tasks of one process, not between processes.

    Example:
        >>> from breaker import circuit_breaker
        >>> store = InMemoryPersistence()
        >>> @circuit_breaker(name="inventory", persistence_store=store)
        ... def stock(sku: str) -> int: return 3
        >>> stock("A-1")
        3
    """

    kind = "memory"

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._records: dict[str, CircuitRecord] = {}
        self._lock = allocate_lock()
        self._clock = SYSTEM_CLOCK if clock is None else clock

    def _live(self, name: str) -> CircuitRecord | None:
        record = self._records.get(name)
        if record is not None and record.expires_at is not None and record.expires_at <= self._clock.time():
            del self._records[name]  # expired: gone, as a Redis key with a TTL would be
            return None
        return record

    def read(self, name: str) -> CircuitRecord | None:
        with self._lock:
            return self._live(name)

    def write(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        check_write_arguments(record, expected)
        with self._lock:
            current = self._live(record.name)
            if current is None:
                if expected is not None:
                    return False
            elif expected is None or current.version != expected.version:
                return False
            self._records[record.name] = record
            return True

    def delete(self, name: str) -> None:
        with self._lock:
            self._records.pop(name, None)

    def clear(self) -> None:
        """Drop every record (the pytest plugin does this between tests)."""
        with self._lock:
            self._records.clear()

    def names(self) -> list[str]:
        """The names of the circuits this store holds a live record for."""
        with self._lock:
            return [name for name in list(self._records) if self._live(name) is not None]

    # No I/O happens here, so the async twins call straight through: no thread hop.
    async def aread(self, name: str) -> CircuitRecord | None:
        return self.read(name)

    async def awrite(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        return self.write(record, expected)

    async def adelete(self, name: str) -> None:
        self.delete(name)


_default: InMemoryPersistence | None = None
_override: CircuitStore | None = None


def default_store() -> CircuitStore:
    """The store used by breakers created with ``persistence_store=None``.

    The process-wide embedded store, unless ``use_default_store()`` set another one.

    Example:
        >>> default_store().kind
        'memory'
    """
    global _default
    if _override is not None:
        return _override
    if _default is None:
        _default = InMemoryPersistence()
    return _default


def use_default_store(store: CircuitStore | None) -> None:
    """Make breakers created with ``persistence_store=None`` use ``store`` (None: the embedded one).

    The pytest plugin uses it to give every breaker in a test the test's store.
    """
    global _override
    if store is not None and not isinstance(store, CircuitStore):
        from breaker.errors import CircuitBreakerConfigError

        raise CircuitBreakerConfigError(
            f"store must be a breaker.persistence.CircuitStore instance or None, got {store!r}."
        )
    _override = store
