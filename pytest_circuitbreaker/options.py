"""Command-line options and ini keys: one prefix, one table, one resolution rule.

Every setting has a ``--circuitbreaker-NAME`` option and a ``circuitbreaker_NAME`` ini
key; the option wins over the ini key, which wins over the default.

Example:
    >>> [option for option, *_ in SETTINGS.values()][:2]
    ['--circuitbreaker-store', '--circuitbreaker-seed']
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    import pytest

#: name -> (option, ini key, help, kind). ``kind`` is "str", "int" or "bool".
SETTINGS: dict[str, tuple[str, str, str, str]] = {
    "store": (
        "--circuitbreaker-store",
        "circuitbreaker_store",
        "store kind circuit_store gives when a test has no circuit_store marker: memory (default), "
        "dynamodb (moto), redis (a real server), or a kind a plugin adds",
        "str",
    ),
    "seed": (
        "--circuitbreaker-seed",
        "circuitbreaker_seed",
        "seed of the fake downstreams' error rates (default: random, printed in the header to replay a run)",
        "int",
    ),
    "freeze_wall_time": (
        "--circuitbreaker-freeze-wall-time",
        "circuitbreaker_freeze_wall_time",
        "make circuit_clock freeze time.time()/datetime.now() for user code too (needs time-machine; "
        "for Powertools' breaker)",
        "bool",
    ),
    "report_calls": (
        "--circuitbreaker-report-calls",
        "circuitbreaker_report_calls",
        "how many of the last calls the 'circuit breaker' section of a failed test shows (default 20; "
        "0 hides the section)",
        "int",
    ),
    "redis_url": (
        "--circuitbreaker-redis-url",
        "circuitbreaker_redis_url",
        "use this Redis/Valkey server for circuit_store('redis') instead of starting one (keys get a "
        "per-test prefix and are deleted after the test; nothing is flushed)",
        "str",
    ),
    "dynamodb_endpoint": (
        "--circuitbreaker-dynamodb-endpoint",
        "circuitbreaker_dynamodb_endpoint",
        "use this DynamoDB endpoint (DynamoDB Local, a moto server) for circuit_store('dynamodb') "
        "instead of moto in-process (a table per test, deleted after it)",
        "str",
    ),
    "scenarios": (
        "--circuitbreaker-scenarios",
        "circuitbreaker_scenarios",
        "directory whose *.toml scenario files are collected as tests (default: the rootdir's scenarios/)",
        "str",
    ),
    "adapters": (
        "--circuitbreaker-adapters",
        "circuitbreaker_adapters",
        "breakers each scenario runs against, comma-separated: breaker (default), powertools, pybreaker",
        "str",
    ),
    "adapters_strict": (
        "--circuitbreaker-adapters-strict",
        "circuitbreaker_adapters_strict",
        "fail (not xfail) scenario items of adapters other than breaker when they break an invariant",
        "bool",
    ),
    "examples": (
        "--circuitbreaker-examples",
        "circuitbreaker_examples",
        "interleavings/jitters hypothesis tries per scenario and adapter beyond the schedule as written "
        "(default 5)",
        "int",
    ),
    "report_json": (
        "--circuitbreaker-report-json",
        "circuitbreaker_report_json",
        "write the scenario run's journal (verdicts, anomalies, metrics, histories) to this JSON file",
        "str",
    ),
    "report_html": (
        "--circuitbreaker-report-html",
        "circuitbreaker_report_html",
        "write a self-contained HTML page with a timeline per scenario and adapter to this file",
        "str",
    ),
}

DEFAULT_STORE = "memory"
#: The breakers scenario packs can run against (``--circuitbreaker-adapters``).
ADAPTER_NAMES = ("breaker", "powertools", "pybreaker")
DEFAULT_REPORT_CALLS = 20


def add_options(parser: pytest.Parser) -> None:
    """Register every setting as an option (in one help group) and an ini key.

    Example (the plugin's ``pytest_addoption``)::

        def pytest_addoption(parser):
            add_options(parser)
    """
    group = parser.getgroup("circuitbreaker", "circuit breakers (pytest-circuitbreaker)")
    for name, (option, ini, help_text, kind) in SETTINGS.items():
        if kind == "bool":
            group.addoption(
                option, action="store_true", default=None, dest=f"circuitbreaker_{name}", help=help_text
            )
            parser.addini(ini, help_text, type="bool", default=False)
        else:
            metavar = {
                "store": "KIND",
                "seed": "N",
                "report_calls": "N",
                "redis_url": "URL",
                "scenarios": "DIR",
                "adapters": "NAMES",
                "examples": "N",
                "report_json": "PATH",
                "report_html": "PATH",
            }.get(name, "URL")
            group.addoption(
                option,
                action="store",
                default=None,
                dest=f"circuitbreaker_{name}",
                metavar=metavar,
                help=help_text,
            )
            parser.addini(ini, help_text, type="string", default="")


def setting(config: pytest.Config, name: str) -> object:
    """The value of setting ``name``: the option if given, else the ini key, else None.

    Raises pytest.UsageError, naming the option or key, for an int that is not one.

    Example::

        setting(config, "report_calls")  # 20 for --circuitbreaker-report-calls=20, None if unset
    """
    option, ini, _, kind = SETTINGS[name]
    value = config.getoption(f"circuitbreaker_{name}")
    source = option
    if value is None:
        value = config.getini(ini)
        source = f"ini key {ini}"
        if kind == "bool":
            return bool(value)
        if value == "":
            return None
    if kind == "int":
        try:
            return int(str(value).strip())
        except ValueError:
            import pytest

            raise pytest.UsageError(f"{source} must be an integer, got {value!r}.") from None
    return value


def session_seed(config: pytest.Config) -> int:
    """The seed of this run: the option or ini key, the controller's (under xdist), or a new random one.

    Example::

        session_seed(config)  # 4242 with --circuitbreaker-seed=4242
    """
    seed = setting(config, "seed")
    if isinstance(seed, int):
        return seed
    worker = getattr(config, "workerinput", None)
    if isinstance(worker, dict) and "circuitbreaker_seed" in worker:
        return int(worker["circuitbreaker_seed"])
    return int.from_bytes(os.urandom(4), "big")


def adapters(config: pytest.Config) -> list[str]:
    """The adapters of ``--circuitbreaker-adapters`` (comma-separated; default ``breaker``).

    Raises pytest.UsageError naming the option and the allowed names for an unknown one.

    Example::

        adapters(config)  # ['breaker', 'powertools'] with --circuitbreaker-adapters=breaker,powertools
    """
    value = setting(config, "adapters") or ADAPTER_NAMES[0]
    names = [name.strip() for name in str(value).split(",") if name.strip()]
    unknown = [name for name in names if name not in ADAPTER_NAMES]
    if unknown or not names:
        import pytest

        raise pytest.UsageError(
            f"--circuitbreaker-adapters: unknown adapter(s) {', '.join(unknown) or '(none given)'}; "
            f"allowed: {', '.join(ADAPTER_NAMES)} (comma-separated, e.g. breaker,powertools)."
        )
    return names
