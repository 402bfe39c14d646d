"""Extension points of pytest-circuitbreaker, added to pytest with ``pytest_addhooks``.

Implement them in a ``conftest.py`` or a plugin, as any pytest hook.
"""

from __future__ import annotations

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from breaker.events import Event
    from breaker.persistence.base import CircuitStore
    from pytest_circuitbreaker.journal import RecordedTransition


@pytest.hookspec(firstresult=True)
def pytest_circuitbreaker_make_store(kind: str, request: pytest.FixtureRequest) -> CircuitStore | None:
    """Build the store ``circuit_store`` gives for store kind ``kind``; None leaves it to others.

    Called before the built-in kinds (memory, dynamodb, redis) are tried, so a plugin can
    add a kind or replace one. The first non-None result is used; clean up with
    ``request.addfinalizer``. The kind comes from ``@pytest.mark.circuit_store(KIND)``
    or ``--circuitbreaker-store=KIND``.

    Example (conftest.py)::

        from breaker.persistence import InMemoryPersistence

        class CountingStore(InMemoryPersistence):
            kind = "counting"
            writes = 0

            def write(self, record, expected):
                self.writes += 1
                return super().write(record, expected)

        def pytest_circuitbreaker_make_store(kind, request):
            if kind == "counting":
                return CountingStore()
            return None
    """


def pytest_circuitbreaker_transition(
    transition: RecordedTransition, event: Event | None, item: pytest.Item
) -> None:
    """Called for every circuit transition recorded during test ``item``.

    ``transition`` is the RecordedTransition (name, from_state, to_state, opened_at,
    environment, local); ``event`` the ``breaker.events.Event`` it came from, or None
    for a transition reported through ``circuit_transitions.hook`` (Powertools).
    Exceptions raised here are logged (logger ``breaker``) and ignored.

    Example (conftest.py)::

        def pytest_circuitbreaker_transition(transition, event, item):
            if transition.to_state == "OPEN":
                item.user_properties.append(("tripped", transition.name))
    """
