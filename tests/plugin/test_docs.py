"""The documentation's examples run as written, and the docstring examples of the package pass."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

from .conftest import Runner

DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugin.md"
MODULES = (
    "clock",
    "downstream",
    "faults",
    "fleet",
    "journal",
    "options",
    "powertools",
    "reset",
    "servers",
    "stores",
    "transitions",
)


def examples() -> dict[str, str]:
    """The code blocks of docs/plugin.md announced by ``<!-- example: PATH -->``."""
    text = DOCS.read_text()
    found = re.findall(r"<!-- example: (\S+) -->\n```python\n(.*?)```", text, re.DOTALL)
    return dict(found)


def test_the_readme_example_runs_and_is_under_20_lines(run: Runner) -> None:
    files = examples()
    assert set(files) == {"myapp/payments.py", "tests/test_payments.py"}
    test_lines = files["tests/test_payments.py"].strip().splitlines()
    assert len(test_lines) < 20, len(test_lines)
    pytester = run.pytester
    (pytester.path / "myapp").mkdir()
    (pytester.path / "tests").mkdir()
    (pytester.path / "myapp" / "__init__.py").write_text("")
    (pytester.path / "myapp" / "clients.py").write_text(
        "class PaymentsApi:\n"
        "    def charge(self, amount):\n"
        "        raise RuntimeError('the real payments service is not reachable from tests')\n\n"
        "payments_api = PaymentsApi()\n"
    )
    for path, source in files.items():
        (pytester.path / path).write_text(source)
    pytester.syspathinsert()
    run("tests").assert_outcomes(passed=1)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"pytest_circuitbreaker.{name}")
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0
    assert tried > 0
