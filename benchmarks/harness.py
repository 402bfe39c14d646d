"""Timing: timeit-style loops, calibrated per contender, interleaved in rounds.

Every contender of a section is timed once per round, in an order rotated each round,
so slow drifts and bursts of machine noise hit all contenders alike. Each sample runs
for about the same wall time (the loop count is calibrated per contender), with the
garbage collector disabled. The summary of a contender is the minimum of its rounds
(the least-disturbed estimate, as ``timeit`` recommends) and, for judging the spread,
the median.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import timeit
from collections.abc import Awaitable, Callable
from itertools import repeat
from time import perf_counter
from typing import Any

#: Runs the measured loop ``number`` times and returns the elapsed seconds.
Timer = Callable[[int], float]

#: The statement of each kind of sync loop; ``g`` is the contender's callable (a local).
CALL = "g(1)"
CALL_TRUE = "g(True)"
CALL_CAUGHT = "try:\n    g(True)\nexcept E:\n    pass"
CALL_NOARGS = "g()"


def sync_timer(fn: Callable[..., Any], stmt: str) -> Timer:
    """A timeit loop of ``stmt`` with ``g`` bound to ``fn`` (timeit disables gc while timing)."""
    timer = timeit.Timer(stmt=stmt, setup="g = _fn; E = Exception", globals={"_fn": fn})
    return timer.timeit


async def _await_loop(g: Callable[[int], Awaitable[Any]], it: Any) -> float:
    t0 = perf_counter()
    for _ in it:
        await g(1)
    return perf_counter() - t0


def async_timer(fn: Callable[[int], Awaitable[Any]], loop: asyncio.AbstractEventLoop) -> Timer:
    """A loop of ``await fn(1)`` run inside one coroutine on ``loop``, gc disabled."""

    def run(number: int) -> float:
        enabled = gc.isenabled()
        gc.disable()
        try:
            return loop.run_until_complete(_await_loop(fn, repeat(None, number)))
        finally:
            if enabled:
                gc.enable()

    return run


def calibrate(timer: Timer, target: float) -> int:
    """A loop count for which ``timer`` runs for about ``target`` seconds."""
    number = 1
    while True:
        elapsed = timer(number)
        if elapsed >= target / 5 or number >= 10_000_000:
            break
        number *= 10 if elapsed < target / 100 else 2
    return max(1, round(number * target / max(elapsed, 1e-9)))


class Measurement:
    """Per-call seconds of one contender, one value per round."""

    __slots__ = ("number", "samples")

    def __init__(self, number: int) -> None:
        self.number = number
        self.samples: list[float] = []

    @property
    def best(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def interleave(timers: dict[str, Timer], *, rounds: int, target: float) -> dict[str, Measurement]:
    """Time every contender once per round, rotating the order; per-call seconds."""
    results = {name: Measurement(calibrate(timer, target)) for name, timer in timers.items()}
    names = list(timers)
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            measurement = results[name]
            measurement.samples.append(timers[name](measurement.number) / measurement.number)
    return results
