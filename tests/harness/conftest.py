from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers import RedisServer


@pytest.fixture(autouse=True)
def _quiet_breaker_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Store faults are logged at WARNING on purpose; hundreds of runs make noise, not news.
    caplog.set_level(logging.ERROR, logger="breaker")


@pytest.fixture
def dynamodb_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[Any]:
    """A DynamoDBPersistence on a fresh table of moto's in-process mock (atomic conditional writes)."""
    pytest.importorskip("moto")
    from moto import mock_aws

    from breaker.persistence.dynamodb import DynamoDBPersistence
    from tests.stores.moto_server import REGION, create_table, make_client, serialize_item_writes

    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    serialize_item_writes(monkeypatch.setattr)
    with mock_aws():
        client = make_client()
        yield DynamoDBPersistence(table_name=create_table(client), boto3_client=client)


@pytest.fixture
def redis_store(redis_server: RedisServer) -> Iterator[Any]:
    """A RedisPersistence on the session's real redis-server, emptied first."""
    from breaker.persistence.redis import RedisPersistence

    redis_server.ensure_running()
    redis_server.command("FLUSHALL")
    store = RedisPersistence(url=redis_server.url)
    yield store
    store.close()
