"""The exceptions, with the Powertools 3.37 names and hierarchy."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from breaker.states import CircuitInfo


class CircuitBreakerError(Exception):
    """Base class of every error this library raises.

    ``message`` is the first argument; any further arguments are joined into ``details``.

    Example:
        >>> str(CircuitBreakerError("store unreachable", "timeout after 1s"))
        'store unreachable - (timeout after 1s)'
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.message = str(args[0]) if args else ""
        self.details = "".join(str(arg) for arg in args[1:]) if args[1:] else None

    def __str__(self) -> str:
        if self.message and self.details:
            return f"{self.message} - ({self.details})"
        return self.message


class CircuitBreakerOpenError(CircuitBreakerError):
    """Raised for a call rejected by an open circuit when no ``on_circuit_open`` is given.

    ``circuit`` holds the CircuitInfo at rejection time; ``retry_after`` is the number of
    seconds until a probe may run (None when unknown, e.g. another environment is
    probing or the circuit was forced open).

    Example:
        >>> err = CircuitBreakerOpenError("Circuit 'db' is open.", retry_after=2.5)
        >>> err.retry_after
        2.5
    """

    def __init__(
        self,
        *args: object,
        circuit: CircuitInfo | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(*args)
        self.circuit = circuit
        self.retry_after = retry_after


class CircuitBreakerConfigError(CircuitBreakerError, ValueError):
    """Raised at construction or decoration time for a bad parameter.

    The message names the parameter, the value given and what is allowed.

    Example:
        >>> CircuitBreakerConfigError("failure_threshold must be an int >= 1, got 0.").message
        'failure_threshold must be an int >= 1, got 0.'
    """


class CircuitBreakerPersistenceError(CircuitBreakerError):
    """Raised by a store for a failed or unreadable store operation.

    The breaker catches it (and every other store error): it never reaches the caller
    of a protected function. Custom stores may raise it from their primitives.

    Example:
        >>> raise CircuitBreakerPersistenceError("corrupt record", "state='BOGUS'")
        Traceback (most recent call last):
        ...
        breaker.errors.CircuitBreakerPersistenceError: corrupt record - (state='BOGUS')
    """
