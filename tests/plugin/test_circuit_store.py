"""circuit_store: the embedded store by default, DynamoDB on moto, a real Redis server, a plugin's kind."""

from __future__ import annotations

import shutil

import pytest

from .conftest import Runner

needs_redis_server = pytest.mark.skipif(
    shutil.which("redis-server") is None and shutil.which("valkey-server") is None,
    reason="no redis-server or valkey-server binary",
)

TRIP = """
import pytest
from breaker import CircuitBreakerConfig, circuit_breaker

@circuit_breaker(name="payments", config=CircuitBreakerConfig(failure_threshold=2))
def charge(api, amount):
    return api(amount)

def trip(downstream):
    downstream.outage()
    for _ in range(2):
        with pytest.raises(ConnectionError):
            charge(downstream, 1)
"""


def test_memory_store_by_default_and_breakers_use_it(run: Runner) -> None:
    run.file(
        TRIP
        + """
from breaker.persistence import InMemoryPersistence
from breaker.persistence.memory import default_store

def test_it(circuit_store, downstream):
    assert isinstance(circuit_store, InMemoryPersistence) and circuit_store.kind == "memory"
    assert default_store() is circuit_store
    trip(downstream)
    assert circuit_store.read("payments").state == "OPEN"

def test_store_is_fresh_per_test(circuit_store):
    assert circuit_store.names() == []
"""
    )
    run().assert_outcomes(passed=2)


def test_dynamodb_marker_gives_a_ready_table_on_moto(run: Runner) -> None:
    pytest.importorskip("moto")
    run.file(
        TRIP
        + """
@pytest.mark.circuit_store("dynamodb")
def test_it(circuit_store, downstream):
    assert circuit_store.kind == "dynamodb"
    assert circuit_store.table_name.startswith("circuits-")
    trip(downstream)
    item = circuit_store.client.get_item(TableName=circuit_store.table_name, Key={"id": {"S": "payments"}})
    assert item["Item"]["state"] == {"S": "OPEN"}

@pytest.mark.circuit_store("dynamodb")
def test_table_is_fresh_per_test(circuit_store):
    assert circuit_store.read("payments") is None
"""
    )
    run().assert_outcomes(passed=2)


@needs_redis_server
def test_redis_marker_gives_a_real_server_flushed_per_test(run: Runner) -> None:
    run.file(
        TRIP
        + """
import redis

@pytest.mark.circuit_store("redis")
def test_first(circuit_store, downstream):
    assert circuit_store.kind == "redis"
    trip(downstream)
    assert circuit_store.read("payments").state == "OPEN"

@pytest.mark.circuit_store("redis")
def test_second_sees_a_flushed_server(circuit_store):
    assert circuit_store.read("payments") is None
"""
    )
    run().assert_outcomes(passed=2)


@needs_redis_server
def test_option_and_ini_choose_the_store_for_unmarked_tests(run: Runner) -> None:
    run.file(
        """
def test_it(circuit_store):
    print("KIND", circuit_store.kind)
"""
    )
    run("-s", "--circuitbreaker-store=redis").stdout.fnmatch_lines(["*KIND redis*"])
    run.ini(
        "[pytest]\naddopts = -p no:hypothesispytest\nasyncio_default_fixture_loop_scope = function\n"
        "circuitbreaker_store = redis\n"
    )
    result = run("-s")
    result.stdout.fnmatch_lines(["circuitbreaker: seed=* store=redis", "*KIND redis*"])
    result.assert_outcomes(passed=1)


def test_existing_redis_url_is_used_without_flushing(run: Runner, pytester: pytest.Pytester) -> None:
    pytest.importorskip("redis")
    if shutil.which("redis-server") is None:
        pytest.skip("no redis-server binary")
    from pytest_circuitbreaker.servers import RedisServer, find_server_binary

    server = RedisServer(find_server_binary() or "redis-server")
    server.start()
    try:
        import redis

        client = redis.Redis.from_url(server.url)
        client.set("someone-else", "keep me")
        run.file(
            TRIP
            + """
def test_it(circuit_store, downstream):
    trip(downstream)
    print("KEY", circuit_store.key("payments"))
"""
        )
        result = run("-s", f"--circuitbreaker-redis-url={server.url}", "--circuitbreaker-store=redis")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*KEY circuitbreaker-test:*:payments*"])
        assert client.get("someone-else") == b"keep me"  # not flushed
        assert client.keys("circuitbreaker-test:*") == []  # the test's keys were deleted
        client.close()
    finally:
        server.stop()


def test_unknown_kind_says_what_is_allowed(run: Runner) -> None:
    run.file(
        """
import pytest

@pytest.mark.circuit_store("sqlite")
def test_marked(circuit_store):
    pass

def test_option(circuit_store):
    pass
"""
    )
    result = run("--circuitbreaker-store=mongo")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*unknown circuit store kind 'sqlite' (from @pytest.mark.circuit_store('sqlite')); allowed: "
            "'memory', 'dynamodb', 'redis', or a kind a plugin provides with the "
            "pytest_circuitbreaker_make_store hook.*",
            "*unknown circuit store kind 'mongo' (from --circuitbreaker-store=mongo*",
        ]
    )


def test_marker_needs_exactly_one_kind(run: Runner) -> None:
    run.file(
        """
import pytest

@pytest.mark.circuit_store("memory", "redis")
def test_it(circuit_store):
    pass
"""
    )
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*@pytest.mark.circuit_store takes one store kind*got args=('memory', 'redis')*"]
    )


def test_a_plugin_can_add_a_store_kind(run: Runner) -> None:
    run.pytester.makeconftest(
        """
from breaker.persistence import InMemoryPersistence

class CountingStore(InMemoryPersistence):
    kind = "counting"
    writes = 0

    def write(self, record, expected):
        self.writes += 1
        return super().write(record, expected)

def pytest_circuitbreaker_make_store(kind, request):
    if kind == "counting":
        return CountingStore()
    return None
"""
    )
    run.file(
        TRIP
        + """
@pytest.mark.circuit_store("counting")
def test_custom(circuit_store, downstream):
    trip(downstream)
    assert circuit_store.kind == "counting" and circuit_store.writes == 1

def test_builtin_still_works(circuit_store):
    assert circuit_store.kind == "memory"
"""
    )
    run().assert_outcomes(passed=2)


def test_a_hook_returning_a_non_store_is_reported(run: Runner) -> None:
    run.pytester.makeconftest(
        """
def pytest_circuitbreaker_make_store(kind, request):
    return "not a store"
"""
    )
    run.file("def test_it(circuit_store): pass")
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*pytest_circuitbreaker_make_store hook returned 'not a store' for kind 'memory'; it must return*"]
    )


def test_dynamodb_endpoint_option_uses_that_endpoint(run: Runner) -> None:
    pytest.importorskip("moto.server")
    import boto3
    from moto.server import ThreadedMotoServer

    from pytest_circuitbreaker.servers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        run.file(
            TRIP
            + """
def test_it(circuit_store, downstream):
    assert circuit_store.kind == "dynamodb"
    trip(downstream)
    print("TABLE", circuit_store.table_name)
"""
        )
        result = run(
            "-s", "--circuitbreaker-store=dynamodb", f"--circuitbreaker-dynamodb-endpoint={endpoint}"
        )
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*TABLE circuits-*"])
        client = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        assert client.list_tables()["TableNames"] == []  # made for the test, deleted after it
    finally:
        server.stop()


def test_no_server_binary_skips_with_the_reason_and_fails_on_ci(
    run: Runner, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pytest.importorskip("redis")
    monkeypatch.setenv("PATH", str(tmp_path_factory.mktemp("empty-path")))
    monkeypatch.delenv("CIRCUITBREAKER_REDIS_SERVER", raising=False)
    monkeypatch.delenv("CI", raising=False)
    run.file(
        """
import pytest

@pytest.mark.circuit_store("redis")
def test_it(circuit_store):
    pass
"""
    )
    result = run("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*circuit_store('redis') needs a Redis server: no redis-server or valkey-server*"]
    )
    monkeypatch.setenv("CI", "true")
    result = run()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*CI must not skip the store tests: circuit_store('redis') needs a Redis server*"]
    )
    monkeypatch.setenv("CIRCUITBREAKER_REDIS_SERVER", "no-such-redis-server")
    run().stdout.fnmatch_lines(
        [
            "*CIRCUITBREAKER_REDIS_SERVER='no-such-redis-server' is not an executable: point it at a redis-server*"
        ]
    )
