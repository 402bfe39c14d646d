"""DynamoDBPersistence: the store contract on moto (in-process and server mode), plus
DynamoDB specifics: key modes, item schema, corrupt items, errors, configuration,
lazy imports and interoperability with Powertools 3.37's DynamoDB store."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

from breaker.clock import SYSTEM_CLOCK, FakeClock
from breaker.errors import CircuitBreakerConfigError, CircuitBreakerPersistenceError
from breaker.persistence import CircuitRecord
from breaker.persistence.dynamodb import DynamoDBPersistence
from breaker.states import CircuitState

from .contract import FakeClockExpiryContract
from .moto_server import REGION, MotoServer, create_table, make_client, serialize_item_writes

START = 1_700_000_000.0


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Dummy credentials and a region; no real AWS configuration can leak in."""
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


@pytest.fixture(scope="session")
def _shared_client() -> Any:
    # Creating a client costs ~0.1 s, so tests share one. moto is imported first: it
    # hooks botocore when imported, and the hook only acts while a mock_aws() is active.
    import moto  # noqa: F401

    return make_client()


@pytest.fixture
def client(_shared_client: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A client on moto in-process (``mock_aws``: a fresh backend), with atomic conditional writes."""
    from moto import mock_aws

    serialize_item_writes(monkeypatch.setattr)
    with mock_aws():
        yield _shared_client


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """One moto server process for the session; each test uses its own table."""
    server = MotoServer()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def server_client(moto_server: MotoServer) -> Any:
    return make_client(endpoint_url=moto_server.url)


@pytest.fixture
def table(client: Any) -> str:
    return create_table(client)


def raw_item(client: Any, table_name: str, key: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = client.get_item(TableName=table_name, Key=key, ConsistentRead=True)["Item"]
    return item


# ----------------------------------------------------------------------- contract


class TestDynamoDBInProcess(FakeClockExpiryContract):
    """The contract on moto's in-process mock."""

    @pytest.fixture
    def store(self, client: Any, table: str, clock: FakeClock) -> DynamoDBPersistence:
        return DynamoDBPersistence(table, boto3_client=client, clock=clock)


class TestDynamoDBServerMode(FakeClockExpiryContract):
    """The contract over HTTP against a moto server process (botocore's real HTTP stack)."""

    @pytest.fixture
    def store(self, server_client: Any, clock: FakeClock) -> DynamoDBPersistence:
        return DynamoDBPersistence(create_table(server_client), boto3_client=server_client, clock=clock)

    def test_requests_really_go_over_http(self, store: DynamoDBPersistence, moto_server: MotoServer) -> None:
        before = moto_server.requests_served()
        store.read("db")
        deadline = time.monotonic() + 5  # werkzeug writes its log line after the response
        while moto_server.requests_served() == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert moto_server.requests_served() == before + 1


CUSTOM_NAMES: dict[str, Any] = {
    "state_attr": "st",
    "failure_count_attr": "fc",
    "opened_at_attr": "oa",
    "half_open_owner_attr": "owner",
    "probe_lease_expiry_attr": "lease",
    "expiry_attr": "ttl",
    "version_attr": "v",
    "pinned_attr": "pin",
}


class TestDynamoDBCompositeKeyCustomNames(FakeClockExpiryContract):
    """The contract on a composite-key table with every attribute renamed."""

    @pytest.fixture
    def store(self, client: Any, clock: FakeClock) -> DynamoDBPersistence:
        table_name = create_table(client, key_attr="pk", sort_key_attr="sk", ttl_attr="ttl")
        return DynamoDBPersistence(
            table_name,
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value="svc#checkout",
            boto3_client=client,
            clock=clock,
            **CUSTOM_NAMES,
        )


# -------------------------------------------------------------------- item schema


def test_item_schema_matches_powertools(client: Any, table: str, clock: FakeClock) -> None:
    store = DynamoDBPersistence(table, boto3_client=client, clock=clock)
    record = CircuitRecord(
        "db",
        CircuitState.HALF_OPEN,
        version=1,
        failure_count=5,
        opened_at=1_700_000_000.25,
        half_open_owner="env-1",
        probe_lease_expiry=1_700_000_030.5,
        expires_at=1_700_003_630.2,
    )
    assert store.write(record, None)
    assert raw_item(client, table, {"id": {"S": "db"}}) == {
        "id": {"S": "db"},
        "state": {"S": "HALF_OPEN"},
        "failure_count": {"N": "5"},
        "opened_at": {"N": "1700000000.25"},
        "half_open_owner": {"S": "env-1"},
        "probe_lease_expiry": {"N": "1700000030.5"},
        "expiration": {"N": "1700003631"},  # rounded up: whole seconds for DynamoDB TTL
        "cb_version": {"N": "1"},
    }
    assert store.read("db") == record.replace(expires_at=1_700_003_631.0)


def test_removed_fields_disappear_and_pinned_is_stored(client: Any, table: str, clock: FakeClock) -> None:
    store = DynamoDBPersistence(table, boto3_client=client, clock=clock)
    half_open = CircuitRecord(
        "db",
        CircuitState.HALF_OPEN,
        version=1,
        opened_at=10.0,
        half_open_owner="env-1",
        probe_lease_expiry=40.0,
        expires_at=START + 3600,
    )
    assert store.write(half_open, None)
    pinned = half_open.evolve(
        state=CircuitState.OPEN, half_open_owner=None, probe_lease_expiry=None, pinned=True, expires_at=None
    )
    assert store.write(pinned, half_open)
    assert raw_item(client, table, {"id": {"S": "db"}}) == {
        "id": {"S": "db"},
        "state": {"S": "OPEN"},
        "failure_count": {"N": "0"},
        "opened_at": {"N": "10"},
        "cb_version": {"N": "2"},
        "cb_pinned": {"BOOL": True},
    }
    assert store.read("db") == pinned


def test_composite_key_uses_static_partition_and_name_as_sort_key(client: Any, clock: FakeClock) -> None:
    table_name = create_table(client, key_attr="pk", sort_key_attr="sk")
    store = DynamoDBPersistence(
        table_name, key_attr="pk", sort_key_attr="sk", static_pk_value="svc#fn", boto3_client=client
    )
    record = CircuitRecord.closed("payments").evolve()
    assert store.write(record, None)
    item = raw_item(client, table_name, {"pk": {"S": "svc#fn"}, "sk": {"S": "payments"}})
    assert item["state"] == {"S": "CLOSED"}
    assert store.read("payments") == record
    other = DynamoDBPersistence(
        table_name, key_attr="pk", sort_key_attr="sk", static_pk_value="svc#other", boto3_client=client
    )
    assert other.read("payments") is None  # another partition: another set of circuits


def test_default_static_pk_value_follows_the_function_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "checkout")
    store = DynamoDBPersistence("t", sort_key_attr="sk")
    assert store.static_pk_value == "circuit_breaker#checkout"
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    assert DynamoDBPersistence("t").static_pk_value == "circuit_breaker#"


# ------------------------------------------------------------------------ expiry


def test_write_expecting_an_expired_record_conflicts(client: Any, table: str, clock: FakeClock) -> None:
    store = DynamoDBPersistence(table, boto3_client=client, clock=clock)
    v1 = CircuitRecord.closed("db").evolve(expires_at=START + 10)
    assert store.write(v1, None)
    clock.advance(10)  # expiry is inclusive, as in the in-memory store
    assert store.read("db") is None
    assert store.write(v1.evolve(), v1) is False
    assert "id" in raw_item(client, table, {"id": {"S": "db"}})  # DynamoDB has not deleted it


def test_expired_item_is_missing_even_when_corrupt(client: Any, table: str, clock: FakeClock) -> None:
    client.put_item(
        TableName=table, Item={"id": {"S": "db"}, "state": {"S": "BOGUS"}, "expiration": {"N": "5"}}
    )
    store = DynamoDBPersistence(table, boto3_client=client, clock=clock)
    assert store.read("db") is None
    assert store.write(CircuitRecord.closed("db").evolve(), None) is True


# ----------------------------------------------------------------- corrupt items


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        pytest.param({"state": {"S": "BOGUS"}}, "BOGUS", id="unknown-state"),
        pytest.param(
            {"state": {"S": "OPEN"}, "failure_count": {"S": "5"}}, "failure_count", id="string-count"
        ),
        pytest.param({"failure_count": {"N": "5"}}, "missing", id="missing-state"),
        pytest.param({"state": {"N": "1"}}, "'state'", id="numeric-state"),
        pytest.param({"state": {"S": "CLOSED"}, "failure_count": {"N": "2.5"}}, "whole", id="fraction-count"),
        pytest.param({"state": {"S": "CLOSED"}, "cb_version": {"N": "-1"}}, ">= 0", id="negative-version"),
        pytest.param({"state": {"S": "CLOSED"}, "cb_version": {"S": "1"}}, "cb_version", id="string-version"),
        pytest.param({"state": {"S": "OPEN"}}, "needs opened_at", id="open-without-opened-at"),
        pytest.param({"state": {"S": "CLOSED"}, "cb_pinned": {"S": "yes"}}, "cb_pinned", id="string-pinned"),
        pytest.param({"state": {"S": "CLOSED"}, "expiration": {"S": "never"}}, "expiration", id="string-ttl"),
    ],
)
def test_corrupt_item_raises_persistence_error(
    client: Any, table: str, clock: FakeClock, attributes: dict[str, Any], problem: str
) -> None:
    client.put_item(TableName=table, Item={"id": {"S": "db"}, **attributes})
    store = DynamoDBPersistence(table, boto3_client=client, clock=clock)
    with pytest.raises(CircuitBreakerPersistenceError, match="corrupt circuit record") as caught:
        store.read("db")
    assert problem in str(caught.value)


# ------------------------------------------------------------------ client errors


def test_client_errors_propagate(client: Any) -> None:
    from botocore.exceptions import ClientError

    store = DynamoDBPersistence("no-such-table", boto3_client=client)
    record = CircuitRecord.closed("db").evolve()
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        store.read("db")
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        store.write(record, None)  # an error, never a conflict (False)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        store.write(record.evolve(), record)
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        store.delete("db")


def test_unreachable_store_raises_from_the_default_client(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import EndpointConnectionError

    from .moto_server import free_port

    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")  # nobody listens
    store = DynamoDBPersistence("t")
    with pytest.raises(EndpointConnectionError):
        store.read("db")
    with pytest.raises(EndpointConnectionError):
        store.write(CircuitRecord.closed("db").evolve(), None)


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("kwargs", "fragments"),
    [
        pytest.param({"table_name": ""}, ["table_name", "''", "non-empty string"], id="empty-table"),
        pytest.param({"table_name": None}, ["table_name", "None"], id="no-table"),
        pytest.param({"sort_key_attr": "id"}, ["sort_key_attr", "key_attr", "'id'"], id="sort-key-is-key"),
        pytest.param({"key_attr": 3}, ["key_attr", "3", "non-empty string"], id="int-key"),
        pytest.param({"state_attr": ""}, ["state_attr", "''"], id="empty-state"),
        pytest.param({"expiry_attr": b"ttl"}, ["expiry_attr", "b'ttl'"], id="bytes-name"),
        pytest.param(
            {"state_attr": "failure_count"},
            ["state_attr", "'failure_count'", "failure_count_attr", "distinct"],
            id="duplicate",
        ),
        pytest.param({"version_attr": "id"}, ["version_attr", "'id'", "key_attr"], id="version-is-key"),
        pytest.param(
            {"sort_key_attr": "sk", "pinned_attr": "sk"},
            ["pinned_attr", "'sk'", "sort_key_attr"],
            id="pin-sk",
        ),
        pytest.param(
            {"sort_key_attr": "sk", "static_pk_value": ""}, ["static_pk_value", "''"], id="empty-static-pk"
        ),
        pytest.param({"clock": "now"}, ["clock", "'now'", "Clock"], id="bad-clock"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs: dict[str, Any], fragments: list[str]) -> None:
    kwargs = {"table_name": "t", **kwargs}
    with pytest.raises(CircuitBreakerConfigError) as caught:
        DynamoDBPersistence(**kwargs)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_static_pk_value_without_sort_key_warns_like_powertools() -> None:
    with pytest.warns(UserWarning, match="static_pk_value is ignored"):
        store = DynamoDBPersistence("t", static_pk_value="svc#fn")
    assert store._key("db") == {"id": {"S": "db"}}


def test_default_client_is_lazy_and_gets_short_timeouts() -> None:
    store = DynamoDBPersistence("t")
    assert store._client is None  # nothing created at construction
    config: Any = store.client.meta.config
    assert (config.connect_timeout, config.read_timeout) == (1, 1)
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}
    assert store.client is store.client  # created once
    assert store.client.meta.region_name == REGION


def test_user_config_and_session_are_used() -> None:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name="eu-west-1")
    store = DynamoDBPersistence("t", boto_config=Config(read_timeout=7), boto3_session=session)
    assert store.client.meta.region_name == "eu-west-1"
    config: Any = store.client.meta.config
    assert config.read_timeout == 7
    assert config.connect_timeout == 60  # botocore's default: the user's config wins


def test_given_client_is_used_as_is(client: Any) -> None:
    store = DynamoDBPersistence("t", boto3_client=client)
    assert store.client is client
    assert store.kind == "dynamodb"
    assert "table_name='t'" in repr(store)


def test_importing_and_constructing_loads_no_boto3() -> None:
    code = textwrap.dedent(
        """
        import sys
        import breaker.persistence
        from breaker.persistence.dynamodb import DynamoDBPersistence
        assert breaker.persistence.CircuitBreakerDynamoDBPersistence is DynamoDBPersistence
        DynamoDBPersistence("t", sort_key_attr="sk")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore"))
        assert not loaded, loaded
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_boto3_is_reported_at_construction(monkeypatch: pytest.MonkeyPatch, client: Any) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match=r"pytest-circuitbreaker\[dynamodb\]"):
        DynamoDBPersistence("t")
    DynamoDBPersistence("t", boto3_client=client)  # a given client needs no import


def test_default_clock_is_the_system_clock() -> None:
    assert DynamoDBPersistence("t")._clock is SYSTEM_CLOCK


# --------------------------------------------------------------- Powertools interop


def _powertools(client: Any, table_name: str) -> Any:
    """A fresh Powertools store (fresh local cache, so every get_state reads the table)."""
    from aws_lambda_powertools.utilities.circuit_breaker.persistence import (
        CircuitBreakerDynamoDBPersistence,
    )

    return CircuitBreakerDynamoDBPersistence(table_name=table_name, boto3_client=client)


def test_powertools_reads_what_we_write(client: Any, table: str, clock: FakeClock) -> None:
    store = DynamoDBPersistence(table, boto3_client=client, clock=clock)
    opened = CircuitRecord.closed("db").evolve(
        state=CircuitState.OPEN, failure_count=5, opened_at=START + 0.75, expires_at=START + 3630
    )
    assert store.write(opened, None)
    seen = _powertools(client, table).get_state("db")
    assert (seen.state, seen.failure_count, seen.opened_at) == (CircuitState.OPEN, 5, int(START))
    assert int(seen.expiry_timestamp) == int(START + 3630)

    probing = opened.evolve(
        state=CircuitState.HALF_OPEN, half_open_owner="env-7", probe_lease_expiry=START + 30.5
    )
    assert store.write(probing, opened)
    seen = _powertools(client, table).get_state("db")
    assert (seen.state, seen.half_open_owner, seen.probe_lease_expiry) == (
        CircuitState.HALF_OPEN,
        "env-7",
        int(START + 30),
    )


def test_we_read_what_powertools_writes_as_version_zero(client: Any, table: str, clock: FakeClock) -> None:
    _powertools(client, table).save_open("db", failure_count=5, opened_at=int(START))
    store = DynamoDBPersistence(table, boto3_client=client, clock=clock)
    record = store.read("db")
    assert record is not None
    assert (record.state, record.version, record.failure_count, record.opened_at) == (
        CircuitState.OPEN,
        0,
        5,
        START,
    )
    assert record.expires_at is not None  # Powertools' TTL, kept as read
    assert store.write(record.evolve(), None) is False  # the item exists: not a first write


def _powertools_probe(client: Any, table: str) -> None:
    assert _powertools(client, table).try_acquire_half_open("db", owner="pt-env", opened_at=int(START))


def _powertools_reopen(client: Any, table: str) -> None:
    _powertools(client, table).save_open("db", failure_count=5, opened_at=int(START) + 60)


@pytest.mark.parametrize(
    ("intervening", "stored"),
    [
        pytest.param(None, True, id="nothing-changed"),
        pytest.param(_powertools_probe, False, id="powertools-probe-election"),
        pytest.param(_powertools_reopen, False, id="powertools-reopen"),
    ],
)
def test_our_cas_over_a_powertools_item(
    client: Any, table: str, clock: FakeClock, intervening: Any, stored: bool
) -> None:
    _powertools(client, table).save_open("db", failure_count=5, opened_at=int(START))
    store = DynamoDBPersistence(table, boto3_client=client, clock=clock)
    seen = store.read("db")
    assert seen is not None
    assert seen.version == 0
    if intervening is not None:
        intervening(client, table)
    ours = seen.evolve(
        state=CircuitState.HALF_OPEN,
        half_open_owner="our-env",
        probe_lease_expiry=START + 30,
        expires_at=START + 3630,
    )
    assert store.write(ours, seen) is stored
    now = store.read("db")
    assert now is not None
    if stored:
        assert now == ours
        pt = _powertools(client, table).get_state("db")
        assert (pt.state, pt.half_open_owner) == (CircuitState.HALF_OPEN, "our-env")
    else:
        assert now.version == 0
        assert now != ours


def test_powertools_update_keeping_our_version_still_conflicts(
    client: Any, table: str, clock: FakeClock
) -> None:
    # Powertools' save_closed/save_reopen use update_item, which leaves cb_version in place.
    store = DynamoDBPersistence(table, boto3_client=client, clock=clock)
    opened = CircuitRecord.closed("db").evolve(state=CircuitState.OPEN, failure_count=5, opened_at=START)
    assert store.write(opened, None)
    _powertools(client, table).save_closed("db")
    now = store.read("db")
    assert now is not None
    assert (now.state, now.version) == (CircuitState.CLOSED, 1)
    stale = opened.evolve(state=CircuitState.HALF_OPEN, half_open_owner="env", probe_lease_expiry=START + 30)
    assert store.write(stale, opened) is False  # same version, different state: a conflict
    assert store.write(now.evolve(), now) is True
