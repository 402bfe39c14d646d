"""RedisPersistence: the shared record of each circuit in Redis or Valkey, via redis-py.

One key per circuit, ``{key_prefix}{name}``, holding a hash (layout below). Every
operation touches exactly that one key, so the store works unchanged on a Redis
Cluster. The compare-and-set is one Lua script (EVALSHA, loaded again on NOSCRIPT),
so a transition is atomic on the server.

redis-py is imported when a store is constructed, never by ``import breaker`` nor by
importing this module.
"""

from __future__ import annotations

from _thread import allocate_lock

from breaker.errors import CircuitBreakerConfigError, CircuitBreakerPersistenceError
from breaker.persistence.base import CircuitStore, check_write_arguments
from breaker.persistence.record import CircuitRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    from asyncio import AbstractEventLoop
    from collections.abc import AsyncGenerator, Callable, Mapping
    from typing import Any

    from redis import Redis, RedisCluster
    from redis.asyncio import Redis as AsyncRedis
    from redis.asyncio import RedisCluster as AsyncRedisCluster

__all__ = ["RedisPersistence"]

#: Compare-and-set of one circuit's hash. Returns 1 stored, 0 conflict, -1 the key is
#: not a hash, -2 the hash has no version field (neither is a record of ours).
#: KEYS[1]: the circuit's key. ARGV[1]: the expected version ('' = the key must not
#: exist). ARGV[2]: the expiry in unix milliseconds ('' = none). ARGV[3..]: field,
#: value, ... of the new record, which replaces the old one whole.
_COMPARE_AND_SET = """
local found = redis.call('TYPE', KEYS[1])
local kind = found['ok'] or found
if kind == 'none' then
  if ARGV[1] ~= '' then return 0 end
elseif kind ~= 'hash' then
  return -1
else
  local current = redis.call('HGET', KEYS[1], 'version')
  if not current then return -2 end
  if current ~= ARGV[1] then return 0 end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if ARGV[2] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[2]) end
return 1
"""

_OPTIONAL_FIELDS = ("opened_at", "half_open_owner", "probe_lease_expiry", "expires_at")
_DEFAULT_TIMEOUT = 0.5
_RESERVED_OPTIONS = {
    "socket_timeout": "socket_timeout=",
    "socket_connect_timeout": "socket_connect_timeout=",
    "retry": "retries=",
}


class RedisPersistence(CircuitStore):
    """Keeps each circuit's shared record in Redis or Valkey: one hash per circuit.

    Pointing it at a server, in order of preference:

    * ``url="redis://host:6379/0"`` (or ``rediss://`` for TLS, ``unix:///path.sock``):
      the store builds its own clients, a sync one and, for async code, one asyncio
      client per event loop, with short timeouts (``socket_timeout`` and
      ``socket_connect_timeout`` 0.5 s, ``retries`` 0) so a dead server costs each
      call little. ``client_options`` passes any other redis-py option (``password``,
      ``ssl_ca_certs``, ``decode_responses``...) to both.
    * ``client=redis.Redis(...)`` (or ``redis.RedisCluster``): your client, as
      configured (set its timeouts!). Async twins run it in a worker thread, unless you
      also pass ``async_client=redis.asyncio.Redis(...)``, used natively.
    * ``client=redis.asyncio.Redis(...)``: async twins use it natively; sync calls use
      a sync client the store builds from its connection settings (host, port, db or
      socket path, credentials, TLS, timeouts, decoding). An asyncio ``RedisCluster``
      alone serves async calls only: pass a sync ``client=`` with it as ``async_client=``.

    Whatever the client, the asyncio connections opened in an event loop are closed
    when that loop shuts down (``asyncio.run`` ends), so one store serves successive
    ``asyncio.run`` calls (the Lambda pattern) without leaking sockets.

    **Valkey** speaks the same protocol: point ``url=`` or a redis-py client at it. A
    valkey-py client (``valkey.Valkey``, ``valkey.asyncio.Valkey``) works as ``client=``.

    **Redis Cluster**: pass ``cluster=True`` with ``url=`` (any node's address), or a
    ``RedisCluster`` client. Each operation, including the Lua script, touches only the
    circuit's own key, so every circuit lives in one slot. A ``{hash tag}`` in
    ``key_prefix`` would put every circuit in one slot: leave it out.

    Layout: key ``{key_prefix}{name}`` is a hash with fields ``name``, ``state``,
    ``version``, ``failure_count``, ``pinned`` (``0``/``1``) and, when set,
    ``opened_at``, ``half_open_owner``, ``probe_lease_expiry``, ``expires_at`` (floats
    written with ``repr``); the key expires at ``expires_at``. Read it with
    ``HGETALL``. A key that is not such a hash reads as a
    ``CircuitBreakerPersistenceError`` (the breaker treats it as a store fault);
    delete it to recover.

    Example::

        from breaker import circuit_breaker
        from breaker.persistence import RedisPersistence

        store = RedisPersistence(url="redis://cache.internal:6379/0")

        @circuit_breaker(name="inventory", persistence_store=store)
        def stock(sku: str) -> int: ...
    """

    kind = "redis"

    def __init__(
        self,
        *,
        client: Redis | RedisCluster | AsyncRedis | AsyncRedisCluster | None = None,
        url: str | None = None,
        async_client: AsyncRedis | AsyncRedisCluster | None = None,
        key_prefix: str = "circuit-breaker:",
        socket_timeout: float | None = None,
        socket_connect_timeout: float | None = None,
        retries: int | None = None,
        cluster: bool = False,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        """Point the store at a server; see the class docstring for the rules.

        Raises:
            CircuitBreakerConfigError: a parameter is missing, of the wrong kind, or
                given with another it does not go with; the message names it.
        """
        if not isinstance(key_prefix, str):
            raise CircuitBreakerConfigError(
                f"RedisPersistence: key_prefix must be a str, got {key_prefix!r}."
            )
        try:
            import redis
            from redis.exceptions import ResponseError
        except ImportError as exc:
            raise ImportError(
                "RedisPersistence needs redis-py: pip install 'pytest-circuitbreaker[redis]' (or redis>=5)."
            ) from exc

        self._key_prefix = key_prefix
        self._response_error: type[Exception] = ResponseError
        self._lock = allocate_lock()
        self._url: str | None = None
        self._sync_client: Any = None
        self._sync_script: Any = None
        self._sync_factory: Callable[[], Any] | None = None
        self._sync_missing: str | None = None  # why sync calls cannot run, if they cannot
        self._owns_sync = False
        self._async_client: Any = None  # a shared asyncio client (yours), or None
        self._async_factory: Callable[[], Any] | None = None  # builds one per loop (url=)
        self._loops: dict[AbstractEventLoop, _LoopClient] = {}

        if url is not None:
            if client is not None or async_client is not None:
                given = "client=" if client is not None else "async_client="
                raise CircuitBreakerConfigError(f"RedisPersistence: pass either url= or {given}, not both.")
            self._init_from_url(
                redis, url, socket_timeout, socket_connect_timeout, retries, cluster, client_options
            )
            return

        for parameter, value, default in (
            ("socket_timeout", socket_timeout, None),
            ("socket_connect_timeout", socket_connect_timeout, None),
            ("retries", retries, None),
            ("cluster", cluster, False),
            ("client_options", client_options, None),
        ):
            if value is not default:
                raise CircuitBreakerConfigError(
                    f"RedisPersistence: {parameter}={value!r} applies to url= only; "
                    "configure the client you pass instead."
                )
        if client is None:
            if async_client is not None:
                raise CircuitBreakerConfigError(
                    "RedisPersistence: async_client= goes with a sync client=; "
                    "pass an asyncio client alone as client=."
                )
            raise CircuitBreakerConfigError(
                "RedisPersistence: pass url='redis://host:6379/0' or client=<a redis-py client>."
            )
        if _is_async_client(client, "client"):
            if async_client is not None:
                raise CircuitBreakerConfigError(
                    f"RedisPersistence: client={client!r} is an asyncio client, so "
                    "async_client= has nothing to pair with; pass a sync client as client=."
                )
            self._async_client = client
            self._init_sync_from_async(redis, client)
        else:
            self._sync_client = client
            self._sync_script = client.register_script(_COMPARE_AND_SET)
            if async_client is not None:
                if not _is_async_client(async_client, "async_client"):
                    raise CircuitBreakerConfigError(
                        f"RedisPersistence: async_client must be an asyncio client "
                        f"(redis.asyncio.Redis or RedisCluster), got {async_client!r}."
                    )
                self._async_client = async_client

    # -- construction helpers -------------------------------------------------------

    def _init_from_url(
        self,
        redis: Any,
        url: str,
        socket_timeout: float | None,
        socket_connect_timeout: float | None,
        retries: int | None,
        cluster: bool,
        client_options: Mapping[str, Any] | None,
    ) -> None:
        if not isinstance(url, str):
            raise CircuitBreakerConfigError(
                f"RedisPersistence: url must be a str such as 'redis://host:6379/0', got {url!r}."
            )
        shown = _mask_password(url)
        schemes = ("redis://", "rediss://") if cluster is True else ("redis://", "rediss://", "unix://")
        if not url.startswith(schemes):
            raise CircuitBreakerConfigError(
                f"RedisPersistence: url must start with {', '.join(schemes)}"
                f"{' (cluster=True)' if cluster is True else ''}, got {shown!r}."
            )
        try:
            from urllib.parse import urlsplit

            urlsplit(url).port  # noqa: B018 - raises ValueError for a bad port
            redis.connection.parse_url(url)
        except ValueError as exc:
            raise CircuitBreakerConfigError(f"RedisPersistence: url {shown!r} is invalid: {exc}") from None
        if not isinstance(cluster, bool):
            raise CircuitBreakerConfigError(f"RedisPersistence: cluster must be a bool, got {cluster!r}.")
        timeouts = {
            "socket_timeout": _timeout("socket_timeout", socket_timeout),
            "socket_connect_timeout": _timeout("socket_connect_timeout", socket_connect_timeout),
        }
        if retries is None:
            retries = 0
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise CircuitBreakerConfigError(
                f"RedisPersistence: retries must be an int >= 0, got {retries!r}."
            )
        options: dict[str, Any] = {}
        if client_options is not None:
            if not hasattr(client_options, "items") or not all(isinstance(k, str) for k in client_options):
                raise CircuitBreakerConfigError(
                    "RedisPersistence: client_options must be a mapping of redis-py option "
                    f"names to values, got {client_options!r}."
                )
            for option, parameter in _RESERVED_OPTIONS.items():
                if option in client_options:
                    raise CircuitBreakerConfigError(
                        f"RedisPersistence: set {option} with the {parameter} parameter, "
                        "not in client_options."
                    )
            options.update(client_options)

        from redis.asyncio.retry import Retry as AsyncRetry
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        sync_class = redis.RedisCluster if cluster else redis.Redis
        async_class = redis.asyncio.RedisCluster if cluster else redis.asyncio.Redis
        sync_options = {**options, **timeouts, "retry": Retry(ExponentialBackoff(cap=0.1), retries)}
        async_options = {**options, **timeouts, "retry": AsyncRetry(ExponentialBackoff(cap=0.1), retries)}
        self._url = url
        self._owns_sync = True
        # Built on first use: a cluster client talks to the cluster as it is built, and
        # an outage must surface as a store fault in a call, not at construction.
        self._sync_factory = lambda: sync_class.from_url(url, **sync_options)
        self._async_factory = lambda: async_class.from_url(url, **async_options)

    def _init_sync_from_async(self, redis: Any, client: Any) -> None:
        import redis.asyncio.connection as aio

        pool = getattr(client, "connection_pool", None)
        twins: dict[object, Any] = {
            aio.Connection: redis.Connection,
            aio.SSLConnection: redis.SSLConnection,
            aio.UnixDomainSocketConnection: redis.UnixDomainSocketConnection,
        }
        connection_class = twins.get(getattr(pool, "connection_class", None))
        if pool is None or connection_class is None:
            self._sync_missing = (
                f"RedisPersistence was given only the asyncio client {client!r}, and cannot build "
                "a sync twin of it: pass a sync client as client= and this one as async_client=, "
                "or url=."
            )
            return
        import inspect

        settings = pool.connection_kwargs
        accepted = {
            name
            for cls in connection_class.__mro__
            if "__init__" in vars(cls)
            for name in inspect.signature(cls.__init__).parameters
        }
        kwargs = {
            name: settings[name]
            for name in settings
            if name in accepted and (name in _PORTABLE_SETTINGS or name.startswith("ssl_"))
        }
        retry = settings.get("retry")
        if retry is not None:
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            kwargs["retry"] = Retry(getattr(retry, "_backoff", NoBackoff()), retry.get_retries())

        def build() -> Any:
            return redis.Redis(
                connection_pool=redis.ConnectionPool(connection_class=connection_class, **kwargs)
            )

        self._owns_sync = True
        self._sync_factory = build

    # -- the sync primitives --------------------------------------------------------

    def _sync(self) -> Any:
        client = self._sync_client
        if client is None:
            with self._lock:
                client = self._sync_client
                if client is None:
                    if self._sync_factory is None:
                        raise CircuitBreakerConfigError(self._sync_missing)
                    client = self._sync_factory()
                    self._sync_script = client.register_script(_COMPARE_AND_SET)
                    self._sync_client = client
        return client

    def read(self, name: str) -> CircuitRecord | None:
        """Return circuit ``name``'s record (one HGETALL), or None when there is no key.

        Raises:
            CircuitBreakerPersistenceError: the key holds something that is not a record.
            redis.exceptions.RedisError: the server could not be reached or answered an error.
        """
        key = self._key_prefix + name
        try:
            raw = self._sync().hgetall(key)
        except self._response_error as exc:
            raise _corrupt_or(key, exc) from exc
        return _decode(key, name, raw)

    def write(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        """Compare-and-set ``record`` against ``expected``'s version, atomically (Lua).

        Replaces the whole hash and sets the key's expiry from ``record.expires_at``.
        Returns False when the stored version is not ``expected``'s.

        Raises:
            CircuitBreakerPersistenceError: the key holds something that is not a record.
            redis.exceptions.RedisError: the server could not be reached or answered an error.
        """
        check_write_arguments(record, expected)
        key = self._key_prefix + record.name
        self._sync()
        return _outcome(key, self._sync_script(keys=[key], args=_script_args(record, expected)))

    def delete(self, name: str) -> None:
        """Delete circuit ``name``'s key (DEL); nothing happens when there is none."""
        self._sync().delete(self._key_prefix + name)

    # -- the async twins ------------------------------------------------------------

    async def _for_this_loop(self) -> _LoopClient | None:
        """The asyncio client and script for the running loop; None means "use a thread"."""
        from asyncio import get_running_loop

        loop = get_running_loop()
        entry = self._loops.get(loop)
        if entry is not None:
            return entry
        if self._async_factory is not None:
            client, owned = self._async_factory(), True
        elif self._async_client is not None:
            client, owned = self._async_client, False
        else:
            return None
        for old in [old for old in self._loops if old.is_closed()]:
            self._loops.pop(old).forget()  # a loop closed without shutting its generators down
        entry = _LoopClient(client, client.register_script(_COMPARE_AND_SET))
        self._loops[loop] = entry
        # An async generator's cleanup runs when the loop shuts down (asyncio.run does),
        # which is the last moment its connections can be closed cleanly.
        entry.closer = _close_at_loop_end(self._loops, loop, entry, owned)
        await entry.closer.__anext__()
        return entry

    async def aread(self, name: str) -> CircuitRecord | None:
        """Async ``read``: the asyncio client natively (a worker thread for a sync-only store)."""
        entry = await self._for_this_loop()
        if entry is None:
            return await super().aread(name)
        key = self._key_prefix + name
        try:
            raw = await entry.client.hgetall(key)
        except self._response_error as exc:
            raise _corrupt_or(key, exc) from exc
        return _decode(key, name, raw)

    async def awrite(self, record: CircuitRecord, expected: CircuitRecord | None) -> bool:
        """Async ``write``: the asyncio client natively (a worker thread for a sync-only store)."""
        check_write_arguments(record, expected)
        entry = await self._for_this_loop()
        if entry is None:
            return await super().awrite(record, expected)
        key = self._key_prefix + record.name
        return _outcome(key, await entry.script(keys=[key], args=_script_args(record, expected)))

    async def adelete(self, name: str) -> None:
        """Async ``delete``: the asyncio client natively (a worker thread for a sync-only store)."""
        entry = await self._for_this_loop()
        if entry is None:
            return await super().adelete(name)
        await entry.client.delete(self._key_prefix + name)
        return None

    # -- lifecycle ------------------------------------------------------------------

    def key(self, name: str) -> str:
        """The Redis key that holds circuit ``name``'s record.

        Example:
            >>> RedisPersistence(url="redis://localhost:6379/0", key_prefix="cb:").key("db")
            'cb:db'
        """
        return self._key_prefix + name

    def close(self) -> None:
        """Close the sync client if the store built it (a client you pass stays yours).

        The store stays usable: the next sync call builds a new client.
        """
        if not self._owns_sync:
            return
        with self._lock:
            client, self._sync_client = self._sync_client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """``close()``, and close the asyncio connections the store opened in the running loop."""
        from asyncio import get_running_loop

        entry = self._loops.get(get_running_loop())
        if entry is not None and entry.closer is not None:
            await entry.closer.aclose()
        self.close()

    def __repr__(self) -> str:
        if self._url is not None:
            target = f"url={_mask_password(self._url)!r}"
        else:
            target = f"client={self._sync_client or self._async_client!r}"
        return f"RedisPersistence({target}, key_prefix={self._key_prefix!r})"


#: Connection settings carried from an asyncio client to the sync twin built from it.
_PORTABLE_SETTINGS = frozenset(
    {
        "host",
        "port",
        "path",
        "db",
        "username",
        "password",
        "credential_provider",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "socket_keepalive_options",
        "encoding",
        "encoding_errors",
        "decode_responses",
        "client_name",
        "protocol",
        "health_check_interval",
    }
)


class _LoopClient:
    """The asyncio client and registered script one event loop uses."""

    __slots__ = ("client", "closer", "script")

    def __init__(self, client: Any, script: Any) -> None:
        self.client = client
        self.script = script
        self.closer: AsyncGenerator[None, None] | None = None

    def forget(self) -> None:
        """Finish the closer without awaiting: its loop is closed, nothing can be awaited."""
        closer, self.closer = self.closer, None
        if closer is not None:
            try:
                closer.aclose().send(None)
            except (StopIteration, RuntimeError):
                pass


async def _close_at_loop_end(
    loops: dict[AbstractEventLoop, _LoopClient], loop: AbstractEventLoop, entry: _LoopClient, owned: bool
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if loops.get(loop) is entry:
            del loops[loop]
        entry.closer = None
        if not loop.is_closed():
            try:
                await _disconnect(entry.client, owned)
            except Exception:
                pass  # closing is best effort: the sockets go with the loop anyway


async def _disconnect(client: Any, owned: bool) -> None:
    if owned or getattr(client, "connection_pool", None) is None:
        await client.aclose()  # ours, or a cluster client (which reconnects on next use)
        return
    # Your client: drop only the connections (bound to this loop); it stays usable.
    connection = getattr(client, "connection", None)  # single_connection_client=True
    if connection is not None:
        await connection.disconnect()
    await client.connection_pool.disconnect()


# -- encoding -----------------------------------------------------------------------


def _script_args(record: CircuitRecord, expected: CircuitRecord | None) -> list[str]:
    expires_at = record.expires_at
    if expires_at is None:
        expiry = ""
    else:
        import math

        if not math.isfinite(expires_at):
            raise ValueError(f"record.expires_at must be a finite number or None, got {expires_at!r}.")
        expiry = str(math.ceil(expires_at * 1000))  # never drop the key before expires_at
    args = [
        "" if expected is None else str(expected.version),
        expiry,
        "name",
        record.name,
        "state",
        record.state.value,
        "version",
        str(record.version),
        "failure_count",
        str(record.failure_count),
        "pinned",
        "1" if record.pinned else "0",
    ]
    for field in _OPTIONAL_FIELDS:
        value = getattr(record, field)
        if value is not None:
            args += [field, value if isinstance(value, str) else repr(float(value))]
    return args


def _outcome(key: str, result: object) -> bool:
    if result == 1:
        return True
    if result == 0:
        return False
    if result == -1:
        problem = "it is not a hash"
    elif result == -2:
        problem = "its hash has no version field"
    else:
        problem = f"the compare-and-set script answered {result!r}"
    raise CircuitBreakerPersistenceError("corrupt circuit record", f"redis key {key!r}: {problem}")


def _decode(key: str, name: str, raw: Mapping[Any, Any]) -> CircuitRecord | None:
    if not raw:
        return None
    try:
        fields = {_text(field): _text(value) for field, value in raw.items()}
    except UnicodeDecodeError as exc:
        raise CircuitBreakerPersistenceError("corrupt circuit record", f"redis key {key!r}: {exc}") from None
    missing = [field for field in ("name", "state", "version") if field not in fields]
    pinned = fields.get("pinned", "0")
    if missing or pinned not in ("0", "1"):
        problem = f"missing {', '.join(missing)}" if missing else f"pinned is {pinned!r}, not '0' or '1'"
        raise CircuitBreakerPersistenceError("corrupt circuit record", f"redis key {key!r}: {problem}")
    data: dict[str, Any] = {
        field: fields[field]
        for field in ("name", "state", "version", "failure_count", *_OPTIONAL_FIELDS)
        if field in fields
    }
    data["pinned"] = pinned == "1"
    record = CircuitRecord.from_dict(data)
    if record.name != name:
        raise CircuitBreakerPersistenceError(
            "corrupt circuit record", f"redis key {key!r} holds the record of circuit {record.name!r}"
        )
    return record


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _corrupt_or(key: str, exc: Exception) -> Exception:
    if str(exc).startswith("WRONGTYPE"):
        return CircuitBreakerPersistenceError(
            "corrupt circuit record", f"redis key {key!r} is not a hash: {exc}"
        )
    return exc


# -- validation helpers ---------------------------------------------------------------


def _is_async_client(client: object, parameter: str) -> bool:
    """True for an asyncio client, False for a sync one; raises for anything else."""
    execute = getattr(type(client), "execute_command", None)
    if execute is None or not callable(getattr(client, "register_script", None)):
        raise CircuitBreakerConfigError(
            f"RedisPersistence: {parameter} must be a redis-py client (redis.Redis, redis.RedisCluster, "
            f"redis.asyncio.Redis or redis.asyncio.RedisCluster), got {client!r}."
        )
    import inspect

    return inspect.iscoroutinefunction(execute)


def _timeout(parameter: str, value: float | None) -> float:
    if value is None:
        return _DEFAULT_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
        raise CircuitBreakerConfigError(
            f"RedisPersistence: {parameter} must be a number of seconds > 0, got {value!r}."
        )
    return float(value)


def _mask_password(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages and reprs."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
