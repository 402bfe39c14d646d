"""Stores that hold the shared record of each circuit.

``InMemoryPersistence`` is the embedded default. ``DynamoDBPersistence`` and
``RedisPersistence`` import their client libraries only when first used.
"""

from __future__ import annotations

from breaker.persistence.base import CircuitStore
from breaker.persistence.memory import InMemoryPersistence, default_store
from breaker.persistence.record import CircuitRecord

TYPE_CHECKING = False
if TYPE_CHECKING:
    from breaker.persistence.dynamodb import DynamoDBPersistence
    from breaker.persistence.redis import RedisPersistence

    CircuitBreakerDynamoDBPersistence = DynamoDBPersistence

__all__ = [
    "CircuitBreakerDynamoDBPersistence",
    "CircuitRecord",
    "CircuitStore",
    "DynamoDBPersistence",
    "InMemoryPersistence",
    "RedisPersistence",
    "default_store",
]

_LAZY = {
    "DynamoDBPersistence": ("breaker.persistence.dynamodb", "DynamoDBPersistence"),
    "CircuitBreakerDynamoDBPersistence": ("breaker.persistence.dynamodb", "DynamoDBPersistence"),
    "RedisPersistence": ("breaker.persistence.redis", "RedisPersistence"),
}


def __getattr__(name: str) -> object:
    # Backends load on first access so ``import breaker`` stays standard-library only.
    if name in _LAZY:
        from importlib import import_module

        module_name, attribute = _LAZY[name]
        value = getattr(import_module(module_name), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'breaker.persistence' has no attribute {name!r}")
