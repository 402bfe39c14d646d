"""The scenario file format: a named TOML file in ``scenarios/`` describing one chaos run.

A scenario says how big the fleet is, how the breaker is configured, which store it
shares, what traffic it sees, which faults happen when (the *schedule*, on the fake
clock), which invariants to check and what outcome to expect. This module only reads
and validates files; running them is ``pytest_circuitbreaker.scenarios``' job.

Example file::

    name = "clean outage and recovery"
    description = "The downstream fails for 60 s, then recovers."
    environments = 5
    duration = 150          # seconds of fake time
    store = "memory"        # memory | dynamodb | redis

    [traffic]
    rate = 2.0              # calls per second, per environment
    mode = "sync"           # sync | async

    [config]                # CircuitBreakerConfig fields
    failure_threshold = 5
    recovery_timeout = 30

    [[schedule]]
    at = 10
    fault = "downstream_outage"
    duration = 60

    [expect]
    opens_within_failures = 5
    closes_by = 140
    max_downstream_calls_after_trip = 20

Every mistake raises :class:`ScenarioError` naming the file, the key (or the line, for
TOML syntax) and what is allowed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "CHECKS",
    "FAULTS",
    "STORES",
    "Expectations",
    "Fault",
    "Scenario",
    "ScenarioError",
    "load_scenario",
]

#: Store kinds a scenario may name.
STORES = ("memory", "dynamodb", "redis")

#: The invariant checkers a scenario may select (DESIGN §4); default: all of them.
CHECKS = (
    "legal_paths",
    "open_means_shut",
    "one_probe",
    "write_free_health",
    "no_lost_updates",
    "nothing_lost",
    "liveness",
    "store_faults_stay_inside",
    "trips_on_streak",
)

#: Fault kinds and the extra keys each takes (beyond ``at``, ``fault``, ``duration``).
FAULTS: dict[str, tuple[str, ...]] = {
    "downstream_outage": (),
    "downstream_error_rate": ("rate",),
    "downstream_slow": ("latency",),
    "store_outage": ("kind",),
    "clock_skew": ("environment", "seconds"),
    "probe_owner_crash": (),
    "cold_start": ("environments",),
    "ignored_errors": ("rate",),
}

#: Store outage kinds (``store_outage``'s ``kind``).
STORE_OUTAGE_KINDS = ("fail_reads", "fail_writes", "fail_all", "timeout", "corrupt")

_TOP_KEYS = {
    "name",
    "description",
    "environments",
    "duration",
    "store",
    "seed",
    "tick",
    "jitter",
    "traffic",
    "config",
    "schedule",
    "checks",
    "expect",
}
_TRAFFIC_KEYS = {"rate", "mode"}
_CONFIG_KEYS = {
    "failure_threshold",
    "recovery_timeout",
    "success_threshold",
    "local_cache_max_age",
    "probe_lease",
    "store_backoff",
}
_EXPECT_KEYS = {
    "opens_within_failures",
    "opens",
    "opens_after",
    "closes_by",
    "max_downstream_calls_after_trip",
    "max_probes_per_recovery",
    "min_fallbacks",
    "max_store_writes_per_invocation",
}


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names the file and the key or line.

    Example:
        >>> str(ScenarioError("s.toml", "environments", "must be an int from 1 to 500, got 0"))
        's.toml: environments: must be an int from 1 to 500, got 0'
    """

    def __init__(self, path: str, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")
        self.path = path
        self.key = key
        self.problem = problem


class Fault:
    """One step of the schedule: ``fault`` starts at ``at`` and lasts ``duration`` seconds.

    ``options`` holds the fault's own keys (``rate``, ``latency``, ``kind``...).

    Example:
        >>> Fault("downstream_outage", at=10.0, duration=60.0).end
        70.0
    """

    __slots__ = ("at", "duration", "fault", "options")

    def __init__(
        self,
        fault: str,
        *,
        at: float,
        duration: float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self.fault = fault
        self.at = at
        self.duration = duration
        self.options = dict(options or {})

    @property
    def end(self) -> float | None:
        """When the fault ends (None: it lasts to the end of the run, or is instant)."""
        return None if self.duration is None else self.at + self.duration

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"fault": self.fault, "at": self.at, "duration": self.duration, **self.options}

    def __repr__(self) -> str:
        return f"Fault({self.fault!r}, at={self.at!r}, duration={self.duration!r}, options={self.options!r})"


class Expectations:
    """Expected outcomes; None means "not checked".

    Example:
        >>> Expectations(closes_by=120.0).closes_by
        120.0
    """

    __slots__ = tuple(sorted(_EXPECT_KEYS))

    opens: bool | None
    opens_after: float | None
    opens_within_failures: int | None
    closes_by: float | None
    max_downstream_calls_after_trip: int | None
    max_probes_per_recovery: int | None
    min_fallbacks: int | None
    max_store_writes_per_invocation: float | None

    def __init__(self, **values: Any) -> None:
        for key in self.__slots__:
            setattr(self, key, values.get(key))

    def to_dict(self) -> dict[str, Any]:
        """The expectations that are set."""
        return {key: getattr(self, key) for key in self.__slots__ if getattr(self, key) is not None}


class Scenario:
    """A validated scenario file.

    Example:
        >>> s = Scenario(name="demo", path="demo.toml")
        >>> (s.environments, s.store, s.checks == CHECKS)
        (3, 'memory', True)
    """

    def __init__(
        self,
        *,
        name: str,
        path: str,
        description: str = "",
        environments: int = 3,
        duration: float = 120.0,
        store: str = "memory",
        seed: int | None = None,
        tick: float = 0.5,
        jitter: float = 1.0,
        rate: float = 2.0,
        mode: str = "sync",
        config: Mapping[str, Any] | None = None,
        schedule: list[Fault] | None = None,
        checks: tuple[str, ...] = CHECKS,
        expect: Expectations | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.description = description
        self.environments = environments
        self.duration = duration
        self.store = store
        self.seed = seed
        self.tick = tick
        self.jitter = jitter
        self.rate = rate
        self.mode = mode
        self.config = dict(config or {})
        self.schedule = list(schedule or [])
        self.checks = checks
        self.expect = expect if expect is not None else Expectations()

    @property
    def id(self) -> str:
        """The file's stem: what pytest shows as the test id."""
        return Path(self.path).stem

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for the report's journal)."""
        return {
            "name": self.name,
            "path": self.path,
            "description": self.description,
            "environments": self.environments,
            "duration": self.duration,
            "store": self.store,
            "seed": self.seed,
            "tick": self.tick,
            "jitter": self.jitter,
            "traffic": {"rate": self.rate, "mode": self.mode},
            "config": self.config,
            "schedule": [fault.to_dict() for fault in self.schedule],
            "checks": list(self.checks),
            "expect": self.expect.to_dict(),
        }

    def __repr__(self) -> str:
        return f"Scenario({self.name!r}, path={self.path!r})"


class _Reader:
    """Typed access to one table of a scenario file, raising ScenarioError with the key path."""

    def __init__(self, path: str, table: Mapping[str, Any], prefix: str = "") -> None:
        self.path = path
        self.table = table
        self.prefix = prefix

    def key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, problem: str) -> ScenarioError:
        return ScenarioError(self.path, self.key(key), problem)

    def only(self, allowed: set[str]) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.fail(key, f"unknown key; allowed here: {', '.join(sorted(allowed))}")

    def string(self, key: str, default: str | None = None, *, choices: tuple[str, ...] = ()) -> str:
        value = self.table.get(key, default)
        if value is None:
            raise self.fail(key, "is required (a string)")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def integer(self, key: str, default: int | None, low: int, high: int) -> int | None:
        value = self.table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self.fail(key, f"must be an int from {low} to {high}, got {value!r}")
        return value

    def number(
        self, key: str, default: float | None, low: float, high: float, *, open_low: bool = False
    ) -> float | None:
        value = self.table.get(key, default)
        if value is None:
            return None
        ok = not isinstance(value, bool) and isinstance(value, (int, float))
        if ok:
            ok = (low < value if open_low else low <= value) and value <= high
        if not ok:
            bracket = "(" if open_low else "["
            raise self.fail(key, f"must be a number in {bracket}{low}, {high}], got {value!r}")
        return float(value)

    def sub(self, key: str) -> _Reader:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table ([{self.key(key)}]), got {value!r}")
        return _Reader(self.path, value, prefix=f"{self.key(key)}.")


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file.

    Raises:
        ScenarioError: the file cannot be read, is not TOML (the message gives the line),
            or a key is unknown, missing or out of range (the message names the key).

    Example:
        >>> import tempfile, os
        >>> with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        ...     _ = f.write('name = "tiny"\\nenvironments = 2\\n')
        >>> load_scenario(f.name).environments
        2
        >>> os.unlink(f.name)
    """
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(shown, "(file)", f"cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(shown, "(TOML syntax)", str(exc)) from None
    return parse_scenario(data, shown)


def parse_scenario(data: Mapping[str, Any], path: str) -> Scenario:
    """Validate an already parsed scenario table (see :func:`load_scenario`)."""
    top = _Reader(path, data)
    top.only(_TOP_KEYS)
    duration = top.number("duration", 120.0, 0.0, 86_400.0, open_low=True)
    assert duration is not None
    environments = top.integer("environments", 3, 1, 500)
    assert environments is not None
    tick = top.number("tick", 0.5, 0.0, 60.0, open_low=True)
    assert tick is not None
    jitter = top.number("jitter", 1.0, 0.0, duration)
    assert jitter is not None

    traffic = top.sub("traffic")
    traffic.only(_TRAFFIC_KEYS)
    rate = traffic.number("rate", 2.0, 0.0, 1000.0, open_low=True)
    assert rate is not None
    mode = traffic.string("mode", "sync", choices=("sync", "async"))

    config_reader = top.sub("config")
    config_reader.only(_CONFIG_KEYS)
    config = dict(config_reader.table)
    try:
        from breaker.config import CircuitBreakerConfig

        CircuitBreakerConfig(**config)
    except Exception as exc:  # the config's own message names the field and the value
        raise ScenarioError(path, "config", str(exc)) from None

    schedule = _parse_schedule(path, data.get("schedule", []), duration, environments)

    checks_value = data.get("checks", list(CHECKS))
    if not isinstance(checks_value, list) or not all(isinstance(c, str) for c in checks_value):
        raise top.fail("checks", f"must be a list of checker names, got {checks_value!r}")
    for check in checks_value:
        if check not in CHECKS:
            raise top.fail("checks", f"unknown checker {check!r}; allowed: {', '.join(CHECKS)}")

    expect_reader = top.sub("expect")
    expect_reader.only(_EXPECT_KEYS)
    opens = expect_reader.table.get("opens")
    if opens is not None and not isinstance(opens, bool):
        raise expect_reader.fail("opens", f"must be true or false, got {opens!r}")
    expect = Expectations(
        opens=opens,
        opens_within_failures=expect_reader.integer("opens_within_failures", None, 1, 1_000_000),
        opens_after=expect_reader.number("opens_after", None, 0.0, duration),
        closes_by=expect_reader.number("closes_by", None, 0.0, duration),
        max_downstream_calls_after_trip=expect_reader.integer(
            "max_downstream_calls_after_trip", None, 0, 10_000_000
        ),
        max_probes_per_recovery=expect_reader.integer("max_probes_per_recovery", None, 1, 1_000_000),
        min_fallbacks=expect_reader.integer("min_fallbacks", None, 0, 10_000_000),
        max_store_writes_per_invocation=expect_reader.number(
            "max_store_writes_per_invocation", None, 0.0, 1000.0
        ),
    )
    return Scenario(
        name=top.string("name"),
        path=path,
        description=str(data.get("description", "")),
        environments=environments,
        duration=duration,
        store=top.string("store", "memory", choices=STORES),
        seed=top.integer("seed", None, 0, 2**63 - 1),
        tick=tick,
        jitter=jitter,
        rate=rate,
        mode=mode,
        config=config,
        schedule=schedule,
        checks=tuple(checks_value),
        expect=expect,
    )


def _parse_schedule(path: str, steps: object, duration: float, environments: int) -> list[Fault]:
    if not isinstance(steps, list):
        raise ScenarioError(path, "schedule", f"must be an array of tables ([[schedule]]), got {steps!r}")
    faults = []
    for index, step in enumerate(steps):
        prefix = f"schedule[{index}]."
        if not isinstance(step, dict):
            raise ScenarioError(path, f"schedule[{index}]", f"must be a table, got {step!r}")
        reader = _Reader(path, step, prefix)
        kind = reader.string("fault", choices=tuple(FAULTS))
        reader.only({"fault", "at", "duration", *FAULTS[kind]})
        at = reader.number("at", None, 0.0, duration)
        if at is None:
            raise reader.fail("at", f"is required: seconds from the start, in [0, {duration}]")
        length = reader.number("duration", None, 0.0, duration, open_low=True)
        options: dict[str, Any] = {}
        if kind in ("downstream_error_rate", "ignored_errors"):
            options["rate"] = reader.number("rate", None, 0.0, 1.0, open_low=True)
            if options["rate"] is None:
                raise reader.fail("rate", "is required: the share of calls that fail, in (0, 1]")
        elif kind == "downstream_slow":
            options["latency"] = reader.number("latency", None, 0.0, 3600.0, open_low=True)
            if options["latency"] is None:
                raise reader.fail("latency", "is required: seconds per call on the fake clock")
        elif kind == "store_outage":
            options["kind"] = reader.string("kind", "fail_all", choices=STORE_OUTAGE_KINDS)
        elif kind == "clock_skew":
            options["environment"] = reader.integer("environment", None, 0, environments - 1)
            if options["environment"] is None:
                raise reader.fail(
                    "environment", f"is required: an environment index, 0 to {environments - 1}"
                )
            options["seconds"] = reader.number("seconds", None, -3600.0, 3600.0)
            if options["seconds"] is None:
                raise reader.fail("seconds", "is required: the skew in seconds, -3600 to 3600")
        elif kind == "cold_start":
            options["environments"] = reader.integer("environments", environments, 1, environments)
        faults.append(Fault(kind, at=at, duration=length, options=options))
    return faults
