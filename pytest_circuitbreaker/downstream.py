"""Downstream: a scriptable fake dependency that records its calls.

Register how it behaves, call it (sync or ``await downstream.acall(...)``), then
inspect ``downstream.calls``. Outcomes are decided in this order:

1. an outage (``outage()`` until ``recover()``) fails every call;
2. a script (``script(...)``) gives the next outcomes one by one;
3. ``fail(n)`` fails the next ``n`` calls;
4. ``error_rate(rate)`` fails calls at random (seeded: the same seed, the same calls);
5. otherwise the call returns ``returns(value)`` (``"ok"`` by default).

``latency(seconds)`` makes each call take that long on the fake clock (the clock
advances; nothing sleeps).

Example:
    >>> api = Downstream("payments")
    >>> api.fail(1, TimeoutError("slow"))
    Downstream('payments', calls=0)
    >>> try:
    ...     api(10)
    ... except TimeoutError as exc:
    ...     print(exc)
    slow
    >>> api(10), api.call_count, api.calls[0].args
    ('ok', 2, (10,))
"""

from __future__ import annotations

from _thread import allocate_lock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from random import Random
    from typing import Any

    from breaker.clock import FakeClock
    from pytest_circuitbreaker.journal import Journal

__all__ = ["Call", "Downstream", "DownstreamFactory"]


class Call:
    """One call of a fake downstream: what it was given and how it ended.

    Attributes: ``index`` (1-based, per downstream), ``downstream`` (its name),
    ``args``, ``kwargs``, ``time`` (clock seconds when it finished), ``is_async``,
    ``result`` (None when it raised), ``exception`` (None when it returned),
    ``environment`` (the fleet environment id it ran in, or None) and ``seq`` (order
    among everything the test's journal recorded).

    Example:
        >>> call = Call(1, "db", (1,), {}, 0.0, False, "ok", None, None)
        >>> call.ok, call
        (True, db#1(1) -> 'ok')
    """

    __slots__ = (
        "args",
        "downstream",
        "environment",
        "exception",
        "index",
        "is_async",
        "kwargs",
        "result",
        "seq",
        "time",
    )

    def __init__(
        self,
        index: int,
        downstream: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        time: float,
        is_async: bool,
        result: Any,
        exception: BaseException | None,
        environment: str | None,
    ) -> None:
        self.index = index
        self.downstream = downstream
        self.args = args
        self.kwargs = kwargs
        self.time = time
        self.is_async = is_async
        self.result = result
        self.exception = exception
        self.environment = environment
        self.seq = 0

    @property
    def ok(self) -> bool:
        """True when the call returned, False when it raised."""
        return self.exception is None

    def __repr__(self) -> str:
        import reprlib

        short = reprlib.Repr()
        short.maxstring = short.maxother = 60
        words = [short.repr(a) for a in self.args] + [f"{k}={short.repr(v)}" for k, v in self.kwargs.items()]
        outcome = (
            f"-> {short.repr(self.result)}"
            if self.exception is None
            else f"-> raised {type(self.exception).__name__}: {self.exception}"
        )
        where = f" (environment {self.environment})" if self.environment else ""
        prefix = "await " if self.is_async else ""
        return f"{prefix}{self.downstream}#{self.index}({', '.join(words)}) {outcome}{where}"


def _exception_maker(owner: str, method: str, exc: object) -> Any:
    """Turn ``exc`` (None, an exception class or instance) into a zero-argument factory."""
    if exc is None:
        return lambda: ConnectionError(f"{owner} failed ({method}(), injected by the test)")
    if isinstance(exc, type) and issubclass(exc, BaseException):
        return lambda: exc(f"{owner} failed ({method}(), injected by the test)")
    if isinstance(exc, BaseException):
        return lambda: exc.with_traceback(None)  # the same instance, with a fresh traceback
    raise TypeError(f"{method}(): exc must be an exception class or instance (or None), got {exc!r}.")


def _outcome_of(owner: str, item: object) -> tuple[str, Any]:
    """A script item as ("raise", factory) or ("return", value)."""
    if isinstance(item, BaseException) or (isinstance(item, type) and issubclass(item, BaseException)):
        return "raise", _exception_maker(owner, "script", item)
    return "return", item


class Downstream:
    """A fake dependency: scriptable failures, an outage, an error rate, latency, recorded calls.

    Call it like the function it stands for (``downstream(*args, **kwargs)``) or await
    ``downstream.acall(*args, **kwargs)`` from async code; the same script serves both.
    Every setter returns the downstream, so calls chain:
    ``downstream.latency(0.2).fail(3)``.

    Parameters:
        name: shown in reports and in the default exceptions' messages.
        clock: the fake clock latency advances (``circuit_clock`` in the fixture);
            without one, latency really sleeps.
        seed: seeds ``error_rate`` (the fixture derives it from the session seed and
            the test id, so a run replays with ``--circuitbreaker-seed``).
        journal: where calls are recorded for the test's report (the fixture's).

    Example:
        >>> from breaker import circuit_breaker, CircuitBreakerConfig
        >>> api = Downstream("inventory").returns(7)
        >>> @circuit_breaker(name="inventory", config=CircuitBreakerConfig(failure_threshold=2))
        ... def stock(sku: str) -> int:
        ...     return api(sku)
        >>> stock("A-1"), api.calls[-1].args
        (7, ('A-1',))
    """

    def __init__(
        self,
        name: str = "downstream",
        *,
        clock: FakeClock | None = None,
        seed: object = 0,
        journal: Journal | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a downstream name must be a non-empty string, got {name!r}.")
        self.name = name
        self.clock = clock
        self.seed = seed
        self.journal = journal
        self.calls: list[Call] = []
        self._lock = allocate_lock()
        self._value: Any = "ok"
        self._outage: Any = None
        self._script: list[tuple[str, Any]] = []
        self._fail_next = 0
        self._fail_factory: Any = None
        self._rate = 0.0
        self._rate_factory: Any = None
        self._random: Random | None = None
        self._latency = 0.0
        if journal is not None:
            journal.add_downstream(self)

    def __repr__(self) -> str:
        return f"Downstream({self.name!r}, calls={len(self.calls)})"

    # ------------------------------------------------------------------ scripting

    def returns(self, value: Any) -> Downstream:
        """Make successful calls return ``value`` (default ``"ok"``).

        Example:
            >>> Downstream().returns({"status": "paid"})()
            {'status': 'paid'}
        """
        self._value = value
        return self

    def fail(self, times: int = 1, exc: object = None) -> Downstream:
        """Fail the next ``times`` calls with ``exc`` (a class or an instance; default ConnectionError).

        Example:
            >>> api = Downstream().fail(2, ValueError)
            >>> for _ in range(3):
            ...     try:
            ...         print(api())
            ...     except ValueError:
            ...         print("failed")
            failed
            failed
            ok
        """
        if isinstance(times, bool) or not isinstance(times, int) or times < 0:
            raise ValueError(f"fail(): times must be an int >= 0, got {times!r}.")
        factory = _exception_maker(self.name, "fail", exc)
        with self._lock:
            self._fail_next = times
            self._fail_factory = factory
        return self

    def outage(self, exc: object = None) -> Downstream:
        """Fail every call with ``exc`` until ``recover()``.

        Example:
            >>> api = Downstream().outage(TimeoutError)
            >>> api.recover()()
            'ok'
        """
        self._outage = _exception_maker(self.name, "outage", exc)
        return self

    def recover(self) -> Downstream:
        """End every failure mode (outage, script, pending ``fail``, error rate); latency stays.

        Example:
            >>> Downstream().fail(5).recover()()
            'ok'
        """
        with self._lock:
            self._outage = None
            self._script = []
            self._fail_next = 0
            self._rate = 0.0
        return self

    def error_rate(self, rate: float, exc: object = None, *, seed: object = None) -> Downstream:
        """Fail each call with probability ``rate`` (0..1), from a generator seeded with ``seed``.

        Without ``seed`` the downstream's own seed is used (the fixture's is derived
        from ``--circuitbreaker-seed`` and the test id), so the same run fails the same
        calls.

        Example:
            >>> api = Downstream().error_rate(0.5, seed=42)
            >>> for _ in range(20):
            ...     try:
            ...         _ = api()
            ...     except ConnectionError:
            ...         pass
            >>> 0 < api.failures < 20
            True
        """
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(f"error_rate(): rate must be a number from 0 to 1, got {rate!r}.")
        from random import Random

        factory = _exception_maker(self.name, "error_rate", exc)
        with self._lock:
            self._rate = float(rate)
            self._rate_factory = factory
            self._random = Random(f"{self.seed if seed is None else seed}:{self.name}")
        return self

    def latency(self, seconds: float) -> Downstream:
        """Make every call take ``seconds`` on the fake clock (it advances; nothing sleeps).

        Example:
            >>> from breaker import FakeClock
            >>> clock = FakeClock(start=0)
            >>> Downstream(clock=clock).latency(1.5)()
            'ok'
            >>> clock.now()
            1.5
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ValueError(f"latency(): seconds must be a number >= 0, got {seconds!r}.")
        self._latency = float(seconds)
        return self

    def script(self, *outcomes: object) -> Downstream:
        """Give the next calls these outcomes, in order: an exception (class or instance) is
        raised, anything else is returned. Afterwards the other rules apply again.

        Example:
            >>> api = Downstream().script("a", KeyError, "b")
            >>> api()
            'a'
            >>> api()
            Traceback (most recent call last):
            ...
            KeyError: 'downstream failed (script(), injected by the test)'
        """
        if not outcomes:
            raise ValueError(
                "script(): give at least one outcome (a value to return or an exception to raise)."
            )
        items = [_outcome_of(self.name, item) for item in outcomes]
        with self._lock:
            self._script.extend(items)
        return self

    # ------------------------------------------------------------------ calling

    def _decide(self) -> tuple[str, Any]:
        with self._lock:
            if self._outage is not None:
                return "raise", self._outage
            if self._script:
                return self._script.pop(0)
            if self._fail_next > 0:
                self._fail_next -= 1
                return "raise", self._fail_factory
            if self._rate and self._random is not None and self._random.random() < self._rate:
                return "raise", self._rate_factory
            return "return", self._value

    def _now(self) -> float:
        if self.clock is not None:
            return self.clock.time()
        from breaker.clock import SYSTEM_CLOCK

        return SYSTEM_CLOCK.time()

    def _record(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        is_async: bool,
        result: Any,
        exc: BaseException | None,
    ) -> None:
        from pytest_circuitbreaker.journal import CURRENT_ENVIRONMENT

        with self._lock:
            call = Call(
                len(self.calls) + 1,
                self.name,
                args,
                kwargs,
                self._now(),
                is_async,
                result,
                exc,
                CURRENT_ENVIRONMENT.get(),
            )
            self.calls.append(call)
        if self.journal is not None:
            call.seq = self.journal.record_call(call)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the fake: apply latency, then return or raise as scripted, and record it."""
        if self._latency:
            if self.clock is not None:
                self.clock.advance(self._latency)
            else:
                import time

                time.sleep(self._latency)
        action, value = self._decide()
        if action == "raise":
            exc = value()
            self._record(args, kwargs, False, None, exc)
            raise exc
        self._record(args, kwargs, False, value, None)
        return value

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """The async twin of calling the fake: ``await downstream.acall(...)``.

        Example:
            >>> import asyncio
            >>> asyncio.run(Downstream().acall(1))
            'ok'
        """
        import asyncio

        if self._latency and self.clock is not None:
            self.clock.advance(self._latency)
            await asyncio.sleep(0)  # still a suspension point, as real I/O would be
        elif self._latency:
            await asyncio.sleep(self._latency)
        action, value = self._decide()
        if action == "raise":
            exc = value()
            self._record(args, kwargs, True, None, exc)
            raise exc
        self._record(args, kwargs, True, value, None)
        return value

    # ------------------------------------------------------------------ inspecting

    @property
    def call_count(self) -> int:
        """How many times it was called."""
        return len(self.calls)

    @property
    def last_call(self) -> Call:
        """The most recent call; raises AssertionError when there was none."""
        if not self.calls:
            raise AssertionError(f"downstream {self.name!r} was never called.")
        return self.calls[-1]

    @property
    def failures(self) -> int:
        """How many calls raised."""
        return sum(1 for call in self.calls if call.exception is not None)

    @property
    def successes(self) -> int:
        """How many calls returned."""
        return sum(1 for call in self.calls if call.exception is None)

    def assert_called(self, times: int | None = None) -> None:
        """Assert it was called (exactly ``times`` times when given); the message lists the calls.

        Example:
            >>> api = Downstream()
            >>> _ = api(1)
            >>> api.assert_called(1)
        """
        count = len(self.calls)
        if (times is None and count == 0) or (times is not None and count != times):
            expected = "at least once" if times is None else f"{times} time(s)"
            listing = "\n".join(f"  {call!r}" for call in self.calls[-20:]) or "  (no calls)"
            raise AssertionError(
                f"downstream {self.name!r} was called {count} time(s), expected {expected}:\n{listing}"
            )

    def reset_calls(self) -> None:
        """Forget the recorded calls (the script stays)."""
        with self._lock:
            self.calls.clear()


class DownstreamFactory:
    """Several named fake downstreams sharing the test's clock, seed and journal.

    ``factory("payments")`` returns the downstream of that name, creating it on first
    use; ``factory["payments"]`` only looks it up.

    Example:
        >>> downstreams = DownstreamFactory()
        >>> downstreams("payments") is downstreams("payments"), downstreams.names()
        (True, ['payments'])
    """

    def __init__(
        self, *, clock: FakeClock | None = None, seed: object = 0, journal: Journal | None = None
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.journal = journal
        self._made: dict[str, Downstream] = {}

    def __call__(self, name: str) -> Downstream:
        """The downstream called ``name`` (created on first use)."""
        made = self._made.get(name)
        if made is None:
            made = Downstream(name, clock=self.clock, seed=self.seed, journal=self.journal)
            self._made[name] = made
        return made

    def __getitem__(self, name: str) -> Downstream:
        try:
            return self._made[name]
        except KeyError:
            raise KeyError(
                f"no downstream named {name!r}; made so far: {sorted(self._made)!r} "
                f"(call downstream_factory({name!r}) to make it)."
            ) from None

    def __iter__(self) -> Iterator[Downstream]:
        return iter(list(self._made.values()))

    def __len__(self) -> int:
        return len(self._made)

    def names(self) -> list[str]:
        """The names made so far, in creation order."""
        return list(self._made)
