"""CircuitBreakerConfig: the tunables, with Powertools 3.37's names and defaults."""

from __future__ import annotations

from breaker.errors import CircuitBreakerConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    ExceptionTypes = type[BaseException] | Iterable[type[BaseException]] | None


def _check_int(field: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CircuitBreakerConfigError(f"{field} must be an int >= {minimum}, got {value!r}.")
    return value


def _check_seconds(field: str, value: object, *, allow_zero: bool) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float))
    if ok:
        number = float(value)  # type: ignore[arg-type]
        ok = number == number and number != float("inf") and (number >= 0 if allow_zero else number > 0)
    if not ok:
        allowed = "a finite number of seconds >= 0" if allow_zero else "a finite number of seconds > 0"
        raise CircuitBreakerConfigError(f"{field} must be {allowed}, got {value!r}.")
    return value  # type: ignore[return-value]


def _normalize_exceptions(field: str, value: ExceptionTypes) -> tuple[type[Exception], ...] | None:
    if value is None:
        return None
    invalid = f"{field} must be an Exception subclass or an iterable of them, got {value!r}."
    if isinstance(value, (str, bytes)):
        raise CircuitBreakerConfigError(invalid)
    if isinstance(value, type):
        items: tuple[object, ...] = (value,)
    else:
        try:
            items = tuple(value)
        except TypeError:
            raise CircuitBreakerConfigError(invalid) from None
    if not items:
        raise CircuitBreakerConfigError(f"{field} must name at least one exception type, got {value!r}.")
    for item in items:
        if not (isinstance(item, type) and issubclass(item, Exception)):
            raise CircuitBreakerConfigError(
                f"{field} must contain only Exception subclasses, got {item!r}"
                " (BaseException types such as KeyboardInterrupt never count as failures)."
            )
    return items  # type: ignore[return-value]


class CircuitBreakerConfig:
    """The tunables of one circuit; ``CircuitBreakerConfig()`` is a valid production setup.

    Parameters (the first six as in Powertools 3.37):
        failure_threshold: consecutive counted failures (in one environment) that trip
            a closed circuit. Default 5.
        recovery_timeout: seconds a circuit stays open before one probe may test the
            downstream. Default 30; fractions allowed.
        success_threshold: consecutive probe successes that close a half-open circuit.
            Default 3.
        handled_exceptions: only these exception types count as failures.
        ignored_exceptions: every exception counts except these. Mutually exclusive
            with ``handled_exceptions``.
        local_cache_max_age: seconds an environment trusts its last read of the shared
            record before reading the store again. Default 5; 0 reads on every call.
        probe_lease: seconds a probe owner keeps its claim; after that another
            environment may take the probe over. Default: ``recovery_timeout``.
        store_backoff: seconds an environment stops calling the store after a store
            error, acting as a local breaker meanwhile. Default 5.

    Example:
        >>> config = CircuitBreakerConfig(failure_threshold=3, handled_exceptions=TimeoutError)
        >>> config.counts_as_failure(TimeoutError())
        True
    """

    __slots__ = (
        "failure_threshold",
        "handled_exceptions",
        "ignored_exceptions",
        "local_cache_max_age",
        "probe_lease",
        "recovery_timeout",
        "store_backoff",
        "success_threshold",
    )

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: float = 30,
        success_threshold: int = 3,
        handled_exceptions: ExceptionTypes = None,
        ignored_exceptions: ExceptionTypes = None,
        local_cache_max_age: float = 5,
        *,
        probe_lease: float | None = None,
        store_backoff: float = 5,
    ) -> None:
        handled = _normalize_exceptions("handled_exceptions", handled_exceptions)
        ignored = _normalize_exceptions("ignored_exceptions", ignored_exceptions)
        if handled and ignored:
            raise CircuitBreakerConfigError(
                f"handled_exceptions={handled!r} and ignored_exceptions={ignored!r} are "
                "mutually exclusive; pass only one of them."
            )
        self.failure_threshold: int = _check_int("failure_threshold", failure_threshold, 1)
        self.recovery_timeout: float = _check_seconds("recovery_timeout", recovery_timeout, allow_zero=False)
        self.success_threshold: int = _check_int("success_threshold", success_threshold, 1)
        self.handled_exceptions: tuple[type[Exception], ...] | None = handled
        self.ignored_exceptions: tuple[type[Exception], ...] | None = ignored
        self.local_cache_max_age: float = _check_seconds(
            "local_cache_max_age", local_cache_max_age, allow_zero=True
        )
        self.probe_lease: float = (
            self.recovery_timeout
            if probe_lease is None
            else _check_seconds("probe_lease", probe_lease, allow_zero=False)
        )
        self.store_backoff: float = _check_seconds("store_backoff", store_backoff, allow_zero=True)

    def counts_as_failure(self, exception: BaseException) -> bool:
        """Whether ``exception`` raised by the protected call counts as a failure.

        Only ``Exception`` instances ever count; cancellation and exit never do.

        Example:
            >>> CircuitBreakerConfig(ignored_exceptions=KeyError).counts_as_failure(KeyError())
            False
        """
        if not isinstance(exception, Exception):
            return False
        if self.handled_exceptions is not None:
            return isinstance(exception, self.handled_exceptions)
        if self.ignored_exceptions is not None:
            return not isinstance(exception, self.ignored_exceptions)
        return True

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"CircuitBreakerConfig({fields})"
