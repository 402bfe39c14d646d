"""Store faults: make a store fail reads, fail writes, time out or return a corrupt record.

:class:`StoreFaults` wraps any ``CircuitStore`` in a :class:`FaultyStore` and controls
it. Each fault method starts the fault at once and returns a handle: use it as a
context manager to end the fault with the block, or leave it on until ``restore()``.

Example:
    >>> from breaker.persistence import InMemoryPersistence
    >>> faults = StoreFaults(InMemoryPersistence())
    >>> with faults.fail_reads():
    ...     faults.store.read("db")
    Traceback (most recent call last):
    ...
    ConnectionError: store memory: read('db') failed (fail_reads(), injected by store_faults)
    >>> faults.store.read("db") is None
    True
"""

from __future__ import annotations

from breaker.persistence.base import CircuitStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from breaker.clock import FakeClock
    from breaker.persistence.record import CircuitRecord

__all__ = ["FaultHandle", "FaultyStore", "StoreFaults"]

_READ = "read"
_WRITE = "write"


class _Fault:
    __slots__ = ("how", "method", "value")

    def __init__(self, how: str, method: str, value: Any) -> None:
        self.how = how  # "error" | "timeout" | "corrupt"
        self.method = method  # the StoreFaults method that set it, for messages
        self.value = value


class FaultHandle:
    """An active fault; ``with`` it to end the fault with the block, or call ``stop()``.

    Example:
        >>> from breaker.persistence import InMemoryPersistence
        >>> faults = StoreFaults(InMemoryPersistence())
        >>> handle = faults.fail_writes()
        >>> handle.stop(); faults.active()
        []
    """

    __slots__ = ("_faults", "_previous", "_stopped")

    def __init__(self, faults: StoreFaults, previous: dict[str, _Fault | None]) -> None:
        self._faults = faults
        self._previous = previous
        self._stopped = False

    def __enter__(self) -> StoreFaults:
        return self._faults

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """End this fault: the operations it affected behave as before it started."""
        if not self._stopped:
            self._stopped = True
            self._faults._faults.update(self._previous)


class StoreFaults:
    """Injects faults into a store: ``fail_reads``, ``fail_writes``, ``timeout``, ``corrupt``, ``restore``.

    ``store`` is the faulty wrapper to give breakers (the ``store_faults`` fixture makes
    it the default store, so breakers created with ``persistence_store=None`` use it).
    A later fault on the same operation replaces an earlier one until its block ends.
    Counters: ``reads`` and ``writes`` attempted through the wrapper, ``injected``
    faults raised or returned.

    Parameters:
        store: the store to wrap.
        clock: the fake clock a ``timeout`` advances (the test's ``circuit_clock``).

    Example:
        >>> from breaker.persistence import InMemoryPersistence
        >>> faults = StoreFaults(InMemoryPersistence())
        >>> _ = faults.fail_writes(); faults.active()
        ['write: fail_writes()']
        >>> faults.restore(); faults.active()
        []
    """

    def __init__(self, store: CircuitStore, *, clock: FakeClock | None = None) -> None:
        if not isinstance(store, CircuitStore):
            raise TypeError(f"StoreFaults wraps a breaker.persistence.CircuitStore, got {store!r}.")
        self.inner = store
        self.clock = clock
        self.store = FaultyStore(store, self)
        self.reads = 0
        self.writes = 0
        self.injected = 0
        self._faults: dict[str, _Fault | None] = {_READ: None, _WRITE: None}

    def __repr__(self) -> str:
        return f"StoreFaults({self.inner!r}, active={self.active()!r})"

    def _set(self, operations: tuple[str, ...], fault: _Fault) -> FaultHandle:
        previous = {operation: self._faults[operation] for operation in operations}
        for operation in operations:
            self._faults[operation] = fault
        return FaultHandle(self, previous)

    def fail_reads(self, exc: object = None) -> FaultHandle:
        """Make every read raise ``exc`` (a class or instance; default ConnectionError).

        Example:
            >>> from breaker.persistence import InMemoryPersistence
            >>> faults = StoreFaults(InMemoryPersistence())
            >>> with faults.fail_reads(TimeoutError):
            ...     faults.active()
            ['read: fail_reads()']
        """
        return self._set((_READ,), _Fault("error", "fail_reads()", _maker(exc, "fail_reads")))

    def fail_writes(self, exc: object = None) -> FaultHandle:
        """Make every write (compare-and-set) raise ``exc`` (default ConnectionError).

        Example:
            >>> from breaker.persistence import InMemoryPersistence
            >>> faults = StoreFaults(InMemoryPersistence())
            >>> with faults.fail_writes():
            ...     faults.active()
            ['write: fail_writes()']
        """
        return self._set((_WRITE,), _Fault("error", "fail_writes()", _maker(exc, "fail_writes")))

    def timeout(self, seconds: float = 1.0, *, reads: bool = True, writes: bool = True) -> FaultHandle:
        """Make store operations hang ``seconds`` on the fake clock, then raise TimeoutError.

        Example:
            >>> from breaker.clock import FakeClock
            >>> from breaker.persistence import InMemoryPersistence
            >>> clock = FakeClock(start=0)
            >>> faults = StoreFaults(InMemoryPersistence(), clock=clock)
            >>> with faults.timeout(2.5):
            ...     try:
            ...         faults.store.read("db")
            ...     except TimeoutError:
            ...         clock.now()
            2.5
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ValueError(f"timeout(): seconds must be a number >= 0, got {seconds!r}.")
        operations = tuple(op for op, on in ((_READ, reads), (_WRITE, writes)) if on)
        if not operations:
            raise ValueError(
                "timeout(): reads=False and writes=False leaves nothing to time out; keep one True."
            )
        return self._set(operations, _Fault("timeout", f"timeout({seconds})", float(seconds)))

    def corrupt(self, record: object = None) -> FaultHandle:
        """Make every read return a corrupt record (``record``, or one that breaks the record's rules).

        Example:
            >>> from breaker.persistence import InMemoryPersistence
            >>> faults = StoreFaults(InMemoryPersistence())
            >>> with faults.corrupt():
            ...     faults.store.read("db").version
            -1
        """
        return self._set((_READ,), _Fault("corrupt", "corrupt()", record))

    def restore(self) -> None:
        """End every fault: the store works again.

        Example:
            >>> from breaker.persistence import InMemoryPersistence
            >>> faults = StoreFaults(InMemoryPersistence())
            >>> _ = faults.fail_reads(); faults.restore(); faults.active()
            []
        """
        self._faults = {_READ: None, _WRITE: None}

    def active(self) -> list[str]:
        """The faults in effect now, as ``"operation: method()"`` strings."""
        return [
            f"{operation}: {fault.method}" for operation, fault in self._faults.items() if fault is not None
        ]

    # ------------------------------------------------------------------ used by FaultyStore

    def _check(self, operation: str, name: str) -> tuple[bool, Any]:
        """Count the operation; raise its fault, or return (True, corrupt value) / (False, None)."""
        if operation == _READ:
            self.reads += 1
        else:
            self.writes += 1
        fault = self._faults.get(operation)
        if fault is None:
            return False, None
        self.injected += 1
        where = f"store {self.inner.kind}: {operation}({name!r})"
        if fault.how == "error":
            raise fault.value(where)
        if fault.how == "timeout":
            if self.clock is not None:
                self.clock.advance(fault.value)
            raise TimeoutError(
                f"{where} timed out after {fault.value}s ({fault.method}, injected by store_faults)"
            )
        if fault.value is not None:
            return True, fault.value
        from breaker.persistence.record import CircuitRecord
        from breaker.states import CircuitState

        # HALF_OPEN without an owner, a lease or opened_at, and a negative version.
        return True, CircuitRecord(name, CircuitState.HALF_OPEN, version=-1)


def _maker(exc: object, method: str) -> Any:
    if exc is None:
        return lambda where: ConnectionError(f"{where} failed ({method}(), injected by store_faults)")
    if isinstance(exc, type) and issubclass(exc, BaseException):
        return lambda where: exc(f"{where} failed ({method}(), injected by store_faults)")
    if isinstance(exc, BaseException):
        return lambda where: exc.with_traceback(None)
    raise TypeError(f"{method}(): exc must be an exception class or instance (or None), got {exc!r}.")


class FaultyStore(CircuitStore):
    """A store that passes every operation to ``inner`` unless its StoreFaults injects a fault.

    ``delete`` is never faulted (the breaker never deletes; tests clean up with it).

    Example:
        >>> from breaker.persistence import InMemoryPersistence
        >>> faults = StoreFaults(InMemoryPersistence())
        >>> faults.store.kind, faults.store.read("db")
        ('memory', None)
    """

    def __init__(self, inner: CircuitStore, faults: StoreFaults) -> None:
        self.inner = inner
        self.faults = faults
        self.kind = inner.kind

    def __repr__(self) -> str:
        return f"FaultyStore({self.inner!r})"

    def read(self, name: str) -> CircuitRecord | None:
        corrupt, value = self.faults._check(_READ, name)
        if corrupt:
            return value  # type: ignore[no-any-return]
        return self.inner.read(name)

    def write(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        self.faults._check(_WRITE, record.name)
        return self.inner.write(record, expected)

    def delete(self, name: str) -> None:
        self.inner.delete(name)

    async def aread(self, name: str) -> CircuitRecord | None:
        corrupt, value = self.faults._check(_READ, name)
        if corrupt:
            return value  # type: ignore[no-any-return]
        return await self.inner.aread(name)

    async def awrite(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        self.faults._check(_WRITE, record.name)
        return await self.inner.awrite(record, expected)

    async def adelete(self, name: str) -> None:
        await self.inner.adelete(name)
