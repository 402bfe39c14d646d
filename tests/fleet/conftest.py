from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from breaker.persistence import CircuitStore
from tests.servers import RedisServer
from tests.stores.moto_server import MotoServer, create_table

from .support import RestartableMotoServer
from .workers import Journal, StoreSpec, close_store, dynamodb_client


@pytest.fixture(scope="session")
def fleet_moto() -> Iterator[MotoServer]:
    """One moto server (DynamoDB over HTTP) for the fleet tests; each test makes its own table."""
    server = MotoServer()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def restartable_moto() -> Iterator[RestartableMotoServer]:
    """A moto server of this module's own, free to be paused, killed and restarted."""
    server = RestartableMotoServer()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def new_table(endpoint: str) -> str:
    client = dynamodb_client(endpoint, 5.0)
    try:
        return create_table(client)
    finally:
        client.close()


@pytest.fixture(params=["redis", "dynamodb"])
def spec(request: pytest.FixtureRequest) -> StoreSpec:
    """Where the fleet's shared record lives: the session's redis-server, or a new moto table."""
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.ensure_running()
        return StoreSpec("redis", server.url)
    moto: MotoServer = request.getfixturevalue("fleet_moto")
    return StoreSpec("dynamodb", moto.url, new_table(moto.url))


@pytest.fixture
def store(spec: StoreSpec) -> Iterator[CircuitStore]:
    """The shared store, as seen from the test process."""
    built = spec.build()
    yield built
    close_store(built)


@pytest.fixture
def name() -> str:
    return f"fleet-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    return Journal(str(tmp_path / "journal.jsonl"))
