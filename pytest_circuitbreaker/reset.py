"""Between tests: every breaker starts clean, without the user writing an autouse fixture.

Breakers defined at import time keep their state in process-wide places: the default
environment's local views, the embedded default store, the default clock's override,
and (for Powertools' breaker) module-level counters. :func:`reset_breakers` clears
them all. It looks modules up in ``sys.modules`` and imports nothing: what was never
imported holds no state.

Example:
    >>> reset_breakers()
"""

from __future__ import annotations

import sys

__all__ = ["reset_breakers"]

_POWERTOOLS_COUNTERS = ("_LOCAL_FAILURES", "_LOCAL_SUCCESSES", "_LAST_OBSERVED_STATE")


def reset_breakers(*, full: bool = True) -> None:
    """Cold-start the default environment and empty the embedded default store.

    With ``full`` (after a test) also drop any default-store override and restore the
    default clock (a test that forgot to undo ``use_default_store`` or
    ``SYSTEM_CLOCK.use`` does not leak it into the next).

    Example:
        >>> from breaker import SYSTEM_CLOCK, FakeClock
        >>> _ = SYSTEM_CLOCK.use(FakeClock(start=0))
        >>> reset_breakers(); SYSTEM_CLOCK.realtime
        True
    """
    modules = sys.modules
    environment = modules.get("breaker.environment")
    if environment is not None:
        environment.DEFAULT_ENVIRONMENT.reset()
    memory = modules.get("breaker.persistence.memory")
    if memory is not None:
        if full:
            memory.use_default_store(None)
        # The embedded store itself (default_store() would return an override instead).
        embedded = getattr(memory, "_default", None)
        if embedded is not None:
            embedded.clear()
    clock = modules.get("breaker.clock")
    if full and clock is not None:
        clock.SYSTEM_CLOCK.restore()
    powertools = modules.get("aws_lambda_powertools.utilities.circuit_breaker.base")
    if powertools is not None:
        for counter in _POWERTOOLS_COUNTERS:
            values = getattr(powertools, counter, None)
            if isinstance(values, dict):
                values.clear()
    ours = modules.get("pytest_circuitbreaker.powertools")
    if ours is not None:
        ours.clear_all_stores()
