"""Registration: entry point, options and ini keys under one prefix, markers, header, --fixtures, import cost."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

import pytest_circuitbreaker

from .conftest import REWRITE_WARNING, Runner

FIXTURES = (
    "circuit_store",
    "circuit_clock",
    "downstream",
    "downstream_factory",
    "circuit_transitions",
    "circuit_fleet",
    "store_faults",
)


def test_entry_point_names_the_plugin_module() -> None:
    (entry,) = [e for e in entry_points(group="pytest11") if e.name == "circuitbreaker"]
    assert entry.value == "pytest_circuitbreaker.plugin"


def test_header_prints_seed_and_store(run: Runner) -> None:
    run.file("def test_nothing(): pass")
    result = run("--circuitbreaker-seed=4242")
    result.stdout.fnmatch_lines(["circuitbreaker: seed=4242 store=memory"])
    result.assert_outcomes(passed=1)


def test_header_seed_is_random_without_option(run: Runner) -> None:
    run.file("def test_nothing(): pass")
    seeds = {re.search(r"circuitbreaker: seed=(\d+)", str(run().stdout)).group(1) for _ in range(3)}  # type: ignore[union-attr]
    assert len(seeds) > 1


def test_ini_keys_are_read_and_options_win(run: Runner) -> None:
    run.ini(
        f'[pytest]\naddopts = -W error -W "{REWRITE_WARNING}" --strict-markers --strict-config -p no:hypothesispytest\n'
        "asyncio_default_fixture_loop_scope = function\n"
        "circuitbreaker_seed = 7\ncircuitbreaker_store = redis\n"
    )
    run.file("def test_nothing(): pass")
    run().stdout.fnmatch_lines(["circuitbreaker: seed=7 store=redis"])
    run("--circuitbreaker-seed=8", "--circuitbreaker-store=dynamodb").stdout.fnmatch_lines(
        ["circuitbreaker: seed=8 store=dynamodb"]
    )


def test_bad_integer_option_names_the_option(run: Runner) -> None:
    run.file("def test_nothing(): pass")
    result = run("--circuitbreaker-seed=abc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--circuitbreaker-seed must be an integer, got 'abc'*"])


def test_help_lists_every_option_under_one_prefix(run: Runner) -> None:
    result = run("--help")
    text = str(result.stdout)
    section = text[text.index("circuit breakers (pytest-circuitbreaker):") :]
    section = section[: section.index("\n\n")]
    options = re.findall(r"^\s+(--[\w-]+)", section, re.MULTILINE)
    assert options == [
        "--circuitbreaker-store",
        "--circuitbreaker-seed",
        "--circuitbreaker-freeze-wall-time",
        "--circuitbreaker-report-calls",
        "--circuitbreaker-redis-url",
        "--circuitbreaker-dynamodb-endpoint",
        "--circuitbreaker-scenarios",
        "--circuitbreaker-adapters",
        "--circuitbreaker-adapters-strict",
        "--circuitbreaker-examples",
        "--circuitbreaker-report-json",
        "--circuitbreaker-report-html",
    ]
    for key in (
        "store",
        "seed",
        "freeze_wall_time",
        "report_calls",
        "redis_url",
        "dynamodb_endpoint",
        "scenarios",
        "adapters",
        "adapters_strict",
        "examples",
        "report_json",
        "report_html",
    ):
        assert f"circuitbreaker_{key} " in text  # the ini keys, in the ini section of --help


def test_fixtures_are_listed_with_one_line_docs(run: Runner) -> None:
    run.file("def test_nothing(): pass")
    text = str(run("--fixtures").stdout)
    for name in FIXTURES:
        match = re.search(rf"^{name} -- .*\n    (\S.*)\n", text, re.MULTILINE)
        assert match, f"{name} is not listed by --fixtures:\n{text}"
        assert len(match.group(1)) < 110
    assert "_circuitbreaker_reset" not in text  # private ones only with -v


def test_markers_are_registered_for_strict_markers(run: Runner) -> None:
    run.file(
        """
        import pytest

        @pytest.mark.circuit_store("memory")
        @pytest.mark.circuit_clock(start=0)
        @pytest.mark.circuit_fleet(size=2)
        def test_marked():
            pass
        """
    )
    run().assert_outcomes(passed=1)
    text = str(run("--markers").stdout)
    for marker in (
        "@pytest.mark.circuit_store(kind)",
        "@pytest.mark.circuit_clock(",
        "@pytest.mark.circuit_fleet(",
    ):
        assert marker in text


def test_plugin_import_is_cheap() -> None:
    code = "import pytest; import pytest_circuitbreaker.plugin"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    names = [line.rsplit("|", 1)[-1].strip() for line in lines]
    added = names[names.index("pytest") + 1 :]  # what the plugin imported beyond pytest's own
    assert added[-1] == "pytest_circuitbreaker.plugin"
    for heavy in ("boto3", "botocore", "moto", "redis", "hypothesis", "time_machine", "breaker", "asyncio"):
        assert not [name for name in added if name == heavy or name.startswith(heavy + ".")], added
    cumulative = int(lines[-1].split("|")[1])
    assert cumulative < 20_000, f"importing the plugin took {cumulative} us: {added}"


def test_types_are_exported_lazily() -> None:
    from pytest_circuitbreaker.clock import CircuitClock

    assert pytest_circuitbreaker.CircuitClock is CircuitClock
    for name in ("Downstream", "DownstreamFactory", "TransitionLog", "Fleet", "StoreFaults", "CircuitStore"):
        assert getattr(pytest_circuitbreaker, name).__name__ == name
    assert set(pytest_circuitbreaker.__all__) <= set(dir(pytest_circuitbreaker))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = pytest_circuitbreaker.Nope
