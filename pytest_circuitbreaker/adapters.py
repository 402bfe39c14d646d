"""Adapters: how the chaos harness drives a breaker, so it tests any breaker, not only ours.

The harness simulates a fleet of environments calling one downstream on a fake clock.
It needs a few things from a breaker, which an adapter supplies:

* ``start(run)`` / ``stop()``: begin and end one run. ``run`` (a :class:`Run`) holds the
  fake clock, the circuit name, the config, the :class:`~pytest_circuitbreaker.history.Recorder`
  and the fallback to install (or None).
* ``environment(env_id)``: a new environment (a cold worker process) with that id; the
  id is the probe owner name the breaker should store, if it stores one.
* ``call(env, fn)``: call ``fn()`` through ``env``'s breaker; return or raise what the
  caller would see. ``is_rejection(exc)``: whether ``exc`` is the breaker's "open" error.
* ``cold_start(env)``: the same environment having forgotten its local state.
* ``activate(env)``: called before any code of ``env`` runs or resumes (for breakers
  that keep per-process state in globals).
* ``store_fault(kind)`` / ``store_recover()``: make the shared store fail (``kind`` in
  :data:`STORE_FAULT_KINDS`); return False when the breaker has no store to fail.
* ``bounds(config)``: the numbers the checkers judge by, in this breaker's terms.

What the breaker reports (transitions) reaches the history through the recorder
(``run.recorder.transition(t, env_id)`` as an ``on_transition`` hook, or
``breaker.events`` for ours); what the store really holds is recorded by the adapter's
store wrapper (:class:`RecordingStore` for a :class:`~breaker.persistence.CircuitStore`).

Shipped: :class:`BreakerLibraryAdapter` (this library, any store, any subclass of
``CircuitBreaker``), :class:`PowertoolsAdapter` (Powertools 3.37, one simulated process
per environment on a shared in-memory table with DynamoDB's conditions) and
:class:`PybreakerAdapter` (pybreaker: one in-process breaker per environment, no store).

Example:
    >>> adapter = BreakerLibraryAdapter()
    >>> adapter.name
    'breaker'
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from breaker.circuit import CircuitBreaker
from breaker.errors import CircuitBreakerOpenError
from breaker.persistence.base import CircuitStore
from pytest_circuitbreaker.history import STORE_FAULT, STORE_READ, STORE_WRITE, jsonable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from breaker.clock import FakeClock
    from breaker.config import CircuitBreakerConfig
    from breaker.environment import Environment
    from breaker.persistence.record import CircuitRecord
    from pytest_circuitbreaker.faults import StoreFaults
    from pytest_circuitbreaker.history import Recorder

__all__ = [
    "STORE_FAULT_KINDS",
    "BreakerAdapter",
    "BreakerLibraryAdapter",
    "PowertoolsAdapter",
    "PybreakerAdapter",
    "RecordingStore",
    "Run",
]

#: The store faults the harness injects: failing reads, failing writes, both, a 1 s
#: timeout on every operation (the fake clock advances), a corrupt record on reads.
STORE_FAULT_KINDS = ("fail_reads", "fail_writes", "fail_all", "timeout", "corrupt")

#: Seconds a store ``timeout`` fault takes on the fake clock before it raises.
STORE_TIMEOUT = 1.0


@dataclass
class Run:
    """What the harness hands an adapter for one run.

    Example:
        >>> from breaker import CircuitBreakerConfig, FakeClock
        >>> from pytest_circuitbreaker.history import History, Recorder
        >>> clock = FakeClock(start=0)
        >>> run = Run(clock, "db", CircuitBreakerConfig(), Recorder(History(), clock, circuit="db"))
        >>> run.fallback is None
        True
    """

    clock: FakeClock
    circuit: str
    config: CircuitBreakerConfig
    recorder: Recorder
    fallback: Callable[..., Any] | None = None


def _check_fault_kind(kind: str) -> None:
    if kind not in STORE_FAULT_KINDS:
        raise ValueError(f"store fault kind must be one of {STORE_FAULT_KINDS!r}, got {kind!r}.")


class BreakerAdapter:
    """The interface the harness drives; subclass it to test another breaker.

    Subclasses implement ``environment``, ``call`` and ``is_rejection`` at least (see
    the module docstring for every method). ``shares_store`` says whether the breaker
    keeps a shared record the harness records (True: store checkers apply; False:
    they answer unknown). ``supports_fallback``: whether it can return a fallback's
    value instead of raising when open.

    Example:
        >>> class Naked(BreakerAdapter):  # no breaker at all: every call runs
        ...     name = "naked"
        ...     shares_store = False
        ...     def environment(self, env_id): return env_id
        ...     def call(self, env, fn): return fn()
        ...     def is_rejection(self, exc): return False
        >>> Naked().call("env-0", lambda: "ok")
        'ok'
    """

    name: str = "custom"
    shares_store: bool = True
    supports_fallback: bool = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def start(self, run: Run) -> None:
        """Begin a run; keep ``run`` for later calls."""
        self.run = run

    def stop(self) -> None:
        """End the run: undo any patching, release resources."""

    def environment(self, env_id: str) -> Any:
        """A new environment with id ``env_id`` (any object the adapter understands)."""
        raise NotImplementedError(f"{type(self).__name__} must implement environment(env_id)")

    def call(self, env: Any, fn: Callable[[], Any]) -> Any:
        """Call ``fn()`` through ``env``'s breaker; return or raise what the caller sees."""
        raise NotImplementedError(f"{type(self).__name__} must implement call(env, fn)")

    def is_rejection(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the breaker's error for a call rejected while open."""
        raise NotImplementedError(f"{type(self).__name__} must implement is_rejection(exc)")

    def cold_start(self, env: Any) -> Any:
        """``env`` after forgetting its local state (default: a new environment with its id)."""
        return self.environment(getattr(env, "id", env))

    def activate(self, env: Any) -> None:
        """Called before code of ``env`` runs or resumes (default: nothing to do)."""

    def store_fault(self, kind: str) -> bool:
        """Start a store fault of ``kind``; False when this breaker has no store to fail."""
        _check_fault_kind(kind)
        return False

    def store_recover(self) -> None:
        """End every store fault."""

    def bounds(self, config: CircuitBreakerConfig) -> dict[str, Any]:
        """The numbers checkers judge this breaker by (``history.meta["config"]``).

        Example:
            >>> from breaker import CircuitBreakerConfig
            >>> BreakerAdapter().bounds(CircuitBreakerConfig())["recovery_timeout"]
            30
        """
        return {
            "failure_threshold": config.failure_threshold,
            "recovery_timeout": config.recovery_timeout,
            "success_threshold": config.success_threshold,
            "local_cache_max_age": config.local_cache_max_age,
            "probe_lease": config.probe_lease,
            "store_backoff": config.store_backoff,
        }


# ---------------------------------------------------------------------- our library


class RecordingStore(CircuitStore):
    """A store that records every operation with what the store really holds afterwards.

    ``inner`` is what the breaker's operations go to (a ``FaultyStore`` in the
    harness); ``truth`` is the real store behind it, read after each operation (and
    before each write) to record the *store truth*. A read that returns something other
    than the truth (a corrupt record) is recorded as a ``store_fault``.

    Example:
        >>> from breaker import FakeClock
        >>> from breaker.persistence import InMemoryPersistence, CircuitRecord
        >>> from pytest_circuitbreaker.history import History, Recorder
        >>> clock, real = FakeClock(start=0), InMemoryPersistence()
        >>> store = RecordingStore(real, truth=real, recorder=Recorder(History(), clock, circuit="db"))
        >>> store.write(CircuitRecord.closed("db").evolve(), None)
        True
        >>> store.recorder.history[0].value["truth"]["version"]
        1
    """

    def __init__(self, inner: CircuitStore, *, truth: CircuitStore, recorder: Recorder) -> None:
        self.inner = inner
        self.truth = truth
        self.recorder = recorder
        self.kind = inner.kind

    def __repr__(self) -> str:
        return f"RecordingStore({self.inner!r})"

    def _truth(self, name: str) -> CircuitRecord | None:
        try:
            return self.truth.read(name)
        except Exception:  # a corrupt stored item: no truth to show
            return None

    def read(self, name: str) -> CircuitRecord | None:
        try:
            record = self.inner.read(name)
        except Exception as exc:
            self.recorder.record(
                STORE_FAULT,
                {
                    "op": "read",
                    "error": exc,
                    "timeout": isinstance(exc, TimeoutError),
                    "truth": self._truth(name),
                },
            )
            raise
        truth = self._truth(name)
        if jsonable(record) != jsonable(truth):
            self.recorder.record(
                STORE_FAULT,
                {
                    "op": "read",
                    "error": f"corrupt record {record!r}",
                    "corrupt": True,
                    "timeout": False,
                    "truth": truth,
                },
            )
        else:
            self.recorder.record(STORE_READ, {"record": record, "truth": truth})
        return record

    def write(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        before = self._truth(record.name)
        try:
            stored = self.inner.write(record, expected)
        except Exception as exc:
            self.recorder.record(
                STORE_FAULT,
                {
                    "op": "write",
                    "record": record,
                    "error": exc,
                    "timeout": isinstance(exc, TimeoutError),
                    "truth": self._truth(record.name),
                },
            )
            raise
        self.recorder.record(
            STORE_WRITE,
            {
                "record": record,
                "expected_version": expected.version if expected is not None else 0,
                "stored": stored,
                "before": before,
                "truth": self._truth(record.name),
                "conditional": "version",
            },
        )
        return stored

    def delete(self, name: str) -> None:
        self.inner.delete(name)


class LibraryEnvironment:
    """One simulated environment for :class:`BreakerLibraryAdapter`: its ``Environment`` and breaker."""

    def __init__(self, env_id: str, environment: Environment, breaker: CircuitBreaker) -> None:
        self.id = env_id
        self.environment = environment
        self.breaker = breaker

    def __repr__(self) -> str:
        return f"LibraryEnvironment({self.id!r})"


class BreakerLibraryAdapter(BreakerAdapter):
    """This library's breaker, one ``Environment`` per simulated environment, on any store.

    Parameters:
        store: the shared store: None (a new ``InMemoryPersistence`` per run), a
            ``CircuitStore`` (shared by every run: each run uses a new circuit name and
            deletes its record at the end), or a zero-argument factory of one.
        breaker_class: ``CircuitBreaker`` or a subclass of it (your own, or a mutant).
        name: shown in histories and reports.

    Example:
        >>> from breaker.persistence import InMemoryPersistence
        >>> BreakerLibraryAdapter(InMemoryPersistence()).shares_store
        True
    """

    name = "breaker"

    def __init__(
        self,
        store: CircuitStore | Callable[[], CircuitStore] | None = None,
        *,
        breaker_class: type[CircuitBreaker] = CircuitBreaker,
        name: str | None = None,
    ) -> None:
        if store is not None and not isinstance(store, CircuitStore) and not callable(store):
            raise TypeError(
                f"store must be a breaker.persistence.CircuitStore, a factory returning one, or None; got {store!r}."
            )
        if not (isinstance(breaker_class, type) and issubclass(breaker_class, CircuitBreaker)):
            raise TypeError(
                f"breaker_class must be breaker.CircuitBreaker or a subclass, got {breaker_class!r}."
            )
        self.store = store
        self.breaker_class = breaker_class
        if name is not None:
            self.name = name
        elif breaker_class is not CircuitBreaker:
            self.name = breaker_class.__name__

    def __repr__(self) -> str:
        store = "" if self.store is None else f"{self.store!r}, "
        cls = "" if self.breaker_class is CircuitBreaker else f"breaker_class={self.breaker_class.__name__}"
        return f"BreakerLibraryAdapter({store}{cls})".replace(", )", ")")

    def start(self, run: Run) -> None:
        from pytest_circuitbreaker.faults import StoreFaults

        super().start(run)
        store = self.store
        if store is None:
            from breaker.persistence.memory import InMemoryPersistence

            inner: CircuitStore = InMemoryPersistence(clock=run.clock)
            self._shared_store = False
        elif isinstance(store, CircuitStore):
            inner = store
            self._shared_store = True
        else:
            made = store()
            if not isinstance(made, CircuitStore):
                raise TypeError(f"the store factory {store!r} returned {made!r}, not a CircuitStore.")
            inner = made
            self._shared_store = False
        self.inner = inner
        self.faults: StoreFaults = StoreFaults(inner, clock=run.clock)
        self.recording = RecordingStore(self.faults.store, truth=inner, recorder=run.recorder)

    def stop(self) -> None:
        self.faults.restore()
        if self._shared_store:
            try:
                self.inner.delete(self.run.circuit)
            except Exception:
                pass

    def environment(self, env_id: str) -> LibraryEnvironment:
        from breaker.environment import Environment

        env = Environment(env_id)
        breaker = self.breaker_class(
            self.run.circuit,
            self.recording,
            on_circuit_open=self.run.fallback,
            config=self.run.config,
            clock=self.run.clock,
            environment=env,
        )
        return LibraryEnvironment(env_id, env, breaker)

    def call(self, env: LibraryEnvironment, fn: Callable[[], Any]) -> Any:
        return env.breaker.call(fn)

    def is_rejection(self, exc: BaseException) -> bool:
        return isinstance(exc, CircuitBreakerOpenError)

    def cold_start(self, env: LibraryEnvironment) -> LibraryEnvironment:
        env.environment.reset()
        return env

    def store_fault(self, kind: str) -> bool:
        _check_fault_kind(kind)
        faults = self.faults
        if kind == "fail_reads":
            faults.fail_reads()
        elif kind == "fail_writes":
            faults.fail_writes()
        elif kind == "fail_all":
            faults.fail_reads()
            faults.fail_writes()
        elif kind == "timeout":
            faults.timeout(STORE_TIMEOUT)
        else:
            faults.corrupt()
        return True

    def store_recover(self) -> None:
        self.faults.restore()


# ---------------------------------------------------------------------- shared helpers


def _fake_datetime(clock: FakeClock) -> Any:
    """A ``datetime.datetime`` subclass whose ``now()`` reads ``clock``."""
    import datetime as real

    class FakeDatetime(real.datetime):
        @classmethod
        def now(cls, tz: real.tzinfo | None = None) -> real.datetime:  # type: ignore[override]
            return real.datetime.fromtimestamp(clock.time(), tz)

    return FakeDatetime


# ---------------------------------------------------------------------- Powertools 3.37


class _SharedRecords:
    """The one table every simulated Powertools environment shares, with a version per write."""

    def __init__(self) -> None:
        import threading

        self.records: dict[str, Any] = {}
        self.versions: dict[str, int] = {}
        self.lock = threading.Lock()

    def truth(self, name: str) -> dict[str, Any] | None:
        record = self.records.get(name)
        return None if record is None else _powertools_record(record, self.versions.get(name, 0))


def _powertools_record(record: Any, version: int) -> dict[str, Any]:
    """A Powertools ``CircuitStateRecord`` in the history's record shape."""
    return {
        "name": record.name,
        "state": jsonable(record.state),
        "version": version,
        "failure_count": record.failure_count,
        "opened_at": record.opened_at,
        "half_open_owner": record.half_open_owner,
        "probe_lease_expiry": record.probe_lease_expiry,
        "pinned": False,
        "expires_at": record.expiry_timestamp,
    }


class PowertoolsEnvironment:
    """One simulated process for :class:`PowertoolsAdapter`: its module-level counters, owner id, layer."""

    def __init__(self, env_id: str, layer: Any, protected: Callable[..., Any]) -> None:
        from types import SimpleNamespace

        self.id = env_id
        self.failures: dict[str, int] = {}
        self.successes: dict[str, int] = {}
        self.observed: dict[str, Any] = {}
        # Powertools keeps the probe owner id in a threading.local (per thread and pid):
        # one simulated process keeps one id, whatever thread runs its call.
        self.owner = SimpleNamespace(id=env_id, pid=os.getpid())
        self.layer = layer
        self.protected = protected

    def __repr__(self) -> str:
        return f"PowertoolsEnvironment({self.id!r})"


class PowertoolsAdapter(BreakerAdapter):
    """Powertools for AWS Lambda 3.37's circuit breaker, one simulated process per environment.

    Powertools keeps failure and success counters, the last state seen and the probe
    owner id in module globals (one set per process); the adapter swaps in each
    environment's own before its code runs. Each environment has its own persistence
    layer (own local cache) over one shared table with the write conditions of
    Powertools' DynamoDB layer (``pytest_circuitbreaker.powertools``), whose writes the
    adapter records with a version number it keeps. Its clock (``datetime.now()``) is the
    harness's fake clock.

    The config must use whole seconds (Powertools' fields are ints); its probe lease is
    always ``recovery_timeout``, and it has no store backoff: the checkers still judge it
    by the config's ``store_backoff`` (DESIGN §4.8).

    Example:
        >>> PowertoolsAdapter().name
        'powertools'
    """

    name = "powertools"

    _COUNTERS = ("_LOCAL_FAILURES", "_LOCAL_SUCCESSES", "_LAST_OBSERVED_STATE", "_PROBE_OWNER")

    def start(self, run: Run) -> None:
        import importlib

        from aws_lambda_powertools.utilities.circuit_breaker import CircuitBreakerConfig as PowertoolsConfig
        from aws_lambda_powertools.utilities.circuit_breaker import base

        super().start(run)
        self._base = base
        fake = _fake_datetime(run.clock)
        import datetime as real
        from types import SimpleNamespace

        module = SimpleNamespace(datetime=fake, timedelta=real.timedelta, timezone=real.timezone)
        self._patched: list[tuple[Any, Any]] = []
        for name in (
            "aws_lambda_powertools.utilities.circuit_breaker.base",
            "aws_lambda_powertools.utilities.circuit_breaker.persistence.base",
            "pytest_circuitbreaker.powertools",
        ):
            target = importlib.import_module(name)
            self._patched.append((target, getattr(target, "dt")))  # noqa: B009 (typed stubs lack it)
            setattr(target, "dt", module)  # noqa: B010
        self._saved = {name: getattr(base, name) for name in self._COUNTERS}
        config = run.config
        values = {
            "failure_threshold": config.failure_threshold,
            "recovery_timeout": config.recovery_timeout,
            "success_threshold": config.success_threshold,
            "local_cache_max_age": config.local_cache_max_age,
        }
        for field, value in values.items():
            if value != int(value):
                self.stop()
                raise ValueError(
                    f"Powertools takes whole seconds: {field}={value!r} is not an integer; use an int config."
                )
        self._config = PowertoolsConfig(
            **{field: int(value) for field, value in values.items()},
            handled_exceptions=config.handled_exceptions,
            ignored_exceptions=config.ignored_exceptions,
        )
        self._shared = _SharedRecords()
        self._fault: str | None = None

    def stop(self) -> None:
        for target, original in getattr(self, "_patched", []):
            setattr(target, "dt", original)  # noqa: B010
        self._patched = []
        for name, value in getattr(self, "_saved", {}).items():
            setattr(self._base, name, value)
        self._saved = {}

    def bounds(self, config: CircuitBreakerConfig) -> dict[str, Any]:
        bounds = super().bounds(config)
        bounds["probe_lease"] = config.recovery_timeout  # Powertools' lease is always the window
        return bounds

    def environment(self, env_id: str) -> PowertoolsEnvironment:
        from aws_lambda_powertools.utilities.circuit_breaker import circuit_breaker

        layer = _powertools_layer(self, env_id)
        recorder = self.run.recorder

        def on_transition(transition: Any) -> None:
            recorder.transition(transition, env_id)

        protected = circuit_breaker(
            name=self.run.circuit,
            persistence_store=layer,
            on_circuit_open=self.run.fallback,
            on_transition=on_transition,
            config=self._config,
        )(_trampoline)
        return PowertoolsEnvironment(env_id, layer, protected)

    def activate(self, env: PowertoolsEnvironment) -> None:
        base = self._base
        for name, value in zip(
            self._COUNTERS, (env.failures, env.successes, env.observed, env.owner), strict=True
        ):
            setattr(base, name, value)

    def call(self, env: PowertoolsEnvironment, fn: Callable[[], Any]) -> Any:
        self.activate(env)
        return env.protected(fn)

    def is_rejection(self, exc: BaseException) -> bool:
        from aws_lambda_powertools.utilities.circuit_breaker import CircuitBreakerOpenError as PowertoolsOpen

        return isinstance(exc, PowertoolsOpen)

    def store_fault(self, kind: str) -> bool:
        _check_fault_kind(kind)
        self._fault = kind
        return True

    def store_recover(self) -> None:
        self._fault = None

    def _inject(self, operation: str, name: str) -> bool:
        """Raise the active fault for ``operation``; True when a read must return a corrupt record."""
        fault = self._fault
        if fault is None:
            return False
        where = f"store powertools: {operation}({name!r})"
        if fault == "timeout":
            self.run.clock.advance(STORE_TIMEOUT)
            raise TimeoutError(f"{where} timed out after {STORE_TIMEOUT}s (injected by the harness)")
        if fault == "fail_all" or fault == f"fail_{operation}s":
            raise ConnectionError(f"{where} failed ({fault}, injected by the harness)")
        return fault == "corrupt" and operation == "read"


def _trampoline(fn: Callable[[], Any]) -> Any:
    return fn()


def _powertools_layer(adapter: PowertoolsAdapter, env_id: str) -> Any:
    """A persistence layer for one environment: its own cache, the shared table, recorded."""
    from aws_lambda_powertools.utilities.circuit_breaker.persistence.base import (
        CircuitBreakerExistingLockError,
    )
    from aws_lambda_powertools.utilities.circuit_breaker.persistence.record import CircuitStateRecord
    from aws_lambda_powertools.utilities.circuit_breaker.states import CircuitState as PowertoolsState

    from pytest_circuitbreaker.powertools import InMemoryPowertoolsPersistence

    shared = adapter._shared
    recorder = adapter.run.recorder

    class HarnessLayer(InMemoryPowertoolsPersistence):
        def __init__(self) -> None:
            super().__init__()
            self._records = shared.records
            self._records_lock = shared.lock
            self.seen = 0  # the version this environment last read or wrote

        def _get_record(self, name: str) -> Any:
            try:
                corrupt = adapter._inject("read", name)
            except Exception as exc:
                recorder.record(
                    STORE_FAULT,
                    {
                        "op": "read",
                        "error": exc,
                        "timeout": isinstance(exc, TimeoutError),
                        "truth": shared.truth(name),
                    },
                )
                raise
            if corrupt:
                record = CircuitStateRecord(name=name, state=PowertoolsState.HALF_OPEN)
                recorder.record(
                    STORE_FAULT,
                    {"op": "read", "error": f"corrupt record {record!r}", "corrupt": True, "timeout": False,
                     "truth": shared.truth(name)},
                )  # fmt: skip
                return record
            stored = super()._get_record(name)
            version = shared.versions.get(name, 0)
            self.seen = version
            recorder.record(
                STORE_READ,
                {
                    "record": None if stored is None else _powertools_record(stored, version),
                    "truth": shared.truth(name),
                },
            )
            return stored

        def _write(self, record: Any, write: Callable[[], None], conditional: str | None) -> None:
            name = record.name
            try:
                adapter._inject("write", name)
            except Exception as exc:
                recorder.record(
                    STORE_FAULT,
                    {"op": "write", "record": _powertools_record(record, 0), "error": exc,
                     "timeout": isinstance(exc, TimeoutError), "truth": shared.truth(name)},
                )  # fmt: skip
                raise
            before, expected = shared.truth(name), self.seen
            stored = True
            try:
                write()
            except CircuitBreakerExistingLockError:
                stored = False
                raise
            finally:
                version = shared.versions.get(name, 0)
                if stored:
                    version += 1
                    shared.versions[name] = version
                    self.seen = version
                recorder.record(
                    STORE_WRITE,
                    {
                        "record": _powertools_record(record, version),
                        "expected_version": expected,
                        "stored": stored,
                        "before": before,
                        "truth": shared.truth(name),
                        "conditional": conditional,
                    },
                )

        def _put_record(
            self, record: Any, condition: str | None = None, expected_opened_at: int | None = None
        ) -> None:
            self._write(
                record,
                lambda: InMemoryPowertoolsPersistence._put_record(
                    self, record, condition, expected_opened_at
                ),
                "state" if condition else None,
            )

        def _update_record(self, record: Any) -> None:
            self._write(record, lambda: InMemoryPowertoolsPersistence._update_record(self, record), None)

    return HarnessLayer()


# ---------------------------------------------------------------------- pybreaker


class PybreakerEnvironment:
    """One simulated process for :class:`PybreakerAdapter`: its own ``pybreaker.CircuitBreaker``."""

    def __init__(self, env_id: str, breaker: Any) -> None:
        self.id = env_id
        self.breaker = breaker

    def __repr__(self) -> str:
        return f"PybreakerEnvironment({self.id!r})"


class PybreakerAdapter(BreakerAdapter):
    """pybreaker: a per-process breaker, so each environment has its own and nothing is shared.

    ``fail_max``, ``reset_timeout`` and ``success_threshold`` come from the config;
    ``throw_new_error_on_trip=False`` so a tripping call re-raises its own error. There
    is no store (the store checkers answer unknown) and no fallback. Its clock
    (``datetime.now``) is the harness's fake clock.

    Example:
        >>> PybreakerAdapter().shares_store
        False
    """

    name = "pybreaker"
    shares_store = False
    supports_fallback = False

    def start(self, run: Run) -> None:
        import pybreaker

        super().start(run)
        module: Any = pybreaker
        self._module = module
        self._original = module.datetime
        module.datetime = _fake_datetime(run.clock)

    def stop(self) -> None:
        module: Any = getattr(self, "_module", None)
        if module is not None:
            module.datetime = self._original
            self._module = None

    def environment(self, env_id: str) -> PybreakerEnvironment:
        pybreaker = self._module
        recorder = self.run.recorder

        class Listener(pybreaker.CircuitBreakerListener):  # type: ignore[misc,name-defined]
            def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
                if old_state is not None:
                    from types import SimpleNamespace

                    recorder.transition(
                        SimpleNamespace(from_state=old_state.name, to_state=new_state.name), env_id
                    )

        config = self.run.config
        breaker = pybreaker.CircuitBreaker(
            fail_max=config.failure_threshold,
            reset_timeout=config.recovery_timeout,
            success_threshold=config.success_threshold,
            listeners=[Listener()],
            name=self.run.circuit,
            throw_new_error_on_trip=False,
        )
        return PybreakerEnvironment(env_id, breaker)

    def call(self, env: PybreakerEnvironment, fn: Callable[[], Any]) -> Any:
        return env.breaker.call(fn)

    def is_rejection(self, exc: BaseException) -> bool:
        return isinstance(exc, self._module.CircuitBreakerError)
