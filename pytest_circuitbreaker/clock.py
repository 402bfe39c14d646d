"""CircuitClock: the fake clock every breaker of a test reads, with time-travel helpers.

A :class:`CircuitClock` is a ``breaker.clock.FakeClock`` (wall and monotonic time move
together, only when told to). ``install()`` makes every breaker on the default clock
read it (``SYSTEM_CLOCK.use``), which is what the ``circuit_clock`` fixture does for the
test. ``freeze_wall_time()`` also freezes ``time.time()`` and ``datetime.now()`` for
the test's own code (through time-machine) and moves them with the fake clock: that is
how Powertools' breaker, which reads ``datetime.now()``, follows the clock.

Example:
    >>> clock = CircuitClock(start=1_000.0)
    >>> clock.advance(5); clock.now()
    1005.0
"""

from __future__ import annotations

from breaker.clock import SYSTEM_CLOCK, FakeClock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from pytest_circuitbreaker.journal import Journal

__all__ = ["CircuitClock"]


def _seconds(value: object, what: str) -> float:
    """Numbers pass through; a ``timedelta`` becomes seconds (without importing datetime)."""
    total = getattr(value, "total_seconds", None)
    if callable(total) and not isinstance(value, (int, float)):
        return float(total())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds or a datetime.timedelta, got {value!r}.")
    return value


class CircuitClock(FakeClock):
    """The test's fake clock: ``advance``, ``now``, ``travel_to``, ``past_open_window``.

    Parameters:
        start: the wall-clock unix time to start at (default: now, in whole seconds;
            real servers such as Redis expire keys on their own clock, so a start far
            in the past would expire every record at once).
        journal: the test's journal, which lets ``past_open_window`` find when a
            circuit reported through a hook (Powertools) opened.

    Example:
        >>> clock = CircuitClock(start=0.0)
        >>> clock.advance(90); clock.now()
        90.0
    """

    __slots__ = ("_journal", "_override", "_travel", "_traveller")

    def __init__(self, start: float | None = None, *, journal: Journal | None = None) -> None:
        if start is None:
            import time

            start = float(int(time.time()))
        super().__init__(start)
        self._journal = journal
        self._override: Any = None
        self._travel: Any = None
        self._traveller: Any = None

    def __repr__(self) -> str:
        frozen = ", wall time frozen" if self._traveller is not None else ""
        return f"CircuitClock(now={self._wall!r}{frozen})"

    # ------------------------------------------------------------------ moving

    def advance(self, seconds: float) -> None:
        """Move wall and monotonic time forward by ``seconds`` (a number >= 0 or a timedelta).

        Example:
            >>> clock = CircuitClock(start=0.0)
            >>> clock.advance(2.5); clock.now()
            2.5
        """
        super().advance(_seconds(seconds, "advance(): seconds"))
        self._sync()

    def travel_to(self, timestamp: float) -> None:
        """Set the wall clock to ``timestamp`` (unix seconds or a datetime); monotonic only moves forward.

        Example:
            >>> clock = CircuitClock(start=0.0)
            >>> clock.travel_to(1_700_000_000); clock.now()
            1700000000.0
        """
        stamp = getattr(timestamp, "timestamp", None)
        if callable(stamp) and not isinstance(timestamp, (int, float)):
            timestamp = stamp()
        super().travel_to(timestamp)
        self._sync()

    def past_open_window(
        self, circuit: object, *, recovery_timeout: float | None = None, by: float = 0.001
    ) -> float:
        """Move just past the open window of ``circuit`` so its next call may run the probe.

        ``circuit`` is a decorated function (``@circuit_breaker``, ours or Powertools'),
        a ``CircuitBreaker``, or a circuit name (then ``recovery_timeout`` is needed:
        the name alone does not say it). The circuit must be OPEN. Moves to
        ``opened_at + recovery_timeout + by`` (never backwards) and returns that time.

        Example:
            >>> from breaker import CircuitBreaker, CircuitBreakerConfig
            >>> from breaker.persistence import InMemoryPersistence
            >>> clock = CircuitClock(start=100.0)
            >>> config = CircuitBreakerConfig(failure_threshold=1, recovery_timeout=30)
            >>> cb = CircuitBreaker("db", InMemoryPersistence(clock=clock), config=config, clock=clock)
            >>> def down(): raise OSError("down")
            >>> try:
            ...     cb.call(down)
            ... except OSError:
            ...     pass
            >>> clock.past_open_window(cb)
            130.001
        """
        _, opened_at, window = self._open_window(circuit, recovery_timeout)
        target = opened_at + window + by
        if target > self._wall:
            self.advance(target - self._wall)
        return self._wall

    def _open_window(self, circuit: object, recovery_timeout: float | None) -> tuple[str, float, float]:
        from breaker.circuit import CircuitBreaker

        breaker = getattr(circuit, "circuit_breaker", circuit)
        if isinstance(breaker, CircuitBreaker):
            info = breaker.info()
            if info.state != "OPEN" or info.opened_at is None:
                raise ValueError(
                    f"circuit {breaker.name!r} is {info.state.value}, not OPEN: past_open_window() moves past "
                    "an open circuit's recovery window. Trip it first (or check the path with circuit_transitions)."
                )
            window = breaker.config.recovery_timeout if recovery_timeout is None else recovery_timeout
            return breaker.name, float(info.opened_at), float(window)
        closure = _closure_of(circuit)
        if "name" in closure and hasattr(closure.get("config"), "recovery_timeout"):
            return self._powertools_window(closure, recovery_timeout)
        if isinstance(circuit, str):
            if recovery_timeout is None:
                raise ValueError(
                    f"past_open_window({circuit!r}) needs recovery_timeout=SECONDS: a circuit name does not "
                    "say how long its window is (or pass the decorated function or the CircuitBreaker)."
                )
            opened_at = self._opened_at_from_journal(circuit)
            if opened_at is None:
                opened_at = _opened_at_from_default_store(circuit)
            if opened_at is None:
                raise ValueError(
                    f"circuit {circuit!r} has no recorded opening in this test: trip it first, or pass the "
                    "decorated function or the CircuitBreaker."
                )
            return circuit, opened_at, float(recovery_timeout)
        raise TypeError(
            "past_open_window() takes a function decorated with @circuit_breaker (ours or Powertools'), a "
            f"CircuitBreaker, or a circuit name with recovery_timeout=..., got {circuit!r}."
        )

    def _powertools_window(
        self, closure: dict[str, Any], recovery_timeout: float | None
    ) -> tuple[str, float, float]:
        name = closure["name"]
        window = closure["config"].recovery_timeout if recovery_timeout is None else recovery_timeout
        opened_at = None
        store = closure.get("persistence_store")
        if store is not None and hasattr(store, "get_state"):
            record = store.get_state(name)
            if getattr(record, "state", None) != "OPEN":
                raise ValueError(
                    f"circuit {name!r} is {getattr(record.state, 'value', record.state)}, not OPEN: "
                    "past_open_window() moves past an open circuit's recovery window. Trip it first."
                )
            opened_at = record.opened_at
        if opened_at is None:
            opened_at = self._opened_at_from_journal(name)
        if opened_at is None:
            raise ValueError(f"circuit {name!r} has no recorded opening in this test: trip it first.")
        return name, float(opened_at), float(window)

    def _opened_at_from_journal(self, name: str) -> float | None:
        if self._journal is None:
            return None
        for recorded in reversed(self._journal.transitions):
            if recorded.name == name and recorded.to_state == "OPEN" and recorded.opened_at is not None:
                return float(recorded.opened_at)
        return None

    # ------------------------------------------------------------------ wall time of user code

    def freeze_wall_time(self) -> CircuitClock:
        """Freeze ``time.time()`` and ``datetime.now()`` at this clock's time, and move them with it.

        For code that reads the system time itself (Powertools' circuit breaker, your
        own timestamps). Needs time-machine (``pip install time-machine``); undone when
        the clock is closed (at the end of the test for the fixture). ``time.monotonic()``
        is left alone, so asyncio keeps working.

        Example:
            >>> import time
            >>> clock = CircuitClock(start=1_700_000_000.0).freeze_wall_time()
            >>> clock.advance(60); time.time()
            1700000060.0
            >>> clock.close()
        """
        if self._traveller is None:
            try:
                import time_machine
            except ImportError:
                raise RuntimeError(
                    "freeze_wall_time() needs time-machine: install it with `pip install time-machine` "
                    "(or freeze time yourself, e.g. with freezegun, and move it alongside circuit_clock)."
                ) from None
            self._travel = time_machine.travel(self._wall, tick=False)
            self._traveller = self._travel.start()
        return self

    @property
    def wall_time_frozen(self) -> bool:
        """True after ``freeze_wall_time()``, until ``close()``."""
        return self._traveller is not None

    def _sync(self) -> None:
        traveller = self._traveller
        if traveller is not None:
            traveller.move_to(self._wall)

    # ------------------------------------------------------------------ installing

    def install(self) -> CircuitClock:
        """Make every breaker on the default clock (``SYSTEM_CLOCK``) read this clock until ``close()``.

        Example:
            >>> from breaker import SYSTEM_CLOCK
            >>> clock = CircuitClock(start=5.0).install()
            >>> SYSTEM_CLOCK.time()
            5.0
            >>> clock.close()
        """
        if self._override is None:
            self._override = SYSTEM_CLOCK.use(self)
        return self

    def close(self) -> None:
        """Undo ``install()`` and ``freeze_wall_time()`` (the fixture does this after the test)."""
        if self._override is not None:
            self._override.__exit__(None, None, None)
            self._override = None
        if self._travel is not None:
            self._travel.stop()
            self._travel = self._traveller = None


def _closure_of(fn: object) -> dict[str, Any]:
    """The free variables of a function's closure, by name (empty for anything else)."""
    code = getattr(fn, "__code__", None)
    cells = getattr(fn, "__closure__", None)
    if code is None or not cells:
        return {}
    values: dict[str, Any] = {}
    for name, cell in zip(code.co_freevars, cells, strict=False):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell
            continue
    return values


def _opened_at_from_default_store(name: str) -> float | None:
    from breaker.persistence.memory import default_store

    try:
        record = default_store().read(name)
    except Exception:
        return None
    if record is None or record.state != "OPEN" or record.opened_at is None:
        return None
    return float(record.opened_at)
