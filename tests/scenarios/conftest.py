"""Tests of the scenario packs: the format's errors, the runner's faults, collection, the report."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import pytest_circuitbreaker.report
import pytest_circuitbreaker.scenarios  # noqa: F401  (loaded once for pytester's in-process runs)

ROOT = Path(__file__).resolve().parents[2]
PACKS = sorted((ROOT / "scenarios").glob("*.toml"))

INI = """\
[pytest]
addopts = -W error --strict-markers --strict-config -p no:cacheprovider -p no:hypothesispytest
    -W "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


@pytest.fixture(autouse=True)
def _quiet_breaker_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Store faults are logged at WARNING on purpose; scenario runs make hundreds.
    caplog.set_level(logging.ERROR, logger="breaker")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project with the plugin's ini and an empty scenarios/ directory."""
    pytester.makefile(".ini", pytest=INI)
    (pytester.path / "scenarios").mkdir()
    return pytester
