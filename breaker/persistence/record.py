"""CircuitRecord: the shared record of one circuit, as every store keeps it."""

from __future__ import annotations

from breaker.states import CircuitInfo, CircuitState, _Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class CircuitRecord(_Frozen):
    """The shared record of one circuit. Immutable; ``evolve()`` makes the next version.

    Fields:
        name: the circuit name.
        state: CLOSED, OPEN or HALF_OPEN.
        version: compare-and-set token; 0 for a circuit never written, and +1 on every
            stored write. A store accepts a write only against the version it holds.
        failure_count: the tripping environment's streak, stored with a trip.
        opened_at: wall-clock unix seconds the circuit (re)opened; None while CLOSED.
        half_open_owner: the environment id that holds the probe, while HALF_OPEN.
        probe_lease_expiry: wall-clock unix seconds after which another environment may
            take the probe over.
        pinned: True when a manual command (force_open / force_closed) holds the state
            until ``reset()``: no trip, no probe election.
        expires_at: wall-clock unix seconds after which the store may drop the record
            (DynamoDB TTL, Redis key expiry), or None.

    Example:
        >>> r = CircuitRecord.closed("db")
        >>> r.evolve(state=CircuitState.OPEN, opened_at=10.0).version
        1
    """

    __slots__ = (
        "name",
        "state",
        "version",
        "failure_count",
        "opened_at",
        "half_open_owner",
        "probe_lease_expiry",
        "pinned",
        "expires_at",
    )
    _fields = __slots__
    name: str
    state: CircuitState
    version: int
    failure_count: int
    opened_at: float | None
    half_open_owner: str | None
    probe_lease_expiry: float | None
    pinned: bool
    expires_at: float | None

    def __init__(
        self,
        name: str,
        state: CircuitState,
        version: int = 0,
        failure_count: int = 0,
        opened_at: float | None = None,
        half_open_owner: str | None = None,
        probe_lease_expiry: float | None = None,
        pinned: bool = False,
        expires_at: float | None = None,
    ) -> None:
        setter = object.__setattr__
        setter(self, "name", name)
        setter(self, "state", state)
        setter(self, "version", version)
        setter(self, "failure_count", failure_count)
        setter(self, "opened_at", opened_at)
        setter(self, "half_open_owner", half_open_owner)
        setter(self, "probe_lease_expiry", probe_lease_expiry)
        setter(self, "pinned", pinned)
        setter(self, "expires_at", expires_at)

    @classmethod
    def closed(cls, name: str) -> CircuitRecord:
        """The record of a circuit that no store holds yet: CLOSED, version 0."""
        return cls(name, CircuitState.CLOSED)

    def evolve(self, **changes: Any) -> CircuitRecord:
        """A copy with ``changes`` applied and the version incremented (the next write)."""
        values = {field: getattr(self, field) for field in self._fields}
        values["version"] = self.version + 1
        values.update(changes)
        return CircuitRecord(**values)

    def replace(self, **changes: Any) -> CircuitRecord:
        """A copy with ``changes`` applied and the version kept (for stores and tests)."""
        values = {field: getattr(self, field) for field in self._fields}
        values.update(changes)
        return CircuitRecord(**values)

    def to_circuit_info(self) -> CircuitInfo:
        """The public snapshot of this record (no owner, lease or version)."""
        return CircuitInfo(self.name, self.state, self.failure_count, self.opened_at)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``state`` as its string)."""
        values = {field: getattr(self, field) for field in self._fields}
        values["state"] = self.state.value
        return values

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CircuitRecord:
        """Build a record from ``to_dict()`` output; raises for a malformed one.

        Raises:
            CircuitBreakerPersistenceError: a field is missing or of the wrong type.
        """
        from breaker.errors import CircuitBreakerPersistenceError

        try:
            record = cls(
                name=_as_required_str(data["name"]),
                state=CircuitState(data["state"]),
                version=_as_int(data["version"]),
                failure_count=_as_int(data.get("failure_count", 0)),
                opened_at=_as_float(data.get("opened_at")),
                half_open_owner=_as_str(data.get("half_open_owner")),
                probe_lease_expiry=_as_float(data.get("probe_lease_expiry")),
                pinned=_as_bool(data.get("pinned", False)),
                expires_at=_as_float(data.get("expires_at")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise CircuitBreakerPersistenceError("corrupt circuit record", f"{data!r}: {exc}") from None
        record.validate()
        return record

    def validate(self) -> None:
        """Raise CircuitBreakerPersistenceError unless the fields are consistent."""
        from breaker.errors import CircuitBreakerPersistenceError

        problem = None
        numbers = {
            "opened_at": self.opened_at,
            "probe_lease_expiry": self.probe_lease_expiry,
            "expires_at": self.expires_at,
        }
        bad_number = next(
            (
                f"{field} {value!r} is not a finite number"
                for field, value in numbers.items()
                if value is not None
                and (isinstance(value, bool) or not isinstance(value, (int, float)) or value - value != 0)
            ),
            None,
        )
        if not isinstance(self.state, CircuitState):
            problem = f"state {self.state!r} is not a CircuitState"
        elif isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0:
            problem = f"version {self.version!r} is not an int >= 0"
        elif (
            isinstance(self.failure_count, bool)
            or not isinstance(self.failure_count, int)
            or self.failure_count < 0
        ):
            problem = f"failure_count {self.failure_count!r} is not an int >= 0"
        elif bad_number is not None:
            problem = bad_number
        elif self.state is not CircuitState.CLOSED and self.opened_at is None:
            problem = f"state {self.state.value} needs opened_at"
        elif (
            self.state is CircuitState.HALF_OPEN
            and not self.pinned
            and (self.half_open_owner is None or self.probe_lease_expiry is None)
        ):
            problem = "state HALF_OPEN needs half_open_owner and probe_lease_expiry"
        if problem is not None:
            raise CircuitBreakerPersistenceError("corrupt circuit record", f"{self!r}: {problem}")


def _as_int(value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got {value!r}")
    number = int(value)
    if number != value and not isinstance(value, str):
        raise ValueError(f"expected a whole number, got {value!r}")
    return number


def _as_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _as_bool(value: Any) -> bool:
    if value in (True, False) and isinstance(value, (bool, int)):
        return bool(value)
    raise TypeError(f"expected a bool (or 0/1), got {value!r}")


def _as_required_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value
