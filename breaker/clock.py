"""The one clock every breaker reads: wall time for shared timestamps, monotonic for freshness.

Shared timestamps (``opened_at``, probe leases, TTLs) are wall-clock unix seconds,
because every environment of a fleet must agree on them. How long a locally cached
record stays fresh is measured on the monotonic clock, which never jumps.

The default clock reads the ``time`` module at each call, so freezegun and
time-machine move it. Tests may swap in a :class:`FakeClock`, either per breaker
(``CircuitBreaker(..., clock=fake)``) or for every breaker using the default clock
(``SYSTEM_CLOCK.use(fake)``), which is what the pytest plugin's ``circuit_clock`` does.
"""

from __future__ import annotations

import time as _time

# The type of the real time.monotonic (a builtin). freezegun and mock put a Python
# function there; a reference to the function itself would be swapped by freezegun too.
_BUILTIN = type(_time.monotonic)


class Clock:
    """The clock interface: ``time()`` in unix seconds, ``monotonic()`` in seconds.

    Subclass it to supply your own time source.

    Example:
        >>> class Epoch(Clock):
        ...     def time(self) -> float: return 0.0
        ...     def monotonic(self) -> float: return 0.0
        >>> Epoch().time()
        0.0
    """

    #: True only for the real, un-faked system clock. The breaker's healthy fast path
    #: compares deadlines with ``time.monotonic()`` directly and is enabled only then.
    realtime: bool = False

    def time(self) -> float:
        """Wall-clock unix time in seconds."""
        raise NotImplementedError

    def monotonic(self) -> float:
        """Monotonic seconds, for measuring durations."""
        raise NotImplementedError


class SystemClock(Clock):
    """The default clock: the ``time`` module, read at call time, unless overridden.

    ``use(clock)`` makes every breaker on this clock read ``clock`` instead, until the
    returned context manager exits (or ``restore()`` is called).

    Example:
        >>> fake = FakeClock(start=1_000.0)
        >>> with SYSTEM_CLOCK.use(fake):
        ...     SYSTEM_CLOCK.time()
        1000.0
    """

    __slots__ = ("_override",)

    def __init__(self) -> None:
        self._override: Clock | None = None

    @property
    def realtime(self) -> bool:  # type: ignore[override]
        # Not while a tool such as freezegun has replaced time.monotonic: the fast path
        # would keep deadlines of the fake clock after the real one is back.
        return self._override is None and type(_time.monotonic) is _BUILTIN

    def time(self) -> float:
        override = self._override
        return _time.time() if override is None else override.time()

    def monotonic(self) -> float:
        override = self._override
        return _time.monotonic() if override is None else override.monotonic()

    def use(self, clock: Clock) -> _Override:
        """Read ``clock`` instead of the ``time`` module, now and until the context exits."""
        if not isinstance(clock, Clock):
            from breaker.errors import CircuitBreakerConfigError

            raise CircuitBreakerConfigError(f"clock must be a breaker.clock.Clock instance, got {clock!r}.")
        override = _Override(self, self._override, clock)
        self._override = clock
        return override

    def restore(self) -> None:
        """Go back to reading the ``time`` module."""
        self._override = None


class _Override:
    """Returned by ``SystemClock.use``: already in effect; exiting it restores the previous clock."""

    __slots__ = ("_owner", "_previous", "clock")

    def __init__(self, owner: SystemClock, previous: Clock | None, clock: Clock) -> None:
        self._owner = owner
        self._previous = previous
        self.clock = clock

    def __enter__(self) -> Clock:
        return self.clock

    def __exit__(self, *exc: object) -> None:
        self._owner._override = self._previous


class FakeClock(Clock):
    """A clock that moves only when told to: wall and monotonic time advance together.

    Example:
        >>> clock = FakeClock(start=1_700_000_000.0)
        >>> clock.advance(30)
        >>> clock.time()
        1700000030.0
    """

    __slots__ = ("_mono", "_wall")

    def __init__(self, start: float | None = None) -> None:
        self._wall = float(_time.time() if start is None else start)
        self._mono = 1_000.0

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def now(self) -> float:
        """The current fake wall time, in unix seconds."""
        return self._wall

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds`` (a number >= 0)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            from breaker.errors import CircuitBreakerConfigError

            raise CircuitBreakerConfigError(
                f"seconds must be a number >= 0, got {seconds!r}; the clock never goes back "
                "(use travel_to() to set the wall clock)."
            )
        self._wall += seconds
        self._mono += seconds

    def travel_to(self, timestamp: float) -> None:
        """Set the wall clock to ``timestamp``; the monotonic clock moves forward only."""
        if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
            from breaker.errors import CircuitBreakerConfigError

            raise CircuitBreakerConfigError(
                f"timestamp must be unix seconds (int or float), got {timestamp!r}."
            )
        delta = float(timestamp) - self._wall
        self._wall = float(timestamp)
        if delta > 0:
            self._mono += delta


#: The process-wide default clock.
SYSTEM_CLOCK = SystemClock()
