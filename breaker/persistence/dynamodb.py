"""The DynamoDB store: one item per circuit, compare-and-set with conditional writes.

The item schema is the one of Powertools for AWS Lambda (Python) 3.37's
``CircuitBreakerDynamoDBPersistence`` plus two attributes of ours (a version and a
pinned flag), so a fleet can move from Powertools to this library one function at a
time while both read and write the same table. See :class:`DynamoDBPersistence` and
``docs/dynamodb.md``.

boto3 and botocore are imported only when the store first talks to DynamoDB.
"""

from __future__ import annotations

import math
import os
import warnings
from _thread import allocate_lock

from breaker.clock import SYSTEM_CLOCK, Clock
from breaker.errors import CircuitBreakerConfigError, CircuitBreakerPersistenceError
from breaker.persistence.base import CircuitStore, check_write_arguments
from breaker.persistence.record import CircuitRecord
from breaker.states import CircuitState

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    import boto3
    from botocore.config import Config
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]

#: Client settings used when neither ``boto_config`` nor ``boto3_client`` is given: a
#: circuit breaker must not wait on its own store for long (botocore's defaults are a
#: 60 s connect and 60 s read timeout, with up to 3 attempts in "legacy" mode).
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_READ_TIMEOUT = 1.0
DEFAULT_MAX_ATTEMPTS = 2  # total attempts, i.e. one retry

_CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
_LAMBDA_FUNCTION_NAME_ENV = "AWS_LAMBDA_FUNCTION_NAME"


class DynamoDBPersistence(CircuitStore):
    """Keeps each circuit's record as one item of a DynamoDB table.

    The constructor takes the parameters of Powertools 3.37's
    ``CircuitBreakerDynamoDBPersistence`` (same names, defaults and meaning), so a
    Powertools user changes only the import. The item it writes is readable by
    Powertools, and it reads the items Powertools writes (see *Sharing a table with
    Powertools* below).

    Args:
        table_name: the table holding the circuits (a name or a table ARN).
        key_attr: the partition key attribute (a string attribute). Without
            ``sort_key_attr`` it holds the circuit name.
        static_pk_value: the partition key value of every item when ``sort_key_attr``
            is set; defaults to ``"circuit_breaker#<AWS_LAMBDA_FUNCTION_NAME>"``, as
            Powertools does. Ignored (with a warning) without ``sort_key_attr``.
        sort_key_attr: the sort key attribute of a composite-key table; it then holds
            the circuit name.
        state_attr, failure_count_attr, opened_at_attr, half_open_owner_attr,
            probe_lease_expiry_attr: attribute names of the record fields (Powertools'
            defaults).
        expiry_attr: the TTL attribute (integer unix seconds); enable DynamoDB TTL on it.
        boto_config: a ``botocore.config.Config`` for the client this store creates.
            When omitted, the client gets ``connect_timeout=1``, ``read_timeout=1`` and
            ``retries={"total_max_attempts": 2, "mode": "standard"}`` (one retry): a
            slow store must cost a protected call at most a few seconds, once.
        boto3_session: the ``boto3.session.Session`` to create the client from
            (default: a new session, from the usual environment and credentials).
        boto3_client: a ready DynamoDB client (low-level ``boto3.client("dynamodb")``);
            ``boto_config`` and ``boto3_session`` are then ignored.
        version_attr: (keyword-only, ours) the attribute holding the compare-and-set
            version.
        pinned_attr: (keyword-only, ours) the attribute holding the manual pin flag
            (written only when True).
        clock: (keyword-only, ours) the clock that decides whether an item's TTL has
            passed (default: ``breaker.clock.SYSTEM_CLOCK``).

    Raises:
        CircuitBreakerConfigError: a parameter is invalid (empty table name, an
            attribute name that is not a non-empty string, two parameters naming the
            same attribute, ``sort_key_attr == key_attr``, ...).
        ModuleNotFoundError: boto3 is not installed and no ``boto3_client`` was given
            (install ``pytest-circuitbreaker[dynamodb]``).

    Nothing is imported from boto3 and no client is created until the first
    ``read``/``write``/``delete`` (or the first access to ``client``), so creating the
    store at module level in a Lambda function costs microseconds. Access ``client``
    during initialisation if you would rather pay for it there.

    Example:
        >>> store = DynamoDBPersistence(table_name="CircuitBreakerState")  # no I/O yet
        >>> store.kind, store.table_name, store.key_attr
        ('dynamodb', 'CircuitBreakerState', 'id')

        With the decorator (the table must exist)::

            @circuit_breaker(name="payments", persistence_store=store)
            def charge(order): ...

    Creating the table:
        A string partition key named like ``key_attr`` (default ``id``), on-demand
        billing, and TTL enabled on ``expiry_attr`` (default ``expiration``) so
        abandoned circuits are cleaned up::

            aws dynamodb create-table --table-name CircuitBreakerState \\
                --attribute-definitions AttributeName=id,AttributeType=S \\
                --key-schema AttributeName=id,KeyType=HASH \\
                --billing-mode PAY_PER_REQUEST
            aws dynamodb update-time-to-live --table-name CircuitBreakerState \\
                --time-to-live-specification Enabled=true,AttributeName=expiration

        For a composite-key table (``sort_key_attr="sk"``), define both keys as
        strings: ``AttributeName=id,AttributeType=S AttributeName=sk,AttributeType=S``
        and ``AttributeName=id,KeyType=HASH AttributeName=sk,KeyType=RANGE``. The role
        needs ``dynamodb:GetItem`` and ``dynamodb:PutItem`` (``DeleteItem`` only for
        ``delete``, which tests use).

    Item schema (default names):
        ``id`` S (the circuit name, or ``static_pk_value`` with the name in the sort
        key), ``state`` S (``CLOSED``/``OPEN``/``HALF_OPEN``), ``failure_count`` N,
        ``opened_at`` N, ``half_open_owner`` S, ``probe_lease_expiry`` N,
        ``expiration`` N (integer unix seconds: ``expires_at`` rounded *up*, so a
        record never expires early; it reads back rounded), and ours: ``cb_version`` N
        and ``cb_pinned`` BOOL (only when True). Absent optional fields are absent
        attributes. ``opened_at`` and the lease may carry a fraction of a second;
        Powertools reads them with ``int()``, which truncates.

    Consistency and cost:
        ``read`` uses ``ConsistentRead=True`` (twice the read cost of an eventually
        consistent read: 1 RCU per item up to 4 KB): after losing a compare-and-set the
        breaker re-reads and must see the winner, or it would conflict again. The
        breaker reads at most once per environment per ``local_cache_max_age`` and
        writes only on transitions.

    Expiry:
        DynamoDB deletes expired items lazily (typically within a few days), so this
        store treats an item whose ``expiry_attr`` is at or before ``clock.time()`` as
        absent: ``read`` returns None, a write expecting None may replace it
        (``attribute_not_exists(key) OR expiration <= :now``), and a write expecting a
        record conflicts on it. DynamoDB has no server-side clock in conditions, so
        "now" is this environment's clock; TTLs are an hour or more beyond the last
        write, far beyond clock skew between environments.

    Sharing a table with Powertools:
        An item Powertools wrote has no version attribute and reads as version 0. A
        write expecting such a record is conditioned on the item still having no
        version attribute *and* the same state, ``opened_at`` and ``half_open_owner``,
        so a Powertools write in between makes ours conflict. The same state/owner/
        ``opened_at`` condition is added to every conditional write, because
        Powertools' ``save_closed``/``save_reopen`` use ``update_item`` and keep our
        version attribute while changing the state. Powertools writes other than its
        probe election are unconditional: it can still overwrite our transitions
        (including a pinned state), which is one reason to migrate the whole fleet.
    """

    kind = "dynamodb"

    def __init__(
        self,
        table_name: str,
        key_attr: str = "id",
        static_pk_value: str | None = None,
        sort_key_attr: str | None = None,
        state_attr: str = "state",
        failure_count_attr: str = "failure_count",
        opened_at_attr: str = "opened_at",
        half_open_owner_attr: str = "half_open_owner",
        probe_lease_expiry_attr: str = "probe_lease_expiry",
        expiry_attr: str = "expiration",
        boto_config: Config | None = None,
        boto3_session: boto3.session.Session | None = None,
        boto3_client: DynamoDBClient | None = None,
        *,
        version_attr: str = "cb_version",
        pinned_attr: str = "cb_pinned",
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(table_name, str) or not table_name:
            raise CircuitBreakerConfigError(
                f"table_name must be a non-empty string (a DynamoDB table name or ARN), got {table_name!r}."
            )
        if sort_key_attr is not None and sort_key_attr == key_attr:
            raise CircuitBreakerConfigError(
                f"sort_key_attr must differ from key_attr, got {sort_key_attr!r} for both; "
                "leave sort_key_attr None for a table with a partition key only."
            )
        attributes: dict[str, object] = {
            "key_attr": key_attr,
            "sort_key_attr": sort_key_attr,
            "state_attr": state_attr,
            "failure_count_attr": failure_count_attr,
            "opened_at_attr": opened_at_attr,
            "half_open_owner_attr": half_open_owner_attr,
            "probe_lease_expiry_attr": probe_lease_expiry_attr,
            "expiry_attr": expiry_attr,
            "version_attr": version_attr,
            "pinned_attr": pinned_attr,
        }
        seen: dict[str, str] = {}
        for parameter, value in attributes.items():
            if value is None and parameter == "sort_key_attr":
                continue
            if not isinstance(value, str) or not value:
                raise CircuitBreakerConfigError(
                    f"{parameter} must be a non-empty string (a DynamoDB attribute name), got {value!r}."
                )
            if value in seen:
                raise CircuitBreakerConfigError(
                    f"{parameter} must name an attribute of its own, got {value!r}, "
                    f"which {seen[value]} already uses; every attribute name must be distinct."
                )
            seen[value] = parameter
        if static_pk_value is not None and (not isinstance(static_pk_value, str) or not static_pk_value):
            raise CircuitBreakerConfigError(
                f"static_pk_value must be a non-empty string or None, got {static_pk_value!r}."
            )
        if static_pk_value is not None and sort_key_attr is None:
            warnings.warn(
                "static_pk_value is ignored unless sort_key_attr is also set.", UserWarning, stacklevel=2
            )
        if static_pk_value is None:
            static_pk_value = f"circuit_breaker#{os.getenv(_LAMBDA_FUNCTION_NAME_ENV, '')}"
        if clock is not None and not isinstance(clock, Clock):
            raise CircuitBreakerConfigError(f"clock must be a breaker.clock.Clock instance, got {clock!r}.")
        if boto3_client is None:
            from importlib.util import find_spec

            if find_spec("boto3") is None:
                raise ModuleNotFoundError(
                    "DynamoDBPersistence needs boto3: pip install 'pytest-circuitbreaker[dynamodb]' "
                    "(or pass boto3_client).",
                    name="boto3",
                )

        self.table_name = table_name
        self.key_attr = key_attr
        self.static_pk_value = static_pk_value
        self.sort_key_attr = sort_key_attr
        self.state_attr = state_attr
        self.failure_count_attr = failure_count_attr
        self.opened_at_attr = opened_at_attr
        self.half_open_owner_attr = half_open_owner_attr
        self.probe_lease_expiry_attr = probe_lease_expiry_attr
        self.expiry_attr = expiry_attr
        self.version_attr = version_attr
        self.pinned_attr = pinned_attr
        self._clock = SYSTEM_CLOCK if clock is None else clock
        self._boto_config = boto_config
        self._boto3_session = boto3_session
        self._client: DynamoDBClient | None = boto3_client
        self._client_lock = allocate_lock()

    def __repr__(self) -> str:
        key = self.key_attr if self.sort_key_attr is None else f"{self.key_attr}+{self.sort_key_attr}"
        return f"{type(self).__name__}(table_name={self.table_name!r}, key={key!r})"

    # ------------------------------------------------------------------ client

    @property
    def client(self) -> DynamoDBClient:
        """The low-level DynamoDB client; created (and boto3 imported) on first access."""
        client = self._client
        if client is None:
            with self._client_lock:
                client = self._client
                if client is None:
                    client = self._client = self._create_client()
        return client

    def _create_client(self) -> DynamoDBClient:
        import boto3

        config = self._boto_config
        if config is None:
            from botocore.config import Config

            config = Config(
                connect_timeout=DEFAULT_CONNECT_TIMEOUT,
                read_timeout=DEFAULT_READ_TIMEOUT,
                retries={"total_max_attempts": DEFAULT_MAX_ATTEMPTS, "mode": "standard"},
            )
        session = self._boto3_session if self._boto3_session is not None else boto3.session.Session()
        client: DynamoDBClient = session.client("dynamodb", config=config)
        return client

    # --------------------------------------------------------------- contract

    def read(self, name: str) -> CircuitRecord | None:
        """Return the record of circuit ``name``, or None when absent or expired.

        A strongly consistent ``GetItem``. An item that cannot be decoded (unknown
        state, wrong attribute types, missing state, inconsistent fields) raises
        :class:`~breaker.errors.CircuitBreakerPersistenceError`; client errors
        propagate as raised by botocore.
        """
        response = self.client.get_item(TableName=self.table_name, Key=self._key(name), ConsistentRead=True)
        item = response.get("Item")
        if item is None:
            return None
        return self._decode(name, item)

    def write(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        """Replace the item with ``record`` if it still holds ``expected``; True when stored.

        One conditional ``PutItem`` (the whole item is replaced, so fields ``record``
        does not set disappear). With ``expected=None`` the condition is "no live item";
        otherwise "a live item with ``expected``'s version, state, ``opened_at`` and
        probe owner". A failed condition returns False; every other error propagates.
        """
        check_write_arguments(record, expected)
        names: dict[str, str] = {"#key": self.key_attr, "#exp": self.expiry_attr}
        values: Item = {":now": _number(self._clock.time())}
        if expected is None:
            condition = "attribute_not_exists(#key) OR #exp <= :now"
        else:
            names.update(
                {"#ver": self.version_attr, "#state": self.state_attr, "#opened": self.opened_at_attr}
            )
            names["#owner"] = self.half_open_owner_attr
            values[":state"] = {"S": expected.state.value}
            parts = [
                "attribute_exists(#key)",
                "(attribute_not_exists(#exp) OR #exp > :now)",
                "#state = :state",
            ]
            if expected.version == 0:  # written by Powertools (or another writer without versions)
                parts.append("attribute_not_exists(#ver)")
            else:
                parts.append("#ver = :ver")
                values[":ver"] = _number(expected.version)
            if expected.opened_at is None:
                parts.append("attribute_not_exists(#opened)")
            else:
                parts.append("#opened = :opened")
                values[":opened"] = _number(expected.opened_at)
            if expected.half_open_owner is None:
                parts.append("attribute_not_exists(#owner)")
            else:
                parts.append("#owner = :owner")
                values[":owner"] = {"S": expected.half_open_owner}
            condition = " AND ".join(parts)
        item = self._encode(record)
        from botocore.exceptions import ClientError

        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == _CONDITIONAL_CHECK_FAILED:
                return self._retry_found_own_write(exc.response, record)
            raise
        return True

    def _retry_found_own_write(self, response: Mapping[str, Any], record: CircuitRecord) -> bool:
        """Whether a failed condition only met this very write, stored by an earlier attempt.

        botocore retries a request that timed out (the default client makes two attempts);
        if the first attempt was stored and only its reply was lost, the retry fails its
        condition on our own item. That write succeeded: reporting a conflict would leave
        its transition unreported by anyone.
        """
        retried = response.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        found = response.get("Item")
        if not retried or not isinstance(found, dict):
            return False
        try:
            ours = self._decode(record.name, self._encode(record))
            return ours is not None and self._decode(record.name, found) == ours
        except CircuitBreakerPersistenceError:
            return False

    def delete(self, name: str) -> None:
        """Delete the item of circuit ``name`` unconditionally (absent is fine)."""
        self.client.delete_item(TableName=self.table_name, Key=self._key(name))

    # The async twins keep the base class's default: boto3 blocks, so each call runs in
    # a worker thread (asyncio.to_thread) and never blocks the event loop.

    # ---------------------------------------------------------------- encoding

    def _key(self, name: str) -> Item:
        if self.sort_key_attr is None:
            return {self.key_attr: {"S": name}}
        return {self.key_attr: {"S": self.static_pk_value}, self.sort_key_attr: {"S": name}}

    def _encode(self, record: CircuitRecord) -> Item:
        item = self._key(record.name)
        item[self.state_attr] = {"S": CircuitState(record.state).value}
        item[self.failure_count_attr] = _number(record.failure_count)
        item[self.version_attr] = _number(record.version)
        if record.opened_at is not None:
            item[self.opened_at_attr] = _number(record.opened_at)
        if record.half_open_owner is not None:
            item[self.half_open_owner_attr] = {"S": record.half_open_owner}
        if record.probe_lease_expiry is not None:
            item[self.probe_lease_expiry_attr] = _number(record.probe_lease_expiry)
        if record.pinned:
            item[self.pinned_attr] = {"BOOL": True}
        if record.expires_at is not None:
            # DynamoDB TTL wants whole seconds; rounding up never expires a record early.
            item[self.expiry_attr] = _number(math.ceil(record.expires_at))
        return item

    def _decode(self, name: str, item: Mapping[str, AttributeValueTypeDef]) -> CircuitRecord | None:
        """The record an item holds, None when its TTL has passed; raises when corrupt."""
        try:
            expires_at = _number_attribute(item, self.expiry_attr)
        except (TypeError, ValueError):
            pass  # reported below with the other fields
        else:
            if expires_at is not None and expires_at <= self._clock.time():
                return None  # expired but not yet deleted by DynamoDB: logically gone
        try:
            state_text = _string_attribute(item, self.state_attr)
            if state_text is None:
                raise ValueError(f"attribute {self.state_attr!r} (the state) is missing")
            try:
                state = CircuitState(state_text)
            except ValueError:
                raise ValueError(
                    f"attribute {self.state_attr!r} is {state_text!r}, not one of CLOSED, OPEN, HALF_OPEN"
                ) from None
            failure_count = _count_attribute(item, self.failure_count_attr)
            version = _count_attribute(item, self.version_attr)
            opened_at = _number_attribute(item, self.opened_at_attr)
            owner = _string_attribute(item, self.half_open_owner_attr)
            lease = _number_attribute(item, self.probe_lease_expiry_attr)
            pinned = _bool_attribute(item, self.pinned_attr)
            expires_at = _number_attribute(item, self.expiry_attr)
        except (TypeError, ValueError) as exc:
            raise CircuitBreakerPersistenceError(
                "corrupt circuit record", f"item {name!r} of DynamoDB table {self.table_name!r}: {exc}"
            ) from None
        record = CircuitRecord(
            name,
            state,
            version=version,
            failure_count=failure_count,
            opened_at=opened_at,
            half_open_owner=owner,
            probe_lease_expiry=lease,
            pinned=pinned,
            expires_at=expires_at,
        )
        record.validate()
        return record


# ---------------------------------------------------------------- attribute values


def _number(value: float) -> AttributeValueTypeDef:
    """A DynamoDB N value: whole numbers without a fraction, others in plain notation."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number for a DynamoDB N attribute, got {value!r}")
    if isinstance(value, int):
        return {"N": str(value)}
    if not math.isfinite(value):
        raise ValueError(f"DynamoDB cannot store the number {value!r}")
    if value.is_integer():
        return {"N": str(int(value))}
    text = repr(value)  # the shortest text that reads back as the same float
    if "e" in text:
        from decimal import Decimal

        text = format(Decimal(text), "f")
    return {"N": text}


def _raw(item: Mapping[str, AttributeValueTypeDef], attr: str, tag: str) -> object:
    """The payload of attribute ``attr`` if it has type ``tag``; None if absent or NULL."""
    value = item.get(attr)
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) != 1:
        raise TypeError(f"attribute {attr!r} is not a DynamoDB attribute value: {value!r}")
    ((kind, payload),) = value.items()
    if kind == "NULL":
        return None
    if kind != tag:
        raise TypeError(f"attribute {attr!r} must be of DynamoDB type {tag}, got {value!r}")
    return payload


def _string_attribute(item: Mapping[str, AttributeValueTypeDef], attr: str) -> str | None:
    payload = _raw(item, attr, "S")
    if payload is not None and not isinstance(payload, str):
        raise TypeError(f"attribute {attr!r} must be a string, got {payload!r}")
    return payload


def _bool_attribute(item: Mapping[str, AttributeValueTypeDef], attr: str) -> bool:
    payload = _raw(item, attr, "BOOL")
    if payload is not None and not isinstance(payload, bool):
        raise TypeError(f"attribute {attr!r} must be a boolean, got {payload!r}")
    return bool(payload)


def _number_attribute(item: Mapping[str, AttributeValueTypeDef], attr: str) -> float | None:
    payload = _raw(item, attr, "N")
    if payload is None:
        return None
    if not isinstance(payload, str):
        raise TypeError(f"attribute {attr!r} must be a number, got {payload!r}")
    number = float(payload)  # ValueError for text that is not a number
    if not math.isfinite(number):
        raise ValueError(f"attribute {attr!r} must be a finite number, got {payload!r}")
    return number


def _count_attribute(item: Mapping[str, AttributeValueTypeDef], attr: str) -> int:
    """A whole number >= 0; 0 when absent (Powertools items have no version)."""
    payload = _raw(item, attr, "N")
    if payload is None:
        return 0
    if not isinstance(payload, str):
        raise TypeError(f"attribute {attr!r} must be a number, got {payload!r}")
    from decimal import Decimal, InvalidOperation

    try:
        number = Decimal(payload)
        whole = number.is_finite() and number == number.to_integral_value()
    except InvalidOperation:
        whole = False
    if not whole:
        raise ValueError(f"attribute {attr!r} must be a whole number, got {payload!r}")
    count = int(number)
    if count < 0:
        raise ValueError(f"attribute {attr!r} must be >= 0, got {payload!r}")
    return count
