"""pytest-circuitbreaker: the pytest plugin and chaos harness for circuit breakers."""

from __future__ import annotations

__all__: list[str] = []
