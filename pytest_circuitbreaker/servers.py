"""A real ``redis-server`` (or ``valkey-server``) process for ``circuit_store("redis")``.

Started once per test session on a free port of 127.0.0.1, flushed before each test
that uses it, stopped at the end of the session. The binary is
``$CIRCUITBREAKER_REDIS_SERVER`` when set, else ``redis-server`` or ``valkey-server``
on PATH. Without one the test is skipped with the reason shown, except when ``CI=true``,
where it fails: CI must not skip the store tests silently.

Example:
    >>> server = RedisServer("/usr/bin/redis-server")  # started with .start(), stopped with .stop()
    >>> server.url.startswith("redis://127.0.0.1:")
    True
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "ENV_VAR",
    "RedisServer",
    "ServerError",
    "find_server_binary",
    "free_port",
    "missing",
    "start_redis_server",
]

ENV_VAR = "CIRCUITBREAKER_REDIS_SERVER"
BINARIES = ("redis-server", "valkey-server")
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """The server did not start, or answered a command with an error."""


def find_server_binary() -> str | None:
    """``$CIRCUITBREAKER_REDIS_SERVER``, else ``redis-server`` / ``valkey-server`` on PATH, else None.

    Raises ServerError when the variable names no executable.

    Example:
        >>> find_server_binary() is None or "server" in find_server_binary()
        True
    """
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise ServerError(
                f"{ENV_VAR}={configured!r} is not an executable: point it at a redis-server or "
                "valkey-server binary, or unset it to search PATH."
            )
        return found
    for name in BINARIES:
        found = shutil.which(name)
        if found is not None:
            return found
    return None


def missing(reason: str) -> None:
    """Skip the current test for ``reason``, or fail it when ``CI=true`` (CI must not skip).

    Example (in a fixture)::

        if shutil.which("redis-server") is None:
            missing("no redis-server binary")
    """
    import pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must not skip the store tests: {reason}.", pytrace=False)
    pytest.skip(reason)


def start_redis_server() -> RedisServer:
    """Start a server and return it once it answers PING (skips or fails the test without a binary).

    Example (the session fixture behind ``circuit_store("redis")``)::

        server = start_redis_server()
        server.url  # 'redis://127.0.0.1:PORT/0'
        server.stop()
    """
    try:
        binary = find_server_binary()
    except ServerError as exc:
        import pytest

        pytest.fail(str(exc), pytrace=False)
    if binary is None:
        missing(
            f"circuit_store('redis') needs a Redis server: no {' or '.join(BINARIES)} on PATH and {ENV_VAR} "
            "is unset (install one, e.g. `apt-get install redis-server`, or pass --circuitbreaker-redis-url)"
        )
        raise AssertionError("unreachable")  # pragma: no cover - missing() raised
    server = RedisServer(binary)
    server.start()
    return server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Example:
        >>> 1024 <= free_port() < 65536
        True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One server process with its own port and temporary directory.

    Example (needs a redis-server binary)::

        server = RedisServer("/usr/bin/redis-server")
        server.start(); server.url         # 'redis://127.0.0.1:PORT/0'
        server.command("FLUSHALL"); server.stop()
    """

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.directory: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self.port}/0"

    def __repr__(self) -> str:
        return f"RedisServer({self.url}, binary={self.binary!r})"

    def start(self, timeout: float = 10.0) -> None:
        """Start it; retried on a fresh port if another process took this one meanwhile."""
        from pathlib import Path

        self.directory = Path(tempfile.mkdtemp(prefix="circuitbreaker-redis-"))
        for attempt in range(5):
            try:
                self._spawn(timeout)
                return
            except ServerError:
                if attempt == 4 or "already in use" not in self.log_tail():
                    self.stop()
                    raise
                self.port = free_port()

    def _spawn(self, timeout: float) -> None:
        assert self.directory is not None
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "server.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(f"{self.binary} exited at start:\n{self.log_tail()}")
            try:
                if self.command("PING", timeout=0.5) == b"PONG":
                    return
            except (OSError, ServerError):
                pass
            time.sleep(0.01)
        self._kill()
        raise ServerError(f"{self.binary} did not answer PING within {timeout}s:\n{self.log_tail()}")

    def _kill(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 5 s) and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        self._kill()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log."""
        if self.directory is None:
            return "(no log)"
        try:
            text = (self.directory / "server.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def command(self, *words: str, timeout: float = 5.0) -> bytes | int | None:
        """Send one command (no redis-py needed) and return a simple reply.

        Handles the replies of PING, FLUSHALL and DBSIZE: simple strings, integers and
        errors (raised as ServerError).
        """
        payload = f"*{len(words)}\r\n".encode() + b"".join(
            f"${len(word.encode())}\r\n".encode() + word.encode() + b"\r\n" for word in words
        )
        with socket.create_connection((HOST, self.port), timeout=timeout) as conn:
            conn.sendall(payload)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = conn.recv(4096)
                if not chunk:
                    raise ServerError("the server closed the connection mid-reply")
                reply += chunk
        kind, rest = reply[:1], reply[1:-2]
        if kind == b"+":
            return rest
        if kind == b":":
            return int(rest)
        if kind == b"-":
            raise ServerError(rest.decode(errors="replace"))
        return None
