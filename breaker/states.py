"""The public state types handed to user code: CircuitState, CircuitInfo, CircuitTransition.

Names, fields and field order follow Powertools for AWS Lambda (Python) 3.37, so code
written against its circuit breaker keeps working after changing its imports.

CircuitInfo and CircuitTransition are written by hand instead of with ``dataclasses``:
importing ``dataclasses`` costs more than the whole of ``import breaker`` is allowed to.
They behave like frozen dataclasses: keyword or positional construction, equality,
hashing, a readable repr, and ``AttributeError`` on assignment.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


class _StateType(type):
    """Metaclass giving CircuitState the class-level behaviour of an Enum."""

    _members: tuple[CircuitState, ...]

    def __iter__(cls) -> Iterator[CircuitState]:
        return iter(cls._members)

    def __len__(cls) -> int:
        return len(cls._members)

    def __getitem__(cls, name: str) -> CircuitState:
        for member in cls._members:
            if member._name == name:
                return member
        raise KeyError(name)

    def __contains__(cls, value: object) -> bool:
        return any(member == value for member in cls._members)


class CircuitState(str, metaclass=_StateType):
    """The state of a circuit: CLOSED, OPEN or HALF_OPEN.

    It behaves as Powertools' ``CircuitState(str, Enum)`` does: members are singletons
    that compare equal to their strings, ``CircuitState("OPEN")`` looks a member up by
    value, ``CircuitState["OPEN"]`` by name, ``list(CircuitState)`` lists them, and they
    have ``.name`` and ``.value``. It is built without the ``enum`` module, whose import
    (with ``functools`` and ``collections``) would cost most of ``import breaker``'s
    budget; ``isinstance(state, enum.Enum)`` is the one thing that differs.

    Example:
        >>> CircuitState.OPEN == "OPEN", CircuitState("OPEN") is CircuitState.OPEN
        (True, True)
    """

    CLOSED: CircuitState
    OPEN: CircuitState
    HALF_OPEN: CircuitState
    _name: str

    def __new__(cls, value: object) -> CircuitState:
        for member in cls._members:
            if member == value:
                return member
        raise ValueError(f"{value!r} is not a valid CircuitState; allowed: CLOSED, OPEN, HALF_OPEN")

    @property
    def name(self) -> str:
        """The member's name, e.g. ``"HALF_OPEN"``."""
        return self._name

    @property
    def value(self) -> str:
        """The member's value, the same string as its name."""
        return str.__str__(self)

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"<CircuitState.{self._name}: {str.__repr__(self)}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (CircuitState, (self._name,))

    def __copy__(self) -> CircuitState:
        return self

    def __deepcopy__(self, memo: object) -> CircuitState:
        return self


def _member(name: str) -> CircuitState:
    member = str.__new__(CircuitState, name)
    member._name = name
    return member


CircuitState._members = (_member("CLOSED"), _member("OPEN"), _member("HALF_OPEN"))
CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN = CircuitState._members


class _Frozen:
    """Base of the hand-written frozen value types below."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")

    def _astuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, field) for field in self._fields)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._astuple() == other._astuple()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __repr__(self) -> str:
        inner = ", ".join(f"{field}={getattr(self, field)!r}" for field in self._fields)
        return f"{type(self).__name__}({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._astuple())


class CircuitInfo(_Frozen):
    """An immutable snapshot of one circuit, handed to ``on_circuit_open`` and open errors.

    ``failure_count`` is the consecutive-failure streak of the environment that tripped
    the circuit, as stored with the trip (0 in states not reached by a fresh trip).
    ``opened_at`` is the wall-clock unix time the circuit opened, or None while closed;
    it may carry a fraction of a second.

    Example:
        >>> info = CircuitInfo("payments", CircuitState.OPEN, 5, opened_at=1700000000)
        >>> info.state
        <CircuitState.OPEN: 'OPEN'>
    """

    __slots__ = ("failure_count", "name", "opened_at", "state")
    _fields = ("name", "state", "failure_count", "opened_at")
    name: str
    state: CircuitState
    failure_count: int
    opened_at: float | None

    def __init__(
        self, name: str, state: CircuitState, failure_count: int, opened_at: float | None = None
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "state", state)
        object.__setattr__(self, "failure_count", failure_count)
        object.__setattr__(self, "opened_at", opened_at)


class CircuitTransition(_Frozen):
    """An immutable record of one stored state change, handed to ``on_transition`` hooks.

    Example:
        >>> t = CircuitTransition("payments", CircuitState.CLOSED, CircuitState.OPEN, 1700000000)
        >>> f"{t.from_state}->{t.to_state}"
        'CLOSED->OPEN'
    """

    __slots__ = ("circuit_name", "from_state", "opened_at", "to_state")
    _fields = ("circuit_name", "from_state", "to_state", "opened_at")
    circuit_name: str
    from_state: CircuitState
    to_state: CircuitState
    opened_at: float | None

    def __init__(
        self,
        circuit_name: str,
        from_state: CircuitState,
        to_state: CircuitState,
        opened_at: float | None = None,
    ) -> None:
        object.__setattr__(self, "circuit_name", circuit_name)
        object.__setattr__(self, "from_state", from_state)
        object.__setattr__(self, "to_state", to_state)
        object.__setattr__(self, "opened_at", opened_at)
