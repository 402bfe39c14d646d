"""Fleet: N simulated environments (Lambda execution environments) sharing one store.

Each environment keeps its own local view of every circuit (failure streak, probe
streak, last read and its freshness), as separate Lambda environments do; they share
the store the circuits use and the clock. Call a protected function *through* an
environment with ``fleet.call(i, fn, ...)`` and read what the fleet did with
``fleet.metrics()``.

Example:
    >>> from breaker import circuit_breaker
    >>> @circuit_breaker(name="search")
    ... def search(q: str) -> str: return q.upper()
    >>> fleet = Fleet(2)
    >>> fleet.call(0, search, "a"), fleet.call(1, search, "b")
    ('A', 'B')
    >>> fleet.metrics().downstream_calls
    2
    >>> fleet.close()
"""

from __future__ import annotations

from _thread import allocate_lock

from breaker.circuit import CircuitBreaker, is_async_callable
from breaker.environment import Environment
from pytest_circuitbreaker.journal import CURRENT_ENVIRONMENT

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from breaker.events import Event

__all__ = ["Fleet", "FleetMetrics"]

_FIELDS = (
    "invocations",
    "downstream_calls",
    "rejections",
    "fallbacks",
    "probes",
    "store_reads",
    "store_writes",
    "store_conflicts",
    "store_faults",
    "transitions",
)

# breaker.events kinds -> the metric they count.
_EVENT_METRICS = {
    "rejected": ("rejections",),
    "fallback": ("rejections", "fallbacks"),
    "probe_started": ("probes",),
    "store_read": ("store_reads",),
    "store_write": ("store_writes",),
    "store_fault": ("store_faults",),
    "transition": ("transitions",),
}


class FleetMetrics:
    """What a fleet (or one environment of it) did, counted from calls and breaker events.

    ``invocations``: calls made through ``fleet.call``/``acall``; ``downstream_calls``:
    those where the protected function really ran; ``rejections``: calls refused while
    open (``fallbacks`` of them went to ``on_circuit_open``); ``probes``: probe calls
    started; ``store_reads`` / ``store_writes``: store operations that answered
    (``store_conflicts`` of the writes lost their compare-and-set to another writer);
    ``store_faults``: store operations that failed; ``transitions``: stored transitions
    this fleet made.

    Example:
        >>> m = FleetMetrics()
        >>> m.rejections, m.as_dict()["store_reads"]
        (0, 0)
    """

    __slots__ = _FIELDS

    def __init__(self, **values: int) -> None:
        for field in _FIELDS:
            setattr(self, field, values.pop(field, 0))
        if values:
            raise TypeError(f"unknown FleetMetrics field(s) {sorted(values)!r}; allowed: {list(_FIELDS)!r}.")

    def as_dict(self) -> dict[str, int]:
        """The counters as a dict."""
        return {field: getattr(self, field) for field in _FIELDS}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, FleetMetrics):
            return self.as_dict() == other.as_dict()
        if isinstance(other, dict):
            return self.as_dict() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "FleetMetrics(" + ", ".join(f"{k}={v}" for k, v in self.as_dict().items()) + ")"


class Fleet:
    """``size`` simulated environments, their breakers, and what they did.

    Parameters:
        size: how many environments (>= 1).
        prefix: environment ids are ``f"{prefix}-{i}"`` (also the probe owner names
            stored in records); give two fleets of one test different prefixes.

    Environments are picked by index (``0 .. size-1``) or passed as ``Environment``
    objects. ``close()`` stops counting (the fixture closes it after the test).

    Example:
        >>> fleet = Fleet(3)
        >>> [env.id for env in fleet]
        ['env-0', 'env-1', 'env-2']
        >>> fleet.close()
    """

    def __init__(self, size: int = 3, *, prefix: str = "env") -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"a fleet's size must be an int >= 1, got {size!r}.")
        self.environments = [Environment(f"{prefix}-{index}") for index in range(size)]
        self._index = {env.id: index for index, env in enumerate(self.environments)}
        self._counts: list[dict[str, int]] = [dict.fromkeys(_FIELDS, 0) for _ in self.environments]
        self._breakers: dict[int, tuple[CircuitBreaker, list[CircuitBreaker]]] = {}
        self._lock = allocate_lock()
        from breaker import events

        self._unsubscribe: Callable[[], None] | None = events.subscribe(self._on_event)

    def __repr__(self) -> str:
        return f"Fleet(size={len(self.environments)}, environments={[env.id for env in self.environments]!r})"

    @property
    def size(self) -> int:
        """How many environments."""
        return len(self.environments)

    def __len__(self) -> int:
        return len(self.environments)

    def __iter__(self) -> Iterator[Environment]:
        return iter(self.environments)

    def __getitem__(self, index: int) -> Environment:
        return self.environments[index]

    def _position(self, env: int | Environment) -> int:
        if isinstance(env, Environment):
            position = self._index.get(env.id)
            if position is not None and self.environments[position] is env:
                return position
            raise ValueError(
                f"{env!r} is not an environment of this fleet ({[e.id for e in self.environments]!r})."
            )
        if (
            isinstance(env, bool)
            or not isinstance(env, int)
            or not -len(self.environments) <= env < len(self.environments)
        ):
            raise ValueError(
                f"env must be an index from 0 to {len(self.environments) - 1} or one of the fleet's "
                f"Environments, got {env!r}."
            )
        return env % len(self.environments)

    # ------------------------------------------------------------------ breakers

    def breakers(self, circuit: object) -> list[CircuitBreaker]:
        """One CircuitBreaker per environment for ``circuit`` (a decorated function or a CircuitBreaker).

        Same name, store, hooks, config and clock; each with its environment's view.

        Example:
            >>> from breaker import CircuitBreaker
            >>> fleet = Fleet(2)
            >>> [cb.environment.id for cb in fleet.breakers(CircuitBreaker("db"))]
            ['env-0', 'env-1']
            >>> fleet.close()
        """
        original = _breaker_of(circuit, "breakers")
        with self._lock:
            known = self._breakers.get(id(original))
            if known is None or known[0] is not original:
                known = (original, [original.with_environment(env) for env in self.environments])
                self._breakers[id(original)] = known
        return list(known[1])

    def breaker(self, circuit: object, env: int | Environment) -> CircuitBreaker:
        """The CircuitBreaker of ``circuit`` as environment ``env`` sees it.

        Example:
            >>> from breaker import CircuitBreaker
            >>> fleet = Fleet(2)
            >>> fleet.breaker(CircuitBreaker("db"), 1).environment.id
            'env-1'
            >>> fleet.close()
        """
        return self.breakers(circuit)[self._position(env)]

    # ------------------------------------------------------------------ calling

    def _target(
        self, protected: object, args: tuple[Any, ...], method: str
    ) -> tuple[CircuitBreaker, Any, tuple[Any, ...]]:
        if isinstance(protected, CircuitBreaker):
            if not args or not callable(args[0]):
                raise TypeError(
                    f"fleet.{method}(env, breaker, fn, *args): after a CircuitBreaker pass the function to "
                    f"call, got {args[:1]!r}."
                )
            return protected, args[0], args[1:]
        breaker = getattr(protected, "circuit_breaker", None)
        inner = getattr(protected, "__wrapped__", None)
        if isinstance(breaker, CircuitBreaker) and callable(inner):
            return breaker, inner, args
        raise TypeError(
            f"fleet.{method}() takes a function decorated with @circuit_breaker, or a CircuitBreaker followed "
            f"by the function to call, got {protected!r}. (Powertools' breaker keeps its counters per process, "
            "so it cannot be split into environments.)"
        )

    def call(
        self,
        env: int | Environment,
        protected: Callable[..., Any] | CircuitBreaker,
        /,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Call ``protected(*args, **kwargs)`` as environment ``env`` would, through its breaker.

        ``protected`` is a decorated function, or a CircuitBreaker followed by the
        function to call. Returns (or raises) what the call does.

        Example:
            >>> from breaker import circuit_breaker
            >>> @circuit_breaker(name="echo")
            ... def echo(x: int) -> int: return x
            >>> fleet = Fleet(2)
            >>> fleet.call(1, echo, 5)
            5
            >>> fleet.close()
        """
        position = self._position(env)
        breaker, fn, args = self._target(protected, args, "call")
        if is_async_callable(fn):
            raise TypeError(f"{fn!r} is async: use `await fleet.acall(env, ...)`.")
        per_env = self.breakers(breaker)[position]
        count = self._counter(position)

        def run(*a: Any, **k: Any) -> Any:
            count("downstream_calls")
            return fn(*a, **k)

        count("invocations")
        token = CURRENT_ENVIRONMENT.set(self.environments[position].id)
        try:
            return per_env.call(run, *args, **kwargs)
        finally:
            CURRENT_ENVIRONMENT.reset(token)

    async def acall(
        self,
        env: int | Environment,
        protected: Callable[..., Any] | CircuitBreaker,
        /,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """``call`` for async functions: ``await fleet.acall(0, fetch, url)``.

        Example:
            >>> import asyncio
            >>> from breaker import circuit_breaker
            >>> @circuit_breaker(name="aecho")
            ... async def aecho(x: int) -> int: return x
            >>> fleet = Fleet(2)
            >>> asyncio.run(fleet.acall(0, aecho, 3))
            3
            >>> fleet.close()
        """
        position = self._position(env)
        breaker, fn, args = self._target(protected, args, "acall")
        per_env = self.breakers(breaker)[position]
        count = self._counter(position)

        async def run(*a: Any, **k: Any) -> Any:
            count("downstream_calls")
            result = fn(*a, **k)
            if hasattr(result, "__await__"):
                result = await result
            return result

        count("invocations")
        token = CURRENT_ENVIRONMENT.set(self.environments[position].id)
        try:
            return await per_env.acall(run, *args, **kwargs)
        finally:
            CURRENT_ENVIRONMENT.reset(token)

    def _counter(self, position: int) -> Callable[[str], None]:
        counts, lock = self._counts[position], self._lock

        def count(field: str) -> None:
            with lock:
                counts[field] += 1

        return count

    def cold_start(self, env: int | Environment | None = None) -> None:
        """Forget environment ``env``'s local views (every environment's when None), as a recycled
        Lambda environment would. The store keeps its records.

        Example:
            >>> fleet = Fleet(2)
            >>> fleet.cold_start(0)
            >>> fleet.close()
        """
        targets = self.environments if env is None else [self.environments[self._position(env)]]
        for environment in targets:
            environment.reset()

    # ------------------------------------------------------------------ metrics

    def _on_event(self, event: Event) -> None:
        position = self._index.get(event.environment)
        fields = _EVENT_METRICS.get(event.kind)
        if position is None or fields is None:
            return
        counts = self._counts[position]
        with self._lock:
            for field in fields:
                counts[field] += 1
            if event.kind == "store_write" and isinstance(event.value, tuple) and event.value[1] is False:
                counts["store_conflicts"] += 1

    def metrics(self, env: int | Environment | None = None) -> FleetMetrics:
        """The counters of environment ``env``, or summed over the fleet when None.

        Example:
            >>> fleet = Fleet(2)
            >>> fleet.metrics(0).invocations
            0
            >>> fleet.close()
        """
        with self._lock:
            if env is not None:
                return FleetMetrics(**self._counts[self._position(env)])
            total = dict.fromkeys(_FIELDS, 0)
            for counts in self._counts:
                for field, value in counts.items():
                    total[field] += value
        return FleetMetrics(**total)

    def metrics_by_environment(self) -> dict[str, FleetMetrics]:
        """Every environment's counters, by environment id.

        Example:
            >>> fleet = Fleet(1)
            >>> list(fleet.metrics_by_environment())
            ['env-0']
            >>> fleet.close()
        """
        return {env.id: self.metrics(index) for index, env in enumerate(self.environments)}

    def close(self) -> None:
        """Stop counting events (the metrics stay readable)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None


def _breaker_of(circuit: object, method: str) -> CircuitBreaker:
    breaker = getattr(circuit, "circuit_breaker", circuit)
    if isinstance(breaker, CircuitBreaker):
        return breaker
    raise TypeError(
        f"fleet.{method}() takes a function decorated with @circuit_breaker or a CircuitBreaker, got {circuit!r}."
    )
