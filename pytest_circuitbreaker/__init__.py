"""pytest-circuitbreaker: the pytest plugin (and, later, chaos harness) for circuit breakers.

The fixtures' types, for annotations, load on first access so that importing the
plugin stays cheap::

    from pytest_circuitbreaker import CircuitClock, Downstream, TransitionLog

    def test_trips(downstream: Downstream, circuit_clock: CircuitClock,
                   circuit_transitions: TransitionLog) -> None: ...
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from breaker.persistence.base import CircuitStore
    from pytest_circuitbreaker.clock import CircuitClock
    from pytest_circuitbreaker.downstream import Call, Downstream, DownstreamFactory
    from pytest_circuitbreaker.faults import FaultyStore, StoreFaults
    from pytest_circuitbreaker.fleet import Fleet, FleetMetrics
    from pytest_circuitbreaker.journal import RecordedTransition
    from pytest_circuitbreaker.transitions import TransitionLog, record_transition

__all__ = [
    "Call",
    "CircuitClock",
    "CircuitStore",
    "Downstream",
    "DownstreamFactory",
    "FaultyStore",
    "Fleet",
    "FleetMetrics",
    "RecordedTransition",
    "StoreFaults",
    "TransitionLog",
    "record_transition",
]

_LAZY = {
    "Call": "pytest_circuitbreaker.downstream",
    "CircuitClock": "pytest_circuitbreaker.clock",
    "CircuitStore": "breaker.persistence.base",
    "Downstream": "pytest_circuitbreaker.downstream",
    "DownstreamFactory": "pytest_circuitbreaker.downstream",
    "FaultyStore": "pytest_circuitbreaker.faults",
    "Fleet": "pytest_circuitbreaker.fleet",
    "FleetMetrics": "pytest_circuitbreaker.fleet",
    "RecordedTransition": "pytest_circuitbreaker.journal",
    "StoreFaults": "pytest_circuitbreaker.faults",
    "TransitionLog": "pytest_circuitbreaker.transitions",
    "record_transition": "pytest_circuitbreaker.transitions",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_circuitbreaker' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
