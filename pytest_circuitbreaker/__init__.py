"""pytest-circuitbreaker: the pytest plugin and chaos harness for circuit breakers.

The fixtures' types, for annotations, and the harness's names load on first access so
that importing the plugin stays cheap (hypothesis loads only with the harness)::

    from pytest_circuitbreaker import CircuitClock, Downstream, TransitionLog

    def test_trips(downstream: Downstream, circuit_clock: CircuitClock,
                   circuit_transitions: TransitionLog) -> None: ...

    from pytest_circuitbreaker import BreakerLibraryAdapter, make_test_case

    TestMyBreaker = make_test_case(BreakerLibraryAdapter())  # docs/harness.md
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from breaker.persistence.base import CircuitStore
    from pytest_circuitbreaker.adapters import (
        BreakerAdapter,
        BreakerLibraryAdapter,
        PowertoolsAdapter,
        PybreakerAdapter,
    )
    from pytest_circuitbreaker.checkers import Verdict, check
    from pytest_circuitbreaker.clock import CircuitClock
    from pytest_circuitbreaker.downstream import Call, Downstream, DownstreamFactory
    from pytest_circuitbreaker.faults import FaultyStore, StoreFaults
    from pytest_circuitbreaker.fleet import Fleet, FleetMetrics
    from pytest_circuitbreaker.history import History, Op
    from pytest_circuitbreaker.journal import RecordedTransition
    from pytest_circuitbreaker.stateful import Simulation, make_test_case, run_schedule
    from pytest_circuitbreaker.transitions import TransitionLog, record_transition

__all__ = [
    "BreakerAdapter",
    "BreakerLibraryAdapter",
    "Call",
    "CircuitClock",
    "CircuitStore",
    "Downstream",
    "DownstreamFactory",
    "FaultyStore",
    "Fleet",
    "FleetMetrics",
    "History",
    "Op",
    "PowertoolsAdapter",
    "PybreakerAdapter",
    "RecordedTransition",
    "Simulation",
    "StoreFaults",
    "TransitionLog",
    "Verdict",
    "check",
    "make_test_case",
    "record_transition",
    "run_schedule",
]

_LAZY = {
    "BreakerAdapter": "pytest_circuitbreaker.adapters",
    "BreakerLibraryAdapter": "pytest_circuitbreaker.adapters",
    "Call": "pytest_circuitbreaker.downstream",
    "CircuitClock": "pytest_circuitbreaker.clock",
    "CircuitStore": "breaker.persistence.base",
    "Downstream": "pytest_circuitbreaker.downstream",
    "DownstreamFactory": "pytest_circuitbreaker.downstream",
    "FaultyStore": "pytest_circuitbreaker.faults",
    "Fleet": "pytest_circuitbreaker.fleet",
    "FleetMetrics": "pytest_circuitbreaker.fleet",
    "History": "pytest_circuitbreaker.history",
    "Op": "pytest_circuitbreaker.history",
    "PowertoolsAdapter": "pytest_circuitbreaker.adapters",
    "PybreakerAdapter": "pytest_circuitbreaker.adapters",
    "RecordedTransition": "pytest_circuitbreaker.journal",
    "Simulation": "pytest_circuitbreaker.stateful",
    "StoreFaults": "pytest_circuitbreaker.faults",
    "TransitionLog": "pytest_circuitbreaker.transitions",
    "Verdict": "pytest_circuitbreaker.checkers",
    "check": "pytest_circuitbreaker.checkers",
    "make_test_case": "pytest_circuitbreaker.stateful",
    "record_transition": "pytest_circuitbreaker.transitions",
    "run_schedule": "pytest_circuitbreaker.stateful",
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
