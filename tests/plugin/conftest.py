"""Tests of the pytest plugin, run the way users run it: pytester sessions with -W error."""

from __future__ import annotations

import contextlib

import pytest

# Imported here so that pytester's in-process runs (which drop the modules each run
# imported) find them loaded: faster, one breaker module for every run, and moto's hook
# into botocore stays the one botocore sees (a second import of moto in one process
# does not intercept a re-imported botocore).
import breaker  # noqa: F401
import pytest_circuitbreaker.clock
import pytest_circuitbreaker.downstream
import pytest_circuitbreaker.faults
import pytest_circuitbreaker.fleet
import pytest_circuitbreaker.reset
import pytest_circuitbreaker.stores
import pytest_circuitbreaker.transitions  # noqa: F401

with contextlib.suppress(ImportError):
    import boto3  # noqa: F401
    import moto
    import moto.dynamodb.models  # noqa: F401
with contextlib.suppress(ImportError):
    import redis  # noqa: F401


def pytest_configure(config: pytest.Config) -> None:
    # `pytest_plugins = ["pytester"]` is refused in a conftest below the rootdir when the
    # whole suite runs (`pytest tests`), so pytester is registered here instead.
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")


# -W error, as users run it. In-process runs (fast) import the plugin before the inner
# session marks it for assertion rewriting, so that one warning is expected there.
REWRITE_WARNING = "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning"
INI = f"""\
[pytest]
addopts = -W error -W "{REWRITE_WARNING}" --strict-markers --strict-config -p no:cacheprovider
    -p no:hypothesispytest
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
"""


class Runner:
    """Writes a user's test files and runs pytest on them in-process (a subprocess when asked)."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.ini(INI)

    def ini(self, text: str) -> None:
        self.pytester.makefile(".ini", pytest=text)

    def file(self, source: str, name: str = "test_user") -> None:
        self.pytester.makepyfile(**{name: source})

    def __call__(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest_inprocess(*args)

    def subprocess(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest_subprocess(*args)


@pytest.fixture
def run(pytester: pytest.Pytester) -> Runner:
    return Runner(pytester)
