"""Hypothesis strategies for testing breakers: fault schedules, breaker configs, fleets, step lists.

* :func:`fault_schedules`: lists of :class:`ScheduledFault` ``(start, duration, kind)``
  on the fake clock; they shrink toward fewer, shorter, earlier faults.
* :func:`breaker_configs`: ``CircuitBreakerConfig`` objects with small numbers (so a
  short run reaches every state); ``whole_seconds=True`` for breakers that take ints.
* :func:`fleets`: fleet sizes (how many environments), shrinking toward one.
* :func:`steps`: lists of harness steps (``"call(env=0)"``...) for
  :func:`pytest_circuitbreaker.stateful.run_schedule`.

:func:`schedule_steps` turns a fault schedule into steps with steady traffic, so a
``@given(fault_schedules())`` test runs it through ``run_schedule``.

Example:
    >>> from hypothesis import given
    >>> from pytest_circuitbreaker.adapters import BreakerLibraryAdapter
    >>> from pytest_circuitbreaker.stateful import run_schedule
    >>> @given(fault_schedules(max_faults=2, horizon=20))
    ... def test_survives(faults):
    ...     _, verdict = run_schedule(BreakerLibraryAdapter(), schedule_steps(faults, environments=2, horizon=30))
    ...     assert verdict.valid
"""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import strategies as st

from breaker.config import CircuitBreakerConfig
from pytest_circuitbreaker.adapters import STORE_FAULT_KINDS

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "FAULT_KINDS",
    "ScheduledFault",
    "breaker_configs",
    "fault_schedules",
    "fleets",
    "schedule_steps",
    "steps",
]

#: What a scheduled fault can be: a downstream outage, or one of the store faults.
FAULT_KINDS = ("downstream_outage", *(f"store_{kind}" for kind in STORE_FAULT_KINDS))


class ScheduledFault(NamedTuple):
    """One fault of a schedule: from ``start`` for ``duration`` seconds (fake clock), of ``kind``.

    Example:
        >>> ScheduledFault(5, 10, "downstream_outage").end
        15
    """

    start: int
    duration: int
    kind: str

    @property
    def end(self) -> int:
        """When the fault ends."""
        return self.start + self.duration


def fault_schedules(
    *,
    kinds: Sequence[str] = FAULT_KINDS,
    max_faults: int = 4,
    horizon: int = 60,
    max_duration: int = 30,
) -> st.SearchStrategy[list[ScheduledFault]]:
    """Lists of faults sorted by start; they shrink toward fewer, shorter and earlier faults.

    Example:
        >>> from hypothesis import find
        >>> find(fault_schedules(), lambda faults: len(faults) >= 2)
        [ScheduledFault(start=0, duration=1, kind='downstream_outage'), ScheduledFault(start=0, duration=1, kind='downstream_outage')]
    """
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty selection of {FAULT_KINDS!r}, got {list(kinds)!r}.")
    if max_faults < 0 or horizon < 0 or max_duration < 1:
        raise ValueError(
            f"need max_faults >= 0, horizon >= 0 and max_duration >= 1; got {max_faults}, {horizon}, {max_duration}."
        )
    fault = st.builds(
        ScheduledFault,
        st.integers(0, horizon),
        st.integers(1, max_duration),
        st.sampled_from(list(kinds)),
    )
    return st.lists(fault, max_size=max_faults).map(lambda faults: sorted(faults))


def breaker_configs(
    *,
    whole_seconds: bool = False,
    max_threshold: int = 4,
) -> st.SearchStrategy[CircuitBreakerConfig]:
    """CircuitBreakerConfigs with small thresholds and windows (shrinking toward 1 failure, short windows).

    ``whole_seconds=True`` keeps every duration an int and the probe lease at
    ``recovery_timeout`` (for Powertools, whose fields are ints and whose lease is fixed).

    Example:
        >>> from hypothesis import find
        >>> find(breaker_configs(), lambda config: config.recovery_timeout > 5).recovery_timeout
        10
    """
    if max_threshold < 1:
        raise ValueError(f"max_threshold must be >= 1, got {max_threshold!r}.")
    windows: list[float] = [1, 2, 5, 10, 30] if whole_seconds else [1, 2, 2.5, 5, 10, 30]
    ages: list[float] = [0, 1, 3, 5, 10] if whole_seconds else [0, 0.5, 1, 3, 5, 10]
    leases: st.SearchStrategy[float | None] = (
        st.none() if whole_seconds else st.one_of(st.none(), st.sampled_from([1.0, 3.0, 15.0]))
    )
    return st.builds(
        CircuitBreakerConfig,
        failure_threshold=st.integers(1, max_threshold),
        recovery_timeout=st.sampled_from(windows),
        success_threshold=st.integers(1, max(1, max_threshold - 1)),
        local_cache_max_age=st.sampled_from(ages),
        probe_lease=leases,
        store_backoff=st.sampled_from([5, 0, 1]),
    )


def fleets(min_size: int = 1, max_size: int = 5) -> st.SearchStrategy[int]:
    """How many environments a simulated fleet has (shrinks toward ``min_size``).

    Example:
        >>> from hypothesis import find
        >>> find(fleets(max_size=3), lambda size: size > 1)
        2
    """
    if not 1 <= min_size <= max_size:
        raise ValueError(f"need 1 <= min_size <= max_size, got min_size={min_size!r}, max_size={max_size!r}.")
    return st.integers(min_size, max_size)


def steps(
    environments: int = 3,
    *,
    max_steps: int = 40,
    store_faults: bool = True,
) -> st.SearchStrategy[list[str]]:
    """Lists of harness steps as code (``"call(env=1)"``, ``"advance(seconds=5)"``...) for ``run_schedule``.

    Example:
        >>> from hypothesis import find
        >>> find(steps(2), lambda found: any(step.startswith("crash") for step in found))
        ['crash(env=0)']
    """
    if environments < 1:
        raise ValueError(f"environments must be >= 1, got {environments!r}.")
    env = st.integers(0, environments - 1)
    choices = [
        env.map(lambda i: f"call(env={i})"),
        env.map(lambda i: f"call(env={i}, fail=True)"),
        st.sampled_from([1, 2, 5, 11, 31]).map(lambda s: f"advance(seconds={s})"),
        st.just("outage()"),
        st.just("recover()"),
        env.map(lambda i: f"slow_call(env={i})"),
        env.map(lambda i: f"finish(env={i})"),
        env.map(lambda i: f"cold_start(env={i})"),
        env.map(lambda i: f"crash(env={i})"),
    ]
    if store_faults:
        choices.append(st.sampled_from(STORE_FAULT_KINDS).map(lambda kind: f"store_fault(kind={kind!r})"))
        choices.append(st.just("store_recover()"))
    return st.lists(st.one_of(*choices), max_size=max_steps)


def schedule_steps(
    faults: Sequence[ScheduledFault],
    *,
    environments: int = 3,
    horizon: int = 60,
    tick: int = 1,
) -> list[str]:
    """Steps running ``faults`` under steady traffic: each ``tick`` every environment calls once.

    A store fault replaces any other store fault in effect (the store has one mode at a
    time); when it ends, the latest one still in effect comes back.

    Example:
        >>> schedule_steps([ScheduledFault(1, 2, "downstream_outage")], environments=1, horizon=4)
        ['call(env=0)', 'advance(seconds=1)', 'outage()', 'call(env=0)', 'advance(seconds=1)', 'call(env=0)', 'advance(seconds=1)', 'recover()', 'call(env=0)', 'advance(seconds=1)']
    """
    if tick < 1 or environments < 1:
        raise ValueError(
            f"need tick >= 1 and environments >= 1, got tick={tick!r}, environments={environments!r}."
        )
    for fault in faults:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; allowed: {FAULT_KINDS!r}.")
    result: list[str] = []
    downstream_down = False
    store_mode: str | None = None
    for now in range(0, horizon, tick):
        active = [fault for fault in faults if fault.start <= now < fault.end]
        outage = any(fault.kind == "downstream_outage" for fault in active)
        if outage != downstream_down:
            result.append("outage()" if outage else "recover()")
            downstream_down = outage
        stores = [fault for fault in active if fault.kind.startswith("store_")]
        mode = stores[-1].kind.removeprefix("store_") if stores else None
        if mode != store_mode:
            result.append(f"store_fault(kind={mode!r})" if mode is not None else "store_recover()")
            store_mode = mode
        result.extend(f"call(env={env})" for env in range(environments))
        result.append(f"advance(seconds={tick})")
    return result
