"""Building the test's store by kind: memory, dynamodb (moto), redis (a real server), or a plugin's.

The kind comes from the test's ``@pytest.mark.circuit_store(KIND)`` marker, else
``--circuitbreaker-store`` / the ``circuitbreaker_store`` ini key, else ``"memory"``.
A plugin may provide a kind (or replace a built-in one) by implementing the
``pytest_circuitbreaker_make_store`` hook. Backend libraries (boto3, moto, redis) are
imported here, only when their kind is asked for.

Example:
    >>> BUILTIN_KINDS
    ('memory', 'dynamodb', 'redis')
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_circuitbreaker.options import DEFAULT_STORE, setting

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from breaker.persistence.base import CircuitStore

__all__ = ["BUILTIN_KINDS", "REGION", "store_for_test", "store_kind"]

BUILTIN_KINDS = ("memory", "dynamodb", "redis")
REGION = "us-east-1"
BACKEND_NOT_AVAILABLE = "store backend not yet available"

# One DynamoDB client per endpoint (None: moto in-process) per session.
_CLIENTS = pytest.StashKey[dict[str | None, Any]]()


def store_kind(request: pytest.FixtureRequest) -> tuple[str, str]:
    """The store kind for this test and where it came from (for messages).

    Fails the test for a marker without exactly one kind string.

    Example (in a fixture)::

        kind, source = store_kind(request)  # ("redis", "@pytest.mark.circuit_store('redis')")
    """
    marker = request.node.get_closest_marker("circuit_store")
    if marker is not None:
        if len(marker.args) != 1 or not isinstance(marker.args[0], str) or marker.kwargs:
            pytest.fail(
                "@pytest.mark.circuit_store takes one store kind, e.g. @pytest.mark.circuit_store('redis'); "
                f"got args={marker.args!r} kwargs={marker.kwargs!r}.",
                pytrace=False,
            )
        return marker.args[0], f"@pytest.mark.circuit_store({marker.args[0]!r})"
    configured = setting(request.config, "store")
    if isinstance(configured, str) and configured:
        return configured, f"--circuitbreaker-store={configured} (or the circuitbreaker_store ini key)"
    return DEFAULT_STORE, "the default"


def store_for_test(request: pytest.FixtureRequest) -> Iterator[CircuitStore]:
    """Build the test's store, make it the default store for the test, and clean it up after.

    Example (what the ``circuit_store`` fixture is)::

        @pytest.fixture
        def circuit_store(request):
            yield from store_for_test(request)
    """
    from breaker.persistence.memory import use_default_store

    kind, source = store_kind(request)
    store, cleanup = _build(kind, source, request)
    use_default_store(store)
    try:
        yield store
    finally:
        use_default_store(None)
        cleanup()


def _nothing() -> None:
    return None


def _build(kind: str, source: str, request: pytest.FixtureRequest) -> tuple[CircuitStore, Callable[[], None]]:
    from breaker.persistence.base import CircuitStore

    provided = request.config.hook.pytest_circuitbreaker_make_store(kind=kind, request=request)
    if provided is not None:
        if not isinstance(provided, CircuitStore):
            pytest.fail(
                f"a pytest_circuitbreaker_make_store hook returned {provided!r} for kind {kind!r}; it must "
                "return a breaker.persistence.CircuitStore instance (or None to leave the kind to others).",
                pytrace=False,
            )
        return provided, _nothing
    if kind == "memory":
        from breaker.persistence.memory import InMemoryPersistence

        return InMemoryPersistence(), _nothing
    if kind == "dynamodb":
        return _dynamodb(request)
    if kind == "redis":
        return _redis(request)
    pytest.fail(
        f"unknown circuit store kind {kind!r} (from {source}); allowed: 'memory', 'dynamodb', 'redis', or a "
        "kind a plugin provides with the pytest_circuitbreaker_make_store hook.",
        pytrace=False,
    )
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------- dynamodb


def _dynamodb(request: pytest.FixtureRequest) -> tuple[CircuitStore, Callable[[], None]]:
    from pytest_circuitbreaker.servers import missing

    try:
        from breaker.persistence.dynamodb import DynamoDBPersistence
    except ImportError:
        missing(BACKEND_NOT_AVAILABLE)
        raise
    endpoint = setting(request.config, "dynamodb_endpoint")
    try:
        import boto3  # noqa: F401
    except ImportError:
        missing("circuit_store('dynamodb') needs boto3: pip install 'pytest-circuitbreaker[dynamodb]'")
        raise
    if isinstance(endpoint, str) and endpoint:
        client = _client(request.config, endpoint)
        table = _create_table(client)
        store = DynamoDBPersistence(table_name=table, boto3_client=client)
        return store, lambda: client.delete_table(TableName=table)
    try:
        import moto  # noqa: F401  (imported before the client: it hooks botocore at import)
    except ImportError:
        missing("circuit_store('dynamodb') needs moto to fake DynamoDB: pip install 'moto[dynamodb]'")
        raise
    from moto import mock_aws

    client = _client(request.config, None)
    mock = mock_aws()
    mock.start()
    undo = _serialize_moto_writes()
    try:
        table = _create_table(client)
    except BaseException:
        undo()
        mock.stop()
        raise
    store = DynamoDBPersistence(table_name=table, boto3_client=client)

    def cleanup() -> None:
        undo()
        mock.stop()

    return store, cleanup


def _client(config: pytest.Config, endpoint: str | None) -> Any:
    """One DynamoDB client per endpoint per session (creating one costs about 0.1 s)."""
    clients = config.stash.setdefault(_CLIENTS, {})
    client = clients.get(endpoint)
    if client is None:
        import boto3

        client = boto3.client(
            "dynamodb",
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # moto and DynamoDB Local accept any
        )
        clients[endpoint] = client
    return client


def _create_table(client: Any) -> str:
    """A fresh table as the DynamoDB store expects it (string key ``id``, TTL on ``expiration``)."""
    import uuid

    name = f"circuits-{uuid.uuid4().hex[:12]}"
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )
    return name


def _serialize_moto_writes() -> Callable[[], None]:
    """Make moto's item writes atomic, as DynamoDB's are; returns the undo.

    moto checks a condition expression and stores the item in two steps without a lock,
    so two threads' conditional writes can both pass: tests of a threaded fleet would
    see two probe owners that real DynamoDB never allows.
    """
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    originals: dict[str, Any] = {}
    for method in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = DynamoDBBackend.__dict__.get(method)
        if original is None:
            continue
        originals[method] = original

        def serialized(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, method, serialized)

    def undo() -> None:
        for method, original in originals.items():
            setattr(DynamoDBBackend, method, original)

    return undo


# ---------------------------------------------------------------------- redis


def _redis(request: pytest.FixtureRequest) -> tuple[CircuitStore, Callable[[], None]]:
    from pytest_circuitbreaker.servers import missing

    try:
        from breaker.persistence.redis import RedisPersistence
    except ImportError:
        missing(BACKEND_NOT_AVAILABLE)
        raise
    try:
        import redis
    except ImportError:
        missing("circuit_store('redis') needs redis-py: pip install 'pytest-circuitbreaker[redis]'")
        raise
    url = setting(request.config, "redis_url")
    if isinstance(url, str) and url:
        import uuid

        prefix = f"circuitbreaker-test:{uuid.uuid4().hex[:12]}:"
        store = RedisPersistence(url=url, key_prefix=prefix)

        def cleanup_shared() -> None:
            store.close()
            client = redis.Redis.from_url(url)
            try:
                keys = list(client.scan_iter(match=prefix + "*"))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()

        return store, cleanup_shared
    server = request.getfixturevalue("_circuitbreaker_redis_server")
    server.command("FLUSHALL")
    own = RedisPersistence(url=server.url)
    return own, own.close
