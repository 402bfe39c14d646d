"""The floor: the smallest circuit breaker a careful engineer would write by hand.

A consecutive-failure counter, an open-until deadline checked on every call with one
``monotonic()`` read, ``try``/``except`` around the call, and a counter reset on success.
No shared store, no half-open bookkeeping (once the deadline passes calls flow again and
the counter starts from zero), no hooks. ``monotonic`` is imported into the module
namespace (one global lookup per call), which is the cheapest way to read the clock and
so the most demanding floor for the library to match.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from time import monotonic
from typing import Any


class FloorOpenError(Exception):
    """Raised by a rejected call when no fallback is given."""


class MinimalBreaker:
    """The hand-written floor; ``fallback`` receives the call's own arguments."""

    __slots__ = ("failure_threshold", "failures", "fallback", "open_until", "recovery_timeout")

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 30.0,
        fallback: Callable[..., Any] | None = None,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.fallback = fallback
        self.failures = 0
        self.open_until = float("-inf")

    def _failed(self) -> None:
        self.failures += 1
        if self.failures >= self.failure_threshold:
            self.failures = 0
            self.open_until = monotonic() + self.recovery_timeout

    def _reject(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self.fallback is not None:
            return self.fallback(*args, **kwargs)
        raise FloorOpenError("circuit open")

    @property
    def is_open(self) -> bool:
        return self.open_until > monotonic()

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        breaker = self

        @wraps(fn)
        def protected(*args: Any, **kwargs: Any) -> Any:
            if breaker.open_until > monotonic():
                return breaker._reject(args, kwargs)
            try:
                result = fn(*args, **kwargs)
            except Exception:
                breaker._failed()
                raise
            breaker.failures = 0
            return result

        return protected

    def wrap_async(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """The same breaker around an ``async def`` function."""
        breaker = self

        @wraps(fn)
        async def protected(*args: Any, **kwargs: Any) -> Any:
            if breaker.open_until > monotonic():
                return breaker._reject(args, kwargs)
            try:
                result = await fn(*args, **kwargs)
            except Exception:
                breaker._failed()
                raise
            breaker.failures = 0
            return result

        return protected
