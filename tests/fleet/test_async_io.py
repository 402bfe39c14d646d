"""Async code and a slow store (DESIGN §5): store I/O never blocks the event loop.

An ``async def`` protected by ``circuit_breaker`` awaits its store operations: with
``RedisPersistence(url=...)`` on the loop's own asyncio client, with
``DynamoDBPersistence`` (boto3 blocks) in a worker thread. Here the store takes 0.4 s to
answer every operation (a redis-server stopped with SIGSTOP and resumed by a timer; a
botocore hook that sleeps before each DynamoDB call) while a ticker task on the same
loop keeps ticking: its longest gap stays far below the store's delay, through a read
and through the compare-and-set write of a trip.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from breaker import CircuitBreakerConfig, CircuitTransition, Environment, circuit_breaker, events
from breaker.persistence import CircuitStore
from breaker.persistence.dynamodb import DynamoDBPersistence
from breaker.persistence.redis import RedisPersistence
from breaker.states import CircuitState
from tests.servers import RedisServer, start_redis_server
from tests.stores.moto_server import MotoServer

from .conftest import new_table
from .workers import DownstreamError, dynamodb_client

pytestmark = pytest.mark.slow

DELAY = 0.4  # seconds every store operation takes while the store is slow
TICK = 0.01
STORE_EVENTS = (events.STORE_FAULT, events.STORE_READ, events.STORE_WRITE)


class Ticker:
    """A task that wakes every 10 ms and notes when; ``gaps`` shows any blocking of the loop."""

    def __init__(self) -> None:
        self.times: list[float] = []

    async def run(self) -> None:
        while True:
            self.times.append(time.perf_counter())
            await asyncio.sleep(TICK)

    def between(self, start: float, end: float) -> tuple[int, float]:
        """Ticks in [start, end] and the longest gap between ticks (or the edges) there."""
        inside = [t for t in self.times if start <= t <= end]
        edges = [start, *inside, end]
        return len(inside), max(b - a for a, b in itertools.pairwise(edges))


class StoreOps:
    """The store operations (and faults) a circuit's breakers did, in order."""

    def __init__(self, name: str) -> None:
        self.seen: list[str] = []
        self.name = name
        self._unsubscribe = events.subscribe(self._on_event)

    def _on_event(self, event: events.Event) -> None:
        if event.name == self.name and event.kind in STORE_EVENTS:
            self.seen.append(event.kind)

    def close(self) -> None:
        self._unsubscribe()


async def slow_store_scenario(store: CircuitStore, name: str, slow_next: Callable[[], None]) -> None:
    """Under a ticker: a store read, then a trip's compare-and-set write, each DELAY s slow.

    ``slow_next()`` makes the store's next operation take DELAY seconds.
    """
    hooks: list[CircuitTransition] = []

    @circuit_breaker(
        name,
        persistence_store=store,
        on_transition=hooks.append,
        config=CircuitBreakerConfig(failure_threshold=2, recovery_timeout=60, local_cache_max_age=30),
        environment=Environment(f"async-{name}"),
    )
    async def fetch(fail: bool) -> str:
        await asyncio.sleep(0)
        if fail:
            raise DownstreamError("down")
        return "ok"

    ops = StoreOps(name)
    ticker = Ticker()
    task = asyncio.create_task(ticker.run())
    try:
        assert await fetch(False) == "ok"  # reads (connects the loop's client / thread pool)
        with pytest.raises(DownstreamError):
            await fetch(True)  # one failure, below the threshold: no store operation
        assert ops.seen == ["store_read"]

        slow_next()
        started = time.perf_counter()
        info = await fetch.circuit_breaker.ainfo()  # type: ignore[attr-defined]
        read_done = time.perf_counter()
        assert info.state is CircuitState.CLOSED

        slow_next()
        with pytest.raises(DownstreamError):
            await fetch(True)  # trips: the compare-and-set write
        write_done = time.perf_counter()
        await asyncio.sleep(TICK * 2)
    finally:
        task.cancel()
        ops.close()

    assert ops.seen == ["store_read", "store_read", "store_write"], ops.seen  # slow, never failed
    assert [(h.from_state, h.to_state) for h in hooks] == [(CircuitState.CLOSED, CircuitState.OPEN)]
    for low, high in ((started, read_done), (read_done, write_done)):
        assert high - low >= DELAY * 0.9, "the store was not slow: the test would prove nothing"
        ticks, gap = ticker.between(low, high)
        assert ticks >= 10, (ticks, gap)
        assert gap < DELAY / 2, (ticks, gap)


# ----------------------------------------------------------------------------- redis


@pytest.fixture
def slow_redis() -> Iterator[RedisServer]:
    server = start_redis_server()
    yield server
    server.close()


def test_async_breaker_on_a_slow_redis_never_blocks_the_loop(slow_redis: RedisServer) -> None:
    name = f"async-{uuid.uuid4().hex[:8]}"
    store = RedisPersistence(url=slow_redis.url, socket_timeout=5.0, socket_connect_timeout=5.0)
    timers: list[threading.Timer] = []

    def slow_next() -> None:
        # The server stops (SIGSTOP) and a timer resumes it DELAY s later: whatever the
        # client sends meanwhile waits in the socket, as with a server stuck on a slow command.
        slow_redis.pause()
        timer = threading.Timer(DELAY, slow_redis.resume)
        timers.append(timer)
        timer.start()

    async def main() -> None:
        await slow_store_scenario(store, name, slow_next)
        assert asyncio.get_running_loop() in store._loops, "not on the loop's own asyncio client"

    try:
        asyncio.run(main())
    finally:
        for timer in timers:
            timer.join(5)
        slow_redis.resume()
        store.close()


# -------------------------------------------------------------------------- dynamodb


def test_async_breaker_on_a_slow_dynamodb_never_blocks_the_loop(fleet_moto: MotoServer) -> None:
    name = f"async-{uuid.uuid4().hex[:8]}"
    client = dynamodb_client(fleet_moto.url, 5.0)
    slowed = threading.Event()
    loop_thread = threading.get_ident()
    slept_off_loop: list[bool] = []

    def sleep_before_call(**_: Any) -> None:
        if slowed.is_set():
            slowed.clear()
            slept_off_loop.append(threading.get_ident() != loop_thread)
            time.sleep(DELAY)  # blocking, as boto3 is: it must run in a worker thread

    client.meta.events.register("before-call.dynamodb", sleep_before_call)
    store = DynamoDBPersistence(new_table(fleet_moto.url), boto3_client=client)
    try:
        asyncio.run(slow_store_scenario(store, name, slowed.set))
    finally:
        client.close()
    assert slept_off_loop == [True, True]
