"""Helpers for testing the DynamoDB store against moto, in-process and over HTTP.

Run as a script (``python tests/stores/moto_server.py -p PORT``) it is moto's own
server (``moto.server.main``) with one change: item writes are serialized. Real
DynamoDB evaluates a condition expression and applies the write atomically per item;
moto 5 checks the condition and stores the item in two steps without a lock, so under
threads two conditional writes can both pass (seen here: about one race in 30 lets two
of eight writers win). The contract's racing-writers test checks the store, not moto,
so both modes install :func:`serialize_item_writes`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

REGION = "us-east-1"

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def serialize_item_writes(set_attribute: Callable[[object, str, Any], None] = setattr) -> None:
    """Make moto's DynamoDB writes atomic, as DynamoDB's are (idempotent).

    Pass ``monkeypatch.setattr`` as ``set_attribute`` to undo it after a test.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for method_name in _WRITES:
        original = getattr(DynamoDBBackend, method_name)
        if getattr(original, "_serialized", False):
            continue

        def serialized(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        serialized._serialized = True  # type: ignore[attr-defined]
        set_attribute(DynamoDBBackend, method_name, serialized)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """A moto server in a child process (this file run as a script) on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,  # werkzeug logs a line per request; a pipe could fill up and block
        )

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Return once the server answers HTTP; raise with its log if it died or hung."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"moto server exited with {self.process.returncode}:\n{self.log()[-4000:]}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # it answered
            except OSError:
                time.sleep(0.05)
        log = self.log()[-4000:]
        self.stop()
        raise RuntimeError(f"moto server did not answer within {timeout}s:\n{log}")

    def log(self) -> str:
        """Everything the server wrote to stderr so far (werkzeug logs one line per request)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def requests_served(self) -> int:
        return self.log().count('"POST / HTTP/1.1"')

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


def make_client(endpoint_url: str | None = None) -> Any:
    """A low-level DynamoDB client with dummy credentials (moto accepts any)."""
    import boto3

    return boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def create_table(
    client: Any, *, key_attr: str = "id", sort_key_attr: str | None = None, ttl_attr: str = "expiration"
) -> str:
    """Create a fresh table (unique name) as docs/dynamodb.md says, TTL enabled; return its name."""
    name = f"circuits-{uuid.uuid4().hex[:12]}"
    definitions = [{"AttributeName": key_attr, "AttributeType": "S"}]
    schema = [{"AttributeName": key_attr, "KeyType": "HASH"}]
    if sort_key_attr is not None:
        definitions.append({"AttributeName": sort_key_attr, "AttributeType": "S"})
        schema.append({"AttributeName": sort_key_attr, "KeyType": "RANGE"})
    client.create_table(
        TableName=name,
        AttributeDefinitions=definitions,
        KeySchema=schema,
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attr}
    )
    return name


if __name__ == "__main__":
    serialize_item_writes()
    from moto.server import main

    main(sys.argv[1:])
