"""Every bad input is a CircuitBreakerConfigError at construction or decoration, naming parameter and value."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from breaker import (
    SYSTEM_CLOCK,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerConfigError,
    Environment,
    FakeClock,
    circuit_breaker,
    events,
)
from breaker.persistence import InMemoryPersistence
from breaker.persistence.memory import use_default_store

NAN = float("nan")
INF = float("inf")


def raises_naming(parameter: str, value: object) -> pytest.RaisesContext:
    """pytest.raises for a CircuitBreakerConfigError whose message names ``parameter`` and ``value``."""
    return pytest.raises(
        CircuitBreakerConfigError, match=rf"(?s){re.escape(parameter)}.*{re.escape(repr(value))}"
    )


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["", "x" * 201, 7, None, b"db", ["db"], 1.5])
def test_bad_names_are_refused_by_the_decorator_and_the_class(name) -> None:
    with raises_naming("name", name):
        circuit_breaker(name)
    with raises_naming("name", name):
        CircuitBreaker(name)


def test_name_limits_are_inclusive() -> None:
    assert CircuitBreaker("x" * 200).name == "x" * 200
    assert CircuitBreaker("x").name == "x"


# ---------------------------------------------------------------- config fields

COUNTS = ["failure_threshold", "success_threshold"]
BAD_COUNTS = [0, -1, True, False, "x", "3", 1.5, 2.0, NAN, INF, None]


@pytest.mark.parametrize("field", COUNTS)
@pytest.mark.parametrize("value", BAD_COUNTS, ids=repr)
def test_bad_thresholds(field: str, value: object) -> None:
    with raises_naming(field, value):
        CircuitBreakerConfig(**{field: value})


POSITIVE_SECONDS = ["recovery_timeout", "probe_lease"]
BAD_POSITIVE = [0, 0.0, -1, -0.5, True, "x", "30", NAN, INF, -INF]


@pytest.mark.parametrize("field", POSITIVE_SECONDS)
@pytest.mark.parametrize("value", BAD_POSITIVE, ids=repr)
def test_bad_positive_durations(field: str, value: object) -> None:
    with raises_naming(field, value):
        CircuitBreakerConfig(**{field: value})


def test_recovery_timeout_none_is_refused() -> None:
    with raises_naming("recovery_timeout", None):
        CircuitBreakerConfig(recovery_timeout=None)  # type: ignore[arg-type]


NON_NEGATIVE_SECONDS = ["local_cache_max_age", "store_backoff"]
BAD_NON_NEGATIVE = [-1, -0.001, True, False, "x", "5", NAN, INF, None]


@pytest.mark.parametrize("field", NON_NEGATIVE_SECONDS)
@pytest.mark.parametrize("value", BAD_NON_NEGATIVE, ids=repr)
def test_bad_non_negative_durations(field: str, value: object) -> None:
    with raises_naming(field, value):
        CircuitBreakerConfig(**{field: value})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_threshold": 1, "success_threshold": 1},
        {"recovery_timeout": 0.001, "probe_lease": 0.5},
        {"local_cache_max_age": 0, "store_backoff": 0},
        {"local_cache_max_age": 0.25, "store_backoff": 2.5},
        {"failure_threshold": 10**6, "recovery_timeout": 86400},
    ],
)
def test_good_edge_values_are_accepted(kwargs: dict) -> None:
    config = CircuitBreakerConfig(**kwargs)
    for field, value in kwargs.items():
        assert getattr(config, field) == value


def test_handled_and_ignored_together_are_refused() -> None:
    with pytest.raises(
        CircuitBreakerConfigError,
        match=r"handled_exceptions=\(<class 'TimeoutError'>,\) and ignored_exceptions=\(<class 'KeyError'>,\).*mutually exclusive",
    ):
        CircuitBreakerConfig(handled_exceptions=TimeoutError, ignored_exceptions=KeyError)


@pytest.mark.parametrize("field", ["handled_exceptions", "ignored_exceptions"])
@pytest.mark.parametrize(
    ("value", "culprit"),
    [
        (int, int),
        ("ValueError", "ValueError"),
        (b"ValueError", b"ValueError"),
        (42, 42),
        (object, object),
        ([ValueError, "KeyError"], "KeyError"),
        ((ValueError, None), None),
        ([ValueError(), KeyError], ValueError()),
        ({"a": ValueError}, "a"),
    ],
    ids=["int type", "str", "bytes", "int", "object", "str in list", "None in tuple", "instance", "dict"],
)
def test_non_exception_types_are_refused(field: str, value: object, culprit: object) -> None:
    message = re.escape(repr(culprit)) if not isinstance(culprit, Exception) else "ValueError"
    with pytest.raises(CircuitBreakerConfigError, match=rf"(?s){field}.*{message}"):
        CircuitBreakerConfig(**{field: value})


@pytest.mark.parametrize("field", ["handled_exceptions", "ignored_exceptions"])
@pytest.mark.parametrize("value", [[], (), set(), frozenset(), iter(()), {}], ids=repr)
def test_empty_exception_lists_are_refused(field: str, value: object) -> None:
    with pytest.raises(CircuitBreakerConfigError, match=rf"{field} must name at least one exception type"):
        CircuitBreakerConfig(**{field: value})


@pytest.mark.parametrize("field", ["handled_exceptions", "ignored_exceptions"])
@pytest.mark.parametrize(
    "value",
    [
        KeyboardInterrupt,
        SystemExit,
        BaseException,
        asyncio.CancelledError,
        GeneratorExit,
        [ValueError, SystemExit],
    ],
    ids=["KeyboardInterrupt", "SystemExit", "BaseException", "CancelledError", "GeneratorExit", "mixed"],
)
def test_base_exception_types_are_refused(field: str, value: object) -> None:
    culprit = value[-1] if isinstance(value, list) else value
    with pytest.raises(
        CircuitBreakerConfigError, match=rf"(?s){field}.*{re.escape(repr(culprit))}.*never count"
    ):
        CircuitBreakerConfig(**{field: value})


def test_exception_iterables_of_any_kind_are_accepted() -> None:
    assert CircuitBreakerConfig(handled_exceptions=(e for e in [OSError])).handled_exceptions == (OSError,)
    assert CircuitBreakerConfig(ignored_exceptions={KeyError}).ignored_exceptions == (KeyError,)


# ---------------------------------------------------------------- breaker arguments


def _powertools_dynamodb_store() -> object:
    import boto3
    from aws_lambda_powertools.utilities.circuit_breaker.persistence import (
        CircuitBreakerDynamoDBPersistence,
    )

    # A session of its own: creating boto3's default session here, before moto is imported,
    # would leave later moto-mocked tests of other modules talking to the real endpoint.
    client = boto3.session.Session().client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    return CircuitBreakerDynamoDBPersistence(table_name="CircuitBreakerState", boto3_client=client)


@pytest.mark.parametrize(
    "store",
    ["redis://localhost", object(), {}, InMemoryPersistence, 0],
    ids=["url", "object", "dict", "class", "zero"],
)
def test_wrong_persistence_store_types_are_refused(store: object) -> None:
    with raises_naming("persistence_store", store):
        circuit_breaker("db", persistence_store=store)  # type: ignore[arg-type]
    with raises_naming("persistence_store", store):
        CircuitBreaker("db", store)  # type: ignore[arg-type]


def test_a_powertools_persistence_layer_is_refused_with_a_migration_hint() -> None:
    store = _powertools_dynamodb_store()
    with pytest.raises(CircuitBreakerConfigError) as excinfo:
        circuit_breaker("db", persistence_store=store)  # type: ignore[arg-type]
    message = str(excinfo.value)
    assert "persistence_store" in message
    assert "CircuitBreakerDynamoDBPersistence" in message  # the value given
    assert "breaker.persistence.DynamoDBPersistence" in message  # what to use instead


@pytest.mark.parametrize("field", ["on_circuit_open", "on_transition"])
@pytest.mark.parametrize("value", ["fallback", 42, [print], True], ids=repr)
def test_non_callable_hooks_are_refused(field: str, value: object) -> None:
    with raises_naming(field, value):
        circuit_breaker("db", **{field: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("config", [{"failure_threshold": 3}, 3, "default", CircuitBreakerConfig], ids=repr)
def test_config_of_the_wrong_type_is_refused(config: object) -> None:
    with raises_naming("config", config):
        circuit_breaker("db", config=config)  # type: ignore[arg-type]


def test_a_powertools_config_object_is_refused() -> None:
    from aws_lambda_powertools.utilities.circuit_breaker import CircuitBreakerConfig as PowertoolsConfig

    with pytest.raises(
        CircuitBreakerConfigError, match=r"config must be a CircuitBreakerConfig.*got <aws_lambda"
    ):
        circuit_breaker("db", config=PowertoolsConfig())  # type: ignore[arg-type]


@pytest.mark.parametrize("clock", [time, time.time, "system", FakeClock, 0], ids=repr)
def test_bad_clocks_are_refused(clock: object) -> None:
    with raises_naming("clock", clock):
        circuit_breaker("db", clock=clock)  # type: ignore[arg-type]
    with raises_naming("clock", clock):
        SYSTEM_CLOCK.use(clock)  # type: ignore[arg-type]
    assert SYSTEM_CLOCK.time() == pytest.approx(time.time(), abs=5)  # nothing was installed


@pytest.mark.parametrize("environment", ["lambda-1", Environment, object(), 1], ids=repr)
def test_bad_environments_are_refused(environment: object) -> None:
    with raises_naming("environment", environment):
        circuit_breaker("db", environment=environment)  # type: ignore[arg-type]


@pytest.mark.parametrize("env_id", ["", "e" * 201, 5, b"env"], ids=repr)
def test_bad_environment_ids_are_refused(env_id: object) -> None:
    with raises_naming("environment id", env_id):
        Environment(env_id)  # type: ignore[arg-type]


def test_decorating_a_non_callable_is_refused() -> None:
    decorate = circuit_breaker("db")
    with pytest.raises(CircuitBreakerConfigError, match=r"decorated object must be callable, got 42"):
        decorate(42)  # type: ignore[type-var]


def test_errors_are_raised_at_decoration_time_not_at_call_time() -> None:
    with pytest.raises(CircuitBreakerConfigError):

        @circuit_breaker("", config=CircuitBreakerConfig())
        def never_called() -> None:  # pragma: no cover
            raise AssertionError


# ---------------------------------------------------------------- clock and command arguments


@pytest.mark.parametrize("seconds", [-1, -0.001, True, "1", NAN, None], ids=repr)
def test_fake_clock_never_goes_back(seconds: object) -> None:
    clock = FakeClock(start=1000.0)
    with raises_naming("seconds", seconds):
        clock.advance(seconds)  # type: ignore[arg-type]
    assert clock.time() == 1000.0


@pytest.mark.parametrize("timestamp", ["2024-01-01", None, True], ids=repr)
def test_fake_clock_travel_to_needs_unix_seconds(timestamp: object) -> None:
    with raises_naming("timestamp", timestamp):
        FakeClock().travel_to(timestamp)  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl", [0, -1, True, "60", NAN], ids=repr)
@pytest.mark.parametrize("command", ["force_open", "force_closed"])
def test_bad_command_ttls_are_refused_before_any_store_access(command: str, ttl: object) -> None:
    clock = FakeClock()
    store = InMemoryPersistence(clock=clock)
    cb = CircuitBreaker("db", store, clock=clock, environment=Environment())
    with raises_naming("ttl", ttl):
        getattr(cb, command)(ttl=ttl)
    assert store.read("db") is None


@pytest.mark.asyncio
@pytest.mark.parametrize("command", ["aforce_open", "aforce_closed"])
async def test_bad_command_ttls_are_refused_in_async_commands(command: str) -> None:
    clock = FakeClock()
    store = InMemoryPersistence(clock=clock)
    cb = CircuitBreaker("db", store, clock=clock, environment=Environment())
    with raises_naming("ttl", 0):
        await getattr(cb, command)(ttl=0)
    assert store.read("db") is None


def test_bad_default_store_and_listener_are_refused() -> None:
    with raises_naming("store", "memory"):
        use_default_store("memory")  # type: ignore[arg-type]
    with raises_naming("listener", 42):
        events.subscribe(42)  # type: ignore[arg-type]


def test_config_errors_are_value_errors_and_breaker_errors() -> None:
    with pytest.raises(ValueError, match="failure_threshold"):
        CircuitBreakerConfig(failure_threshold=0)
