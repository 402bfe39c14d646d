"""The contenders, each set up for each measured situation, and how time is moved for them.

Every builder returns a ``Kit``: the protected callable, a function reporting the
breaker's state (``"closed"``, ``"open"`` or ``"half_open"``), and, for the trip/recover
cycle, a function that moves that breaker's clock forward.

Time travel (only the cycle section needs it; see ``TimeShift``):

* this library: ``breaker.clock.FakeClock`` passed as ``clock=`` (and to its store).
  Its healthy fast path is then off (it runs only on the real, unpatched system clock,
  and patching ``time`` would switch it off too), so all calls of its cycle take the
  slow path;
* Powertools 3.37: its ``base``/``persistence.base`` modules read
  ``dt.datetime.now()``; their ``dt`` reference is swapped for a shifted ``datetime``;
* pybreaker, aiobreaker: their module-level ``datetime`` reference is swapped likewise;
* circuitbreaker and the floor: their module-level ``monotonic`` is swapped.

A shifted clock is the real clock plus an offset that the cycle advances: nothing
sleeps, and each contender's own time-reading code still runs on every call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from time import monotonic as _real_monotonic
from time import time as _real_time
from types import SimpleNamespace
from typing import Any

import aiobreaker
import aiobreaker.circuitbreaker
import aiobreaker.state
import circuitbreaker
import pybreaker
from aws_lambda_powertools.utilities.circuit_breaker import circuit_breaker as pt_circuit_breaker
from aws_lambda_powertools.utilities.circuit_breaker.config import CircuitBreakerConfig as PtConfig
from aws_lambda_powertools.utilities.circuit_breaker.persistence.base import (
    CircuitBreakerExistingLockError,
    CircuitBreakerPersistenceLayer,
)
from aws_lambda_powertools.utilities.circuit_breaker.persistence.record import CircuitStateRecord
from aws_lambda_powertools.utilities.circuit_breaker.states import CircuitState as PtState

import breaker
from benchmarks import floor
from breaker import CircuitBreakerConfig, FakeClock
from breaker.persistence import InMemoryPersistence

FAILURE_THRESHOLD = 5
SUCCESS_THRESHOLD = 3
RECOVERY_TIMEOUT = 30
#: Recovery timeout of the circuits held open for the rejection benchmark (never reached).
HOLD_OPEN = 3600

#: (module, attribute, replacement) applied while the cycle section runs.
Patch = tuple[Any, str, Any]


def package_version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "?"


LABELS = {
    "bare": "bare call (no breaker)",
    "floor": "floor: minimal hand-written breaker",
    "breaker": "breaker (this library)",
    "powertools": f"Powertools {package_version('aws-lambda-powertools')}",
    "pybreaker": f"pybreaker {package_version('pybreaker')}",
    "circuitbreaker": f"circuitbreaker {package_version('circuitbreaker')}",
    "aiobreaker": f"aiobreaker {package_version('aiobreaker')}",
}


class Kit:
    """A protected callable with the means to inspect and time-travel its breaker."""

    __slots__ = ("advance", "call", "patches", "state")

    def __init__(
        self,
        call: Callable[..., Any],
        state: Callable[[], str],
        advance: Callable[[float], None] | None = None,
        patches: list[Patch] | None = None,
    ) -> None:
        self.call = call
        self.state = state
        self.advance = advance
        self.patches = patches or []


def _norm(state: object) -> str:
    """``"closed"``, ``"open"`` or ``"half_open"`` from any library's state value."""
    text = state if isinstance(state, str) else getattr(state, "name", str(state))
    return str(text).lower().replace("-", "_")


# ---------------------------------------------------------------------- downstreams


def downstream(x: Any) -> Any:
    """The healthy downstream: as cheap as a call can be, so overhead dominates."""
    return x


async def adownstream(x: Any) -> Any:
    return x


def make_flaky() -> tuple[Callable[[bool], bool], list[int]]:
    """A downstream that succeeds iff called with True, and counts its calls."""
    calls = [0]

    def flaky(ok: bool) -> bool:
        calls[0] += 1
        if ok:
            return ok
        raise ConnectionError("downstream unavailable")

    return flaky, calls


def fallback_with_circuit(ok: bool, circuit: Any) -> str:
    return "fallback"


def fallback_plain(ok: bool) -> str:
    return "fallback"


# ---------------------------------------------------------------------- time travel


class TimeShift:
    """The real clock plus an offset; ``advance`` moves the offset, nothing sleeps."""

    __slots__ = ("datetime_class", "offset")

    def __init__(self) -> None:
        self.offset = 0.0
        shift = self

        class ShiftedDatetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                return datetime.now(tz) + timedelta(seconds=shift.offset)

            @classmethod
            def utcnow(cls) -> datetime:  # type: ignore[override]
                return datetime.utcnow() + timedelta(seconds=shift.offset)

        self.datetime_class = ShiftedDatetime

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def monotonic(self) -> float:
        return _real_monotonic() + self.offset

    def time(self) -> float:
        return _real_time() + self.offset

    def unix_seconds(self) -> int:
        return int(self.time())


@contextmanager
def patched(patches: list[Patch]) -> Iterator[None]:
    """Apply ``(module, attribute, value)`` patches; restore them on exit."""
    saved = [(target, attribute, getattr(target, attribute)) for target, attribute, _ in patches]
    try:
        for target, attribute, value in patches:
            setattr(target, attribute, value)
        yield
    finally:
        for target, attribute, value in reversed(saved):
            setattr(target, attribute, value)


# ---------------------------------------------------------------------- Powertools store


class DictPersistence(CircuitBreakerPersistenceLayer):
    """Powertools 3.37's persistence layer over a dict, with its DynamoDB store's semantics.

    ``_put_record(condition="half_open")`` succeeds only when the stored record is OPEN
    with no probe owner and the expected ``opened_at``, or HALF_OPEN with an expired
    lease (as the DynamoDB ConditionExpression does); ``_update_record`` is an upsert
    that clears the probe owner and lease. Records are stored as given (no copy), which
    if anything flatters Powertools next to a real store.
    """

    def __init__(self, now: Callable[[], int] | None = None) -> None:
        super().__init__()
        self.records: dict[str, CircuitStateRecord] = {}
        self._records_lock = threading.Lock()
        self._now = now or (lambda: int(datetime.now().timestamp()))

    def _get_record(self, name: str) -> CircuitStateRecord | None:
        with self._records_lock:
            return self.records.get(name)

    def _put_record(
        self,
        record: CircuitStateRecord,
        condition: str | None = None,
        expected_opened_at: int | None = None,
    ) -> None:
        with self._records_lock:
            if condition == "half_open":
                current = self.records.get(record.name)
                free = current is not None and (
                    (
                        current.state == PtState.OPEN
                        and current.half_open_owner is None
                        and (expected_opened_at is None or current.opened_at == expected_opened_at)
                    )
                    or (
                        current.state == PtState.HALF_OPEN
                        and current.probe_lease_expiry is not None
                        and current.probe_lease_expiry <= self._now()
                    )
                )
                if not free:
                    raise CircuitBreakerExistingLockError
            self.records[record.name] = record

    def _update_record(self, record: CircuitStateRecord) -> None:
        with self._records_lock:
            current = self.records.get(record.name)
            self.records[record.name] = CircuitStateRecord(
                name=record.name,
                state=record.state,
                failure_count=record.failure_count,
                opened_at=record.opened_at,
                half_open_owner=None,
                probe_lease_expiry=None,
                expiry_timestamp=(
                    record.expiry_timestamp
                    if record.expiry_timestamp is not None
                    else (current.expiry_timestamp if current else None)
                ),
            )

    def state_of(self, name: str) -> str:
        record = self.records.get(name)
        return "closed" if record is None else _norm(str(record.state))


# ---------------------------------------------------------------------- builders


def _ours(
    fn: Callable[..., Any],
    name: str,
    *,
    recovery: float,
    on_open: Callable[..., Any] | None = None,
    clock: breaker.Clock | None = None,
    store: InMemoryPersistence | None = None,
) -> Kit:
    config = CircuitBreakerConfig(
        failure_threshold=FAILURE_THRESHOLD, recovery_timeout=recovery, success_threshold=SUCCESS_THRESHOLD
    )
    protected = breaker.circuit_breaker(
        name=name, persistence_store=store, on_circuit_open=on_open, config=config, clock=clock
    )(fn)
    return Kit(protected, lambda: _norm(str(protected.circuit_breaker.info().state)))


def _powertools(
    fn: Callable[..., Any],
    name: str,
    *,
    recovery: int,
    on_open: Callable[..., Any] | None = None,
    layer: DictPersistence | None = None,
) -> Kit:
    layer = layer or DictPersistence()
    config = PtConfig(
        failure_threshold=FAILURE_THRESHOLD, recovery_timeout=recovery, success_threshold=SUCCESS_THRESHOLD
    )
    protected = pt_circuit_breaker(
        name=name, persistence_store=layer, on_circuit_open=on_open, config=config
    )(fn)
    return Kit(protected, lambda: layer.state_of(name))


def _pybreaker(fn: Callable[..., Any], name: str, *, recovery: float) -> Kit:
    cb = pybreaker.CircuitBreaker(
        fail_max=FAILURE_THRESHOLD,
        reset_timeout=recovery,
        success_threshold=SUCCESS_THRESHOLD,
        name=name,
        throw_new_error_on_trip=False,  # the tripping call re-raises its own error, like ours
    )
    return Kit(cb(fn), lambda: _norm(cb.current_state))


def _circuitbreaker(
    fn: Callable[..., Any], name: str, *, recovery: float, on_open: Callable[..., Any] | None = None
) -> Kit:
    cb = circuitbreaker.CircuitBreaker(
        failure_threshold=FAILURE_THRESHOLD, recovery_timeout=recovery, name=name, fallback_function=on_open
    )
    return Kit(cb(fn), lambda: _norm(cb.state))


def _aiobreaker(fn: Callable[..., Any], name: str, *, recovery: float) -> Kit:
    cb = aiobreaker.CircuitBreaker(
        fail_max=FAILURE_THRESHOLD, timeout_duration=timedelta(seconds=recovery), name=name
    )
    return Kit(cb(fn), lambda: _norm(cb.current_state))


def _floor(
    fn: Callable[..., Any],
    *,
    recovery: float,
    on_open: Callable[..., Any] | None = None,
    is_async: bool = False,
) -> Kit:
    fb = floor.MinimalBreaker(FAILURE_THRESHOLD, recovery, on_open)
    protected = fb.wrap_async(fn) if is_async else fb(fn)
    return Kit(protected, lambda: "open" if fb.is_open else "closed")


def healthy_sync() -> dict[str, Callable[[int], Any]]:
    """Section 1: CLOSED, the call succeeds; every contender wraps ``downstream``."""
    n = "bench.healthy.sync"
    return {
        "bare": downstream,
        "floor": _floor(downstream, recovery=RECOVERY_TIMEOUT).call,
        "breaker": _ours(downstream, n, recovery=RECOVERY_TIMEOUT).call,
        "powertools": _powertools(downstream, n, recovery=RECOVERY_TIMEOUT).call,
        "pybreaker": _pybreaker(downstream, n, recovery=RECOVERY_TIMEOUT).call,
        "circuitbreaker": _circuitbreaker(downstream, n, recovery=RECOVERY_TIMEOUT).call,
        "aiobreaker": _aiobreaker(downstream, n, recovery=RECOVERY_TIMEOUT).call,
    }


def healthy_async() -> dict[str, Callable[[int], Any]]:
    """Section 2: the same with ``async def``. Powertools' wrapper is sync: the coroutine
    it returns is counted as a success before it runs, and awaited by the caller."""
    n = "bench.healthy.async"
    return {
        "bare": adownstream,
        "floor": _floor(adownstream, recovery=RECOVERY_TIMEOUT, is_async=True).call,
        "breaker": _ours(adownstream, n, recovery=RECOVERY_TIMEOUT).call,
        "powertools": _powertools(adownstream, n, recovery=RECOVERY_TIMEOUT).call,
        "circuitbreaker": _circuitbreaker(adownstream, n, recovery=RECOVERY_TIMEOUT).call,
        "aiobreaker": _aiobreaker(adownstream, n, recovery=RECOVERY_TIMEOUT).call,
    }


def _trip(kit: Kit) -> None:
    for _ in range(FAILURE_THRESHOLD):
        try:
            kit.call(False)
        except Exception:
            pass


def rejecting(*, fallback: bool) -> dict[str, tuple[Kit, list[int]]]:
    """Section 3: circuits tripped by real failures and held OPEN (recovery 1 h).

    Returns each kit with its downstream's call counter, so the runner can check that
    no measured call reached the downstream.
    """
    suffix = "fallback" if fallback else "raise"
    n = f"bench.open.{suffix}"
    kits: dict[str, tuple[Kit, list[int]]] = {}

    def add(key: str, build: Callable[[Callable[[bool], bool]], Kit]) -> None:
        flaky, calls = make_flaky()
        kit = build(flaky)
        _trip(kit)
        if kit.state() != "open":
            raise RuntimeError(f"{key}: expected OPEN after {FAILURE_THRESHOLD} failures, got {kit.state()}")
        kits[key] = (kit, calls)

    if fallback:
        add("floor", lambda f: _floor(f, recovery=HOLD_OPEN, on_open=fallback_plain))
        add("breaker", lambda f: _ours(f, n, recovery=HOLD_OPEN, on_open=fallback_with_circuit))
        add("powertools", lambda f: _powertools(f, n, recovery=HOLD_OPEN, on_open=fallback_with_circuit))
        add("circuitbreaker", lambda f: _circuitbreaker(f, n, recovery=HOLD_OPEN, on_open=fallback_plain))
    else:
        add("floor", lambda f: _floor(f, recovery=HOLD_OPEN))
        add("breaker", lambda f: _ours(f, n, recovery=HOLD_OPEN))
        add("powertools", lambda f: _powertools(f, n, recovery=HOLD_OPEN))
        add("pybreaker", lambda f: _pybreaker(f, n, recovery=HOLD_OPEN))
        add("circuitbreaker", lambda f: _circuitbreaker(f, n, recovery=HOLD_OPEN))
        add("aiobreaker", lambda f: _aiobreaker(f, n, recovery=HOLD_OPEN))
    return kits


def cycling() -> dict[str, Kit]:
    """Section 3c: kits whose clocks can be advanced."""
    n = "bench.cycle"
    kits: dict[str, Kit] = {}

    shift = TimeShift()
    kit = _floor(make_flaky()[0], recovery=RECOVERY_TIMEOUT)
    kit.advance, kit.patches = shift.advance, [(floor, "monotonic", shift.monotonic)]
    kits["floor"] = kit

    clock = FakeClock()
    kit = _ours(
        make_flaky()[0], n, recovery=RECOVERY_TIMEOUT, clock=clock, store=InMemoryPersistence(clock=clock)
    )
    kit.advance = clock.advance
    kits["breaker"] = kit

    shift = TimeShift()
    kit = _powertools(
        make_flaky()[0], n, recovery=RECOVERY_TIMEOUT, layer=DictPersistence(now=shift.unix_seconds)
    )
    shifted_dt = SimpleNamespace(datetime=shift.datetime_class)
    kit.advance = shift.advance
    kit.patches = [
        (import_module("aws_lambda_powertools.utilities.circuit_breaker.base"), "dt", shifted_dt),
        (import_module("aws_lambda_powertools.utilities.circuit_breaker.persistence.base"), "dt", shifted_dt),
    ]
    kits["powertools"] = kit

    shift = TimeShift()
    kit = _pybreaker(make_flaky()[0], n, recovery=RECOVERY_TIMEOUT)
    kit.advance, kit.patches = shift.advance, [(pybreaker, "datetime", shift.datetime_class)]
    kits["pybreaker"] = kit

    shift = TimeShift()
    kit = _circuitbreaker(make_flaky()[0], n, recovery=RECOVERY_TIMEOUT)
    kit.advance, kit.patches = shift.advance, [(circuitbreaker, "monotonic", shift.monotonic)]
    kits["circuitbreaker"] = kit

    shift = TimeShift()
    kit = _aiobreaker(make_flaky()[0], n, recovery=RECOVERY_TIMEOUT)
    kit.advance = shift.advance
    kit.patches = [
        (aiobreaker.state, "datetime", shift.datetime_class),
        (aiobreaker.circuitbreaker, "datetime", shift.datetime_class),
    ]
    kits["aiobreaker"] = kit
    return kits


def cycle_of(kit: Kit) -> Callable[[], None]:
    """One trip/recover cycle: threshold failures, past the recovery timeout, probes succeed."""
    call, advance = kit.call, kit.advance
    assert advance is not None
    failures = range(FAILURE_THRESHOLD)
    successes = range(SUCCESS_THRESHOLD)
    past_recovery = RECOVERY_TIMEOUT + 1

    def cycle() -> None:
        for _ in failures:
            try:
                call(False)
            except Exception:
                pass
        advance(past_recovery)
        for _ in successes:
            call(True)

    return cycle


def check_cycle(key: str, kit: Kit) -> None:
    """Walk one cycle step by step; raise if the breaker does not trip and recover."""
    call, advance = kit.call, kit.advance
    assert advance is not None
    for _ in range(FAILURE_THRESHOLD):
        try:
            call(False)
        except Exception:
            pass
    if kit.state() != "open":
        raise RuntimeError(f"{key}: expected OPEN after {FAILURE_THRESHOLD} failures, got {kit.state()}")
    advance(RECOVERY_TIMEOUT + 1)
    for _ in range(SUCCESS_THRESHOLD):
        call(True)
    if kit.state() != "closed":
        raise RuntimeError(f"{key}: expected CLOSED after {SUCCESS_THRESHOLD} probes, got {kit.state()}")
