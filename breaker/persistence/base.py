"""The store contract: the few primitives every backend implements.

A store keeps one :class:`CircuitRecord` per circuit name and offers three operations:

* ``read(name)``: the stored record, or None when there is none (never written, expired
  or deleted). A record that cannot be decoded raises (any exception); the breaker
  treats every exception from a store as a *store fault*, never as a state.
* ``write(record, expected)``: compare-and-set. Store ``record`` only if the stored
  record is still ``expected``: the same ``version`` (for ``expected=None``: no record
  at all). Return True when stored, False on a conflict. ``expected`` is always exactly
  what ``read`` returned (a record, even one of version 0 such as an item written by
  another library, or None when ``read`` returned None). ``record.version`` is always
  ``expected.version + 1`` (or 1 for a first write). Raise for an I/O error. A store may
  round ``expires_at`` up to what it can keep (DynamoDB TTLs are whole seconds).
* ``delete(name)``: drop the record unconditionally (tests and cleanup only; the
  breaker itself never deletes, it writes a CLOSED record so versions never repeat).

The async twins ``aread``, ``awrite`` and ``adelete`` run the sync ones in a worker
thread by default, so a blocking client never blocks the event loop; stores with a
native async client (or none of any I/O, like the in-memory store) override them.

Versions are what makes every transition safe across a fleet: a writer that read an
older record loses the compare-and-set and re-reads instead of overwriting a newer
transition (DESIGN §4 invariant 5). The breaker never deletes, so versions only grow
while a record lives; once a record expires (its TTL is at least an hour past the last
moment it can matter) a new one starts again at version 1, long after any reader's
cached copy went stale.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from breaker.persistence.record import CircuitRecord


class CircuitStore:
    """Base class of every store. Subclass it and implement ``read``, ``write``, ``delete``.

    Example:
        >>> from breaker.persistence import InMemoryPersistence, CircuitRecord
        >>> store = InMemoryPersistence()
        >>> first = CircuitRecord.closed("db").evolve()
        >>> store.write(first, expected=None), store.write(first, expected=None)
        (True, False)
    """

    #: Shown in messages and metrics ("memory", "dynamodb", "redis", ...).
    kind: str = "custom"

    def read(self, name: str) -> CircuitRecord | None:
        """Return the stored record of circuit ``name``, or None."""
        raise NotImplementedError(f"{type(self).__name__} must implement read(name)")

    def write(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        """Store ``record`` if the stored record still has ``expected``'s version."""
        raise NotImplementedError(f"{type(self).__name__} must implement write(record, expected)")

    def delete(self, name: str) -> None:
        """Drop the record of circuit ``name`` if there is one."""
        raise NotImplementedError(f"{type(self).__name__} must implement delete(name)")

    async def aread(self, name: str) -> CircuitRecord | None:
        """Async ``read``: by default the sync one in a worker thread."""
        import asyncio

        return await asyncio.to_thread(self.read, name)

    async def awrite(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        """Async ``write``: by default the sync one in a worker thread."""
        import asyncio

        return await asyncio.to_thread(self.write, record, expected)

    async def adelete(self, name: str) -> None:
        """Async ``delete``: by default the sync one in a worker thread."""
        import asyncio

        await asyncio.to_thread(self.delete, name)


def check_write_arguments(record: CircuitRecord, expected: CircuitRecord | None) -> None:
    """Raise ValueError when a ``write`` call breaks the contract (a bug in the caller).

    Stores call it first thing in ``write`` so every backend rejects the same misuse.
    """
    if expected is not None and expected.name != record.name:
        raise ValueError(f"expected.name {expected.name!r} must equal record.name {record.name!r}.")
    want = (expected.version if expected is not None else 0) + 1
    if record.version != want:
        raise ValueError(f"record.version must be {want} (expected's version + 1), got {record.version!r}.")
