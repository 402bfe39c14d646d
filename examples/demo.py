"""Trip, reject, probe and recover one circuit under the fake clock, printing what happens.

Run it with `python3 dev.py demo` (nothing to install: `breaker` is standard-library only).
Two simulated Lambda environments share the embedded store, so the demo also shows the
second environment seeing the first one's trip and the single elected probe.
"""

from __future__ import annotations

import asyncio

from breaker import (
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitBreakerOpenError,
    CircuitInfo,
    CircuitTransition,
    Environment,
    FakeClock,
)
from breaker.persistence import InMemoryPersistence

clock = FakeClock(start=1_700_000_000.0)
store = InMemoryPersistence(clock=clock)
config = CircuitBreakerConfig(
    failure_threshold=3, recovery_timeout=30, success_threshold=2, local_cache_max_age=1
)
healthy = {"up": True}


def show(transition: CircuitTransition) -> None:
    print(
        f"  [t+{clock.time() - 1_700_000_000:>4.0f}s] transition {transition.from_state} -> {transition.to_state}"
    )


def park(order: dict[str, int], circuit: CircuitInfo) -> str:
    return f"order {order['id']} parked for later ({circuit.name} is {circuit.state})"


# Two environments (think: two Lambda execution environments) protecting the same downstream.
lambda_a = CircuitBreaker(
    "payments", store, on_transition=show, config=config, clock=clock, environment=Environment("lambda-a")
)
lambda_b = lambda_a.with_environment(Environment("lambda-b"))
fallback_b = CircuitBreaker(
    "payments", store, on_circuit_open=park, config=config, clock=clock, environment=lambda_b.environment
)


def charge(order: dict[str, int]) -> str:
    if not healthy["up"]:
        raise ConnectionError("payments API: connection refused")
    return f"order {order['id']} charged"


def attempt(breaker: CircuitBreaker, order_id: int) -> None:
    env = breaker.environment.id
    try:
        print(f"  {env}: {breaker.call(charge, {'id': order_id})}")
    except CircuitBreakerOpenError as exc:
        print(
            f"  {env}: rejected without calling payments (retry after {exc.retry_after:.0f}s)"
            if exc.retry_after is not None
            else f"  {env}: rejected (probe in progress elsewhere)"
        )
    except ConnectionError as exc:
        print(f"  {env}: failed: {exc}")


def main() -> None:
    print("1. healthy downstream: calls go through, nothing is written to the store")
    attempt(lambda_a, 1)
    attempt(lambda_b, 2)

    print("2. the downstream goes down: lambda-a trips the circuit after 3 failures")
    healthy["up"] = False
    for order_id in range(3, 6):
        attempt(lambda_a, order_id)

    print("3. lambda-b's view refreshes after local_cache_max_age and it stops calling too")
    clock.advance(1)
    attempt(lambda_b, 6)
    print(f"  {fallback_b.call(charge, {'id': 7})}")

    print("4. 30 s later the window ends; the downstream recovered; one probe is elected")
    clock.advance(30)
    healthy["up"] = True
    attempt(lambda_b, 8)  # wins the election: its call is the first probe
    attempt(lambda_a, 9)  # lambda-a is not the probe owner: rejected meanwhile
    attempt(lambda_b, 10)  # second probe success closes the circuit

    print("5. closed again, everywhere")
    clock.advance(1)
    attempt(lambda_a, 11)
    print(f"  shared record: {lambda_a.info()}")

    print("6. the same for async functions")
    asyncio.run(async_part())


async def async_part() -> None:
    async_breaker = CircuitBreaker(
        "search", store, on_transition=show, config=config, clock=clock, environment=Environment("lambda-c")
    )

    @async_breaker
    async def search(query: str) -> str:
        await asyncio.sleep(0)
        raise TimeoutError(f"search for {query!r} timed out")

    for query in ("a", "b", "c", "d"):
        try:
            await search(query)
        except TimeoutError as exc:
            print(f"  lambda-c: failed: {exc}")
        except CircuitBreakerOpenError:
            print(f"  lambda-c: search {query!r} rejected: the circuit is open")


if __name__ == "__main__":
    main()
