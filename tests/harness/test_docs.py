"""The harness modules' docstring examples pass, and docs/harness.md's example runs as written."""

from __future__ import annotations

import doctest
import importlib
import re
import unittest
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "harness.md"
MODULES = ("history", "checkers", "adapters", "stateful", "strategies")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"pytest_circuitbreaker.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0


def test_the_docs_example_runs_as_written() -> None:
    blocks = re.findall(r"<!-- example: (\S+) -->\n```python\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert [path for path, _ in blocks] == ["tests/test_my_breaker.py"]
    namespace: dict[str, object] = {"__name__": "test_my_breaker"}
    exec(compile(blocks[0][1], "tests/test_my_breaker.py", "exec"), namespace)
    cases = [
        value for name, value in namespace.items() if name.startswith("Test") and isinstance(value, type)
    ]
    assert len(cases) == 1
    result = unittest.TestResult()
    case = cases[0]
    assert issubclass(case, unittest.TestCase)
    case().run(result)
    assert result.wasSuccessful(), result.failures + result.errors
