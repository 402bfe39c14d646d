"""Real server processes for tests: ``redis-server`` (or ``valkey-server``) on a free port.

    server = start_redis_server()        # skips the test when no binary is installed
    server.url                           # 'redis://127.0.0.1:PORT/0'
    server.kill(); server.restart()      # an outage, then the same server back (empty)
    server.pause(); server.resume()      # a hung server (SIGSTOP/SIGCONT): calls time out
    server.command("FLUSHALL")           # a raw command, without redis-py
    server.close()                       # stop it and remove its directory

The binary is ``$CIRCUITBREAKER_REDIS_SERVER`` if set, else ``redis-server`` or
``valkey-server`` on PATH. Without one the test is skipped, with the reason shown,
except on CI (``CI=true``), where it fails: CI must never skip the store tests.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

# Where the server binary comes from is defined once, in the plugin's module.
from pytest_circuitbreaker.servers import BINARIES, ENV_VAR, ServerError
from pytest_circuitbreaker.servers import find_server_binary as find_redis_server

__all__ = ["BINARIES", "ENV_VAR", "ServerError", "find_redis_server"]

HOST = "127.0.0.1"

RespValue = bytes | int | list["RespValue"] | None


def require_redis_server() -> str:
    """The server binary; skips the calling test when there is none (fails on CI)."""
    try:
        binary = find_redis_server()
    except ServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    if binary is None:
        reason = (
            f"no {' or '.join(BINARIES)} on PATH and {ENV_VAR} is unset: install one "
            "(apt-get install redis-server) to run the tests against a real server"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must not skip the Redis tests: {reason}.", pytrace=False)
        pytest.skip(reason)
    return binary


def start_redis_server(*, cluster: bool = False, extra_args: Sequence[str] = ()) -> RedisServer:
    """Start a server on a free port and return it once it answers PING.

    ``cluster=True`` starts it in cluster mode (no slots yet: see ``CLUSTER ADDSLOTS``),
    on a port whose cluster bus port (port + 10000) is free too. ``extra_args`` are more
    ``--option value`` words.
    """
    server = RedisServer(require_redis_server(), cluster=cluster, extra_args=extra_args)
    server.start()
    return server


def free_port(*, cluster: bool = False) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    With ``cluster=True``: at most 55535, and port + 10000 (the cluster bus) free too.
    """
    if not cluster:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((HOST, 0))
            port: int = probe.getsockname()[1]
            return port
    for _ in range(200):
        port = random.randint(20000, 55535)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise ServerError("found no free port pair (port, port + 10000) for a cluster node.")


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


class RedisServer:
    """One ``redis-server`` process with its own port and temporary directory."""

    def __init__(
        self, binary: str, *, port: int | None = None, cluster: bool = False, extra_args: Sequence[str] = ()
    ) -> None:
        self.binary = binary
        self.cluster = cluster
        self.port = port or free_port(cluster=cluster)
        self.host = HOST
        self.extra_args = tuple(extra_args)
        if cluster:
            self.extra_args = (
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000",
                *self.extra_args,
            )  # fmt: skip
        self.directory = Path(tempfile.mkdtemp(prefix="cb-redis-"))
        self.logfile = self.directory / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._paused = False
        atexit.register(self.close)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def running(self) -> bool:
        """True while the process is alive (even when paused)."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the process and wait until it answers PING; a fresh port if this one is taken."""
        for attempt in range(5):
            self.logfile.unlink(missing_ok=True)
            try:
                self._spawn(timeout)
                return
            except ServerError:
                if attempt == 4 or "already in use" not in self.log_tail():
                    raise
                # another process took the port between free_port() and the server's bind
                self.port = free_port(cluster=self.cluster)

    def _spawn(self, timeout: float) -> None:
        if self.running:
            raise ServerError(f"the server on port {self.port} is already running; stop() it first.")
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.directory),
            "--logfile", str(self.logfile),
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self._paused = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise ServerError(f"{self.binary} exited at start:\n{self.log_tail()}")
            with contextlib.suppress(OSError, ServerError):
                if self.command("PING", timeout=0.5) == b"PONG":
                    return
            time.sleep(0.01)
        self.kill()
        raise ServerError(f"{self.binary} did not answer PING within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Stop the process gracefully (SIGTERM), or kill it after 5 s."""
        if self.process is None:
            return
        if self.running:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL the process: an abrupt outage (connections reset, data lost)."""
        if self.process is None:
            return
        if self.running:
            self.process.kill()
        self.process.wait()
        self.process = None
        self._paused = False

    def restart(self) -> None:
        """Start the server again on the same port (empty: nothing is saved)."""
        self.stop()
        self._spawn(10.0)

    def ensure_running(self) -> None:
        """Restart a server that a test killed or left paused."""
        if self._paused:
            self.resume()
        if not self.running:
            self._spawn(10.0)

    def pause(self) -> None:
        """SIGSTOP the process: connections open, nothing answers, so clients time out."""
        if self.process is not None and self.running and not self._paused:
            self.process.send_signal(signal.SIGSTOP)
            self._paused = True

    def resume(self) -> None:
        """SIGCONT a paused process."""
        if self.process is not None and self._paused:
            self.process.send_signal(signal.SIGCONT)
            self._paused = False

    def close(self) -> None:
        """Stop the process and remove its directory."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
        atexit.unregister(self.close)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log file."""
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def command(self, *words: str | bytes | int, timeout: float = 5.0) -> RespValue:
        """Send one command on a new connection and return the decoded reply.

        Raises:
            ServerError: the server answered with an error.
            OSError: it could not be reached in ``timeout`` seconds.
        """
        with socket.create_connection((self.host, self.port), timeout=timeout) as conn:
            conn.sendall(_encode(words))
            return _Reply(conn).read()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "paused" if self._paused else "running" if self.running else "stopped"
        return f"<RedisServer {self.url} {state} ({Path(self.binary).name})>"


def _encode(words: Sequence[str | bytes | int]) -> bytes:
    parts = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word if isinstance(word, bytes) else str(word).encode()
        parts += [f"${len(data)}\r\n".encode(), data, b"\r\n"]
    return b"".join(parts)


class _Reply:
    """A minimal RESP2 reader: simple strings, errors, integers, bulk strings, arrays."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _fill(self) -> None:
        chunk = self.conn.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-reply")
        self.buffer += chunk

    def read(self) -> RespValue:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            raise ServerError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self.buffer) < size + 2:
                self._fill()
            data, self.buffer = self.buffer[:size], self.buffer[size + 2 :]
            return data
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.read() for _ in range(count)]
        raise ServerError(f"unexpected reply line {line!r}")
