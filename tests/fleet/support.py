"""The test side of the fleet tests: start worker processes, drive them, read the journal.

Workers are forked by multiprocessing's forkserver, which preloads ``tests.fleet.workers``
(breaker, redis-py, boto3 and the DynamoDB model), so a worker is ready in tens of
milliseconds. Each is a real process: its own default Environment, its own store
connections, killable with SIGKILL.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from breaker import CircuitBreaker, CircuitBreakerConfig, Environment
from breaker.persistence import CircuitRecord, CircuitStore
from breaker.states import CircuitState
from tests.stores import moto_server
from tests.stores.moto_server import MotoServer

from .workers import DownstreamError, Journal, StoreSpec, transition_recorder, worker_main

CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(["tests.fleet.workers"])

#: Seconds to wait for any answer of a worker before failing the test.
ANSWER_TIMEOUT = 30.0


class Worker:
    """One worker process and the test's end of its pipe."""

    def __init__(self, index: int, process: Any, conn: Any) -> None:
        self.index = index
        self.process = process
        self.conn = conn
        self.env = ""
        self.pid = 0

    def __repr__(self) -> str:
        return f"<Worker {self.index} env={self.env}>"

    def send(self, **command: Any) -> None:
        self.conn.send(command)

    def receive(self, expected: str, timeout: float = ANSWER_TIMEOUT) -> dict[str, Any]:
        """The next message, which must be of type ``expected``."""
        if not self.conn.poll(timeout):
            raise AssertionError(f"{self!r} sent nothing within {timeout}s (expected {expected!r})")
        message: dict[str, Any] = self.conn.recv()
        if message.get("type") == "crash":
            raise AssertionError(f"{self!r} crashed:\n{message['error']}")
        assert message.get("type") == expected, (self, expected, message)
        return message

    def call(self, **command: Any) -> str:
        """One protected call; its result ("ok", "failed", "rejected" or "leaked ...")."""
        self.start(**command)
        return self.result()

    def start(self, **command: Any) -> None:
        """Start a call (see ``workers.worker_main``) without waiting for its result."""
        self.send(op="call", **command)

    def wait_entered(self) -> None:
        """Wait until a call started with ``hold=True`` is inside the downstream."""
        self.receive("entered")

    def release(self) -> None:
        """Let a held downstream call return."""
        self.send(op="release")

    def result(self) -> str:
        result: str = self.receive("result")["result"]
        return result

    def kill(self) -> None:
        """SIGKILL the process (a Lambda environment reclaimed mid-invocation)."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(10)
        assert self.process.exitcode == -signal.SIGKILL


class Fleet:
    """``size`` worker processes sharing one store, each with its own breaker on circuit ``name``."""

    def __init__(
        self, size: int, spec: StoreSpec, name: str, config: dict[str, Any], journal: Journal
    ) -> None:
        self.barrier = CONTEXT.Barrier(size)
        self.workers: list[Worker] = []
        try:
            for index in range(size):
                ours, theirs = CONTEXT.Pipe()
                process = CONTEXT.Process(
                    target=worker_main,
                    args=(theirs, spec, name, config, journal.path, self.barrier),
                    name=f"fleet-worker-{index}",
                    daemon=True,
                )
                process.start()
                theirs.close()
                self.workers.append(Worker(index, process, ours))
            for worker in self.workers:
                ready = worker.receive("ready")
                worker.env, worker.pid = ready["env"], ready["pid"]
        except BaseException:
            self.close()
            raise
        envs = {worker.env for worker in self.workers}
        assert len(envs) == size, f"workers share an environment id: {envs}"

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Any:
        return iter(self.workers)

    def __getitem__(self, index: int) -> Worker:
        return self.workers[index]

    def by_env(self, env: str) -> Worker:
        return next(worker for worker in self.workers if worker.env == env)

    def close(self) -> None:
        for worker in self.workers:
            if worker.process.is_alive():
                try:
                    worker.send(op="exit")
                except OSError:
                    pass
        for worker in self.workers:
            worker.process.join(5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.conn.close()


class Parent:
    """A breaker in the test process, on an environment of its own ("parent").

    It plays the environment that tripped the circuit before the fleet's scenario; its
    transitions are journaled like the workers'.
    """

    def __init__(self, store: CircuitStore, name: str, config: dict[str, Any], journal: Journal) -> None:
        self.store = store
        self.name = name
        self.config = CircuitBreakerConfig(**config)
        self.breaker = CircuitBreaker(
            name,
            store,
            on_transition=transition_recorder(journal, "parent"),
            config=self.config,
            environment=Environment("parent"),
        )

    def read(self) -> CircuitRecord:
        record = self.store.read(self.name)
        assert record is not None
        return record

    def reset(self) -> CircuitRecord:
        """Write a CLOSED record (so that it has a version a stale view can hold)."""
        self.breaker.reset()
        record = self.read()
        assert record.state is CircuitState.CLOSED
        return record

    def trip(self) -> CircuitRecord:
        """Fail ``failure_threshold`` times: the stored CLOSED→OPEN (returns the record)."""

        def failing() -> None:
            raise DownstreamError("parent")

        for _ in range(self.config.failure_threshold):
            try:
                self.breaker.call(failing)
            except DownstreamError:
                pass
        record = self.read()
        assert record.state is CircuitState.OPEN, record
        return record


def sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        time.sleep(delay)


class RestartableMotoServer(MotoServer):
    """A moto server that a test may pause (SIGSTOP), kill (SIGKILL) and restart on its port."""

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        self.resume()
        self.process.kill()
        self.process.wait(10)

    def restart(self) -> None:
        """Start a new (empty) server on the same port; returns once it answers."""
        if self.process.poll() is None:
            self.kill()
        self.process = subprocess.Popen(
            [sys.executable, moto_server.__file__, "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        self.wait_ready()

    def ensure_running(self) -> None:
        if self.process.poll() is None:
            self.resume()
        else:
            self.restart()


class SlowReplyProxy:
    """A TCP proxy in front of a server: requests pass at once, and replies can be held back.

    ``hold_next_reply(seconds)`` delays the next chunk the server sends back: the server
    has done the work (a write is stored), but the client times out before the reply
    arrives, as when a network or a busy store answers late.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._held: list[float] = []
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def hold_next_reply(self, seconds: float) -> None:
        with self._lock:
            self._held.append(seconds)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, replies: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if replies:
                    with self._lock:
                        delay = self._held.pop(0) if self._held else 0.0
                    time.sleep(delay)
                target.sendall(data)
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for end in self._sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
