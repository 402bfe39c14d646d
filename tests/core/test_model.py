"""Hypothesis state machines: the breaker against a reference model of DESIGN §3.

``SingleEnvironment`` compares one environment (local_cache_max_age=0) call by call with
a plain-Python model of the state machine: outcome of each call, retry_after, hooks,
and the stored CircuitInfo.

``Fleet`` runs several environments on one store (with caches, nested calls standing in
for overlapping invocations) and checks the invariants of DESIGN §4 instead of exact
states: legal stored transitions, hooks exactly once per stored transition, at most one
probe in flight, every invocation ending in exactly one way, bounded staleness, and
liveness once the downstream has recovered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitInfo,
    CircuitState,
    Environment,
    FakeClock,
    events,
)
from breaker.persistence import CircuitRecord

from .support import CLOSED, HALF_OPEN, OPEN, START, Hooks, RecordingStore

OUTCOMES = ["ok", "fail", "ignored"]
ADVANCES = [0, 0.25, 1, 2.5, 5, 9.75, 10, 12]
COMMANDS = ["force_open", "force_closed", "reset"]


class Counted(Exception):
    """A downstream failure that counts."""


class Ignored(Exception):
    """A downstream failure listed in ignored_exceptions."""


def run_outcome(outcome: str) -> str:
    if outcome == "fail":
        raise Counted("down")
    if outcome == "ignored":
        raise Ignored("not a failure")
    return "ok"


# ---------------------------------------------------------------- the reference model


@dataclass
class Model:
    """DESIGN §3 for one environment that reads the store on every call."""

    failure_threshold: int
    recovery_timeout: float
    success_threshold: int
    state: CircuitState = CLOSED
    opened_at: float | None = None
    failure_count: int = 0
    pinned: bool = False
    failures: int = 0
    successes: int = 0
    transitions: list[tuple[CircuitState, CircuitState, float | None]] = field(default_factory=list)

    def _move(self, to: CircuitState, opened_at: float | None) -> None:
        self.transitions.append((self.state, to, opened_at))
        self.state, self.opened_at = to, opened_at

    def call(self, outcome: str, now: float) -> tuple[str, float | None]:
        """('ran', None) or ('rejected', retry_after); updates the model."""
        if self.state is OPEN:
            if self.pinned:
                return "rejected", None
            assert self.opened_at is not None
            due = self.opened_at + self.recovery_timeout
            if now < due:
                return "rejected", due - now
            self._move(HALF_OPEN, self.opened_at)  # elected: this call is the probe
            self.failure_count = 0
            self.successes = 0
        if self.state is HALF_OPEN:
            if outcome == "ok":
                self.successes += 1
                if self.successes >= self.success_threshold:
                    self._move(CLOSED, None)
                    self.successes = self.failures = self.failure_count = 0
            elif outcome == "fail":
                self._move(OPEN, now)
                self.successes = self.failure_count = 0
            return "ran", None
        # CLOSED
        if outcome == "ok":
            self.failures = 0
        elif outcome == "fail":
            self.failures += 1
            if not self.pinned and self.failures >= self.failure_threshold:
                self.failure_count, self.failures = self.failures, 0
                self._move(OPEN, now)
        return "ran", None

    def command(self, kind: str, now: float) -> None:
        target = OPEN if kind == "force_open" else CLOSED
        if self.state is not target:
            self._move(target, now if target is OPEN else None)
        self.opened_at = now if target is OPEN else None
        self.pinned = kind != "reset"
        self.failure_count = self.failures = self.successes = 0

    def info(self, name: str) -> CircuitInfo:
        return CircuitInfo(name, self.state, self.failure_count, self.opened_at)


# ---------------------------------------------------------------- one environment, exact


class SingleEnvironment(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(start=START)
        self.store = RecordingStore(clock=self.clock)
        self.hooks = Hooks()
        self.env = Environment("only")
        self.downstream_calls = 0
        self.fallbacks: list[CircuitInfo] = []

    @initialize(
        failure_threshold=st.integers(1, 3),
        recovery_timeout=st.sampled_from([0.5, 5, 10]),
        success_threshold=st.integers(1, 3),
    )
    def configure(self, failure_threshold: int, recovery_timeout: float, success_threshold: int) -> None:
        config = CircuitBreakerConfig(
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout,
            success_threshold=success_threshold,
            ignored_exceptions=Ignored,
            local_cache_max_age=0,
        )
        self.model = Model(failure_threshold, recovery_timeout, success_threshold)

        def fallback(*args: object, circuit: CircuitInfo) -> str:
            self.fallbacks.append(circuit)
            return "fallback"

        # Two breakers on the same circuit and environment: they share one local view.
        self.raising = CircuitBreaker(
            "db", self.store, on_transition=self.hooks, config=config, clock=self.clock, environment=self.env
        )
        self.falling_back = CircuitBreaker(
            "db",
            self.store,
            on_circuit_open=fallback,
            on_transition=self.hooks,
            config=config,
            clock=self.clock,
            environment=self.env,
        )

    def _downstream(self, outcome: str) -> str:
        self.downstream_calls += 1
        return run_outcome(outcome)

    @rule(outcome=st.sampled_from(OUTCOMES), with_fallback=st.booleans())
    def call(self, outcome: str, with_fallback: bool) -> None:
        expected, retry_after = self.model.call(outcome, self.clock.now())
        before_calls, before_fallbacks = self.downstream_calls, len(self.fallbacks)
        cb = self.falling_back if with_fallback else self.raising
        open_error: CircuitBreakerOpenError | None = None
        try:
            result = cb.call(self._downstream, outcome)
        except (Counted, Ignored):
            got = "ran"
        except CircuitBreakerOpenError as exc:
            got, open_error = "rejected", exc
        else:
            got = "rejected" if result == "fallback" else "ran"
            if got == "rejected":
                assert self.fallbacks[-1] == self.model.info("db")
        assert got == expected
        if open_error is not None:
            assert not with_fallback
            assert open_error.circuit == self.model.info("db")
            if retry_after is None:
                assert open_error.retry_after is None
            else:
                assert open_error.retry_after == pytest.approx(retry_after)
        ran = self.downstream_calls - before_calls
        fell_back = len(self.fallbacks) - before_fallbacks
        assert (ran, fell_back) == ((1, 0) if got == "ran" else (0, 1 if with_fallback else 0))

    @rule(seconds=st.sampled_from(ADVANCES))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(kind=st.sampled_from(COMMANDS))
    def command(self, kind: str) -> None:
        self.model.command(kind, self.clock.now())
        info = getattr(self.raising, kind)()
        assert info == self.model.info("db")

    @invariant()
    def hooks_match_the_model(self) -> None:
        assert [(t.from_state, t.to_state, t.opened_at) for t in self.hooks.seen] == self.model.transitions

    @invariant()
    def stored_record_matches_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        record = self.store.read("db")
        if record is None:
            assert (self.model.state, self.model.transitions) == (CLOSED, [])
            return
        assert record.to_circuit_info() == self.model.info("db")
        assert record.pinned == self.model.pinned
        if record.state is HALF_OPEN:
            assert record.half_open_owner == "only"

    @invariant()
    def hooks_fire_once_per_stored_state_change(self) -> None:
        assert self.hooks.pairs == self.store.state_changes()


TestSingleEnvironment = SingleEnvironment.TestCase
TestSingleEnvironment.settings = settings(
    max_examples=250, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# ---------------------------------------------------------------- a fleet, invariants


LEGAL = {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (HALF_OPEN, OPEN)}


class TimedStore(RecordingStore):
    """Also remembers when (fake wall time) each accepted write happened, and if it was manual."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.fake_clock = clock
        self.manual = False
        self.timeline: list[tuple[float, CircuitState, bool]] = []

    def write(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        stored = super().write(record, expected)
        if stored:
            self.timeline.append((self.fake_clock.now(), record.state, self.manual))
        return stored

    def closed_at_some_point(self, lo: float, hi: float) -> bool:
        """Whether the stored state was CLOSED at any moment of [lo, hi]."""
        state = CLOSED  # no record: closed
        seen = []
        for when, new_state, _manual in self.timeline:
            if when < lo:
                state = new_state
            elif when <= hi:
                seen.append(new_state)
        return CLOSED in [state, *seen]


class Fleet(RuleBasedStateMachine):
    ENVIRONMENTS = 3

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(start=START)
        self.store = TimedStore(self.clock)
        self.hooks = Hooks()
        self.envs = [Environment(f"env-{i}") for i in range(self.ENVIRONMENTS)]
        self.pending_probe = dict.fromkeys((e.id for e in self.envs), 0)
        self.probes_in_flight = 0
        self.max_probes_in_flight = 0
        self.problems: list[str] = []
        self.unsubscribe = events.subscribe(self._on_event)

    def _on_event(self, event: events.Event) -> None:
        if event.name == "fleet" and event.kind == events.PROBE_STARTED:
            self.pending_probe[event.environment] += 1

    @initialize(max_age=st.sampled_from([0, 1, 5]), with_fallback=st.booleans())
    def configure(self, max_age: float, with_fallback: bool) -> None:
        self.max_age = max_age
        self.config = CircuitBreakerConfig(
            failure_threshold=2,
            recovery_timeout=10,
            success_threshold=2,
            ignored_exceptions=Ignored,
            local_cache_max_age=max_age,
            probe_lease=5,
        )
        self.fallen_back: list[object] = []

        def fallback(token: object, circuit: CircuitInfo) -> str:
            self.fallen_back.append(token)
            return "fallback"

        self.breakers = [
            CircuitBreaker(
                "fleet",
                self.store,
                on_circuit_open=fallback if with_fallback else None,
                on_transition=self.hooks,
                config=self.config,
                clock=self.clock,
                environment=env,
            )
            for env in self.envs
        ]

    def _invoke(self, index: int, outcome: str, inner: tuple[int, str] | None) -> None:
        """One invocation in environment ``index``; ``inner`` runs while its downstream is running."""
        env_id = self.envs[index].id
        ran = []

        token = object()

        def downstream(token: object) -> str:
            ran.append(True)
            probe = self.pending_probe[env_id] > 0
            if probe:
                self.pending_probe[env_id] -= 1
                self.probes_in_flight += 1
                self.max_probes_in_flight = max(self.max_probes_in_flight, self.probes_in_flight)
            else:
                now = self.clock.now()
                if not self.store.closed_at_some_point(now - self.max_age, now):
                    self.problems.append(f"{env_id} ran the downstream at {now} with a stale view")
            try:
                if inner is not None:
                    self._invoke(inner[0], inner[1], None)
                return run_outcome(outcome)
            finally:
                if probe:
                    self.probes_in_flight -= 1

        raised_open = False
        try:
            self.breakers[index].call(downstream, token)
        except (Counted, Ignored):
            assert ran, "the downstream's exception escaped without the downstream running"
        except CircuitBreakerOpenError:
            raised_open = True
        endings = [bool(ran), token in self.fallen_back, raised_open]
        assert sum(endings) == 1, endings
        assert self.pending_probe[env_id] == 0, "a probe was admitted but did not run"

    @precondition(lambda self: hasattr(self, "breakers"))
    @rule(
        index=st.integers(0, ENVIRONMENTS - 1),
        outcome=st.sampled_from(OUTCOMES),
        inner=st.none() | st.tuples(st.integers(0, ENVIRONMENTS - 1), st.sampled_from(OUTCOMES)),
    )
    def call(self, index: int, outcome: str, inner: tuple[int, str] | None) -> None:
        self._invoke(index, outcome, inner)

    @rule(seconds=st.sampled_from(ADVANCES))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: hasattr(self, "breakers"))
    @rule(index=st.integers(0, ENVIRONMENTS - 1), kind=st.sampled_from(COMMANDS))
    def command(self, index: int, kind: str) -> None:
        self.store.manual = True
        try:
            info = getattr(self.breakers[index], kind)()
        finally:
            self.store.manual = False
        assert info.state is (OPEN if kind == "force_open" else CLOSED)

    @invariant()
    def automatic_writes_follow_the_legal_paths(self) -> None:
        for (previous, new), (when, _, manual) in zip(self.store.history, self.store.timeline, strict=True):
            if manual:
                continue  # force_open / force_closed / reset may go anywhere
            before = CLOSED if previous is None else previous.state
            if before is not new.state:
                assert (before, new.state) in LEGAL, (before, new.state)
            else:
                # The only automatic same-state write: a probe lease taken over or renewed,
                # and only once it has expired.
                assert previous is not None, new
                assert new.state is HALF_OPEN, (previous, new)
                assert previous.probe_lease_expiry is not None
                assert when >= previous.probe_lease_expiry, (when, previous)
                assert new.probe_lease_expiry is not None
                assert new.probe_lease_expiry > when, (when, new)

    @invariant()
    def hooks_fire_exactly_once_per_stored_transition(self) -> None:
        assert self.hooks.pairs == self.store.state_changes()
        changed = [
            new.opened_at
            for previous, new in self.store.history
            if (CLOSED if previous is None else previous.state) is not new.state
        ]
        assert [t.opened_at for t in self.hooks.seen] == changed

    @invariant()
    def at_most_one_probe_in_flight(self) -> None:
        assert self.max_probes_in_flight <= 1

    @invariant()
    def open_means_shut(self) -> None:
        assert self.problems == []

    def teardown(self) -> None:
        try:
            self._check_liveness()
        finally:
            self.unsubscribe()

    def _check_liveness(self) -> None:
        if not hasattr(self, "breakers"):
            return
        record = self.store.read("fleet")
        if record is not None and record.pinned and record.state is OPEN:
            return  # forced open: stays open by design
        # Liveness: the downstream has recovered and traffic continues in every environment.
        bound = self.config.recovery_timeout + self.config.probe_lease + self.max_age + 1
        waited = 0.0
        while waited <= bound:
            for index in range(self.ENVIRONMENTS):
                self._invoke(index, "ok", None)
            record = self.store.read("fleet")
            if record is None or record.state is CLOSED:
                break
            self.clock.advance(0.5)
            waited += 0.5
        record = self.store.read("fleet")
        assert record is None or record.state is CLOSED, f"not closed {bound}s after recovery: {record!r}"
        assert self.problems == []


TestFleet = Fleet.TestCase
TestFleet.settings = settings(
    max_examples=250, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
