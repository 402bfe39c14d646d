"""A circuit breaker for fleets of short-lived workers, with Powertools 3.37's public names.

Example:
    >>> from breaker import circuit_breaker, CircuitBreakerConfig
    >>> @circuit_breaker(name="inventory", config=CircuitBreakerConfig(failure_threshold=3))
    ... def stock(sku: str) -> int: return 7
    >>> stock("A-1")
    7
"""

from __future__ import annotations

from breaker.circuit import CircuitBreaker, circuit_breaker
from breaker.clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock
from breaker.config import CircuitBreakerConfig
from breaker.environment import DEFAULT_ENVIRONMENT, Environment
from breaker.errors import (
    CircuitBreakerConfigError,
    CircuitBreakerError,
    CircuitBreakerOpenError,
    CircuitBreakerPersistenceError,
)
from breaker.states import CircuitInfo, CircuitState, CircuitTransition

__all__ = [
    "DEFAULT_ENVIRONMENT",
    "SYSTEM_CLOCK",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitBreakerConfigError",
    "CircuitBreakerError",
    "CircuitBreakerOpenError",
    "CircuitBreakerPersistenceError",
    "CircuitInfo",
    "CircuitState",
    "CircuitTransition",
    "Clock",
    "Environment",
    "FakeClock",
    "SystemClock",
    "circuit_breaker",
]

__version__ = "0.1.0"
