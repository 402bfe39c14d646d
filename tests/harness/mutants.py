"""Deliberately broken breakers: each a CircuitBreaker subclass that overrides one decision.

The harness must flag each with the anomaly type in ``EXPECTED`` (and pass the real
breaker on the same runs): see test_mutants.py. They override private decision
generators of ``breaker.circuit`` (``_admit``, ``_settle``, ``_transit``...), the
smallest change that breaks one rule.
"""

from __future__ import annotations

from typing import Any

from breaker import CircuitBreaker, CircuitState
from breaker.circuit import _PROBE, _READ, _REJECT, _RUN, _Fault
from breaker.persistence import CircuitRecord

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


class TwoProbes(CircuitBreaker):
    """Lets a call through while another environment holds the probe."""

    def _admit(self, view: Any, transitions: list[Any]) -> Any:
        decision = yield from super()._admit(view, transitions)
        if decision[0] is _REJECT and view.record.state is HALF_OPEN:
            return _RUN, None, None
        return decision


class RejectsNothing(CircuitBreaker):
    """Runs every call, even while the circuit is open."""

    def _admit(self, view: Any, transitions: list[Any]) -> Any:
        decision = yield from super()._admit(view, transitions)
        if decision[0] is _REJECT and view.record.state is OPEN:
            return _RUN, None, None
        return decision


class StaleTrip(CircuitBreaker):
    """Trips with a blind read-then-write: a stale CLOSED view overwrites whatever is stored."""

    def _transit(self, view: Any, new: CircuitRecord, transitions: list[Any]) -> Any:
        if view.record.state is CLOSED and new.state is OPEN:
            current = yield (_READ, self.name)
            if not isinstance(current, _Fault):
                view.base = current
                new = (current or CircuitRecord.closed(self.name)).evolve(
                    state=OPEN,
                    opened_at=new.opened_at,
                    failure_count=new.failure_count,
                    half_open_owner=None,
                    probe_lease_expiry=None,
                    pinned=False,
                    expires_at=new.expires_at,
                )
        return (yield from super()._transit(view, new, transitions))


class NonConsecutive(CircuitBreaker):
    """Counts failures that are not consecutive: a success does not end the streak."""

    def _finish(self, view: Any, decision: str, exc: BaseException | None) -> None:
        if decision is _RUN and exc is None:
            return
        super()._finish(view, decision, exc)


class NeverCloses(CircuitBreaker):
    """Never leaves HALF_OPEN: probe successes are not counted."""

    def _settle(self, view: Any, decision: str, exc: BaseException | None, transitions: list[Any]) -> Any:
        if decision is _PROBE and exc is None:
            view.probing = False
            return None
        return (yield from super()._settle(view, decision, exc, transitions))


class PhantomTransition(CircuitBreaker):
    """Fires on_transition for a transition whose write failed or lost its compare-and-set."""

    def _transit(self, view: Any, new: CircuitRecord, transitions: list[Any]) -> Any:
        old = view.record.state
        conflict = yield from super()._transit(view, new, transitions)
        if conflict or view.local:
            transitions.append(self._transition(old, new.state, new.opened_at))
        return conflict


class LeaksStoreErrors(CircuitBreaker):
    """Lets a store error reach the caller instead of acting as a local breaker."""

    def _store_fault(self, view: Any, exc: Exception) -> Any:
        raise exc


class SwallowsRejections(CircuitBreaker):
    """Returns None for a rejected call: neither the open error nor the fallback."""

    def _reject(self, info: Any, retry_after: Any, args: Any, kwargs: Any) -> Any:
        return None


#: Each mutant, the anomaly type the harness must report, and a schedule that shows it.
EXPECTED: dict[type[CircuitBreaker], str] = {
    TwoProbes: "two concurrent probes",
    RejectsNothing: "call while open",
    StaleTrip: "lost update",
    NonConsecutive: "premature trip",
    NeverCloses: "stuck half-open",
    PhantomTransition: "transition reported but not stored",
    LeaksStoreErrors: "store error leaked",
    SwallowsRejections: "invocation lost",
}
