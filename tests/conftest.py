from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import RedisServer, start_redis_server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server (or valkey-server) for the session; see tests/servers.py."""
    server = start_redis_server()
    yield server
    server.close()
