"""The pytest11 entry point of pytest-circuitbreaker: registration, reset, report, fixtures.

Importing it loads nothing but pytest and this package's option table; each fixture
imports its implementation (and boto3, moto, redis, time-machine) only when a test
asks for it. See docs/plugin.md for the fixtures, markers and options.
"""

from __future__ import annotations

import sys

import pytest

from pytest_circuitbreaker import options

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Generator, Iterator
    from pathlib import Path

    from breaker.events import Event
    from breaker.persistence.base import CircuitStore
    from pytest_circuitbreaker.clock import CircuitClock
    from pytest_circuitbreaker.downstream import Downstream, DownstreamFactory
    from pytest_circuitbreaker.faults import StoreFaults
    from pytest_circuitbreaker.fleet import Fleet
    from pytest_circuitbreaker.journal import Journal, RecordedTransition
    from pytest_circuitbreaker.servers import RedisServer
    from pytest_circuitbreaker.transitions import TransitionLog

_JOURNAL: pytest.StashKey[Journal] = pytest.StashKey()
_SEED: pytest.StashKey[int] = pytest.StashKey()

MARKERS = (
    "circuit_store(kind): the store kind of this test's circuit_store fixture: memory, dynamodb (moto), "
    "redis (a real server) or a kind a plugin adds",
    "circuit_clock(start=None, freeze_wall_time=False): start circuit_clock at this unix time; also "
    "freeze time.time()/datetime.now() for the test's own code (time-machine)",
    "circuit_fleet(size=3): how many environments circuit_fleet simulates",
)


# ---------------------------------------------------------------------- registration


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_circuitbreaker import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    config.stash[_SEED] = options.session_seed(config)
    options.adapters(config)  # an unknown adapter name is a usage error before collection


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    """pytest-xdist: every worker uses the controller's seed."""
    config = getattr(node, "config", None)
    workerinput = getattr(node, "workerinput", None)
    if config is not None and isinstance(workerinput, dict):
        workerinput["circuitbreaker_seed"] = config.stash[_SEED]


def session_seed(config: pytest.Config) -> int:
    """The seed of this session (printed in the header; ``--circuitbreaker-seed`` replays it)."""
    return config.stash[_SEED]


def pytest_report_header(config: pytest.Config) -> str:
    store = options.setting(config, "store") or options.DEFAULT_STORE
    return f"circuitbreaker: seed={config.stash[_SEED]} store={store}"


# ---------------------------------------------------------------------- scenario packs


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Scenario files (``scenarios/*.toml``) become one test item per adapter (docs/scenarios.md)."""
    if file_path.suffix != ".toml":
        return None
    from pytest_circuitbreaker.scenarios import collect_file

    return collect_file(file_path, parent)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The scenario report: a table per scenario and adapter, and the JSON/HTML files if asked."""
    if "pytest_circuitbreaker.scenarios" not in sys.modules:
        return
    from pytest_circuitbreaker.report import summarize

    summarize(terminalreporter, config)


# ---------------------------------------------------------------------- journal and report


def _journal(request: pytest.FixtureRequest) -> Journal:
    """The test's journal, started on first use."""
    item: pytest.Item = request.node
    journal = item.stash.get(_JOURNAL, None)
    if journal is None:
        from pytest_circuitbreaker.journal import Journal

        hook = item.config.hook.pytest_circuitbreaker_transition

        def forward(transition: RecordedTransition, event: Event | None) -> None:
            hook(transition=transition, event=event, item=item)

        journal = Journal(on_transition=forward)
        item.stash[_JOURNAL] = journal
    journal.start()
    return journal


@pytest.fixture(autouse=True)
def _circuitbreaker_reset(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with clean breakers; what they do is recorded for the failure report."""
    if "breaker" in sys.modules:  # nothing imported it yet: no state to reset, no events to record
        from pytest_circuitbreaker.reset import reset_breakers

        reset_breakers(full=False)
        _journal(request)
    yield
    journal = request.node.stash.get(_JOURNAL, None)
    if journal is not None:
        journal.stop()
        del request.node.stash[_JOURNAL]
    if "breaker" in sys.modules:
        from pytest_circuitbreaker.reset import reset_breakers

        reset_breakers(full=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        journal = item.stash.get(_JOURNAL, None)
        if journal is not None and (journal.used_fixture or not journal.empty()):
            last = options.setting(item.config, "report_calls")
            last = options.DEFAULT_REPORT_CALLS if last is None else last
            if isinstance(last, int) and last > 0:
                text = journal.render(last)
                if journal.downstreams:  # their error rates are seeded: say how to replay them
                    text += f"\nreplay with --circuitbreaker-seed={item.config.stash[_SEED]}"
                report.sections.append(("circuit breaker", text))
    return report


# ---------------------------------------------------------------------- fixtures


@pytest.fixture
def circuit_store(request: pytest.FixtureRequest) -> Iterator[CircuitStore]:
    """A fresh store for the test, used by every breaker made with persistence_store=None.

    In memory by default; ``@pytest.mark.circuit_store("dynamodb")`` gives a table on
    moto, ``("redis")`` a real server started once per session and flushed per test
    (also ``--circuitbreaker-store=KIND``).

    Example::

        @pytest.mark.circuit_store("redis")
        def test_shared(circuit_store, downstream):
            ...
            assert circuit_store.read("payments").state == "OPEN"
    """
    from pytest_circuitbreaker.stores import store_for_test

    _journal(request).used_fixture = True
    yield from store_for_test(request)


@pytest.fixture
def circuit_clock(request: pytest.FixtureRequest) -> Iterator[CircuitClock]:
    """The fake clock every breaker in the test reads: advance(), now(), travel_to(), past_open_window().

    ``@pytest.mark.circuit_clock(start=..., freeze_wall_time=True)`` sets its start and
    makes it move ``time.time()``/``datetime.now()`` too (time-machine), for code such as
    Powertools' breaker that reads the system time itself.

    Example::

        def test_window(circuit_clock):
            circuit_clock.advance(30)
            circuit_clock.past_open_window(charge)  # the next call may be the probe
    """
    from pytest_circuitbreaker.clock import CircuitClock

    journal = _journal(request)
    journal.used_fixture = True
    start, freeze = None, None
    marker = request.node.get_closest_marker("circuit_clock")
    if marker is not None:
        unknown = set(marker.kwargs) - {"start", "freeze_wall_time"}
        if marker.args or unknown:
            pytest.fail(
                "@pytest.mark.circuit_clock takes only start=UNIX_SECONDS and freeze_wall_time=BOOL as keywords; "
                f"got args={marker.args!r} kwargs={marker.kwargs!r}.",
                pytrace=False,
            )
        start, freeze = marker.kwargs.get("start"), marker.kwargs.get("freeze_wall_time")
    if freeze is None:
        freeze = options.setting(request.config, "freeze_wall_time")
    clock = CircuitClock(start, journal=journal).install()
    try:
        if freeze:
            clock.freeze_wall_time()
        yield clock
    finally:
        clock.close()


@pytest.fixture
def downstream_factory(request: pytest.FixtureRequest, circuit_clock: CircuitClock) -> DownstreamFactory:
    """Makes several named fake downstreams: ``downstream_factory("payments")``.

    Example::

        def test_two(downstream_factory):
            payments, search = downstream_factory("payments"), downstream_factory("search")
            payments.outage()
    """
    from pytest_circuitbreaker.downstream import DownstreamFactory

    seed = f"{request.config.stash[_SEED]}:{request.node.nodeid}"
    return DownstreamFactory(clock=circuit_clock, seed=seed, journal=_journal(request))


@pytest.fixture
def downstream(downstream_factory: DownstreamFactory) -> Downstream:
    """A scriptable fake dependency that records its calls: fail(n), outage(), error_rate(), latency().

    Call it (or ``await downstream.acall(...)``) where your code calls the real
    dependency, e.g. ``monkeypatch.setattr(client, "charge", downstream)``.

    Example::

        def test_fails_then_works(downstream):
            downstream.fail(2, TimeoutError)
            ...
            assert downstream.calls[-1].args == (10,)
    """
    return downstream_factory("downstream")


@pytest.fixture
def circuit_transitions(request: pytest.FixtureRequest) -> TransitionLog:
    """Every transition of every breaker in the test, with assert_path(), assert_never(), calls_to_open().

    No ``on_transition`` wiring needed for this library's breakers; give Powertools'
    ``on_transition=circuit_transitions.hook``.

    Example::

        def test_path(circuit_transitions):
            ...
            circuit_transitions.assert_path("payments", "CLOSED", "OPEN", "HALF_OPEN", "CLOSED")
    """
    from pytest_circuitbreaker.transitions import TransitionLog

    journal = _journal(request)
    journal.used_fixture = True
    return TransitionLog(journal)


@pytest.fixture
def circuit_fleet(
    request: pytest.FixtureRequest, circuit_clock: CircuitClock, circuit_store: CircuitStore
) -> Iterator[Fleet]:
    """N simulated environments (3; ``@pytest.mark.circuit_fleet(size=N)``) sharing the store and clock.

    ``circuit_fleet.call(i, fn, ...)`` calls a decorated function as environment ``i``;
    ``circuit_fleet.metrics()`` counts downstream calls, rejections, probes, store reads
    and writes.

    Example::

        def test_fleet(circuit_fleet):
            circuit_fleet.call(0, charge, 10)
            assert circuit_fleet.metrics().downstream_calls == 1
    """
    from pytest_circuitbreaker.fleet import Fleet

    size = 3
    marker = request.node.get_closest_marker("circuit_fleet")
    if marker is not None:
        given = marker.kwargs.get("size", marker.args[0] if marker.args else size)
        if len(marker.args) > 1 or set(marker.kwargs) - {"size"}:
            pytest.fail(
                "@pytest.mark.circuit_fleet takes one size, e.g. @pytest.mark.circuit_fleet(size=5); "
                f"got args={marker.args!r} kwargs={marker.kwargs!r}.",
                pytrace=False,
            )
        size = given
    try:
        fleet = Fleet(size)
    except ValueError as exc:
        pytest.fail(f"@pytest.mark.circuit_fleet: {exc}", pytrace=False)
    try:
        yield fleet
    finally:
        fleet.close()


@pytest.fixture
def store_faults(
    request: pytest.FixtureRequest, circuit_clock: CircuitClock, circuit_store: CircuitStore
) -> Iterator[StoreFaults]:
    """Makes the test's store fail reads, fail writes, time out or return a corrupt record.

    ``with store_faults.fail_writes(): ...`` for a block, or ``store_faults.timeout(2)``
    until ``store_faults.restore()``. Breakers on the default store see the faults.

    Example::

        def test_outage(store_faults, downstream):
            with store_faults.fail_reads():
                assert charge(10) == "ok"  # a store error never reaches the caller
    """
    from breaker.persistence.memory import use_default_store
    from pytest_circuitbreaker.faults import StoreFaults

    faults = StoreFaults(circuit_store, clock=circuit_clock)
    use_default_store(faults.store)
    try:
        yield faults
    finally:
        faults.restore()
        use_default_store(circuit_store)


@pytest.fixture(scope="session")
def _circuitbreaker_redis_server() -> Iterator[RedisServer]:
    """One redis-server (or valkey-server) for the session, started on first use."""
    from pytest_circuitbreaker.servers import start_redis_server

    server = start_redis_server()
    try:
        yield server
    finally:
        server.stop()
