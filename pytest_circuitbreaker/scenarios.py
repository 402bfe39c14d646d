"""Scenario packs: run a scenario file against a breaker adapter, check it, and collect it in pytest.

A scenario (:mod:`pytest_circuitbreaker.scenario_format`) says how big the fleet is, how
the breaker is configured, what traffic it sees and which faults happen when. This
module runs it:

* :func:`run_scenario` runs one scenario against one adapter, once, for one
  :class:`Example` (the order environments call in within a tick, and a jitter on each
  fault's start and end), and returns a :class:`ScenarioResult`: the history, the
  checkers' verdict, the expectations that failed, and the metrics of the report.
* :func:`explore` runs the schedule as written, then lets hypothesis look for an
  example (interleaving and jitter) that breaks an invariant or an expectation; the
  failing example is shrunk and its seed printed.
* :class:`ScenarioFile` / :class:`ScenarioItem`: ``scenarios/x.toml::breaker``, one test
  item per scenario and adapter (``--circuitbreaker-adapters``).

Example:
    >>> from pytest_circuitbreaker.scenario_format import Fault, Scenario, Expectations
    >>> scenario = Scenario(name="tiny", path="tiny.toml", environments=2, duration=40, tick=1,
    ...     config={"failure_threshold": 2, "recovery_timeout": 10, "success_threshold": 1},
    ...     schedule=[Fault("downstream_outage", at=5, duration=10)],
    ...     expect=Expectations(opens=True, closes_by=35))
    >>> result = run_scenario(scenario, "breaker", seed=1)
    >>> result.status, result.metrics["path"]
    ('pass', 'CLOSED>OPEN>HALF_OPEN>CLOSED')
"""

from __future__ import annotations

import asyncio
import random
import threading
import time as _time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from breaker.clock import Clock
from breaker.config import CircuitBreakerConfig
from pytest_circuitbreaker import checkers as _checkers
from pytest_circuitbreaker.adapters import (
    BreakerAdapter,
    BreakerLibraryAdapter,
    LibraryEnvironment,
    PowertoolsAdapter,
    PowertoolsEnvironment,
    PybreakerAdapter,
    Run,
)
from pytest_circuitbreaker.history import (
    CALL_FAILED,
    CALL_STARTED,
    DOWNSTREAM_CALL,
    FALLBACK,
    LOCAL_TRANSITION,
    REJECTED,
    STORE_FAULT,
    STORE_READ,
    STORE_WRITE,
    TRANSITION,
    History,
)
from pytest_circuitbreaker.scenario_format import Scenario, ScenarioError, load_scenario
from pytest_circuitbreaker.stateful import Simulation

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from _pytest._code.code import TerminalRepr

    from breaker.clock import FakeClock
    from pytest_circuitbreaker.checkers import Checker, Verdict
    from pytest_circuitbreaker.scenario_format import Fault

__all__ = [
    "ADAPTERS",
    "DEFAULT_ADAPTER",
    "DEFAULT_EXAMPLES",
    "Example",
    "IgnoredDownstreamError",
    "ScenarioFile",
    "ScenarioItem",
    "ScenarioResult",
    "ScenarioSimulation",
    "Unsupported",
    "explore",
    "make_adapter",
    "metrics",
    "run_scenario",
]

#: The adapters ``--circuitbreaker-adapters`` may name, and what each is.
ADAPTERS = {
    "breaker": "this library (embedded in-memory store)",
    "powertools": "Powertools for AWS Lambda 3.37 (simulated DynamoDB table)",
    "pybreaker": "pybreaker (one breaker per process, nothing shared)",
}
#: The adapter whose failures fail the run; the others are compared side by side.
DEFAULT_ADAPTER = "breaker"
#: Examples hypothesis tries per scenario and adapter beyond the schedule as written.
DEFAULT_EXAMPLES = 5

#: The checkers each scenario ``checks`` name selects.
CHECKERS: dict[str, Checker] = {
    "legal_paths": _checkers.legal_paths,
    "open_means_shut": _checkers.open_means_shut,
    "one_probe": _checkers.one_probe,
    "write_free_health": _checkers.write_free_health,
    "no_lost_updates": _checkers.no_lost_updates,
    "nothing_lost": _checkers.nothing_lost,
    "liveness": _checkers.liveness,
    "store_faults_stay_inside": _checkers.store_faults_inside,
    "trips_on_streak": _checkers.trips_on_streak,
}

_INSTANT = ("cold_start",)


class Unsupported(Exception):
    """The adapter cannot run this scenario (a fault or mode it has no way to express)."""


class IgnoredDownstreamError(LookupError):
    """What the downstream raises for an ``ignored_errors`` fault: the breaker's config ignores it."""


# ---------------------------------------------------------------------- adapters with scenario features


class _SkewedClock(Clock):
    """One environment's clock: the fleet's fake clock, its wall time off by ``skews[index]`` seconds."""

    def __init__(self, base: FakeClock, skews: dict[int, float], index: int) -> None:
        self.base = base
        self.skews = skews
        self.index = index

    def time(self) -> float:
        return self.base.time() + self.skews.get(self.index, 0.0)

    def monotonic(self) -> float:
        return self.base.monotonic()


def _env_index(env_id: str) -> int:
    """``env-3#1`` -> 3: the slot an environment id belongs to."""
    return int(env_id.removeprefix("env-").split("#", 1)[0])


class _Loops:
    """One event loop per thread (slow calls run in threads), closed at the end of a run."""

    def __init__(self) -> None:
        self.local = threading.local()
        self.loops: list[asyncio.AbstractEventLoop] = []
        self.lock = threading.Lock()

    def run(self, coro: Any) -> Any:
        loop: asyncio.AbstractEventLoop | None = getattr(self.local, "loop", None)
        if loop is None:
            loop = asyncio.new_event_loop()
            self.local.loop = loop
            with self.lock:
                self.loops.append(loop)
        return loop.run_until_complete(coro)

    def close(self) -> None:
        with self.lock:
            for loop in self.loops:
                loop.close()
            self.loops.clear()
        self.local = threading.local()


class ScenarioBreakerAdapter(BreakerLibraryAdapter):
    """This library with what scenarios need: a skewable wall clock per environment, async calls.

    Example:
        >>> ScenarioBreakerAdapter(mode="async").mode
        'async'
    """

    supports_skew = True
    supports_async = True

    def __init__(self, *, mode: str = "sync") -> None:
        super().__init__()
        self.mode = mode
        self.skews: dict[int, float] = {}
        self._loops = _Loops()

    def environment(self, env_id: str) -> LibraryEnvironment:
        from breaker.environment import Environment

        env = Environment(env_id)
        breaker = self.breaker_class(
            self.run.circuit,
            self.recording,
            on_circuit_open=self.run.fallback,
            config=self.run.config,
            clock=_SkewedClock(self.run.clock, self.skews, _env_index(env_id)),
            environment=env,
        )
        return LibraryEnvironment(env_id, env, breaker)

    def call(self, env: LibraryEnvironment, fn: Callable[[], Any]) -> Any:
        if self.mode == "sync":
            return env.breaker.call(fn)

        async def downstream() -> Any:
            await asyncio.sleep(0)  # a real await: the call is a coroutine all the way
            return fn()

        return self._loops.run(env.breaker.acall(downstream))

    def stop(self) -> None:
        self._loops.close()
        super().stop()


class ScenarioPowertoolsAdapter(PowertoolsAdapter):
    """Powertools 3.37 with a skewable wall clock per environment, and async functions as it treats them.

    Powertools decorates ``async def`` functions like sync ones: the coroutine is the
    "result", so the call counts as a success before it ran (DESIGN §1).

    Example:
        >>> ScenarioPowertoolsAdapter(mode="async").supports_async
        True
    """

    supports_skew = True
    supports_async = True

    def __init__(self, *, mode: str = "sync") -> None:
        self.mode = mode
        self.skews: dict[int, float] = {}
        self.current_skew = 0.0
        self._loops = _Loops()

    def start(self, run: Run) -> None:
        super().start(run)
        import datetime as real
        from types import SimpleNamespace

        from pytest_circuitbreaker.adapters import _fake_datetime

        adapter = self

        class Skewed(Clock):
            def time(self) -> float:
                return run.clock.time() + adapter.current_skew

            def monotonic(self) -> float:
                return run.clock.monotonic()

        module = SimpleNamespace(
            datetime=_fake_datetime(Skewed()),  # type: ignore[arg-type]  # only .time() is read
            timedelta=real.timedelta,
            timezone=real.timezone,
        )
        for target, _original in self._patched:
            setattr(target, "dt", module)  # noqa: B010

    def activate(self, env: PowertoolsEnvironment) -> None:
        super().activate(env)
        self.current_skew = self.skews.get(_env_index(env.id), 0.0)

    def environment(self, env_id: str) -> PowertoolsEnvironment:
        made = super().environment(env_id)
        if self.mode == "async":
            from aws_lambda_powertools.utilities.circuit_breaker import circuit_breaker

            recorder = self.run.recorder

            def on_transition(transition: Any) -> None:
                recorder.transition(transition, env_id)

            async def trampoline(fn: Callable[[], Any]) -> Any:
                await asyncio.sleep(0)
                return fn()

            made.protected = circuit_breaker(
                name=self.run.circuit,
                persistence_store=made.layer,
                on_circuit_open=self.run.fallback,
                on_transition=on_transition,
                config=self._config,
            )(trampoline)
        return made

    def call(self, env: PowertoolsEnvironment, fn: Callable[[], Any]) -> Any:
        result = super().call(env, fn)
        if asyncio.iscoroutine(result):
            return self._loops.run(result)
        return result

    def stop(self) -> None:
        self._loops.close()
        super().stop()


class ScenarioPybreakerAdapter(PybreakerAdapter):
    """pybreaker as the harness ships it: sync only, no shared timestamps to skew."""

    supports_skew = False
    supports_async = False

    def __init__(self, *, mode: str = "sync") -> None:
        self.mode = mode
        self.skews: dict[int, float] = {}


def make_adapter(name: str, *, mode: str = "sync") -> BreakerAdapter:
    """The scenario runner's adapter called ``name`` (a key of :data:`ADAPTERS`).

    Example:
        >>> make_adapter("powertools").name
        'powertools'
    """
    if name == "breaker":
        return ScenarioBreakerAdapter(mode=mode)
    if name == "powertools":
        return ScenarioPowertoolsAdapter(mode=mode)
    if name == "pybreaker":
        return ScenarioPybreakerAdapter(mode=mode)
    raise ValueError(f"unknown adapter {name!r}; allowed: {', '.join(ADAPTERS)}.")


# ---------------------------------------------------------------------- the simulation


class ScenarioSimulation(Simulation):
    """A :class:`~pytest_circuitbreaker.stateful.Simulation` whose downstream can also raise an ignored error.

    ``call_ignored(env)`` makes one call whose downstream raises
    :class:`IgnoredDownstreamError` (the config ignores it).

    Example:
        >>> sim = ScenarioSimulation(make_adapter("breaker"), config=scenario_config({}, ignored=True))
        >>> sim.call_ignored(0)
        'call_failed'
        >>> sim.close()
    """

    _ignore_next = False

    def call_ignored(self, env: int) -> str | None:
        """Call through ``env``; the downstream raises an error the breaker must ignore."""
        self._ignore_next = True
        try:
            return self.call(env, fail=True)
        finally:
            self._ignore_next = False

    def _downstream(self, state: Any, slot: Any, call: int, fail: bool, slow: Any) -> Any:
        inner = super()._downstream(state, slot, call, fail, slow)
        if not (fail and self._ignore_next):
            return inner
        recorder = self.recorder
        env_id = slot.id

        def downstream() -> str:
            recorder.record(DOWNSTREAM_CALL, "start", environment=env_id, call=call)
            state.ran = True
            error = IgnoredDownstreamError(
                f"not found (call {call}, an ignored error injected by the harness)"
            )
            state.error = error
            recorder.record(DOWNSTREAM_CALL, "failed", environment=env_id, call=call)
            raise error

        return downstream


def scenario_config(values: dict[str, Any], *, ignored: bool = False) -> CircuitBreakerConfig:
    """The CircuitBreakerConfig of a scenario's ``[config]`` (the harness's ignored error when asked).

    Example:
        >>> scenario_config({"failure_threshold": 3}).failure_threshold
        3
    """
    extra: dict[str, Any] = {"ignored_exceptions": (IgnoredDownstreamError,)} if ignored else {}
    return CircuitBreakerConfig(**values, **extra)


@dataclass(frozen=True)
class Example:
    """What hypothesis varies around a schedule: the call order within each tick, each fault's start and end.

    ``order`` 0 keeps the natural order (env-0 first); ``shifts`` holds, per fault of the
    schedule, the seconds added to its start and to its end.

    Example:
        >>> Example().describe()
        'order=0 (natural), no jitter'
    """

    order: int = 0
    shifts: tuple[tuple[float, float], ...] = ()

    def describe(self) -> str:
        order = f"order={self.order}" + (" (natural)" if self.order == 0 else " (shuffled per tick)")
        moved = [f"fault {i}: start {a:+g}s end {b:+g}s" for i, (a, b) in enumerate(self.shifts) if a or b]
        return order + (", " + "; ".join(moved) if moved else ", no jitter")


@dataclass
class ScenarioResult:
    """One run of one scenario against one adapter: verdict, failed expectations, metrics, history.

    ``status`` is ``pass``, ``fail`` or ``n/a`` (the adapter cannot run the scenario;
    ``notes`` says why).
    """

    scenario: Scenario
    adapter: str
    seed: int
    example: Example = field(default_factory=Example)
    verdict: Verdict | None = None
    expectation_failures: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    history: History | None = None
    faults: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    examples_run: int = 1
    seconds: float = 0.0
    explored_failure: bool = False

    @property
    def anomalies(self) -> list[str]:
        """The anomaly types the checkers found (empty when valid or not run)."""
        return [] if self.verdict is None else self.verdict.anomaly_types

    @property
    def status(self) -> str:
        """``pass``, ``fail`` or ``n/a``."""
        if self.verdict is None:
            return "n/a"
        return "fail" if self.verdict.valid is False or self.expectation_failures else "pass"

    def message(self) -> str:
        """What went wrong, for the test report: anomalies with their ops, failed expectations, replay."""
        lines = [
            f"scenario {self.scenario.name!r} ({self.scenario.path}) against {self.adapter}: {self.status}",
        ]
        if self.status == "n/a":
            lines.extend(self.notes)
            return "\n".join(lines)
        for failure in self.expectation_failures:
            lines.append(f"expectation failed: {failure}")
        if self.verdict is not None and self.verdict.valid is False and self.history is not None:
            lines.append(self.verdict.report(self.history, limit=3))
        lines.append(f"example: {self.example.describe()}")
        lines.append("faults as run: " + "; ".join(_fault_text(f) for f in self.faults))
        lines.append(
            f"replay: --circuitbreaker-seed reproduces it; this scenario's seed is {self.seed} "
            f"(set `seed = {self.seed}` in the file to pin it)"
        )
        lines.extend(self.notes)
        return "\n".join(lines)


def _fault_text(fault: dict[str, Any]) -> str:
    end = "" if fault.get("end") is None else f"-{fault['end']:g}"
    return f"{fault['fault']}@{fault['start']:g}{end}"


def _shifted(scenario: Scenario, example: Example) -> list[tuple[Fault, float, float | None]]:
    """Each fault with its start and end after the example's jitter, kept inside the run."""
    out = []
    for index, fault in enumerate(scenario.schedule):
        start_shift, end_shift = example.shifts[index] if index < len(example.shifts) else (0.0, 0.0)
        start = min(max(0.0, fault.at + start_shift), scenario.duration)
        end = None
        if fault.end is not None and fault.fault not in _INSTANT:
            end = min(max(start + scenario.tick, fault.end + end_shift), scenario.duration)
        out.append((fault, start, end))
    return out


def _probe_owner(history: History) -> str | None:
    """The environment holding the probe according to the latest store truth, if the record is HALF_OPEN."""
    for op in reversed(history.ops):
        value = op.value
        if op.kind in (STORE_READ, STORE_WRITE, STORE_FAULT) and isinstance(value, dict) and "truth" in value:
            truth = value["truth"] or {}
            if truth.get("state") == "HALF_OPEN":
                owner = truth.get("half_open_owner")
                return str(owner) if owner is not None else None
            return None
    return None


def run_scenario(
    scenario: Scenario, adapter: str, *, seed: int, example: Example | None = None
) -> ScenarioResult:
    """Run ``scenario`` once against the adapter called ``adapter``; check it; measure it.

    Raises :class:`Unsupported` when the adapter cannot express the scenario.

    Example:
        >>> from pytest_circuitbreaker.scenario_format import Scenario
        >>> run_scenario(Scenario(name="idle", path="idle.toml", duration=5), "breaker", seed=0).status
        'pass'
    """
    example = example or Example()
    began = _time.perf_counter()
    kinds = {fault.fault for fault in scenario.schedule}
    made = make_adapter(adapter, mode=scenario.mode)
    if scenario.mode == "async" and not getattr(made, "supports_async", False):
        raise Unsupported(f"{adapter}: the harness has no async path for this breaker")
    if "clock_skew" in kinds and not getattr(made, "supports_skew", False):
        raise Unsupported(f"{adapter}: no shared timestamps to skew (each environment is its own breaker)")
    if scenario.store != "memory":
        raise Unsupported(f"store {scenario.store!r}: scenario packs run on the embedded store only (so far)")
    config = scenario_config(scenario.config, ignored="ignored_errors" in kinds)
    sim = ScenarioSimulation(
        made,
        config=config,
        environments=scenario.environments,
        fallback=made.supports_fallback,
        start=1_700_000_000.0,
    )
    result = ScenarioResult(scenario, adapter, seed, example)
    rng = random.Random(f"{seed}:{example.order}")
    order_rng = random.Random(example.order) if example.order else None
    skews: dict[int, float] = getattr(made, "skews", {})
    try:
        shifted = _shifted(scenario, example)
        events: list[tuple[float, int, int, Fault]] = []  # (time, 0=end 1=start, fault index)
        for index, (fault, start, end) in enumerate(shifted):
            events.append((start, 1, index, fault))
            if end is not None:
                events.append((end, 0, index, fault))
            result.faults.append({"fault": fault.fault, "start": start, "end": end, **fault.options})
        events.sort(key=lambda event: (event[0], event[1], event[2]))
        active: dict[int, Fault] = {}
        store_stack: list[tuple[int, str]] = []
        n = scenario.environments
        credit = [index / n for index in range(n)]
        slow_due: dict[int, float] = {}
        ticks = round(scenario.duration / scenario.tick)
        next_event = 0
        for tick in range(ticks + 1):
            now = tick * scenario.tick
            while next_event < len(events) and events[next_event][0] <= now + 1e-9:
                _, starting, index, fault = events[next_event]
                next_event += 1
                _apply(sim, fault, index, bool(starting), active, store_stack, skews, result)
            for index, fault in list(active.items()):
                if fault.fault == "probe_owner_crash":
                    slow = any(f.fault == "downstream_slow" for f in active.values())
                    if _crash_owner(sim, mid_probe_only=slow):
                        del active[index]
            # Slow calls due now return (failing if the downstream is out), env order.
            for env in sorted(slow_due):
                if slow_due[env] <= now + 1e-9:
                    del slow_due[env]
                    sim.finish(env)
            if tick == ticks:
                break
            outage = any(f.fault == "downstream_outage" for f in active.values())
            error_rate = max(
                (f.options["rate"] for f in active.values() if f.fault == "downstream_error_rate"),
                default=0.0,
            )
            ignored_rate = max(
                (f.options["rate"] for f in active.values() if f.fault == "ignored_errors"), default=0.0
            )
            latency = max(
                (f.options["latency"] for f in active.values() if f.fault == "downstream_slow"), default=0.0
            )
            calls: list[int] = []
            for env in range(n):
                credit[env] += scenario.rate * scenario.tick
                while credit[env] >= 1.0 - 1e-9:
                    credit[env] -= 1.0
                    calls.append(env)
            if order_rng is not None:
                order_rng.shuffle(calls)
            for env in calls:
                if sim.slots[env].busy is not None:
                    continue  # one invocation at a time per environment, as in Lambda
                draw = rng.random()
                if latency and not outage:
                    if sim.slow_call(env) is not None:
                        slow_due[env] = now + latency
                elif draw < error_rate:
                    sim.call(env, fail=True)
                elif draw < error_rate + ignored_rate:
                    sim.call_ignored(env)
                else:
                    sim.call(env)
            sim.advance(scenario.tick)
        for env in sorted(slow_due):
            sim.finish(env)
        chosen = [CHECKERS[name] for name in scenario.checks]
        result.verdict = sim.check(chosen)
        result.history = sim.history
    finally:
        sim.close()
    result.metrics = metrics(sim.history, scenario.tick)
    result.expectation_failures = expectations(scenario, result.metrics, sim.history, made.supports_fallback)
    result.seconds = _time.perf_counter() - began
    return result


def _crash_owner(sim: ScenarioSimulation, *, mid_probe_only: bool) -> bool:
    """Crash the environment holding the probe (only if its probe call is in flight, if asked)."""
    owner = _probe_owner(sim.history)
    slot = next((s for s in sim.slots if s.id == owner), None)
    if slot is None or (mid_probe_only and slot.busy is None):
        return False
    sim.crash(slot.index)
    return True


def _apply(
    sim: ScenarioSimulation,
    fault: Fault,
    index: int,
    starting: bool,
    active: dict[int, Fault],
    store_stack: list[tuple[int, str]],
    skews: dict[int, float],
    result: ScenarioResult,
) -> None:
    """Start or end one fault of the schedule."""
    kind = fault.fault
    if kind == "probe_owner_crash":
        # Crash the probe owner now if there is one; else, with a duration, stay armed and
        # crash the first owner seen before the end (run_scenario checks every tick).
        if starting and not _crash_owner(sim, mid_probe_only=False):
            if fault.duration is None:
                result.notes.append(
                    f"probe_owner_crash at +{sim.clock.time() - sim.history.start_time:g}s: nobody held the probe"
                )
            else:
                active[index] = fault
        elif not starting and active.pop(index, None) is not None:
            result.notes.append(
                f"probe_owner_crash until +{sim.clock.time() - sim.history.start_time:g}s: nobody held the probe"
            )
        return
    if kind == "cold_start":
        for env in range(fault.options.get("environments") or len(sim.slots)):
            sim.cold_start(env)
        return
    if starting:
        active[index] = fault
    else:
        active.pop(index, None)
    if kind == "downstream_outage":
        outage = any(f.fault == "downstream_outage" for f in active.values())
        if outage and not sim.outage_on:
            sim.outage()
        elif not outage and sim.outage_on:
            sim.recover()
    elif kind == "store_outage":
        if starting:
            store_stack.append((index, fault.options["kind"]))
        else:
            store_stack[:] = [entry for entry in store_stack if entry[0] != index]
        if store_stack:
            sim.store_fault(store_stack[-1][1])
        else:
            sim.store_recover()
    elif kind == "clock_skew":
        env = int(fault.options["environment"])
        if starting:
            skews[env] = float(fault.options["seconds"])
        else:
            skews.pop(env, None)


# ---------------------------------------------------------------------- metrics and expectations


def metrics(history: History, tick: float = 1.0) -> dict[str, Any]:
    """What the report shows for one run, computed from its history.

    The circuit's state is the shared record's (the store truth the harness records),
    or, for a breaker without a store, the last transition any environment reported.
    ``invocations``; ``transitions`` (how many the breaker reported) and ``path`` (the
    states the circuit went through); ``downstream_calls``; ``calls_after_trip``:
    downstream calls started while the circuit was OPEN (the leakage: stale views, and
    local breakers while the store is down); ``probes_per_recovery``: the most
    downstream calls made while HALF_OPEN in one recovery; ``recoveries``; ``store_reads_per_call`` and ``store_writes_per_call``;
    ``fallbacks`` (calls handed to ``on_circuit_open``) and ``rejected`` (open errors);
    ``failures_to_open``: counted (not ignored) downstream failures up to the first trip;
    ``opened_at`` / ``closed_at`` (seconds from the start: the first trip, the last close).

    Example:
        >>> metrics(History(meta={"start_time": 0.0}))["invocations"]
        0
    """
    start = history.start_time
    shared = history.has_store_ops
    state = "CLOSED"  # the shared record's state (the store truth), or the last reported one without a store
    path = ["CLOSED"]
    invocations = downstream = leak = reads = writes = fallbacks = rejected = transitions = 0
    failures_before_trip: int | None = None
    failures = 0
    probes: list[int] = []
    opened_at: float | None = None
    closed_at: float | None = None
    ignored_calls = {
        op.call
        for op in history.filter(CALL_FAILED)
        if str((op.value or {}).get("error") or "").startswith(IgnoredDownstreamError.__name__)
    }

    def move(target: str, time: float) -> None:
        nonlocal state, failures_before_trip, opened_at, closed_at
        if target == state:
            return
        path.append(target)
        if target == "OPEN" and failures_before_trip is None:
            failures_before_trip = failures
            opened_at = time - start
        if target == "HALF_OPEN":
            probes.append(0)
        if target == "CLOSED":
            closed_at = time - start
        state = target

    for op in history:
        kind = op.kind
        value = op.value if isinstance(op.value, dict) else {}
        if kind == CALL_STARTED:
            invocations += 1
        elif kind == DOWNSTREAM_CALL:
            if op.value == "start":
                downstream += 1
                if state == "OPEN":
                    leak += 1
                elif state == "HALF_OPEN" and probes:
                    probes[-1] += 1
            elif op.value == "failed" and op.call not in ignored_calls:
                failures += 1
        elif kind == TRANSITION:
            transitions += 1
            if not shared:
                move(str(value.get("to")), op.time)
        elif kind == FALLBACK:
            fallbacks += 1
        elif kind == REJECTED:
            rejected += 1
        if kind in (STORE_READ, STORE_WRITE, STORE_FAULT):
            if kind == STORE_WRITE or value.get("op") == "write":
                writes += 1
            else:
                reads += 1
            if "truth" in value:
                move(str((value.get("truth") or {}).get("state") or "CLOSED"), op.time)
    per_call = max(invocations, 1)
    return {
        "invocations": invocations,
        "transitions": transitions,
        "path": ">".join(path),
        "local_transitions": len(history.filter(LOCAL_TRANSITION)),
        "downstream_calls": downstream,
        "downstream_failures": failures,
        "calls_after_trip": leak,
        "recoveries": len(probes),
        "probes_per_recovery": max(probes) if probes else 0,
        "store_reads_per_call": round(reads / per_call, 3),
        "store_writes_per_call": round(writes / per_call, 3),
        "fallbacks": fallbacks,
        "rejected": rejected,
        "caller_errors": len(
            history.filter(CALL_FAILED, where=lambda op: (op.value or {}).get("source") == "breaker")
        ),
        "failures_to_open": failures_before_trip,
        "opened_at": opened_at,
        "closed_at": closed_at,
        "final_state": state,
    }


def expectations(
    scenario: Scenario, values: dict[str, Any], history: History, fallback: bool = True
) -> list[str]:
    """The scenario's ``[expect]`` entries that the measured ``values`` break, one sentence each.

    Example:
        >>> from pytest_circuitbreaker.scenario_format import Expectations, Scenario
        >>> s = Scenario(name="x", path="x.toml", expect=Expectations(opens=True))
        >>> expectations(s, {"opened_at": None}, History())
        ['opens = true: the circuit never opened']
    """
    expect = scenario.expect
    failed = []
    opened = values.get("opened_at") is not None
    if expect.opens is True and not opened:
        failed.append("opens = true: the circuit never opened")
    after = expect.opens_after
    if after is not None and opened and values["opened_at"] < after:
        failed.append(f"opens_after = {after:g}: the circuit opened at +{values['opened_at']:g}s")
    if expect.opens is False and opened:
        failed.append(f"opens = false: the circuit opened at +{values['opened_at']:g}s")
    limit = expect.opens_within_failures
    if limit is not None:
        got = values.get("failures_to_open")
        if got is None:
            failed.append(f"opens_within_failures = {limit}: the circuit never opened")
        elif got > limit:
            failed.append(f"opens_within_failures = {limit}: it opened after {got} failed downstream calls")
    if expect.closes_by is not None:
        closed = values.get("closed_at")
        if values.get("final_state") != "CLOSED" or (
            opened and (closed is None or closed > expect.closes_by)
        ):
            when = (
                "never closed"
                if closed is None or values.get("final_state") != "CLOSED"
                else f"closed at +{closed:g}s"
            )
            failed.append(
                f"closes_by = {expect.closes_by:g}: the circuit {when} (final state {values.get('final_state')})"
            )
    limit = expect.max_downstream_calls_after_trip
    if limit is not None and values.get("calls_after_trip", 0) > limit:
        failed.append(
            f"max_downstream_calls_after_trip = {limit}: {values['calls_after_trip']} downstream calls while OPEN"
        )
    limit = expect.max_probes_per_recovery
    if limit is not None and values.get("probes_per_recovery", 0) > limit:
        failed.append(
            f"max_probes_per_recovery = {limit}: {values['probes_per_recovery']} probes in one recovery"
        )
    limit = expect.min_fallbacks
    if limit is not None:
        handed = values.get("fallbacks", 0) + (0 if fallback else values.get("rejected", 0))
        if handed < limit:
            failed.append(f"min_fallbacks = {limit}: only {handed} calls were handed to the fallback")
    ratio = expect.max_store_writes_per_invocation
    if ratio is not None and values.get("store_writes_per_call", 0.0) > ratio:
        failed.append(
            f"max_store_writes_per_invocation = {ratio:g}: {values['store_writes_per_call']:g} writes per call"
        )
    return failed


# ---------------------------------------------------------------------- exploration


def scenario_seed(session_seed: int, scenario: Scenario) -> int:
    """The seed of one scenario: its ``seed`` key, else derived from the session's seed and its file name.

    Example:
        >>> from pytest_circuitbreaker.scenario_format import Scenario
        >>> scenario_seed(1, Scenario(name="x", path="x.toml", seed=7))
        7
    """
    if scenario.seed is not None:
        return scenario.seed
    return zlib.crc32(f"{session_seed}:{scenario.id}".encode())


def explore(
    scenario: Scenario, adapter: str, *, seed: int, examples: int = DEFAULT_EXAMPLES
) -> ScenarioResult:
    """Run the schedule as written, then let hypothesis try ``examples`` interleavings and jitters.

    Returns the first failing result (shrunk by hypothesis), or the schedule-as-written
    result when every example passed. Jitter: each fault's start and end move by up to
    ``scenario.jitter`` seconds, in whole ticks.

    Example:
        >>> from pytest_circuitbreaker.scenario_format import Scenario
        >>> explore(Scenario(name="idle", path="idle.toml", duration=5), "breaker", seed=0, examples=1).status
        'pass'
    """
    base = run_scenario(scenario, adapter, seed=seed)
    if base.status != "pass" or examples <= 0:
        return base
    import hypothesis
    from hypothesis import HealthCheck, Phase
    from hypothesis import strategies as st

    steps = round(scenario.jitter / scenario.tick)
    shift = st.integers(-steps, steps).map(lambda k: k * scenario.tick)
    strategy = st.builds(
        Example,
        order=st.integers(0, 2**32 - 1),
        shifts=st.tuples(*[st.tuples(shift, shift) for _ in scenario.schedule]),
    )
    seen: list[ScenarioResult] = []
    count = 0

    def fails(example: Example) -> bool:
        nonlocal count
        count += 1
        result = run_scenario(scenario, adapter, seed=seed, example=example)
        if result.status == "fail":
            seen.append(result)
            return True
        return False

    settings = hypothesis.settings(
        max_examples=examples,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
    )
    try:
        found = hypothesis.find(strategy, fails, settings=settings, random=random.Random(seed))
    except hypothesis.errors.NoSuchExample:
        base.examples_run = 1 + count
        return base
    failing = run_scenario(scenario, adapter, seed=seed, example=found)
    failing.examples_run = 1 + count
    failing.explored_failure = True
    failing.notes.append(
        f"hypothesis found this example after the schedule as written passed (seed {seed}, {count} runs incl. shrinking)"
    )
    return failing


# ---------------------------------------------------------------------- pytest collection

RESULTS: pytest.StashKey[list[ScenarioResult]] = pytest.StashKey()


def scenario_dir(config: pytest.Config) -> Path:
    """Where scenario files are collected from: ini/option ``circuitbreaker_scenarios``, else ``<rootdir>/scenarios``."""
    from pytest_circuitbreaker import options

    value = options.setting(config, "scenarios")
    path = Path(str(value)) if value else Path("scenarios")
    return path if path.is_absolute() else Path(config.rootpath, path)


def is_scenario_file(config: pytest.Config, path: Path) -> bool:
    """Whether ``path`` is a scenario file to collect: a ``.toml`` inside the scenario directory."""
    if path.suffix != ".toml":
        return False
    try:
        path.resolve().relative_to(scenario_dir(config).resolve())
    except ValueError:
        return False
    return True


def selected_adapters(config: pytest.Config) -> list[str]:
    """The adapters of ``--circuitbreaker-adapters`` (see :func:`pytest_circuitbreaker.options.adapters`)."""
    from pytest_circuitbreaker import options

    return options.adapters(config)


class ScenarioFile(pytest.File):
    """A scenario file: one :class:`ScenarioItem` per selected adapter."""

    def collect(self) -> Iterator[ScenarioItem]:
        try:
            scenario = load_scenario(self.path)
        except ScenarioError as error:
            raise self.CollectError(f"{error}\n(the scenario format: docs/scenarios.md)") from None
        for adapter in selected_adapters(self.config):
            yield ScenarioItem.from_parent(self, name=adapter, scenario=scenario, adapter=adapter)


class ScenarioItem(pytest.Item):
    """One scenario against one adapter. Adapters other than ``breaker`` xfail (not fail) on anomalies
    unless ``--circuitbreaker-adapters-strict``: the comparison is the point, and the run stays green."""

    def __init__(self, *, scenario: Scenario, adapter: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.adapter = adapter
        self.result: ScenarioResult | None = None

    def runtest(self) -> None:
        from pytest_circuitbreaker import options
        from pytest_circuitbreaker.plugin import session_seed

        config = self.config
        seed = scenario_seed(session_seed(config), self.scenario)
        examples = options.setting(config, "examples")
        count = DEFAULT_EXAMPLES if examples is None else int(str(examples))
        try:
            result = explore(self.scenario, self.adapter, seed=seed, examples=count)
        except Unsupported as why:
            result = ScenarioResult(self.scenario, self.adapter, seed, notes=[str(why)])
        except ImportError as missing:
            result = ScenarioResult(
                self.scenario,
                self.adapter,
                seed,
                notes=[f"{missing} (install the extra: pip install 'pytest-circuitbreaker[scenarios]')"],
            )
        self.result = result
        config.stash.setdefault(RESULTS, []).append(result)
        if result.status == "n/a":
            pytest.skip(f"{self.adapter} cannot run this scenario: {'; '.join(result.notes)}")
        if result.status == "fail":
            strict = options.setting(config, "adapters_strict")
            if self.adapter != DEFAULT_ADAPTER and not strict:
                pytest.xfail(
                    f"{self.adapter} (compared, not required): "
                    + ", ".join(result.anomalies + [f.split(":")[0] for f in result.expectation_failures])
                )
            raise ScenarioFailed(result)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.result.message()
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"scenario {self.scenario.name!r} against {self.adapter}"


class ScenarioFailed(AssertionError):
    """A scenario run broke an invariant or an expectation; ``result`` has everything."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.message())
        self.result = result


def collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    """The plugin's ``pytest_collect_file``: a :class:`ScenarioFile` for scenario files, else None."""
    if is_scenario_file(parent.config, file_path):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None
