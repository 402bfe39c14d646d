"""TransitionLog: every transition of every breaker in the test, with assertion helpers.

Transitions of this library's breakers arrive through ``breaker.events`` (no
``on_transition`` wiring). Breakers that do not publish there, such as Powertools',
report theirs by being given :attr:`TransitionLog.hook` (or the module-level
:func:`record_transition`) as ``on_transition``.

Example:
    >>> from pytest_circuitbreaker.journal import Journal
    >>> log = TransitionLog(Journal())
    >>> log.path("payments")
    []
    >>> log.assert_path("payments")  # no transitions at all
"""

from __future__ import annotations

from pytest_circuitbreaker.journal import RecordedTransition, active_journals, state_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from pytest_circuitbreaker.downstream import Downstream
    from pytest_circuitbreaker.journal import Journal

__all__ = ["RecordedTransition", "TransitionLog", "record_transition"]


def _clock_time() -> float:
    from breaker.clock import SYSTEM_CLOCK

    return SYSTEM_CLOCK.time()


def record_transition(transition: object) -> None:
    """An ``on_transition`` hook that records into the running test's ``circuit_transitions``.

    For breakers that do not publish to ``breaker.events`` (Powertools'). Transitions
    of this library's breakers are recorded already and are ignored here, so passing it
    to one of ours does not count anything twice. Outside a test it does nothing.

    Example:
        >>> from types import SimpleNamespace  # stands for Powertools' CircuitTransition
        >>> record_transition(SimpleNamespace(circuit_name="pt", from_state="CLOSED", to_state="OPEN"))
    """
    from breaker.states import CircuitTransition

    if isinstance(transition, CircuitTransition):
        return  # ours: already recorded through breaker.events
    journals = active_journals()
    if not journals:
        return
    now = _clock_time()
    for journal in journals:
        journal.record_foreign_transition(transition, now)


class TransitionLog:
    """The transitions of the test, in order, and assertions over a circuit's path.

    A circuit's *path* is the list of states it went through: ``["CLOSED", "OPEN",
    "HALF_OPEN", "CLOSED"]`` for a trip and a recovery. Transitions made while the store
    was unreachable (``local``, not stored) are left out unless ``local=True``.

    Example:
        >>> from pytest_circuitbreaker.journal import Journal
        >>> log = TransitionLog(Journal())
        >>> len(log), log.circuits()
        (0, [])
    """

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    #: An ``on_transition`` hook for breakers that do not publish to breaker.events
    #: (Powertools'): ``circuit_breaker(..., on_transition=circuit_transitions.hook)``.
    hook = staticmethod(record_transition)

    def __repr__(self) -> str:
        return f"TransitionLog({self._journal.transitions!r})"

    def __iter__(self) -> Iterator[RecordedTransition]:
        return iter(list(self._journal.transitions))

    def __len__(self) -> int:
        return len(self._journal.transitions)

    def __getitem__(self, index: int) -> RecordedTransition:
        return self._journal.transitions[index]

    def circuits(self) -> list[str]:
        """The names of the circuits that made a transition, in order of their first one.

        Example:
            >>> from pytest_circuitbreaker.journal import Journal
            >>> TransitionLog(Journal()).circuits()
            []
        """
        names: dict[str, None] = {}
        for recorded in self._journal.transitions:
            names.setdefault(recorded.name, None)
        return list(names)

    def of(self, name: str, *, local: bool = False) -> list[RecordedTransition]:
        """The transitions of circuit ``name`` (stored ones; local ones too with ``local=True``).

        Example:
            >>> from pytest_circuitbreaker.journal import Journal
            >>> TransitionLog(Journal()).of("db")
            []
        """
        return [t for t in self._journal.transitions if t.name == name and (local or not t.local)]

    def path(self, name: str, *, local: bool = False) -> list[str]:
        """The states circuit ``name`` went through (``[]`` when it made no transition).

        Example:
            >>> from pytest_circuitbreaker.journal import Journal
            >>> TransitionLog(Journal()).path("db")
            []
        """
        states: list[str] = []
        for recorded in self.of(name, local=local):
            if not states or states[-1] != recorded.from_state:
                states.append(recorded.from_state)
            states.append(recorded.to_state)
        return states

    def assert_path(self, name: str, *states: object, local: bool = False) -> None:
        """Assert circuit ``name`` went exactly through ``states`` (none: it made no transition).

        States are ``CircuitState`` members (ours or Powertools') or their names.

        Example:
            >>> from pytest_circuitbreaker.journal import Journal
            >>> TransitionLog(Journal()).assert_path("db", "CLOSED", "OPEN")
            Traceback (most recent call last):
            ...
            AssertionError: circuit 'db' made no transition, expected CLOSED -> OPEN.
            (no circuit made any transition in this test)
        """
        expected = [state_name(state) for state in states]
        actual = self.path(name, local=local)
        if actual == expected:
            return
        want = " -> ".join(expected) if expected else "no transition"
        if actual:
            message = f"circuit {name!r} went {' -> '.join(actual)}, expected {want}."
        else:
            message = f"circuit {name!r} made no transition, expected {want}."
        raise AssertionError(f"{message}\n{self._listing()}")

    def assert_never(self, name: str, from_state: object, to_state: object) -> None:
        """Assert circuit ``name`` never went from ``from_state`` to ``to_state`` (local ones included).

        Example:
            >>> from pytest_circuitbreaker.journal import Journal
            >>> TransitionLog(Journal()).assert_never("db", "HALF_OPEN", "OPEN")
        """
        source, target = state_name(from_state), state_name(to_state)
        for recorded in self.of(name, local=True):
            if recorded.from_state == source and recorded.to_state == target:
                raise AssertionError(
                    f"circuit {name!r} went {source} -> {target}, which it should never do "
                    f"(transition #{self._journal.transitions.index(recorded) + 1}).\n{self._listing()}"
                )

    def calls_to_open(self, name: str, *, downstream: Downstream | None = None, nth: int = 1) -> int:
        """How many fake-downstream calls it took to open circuit ``name`` (its ``nth`` trip).

        Counts the calls recorded by the ``downstream`` fixtures (all of them, or only
        ``downstream``) between the test's start (or the circuit's previous return to
        CLOSED) and its CLOSED -> OPEN transition. Raises AssertionError when the
        circuit did not open ``nth`` times.

        Example:
            >>> from pytest_circuitbreaker.journal import Journal
            >>> TransitionLog(Journal()).calls_to_open("db")
            Traceback (most recent call last):
            ...
            AssertionError: circuit 'db' never opened (CLOSED -> OPEN) in this test.
            (no circuit made any transition in this test)

        With the fixtures: ``assert circuit_transitions.calls_to_open("payments") == 5``.
        """
        if isinstance(nth, bool) or not isinstance(nth, int) or nth < 1:
            raise ValueError(f"nth must be an int >= 1 (1 for the first trip), got {nth!r}.")
        since = 0
        trips = 0
        for recorded in self.of(name):
            if recorded.to_state == "OPEN" and recorded.from_state == "CLOSED":
                trips += 1
                if trips == nth:
                    return self._count_calls(since, recorded.seq, downstream)
            if recorded.to_state == "CLOSED":
                since = recorded.seq
        times = "never opened" if trips == 0 else f"opened only {trips} time(s), not {nth}"
        raise AssertionError(f"circuit {name!r} {times} (CLOSED -> OPEN) in this test.\n{self._listing()}")

    def _count_calls(self, after: int, until: int, downstream: Downstream | None) -> int:
        sources = [downstream] if downstream is not None else self._journal.downstreams
        if not sources:
            raise AssertionError(
                "calls_to_open() counts the calls made to the test's fake downstreams, and this test made "
                "none: have the protected function call the `downstream` fixture (or one from "
                "`downstream_factory`), e.g. monkeypatch.setattr(client, 'charge', downstream)."
            )
        return sum(1 for source in sources for call in source.calls if after < call.seq < until)

    def _listing(self) -> str:
        transitions = self._journal.transitions
        if not transitions:
            return "(no circuit made any transition in this test)"
        lines = ["recorded transitions:"]
        for number, recorded in enumerate(transitions, 1):
            local = " (local: not stored)" if recorded.local else ""
            lines.append(f"  {number}. {recorded.name}: {recorded.from_state} -> {recorded.to_state}{local}")
        return "\n".join(lines)
