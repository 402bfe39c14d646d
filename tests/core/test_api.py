"""The public API: Powertools 3.37's names and defaults, the decorator, the CircuitBreaker object."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import inspect
import json
import pickle

import pytest
from aws_lambda_powertools.utilities import circuit_breaker as powertools

import breaker
from breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerConfigError,
    CircuitBreakerError,
    CircuitBreakerOpenError,
    CircuitBreakerPersistenceError,
    CircuitInfo,
    CircuitState,
    CircuitTransition,
    circuit_breaker,
)

from .support import CLOSED, HALF_OPEN, OPEN, START, make_breaker

POWERTOOLS_NAMES = [
    "circuit_breaker",
    "CircuitBreakerConfig",
    "CircuitInfo",
    "CircuitState",
    "CircuitTransition",
    "CircuitBreakerError",
    "CircuitBreakerOpenError",
    "CircuitBreakerConfigError",
    "CircuitBreakerPersistenceError",
]
ERRORS = [
    "CircuitBreakerError",
    "CircuitBreakerOpenError",
    "CircuitBreakerConfigError",
    "CircuitBreakerPersistenceError",
]


# ---------------------------------------------------------------- names and defaults


def test_every_powertools_name_is_exported() -> None:
    assert sorted(powertools.__all__) == sorted(POWERTOOLS_NAMES)
    for name in powertools.__all__:
        assert name in breaker.__all__
        assert hasattr(breaker, name)


def test_decorator_parameters_match_powertools() -> None:
    ours = list(inspect.signature(circuit_breaker).parameters)
    theirs = list(inspect.signature(powertools.circuit_breaker).parameters)
    assert ours[: len(theirs)] == theirs
    assert inspect.signature(circuit_breaker).parameters["persistence_store"].default is None


def test_config_positional_parameters_and_defaults_match_powertools() -> None:
    theirs = inspect.signature(powertools.CircuitBreakerConfig).parameters
    ours = inspect.signature(CircuitBreakerConfig).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name
        assert ours[name].kind == parameter.kind, name
    default_ours, default_theirs = CircuitBreakerConfig(), powertools.CircuitBreakerConfig()
    for name in theirs:
        assert getattr(default_ours, name) == getattr(default_theirs, name), name
    assert (default_ours.failure_threshold, default_ours.recovery_timeout) == (5, 30)
    assert (default_ours.success_threshold, default_ours.local_cache_max_age) == (3, 5)
    assert default_ours.handled_exceptions is None
    assert default_ours.ignored_exceptions is None


def test_config_extras_are_keyword_only_with_documented_defaults() -> None:
    parameters = inspect.signature(CircuitBreakerConfig).parameters
    assert parameters["probe_lease"].kind is inspect.Parameter.KEYWORD_ONLY
    assert parameters["store_backoff"].kind is inspect.Parameter.KEYWORD_ONLY
    assert CircuitBreakerConfig(recovery_timeout=12).probe_lease == 12
    assert CircuitBreakerConfig().store_backoff == 5


@pytest.mark.parametrize(
    ("kwargs", "exception", "counts"),
    [
        ({}, ValueError("x"), True),
        ({"handled_exceptions": TimeoutError}, TimeoutError(), True),
        ({"handled_exceptions": TimeoutError}, ValueError(), False),
        ({"handled_exceptions": [OSError, KeyError]}, ConnectionError(), True),
        ({"ignored_exceptions": KeyError}, KeyError(), False),
        ({"ignored_exceptions": (KeyError,)}, LookupError(), True),
    ],
)
def test_counts_as_failure_agrees_with_powertools(kwargs: dict, exception: Exception, counts: bool) -> None:
    assert CircuitBreakerConfig(**kwargs).counts_as_failure(exception) is counts
    assert powertools.CircuitBreakerConfig(**kwargs).counts_as_failure(exception) is counts


def test_config_normalizes_exception_lists_to_tuples_like_powertools() -> None:
    ours = CircuitBreakerConfig(handled_exceptions=[TimeoutError, KeyError])
    theirs = powertools.CircuitBreakerConfig(handled_exceptions=[TimeoutError, KeyError])
    assert ours.handled_exceptions == theirs.handled_exceptions == (TimeoutError, KeyError)
    assert CircuitBreakerConfig(ignored_exceptions=KeyError).ignored_exceptions == (KeyError,)


# ---------------------------------------------------------------- CircuitInfo / CircuitTransition


@pytest.mark.parametrize("name", ["CircuitInfo", "CircuitTransition"])
def test_value_types_have_powertools_fields_in_order(name: str) -> None:
    theirs = getattr(powertools, name)
    ours = getattr(breaker, name)
    fields = [field.name for field in dataclasses.fields(theirs)]
    assert list(inspect.signature(ours).parameters) == fields
    defaults = {f.name: f.default for f in dataclasses.fields(theirs)}
    for field, parameter in inspect.signature(ours).parameters.items():
        expected = inspect.Parameter.empty if defaults[field] is dataclasses.MISSING else defaults[field]
        assert parameter.default == expected, field


def test_circuit_info_positional_construction_equality_hash_repr() -> None:
    info = CircuitInfo("db", OPEN, 5, START)
    theirs = powertools.CircuitInfo("db", powertools.CircuitState.OPEN, 5, START)
    for field in ("name", "state", "failure_count", "opened_at"):
        assert getattr(info, field) == getattr(theirs, field)
    assert info == CircuitInfo(name="db", state=OPEN, failure_count=5, opened_at=START)
    assert info != CircuitInfo("db", OPEN, 4, START)
    assert hash(info) == hash(CircuitInfo("db", OPEN, 5, START))
    assert CircuitInfo("db", CLOSED, 0).opened_at is None
    assert repr(info) == repr(theirs)
    assert repr(CircuitTransition("db", CLOSED, OPEN, 1.5)) == repr(
        powertools.CircuitTransition("db", powertools.CircuitState.CLOSED, powertools.CircuitState.OPEN, 1.5)
    )


@pytest.mark.parametrize(
    "value",
    [CircuitInfo("db", OPEN, 5, START), CircuitTransition("db", CLOSED, OPEN, START)],
    ids=["CircuitInfo", "CircuitTransition"],
)
def test_value_types_are_frozen_like_frozen_dataclasses(value: object) -> None:
    field = type(value)._fields[0]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match=field):
        setattr(value, field, "other")
    with pytest.raises(AttributeError):
        delattr(value, field)
    with pytest.raises(AttributeError):
        value.extra = 1  # type: ignore[attr-defined]
    assert pickle.loads(pickle.dumps(value)) == value
    assert copy.deepcopy(value) == value


def test_transition_fields() -> None:
    transition = CircuitTransition("db", HALF_OPEN, CLOSED)
    assert (transition.circuit_name, transition.from_state, transition.to_state) == ("db", HALF_OPEN, CLOSED)
    assert transition.opened_at is None
    assert transition != CircuitTransition("db", HALF_OPEN, OPEN)


# ---------------------------------------------------------------- CircuitState


def test_state_values_order_and_str_match_powertools() -> None:
    assert [member.value for member in CircuitState] == [m.value for m in powertools.CircuitState]
    assert [member.name for member in CircuitState] == [m.name for m in powertools.CircuitState]
    assert len(CircuitState) == 3
    for ours, theirs in zip(CircuitState, powertools.CircuitState, strict=True):
        assert str(ours) == str(theirs) == ours.value
        assert f"{ours}" == f"{theirs}"
        assert format(ours, ">10") == format(theirs, ">10")
        assert repr(ours) == repr(theirs)
        assert ours == theirs == ours.value
        assert hash(ours) == hash(theirs) == hash(ours.value)
        assert json.dumps(ours) == json.dumps(theirs)
        assert isinstance(ours, str)


def test_state_lookup_by_value_and_name() -> None:
    assert CircuitState("OPEN") is CircuitState.OPEN
    assert CircuitState(CircuitState.HALF_OPEN) is CircuitState.HALF_OPEN
    assert CircuitState["HALF_OPEN"] is CircuitState.HALF_OPEN
    assert "CLOSED" in CircuitState
    assert "closed" not in CircuitState
    with pytest.raises(ValueError, match="'BOGUS'"):
        CircuitState("BOGUS")
    with pytest.raises(KeyError):
        CircuitState["open"]
    assert {CircuitState.OPEN: 1}["OPEN"] == 1


def test_state_members_are_singletons_through_pickle_and_copy() -> None:
    for member in CircuitState:
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            assert pickle.loads(pickle.dumps(member, protocol=protocol)) is member
        assert copy.copy(member) is member
        assert copy.deepcopy(member) is member
    assert CircuitState.OPEN.name == "OPEN"
    assert CircuitState.HALF_OPEN.value == "HALF_OPEN"
    assert type(CircuitState.OPEN.value) is str


# ---------------------------------------------------------------- exceptions


def test_exception_hierarchy_matches_powertools() -> None:
    for a in ERRORS:
        for b in ERRORS:
            assert issubclass(getattr(breaker, a), getattr(breaker, b)) == issubclass(
                getattr(powertools, a), getattr(powertools, b)
            ), (a, b)
        assert issubclass(getattr(breaker, a), Exception)
    # ours is also a ValueError: a bad parameter value
    assert issubclass(CircuitBreakerConfigError, ValueError)


@pytest.mark.parametrize("name", ERRORS)
@pytest.mark.parametrize("args", [(), ("message",), ("message", "details"), ("m", "d1", "d2")])
def test_exception_message_formatting_matches_powertools(name: str, args: tuple[str, ...]) -> None:
    ours = getattr(breaker, name)(*args)
    theirs = getattr(powertools, name)(*args)
    assert str(ours) == str(theirs)
    assert ours.message == theirs.message
    assert ours.details == theirs.details


def test_open_error_carries_circuit_and_retry_after() -> None:
    info = CircuitInfo("db", OPEN, 5, START)
    error = CircuitBreakerOpenError("open", circuit=info, retry_after=2.5)
    assert error.circuit is info
    assert error.retry_after == 2.5
    assert isinstance(error, CircuitBreakerError)
    assert CircuitBreakerOpenError("open").circuit is None
    assert CircuitBreakerOpenError("open").retry_after is None
    assert powertools.CircuitBreakerOpenError("open", circuit=info).circuit is info


def test_persistence_error_is_not_a_config_error() -> None:
    assert not issubclass(CircuitBreakerPersistenceError, CircuitBreakerConfigError)
    assert not issubclass(CircuitBreakerOpenError, CircuitBreakerConfigError)


# ---------------------------------------------------------------- the decorator


def test_decorator_keeps_metadata_and_exposes_breaker(store, clock, env) -> None:
    @circuit_breaker(name="db", persistence_store=store, clock=clock, environment=env)
    def fetch(key: str, *, default: int = 0) -> tuple[str, int]:
        """Fetch a key."""
        return key, default

    fetch.custom = "kept"  # type: ignore[attr-defined]

    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a key."
    assert fetch.__qualname__.endswith("fetch")
    assert fetch.__module__ == __name__
    assert inspect.signature(fetch) == inspect.signature(fetch.__wrapped__)
    assert fetch.__wrapped__.__name__ == "fetch"
    assert fetch.__wrapped__ is not fetch
    assert isinstance(fetch.circuit_breaker, CircuitBreaker)
    assert fetch.circuit_breaker.name == "db"
    assert fetch.circuit_breaker.store is store
    assert fetch("k", default=3) == ("k", 3)


def test_decorator_copies_function_attributes(store, clock, env) -> None:
    def fetch() -> int:
        return 1

    fetch.tag = "payments"  # type: ignore[attr-defined]
    wrapped = circuit_breaker("db", store, clock=clock, environment=env)(fetch)
    assert wrapped.tag == "payments"  # type: ignore[attr-defined]


def test_decorated_async_function_stays_a_coroutine_function(store, clock, env) -> None:
    @circuit_breaker("db", store, clock=clock, environment=env)
    async def fetch() -> int:
        return 1

    assert inspect.iscoroutinefunction(fetch)
    assert fetch.__name__ == "fetch"
    assert asyncio.run(fetch()) == 1


def test_circuit_breaker_object_as_decorator_shares_one_circuit(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=1)

    @cb
    def one() -> int:
        raise ConnectionError

    @cb
    def two() -> int:
        return 2

    assert one.circuit_breaker is two.circuit_breaker is cb  # type: ignore[attr-defined]
    with pytest.raises(ConnectionError):
        one()
    with pytest.raises(CircuitBreakerOpenError):
        two()


# ---------------------------------------------------------------- the CircuitBreaker object


def test_call_passes_arguments_and_returns_result(store, clock, env) -> None:
    cb = make_breaker(store, clock, env)
    assert cb.call(pow, 2, 10) == 1024
    assert cb.call(dict, a=1) == {"a": 1}


def test_call_accepts_fn_keyword_arguments_named_like_its_own(store, clock, env) -> None:
    cb = make_breaker(store, clock, env)
    assert cb.call(lambda fn, args: (fn, args), fn=1, args=2) == (1, 2)


@pytest.mark.asyncio
async def test_acall_and_ainfo(store, clock, env) -> None:
    cb = make_breaker(store, clock, env, failure_threshold=1)

    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    async def broken() -> None:
        raise TimeoutError

    assert await cb.acall(double, 21) == 42
    assert (await cb.ainfo()).state is CLOSED
    with pytest.raises(TimeoutError):
        await cb.acall(broken)
    info = await cb.ainfo()
    assert info == CircuitInfo("db", OPEN, 1, START)


def test_info_and_state_reflect_the_store(store, clock, env) -> None:
    cb = make_breaker(store, clock, env)
    assert cb.info() == CircuitInfo("db", CLOSED, 0, None)
    assert cb.state is CLOSED
    other = cb.with_environment(breaker.Environment("env-b"))
    other.force_open()
    assert cb.info() == CircuitInfo("db", OPEN, 0, START)  # info() reads through the cache
    assert cb.state is OPEN


def test_force_open_force_closed_reset_return_info(store, clock, env) -> None:
    cb = make_breaker(store, clock, env)
    assert cb.force_open() == CircuitInfo("db", OPEN, 0, START)
    assert cb.force_closed() == CircuitInfo("db", CLOSED, 0, None)
    assert cb.reset() == CircuitInfo("db", CLOSED, 0, None)
    assert store.read("db").pinned is False  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_async_manual_commands(store, clock, env) -> None:
    cb = make_breaker(store, clock, env)
    assert (await cb.aforce_open()).state is OPEN
    assert store.read("db").pinned is True  # type: ignore[union-attr]
    assert (await cb.aforce_closed()).state is CLOSED
    assert (await cb.areset()).state is CLOSED
    assert store.read("db").pinned is False  # type: ignore[union-attr]


def test_with_environment_keeps_everything_but_the_environment(store, clock, env) -> None:
    def fallback(*args: object, circuit: CircuitInfo) -> str:
        return "fallback"

    cb = CircuitBreaker(
        "db",
        store,
        on_circuit_open=fallback,
        on_transition=print,
        config=CircuitBreakerConfig(failure_threshold=2),
        clock=clock,
        environment=env,
    )
    other_env = breaker.Environment("env-b")
    other = cb.with_environment(other_env)
    assert other.environment is other_env
    assert (
        other.name,
        other.store,
        other.on_circuit_open,
        other.on_transition,
        other.config,
        other.clock,
    ) == (
        cb.name,
        cb.store,
        cb.on_circuit_open,
        cb.on_transition,
        cb.config,
        cb.clock,
    )


def test_default_store_and_clock_are_the_process_defaults() -> None:
    from breaker.persistence import default_store

    cb = CircuitBreaker("api-defaults")
    assert cb.store is default_store()
    assert cb.clock is breaker.SYSTEM_CLOCK
    assert cb.environment is breaker.DEFAULT_ENVIRONMENT
    assert "api-defaults" in repr(cb)


def test_powertools_style_migration_only_changes_imports(store, clock, env) -> None:
    """The example from Powertools' docs works unchanged with our names."""
    buffered: list[dict] = []

    def buffer(order: dict, circuit: CircuitInfo) -> dict:
        buffered.append(order)
        return {"statusCode": 202, "circuit": circuit.name}

    @circuit_breaker(
        name="payments",
        persistence_store=store,
        on_circuit_open=buffer,
        config=CircuitBreakerConfig(failure_threshold=2, recovery_timeout=30),
        clock=clock,
        environment=env,
    )
    def charge(order: dict) -> dict:
        raise ConnectionError("payments down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            charge({"id": 1})
    assert charge({"id": 2}) == {"statusCode": 202, "circuit": "payments"}
    assert buffered == [{"id": 2}]
