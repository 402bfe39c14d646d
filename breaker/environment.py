"""Environments: one worker process's local view of every circuit.

An environment is what a Lambda execution environment is: it keeps, per circuit, the
consecutive-failure streak, the probe success streak, the last shared record it read
and until when that read is fresh. The process has one default environment; the
pytest plugin and the chaos harness build several in one process to simulate a fleet.
"""

from __future__ import annotations

import os
from _thread import allocate_lock

from breaker.persistence.record import CircuitRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    from breaker.persistence.record import CircuitRecord as _Record
    from breaker.states import CircuitInfo, CircuitState

_NEVER = float("-inf")


def _new_id() -> str:
    return f"{os.getpid()}-{os.urandom(6).hex()}"


class LocalView:
    """One environment's view of one circuit. Mutated only by the breaker (under ``lock``).

    ``closed_until`` is the fast-path deadline: while ``time.monotonic()`` is below it,
    the circuit is known CLOSED and fresh and a call needs no other check. It is -inf
    whenever the fast path must not be taken (not closed, stale, faked clock, local mode).
    """

    __slots__ = (
        "base",
        "closed_until",
        "failures",
        "fresh_until",
        "local",
        "lock",
        "name",
        "pending",
        "probing",
        "record",
        "store_down_until",
        "successes",
        "info",
        "unconfirmed",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = allocate_lock()
        self.reset()

    def reset(self) -> None:
        """Forget everything: as in a cold-started environment."""
        self.closed_until = _NEVER
        self.fresh_until = _NEVER
        #: the record as last read from or written to the store (None: the store had none)
        self.base: _Record | None = None
        #: what this environment acts on: ``base`` (or a fresh CLOSED record), or a local
        #: record made while the store was unreachable (then ``local`` is True)
        self.record: _Record = CircuitRecord.closed(self.name)
        self.local = False
        #: a trip decided while the store was down: (version it was based on, opened_at, failures)
        self.pending: tuple[int, float, int] | None = None
        self.failures = 0
        self.successes = 0
        self.probing = False
        self.store_down_until = _NEVER
        #: (record, its CircuitInfo), cached for rejections
        self.info: tuple[_Record, CircuitInfo] | None = None
        #: a transition whose write failed, so that this environment does not know whether
        #: it was stored (the reply may have been lost): (from state, the record written).
        #: A later read that finds that very record reports the transition then.
        self.unconfirmed: tuple[CircuitState, _Record] | None = None


class Environment:
    """A simulated worker process: an id (the probe owner name) and one LocalView per circuit.

    Example:
        >>> from breaker import CircuitBreaker
        >>> env = Environment("lambda-7")
        >>> CircuitBreaker("db", environment=env).environment.id
        'lambda-7'
    """

    __slots__ = ("__weakref__", "_lock", "_views", "id")

    def __init__(self, id: str | None = None) -> None:
        if id is not None and (not isinstance(id, str) or not id or len(id) > 200):
            from breaker.errors import CircuitBreakerConfigError

            raise CircuitBreakerConfigError(
                f"environment id must be a non-empty string of at most 200 characters, got {id!r}."
            )
        self.id = _new_id() if id is None else id
        self._views: dict[str, LocalView] = {}
        self._lock = allocate_lock()

    def view(self, name: str) -> LocalView:
        """The local view of circuit ``name``, created on first use."""
        view = self._views.get(name)
        if view is None:
            with self._lock:
                view = self._views.setdefault(name, LocalView(name))
        return view

    def reset(self) -> None:
        """Cold-start every view (the pytest plugin calls this between tests)."""
        with self._lock:
            views = list(self._views.values())
        for view in views:
            with view.lock:
                view.reset()

    def __repr__(self) -> str:
        return f"Environment({self.id!r}, circuits={sorted(self._views)!r})"


#: This process's environment, used by every breaker not given another one.
DEFAULT_ENVIRONMENT = Environment()


def _after_fork_in_child() -> None:
    # A forked worker is a new environment: it must not claim its parent's probe. Locks
    # are replaced, not acquired: another thread of the parent may have held one.
    env = DEFAULT_ENVIRONMENT
    env.id = _new_id()
    env._lock = allocate_lock()
    for view in env._views.values():
        view.lock = allocate_lock()
        view.reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
