"""RedisPersistence: the store contract against a real server (sync, asyncio and url=
clients), fakeredis and a 3-node cluster, plus corrupt keys, outages, TTLs, timeouts and
the event loop."""

from __future__ import annotations

import asyncio
import gc
import importlib
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from breaker.errors import CircuitBreakerConfigError, CircuitBreakerPersistenceError
from breaker.persistence import CircuitRecord
from breaker.persistence.redis import RedisPersistence
from breaker.states import CircuitState
from tests.servers import RedisServer, start_redis_server

from .contract import StoreContract


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, emptied (FLUSHALL) for this test."""
    redis_server.ensure_running()
    redis_server.command("FLUSHALL")
    return redis_server.url


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain client on the same server, to look at and tamper with keys."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A server of this test's own, free to be killed or paused."""
    server = start_redis_server()
    yield server
    server.close()


def _dev_dependency(module: str) -> Any:
    """Import a package of the ``dev`` extra: skip without it, except on CI (CI=true)."""
    if os.environ.get("CI") == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f"{module} is missing: pip install -e '.[dev]'")


def _record(name: str = "db", **changes: object) -> CircuitRecord:
    return CircuitRecord.closed(name).evolve(**changes)


# -- the contract, every way of pointing the store at a server ---------------------


class RedisStoreContract(StoreContract):
    """The shared contract, plus expiry on real time and successive event loops."""

    def test_expiry_on_the_servers_clock(self, store: RedisPersistence) -> None:
        # the contract's two fake-clock expiry tests, on real time (0.15 s of it)
        v1 = _record("ttl", expires_at=time.time() + 0.1)
        assert store.write(v1, None)
        assert store.read("ttl") == v1
        time.sleep(0.15)
        assert store.read("ttl") is None
        assert store.write(v1.evolve(state=CircuitState.OPEN, opened_at=1.0), v1) is False
        assert store.write(_record("ttl"), None) is True  # a fresh first write is allowed again

    def test_one_store_across_successive_event_loops(self, store: RedisPersistence) -> None:
        previous: CircuitRecord | None = None
        for _ in range(3):  # asyncio.run per invocation, as an AWS Lambda handler does
            current = previous.evolve() if previous is not None else _record()
            assert asyncio.run(store.awrite(current, previous)) is True
            assert asyncio.run(store.aread("db")) == current
            previous = current


class TestRedisSyncClient(RedisStoreContract):
    """client=redis.Redis: sync natively, async twins in a worker thread."""

    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[RedisPersistence]:
        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        yield RedisPersistence(client=client)
        client.close()


class TestRedisAsyncioClient(RedisStoreContract):
    """client=redis.asyncio.Redis: async natively, sync calls on a twin built from its settings."""

    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[RedisPersistence]:
        client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=2, decode_responses=True)
        store = RedisPersistence(client=client)
        yield store
        store.close()


class TestRedisSyncAndAsyncioClients(RedisStoreContract):
    """client= and async_client= together: both natively."""

    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[RedisPersistence]:
        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        yield RedisPersistence(client=client, async_client=redis.asyncio.Redis.from_url(redis_url))
        client.close()


class TestRedisUrl(RedisStoreContract):
    """url=: the store builds its clients (one asyncio client per event loop)."""

    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[RedisPersistence]:
        store = RedisPersistence(url=redis_url)
        yield store
        store.close()


class TestFakeRedis(RedisStoreContract):
    """fakeredis (with Lua through lupa): the fast in-process variant."""

    @pytest.fixture
    def store(self) -> RedisPersistence:
        fakeredis = _dev_dependency("fakeredis")
        _dev_dependency("lupa")  # fakeredis runs Lua scripts with it
        server = fakeredis.FakeServer()
        return RedisPersistence(
            client=fakeredis.FakeRedis(server=server),
            async_client=fakeredis.FakeAsyncRedis(server=server),
        )


# -- import cost --------------------------------------------------------------------


def test_importing_the_store_loads_no_redis() -> None:
    code = (
        "import sys, breaker, breaker.persistence.redis\n"
        "from breaker.persistence import RedisPersistence\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('redis', 'fakeredis'))\n"
        "assert not loaded, loaded\n"
        "RedisPersistence(url='redis://localhost:6379/0')\n"
        "assert 'redis' in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# -- layout, prefix, expiry ---------------------------------------------------------


def test_the_record_is_one_readable_hash(redis_url: str, raw: redis.Redis) -> None:
    store = RedisPersistence(url=redis_url)
    record = _record(state=CircuitState.OPEN, opened_at=1700000000.25, failure_count=5)
    assert store.write(record, None)
    assert raw.type("circuit-breaker:db") == b"hash"
    assert raw.hgetall("circuit-breaker:db") == {
        b"name": b"db",
        b"state": b"OPEN",
        b"version": b"1",
        b"failure_count": b"5",
        b"pinned": b"0",
        b"opened_at": b"1700000000.25",
    }
    assert raw.ttl("circuit-breaker:db") == -1  # no expires_at, no expiry


def test_key_prefix_is_honoured(redis_url: str, raw: redis.Redis) -> None:
    a = RedisPersistence(url=redis_url, key_prefix="svc-a:")
    b = RedisPersistence(url=redis_url, key_prefix="svc-b:")
    assert a.write(_record(), None)
    assert raw.keys("*") == [b"svc-a:db"]
    assert a.key("db") == "svc-a:db"
    assert b.read("db") is None
    assert b.write(_record(), None)  # its own circuit, its own version history
    b.delete("db")
    assert raw.keys("*") == [b"svc-a:db"]


def test_key_expiry_follows_expires_at(redis_url: str, raw: redis.Redis) -> None:
    store = RedisPersistence(url=redis_url)
    expires_at = time.time() + 1.5
    v1 = _record(expires_at=expires_at)
    assert store.write(v1, None)
    assert 1000 < raw.pttl("circuit-breaker:db") <= 1500
    try:
        assert raw.pexpiretime("circuit-breaker:db") == math.ceil(expires_at * 1000)
    except redis.ResponseError:  # PEXPIRETIME is Redis >= 7.0
        pass
    v2 = v1.evolve(expires_at=None)
    assert store.write(v2, v1)
    assert raw.pttl("circuit-breaker:db") == -1  # persisted
    v3 = v2.evolve(expires_at=time.time() - 1)  # already past: gone at once
    assert store.write(v3, v2)
    assert store.read("db") is None
    assert store.write(_record(), None) is True  # and a first write is allowed again


def test_non_finite_expiry_is_a_caller_bug(redis_url: str) -> None:
    with pytest.raises(ValueError, match="expires_at must be a finite number"):
        RedisPersistence(url=redis_url).write(_record(expires_at=math.inf), None)


def test_decoded_responses_work_too(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisPersistence(client=client)
    record = _record(state=CircuitState.OPEN, opened_at=12.5, half_open_owner="env-é")
    assert store.write(record, None)
    assert store.read("db") == record
    client.close()


# -- corrupt keys -------------------------------------------------------------------

GOOD = {"name": "db", "state": "CLOSED", "version": "1", "failure_count": "0", "pinned": "0"}

CORRUPT_HASHES = {
    "not our schema": {"foo": "bar"},
    "no version": {k: v for k, v in GOOD.items() if k != "version"},
    "no state": {k: v for k, v in GOOD.items() if k != "state"},
    "bad state": {**GOOD, "state": "AJAR"},
    "version not a number": {**GOOD, "version": "one"},
    "fractional version": {**GOOD, "version": "1.5"},
    "negative version": {**GOOD, "version": "-1"},
    "failure_count not a number": {**GOOD, "failure_count": "many"},
    "opened_at not a number": {**GOOD, "state": "OPEN", "opened_at": "soon"},
    "open without opened_at": {**GOOD, "state": "OPEN"},
    "half open without owner": {**GOOD, "state": "HALF_OPEN", "opened_at": "1.0"},
    "pinned not 0/1": {**GOOD, "pinned": "yes"},
    "another circuit's record": {**GOOD, "name": "other"},
    "not utf-8": {**GOOD, "half_open_owner": b"\xff\xfe"},
}


@pytest.mark.parametrize("fields", CORRUPT_HASHES.values(), ids=CORRUPT_HASHES.keys())
def test_corrupt_hash_reads_as_a_persistence_error(
    redis_url: str, raw: redis.Redis, fields: dict[str, str | bytes]
) -> None:
    raw.hset("circuit-breaker:db", mapping=fields)  # type: ignore[arg-type]
    store = RedisPersistence(url=redis_url)
    with pytest.raises(CircuitBreakerPersistenceError, match="corrupt circuit record"):
        store.read("db")
    with pytest.raises(CircuitBreakerPersistenceError, match="corrupt circuit record"):
        asyncio.run(store.aread("db"))


OTHER_TYPES: dict[str, Callable[[redis.Redis, str], object]] = {
    "string": lambda raw, key: raw.set(key, '{"state": "OPEN"}'),
    "list": lambda raw, key: raw.rpush(key, "OPEN"),
    "set": lambda raw, key: raw.sadd(key, "OPEN"),
    "zset": lambda raw, key: raw.zadd(key, {"OPEN": 1}),
}


@pytest.mark.parametrize("kind", OTHER_TYPES)
def test_key_of_another_type_is_a_persistence_error(redis_url: str, raw: redis.Redis, kind: str) -> None:
    OTHER_TYPES[kind](raw, "circuit-breaker:db")
    store = RedisPersistence(url=redis_url)
    for attempt in (
        lambda: store.read("db"),
        lambda: store.write(_record(), None),
        lambda: asyncio.run(store.aread("db")),
        lambda: asyncio.run(store.awrite(_record(), None)),
    ):
        with pytest.raises(CircuitBreakerPersistenceError, match="is not a hash"):
            attempt()
    store.delete("db")  # and deleting it is the way out
    assert store.write(_record(), None)


def test_write_over_a_hash_without_version_is_a_persistence_error(redis_url: str, raw: redis.Redis) -> None:
    raw.hset("circuit-breaker:db", "state", "OPEN")
    store = RedisPersistence(url=redis_url)
    with pytest.raises(CircuitBreakerPersistenceError, match="no version field"):
        store.write(_record(), None)
    assert raw.hgetall("circuit-breaker:db") == {b"state": b"OPEN"}  # untouched


# -- constructor input --------------------------------------------------------------

_SYNC = redis.Redis()
_ASYNC = redis.asyncio.Redis()

BAD_INPUT: dict[str, tuple[dict[str, object], str]] = {
    "nothing": ({}, "pass url="),
    "url and client": ({"url": "redis://h", "client": _SYNC}, "either url= or client="),
    "url and async_client": ({"url": "redis://h", "async_client": _ASYNC}, "either url= or async_client="),
    "url not a str": ({"url": 6379}, "url must be a str"),
    "url scheme": ({"url": "http://h:6379"}, r"url must start with redis://, rediss://, unix://"),
    "url port": ({"url": "redis://h:99999"}, "url 'redis://h:99999' is invalid"),
    "url query": ({"url": "redis://h?socket_timeout=soon"}, "is invalid"),
    "unix cluster": ({"url": "unix:///tmp/r.sock", "cluster": True}, r"\(cluster=True\)"),
    "zero timeout": ({"url": "redis://h", "socket_timeout": 0}, "socket_timeout must be a number"),
    "negative timeout": ({"url": "redis://h", "socket_connect_timeout": -1}, "socket_connect_timeout"),
    "string timeout": ({"url": "redis://h", "socket_timeout": "1"}, "socket_timeout must be"),
    "bool timeout": ({"url": "redis://h", "socket_timeout": True}, "socket_timeout must be"),
    "infinite timeout": ({"url": "redis://h", "socket_timeout": math.inf}, "socket_timeout must be"),
    "negative retries": ({"url": "redis://h", "retries": -1}, "retries must be an int >= 0"),
    "bool retries": ({"url": "redis://h", "retries": True}, "retries must be an int >= 0"),
    "cluster not bool": ({"url": "redis://h", "cluster": "yes"}, "cluster must be a bool"),
    "options not a mapping": ({"url": "redis://h", "client_options": "x"}, "client_options must be"),
    "timeout in options": (
        {"url": "redis://h", "client_options": {"socket_timeout": 9}},
        "socket_timeout= parameter",
    ),
    "retry in options": ({"url": "redis://h", "client_options": {"retry": None}}, "retries= parameter"),
    "not a client": ({"client": object()}, "client must be a redis-py client"),
    "client and timeout": ({"client": _SYNC, "socket_timeout": 1}, "socket_timeout=1 applies to url= only"),
    "client and cluster": ({"client": _SYNC, "cluster": True}, "cluster=True applies to url= only"),
    "async_client alone": ({"async_client": _ASYNC}, "async_client= goes with a sync client="),
    "sync async_client": ({"client": _SYNC, "async_client": _SYNC}, "async_client must be an asyncio"),
    "two asyncio clients": ({"client": _ASYNC, "async_client": _ASYNC}, "is an asyncio client"),
    "bytes prefix": ({"url": "redis://h", "key_prefix": b"cb:"}, "key_prefix must be a str"),
}


@pytest.mark.parametrize(("kwargs", "message"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_constructor_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CircuitBreakerConfigError, match=message) as caught:
        RedisPersistence(**kwargs)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    assert caught.value.message.startswith("RedisPersistence: ")


def test_repr_hides_the_password() -> None:
    store = RedisPersistence(url="redis://app:s3cret@cache:6379/0")
    assert "s3cret" not in repr(store)
    assert "redis://app:***@cache:6379/0" in repr(store)
    with pytest.raises(CircuitBreakerConfigError) as caught:
        RedisPersistence(url="redis://app:s3cret@cache:99999/0")
    assert "s3cret" not in str(caught.value)


def test_asyncio_cluster_client_alone_cannot_serve_sync_calls() -> None:
    store = RedisPersistence(client=redis.asyncio.RedisCluster(host="127.0.0.1", port=7000))
    with pytest.raises(CircuitBreakerConfigError, match="pass a sync client as client="):
        store.read("db")


def test_sync_twin_of_an_asyncio_client_keeps_its_settings(redis_server: RedisServer, redis_url: str) -> None:
    client = redis.asyncio.Redis(host=redis_server.host, port=redis_server.port, db=3, socket_timeout=1.25)
    store = RedisPersistence(client=client)
    assert store.write(_record(), None)
    settings = store._sync().connection_pool.connection_kwargs
    assert (settings["host"], settings["port"], settings["db"], settings["socket_timeout"]) == (
        redis_server.host,
        redis_server.port,
        3,
        1.25,
    )
    other_db = redis.Redis(host=redis_server.host, port=redis_server.port, db=3)
    assert other_db.exists("circuit-breaker:db") == 1
    other_db.close()
    store.close()


# -- outages and timeouts -----------------------------------------------------------


def test_a_killed_server_fails_fast_and_the_store_recovers(own_server: RedisServer) -> None:
    store = RedisPersistence(url=own_server.url)
    v1 = _record()
    assert store.write(v1, None)
    own_server.kill()
    for attempt in (
        lambda: store.read("db"),
        lambda: store.write(v1.evolve(), v1),
        lambda: store.delete("db"),
    ):
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            attempt()
        assert time.monotonic() - started < 2
    own_server.restart()  # back, empty: the same store object works again
    assert store.read("db") is None
    assert store.write(v1, None)
    store.close()


def test_a_hung_server_times_out_within_the_default_timeouts(own_server: RedisServer) -> None:
    store = RedisPersistence(url=own_server.url)
    assert store.write(_record(), None)  # a pooled connection exists
    own_server.pause()
    try:
        for attempt in (
            lambda: store.read("db"),
            lambda: store.write(_record("other"), None),
            lambda: RedisPersistence(url=own_server.url).read("db"),  # a fresh connection
            lambda: asyncio.run(store.aread("db")),
        ):
            started = time.monotonic()
            with pytest.raises(redis.TimeoutError):
                attempt()
            assert time.monotonic() - started < 1.5  # 0.5 s socket timeout, no retries
    finally:
        own_server.resume()
    store.close()


# -- async: the event loop keeps running, one store across loops -------------------


async def _ticks_during(coroutine_factory: object, server: RedisServer) -> tuple[int, float]:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    server.command("CLIENT", "PAUSE", "300")  # the server answers nobody for 0.3 s
    started = time.monotonic()
    await coroutine_factory()  # type: ignore[operator]
    elapsed = time.monotonic() - started
    task.cancel()
    return ticks, elapsed


@pytest.mark.parametrize("how", ["url", "asyncio client", "sync client in a thread"])
@pytest.mark.asyncio
async def test_async_twins_do_not_block_the_event_loop(
    redis_server: RedisServer, redis_url: str, how: str
) -> None:
    if how == "url":
        store = RedisPersistence(url=redis_url)
    elif how == "asyncio client":
        store = RedisPersistence(client=redis.asyncio.Redis.from_url(redis_url, socket_timeout=2))
    else:
        store = RedisPersistence(client=redis.Redis.from_url(redis_url, socket_timeout=2))
    assert await store.awrite(_record(), None)
    ticks, elapsed = await _ticks_during(lambda: store.aread("db"), redis_server)
    assert elapsed >= 0.2  # the read really waited for the paused server...
    assert ticks >= 8  # ...while the loop kept running the ticker
    await store.aclose()


def test_one_store_serves_successive_event_loops_and_closes_their_connections(redis_url: str) -> None:
    user_client = redis.asyncio.Redis.from_url(redis_url)
    stores = [RedisPersistence(url=redis_url), RedisPersistence(client=user_client)]

    async def invocation(store: RedisPersistence, n: int) -> CircuitRecord | None:
        current = await store.aread("db")
        assert await store.awrite(_record() if current is None else current.evolve(), current)
        return await store.aread("db")

    for store in stores:
        for n in range(1, 4):  # asyncio.run per invocation: the AWS Lambda pattern
            record = asyncio.run(invocation(store, n))
            assert record is not None
            assert store._loops == {}  # the loop's client was dropped when the loop shut down
        store.delete("db")
    assert not any(c.is_connected for c in user_client.connection_pool._available_connections)
    gc.collect()  # an unclosed socket would show up here as an (error-level) ResourceWarning


# A loop closed without shutting its async generators down cannot close its sockets;
# the store only has to forget it and carry on (the sockets warn when collected).
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_loop_closed_without_shutdown_is_forgotten(redis_url: str) -> None:
    store = RedisPersistence(url=redis_url)
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(store.awrite(_record(), None))
    loop.close()  # no shutdown_asyncgens(): the store's closer never ran
    assert list(store._loops) == [loop]
    assert asyncio.run(store.aread("db")) == _record()
    assert store._loops == {}
    gc.collect()


# -- Redis Cluster ------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[list[RedisServer]]:
    """Three masters with 16384 slots between them (no replicas), ready to serve."""
    nodes: list[RedisServer] = []
    try:
        for _ in range(3):
            nodes.append(start_redis_server(cluster=True))
        ranges = [(0, 5460), (5461, 10922), (10923, 16383)]
        for node, (first, last) in zip(nodes, ranges, strict=True):
            node.command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
        for node in nodes[1:]:
            nodes[0].command("CLUSTER", "MEET", node.host, node.port)
        deadline = time.monotonic() + 15
        while not all(b"cluster_state:ok" in node.command("CLUSTER", "INFO") for node in nodes):  # type: ignore[operator]
            if time.monotonic() > deadline:
                pytest.fail("the 3-node cluster did not reach cluster_state:ok in 15 s")
            time.sleep(0.05)
        # every node must also agree on who owns every slot before clients connect
        while any(len(node.command("CLUSTER", "SLOTS")) != 3 for node in nodes):  # type: ignore[arg-type]
            if time.monotonic() > deadline:
                pytest.fail("the cluster nodes did not agree on the slot map in 15 s")
            time.sleep(0.05)
        yield nodes
    finally:
        for node in nodes:
            node.close()


class TestRedisCluster(RedisStoreContract):
    """url= with cluster=True against a real 3-node cluster."""

    @pytest.fixture
    def store(self, redis_cluster: list[RedisServer]) -> Iterator[RedisPersistence]:
        for node in redis_cluster:
            node.command("FLUSHALL")
        store = RedisPersistence(url=redis_cluster[0].url, cluster=True)
        yield store
        store.close()

    def test_circuits_spread_over_the_nodes(
        self, store: RedisPersistence, redis_cluster: list[RedisServer]
    ) -> None:
        names = [f"circuit-{i}" for i in range(30)]
        for name in names:
            assert store.write(_record(name), None)
        held = [node.command("DBSIZE") for node in redis_cluster]
        assert sum(held) == 30  # type: ignore[arg-type]
        assert all(count for count in held)  # each node holds some: many slots, one per circuit
        for name in names:
            assert store.read(name) == _record(name)
