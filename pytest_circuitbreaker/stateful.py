"""Hypothesis state machines that prove a breaker's invariants over recorded histories.

A :class:`Simulation` is a fleet of environments (simulated worker processes) calling
one downstream through a breaker (via an adapter, :mod:`pytest_circuitbreaker.adapters`)
on a fake clock, with a shared store, recording a
:class:`~pytest_circuitbreaker.history.History`. Its steps: calls through any
environment (including a failing one, and slow ones that stay in flight across steps),
clock steps, downstream outages and recovery, store faults, cold starts and crashes
(also mid-probe). ``sim.check()`` runs the checkers.

:func:`machine_class` turns it into a ``hypothesis.stateful.RuleBasedStateMachine``
whose invariant runs every checker after every step; :func:`make_test_case` gives a
``unittest.TestCase`` to assign in a test module::

    from pytest_circuitbreaker.adapters import BreakerLibraryAdapter
    from pytest_circuitbreaker.stateful import FAST, make_test_case

    TestMyBreaker = make_test_case(BreakerLibraryAdapter(), settings=FAST)

A failure prints the anomalies with the ops that show them, the shrunk steps as code
that replays them on a ``Simulation``, and the seed that replays the whole search.

Example:
    >>> from pytest_circuitbreaker.adapters import BreakerLibraryAdapter
    >>> sim = Simulation(BreakerLibraryAdapter(), environments=2)
    >>> sim.call(env=0)
    'call_ok'
    >>> sim.check().valid
    True
    >>> sim.close()
"""

from __future__ import annotations

import ast
import threading
import time as _time
import unittest
import uuid
from typing import cast

import hypothesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, multiple, rule

from breaker.clock import FakeClock
from breaker.config import CircuitBreakerConfig
from pytest_circuitbreaker.adapters import STORE_FAULT_KINDS, BreakerAdapter, BreakerLibraryAdapter, Run
from pytest_circuitbreaker.checkers import Verdict, check
from pytest_circuitbreaker.history import (
    CALL_FAILED,
    CALL_OK,
    CALL_STARTED,
    CLOCK,
    COLD_START,
    CRASH,
    DOWNSTREAM_CALL,
    DOWNSTREAM_FAULT,
    FALLBACK,
    REJECTED,
    STORE_OUTAGE,
    TRANSITION,
    History,
    Recorder,
    jsonable,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any

    from breaker.persistence.base import CircuitStore
    from pytest_circuitbreaker.checkers import Checker

__all__ = [
    "DEFAULT_CONFIG",
    "FAST",
    "SMALL",
    "CircuitBreakerMachine",
    "DownstreamError",
    "HarnessError",
    "InvariantViolation",
    "Simulation",
    "SlowCall",
    "find_failure",
    "machine_class",
    "make_test_case",
    "run_machine",
    "run_schedule",
]

#: The config the harness uses when none is given: small numbers, so short runs reach
#: every state (trip after 2 failures, 10 s open, 2 probes close it, 3 s of staleness).
DEFAULT_CONFIG = CircuitBreakerConfig(
    failure_threshold=2, recovery_timeout=10, success_threshold=2, local_cache_max_age=3, store_backoff=5
)

#: CI profile against the embedded store: 40 runs of up to 40 steps.
FAST = hypothesis.settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
    print_blob=False,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
)

#: Smaller profile for stores with real I/O (DynamoDB on moto, a Redis server).
SMALL = hypothesis.settings(FAST, max_examples=10, stateful_step_count=30)

DOWNSTREAM_VALUE = "downstream-ok"
FALLBACK_VALUE = "fallback-value"
_WAIT = 30.0  # seconds a slow call may take to reach the downstream or to end

STEP_NAMES = (
    "call",
    "slow_call",
    "finish",
    "advance",
    "outage",
    "recover",
    "store_fault",
    "store_recover",
    "cold_start",
    "crash",
)


class DownstreamError(ConnectionError):
    """What the harness's downstream raises when it fails (an outage or a failing call)."""


class HarnessError(RuntimeError):
    """The harness could not run a step (a breaker blocked, or a step was malformed)."""


class _Abandoned(BaseException):
    """Raised inside the downstream of a crashed environment's call, to unwind its thread."""


class InvariantViolation(AssertionError):
    """A checker found an anomaly. ``verdict``, ``history``, ``steps`` and ``seed`` say which and how.

    Example:
        >>> error = InvariantViolation("message", Verdict(False), History(), [], 7)
        >>> error.seed
        7
    """

    def __init__(
        self, message: str, verdict: Verdict, history: History, steps: list[str], seed: int | None
    ) -> None:
        super().__init__(message)
        self.verdict = verdict
        self.history = history
        self.steps = steps
        self.seed = seed


class SlowCall:
    """A call stuck in the downstream until ``Simulation.finish(env)``; its breaker work runs in a thread.

    Example:
        >>> SlowCall(3, 0, "env-0")
        SlowCall(call=3, env=0)
    """

    def __init__(self, call: int, env: int, env_id: str) -> None:
        self.call = call
        self.env = env
        self.env_id = env_id
        self.signal = threading.Event()  # set when it reached the downstream, or ended
        self.gate = threading.Event()  # set to let the downstream return
        self.entered = False
        self.done = False
        self.abandoned = False
        self.thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"SlowCall(call={self.call}, env={self.env})"


class _CallState:
    __slots__ = ("error", "fallback", "ran")

    def __init__(self) -> None:
        self.ran = False
        self.fallback = False
        self.error: BaseException | None = None


class _Slot:
    __slots__ = ("busy", "generation", "handle", "id", "index")

    def __init__(self, index: int, handle: Any, env_id: str) -> None:
        self.index = index
        self.id = env_id
        self.generation = 0
        self.handle = handle
        self.busy: SlowCall | None = None


def _check_config(config: object) -> CircuitBreakerConfig:
    if config is None:
        return DEFAULT_CONFIG
    if not isinstance(config, CircuitBreakerConfig):
        raise TypeError(
            f"config must be a breaker.CircuitBreakerConfig (or None for DEFAULT_CONFIG), got {config!r}."
        )
    if not config.counts_as_failure(DownstreamError("probe")):
        raise ValueError(
            "the harness's downstream raises pytest_circuitbreaker.stateful.DownstreamError (a ConnectionError), "
            f"which this config does not count (handled_exceptions={config.handled_exceptions!r}, "
            f"ignored_exceptions={config.ignored_exceptions!r}): let ConnectionError count."
        )
    return config


def _config_repr(config: CircuitBreakerConfig) -> str:
    defaults = CircuitBreakerConfig()
    fields = [
        f"{name}={getattr(config, name)!r}"
        for name in (
            "failure_threshold",
            "recovery_timeout",
            "success_threshold",
            "local_cache_max_age",
            "probe_lease",
            "store_backoff",
        )
        if getattr(config, name) != getattr(defaults, name)
        and not (name == "probe_lease" and config.probe_lease == config.recovery_timeout)
    ]
    return f"CircuitBreakerConfig({', '.join(fields)})"


class Simulation:
    """A fleet of environments calling one downstream through a breaker, recorded as a history.

    Parameters:
        adapter: the breaker to test (a :class:`~pytest_circuitbreaker.adapters.BreakerAdapter`).
        config: its CircuitBreakerConfig (default :data:`DEFAULT_CONFIG`).
        environments: how many environments (>= 1): ``env-0`` ... (a crashed one comes
            back as ``env-1#1``, a new process with a new id).
        fallback: install an ``on_circuit_open`` fallback (else the open error is raised).
        circuit: the circuit name (default: a new unique one).
        start: the fake clock's start, unix seconds (default: now, in whole seconds).

    Each step method is recorded in ``steps`` as the code that replays it.

    Example:
        >>> from pytest_circuitbreaker.adapters import BreakerLibraryAdapter
        >>> from breaker import CircuitBreakerConfig
        >>> sim = Simulation(BreakerLibraryAdapter(), config=CircuitBreakerConfig(failure_threshold=1))
        >>> sim.outage(); sim.call(env=0), sim.call(env=0)
        ('call_failed', 'rejected')
        >>> sim.steps
        ['outage()', 'call(env=0)', 'call(env=0)']
        >>> sim.close()
    """

    def __init__(
        self,
        adapter: BreakerAdapter,
        *,
        config: CircuitBreakerConfig | None = None,
        environments: int = 3,
        fallback: bool = False,
        circuit: str | None = None,
        start: float | None = None,
    ) -> None:
        if not isinstance(adapter, BreakerAdapter):
            raise TypeError(
                f"adapter must be a pytest_circuitbreaker.adapters.BreakerAdapter instance, got {adapter!r}."
            )
        if isinstance(environments, bool) or not isinstance(environments, int) or environments < 1:
            raise ValueError(f"environments must be an int >= 1, got {environments!r}.")
        if fallback and not adapter.supports_fallback:
            raise ValueError(f"{adapter.name} has no on_circuit_open fallback: run it with fallback=False.")
        self.adapter = adapter
        self.config = _check_config(config)
        self.clock = FakeClock(start=float(int(_time.time())) if start is None else start)
        self.circuit = circuit or f"harness-{uuid.uuid4().hex[:8]}"
        self.history = History(
            meta={
                "adapter": adapter.name,
                "circuit": self.circuit,
                "config": adapter.bounds(self.config),
                "environments": environments,
                "fallback": fallback,
                "shared_store": adapter.shares_store,
                "start_time": self.clock.time(),
            }
        )
        self.recorder = Recorder(self.history, self.clock, circuit=self.circuit)
        self.recorder.start()
        self.steps: list[str] = []
        self.outage_on = False
        self.store_fault_on: str | None = None
        self._calls = 0
        self._states: dict[int, _CallState] = {}
        self._abandoned: list[SlowCall] = []
        self.closed = False
        self.run = Run(
            self.clock,
            self.circuit,
            self.config,
            self.recorder,
            fallback=self._fallback if fallback else None,
        )
        try:
            adapter.start(self.run)
        except BaseException:
            self.recorder.stop()  # no listener may outlive a run that never started
            raise
        try:
            self.slots = []
            for index in range(environments):
                env_id = f"env-{index}"
                self.recorder.add(env_id)
                self.slots.append(_Slot(index, adapter.environment(env_id), env_id))
        except BaseException:
            self.recorder.stop()
            adapter.stop()
            raise

    def __repr__(self) -> str:
        return f"Simulation({self.adapter.name}, environments={len(self.slots)}, steps={len(self.steps)})"

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def _step(self, name: str, **kwargs: Any) -> None:
        if self.closed:
            raise HarnessError(f"{name}(): this Simulation is closed; make a new one.")
        self.steps.append(f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})")

    def _slot(self, env: int) -> _Slot:
        if isinstance(env, bool) or not isinstance(env, int) or not 0 <= env < len(self.slots):
            raise ValueError(
                f"env must be an environment index from 0 to {len(self.slots) - 1}, got {env!r}."
            )
        return self.slots[env]

    def _fallback(self, *args: Any, circuit: Any = None, **kwargs: Any) -> Any:
        call = self.recorder.current[1]
        state = self._states.get(call) if call is not None else None
        if state is not None:
            state.fallback = True
        return FALLBACK_VALUE

    def _downstream(
        self, state: _CallState, slot: _Slot, call: int, fail: bool, slow: SlowCall | None
    ) -> Any:
        recorder = self.recorder
        env_id = slot.id

        def downstream() -> str:
            recorder.record(DOWNSTREAM_CALL, "start", environment=env_id, call=call)
            state.ran = True
            failing = fail
            if slow is not None:
                slow.entered = True
                slow.signal.set()
                slow.gate.wait()
                if slow.abandoned:
                    raise _Abandoned
            if failing or self.outage_on:
                error = DownstreamError(f"downstream failed (call {call}, injected by the harness)")
                state.error = error
                recorder.record(DOWNSTREAM_CALL, "failed", environment=env_id, call=call)
                raise error
            recorder.record(DOWNSTREAM_CALL, "ok", environment=env_id, call=call)
            return DOWNSTREAM_VALUE

        return downstream

    def _outcome(
        self, state: _CallState, env_id: str, call: int, value: Any, exc: BaseException | None
    ) -> str:
        if isinstance(exc, _Abandoned):
            return "abandoned"
        info: dict[str, Any] = {"ran": state.ran, "fallback": state.fallback, "error": None, "source": None}
        if exc is not None:
            info["error"] = jsonable(exc)
            if state.error is not None and exc is state.error:
                kind, info["source"] = CALL_FAILED, "downstream"
            elif self.adapter.is_rejection(exc):
                kind, info["source"] = REJECTED, "open"
            else:
                kind, info["source"] = CALL_FAILED, "breaker"
        elif state.fallback and value == FALLBACK_VALUE:
            kind = FALLBACK
        else:
            kind = CALL_OK
            if value != DOWNSTREAM_VALUE:
                info["value"] = jsonable(value)
        self.recorder.record(kind, info, environment=env_id, call=call)
        return kind

    def _begin(self, slot: _Slot, slow: bool) -> tuple[int, _CallState]:
        self._calls += 1
        call = self._calls
        state = _CallState()
        self._states[call] = state
        self.recorder.current = (slot.id, call)
        self.recorder.record(CALL_STARTED, {"slow": slow})
        self.adapter.activate(slot.handle)
        return call, state

    # ------------------------------------------------------------------ steps

    def call(self, env: int, fail: bool = False) -> str | None:
        """Call through environment ``env``; the downstream fails if ``fail`` or during an outage.

        Returns the outcome kind (``call_ok``, ``call_failed``, ``rejected``,
        ``fallback``), or None when ``env`` is busy with a slow call (one invocation at a
        time per environment, as in Lambda).
        """
        slot = self._slot(env)
        self._step("call", env=env, **({"fail": True} if fail else {}))
        if slot.busy is not None:
            return None
        call, state = self._begin(slot, slow=False)
        fn = self._downstream(state, slot, call, fail, None)
        try:
            try:
                value = self.adapter.call(slot.handle, fn)
            except Exception as exc:
                return self._outcome(state, slot.id, call, None, exc)
            return self._outcome(state, slot.id, call, value, None)
        finally:
            self.recorder.current = (None, None)

    def slow_call(self, env: int) -> SlowCall | None:
        """Start a call through ``env`` that stays in the downstream until ``finish(env)``.

        Returns the SlowCall, or None when the call ended without reaching the
        downstream (rejected) or ``env`` is busy.
        """
        slot = self._slot(env)
        self._step("slow_call", env=env)
        if slot.busy is not None:
            return None
        call, state = self._begin(slot, slow=True)
        slow = SlowCall(call, env, slot.id)
        fn = self._downstream(state, slot, call, False, slow)
        adapter = self.adapter

        def run() -> None:
            try:
                try:
                    value = adapter.call(slot.handle, fn)
                except BaseException as exc:
                    self._outcome(state, slow.env_id, call, None, exc)
                else:
                    self._outcome(state, slow.env_id, call, value, None)
            finally:
                slow.done = True
                slow.signal.set()

        slow.thread = threading.Thread(target=run, name=f"harness-{slot.id}-call-{call}", daemon=True)
        try:
            slow.thread.start()
            if not slow.signal.wait(_WAIT):
                raise HarnessError(
                    f"the call through {slot.id} neither reached the downstream nor ended within {_WAIT}s: "
                    "the breaker blocked"
                )
        finally:
            self.recorder.current = (None, None)
        if slow.done:
            slow.thread.join(_WAIT)
            return None
        slot.busy = slow
        return slow

    def finish(self, env: int) -> str | None:
        """Let ``env``'s slow call return from the downstream (failing during an outage) and end.

        Returns the outcome kind, or None if ``env`` has no slow call in flight.
        """
        slot = self._slot(env)
        self._step("finish", env=env)
        slow = slot.busy
        if slow is None or slow.thread is None:
            return None
        self.recorder.current = (slot.id, slow.call)
        self.adapter.activate(slot.handle)
        try:
            slow.gate.set()
            slow.thread.join(_WAIT)
            if slow.thread.is_alive():
                raise HarnessError(f"the slow call {slow.call} through {slot.id} did not end within {_WAIT}s")
        finally:
            self.recorder.current = (None, None)
            slot.busy = None
        outcomes = self.history.filter((CALL_OK, CALL_FAILED, REJECTED, FALLBACK), call=slow.call)
        return outcomes[-1].kind if outcomes else None

    def advance(self, seconds: float) -> None:
        """Move the fake clock forward ``seconds``."""
        self._step("advance", seconds=seconds)
        self.clock.advance(seconds)
        self.recorder.record(CLOCK, {"seconds": seconds}, harness=True)

    def outage(self) -> None:
        """Make the downstream fail every call until ``recover()``."""
        self._step("outage")
        if not self.outage_on:
            self.outage_on = True
            self.recorder.record(DOWNSTREAM_FAULT, {"fault": "outage"}, harness=True)

    def recover(self) -> None:
        """End the downstream outage."""
        self._step("recover")
        if self.outage_on:
            self.outage_on = False
            self.recorder.record(DOWNSTREAM_FAULT, {"fault": None}, harness=True)

    def store_fault(self, kind: str) -> None:
        """Make the store fail: ``kind`` is one of ``adapters.STORE_FAULT_KINDS`` (a no-op without a store)."""
        if kind not in STORE_FAULT_KINDS:
            raise ValueError(f"store_fault(): kind must be one of {STORE_FAULT_KINDS!r}, got {kind!r}.")
        self._step("store_fault", kind=kind)
        self.adapter.store_recover()
        if self.adapter.store_fault(kind):
            self.store_fault_on = kind
            self.recorder.record(STORE_OUTAGE, {"fault": kind}, harness=True)

    def store_recover(self) -> None:
        """End every store fault."""
        self._step("store_recover")
        if self.store_fault_on is not None:
            self.adapter.store_recover()
            self.store_fault_on = None
            self.recorder.record(STORE_OUTAGE, {"fault": None}, harness=True)

    def cold_start(self, env: int) -> None:
        """Make ``env`` forget its local state (a recycled process; a no-op while it is busy)."""
        slot = self._slot(env)
        self._step("cold_start", env=env)
        if slot.busy is not None:
            return
        self.recorder.record(COLD_START, None, environment=slot.id, harness=True)
        slot.handle = self.adapter.cold_start(slot.handle)

    def crash(self, env: int) -> None:
        """Make ``env`` vanish, even mid-call (mid-probe): a new environment with a new id replaces it."""
        slot = self._slot(env)
        self._step("crash", env=env)
        if slot.busy is not None:
            slot.busy.abandoned = True
            self._abandoned.append(slot.busy)
            slot.busy = None
        old = slot.id
        slot.generation += 1
        new = f"env-{slot.index}#{slot.generation}"
        self.recorder.record(CRASH, {"replaced_by": new}, environment=old, harness=True)
        self.recorder.kill(old)
        self.recorder.add(new)
        slot.id = new
        slot.handle = self.adapter.environment(new)

    def apply(self, step: str | tuple[str, dict[str, Any]]) -> Any:
        """Run one step given as code (``"call(env=0)"``) or as ``(name, kwargs)``.

        Example:
            >>> from pytest_circuitbreaker.adapters import BreakerLibraryAdapter
            >>> with Simulation(BreakerLibraryAdapter()) as sim:
            ...     sim.apply("advance(seconds=5)"), sim.steps
            (None, ['advance(seconds=5)'])
        """
        name, kwargs = _parse_step(step)
        return getattr(self, name)(**kwargs)

    # ------------------------------------------------------------------ checking

    def check(self, checkers: Iterable[Checker] | None = None) -> Verdict:
        """Run ``checkers`` (default: all) over the history so far."""
        return check(self.history, checkers)

    def replay_code(self) -> str:
        """The steps so far as code that replays them.

        Example:
            >>> from pytest_circuitbreaker.adapters import BreakerLibraryAdapter
            >>> with Simulation(BreakerLibraryAdapter(), environments=1) as sim:
            ...     sim.outage()
            ...     print(sim.replay_code())
            sim = Simulation(BreakerLibraryAdapter(), config=CircuitBreakerConfig(failure_threshold=2, recovery_timeout=10, success_threshold=2, local_cache_max_age=3), environments=1)
            sim.outage()
            print(sim.check().report(sim.history))
        """
        adapter = repr(self.adapter)
        fallback = ", fallback=True" if self.run.fallback is not None else ""
        lines = [
            f"sim = Simulation({adapter}, config={_config_repr(self.config)}, "
            f"environments={len(self.slots)}{fallback})"
        ]
        lines.extend(f"sim.{step}" for step in self.steps)
        lines.append("print(sim.check().report(sim.history))")
        return "\n".join(lines)

    def failure_report(self, verdict: Verdict, *, seed: int | None = None, tail: int = 30) -> str:
        """The message of a failed check: anomalies, shrunk steps as code, the seed, the last ops."""
        lines = [
            f"DESIGN §4 invariants broken by {self.adapter.name} "
            f"(anomalies: {', '.join(verdict.anomaly_types)})",
            "",
            verdict.report(self.history),
            "",
            "Steps (as hypothesis shrank them), as code that replays them:",
        ]
        lines.extend("    " + line for line in self.replay_code().splitlines())
        if seed is not None:
            lines += [
                "",
                f"Seed: {seed} (replays the whole search: make_test_case(..., seed={seed}), "
                f"@hypothesis.seed({seed}) or pytest --hypothesis-seed={seed})",
            ]
        lines += ["", f"History ({len(self.history)} ops; history.to_json() has them all):"]
        lines.extend("    " + line for line in self.history.format(limit=tail).splitlines())
        return "\n".join(lines)

    def close(self) -> None:
        """Stop recording, unwind calls left in flight, and end the adapter's run."""
        if self.closed:
            return
        self.closed = True
        self.recorder.stop()
        pending = list(self._abandoned) + [slot.busy for slot in self.slots if slot.busy is not None]
        for slow in pending:
            slow.abandoned = True
            slot = self.slots[slow.env]
            if slot.busy is slow:
                self.adapter.activate(slot.handle)
            slow.gate.set()
            if slow.thread is not None:
                slow.thread.join(_WAIT)
        for slot in self.slots:
            slot.busy = None
        try:
            self.adapter.store_recover()
        finally:
            self.adapter.stop()


def _parse_step(step: str | tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    if isinstance(step, tuple) and len(step) == 2 and isinstance(step[0], str) and isinstance(step[1], dict):
        name, kwargs = step
    elif isinstance(step, str):
        try:
            node = ast.parse(step.strip().removeprefix("sim."), mode="eval").body
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.args:
                raise ValueError
            name = node.func.id
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg is not None}
        except (SyntaxError, ValueError):
            raise HarnessError(
                f"a step is code such as 'call(env=0)' or 'advance(seconds=5)' (keyword arguments, literal "
                f"values), got {step!r}."
            ) from None
    else:
        raise HarnessError(
            f"a step is a string such as 'call(env=0)' or a (name, kwargs) tuple, got {step!r}."
        )
    if name not in STEP_NAMES:
        raise HarnessError(f"unknown step {name!r}; allowed: {', '.join(STEP_NAMES)}.")
    return name, kwargs


def run_schedule(
    adapter: BreakerAdapter,
    steps: Iterable[str | tuple[str, dict[str, Any]]],
    *,
    config: CircuitBreakerConfig | None = None,
    environments: int = 3,
    fallback: bool = False,
    checkers: Iterable[Checker] | None = None,
) -> tuple[History, Verdict]:
    """Run ``steps`` on a new Simulation and check its history; returns (history, verdict).

    Example:
        >>> from pytest_circuitbreaker.adapters import BreakerLibraryAdapter
        >>> history, verdict = run_schedule(BreakerLibraryAdapter(), ["outage()", "call(env=0)", "call(env=0)",
        ...     "call(env=1)", "advance(seconds=11)", "recover()", "call(env=0)", "call(env=0)"])
        >>> verdict.valid, [op.value["to"] for op in history.filter("transition")]
        (True, ['OPEN', 'HALF_OPEN', 'CLOSED'])
    """
    sim = Simulation(adapter, config=config, environments=environments, fallback=fallback)
    try:
        for step in steps:
            sim.apply(step)
        return sim.history, sim.check(checkers)
    finally:
        sim.close()


# ---------------------------------------------------------------------- hypothesis


class CircuitBreakerMachine(RuleBasedStateMachine):
    """The base of the harness's state machines; :func:`machine_class` makes configured ones.

    Each example runs a new :class:`Simulation`; after every step the invariant runs the
    checkers and raises :class:`InvariantViolation` on any anomaly.
    """

    adapter: BreakerAdapter = BreakerLibraryAdapter()
    config: CircuitBreakerConfig | None = None
    environments: int = 3
    fallback: bool = False
    checkers: tuple[Checker, ...] | None = None
    seed: int | None = None

    def __init__(self) -> None:
        super().__init__()
        cls = type(self)
        self.sim = Simulation(
            cls.adapter, config=cls.config, environments=cls.environments, fallback=cls.fallback
        )

    @invariant()
    def invariants_hold(self) -> None:
        """Every checker over the history so far."""
        verdict = self.sim.check(type(self).checkers)
        if verdict.valid is False:
            message = self.sim.failure_report(verdict, seed=type(self).seed)
            raise InvariantViolation(
                message, verdict, self.sim.history, list(self.sim.steps), type(self).seed
            )

    def teardown(self) -> None:
        try:
            # Steer the search (hypothesis' target phase) toward runs that go around the
            # state machine: more transitions, and more probes in a row.
            history = self.sim.history
            hypothesis.target(float(len(history.filter(TRANSITION))), label="transitions")
            hypothesis.target(float(_longest_probe_streak(history)), label="probe streak")
        finally:
            self.sim.close()


def _longest_probe_streak(history: History) -> int:
    """The most successful probes one environment ran in a row (downstream calls while it held the probe)."""
    longest = 0
    truth: dict[str, Any] = {}
    streak: dict[str | None, int] = {}
    for op in history:
        value = op.value if isinstance(op.value, dict) else {}
        if "truth" in value:
            truth = value["truth"] or {}
        elif op.kind == DOWNSTREAM_CALL and op.value in ("ok", "failed"):
            probing = truth.get("state") == "HALF_OPEN" and truth.get("half_open_owner") == op.environment
            if op.value == "ok" and probing:
                streak[op.environment] = streak.get(op.environment, 0) + 1
                longest = max(longest, streak[op.environment])
            else:
                streak.pop(op.environment, None)
    return longest


def machine_class(
    adapter: BreakerAdapter | None = None,
    *,
    store: CircuitStore | Callable[[], CircuitStore] | None = None,
    config: CircuitBreakerConfig | None = None,
    environments: int = 3,
    fallback: bool = False,
    checkers: Sequence[Checker] | None = None,
    store_faults: bool | None = None,
    slow_calls: bool = True,
    crashes: bool = True,
    warm: bool = True,
    name: str | None = None,
) -> type[CircuitBreakerMachine]:
    """A RuleBasedStateMachine class driving ``adapter`` (default: this library on ``store``).

    Rules: ``call(env)``, ``failing_call(env)``, ``burst(env, count)`` (calls in a row, enough
    to trip or to close), ``trip(env)`` (``failure_threshold`` failing calls), ``recovery(env, calls)``
    (the downstream recovers, the window passes, up to ``success_threshold + 1`` calls through ``env``),
    ``slow_call(env)`` / ``finish(call)``,
    ``advance(seconds)`` (small steps, the open window, the probe lease),
    ``outage()`` / ``recover()``, ``store_fault(kind)`` / ``store_recover()`` (when the
    breaker has a store; ``store_faults=False`` leaves them out), ``cold_start(env)`` and
    ``crash(env)``. Invariant: every checker (or ``checkers``) after every step. With
    ``warm`` (the default) every example starts with one call per environment.

    Example:
        >>> Machine = machine_class(environments=2)
        >>> issubclass(Machine, CircuitBreakerMachine), Machine.environments
        (True, 2)
    """
    if adapter is None:
        adapter = BreakerLibraryAdapter(store)
    elif store is not None:
        raise TypeError(
            "pass store= to the adapter (e.g. BreakerLibraryAdapter(store)), not next to adapter=."
        )
    if not isinstance(adapter, BreakerAdapter):
        raise TypeError(
            f"adapter must be a pytest_circuitbreaker.adapters.BreakerAdapter instance, got {adapter!r}."
        )
    chosen = _check_config(config)
    if isinstance(environments, bool) or not isinstance(environments, int) or environments < 1:
        raise ValueError(f"environments must be an int >= 1, got {environments!r}.")
    with_store_faults = adapter.shares_store if store_faults is None else store_faults
    envs = st.integers(0, environments - 1)
    bounds = adapter.bounds(chosen)
    seconds = sorted(
        {
            1,
            2,
            bounds["local_cache_max_age"],
            bounds["recovery_timeout"],
            bounds["recovery_timeout"] + 1,
            bounds["probe_lease"] + 1,
        }
        - {0}
    )
    kinds = list(STORE_FAULT_KINDS)
    # A burst is enough calls in a row to trip the circuit or to close it with probes.
    burst_max = max(2, chosen.failure_threshold, chosen.success_threshold) + 1

    class Machine(CircuitBreakerMachine):
        in_flight = Bundle("in_flight")

        if warm:

            @initialize()
            def warm_up(self) -> None:
                """Every environment makes one call first: a warm fleet, each with a view to go stale."""
                for env in range(environments):
                    self.sim.call(env)

        @rule(env=envs)
        def call(self, env: int) -> None:
            self.sim.call(env)

        @rule(env=envs)
        def failing_call(self, env: int) -> None:
            self.sim.call(env, fail=True)

        @rule(env=envs, count=st.integers(2, burst_max))
        def burst(self, env: int, count: int) -> None:
            for _ in range(count):
                self.sim.call(env)

        @rule(env=envs)
        def trip(self, env: int) -> None:
            """``failure_threshold`` failing calls in a row through ``env``."""
            for _ in range(chosen.failure_threshold):
                self.sim.call(env, fail=True)

        @rule(env=envs, calls=st.integers(1, chosen.success_threshold + 1))
        def recovery(self, env: int, calls: int) -> None:
            """The downstream recovers, the open window passes, and ``env`` makes ``calls`` calls
            (the last count closes the circuit; fewer leave ``env`` probing)."""
            self.sim.recover()
            self.sim.advance(bounds["recovery_timeout"])
            for _ in range(calls):
                self.sim.call(env)

        @rule(seconds=st.sampled_from(seconds))
        def advance(self, seconds: float) -> None:
            self.sim.advance(seconds)

        @rule()
        def outage(self) -> None:
            self.sim.outage()

        @rule()
        def recover(self) -> None:
            self.sim.recover()

        @rule(env=envs)
        def cold_start(self, env: int) -> None:
            self.sim.cold_start(env)

        if slow_calls:

            @rule(target=in_flight, env=envs)
            def slow_call(self, env: int) -> Any:
                slow = self.sim.slow_call(env)
                return multiple() if slow is None else slow

            @rule(call=consumes(in_flight))
            def finish(self, call: SlowCall) -> None:
                if self.sim.slots[call.env].busy is call:
                    self.sim.finish(call.env)

        if with_store_faults:

            @rule(kind=st.sampled_from(kinds))
            def store_fault(self, kind: str) -> None:
                self.sim.store_fault(kind)

            @rule()
            def store_recover(self) -> None:
                self.sim.store_recover()

        if crashes:

            @rule(env=envs)
            def crash(self, env: int) -> None:
                self.sim.crash(env)

    Machine.adapter = adapter
    Machine.config = chosen
    Machine.environments = environments
    Machine.fallback = fallback
    Machine.checkers = tuple(checkers) if checkers is not None else None
    Machine.__name__ = Machine.__qualname__ = name or f"{adapter.name.title().replace('_', '')}Machine"
    return Machine


def _default_seed() -> int:
    import random

    forced = getattr(hypothesis.core, "global_force_seed", None)
    if forced is not None:
        try:
            return int(forced)
        except (TypeError, ValueError):
            import zlib

            return zlib.crc32(str(forced).encode())
    return random.SystemRandom().getrandbits(32)


def run_machine(
    machine: type[CircuitBreakerMachine],
    *,
    settings: hypothesis.settings | None = None,
    seed: int | None = None,
) -> None:
    """Run ``machine`` with hypothesis under ``settings`` (default FAST) from ``seed`` (default: random,
    or ``--hypothesis-seed``). Raises InvariantViolation (with the shrunk steps and the seed) on failure.

    Example:
        >>> run_machine(machine_class(environments=1), settings=hypothesis.settings(FAST, max_examples=2), seed=1)
    """
    if not (isinstance(machine, type) and issubclass(machine, CircuitBreakerMachine)):
        raise TypeError(f"machine must be a class made by machine_class(), got {machine!r}.")
    chosen_seed = _default_seed() if seed is None else int(seed)
    machine.seed = chosen_seed

    def factory() -> CircuitBreakerMachine:
        return machine()

    factory.__qualname__ = factory.__name__ = f"run_{machine.__name__}"
    # Any callable returning a machine is accepted (hypothesis' docs); the stub says a class.
    seeded = cast("type[RuleBasedStateMachine]", hypothesis.seed(chosen_seed)(factory))
    hypothesis.stateful.run_state_machine_as_test(seeded, settings=settings if settings is not None else FAST)


def find_failure(
    machine: type[CircuitBreakerMachine],
    *,
    settings: hypothesis.settings | None = None,
    seed: int | None = None,
) -> InvariantViolation | None:
    """Run ``machine`` like :func:`run_machine` and return the failure found (shrunk), or None.

    Example:
        >>> find_failure(machine_class(environments=1), settings=hypothesis.settings(FAST, max_examples=2), seed=1)
    """
    try:
        run_machine(machine, settings=settings, seed=seed)
    except InvariantViolation as error:
        return error
    except BaseExceptionGroup as group:  # report_multiple_bugs=True in the caller's settings
        match, _ = group.split(InvariantViolation)
        if match is None:
            raise
        first = match.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        if isinstance(first, InvariantViolation):
            return first
        raise
    return None


def make_test_case(
    adapter: BreakerAdapter | None = None,
    *,
    store: CircuitStore | Callable[[], CircuitStore] | None = None,
    config: CircuitBreakerConfig | None = None,
    environments: int = 3,
    settings: hypothesis.settings | None = None,
    seed: int | None = None,
    checkers: Sequence[Checker] | None = None,
    fallback: bool = False,
    store_faults: bool | None = None,
    slow_calls: bool = True,
    crashes: bool = True,
    warm: bool = True,
    name: str | None = None,
) -> type[unittest.TestCase]:
    """A ``unittest.TestCase`` running the state machine; assign it to a ``Test*`` name in a test module.

    ``adapter`` defaults to this library's breaker on ``store`` (default: a new
    in-memory store per run). ``settings`` default to :data:`FAST`; ``seed`` fixes the
    search (default: random, or ``--hypothesis-seed``; printed on failure).

    Example::

        from pytest_circuitbreaker.stateful import SMALL, make_test_case

        TestOnRedis = make_test_case(store=RedisPersistence(url=URL), settings=SMALL)
    """
    machine = machine_class(
        adapter,
        store=store,
        config=config,
        environments=environments,
        fallback=fallback,
        checkers=checkers,
        store_faults=store_faults,
        slow_calls=slow_calls,
        crashes=crashes,
        warm=warm,
        name=name,
    )
    chosen = settings if settings is not None else FAST

    class TestCase(unittest.TestCase):
        def runTest(self) -> None:
            run_machine(machine, settings=chosen, seed=seed)

    TestCase.settings = chosen  # type: ignore[attr-defined]
    TestCase.machine = machine  # type: ignore[attr-defined]
    TestCase.__name__ = TestCase.__qualname__ = f"{machine.__name__}.TestCase"
    return TestCase
