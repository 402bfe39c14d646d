"""The worker side of the fleet tests: one real process per Lambda environment.

Each worker builds its own store client and one :class:`~breaker.CircuitBreaker` on
its process's default Environment, then obeys commands sent by the test over a pipe
(``call``, ``traffic``, ``exit``; see :func:`worker_main`). Everything a worker's breaker
does that matters to the fleet-wide invariants (stored transitions through
``on_transition``, downstream calls, store writes, takeovers, probes) is appended to a
shared :class:`Journal` file, so the test can count it across processes.

The forkserver preloads this module (see ``support.py``): workers are forked with
breaker, redis-py, boto3 and a loaded DynamoDB service model already in memory, so a
fleet of six starts in a fraction of a second instead of several seconds. The fork
gives each worker a fresh default Environment id (``breaker.environment`` re-keys it
in the child), exactly as a new Lambda execution environment would have.

Nothing here imports pytest: the forkserver and the workers never load it.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from typing import Any, NamedTuple

import boto3
import redis  # noqa: F401 - preloaded, so that forked workers do not import it
from botocore.config import Config

from breaker import CircuitBreaker, CircuitBreakerConfig, CircuitBreakerOpenError, events
from breaker.environment import DEFAULT_ENVIRONMENT
from breaker.persistence import CircuitStore
from breaker.persistence.dynamodb import DynamoDBPersistence
from breaker.persistence.redis import RedisPersistence

REGION = "us-east-1"

#: One boto3 session for every DynamoDB client of this process and its forked workers:
#: its loader caches the service model, which costs ~0.1 s of CPU per process to load.
SESSION = boto3.session.Session(
    aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
)
SESSION.client("dynamodb", endpoint_url="http://127.0.0.1:9").close()  # load the model now


class DownstreamError(Exception):
    """What a failing downstream raises (a counted failure)."""


class StoreSpec(NamedTuple):
    """How to reach the shared store from any process (picklable)."""

    kind: str  # "redis" or "dynamodb"
    target: str  # the redis URL, or the moto server's endpoint URL
    table: str | None = None
    timeout: float = 2.0

    def build(self) -> CircuitStore:
        """A new store (with its own client and connections) for this process."""
        if self.kind == "redis":
            return RedisPersistence(
                url=self.target, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
            )
        assert self.table is not None
        return DynamoDBPersistence(self.table, boto3_client=dynamodb_client(self.target, self.timeout))


def dynamodb_client(endpoint: str, timeout: float, *, attempts: int = 1) -> Any:
    """A DynamoDB client of :data:`SESSION` on ``endpoint`` with short timeouts."""
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"total_max_attempts": attempts, "mode": "standard"},
    )
    return SESSION.client("dynamodb", endpoint_url=endpoint, config=config)


def close_store(store: CircuitStore) -> None:
    """Close the connections a store holds (no ResourceWarning at interpreter exit)."""
    if isinstance(store, RedisPersistence):
        store.close()
    elif isinstance(store, DynamoDBPersistence):
        store.client.close()


class Journal:
    """A JSON-lines file that every process of a fleet appends to.

    Each entry is written with one ``write(2)`` on an ``O_APPEND`` descriptor, so
    entries of concurrent processes never interleave, and an entry written before a
    process is killed is complete.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, kind: str, env: str, **fields: Any) -> None:
        entry = {"kind": kind, "env": env, "pid": os.getpid(), "t": time.time(), **fields}
        line = (json.dumps(entry) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def entries(self, kind: str | None = None, **match: Any) -> list[dict[str, Any]]:
        """Every entry (of ``kind``, with the given field values), in the order written."""
        try:
            with open(self.path, encoding="utf-8") as file:
                lines = file.read().splitlines()
        except FileNotFoundError:
            return []
        found = [json.loads(line) for line in lines]
        return [
            e
            for e in found
            if (kind is None or e["kind"] == kind) and all(e.get(k) == v for k, v in match.items())
        ]

    def transitions(self) -> list[tuple[str, str, str]]:
        """``(env, from, to)`` of every stored transition reported to ``on_transition``."""
        return [(e["env"], e["from_state"], e["to_state"]) for e in self.entries("transition")]


def transition_recorder(journal: Journal, env: str) -> Any:
    """An ``on_transition`` hook that journals each call."""

    def on_transition(transition: Any) -> None:
        journal.write(
            "transition",
            env,
            from_state=transition.from_state.value,
            to_state=transition.to_state.value,
            opened_at=transition.opened_at,
        )

    return on_transition


def event_recorder(journal: Journal, env: str, name: str) -> Any:
    """An events listener journaling what the invariants are about (never the fast path)."""

    def listener(event: events.Event) -> None:
        if event.name != name:
            return
        kind = event.kind
        if kind == events.STORE_WRITE:
            written: Any = event.value
            record, stored = written
            journal.write(
                "store_write",
                env,
                stored=stored,
                to_state=record.state.value,
                version=record.version,
                owner=record.half_open_owner,
            )
        elif kind in (events.TAKEOVER, events.PROBE_STARTED, events.PROBE_FINISHED):
            journal.write(kind, env, value=event.value)
        elif kind == events.STORE_FAULT:
            journal.write(kind, env, error=type(event.value).__name__)
        elif kind == events.LOCAL_TRANSITION:
            transition: Any = event.value
            journal.write(
                kind, env, from_state=transition.from_state.value, to_state=transition.to_state.value
            )

    return listener


def _sleep_until(wall: float | None) -> None:
    if wall is not None:
        delay = wall - time.time()
        if delay > 0:
            time.sleep(delay)


def worker_main(
    conn: Any, spec: StoreSpec, name: str, config: dict[str, Any], journal_path: str, barrier: Any
) -> None:
    """A worker's life: build the breaker, say ready, obey commands until ``exit``.

    Commands (dicts) and what the worker answers:

    * ``{"op": "call", "outcome": "ok"|"fail", "hold": bool, "sleep": s, "barrier": bool,
      "at": wall}``: wait on the fleet's barrier and/or until wall time ``at``, then make
      one protected call. With ``hold`` the downstream, once entered, sends
      ``{"type": "entered"}`` and waits for ``{"op": "release"}``. Answers
      ``{"type": "result", "result": "ok"|"failed"|"rejected"|"leaked ..."}``: "leaked"
      means an exception other than the downstream's own or the open error reached the
      caller (a bug).
    * ``{"op": "traffic", "until": wall, "interval": s}``: calls (downstream healthy)
      every ``interval`` until ``until``; answers the count of each result and the last.
    * ``{"op": "exit"}``.
    """
    try:
        env = DEFAULT_ENVIRONMENT.id
        journal = Journal(journal_path)
        store = spec.build()
        events.subscribe(event_recorder(journal, env, name))
        breaker = CircuitBreaker(
            name,
            store,
            on_transition=transition_recorder(journal, env),
            config=CircuitBreakerConfig(**config),
        )
        store.read(name)  # connect now (not through the breaker: its view stays cold)
        conn.send({"type": "ready", "env": env, "pid": os.getpid()})

        def call(command: dict[str, Any]) -> str:
            def downstream() -> str:
                journal.write("downstream", env, phase="start")
                if command.get("hold"):
                    conn.send({"type": "entered"})
                    release = conn.recv()
                    assert release == {"op": "release"}, release
                elif command.get("sleep"):
                    time.sleep(command["sleep"])
                journal.write("downstream", env, phase="end")
                if command.get("outcome", "ok") == "fail":
                    raise DownstreamError(env)
                return "ok"

            try:
                return str(breaker.call(downstream))
            except CircuitBreakerOpenError:
                return "rejected"
            except DownstreamError:
                return "failed"
            except Exception as exc:
                return f"leaked {type(exc).__name__}: {exc}"

        while True:
            command = conn.recv()
            op = command["op"]
            if op == "exit":
                break
            if op == "call":
                if command.get("barrier"):
                    barrier.wait(timeout=30)
                _sleep_until(command.get("at"))
                conn.send({"type": "result", "result": call(command), "t": time.time()})
            elif op == "traffic":
                counts: dict[str, int] = {}
                last = None
                while time.time() < command["until"]:
                    last = call({"outcome": "ok"})
                    counts[last] = counts.get(last, 0) + 1
                    time.sleep(command["interval"])
                conn.send({"type": "traffic", "counts": counts, "last": last})
            else:
                raise ValueError(f"unknown command {command!r}")
        close_store(store)
    except Exception:
        conn.send({"type": "crash", "error": traceback.format_exc()})
