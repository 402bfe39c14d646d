"""The one place where what a breaker does is published: hooks, the pytest plugin, metrics.

Every breaker publishes an :class:`Event` here for each stored transition, rejection,
fallback, probe and store operation. Nothing is published on the healthy fast path, so
listeners cost nothing while circuits are closed and fresh.

Example:
    >>> from breaker import events
    >>> seen = []
    >>> unsubscribe = events.subscribe(seen.append)
    >>> unsubscribe()
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

#: Event kinds, in the words of DESIGN §7's history vocabulary.
TRANSITION = "transition"  # value: CircuitTransition; stored (or manual) state change
REJECTED = "rejected"  # value: CircuitInfo; call refused with CircuitBreakerOpenError
FALLBACK = "fallback"  # value: CircuitInfo; call handed to on_circuit_open
PROBE_STARTED = "probe_started"  # value: None; this call is a probe
PROBE_FINISHED = "probe_finished"  # value: "ok" | "failed" | "ignored"
TAKEOVER = "takeover"  # value: previous owner id; probe lease taken over
STORE_READ = "store_read"  # value: CircuitRecord | None
STORE_WRITE = "store_write"  # value: (CircuitRecord, stored: bool)
STORE_FAULT = "store_fault"  # value: the exception
LOCAL_TRANSITION = "local_transition"  # value: CircuitTransition made while the store was down


class Event:
    """One thing a breaker did: ``kind``, circuit ``name``, ``environment`` id, wall ``time``, ``value``.

    Example:
        >>> Event("rejected", "db", "env-1", 10.0, None).kind
        'rejected'
    """

    __slots__ = ("environment", "kind", "name", "time", "value")

    def __init__(self, kind: str, name: str, environment: str, time: float, value: object) -> None:
        self.kind = kind
        self.name = name
        self.environment = environment
        self.time = time
        self.value = value

    def __repr__(self) -> str:
        return (
            f"Event({self.kind!r}, name={self.name!r}, environment={self.environment!r}, "
            f"time={self.time!r}, value={self.value!r})"
        )


_listeners: list[Callable[[Event], object]] = []


def subscribe(listener: Callable[[Event], object]) -> Callable[[], None]:
    """Call ``listener(event)`` for every event of every breaker; returns an unsubscribe function.

    Listener errors are logged and swallowed, like ``on_transition`` hook errors.

    Example:
        >>> unsubscribe = subscribe(lambda event: None)
        >>> unsubscribe()
    """
    if not callable(listener):
        from breaker.errors import CircuitBreakerConfigError

        raise CircuitBreakerConfigError(f"listener must be callable, got {listener!r}.")
    _listeners.append(listener)

    def unsubscribe() -> None:
        try:
            _listeners.remove(listener)
        except ValueError:
            pass

    return unsubscribe


def has_listeners() -> bool:
    """Whether anyone listens (breakers skip building events otherwise)."""
    return bool(_listeners)


def publish(event: Event) -> None:
    """Hand ``event`` to every listener."""
    for listener in tuple(_listeners):
        try:
            listener(event)
        except Exception:
            log_exception("event listener %r raised while handling %r; ignoring.", listener, event)


def log_exception(message: str, *args: object) -> None:
    """Log at WARNING with the traceback, importing ``logging`` only when something goes wrong."""
    import logging

    logging.getLogger("breaker").warning(message, *args, exc_info=True)


def log_warning(message: str, *args: object) -> None:
    """Log at WARNING without a traceback (lazy ``logging`` import)."""
    import logging

    logging.getLogger("breaker").warning(message, *args)
