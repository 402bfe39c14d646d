"""Smoke test of ``python -m benchmarks``: it runs and reports every contender.

It never asserts on timings or on whether a target is met: those depend on the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

EXPECTED = {
    "healthy_sync": {"bare", "floor", "breaker", "powertools", "pybreaker", "circuitbreaker", "aiobreaker"},
    "healthy_async": {"bare", "floor", "breaker", "powertools", "circuitbreaker", "aiobreaker"},
    "open_reject": {"floor", "breaker", "powertools", "pybreaker", "circuitbreaker", "aiobreaker"},
    "open_fallback": {"floor", "breaker", "powertools", "circuitbreaker"},
    "cycle": {"floor", "breaker", "powertools", "pybreaker", "circuitbreaker", "aiobreaker"},
    "import": {"breaker", "powertools"},
}


def test_quick_run_reports_every_contender(tmp_path: Path) -> None:
    # The peers come with the ``bench`` extra; without them there is nothing to compare.
    for peer in ("aws_lambda_powertools", "pybreaker", "circuitbreaker", "aiobreaker"):
        pytest.importorskip(peer)
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "| breaker (this library) |" in result.stdout
    report = json.loads(out.read_text())

    sections = report["sections"]
    for section, contenders in EXPECTED.items():
        assert contenders <= set(sections[section]["rows"]), section

    for section in ("healthy_sync", "healthy_async", "open_reject", "open_fallback", "cycle"):
        for key, row in sections[section]["rows"].items():
            assert row["ns_per_call"] > 0, (section, key)
            assert row["median_ns_per_call"] > 0, (section, key)
    for section in ("open_reject", "open_fallback"):
        for key, row in sections[section]["rows"].items():
            assert row["downstream_calls_while_open"] == 0, (section, key)

    for key, row in sections["import"]["rows"].items():
        assert row["median_us"] > 0, key
        assert isinstance(row["third_party"], list), key

    assert report["targets"], "targets are reported"
    for target in report["targets"]:
        assert isinstance(target["met"], bool), target
