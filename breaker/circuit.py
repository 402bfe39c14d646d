"""The state machine and the hot path.

Layout of a protected call:

* **fast path** (the ``protected`` closures in ``_wrap_sync``/``_wrap_async``): while
  this environment's view of the circuit is CLOSED and fresh, a call costs one clock
  read and one comparison; a success writes nothing anywhere.
* **slow path** (``_call``/``_acall``): everything else. The decisions are written once,
  as generators (``_admit``, ``_settle``, ``_command``) that *yield* store operations
  instead of doing I/O. A sync driver runs them with the store's blocking methods and an
  async driver with its async twins, so sync and async breakers share every rule.
  Drivers hold the view's lock while a generator runs and release it during I/O, so
  decisions are serialized per environment but no thread waits on another's store call.

Every state change is a compare-and-set on the record's version; hooks fire only for
a write the store accepted (exactly once fleet-wide). Store errors never escape a
protected call: the environment then acts as a local breaker and backs off the store.
"""

from __future__ import annotations

from time import monotonic as _monotonic

from breaker import events
from breaker.clock import SYSTEM_CLOCK, Clock
from breaker.config import CircuitBreakerConfig
from breaker.environment import DEFAULT_ENVIRONMENT, Environment
from breaker.errors import CircuitBreakerConfigError, CircuitBreakerOpenError, CircuitBreakerPersistenceError
from breaker.persistence.base import CircuitStore
from breaker.persistence.memory import default_store
from breaker.persistence.record import CircuitRecord
from breaker.states import CircuitState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator
    from typing import Any, TypeVar

    from breaker.environment import LocalView
    from breaker.states import CircuitInfo, CircuitTransition

    F = TypeVar("F", bound=Callable[..., Any])
    # What the decision generators yield (a store operation) and receive back.
    Op = tuple[Any, ...]
    Machine = Generator[Op, Any, Any]

_CLOSED = CircuitState.CLOSED
_OPEN = CircuitState.OPEN
_HALF_OPEN = CircuitState.HALF_OPEN
_NEVER = float("-inf")

# Store operations the generators yield.
_READ = "read"
_WRITE = "write"
_DELETE = "delete"  # only reset() repairing a corrupt record

# Admission decisions.
_RUN = "run"  # CLOSED: run the call, count its failure
_PROBE = "probe"  # HALF_OPEN and ours: run the call as a probe
_REJECT = "reject"

# Seconds a record outlives the longest time it can matter (then the store may drop it).
_TTL_SLACK = 3600.0

# Tasks running async on_transition hooks reached through the sync API inside a loop.
_BACKGROUND: set[Any] = set()

_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200


class _Fault:
    """Sent into a generator instead of a result when a store operation raised."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > 200:
        raise CircuitBreakerConfigError(
            f"name must be a non-empty string of at most 200 characters, got {name!r}."
        )
    return name


def _code_flags(fn: object) -> int:
    """The code flags of what ``fn`` runs (through partials, bound methods and __call__)."""
    for _ in range(16):
        inner = getattr(fn, "func", None) if type(fn).__name__ == "partial" else None
        if callable(inner):
            fn = inner  # functools.partial (functools is not imported: see _wraps)
            continue
        inner = getattr(fn, "__func__", None)
        if inner is not None:
            fn = inner
            continue
        break
    # The object's own attributes only: a Mock would answer any getattr with a truthy Mock.
    own = getattr(fn, "__dict__", None)
    if isinstance(own, dict) and (own.get("_is_coroutine_marker") is not None or own.get("_is_coroutine")):
        return _CO_COROUTINE  # inspect.markcoroutinefunction / AsyncMock
    code = getattr(fn, "__code__", None)
    if code is None and not isinstance(fn, type):
        call = type(fn).__dict__.get("__call__") or getattr(type(fn), "__call__", None)  # noqa: B004
        code = getattr(call, "__code__", None)
    flags = getattr(code, "co_flags", 0)
    return flags if isinstance(flags, int) else 0


def _wraps(wrapper: Callable[..., Any], fn: object) -> None:
    """``functools.update_wrapper`` without importing functools (import-time budget)."""
    for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            setattr(wrapper, attribute, getattr(fn, attribute))
        except AttributeError:
            pass
    try:
        wrapper.__dict__.update(getattr(fn, "__dict__", {}))
    except (AttributeError, TypeError):
        pass
    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` returns a coroutine (without importing ``inspect``)."""
    return bool(_code_flags(fn) & _CO_COROUTINE)


class CircuitBreaker:
    """One circuit around one downstream: a decorator, and an object with manual control.

    Parameters:
        name: the circuit's name, shared by every environment using the same store.
        persistence_store: where the shared record lives; None for the embedded
            in-memory store (see ``breaker.persistence``).
        on_circuit_open: called instead of raising when a call is rejected, with the
            call's own arguments plus ``circuit=CircuitInfo``; its return value is the
            call's result. May be async (for async functions).
        on_transition: called with a CircuitTransition for each stored state change;
            its errors are logged and swallowed.
        config: a CircuitBreakerConfig (defaults: see its docs).
        clock: the Clock to read (default: ``breaker.clock.SYSTEM_CLOCK``).
        environment: the Environment whose local view this breaker uses (default: this
            process's); the harness passes one per simulated worker.

    Example:
        >>> from breaker import CircuitBreaker, CircuitBreakerConfig
        >>> payments = CircuitBreaker("payments", config=CircuitBreakerConfig(failure_threshold=2))
        >>> @payments
        ... def charge(amount: int) -> str: return f"charged {amount}"
        >>> charge(10)
        'charged 10'
        >>> payments.info().state
        <CircuitState.CLOSED: 'CLOSED'>
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_store",
        "_view",
        "config",
        "environment",
        "name",
        "on_circuit_open",
        "on_transition",
    )

    def __init__(
        self,
        name: str,
        persistence_store: CircuitStore | None = None,
        on_circuit_open: Callable[..., Any] | None = None,
        on_transition: Callable[[CircuitTransition], Any] | None = None,
        config: CircuitBreakerConfig | None = None,
        *,
        clock: Clock | None = None,
        environment: Environment | None = None,
    ) -> None:
        self.name = _check_name(name)
        if persistence_store is not None and not isinstance(persistence_store, CircuitStore):
            hint = ""
            if type(persistence_store).__module__.startswith("aws_lambda_powertools"):
                hint = (
                    " A Powertools persistence layer cannot be used directly; use "
                    "breaker.persistence.DynamoDBPersistence with the same table and parameters."
                )
            raise CircuitBreakerConfigError(
                f"persistence_store must be a breaker.persistence.CircuitStore instance or None, "
                f"got {persistence_store!r}.{hint}"
            )
        for field, value in (("on_circuit_open", on_circuit_open), ("on_transition", on_transition)):
            if value is not None and not callable(value):
                raise CircuitBreakerConfigError(f"{field} must be a callable or None, got {value!r}.")
        if config is None:
            config = CircuitBreakerConfig()
        elif not isinstance(config, CircuitBreakerConfig):
            raise CircuitBreakerConfigError(
                f"config must be a CircuitBreakerConfig instance or None, got {config!r}."
            )
        if clock is None:
            clock = SYSTEM_CLOCK
        elif not isinstance(clock, Clock):
            raise CircuitBreakerConfigError(f"clock must be a breaker.clock.Clock instance, got {clock!r}.")
        if environment is None:
            environment = DEFAULT_ENVIRONMENT
        elif not isinstance(environment, Environment):
            raise CircuitBreakerConfigError(
                f"environment must be a breaker.environment.Environment instance or None, got {environment!r}."
            )
        self.config = config
        self.on_circuit_open = on_circuit_open
        self.on_transition = on_transition
        self.environment = environment
        self._store = persistence_store
        self._clock = clock
        self._view: LocalView = environment.view(name)

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker({self.name!r}, store={self.store.kind!r}, environment={self.environment.id!r})"
        )

    @property
    def store(self) -> CircuitStore:
        """The store this breaker uses now (the current default store if none was given)."""
        store = self._store
        return default_store() if store is None else store

    @property
    def clock(self) -> Clock:
        """The clock this breaker reads."""
        return self._clock

    def with_environment(self, environment: Environment) -> CircuitBreaker:
        """The same circuit (name, store, hooks, config, clock) seen from another environment.

        Example:
            >>> a = CircuitBreaker("db")
            >>> a.with_environment(Environment("other")).environment.id
            'other'
        """
        return CircuitBreaker(
            self.name,
            self._store,
            self.on_circuit_open,
            self.on_transition,
            self.config,
            clock=self._clock,
            environment=environment,
        )

    # ------------------------------------------------------------------ decorating

    def __call__(self, fn: F) -> F:
        """Decorate ``fn`` (sync or ``async def``); the result has ``.circuit_breaker``."""
        if not callable(fn):
            raise CircuitBreakerConfigError(f"the decorated object must be callable, got {fn!r}.")
        flags = _code_flags(fn)
        if flags & (_CO_GENERATOR | _CO_ASYNC_GENERATOR):
            raise CircuitBreakerConfigError(
                f"cannot protect generator function {getattr(fn, '__qualname__', fn)!r}: its body runs "
                "after the call returns, outside the breaker. Protect the function that calls the "
                "downstream, or collect the results in a list inside a protected function."
            )
        if flags & _CO_COROUTINE:
            wrapper = self._wrap_async(fn)
        else:
            for field in ("on_circuit_open", "on_transition"):
                hook = getattr(self, field)
                if hook is not None and is_async_callable(hook):
                    raise CircuitBreakerConfigError(
                        f"{field}={hook!r} is async but the protected function "
                        f"{getattr(fn, '__qualname__', fn)!r} is sync: its coroutine would never be "
                        f"awaited. Make {field} a plain function, or the protected function async."
                    )
            wrapper = self._wrap_sync(fn)
        _wraps(wrapper, fn)
        wrapper.circuit_breaker = self  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    def _wrap_sync(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def protected(*args: Any, **kwargs: Any) -> Any:
            view = self._view
            # Fast path: the view is CLOSED and fresh (closed_until is -inf otherwise).
            if view.closed_until > _monotonic():
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    # Count it; may trip. Never raises: the caller sees its own exception.
                    self._finish(view, _RUN, exc)
                    raise
                view.failures = 0  # a success ends any failure streak
                return result
            return self._call(fn, args, kwargs)

        return protected

    def _wrap_async(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def protected(*args: Any, **kwargs: Any) -> Any:
            view = self._view
            # Fast path, as in _wrap_sync; failures are counted with async store I/O.
            if view.closed_until > _monotonic():
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    await self._afinish(view, _RUN, exc)
                    raise
                view.failures = 0
                return result
            return await self._acall(fn, args, kwargs)

        return protected

    # ------------------------------------------------------------------ calling

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn(*args, **kwargs)`` through the breaker (sync functions).

        Example:
            >>> CircuitBreaker("math").call(pow, 2, 10)
            1024
        """
        # The fast path of ``_wrap_sync``, repeated on purpose: delegating to a shared
        # helper would add a Python call to every healthy call (see benchmarks/).
        view = self._view
        if view.closed_until > _monotonic():
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                self._finish(view, _RUN, exc)
                raise
            view.failures = 0
            return result
        return self._call(fn, args, kwargs)

    async def acall(self, fn: Callable[..., Awaitable[Any]], /, *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` through the breaker (async functions).

        Example:
            >>> import asyncio
            >>> async def ping() -> str: return "pong"
            >>> asyncio.run(CircuitBreaker("ping").acall(ping))
            'pong'
        """
        view = self._view
        if view.closed_until > _monotonic():
            try:
                result = await fn(*args, **kwargs)
            except Exception as exc:
                await self._afinish(view, _RUN, exc)
                raise
            view.failures = 0
            return result
        return await self._acall(fn, args, kwargs)

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        view = self._view
        shut = self._still_open(view)
        if shut is not None:
            return self._reject(shut[0], shut[1], args, kwargs)
        transitions: list[CircuitTransition] = []
        decision, info, retry_after = self._drive(view, self._admit(view, transitions))
        self._notify(transitions)
        if decision is _REJECT:
            return self._reject(info, retry_after, args, kwargs)
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            self._finish(view, decision, exc)
            raise
        self._finish(view, decision, None)
        return result

    async def _acall(
        self, fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        view = self._view
        shut = self._still_open(view)
        if shut is not None:
            result = self._reject(shut[0], shut[1], args, kwargs)
            if hasattr(result, "__await__"):
                result = await result
            return result
        transitions: list[CircuitTransition] = []
        decision, info, retry_after = await self._adrive(view, self._admit(view, transitions))
        await self._anotify(transitions)
        if decision is _REJECT:
            result = self._reject(info, retry_after, args, kwargs)
            if hasattr(result, "__await__"):
                result = await result
            return result
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            await self._afinish(view, decision, exc)
            raise
        await self._afinish(view, decision, None)
        return result

    def _still_open(self, view: LocalView) -> tuple[CircuitInfo, float | None] | None:
        """The rejection ``_admit`` would decide, without its lock or generator; else None.

        Only for a view that is OPEN, needs no store read (fresh, or the store is backed
        off) and is inside its window: a rejection then changes nothing, so it needs no
        lock, and a rejected call costs about what a healthy one does.
        """
        record = view.record
        if record.state is not _OPEN:
            return None
        config = self.config
        clock = self._clock
        now = clock.monotonic()
        fresh = now < view.fresh_until <= now + config.local_cache_max_age
        if not fresh and not now < view.store_down_until <= now + config.store_backoff:
            return None
        cached = view.info  # (record, its CircuitInfo): one attribute, so threads agree
        if cached is not None and cached[0] is record:
            info = cached[1]
        else:
            info = record.to_circuit_info()
            view.info = (record, info)
        if record.pinned:
            return info, None
        due = (record.opened_at or 0.0) + config.recovery_timeout
        wall = clock.time()
        if wall >= due:
            return None
        return info, due - wall

    def _reject(
        self, info: CircuitInfo, retry_after: float | None, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        callback = self.on_circuit_open
        if events.has_listeners():
            kind = events.REJECTED if callback is None else events.FALLBACK
            self._publish(kind, info)
        if callback is not None:
            return callback(*args, **kwargs, circuit=info)
        raise CircuitBreakerOpenError(
            f"Circuit {self.name!r} is open.", circuit=info, retry_after=retry_after
        )

    def _finish(self, view: LocalView, decision: str, exc: BaseException | None) -> None:
        """Settle a call's outcome; never raises (the caller must see its own result)."""
        if decision is _RUN:
            if exc is None:
                view.failures = 0  # a success ends any failure streak
                return
            if not self.config.counts_as_failure(exc):
                return  # does not count, changes nothing
            with view.lock:
                if view.failures + 1 < self.config.failure_threshold:
                    view.failures += 1  # below the threshold: nothing to decide or store
                    return
        transitions: list[CircuitTransition] = []
        try:
            self._drive(view, self._settle(view, decision, exc, transitions))
        except Exception:
            events.log_exception(
                "circuit %r: settling a call failed; the call's own outcome stands.", self.name
            )
            return
        self._notify(transitions)

    async def _afinish(self, view: LocalView, decision: str, exc: BaseException | None) -> None:
        if decision is _RUN:
            if exc is None:
                view.failures = 0
                return
            if not self.config.counts_as_failure(exc):
                return
            with view.lock:
                if view.failures + 1 < self.config.failure_threshold:
                    view.failures += 1
                    return
        transitions: list[CircuitTransition] = []
        try:
            await self._adrive(view, self._settle(view, decision, exc, transitions))
        except Exception:
            events.log_exception(
                "circuit %r: settling a call failed; the call's own outcome stands.", self.name
            )
            return
        await self._anotify(transitions)

    # ------------------------------------------------------------------ drivers

    def _drive(self, view: LocalView, machine: Machine) -> Any:
        """Run a decision generator, doing its store operations with blocking calls."""
        reply: Any = None
        lock = view.lock
        while True:
            with lock:
                try:
                    op = machine.send(reply)
                except StopIteration as stop:
                    return stop.value
            store = self.store
            try:
                if op[0] is _READ:
                    reply = store.read(op[1])
                elif op[0] is _WRITE:
                    reply = store.write(op[1], op[2])
                else:
                    store.delete(op[1])
                    reply = None
                _check_reply(op, reply)
            except Exception as exc:
                reply = self._store_fault(view, exc)
            else:
                self._observe_store(op, reply)

    async def _adrive(self, view: LocalView, machine: Machine) -> Any:
        """Run a decision generator, awaiting its store operations (the loop never blocks)."""
        reply: Any = None
        lock = view.lock
        while True:
            with lock:
                try:
                    op = machine.send(reply)
                except StopIteration as stop:
                    return stop.value
            store = self.store
            try:
                if op[0] is _READ:
                    reply = await store.aread(op[1])
                elif op[0] is _WRITE:
                    reply = await store.awrite(op[1], op[2])
                else:
                    await store.adelete(op[1])
                    reply = None
                _check_reply(op, reply)
            except Exception as exc:
                reply = self._store_fault(view, exc)
            else:
                self._observe_store(op, reply)

    def _store_fault(self, view: LocalView, exc: Exception) -> _Fault:
        # Back off: until then this environment acts as a local breaker and pays no
        # store timeouts (DESIGN §4 invariant 8).
        now = self._clock.monotonic()
        if view.store_down_until <= now:
            events.log_warning(
                "circuit %r: store %s failed (%s: %s); acting as a local breaker for %ss.",
                self.name,
                self.store.kind,
                type(exc).__name__,
                exc,
                self.config.store_backoff,
            )
        view.store_down_until = now + self.config.store_backoff
        view.closed_until = _NEVER
        if events.has_listeners():
            self._publish(events.STORE_FAULT, exc)
        return _Fault(exc)

    def _observe_store(self, op: Op, reply: Any) -> None:
        if events.has_listeners():
            if op[0] is _READ:
                self._publish(events.STORE_READ, reply)
            elif op[0] is _WRITE:
                self._publish(events.STORE_WRITE, (op[1], reply))

    # ------------------------------------------------------------------ decisions

    def _ttl(self, now: float) -> float:
        config = self.config
        return now + config.recovery_timeout + config.probe_lease + _TTL_SLACK

    def _adopt(
        self, view: LocalView, stored: CircuitRecord | None, transitions: list[CircuitTransition]
    ) -> Machine:
        """Take a successful store read as this environment's view (replaying a pending trip)."""
        now = self._clock.monotonic()
        view.fresh_until = now + self.config.local_cache_max_age
        view.store_down_until = _NEVER
        pending, view.pending = view.pending, None
        was_local, view.local = view.local, False
        unconfirmed, view.unconfirmed = view.unconfirmed, None
        if (
            unconfirmed is not None
            and stored is not None
            and (view.base is None or view.base.version != stored.version)  # not seen yet
            and _same_write(stored, unconfirmed[1])
            # Ours for sure: it names us as probe owner, or carries timestamps of a running
            # clock (under a fake or frozen clock another environment may write the same).
            and (stored.half_open_owner == self.environment.id or self._clock.realtime)
        ):
            # A transition whose write failed (a timeout: the reply was lost) was stored after
            # all: report it now, once. (Had another thread of this environment stored the
            # same record, the view would already hold that version.)
            transitions.append(self._transition(unconfirmed[0], stored.state, stored.opened_at))
        if was_local and pending is not None:
            based_on, opened_at, failures = pending
            # Only over a CLOSED record: a local trip based on an OPEN record (this environment
            # probed and closed locally, then tripped again) is no transition of the shared
            # record, which is still OPEN; adopting it below is enough.
            if (stored is None or stored.state is _CLOSED) and (
                stored.version if stored is not None else 0
            ) == based_on:
                # The store did not change while it was down: store our local trip now,
                # and report it only once stored.
                new = (stored or CircuitRecord.closed(self.name)).evolve(
                    state=_OPEN,
                    opened_at=opened_at,
                    failure_count=failures,
                    half_open_owner=None,
                    probe_lease_expiry=None,
                    pinned=False,
                    expires_at=self._ttl(opened_at),
                )
                reply = yield (_WRITE, new, stored)
                if reply is True:
                    stored = new
                    transitions.append(self._transition(_CLOSED, _OPEN, opened_at))
                elif isinstance(reply, _Fault):
                    view.local, view.pending = was_local, pending
                    view.unconfirmed = (_CLOSED, new)
                    return
                else:
                    view.fresh_until = _NEVER  # someone else wrote: read again next call
        record = stored if stored is not None else CircuitRecord.closed(self.name)
        if record.state is _CLOSED and view.record.state is not _CLOSED:
            view.failures = 0  # recovered (by whoever): an old streak must not re-trip it
        view.base = stored
        view.record = record
        if record.state is _CLOSED and self._clock.realtime:
            view.closed_until = view.fresh_until
        else:
            view.closed_until = _NEVER

    def _admit(self, view: LocalView, transitions: list[CircuitTransition]) -> Machine:
        """Decide whether a call runs, runs as a probe, or is rejected."""
        clock = self._clock
        now = clock.monotonic()
        # A deadline further away than it can be was set on another monotonic clock (a
        # freezegun freeze that ended, a fake clock moved back): it must not keep the view
        # fresh, or the store backed off, indefinitely.
        if view.fresh_until > now + self.config.local_cache_max_age:
            view.fresh_until = _NEVER
        if view.store_down_until > now + self.config.store_backoff:
            view.store_down_until = _NEVER
        if view.fresh_until <= now and view.store_down_until <= now:
            base = view.base
            reply = yield (_READ, self.name)
            # Another thread of this environment may have moved the view on (a write, a newer
            # read) while this read was in flight: then this read is no newer; keep the view.
            if not isinstance(reply, _Fault) and view.base is base:
                yield from self._adopt(view, reply, transitions)
        record = view.record
        state = record.state
        if state is _CLOSED:
            return _RUN, None, None
        wall = clock.time()
        if state is _OPEN:
            if record.pinned:
                return _REJECT, record.to_circuit_info(), None
            assert record.opened_at is not None
            due = record.opened_at + self.config.recovery_timeout
            if wall < due:
                return _REJECT, record.to_circuit_info(), due - wall
            return (yield from self._elect(view, record, wall, transitions))
        # HALF_OPEN
        lease = record.probe_lease_expiry
        expired = lease is not None and wall >= lease
        if record.half_open_owner == self.environment.id:
            if view.probing:  # one probe at a time, also among this environment's threads
                return _REJECT, record.to_circuit_info(), None
            if expired:
                # Our lease ran out between our probes: renew it (compare-and-set) before
                # probing again, or another environment could take over while ours runs.
                successes = view.successes
                decision = yield from self._elect(view, record, wall, transitions)
                if decision[0] is _PROBE:
                    view.successes = successes  # a renewal keeps the probe streak
                return decision
            view.probing = True
            self._publish_if(events.PROBE_STARTED, None)
            return _PROBE, None, None
        if expired:
            return (yield from self._elect(view, record, wall, transitions))
        return _REJECT, record.to_circuit_info(), None

    def _elect(
        self, view: LocalView, record: CircuitRecord, wall: float, transitions: list[CircuitTransition]
    ) -> Machine:
        """Try to become the probe owner with a compare-and-set; the winner's call is the probe."""
        if view.probing:
            return _REJECT, record.to_circuit_info(), None
        new = record.evolve(
            state=_HALF_OPEN,
            half_open_owner=self.environment.id,
            probe_lease_expiry=wall + self.config.probe_lease,
            failure_count=0,
            expires_at=self._ttl(wall),
        )
        if view.local or view.store_down_until > self._clock.monotonic():
            # Store unreachable: probe as a local breaker would; nothing is stored or reported.
            self._set_local(view, new, record.state, _HALF_OPEN)
        else:
            reply = yield (_WRITE, new, view.base)
            if reply is True:
                view.base = view.record = new
                view.fresh_until = self._clock.monotonic() + self.config.local_cache_max_age
                if record.state is _OPEN:
                    transitions.append(self._transition(_OPEN, _HALF_OPEN, new.opened_at))
                elif record.half_open_owner != self.environment.id:
                    self._publish_if(events.TAKEOVER, record.half_open_owner)
            elif isinstance(reply, _Fault):
                if record.state is _OPEN:
                    view.unconfirmed = (_OPEN, new)
                self._set_local(view, new, record.state, _HALF_OPEN)
            else:
                view.fresh_until = _NEVER  # lost the election: read the winner next call
                return _REJECT, record.to_circuit_info(), None
        view.probing = True
        view.successes = 0
        self._publish_if(events.PROBE_STARTED, None)
        return _PROBE, None, None

    def _settle(
        self,
        view: LocalView,
        decision: str,
        exc: BaseException | None,
        transitions: list[CircuitTransition],
    ) -> Machine:
        """Record a call's outcome: count, trip, close or reopen (compare-and-set)."""
        counted = exc is not None and self.config.counts_as_failure(exc)
        if decision is _PROBE:
            view.probing = False
            self._publish_if(
                events.PROBE_FINISHED, "ok" if exc is None else ("failed" if counted else "ignored")
            )
            record = view.record
            ours = record.state is _HALF_OPEN and (
                view.local or record.half_open_owner == self.environment.id
            )
            if not ours or (exc is not None and not counted):
                return  # the probe was taken over or forced meanwhile, or did not count
            wall = self._clock.time()
            if exc is None:
                view.successes += 1
                if view.successes < self.config.success_threshold:
                    return
                new = record.evolve(
                    state=_CLOSED,
                    opened_at=None,
                    failure_count=0,
                    half_open_owner=None,
                    probe_lease_expiry=None,
                    expires_at=self._ttl(wall),
                )
            else:
                new = record.evolve(
                    state=_OPEN,
                    opened_at=wall,
                    failure_count=0,
                    half_open_owner=None,
                    probe_lease_expiry=None,
                    expires_at=self._ttl(wall),
                )
            view.successes = 0
            yield from self._transit(view, new, transitions)
            return
        # A call made while CLOSED.
        if not counted:
            return
        view.failures += 1
        record = view.record
        if record.state is not _CLOSED or record.pinned or view.failures < self.config.failure_threshold:
            return
        failures, view.failures = view.failures, 0
        wall = self._clock.time()
        for _attempt in range(3):
            new = record.evolve(
                state=_OPEN,
                opened_at=wall,
                failure_count=failures,
                half_open_owner=None,
                probe_lease_expiry=None,
                pinned=False,
                expires_at=self._ttl(wall),
            )
            if not (yield from self._transit(view, new, transitions)):
                return
            # Conflict: someone wrote first. Trip over their record if it is still CLOSED.
            base = view.base
            reply = yield (_READ, self.name)
            if isinstance(reply, _Fault):
                based_on = view.base.version if view.base is not None else 0
                self._set_local(view, new, _CLOSED, _OPEN, pending=(based_on, wall, failures))
                return
            if view.base is base:  # else another thread moved the view on meanwhile (see _admit)
                yield from self._adopt(view, reply, transitions)
            record = view.record
            if record.state is not _CLOSED or record.pinned:
                return  # already open (or forced): protected without our write

    def _transit(self, view: LocalView, new: CircuitRecord, transitions: list[CircuitTransition]) -> Machine:
        """Store ``new`` over the view's base record; returns True only on a conflict."""
        old_state = view.record.state
        trip = old_state is _CLOSED and new.state is _OPEN
        if view.local or view.store_down_until > self._clock.monotonic():
            pending = (view.base.version if view.base else 0, new.opened_at or 0.0, new.failure_count)
            self._set_local(view, new, old_state, new.state, pending=pending if trip else None)
            return False
        reply = yield (_WRITE, new, view.base)
        if reply is True:
            view.base = view.record = new
            view.fresh_until = self._clock.monotonic() + self.config.local_cache_max_age
            if new.state is _CLOSED:
                view.failures = 0
                if self._clock.realtime:
                    view.closed_until = view.fresh_until
            else:
                view.closed_until = _NEVER
            transitions.append(self._transition(old_state, new.state, new.opened_at))
            return False
        if isinstance(reply, _Fault):
            view.unconfirmed = (old_state, new)  # the store may have applied it anyway
            pending = (view.base.version if view.base else 0, new.opened_at or 0.0, new.failure_count)
            self._set_local(view, new, old_state, new.state, pending=pending if trip else None)
            return False
        view.fresh_until = _NEVER  # lost the compare-and-set: re-read before acting again
        view.closed_until = _NEVER
        return True

    def _set_local(
        self,
        view: LocalView,
        record: CircuitRecord,
        from_state: CircuitState,
        to_state: CircuitState,
        pending: tuple[int, float, int] | None = None,
    ) -> None:
        """Act on ``record`` without having stored it (the store is unreachable)."""
        view.record = record
        view.local = True
        view.closed_until = _NEVER
        if to_state is _CLOSED:
            view.pending = None
            view.failures = 0
        elif pending is not None:
            view.pending = pending
        if from_state is not to_state:
            self._publish_if(
                events.LOCAL_TRANSITION, self._transition(from_state, to_state, record.opened_at)
            )

    # ------------------------------------------------------------------ hooks

    def _transition(self, from_state: CircuitState, to_state: CircuitState, opened_at: float | None) -> Any:
        from breaker.states import CircuitTransition

        return CircuitTransition(self.name, from_state, to_state, opened_at)

    def _publish(self, kind: str, value: object) -> None:
        events.publish(events.Event(kind, self.name, self.environment.id, self._clock.time(), value))

    def _publish_if(self, kind: str, value: object) -> None:
        if events.has_listeners():
            self._publish(kind, value)

    def _notify(self, transitions: list[CircuitTransition]) -> None:
        for transition in transitions:
            self._publish_if(events.TRANSITION, transition)
            hook = self.on_transition
            if hook is not None:
                try:
                    result = hook(transition)
                    if hasattr(result, "__await__"):
                        # An async hook reached through the sync API (info, force_open, ...).
                        self._run_awaitable(result)
                except Exception:
                    events.log_exception("on_transition hook of circuit %r raised; ignoring.", self.name)

    def _run_awaitable(self, awaitable: Awaitable[Any]) -> None:
        """Run an async hook's awaitable from sync code instead of dropping it unawaited."""
        import asyncio

        async def run() -> None:
            try:
                await awaitable
            except Exception:
                events.log_exception("on_transition hook of circuit %r raised; ignoring.", self.name)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(run())  # no event loop in this thread: run the hook to completion now
            return
        task = loop.create_task(run())  # called from inside a running loop: the hook runs next
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)

    async def _anotify(self, transitions: list[CircuitTransition]) -> None:
        for transition in transitions:
            self._publish_if(events.TRANSITION, transition)
            hook = self.on_transition
            if hook is not None:
                try:
                    result = hook(transition)
                    if hasattr(result, "__await__"):
                        await result
                except Exception:
                    events.log_exception("on_transition hook of circuit %r raised; ignoring.", self.name)

    # ------------------------------------------------------------------ reading and manual control

    def info(self) -> CircuitInfo:
        """The circuit as the store holds it now (this environment's view if unreachable).

        Example:
            >>> CircuitBreaker("inventory").info().state
            <CircuitState.CLOSED: 'CLOSED'>
        """
        view = self._view
        transitions: list[CircuitTransition] = []
        self._drive(view, self._refresh(view, transitions))
        self._notify(transitions)
        return view.record.to_circuit_info()

    async def ainfo(self) -> CircuitInfo:
        """``info()`` for async code: the store read does not block the event loop."""
        view = self._view
        transitions: list[CircuitTransition] = []
        await self._adrive(view, self._refresh(view, transitions))
        await self._anotify(transitions)
        return view.record.to_circuit_info()

    @property
    def state(self) -> CircuitState:
        """Shorthand for ``info().state``."""
        return self.info().state

    def _refresh(self, view: LocalView, transitions: list[CircuitTransition]) -> Machine:
        base = view.base
        reply = yield (_READ, self.name)
        if not isinstance(reply, _Fault) and view.base is base:
            yield from self._adopt(view, reply, transitions)

    def force_open(self, *, ttl: float | None = None) -> CircuitInfo:
        """Open the circuit fleet-wide and keep it open (no probe) until ``reset()``.

        ``ttl``: seconds after which the store may drop the command (None: keep it).
        Raises CircuitBreakerPersistenceError if the store cannot be written.

        Example:
            >>> CircuitBreaker("legacy-api").force_open().state
            <CircuitState.OPEN: 'OPEN'>
        """
        return self._run_command(_OPEN, True, ttl)

    def force_closed(self, *, ttl: float | None = None) -> CircuitInfo:
        """Close the circuit fleet-wide and keep it closed (failures never trip) until ``reset()``.

        Example:
            >>> CircuitBreaker("critical-api").force_closed().state
            <CircuitState.CLOSED: 'CLOSED'>
        """
        return self._run_command(_CLOSED, True, ttl)

    def reset(self) -> CircuitInfo:
        """Close the circuit fleet-wide and clear any manual command; normal operation resumes.

        It also repairs a corrupt shared record (one the store cannot decode): the record
        is deleted and a fresh CLOSED one written.

        Example:
            >>> CircuitBreaker("search").reset().state
            <CircuitState.CLOSED: 'CLOSED'>
        """
        return self._run_command(_CLOSED, False, None)

    async def aforce_open(self, *, ttl: float | None = None) -> CircuitInfo:
        """``force_open()`` with async store I/O."""
        return await self._arun_command(_OPEN, True, ttl)

    async def aforce_closed(self, *, ttl: float | None = None) -> CircuitInfo:
        """``force_closed()`` with async store I/O."""
        return await self._arun_command(_CLOSED, True, ttl)

    async def areset(self) -> CircuitInfo:
        """``reset()`` with async store I/O."""
        return await self._arun_command(_CLOSED, False, None)

    def _run_command(self, target: CircuitState, pinned: bool, ttl: float | None) -> CircuitInfo:
        _check_ttl(ttl)
        view = self._view
        transitions: list[CircuitTransition] = []
        info = self._drive(view, self._command(view, target, pinned, ttl, transitions))
        self._notify(transitions)
        return info  # type: ignore[no-any-return]

    async def _arun_command(self, target: CircuitState, pinned: bool, ttl: float | None) -> CircuitInfo:
        _check_ttl(ttl)
        view = self._view
        transitions: list[CircuitTransition] = []
        info = await self._adrive(view, self._command(view, target, pinned, ttl, transitions))
        await self._anotify(transitions)
        return info  # type: ignore[no-any-return]

    def _command(
        self,
        view: LocalView,
        target: CircuitState,
        pinned: bool,
        ttl: float | None,
        transitions: list[CircuitTransition],
    ) -> Machine:
        for _attempt in range(8):
            reply = yield (_READ, self.name)
            if isinstance(reply, _Fault):
                if (
                    not pinned
                    and target is _CLOSED
                    and isinstance(reply.error, CircuitBreakerPersistenceError)
                ):
                    # reset() repairs a corrupt record: drop it, then write a fresh one.
                    dropped = yield (_DELETE, self.name)
                    if not isinstance(dropped, _Fault):
                        continue
                raise CircuitBreakerPersistenceError(
                    f"cannot change circuit {self.name!r}: the store could not be read", reply.error
                )
            yield from self._adopt(view, reply, transitions)
            wall = self._clock.time()
            if ttl is not None:
                expires_at: float | None = wall + ttl
            elif pinned:
                expires_at = None
            else:
                expires_at = self._ttl(wall)
            new = (view.base or CircuitRecord.closed(self.name)).evolve(
                state=target,
                opened_at=wall if target is _OPEN else None,
                failure_count=0,
                half_open_owner=None,
                probe_lease_expiry=None,
                pinned=pinned,
                expires_at=expires_at,
            )
            old_state = view.record.state
            reply = yield (_WRITE, new, view.base)
            if isinstance(reply, _Fault):
                raise CircuitBreakerPersistenceError(
                    f"cannot change circuit {self.name!r}: the store could not be written", reply.error
                )
            if reply is True:
                view.base = view.record = new
                view.failures = view.successes = 0
                view.fresh_until = self._clock.monotonic() + self.config.local_cache_max_age
                realtime_closed = target is _CLOSED and self._clock.realtime
                view.closed_until = view.fresh_until if realtime_closed else _NEVER
                if old_state is not target:
                    transitions.append(self._transition(old_state, target, new.opened_at))
                return new.to_circuit_info()
        raise CircuitBreakerPersistenceError(
            f"cannot change circuit {self.name!r}: 8 compare-and-set attempts lost to concurrent writers"
        )


def _check_reply(op: Op, reply: Any) -> None:
    """Raise unless a store's reply keeps the contract: a corrupt reply is a store fault too.

    ``read`` must return None or a valid CircuitRecord of the circuit asked for, and
    ``write`` a bool; anything else would otherwise break the decisions (and reach the
    caller) instead of making this environment act as a local breaker.
    """
    if op[0] is _READ:
        if reply is None:
            return
        if not isinstance(reply, CircuitRecord) or reply.name != op[1]:
            raise CircuitBreakerPersistenceError("corrupt store reply", f"read({op[1]!r}) returned {reply!r}")
        reply.validate()  # types and ranges of every field, version included
    elif op[0] is _WRITE and not isinstance(reply, bool):
        raise CircuitBreakerPersistenceError("corrupt store reply", f"write() returned {reply!r}, not a bool")


def _same_write(stored: CircuitRecord, written: CircuitRecord) -> bool:
    """Whether ``stored`` is the record ``written`` (a store may round ``expires_at`` up)."""
    expires_at = written.expires_at
    return (
        stored.version == written.version
        and stored.state is written.state
        and stored.opened_at == written.opened_at
        and stored.failure_count == written.failure_count
        and stored.half_open_owner == written.half_open_owner
        and stored.probe_lease_expiry == written.probe_lease_expiry
        and stored.pinned == written.pinned
        and (
            stored.expires_at == expires_at
            or (expires_at is not None and stored.expires_at == -(-expires_at // 1))  # whole seconds
        )
    )


def _check_ttl(ttl: object) -> None:
    if ttl is None:
        return
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
        raise CircuitBreakerConfigError(f"ttl must be a number of seconds > 0 or None, got {ttl!r}.")


def circuit_breaker(
    name: str,
    persistence_store: CircuitStore | None = None,
    on_circuit_open: Callable[..., Any] | None = None,
    on_transition: Callable[[CircuitTransition], Any] | None = None,
    config: CircuitBreakerConfig | None = None,
    *,
    clock: Clock | None = None,
    environment: Environment | None = None,
) -> Callable[[F], F]:
    """Protect the function that calls a downstream; the Powertools 3.37 decorator signature.

    Every argument is checked here, at decoration time. The decorated function keeps
    its name and signature and gains a ``circuit_breaker`` attribute (the CircuitBreaker),
    for ``info()``, ``force_open()``, ``reset()`` and friends.

    Example:
        >>> from breaker import circuit_breaker, CircuitInfo
        >>> def queue_it(order: dict, circuit: CircuitInfo) -> str: return "queued"
        >>> @circuit_breaker(name="orders", on_circuit_open=queue_it)
        ... def submit(order: dict) -> str: return "sent"
        >>> submit({"id": 1})
        'sent'
    """
    return CircuitBreaker(
        name,
        persistence_store,
        on_circuit_open,
        on_transition,
        config,
        clock=clock,
        environment=environment,
    )
