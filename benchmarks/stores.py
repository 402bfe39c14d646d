"""Store traffic and outage cost on DynamoDB: this library vs Powertools 3.37 (DESIGN §8).

Usage (from the repository root)::

    python -m benchmarks.stores                  # full run, about 15 s
    python -m benchmarks.stores --quick          # smoke run, a few seconds
    python -m benchmarks.stores --json out.json  # also write the results as JSON

Both contenders use the same moto table (moto's in-process ``mock_aws``), each through
its own boto3 client; every DynamoDB call a client makes is counted with a botocore
event hook (``before-call.dynamodb``), so the counts are what would reach DynamoDB.

1. **Healthy**: N invocations in one environment, one every 50 ms of simulated time,
   the downstream always succeeding: store reads and writes per invocation.
2. **Trip/recover cycle**: one invocation per simulated second: 10 healthy, 5 failing
   (the trip), then a healthy downstream until the circuit has recovered (30 s open,
   3 probes) and a few more. Default tunables (failure_threshold=5,
   recovery_timeout=30, success_threshold=3, local_cache_max_age=5).
   Time: a ``FakeClock`` for this library (its clock object); for Powertools, which
   reads ``datetime.now()``, ``time_machine.travel(tick=False)`` moved the same amounts.
3. **Store outage**: both pointed at an unreachable endpoint with the same client
   settings, ``connect_timeout=0.2, read_timeout=0.2`` and one attempt (short on
   purpose, so the run is quick; botocore's defaults are 60 s and 60 s with retries).
   *refused*: a closed localhost port (the connection is refused at once). *hung*: a
   localhost socket that listens but never answers (each request waits for the read
   timeout, as with a stuck store). After the first call has met the outage, M more
   calls are timed one by one (real clock; the downstream succeeds).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import socket
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

REGION = "us-east-1"
TABLE = "bench-circuits"
OUTAGE_TIMEOUT = 0.2
READS = ("GetItem",)
WRITES = ("PutItem", "UpdateItem", "DeleteItem")

LABELS = {
    "breaker": "breaker (this library)",
    "powertools": f"Powertools {version('aws-lambda-powertools')}",
}


class Settings:
    __slots__ = ("healthy_calls", "outage_calls", "quick")

    def __init__(self, *, quick: bool) -> None:
        self.quick = quick
        self.healthy_calls = 200 if quick else 2000
        self.outage_calls = 10 if quick else 50


class DownstreamError(Exception):
    pass


class Downstream:
    """The protected dependency: succeeds or fails, counts its calls."""

    def __init__(self) -> None:
        self.failing = False
        self.calls = 0

    def __call__(self, x: int) -> int:
        self.calls += 1
        if self.failing:
            raise DownstreamError("down")
        return x


# ---------------------------------------------------------------------- clients


def _session() -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


def counted_client(session: Any, counts: Counter[str], **kwargs: Any) -> Any:
    """A DynamoDB client whose every API call adds one to ``counts[operation]``."""
    client = session.client("dynamodb", **kwargs)

    def count(model: Any, **_: Any) -> None:
        counts[model.name] += 1

    client.meta.events.register("before-call.dynamodb", count)
    return client


def create_table(client: Any) -> None:
    """The table both libraries document: string key ``id``, TTL on ``expiration``."""
    client.create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )


# ------------------------------------------------------------------- contenders


class Contender:
    """One library's protected function, with its store's call counts and its clock."""

    def __init__(
        self,
        key: str,
        call: Callable[[int], Any],
        counts: Counter[str],
        advance: Callable[[float], None],
        hooks: list[Any],
    ) -> None:
        self.key = key
        self.call = call
        self.counts = counts
        self.advance = advance
        self.hooks = hooks

    def outcome(self, x: int = 1) -> str:
        from aws_lambda_powertools.utilities.circuit_breaker import CircuitBreakerOpenError as Theirs

        from breaker import CircuitBreakerOpenError as Ours

        try:
            self.call(x)
        except DownstreamError:
            return "failed"
        except (Ours, Theirs):
            return "rejected"
        except Exception as exc:  # what neither should ever let through
            return f"error {type(exc).__name__}"
        return "ok"


@contextmanager
def ours(
    name: str, client: Any, counts: Counter[str], downstream: Downstream, *, fake_time: float | None
) -> Iterator[Contender]:
    from breaker import CircuitBreaker, CircuitBreakerConfig, Environment, FakeClock
    from breaker.persistence.dynamodb import DynamoDBPersistence

    clock = FakeClock(start=fake_time) if fake_time is not None else None
    store = DynamoDBPersistence(TABLE, boto3_client=client, clock=clock)
    hooks: list[Any] = []
    breaker = CircuitBreaker(
        name,
        store,
        on_transition=hooks.append,
        config=CircuitBreakerConfig(),
        clock=clock,
        environment=Environment(f"bench-{name}"),
    )
    protected = breaker(downstream)
    yield Contender("breaker", protected, counts, clock.advance if clock else _no_travel, hooks)


@contextmanager
def powertools(
    name: str, client: Any, counts: Counter[str], downstream: Downstream, *, fake_time: float | None
) -> Iterator[Contender]:
    from aws_lambda_powertools.utilities.circuit_breaker import CircuitBreakerConfig, circuit_breaker
    from aws_lambda_powertools.utilities.circuit_breaker.persistence import (
        CircuitBreakerDynamoDBPersistence,
    )

    store = CircuitBreakerDynamoDBPersistence(TABLE, boto3_client=client)
    hooks: list[Any] = []
    protected = circuit_breaker(
        name=name, persistence_store=store, on_transition=hooks.append, config=CircuitBreakerConfig()
    )(downstream)
    if fake_time is None:
        yield Contender("powertools", protected, counts, _no_travel, hooks)
        return
    import time_machine

    with time_machine.travel(fake_time, tick=False) as traveller:
        yield Contender("powertools", protected, counts, traveller.shift, hooks)


def _no_travel(seconds: float) -> None:
    raise RuntimeError("this contender runs on the real clock")


FACTORIES = {"breaker": ours, "powertools": powertools}


def _traffic_row(contender: Contender, outcomes: Counter[str], invocations: int) -> dict[str, Any]:
    reads = sum(contender.counts[op] for op in READS)
    writes = sum(contender.counts[op] for op in WRITES)
    return {
        "label": LABELS[contender.key],
        "invocations": invocations,
        "reads": reads,
        "writes": writes,
        "operations": dict(sorted(contender.counts.items())),
        "reads_per_invocation": reads / invocations,
        "writes_per_invocation": writes / invocations,
        "outcomes": dict(sorted(outcomes.items())),
        "transitions": [f"{t.from_state.value}->{t.to_state.value}" for t in contender.hooks],
    }


# --------------------------------------------------------------------- sections


def healthy(s: Settings, session: Any, start: float) -> dict[str, Any]:
    rows = {}
    for key, factory in FACTORIES.items():
        counts: Counter[str] = Counter()
        client = counted_client(session, counts)
        downstream = Downstream()
        outcomes: Counter[str] = Counter()
        with factory(f"healthy-{key}", client, counts, downstream, fake_time=start) as contender:
            for _ in range(s.healthy_calls):
                outcomes[contender.outcome()] += 1
                contender.advance(0.05)
        rows[key] = _traffic_row(contender, outcomes, s.healthy_calls)
        client.close()
    return {
        "title": f"1. Healthy: {s.healthy_calls} invocations, one every 50 ms (simulated), one environment",
        "rows": rows,
    }


#: The cycle's schedule: (invocations, downstream failing) at one invocation per second.
CYCLE = ((10, False), (5, True), (50, False))


def cycle(s: Settings, session: Any, start: float) -> dict[str, Any]:
    rows = {}
    for key, factory in FACTORIES.items():
        counts: Counter[str] = Counter()
        client = counted_client(session, counts)
        downstream = Downstream()
        outcomes: Counter[str] = Counter()
        invocations = 0
        with factory(f"cycle-{key}", client, counts, downstream, fake_time=start) as contender:
            for calls, failing in CYCLE:
                downstream.failing = failing
                for _ in range(calls):
                    outcomes[contender.outcome()] += 1
                    invocations += 1
                    contender.advance(1.0)
        rows[key] = _traffic_row(contender, outcomes, invocations)
        rows[key]["downstream_calls"] = downstream.calls
        client.close()
    schedule = ", ".join(f"{n} {'failing' if f else 'healthy'}" for n, f in CYCLE)
    return {
        "title": f"2. Trip/recover cycle: one invocation per simulated second ({schedule})",
        "rows": rows,
    }


@contextmanager
def unreachable(kind: str) -> Iterator[str]:
    """An endpoint URL that refuses connections, or that accepts them and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    if kind == "refused":
        sock.close()  # nothing listens on the port any more
        yield f"http://127.0.0.1:{port}"
        return
    sock.listen(1024)  # the kernel completes connections; nobody ever reads or answers
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        sock.close()


def outage(s: Settings, session: Any, kind: str) -> dict[str, Any]:
    from botocore.config import Config

    config = Config(
        connect_timeout=OUTAGE_TIMEOUT,
        read_timeout=OUTAGE_TIMEOUT,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    rows = {}
    with unreachable(kind) as endpoint:
        for key, factory in FACTORIES.items():
            counts: Counter[str] = Counter()
            client = counted_client(session, counts, endpoint_url=endpoint, config=config)
            downstream = Downstream()
            outcomes: Counter[str] = Counter()
            with factory(f"outage-{kind}-{key}", client, counts, downstream, fake_time=None) as contender:
                started = time.perf_counter()
                outcomes[contender.outcome()] += 1  # meets the outage
                first = time.perf_counter() - started
                detected = sum(counts.values())
                latencies = []
                for _ in range(s.outage_calls):
                    started = time.perf_counter()
                    outcomes[contender.outcome()] += 1
                    latencies.append(time.perf_counter() - started)
            rows[key] = {
                "label": LABELS[key],
                "first_call_ms": first * 1e3,
                "calls": len(latencies),
                "mean_ms": statistics.mean(latencies) * 1e3,
                "median_ms": statistics.median(latencies) * 1e3,
                "max_ms": max(latencies) * 1e3,
                "store_calls_after_detection": sum(counts.values()) - detected,
                "outcomes": dict(sorted(outcomes.items())),
            }
            client.close()
    what = "a closed port (refused)" if kind == "refused" else "a socket that never answers (hung)"
    return {
        "title": f"3{'a' if kind == 'refused' else 'b'}. Store outage: {what}",
        "rows": rows,
    }


# ---------------------------------------------------------------------- report


def run(settings: Settings) -> dict[str, Any]:
    begun = time.perf_counter()
    # Both libraries log each store failure; the numbers are the point here.
    for logger in ("breaker", "aws_lambda_powertools"):
        logging.getLogger(logger).setLevel(logging.CRITICAL)
    from moto import mock_aws

    session = _session()
    start = float(int(time.time()))
    sections: dict[str, Any] = {}
    with mock_aws():
        admin = session.client("dynamodb")
        create_table(admin)
        sections["healthy"] = healthy(settings, session, start)
        sections["cycle"] = cycle(settings, session, start)
        admin.close()
    sections["outage_refused"] = outage(settings, session, "refused")
    sections["outage_hung"] = outage(settings, session, "hung")
    return {
        "meta": {
            "quick": settings.quick,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "versions": {
                dist: version(dist) for dist in ("aws-lambda-powertools", "boto3", "botocore", "moto")
            },
            "outage_timeouts_s": {"connect": OUTAGE_TIMEOUT, "read": OUTAGE_TIMEOUT, "attempts": 1},
            "seconds": round(time.perf_counter() - begun, 1),
        },
        "sections": sections,
    }


def _outcomes(row: dict[str, Any]) -> str:
    return ", ".join(f"{n} {k}" for k, n in row["outcomes"].items())


def render(report: dict[str, Any]) -> str:
    sections = report["sections"]
    out = [
        "## Store traffic (moto DynamoDB, the same table for both)",
        "",
        "| schedule | contender | invocations | reads | writes | reads/invocation | writes/invocation "
        "| outcomes | transitions reported |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for key, short in (("healthy", "healthy"), ("cycle", "trip/recover")):
        for row in sections[key]["rows"].values():
            out.append(
                f"| {short} | {row['label']} | {row['invocations']} | {row['reads']} | {row['writes']} | "
                f"{row['reads_per_invocation']:.4f} | {row['writes_per_invocation']:.4f} | "
                f"{_outcomes(row)} | {', '.join(row['transitions']) or '-'} |"
            )
    out += ["", *(f"- {sections[key]['title']}" for key in ("healthy", "cycle"))]
    timeouts = report["meta"]["outage_timeouts_s"]
    out += [
        "",
        f"## Added latency per call during a store outage (connect_timeout={timeouts['connect']} s, "
        f"read_timeout={timeouts['read']} s, {timeouts['attempts']} attempt, for both)",
        "",
        "| endpoint | contender | first call ms | calls after | mean ms | median ms | max ms "
        "| store calls after detection |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, short in (("outage_refused", "refused"), ("outage_hung", "hung")):
        for row in sections[key]["rows"].values():
            out.append(
                f"| {short} | {row['label']} | {row['first_call_ms']:.1f} | {row['calls']} | "
                f"{row['mean_ms']:.3f} | {row['median_ms']:.3f} | {row['max_ms']:.3f} | "
                f"{row['store_calls_after_detection']} |"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.stores", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (fewer calls)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    report = run(Settings(quick=args.quick))
    print(render(report))
    print(f"\n(ran in {report['meta']['seconds']} s)")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
