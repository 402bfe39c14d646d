"""Store outages against real servers (DESIGN §4.8): a killed or hung redis-server, a
killed or hung moto server (DynamoDB over HTTP).

What each test shows: no store error reaches the caller; the first failed store call
costs one store timeout, and the calls after it, during ``store_backoff``, do not touch
the store at all (well under 1 ms each); meanwhile the environment is a correct local
breaker (it trips on its own failures and rejects); once the store is back, the trip
made during the outage is written and ``on_transition`` fires for it exactly once.

Last, writes that the store applied but whose reply came too late (a proxy holds it
back past the client's timeout, or botocore's retry then meets the first attempt's
item): the transition is reported exactly once, when the environment learns it.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitTransition,
    Environment,
    events,
)
from breaker.persistence import CircuitRecord, CircuitStore
from breaker.persistence.dynamodb import DynamoDBPersistence
from breaker.persistence.redis import RedisPersistence
from breaker.states import CircuitState
from tests.servers import RedisServer, start_redis_server
from tests.stores.moto_server import MotoServer

from .conftest import new_table
from .support import RestartableMotoServer, SlowReplyProxy, sleep_until
from .workers import DownstreamError, close_store, dynamodb_client

pytestmark = pytest.mark.slow

#: The store timeouts of these tests (connect and read): short, but far above 1 ms.
TIMEOUT = 0.25
BACKOFF = 1.0
THRESHOLD = 3


class StoreOps:
    """Every store operation a breaker attempts (reads, writes and faults), from its events."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reads = self.writes = self.faults = 0
        self._unsubscribe = events.subscribe(self._on_event)

    def _on_event(self, event: events.Event) -> None:
        if event.name != self.name:
            return
        if event.kind == events.STORE_READ:
            self.reads += 1
        elif event.kind == events.STORE_WRITE:
            self.writes += 1
        elif event.kind == events.STORE_FAULT:
            self.faults += 1

    @property
    def total(self) -> int:
        return self.reads + self.writes + self.faults

    def close(self) -> None:
        self._unsubscribe()


class Downstream:
    """A dependency that is healthy or failing, and counts its calls."""

    def __init__(self) -> None:
        self.failing = False
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failing:
            raise DownstreamError("down")
        return "ok"


def outcome(breaker: CircuitBreaker, downstream: Callable[[], str]) -> str:
    """One protected call: "ok", "failed" (its own error), "rejected", or "leaked ..." (a bug)."""
    try:
        return str(breaker.call(downstream))
    except DownstreamError:
        return "failed"
    except CircuitBreakerOpenError:
        return "rejected"
    except Exception as exc:
        return f"leaked {type(exc).__name__}: {exc}"


def make_breaker(store: CircuitStore, name: str, hooks: list[CircuitTransition]) -> CircuitBreaker:
    config = CircuitBreakerConfig(
        failure_threshold=THRESHOLD,
        recovery_timeout=60,  # stays OPEN for the whole test once tripped
        local_cache_max_age=0,  # healthy calls read the store every time: a fault is seen at once
        store_backoff=BACKOFF,
    )
    return CircuitBreaker(
        name, store, on_transition=hooks.append, config=config, environment=Environment("outage")
    )


def timeout_paid_once(
    breaker: CircuitBreaker, downstream: Downstream, ops: StoreOps, pause: Callable[[], None]
) -> None:
    """Hang the store; the first call pays the timeout, the next 50 pay nothing."""
    assert outcome(breaker, downstream) == "ok"
    assert (ops.faults, ops.reads) == (0, 1)

    pause()
    started = time.perf_counter()
    assert outcome(breaker, downstream) == "ok"  # the read times out; the call still runs
    first = time.perf_counter() - started
    assert ops.faults == 1
    assert TIMEOUT * 0.9 <= first < 4 * TIMEOUT, first

    latencies = []
    before = ops.total
    for _ in range(50):
        started = time.perf_counter()
        result = outcome(breaker, downstream)
        latencies.append(time.perf_counter() - started)
        assert result == "ok"
    assert ops.total == before, "a call during store_backoff touched the store"
    assert_fast(latencies)


def assert_fast(latencies: list[float]) -> None:
    """Calls after the detection cost well under 1 ms, and none pays a store timeout again.

    The median and the 90th percentile are held to 1 ms (a loaded machine may stall any
    single call); the slowest call must stay far from the store timeout.
    """
    shown = f"mean {statistics.mean(latencies) * 1e3:.3f} ms, max {max(latencies) * 1e3:.3f} ms"
    assert statistics.median(latencies) < 0.001, shown
    assert statistics.quantiles(latencies, n=10)[-1] < 0.001, shown
    assert max(latencies) < TIMEOUT * 0.8, f"a call paid a store timeout again: {shown}"


def trips_locally_then_syncs(
    breaker: CircuitBreaker,
    downstream: Downstream,
    ops: StoreOps,
    hooks: list[CircuitTransition],
    store_back: Callable[[], None],
) -> None:
    """With the store still down: trip on local failures and reject; then the store returns."""
    downstream.failing = True
    assert [outcome(breaker, downstream) for _ in range(THRESHOLD)] == ["failed"] * THRESHOLD
    calls = downstream.calls
    assert outcome(breaker, downstream) == "rejected"
    assert downstream.calls == calls, "a locally open circuit called the downstream"
    assert hooks == [], "on_transition fired for a trip that is not stored"
    tripped_at = time.time()

    store_back()
    sleep_until(time.time() + BACKOFF + 0.05)
    assert outcome(breaker, downstream) == "rejected"  # reads the store again: writes the trip
    assert [(h.from_state, h.to_state) for h in hooks] == [(CircuitState.CLOSED, CircuitState.OPEN)]
    assert hooks[0].opened_at is not None
    assert tripped_at - 2 <= hooks[0].opened_at <= tripped_at
    stored = breaker.store.read(breaker.name)
    assert stored is not None
    assert (stored.state, stored.opened_at, stored.failure_count) == (
        CircuitState.OPEN,
        hooks[0].opened_at,
        THRESHOLD,
    )
    for _ in range(5):
        assert outcome(breaker, downstream) == "rejected"
    assert len(hooks) == 1, "the pending trip was reported more than once"
    assert downstream.calls == calls


# ----------------------------------------------------------------------------- redis


@pytest.fixture
def redis_outage_server() -> Iterator[RedisServer]:
    server = start_redis_server()
    yield server
    server.close()


@pytest.fixture
def name() -> str:
    return f"outage-{time.monotonic_ns()}"


@pytest.fixture
def ops(name: str) -> Iterator[StoreOps]:
    recorder = StoreOps(name)
    yield recorder
    recorder.close()


def redis_store(server: RedisServer) -> RedisPersistence:
    return RedisPersistence(url=server.url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT)


def test_hung_redis_costs_one_timeout_then_the_breaker_works_locally(
    redis_outage_server: RedisServer, name: str, ops: StoreOps
) -> None:
    store = redis_store(redis_outage_server)
    hooks: list[CircuitTransition] = []
    breaker = make_breaker(store, name, hooks)
    downstream = Downstream()
    try:
        timeout_paid_once(breaker, downstream, ops, redis_outage_server.pause)
        trips_locally_then_syncs(breaker, downstream, ops, hooks, redis_outage_server.resume)
    finally:
        redis_outage_server.resume()
        store.close()


def test_redis_killed_during_traffic_then_restarted(
    redis_outage_server: RedisServer, name: str, ops: StoreOps
) -> None:
    store = redis_store(redis_outage_server)
    hooks: list[CircuitTransition] = []
    breaker = make_breaker(store, name, hooks)
    downstream = Downstream()
    results: list[str] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            results.append(outcome(breaker, downstream))
            time.sleep(0.002)

    thread = threading.Thread(target=traffic, daemon=True)
    thread.start()
    try:
        time.sleep(0.2)
        assert ops.reads > 0
        assert ops.faults == 0
        healthy_calls = len(results)

        redis_outage_server.kill()
        killed = time.monotonic()
        time.sleep(0.3)
        downstream.failing = True
        deadline = time.monotonic() + 10
        while "rejected" not in results and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        outage = time.monotonic() - killed
        assert "rejected" in results, "the environment did not trip locally"
        assert hooks == []
        # Calls went on at full pace; the store was tried about once per backoff period.
        assert len(results) - healthy_calls > 100
        assert 1 <= ops.faults <= outage / BACKOFF + 1, (ops.faults, outage)

        redis_outage_server.restart()
        deadline = time.monotonic() + BACKOFF + 5
        while not hooks and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join(10)
        store.close()

    leaked = [result for result in results if result not in ("ok", "failed", "rejected")]
    assert leaked == [], leaked[:3]
    assert [(h.from_state, h.to_state) for h in hooks] == [(CircuitState.CLOSED, CircuitState.OPEN)]
    check = redis_store(redis_outage_server)
    try:
        stored = check.read(name)
    finally:
        check.close()
    assert stored is not None
    assert (stored.state, stored.opened_at) == (CircuitState.OPEN, hooks[0].opened_at)
    assert results[-1] == "rejected"


# -------------------------------------------------------------------------- dynamodb


@pytest.fixture
def moto(restartable_moto: RestartableMotoServer) -> Iterator[RestartableMotoServer]:
    restartable_moto.ensure_running()
    yield restartable_moto
    restartable_moto.ensure_running()


def dynamodb_store(moto: RestartableMotoServer, table: str) -> DynamoDBPersistence:
    return DynamoDBPersistence(table, boto3_client=dynamodb_client(moto.url, TIMEOUT))


def recreate_table(moto: RestartableMotoServer, table: str) -> None:
    """The store is back (a restarted moto server is empty): the same, empty table again."""
    admin = dynamodb_client(moto.url, 5.0)
    try:
        admin.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    finally:
        admin.close()


def test_hung_moto_server_costs_one_timeout_then_the_breaker_works_locally(
    moto: RestartableMotoServer, name: str, ops: StoreOps
) -> None:
    store = dynamodb_store(moto, new_table(moto.url))
    hooks: list[CircuitTransition] = []
    breaker = make_breaker(store, name, hooks)
    downstream = Downstream()
    try:
        timeout_paid_once(breaker, downstream, ops, moto.pause)
        trips_locally_then_syncs(breaker, downstream, ops, hooks, moto.resume)
    finally:
        moto.resume()
        store.client.close()


def test_moto_server_killed_then_restarted(moto: RestartableMotoServer, name: str, ops: StoreOps) -> None:
    table = new_table(moto.url)
    store = dynamodb_store(moto, table)
    hooks: list[CircuitTransition] = []
    breaker = make_breaker(store, name, hooks)
    downstream = Downstream()

    def restart() -> None:
        moto.restart()
        recreate_table(moto, table)

    try:
        assert outcome(breaker, downstream) == "ok"
        moto.kill()
        started = time.perf_counter()
        assert outcome(breaker, downstream) == "ok"  # connection refused: noticed, not raised
        detection = time.perf_counter() - started
        assert ops.faults == 1
        before = ops.total
        latencies: list[float] = []
        for _ in range(50):
            started = time.perf_counter()
            assert outcome(breaker, downstream) == "ok"
            latencies.append(time.perf_counter() - started)
        assert ops.total == before
        assert detection < 4 * TIMEOUT
        assert_fast(latencies)
        trips_locally_then_syncs(breaker, downstream, ops, hooks, restart)
    finally:
        store.client.close()


# ------------------------------------------------------------------- lost write replies


class LateReplies:
    """A store reached through a SlowReplyProxy, plus a direct view of the same records."""

    def __init__(
        self, store: CircuitStore, direct: CircuitStore, proxy: SlowReplyProxy, *, retried: bool = False
    ) -> None:
        self.store = store
        self.direct = direct
        self.proxy = proxy
        self.retried = retried  # a DynamoDB client that makes two attempts
        self.sent: list[str] = []  # its PutItem attempts (retries included)


@pytest.fixture(params=["redis", "dynamodb", "dynamodb-retried"])
def late(request: pytest.FixtureRequest, name: str) -> Iterator[LateReplies]:
    """ "dynamodb-retried": botocore retries a timed-out PutItem (two attempts, as the store's
    default client does), and the retry fails its condition on the first attempt's item."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_outage_server")
        proxy = SlowReplyProxy(server.port)
        url = f"redis://127.0.0.1:{proxy.port}/0"
        store: CircuitStore = RedisPersistence(
            url=url, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
        )
        late = LateReplies(store, RedisPersistence(url=server.url), proxy)
        store.write(CircuitRecord.closed(f"{name}-warm").evolve(), None)  # loads the Lua script
    else:
        moto: MotoServer = request.getfixturevalue("fleet_moto")
        proxy = SlowReplyProxy(int(moto.url.rsplit(":", 1)[1]))
        table = new_table(moto.url)
        attempts = 2 if request.param == "dynamodb-retried" else 1
        client = dynamodb_client(f"http://127.0.0.1:{proxy.port}", TIMEOUT, attempts=attempts)
        direct = DynamoDBPersistence(table, boto3_client=dynamodb_client(moto.url, 5.0))
        store = DynamoDBPersistence(table, boto3_client=client)
        late = LateReplies(store, direct, proxy, retried=attempts == 2)
        client.meta.events.register("before-send.dynamodb.PutItem", lambda **_: late.sent.append("PutItem"))
    try:
        yield late
    finally:
        proxy.close()
        close_store(late.store)
        close_store(late.direct)


def lost_reply_breaker(
    late: LateReplies, name: str, hooks: list[CircuitTransition], *, recovery_timeout: float
) -> CircuitBreaker:
    config = CircuitBreakerConfig(
        failure_threshold=1,
        recovery_timeout=recovery_timeout,
        success_threshold=1,
        local_cache_max_age=0.5,
        store_backoff=0.5,
    )
    return CircuitBreaker(
        name, late.store, on_transition=hooks.append, config=config, environment=Environment("lost-reply")
    )


def check_write_applied_reply_lost(late: LateReplies, name: str, ops: StoreOps, state: CircuitState) -> None:
    """The store holds the write whose reply came too late; the breaker saw a fault or a retry."""
    time.sleep(3 * TIMEOUT)  # the held reply has been dropped by now
    stored = late.direct.read(name)
    assert stored is not None
    assert stored.state is state, "the store did not apply the write: no lost reply"
    if late.retried:  # the retry answered "condition failed" on our own item
        assert late.sent[-2:] == ["PutItem", "PutItem"]
        assert ops.faults == 0
    else:
        assert ops.faults == 1


def test_a_trip_stored_without_its_reply_is_reported_exactly_once(
    late: LateReplies, name: str, ops: StoreOps
) -> None:
    """The store applies the trip but its reply comes after the client's timeout.

    The environment cannot know the trip was stored: it acts as a local breaker. The first
    read that shows its own record must report the transition, once: neither drop it as
    someone else's, nor write it again. (A retried write that finds its own first attempt
    stored is a success, reported at once.)
    """
    hooks: list[CircuitTransition] = []
    breaker = lost_reply_breaker(late, name, hooks, recovery_timeout=60)
    downstream = Downstream()
    assert outcome(breaker, downstream) == "ok"  # reads: CLOSED, fresh for 0.5 s
    late.proxy.hold_next_reply(3 * TIMEOUT)  # the trip's write reply arrives too late
    downstream.failing = True
    assert outcome(breaker, downstream) == "failed"  # trips: the write "fails"
    check_write_applied_reply_lost(late, name, ops, CircuitState.OPEN)
    stored = late.direct.read(name)
    assert stored is not None
    if not late.retried:
        assert hooks == [], "reported before anything showed it was stored"
        sleep_until(time.time() + 0.6)  # past store_backoff and local_cache_max_age
        assert outcome(breaker, downstream) == "rejected"  # reads: finds its own trip
    assert [(h.from_state, h.to_state, h.opened_at) for h in hooks] == [
        (CircuitState.CLOSED, CircuitState.OPEN, stored.opened_at)
    ]
    assert [outcome(breaker, downstream) for _ in range(3)] == ["rejected"] * 3
    assert len(hooks) == 1
    assert late.direct.read(name) == stored, "the trip was written twice"


def test_an_election_stored_without_its_reply_is_reported_exactly_once(
    late: LateReplies, name: str, ops: StoreOps
) -> None:
    """The same for OPEN→HALF_OPEN: the probe runs, and the election is reported once read."""
    hooks: list[CircuitTransition] = []
    breaker = lost_reply_breaker(late, name, hooks, recovery_timeout=0.5)
    downstream = Downstream()
    downstream.failing = True
    assert outcome(breaker, downstream) == "failed"  # a stored trip (replies on time)
    opened = late.direct.read(name)
    assert opened is not None
    assert opened.opened_at is not None
    sleep_until(opened.opened_at + 0.55)  # the recovery window has passed
    assert breaker.info().state is CircuitState.OPEN  # a fresh view: the next call only writes
    downstream.failing = False
    late.proxy.hold_next_reply(3 * TIMEOUT)  # the election's write reply arrives too late
    assert outcome(breaker, downstream) == "ok"  # elected (unknowingly): probes, locally or not
    if late.retried:  # the retry found the election stored: the probe then closed the circuit
        check_write_applied_reply_lost(late, name, ops, CircuitState.CLOSED)
    else:  # a fault: the probe ran as a local breaker's; nothing reported yet
        check_write_applied_reply_lost(late, name, ops, CircuitState.HALF_OPEN)
        assert [(h.from_state, h.to_state) for h in hooks] == [(CircuitState.CLOSED, CircuitState.OPEN)]
    sleep_until(time.time() + 0.6)
    for _ in range(3):
        assert outcome(breaker, downstream) == "ok"  # it finds its own probe, probes and closes
    final = late.direct.read(name)
    assert final is not None
    assert final.state is CircuitState.CLOSED
    assert [(h.from_state, h.to_state) for h in hooks] == [
        (CircuitState.CLOSED, CircuitState.OPEN),
        (CircuitState.OPEN, CircuitState.HALF_OPEN),
        (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    ]
