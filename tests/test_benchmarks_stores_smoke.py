"""Smoke test of ``python -m benchmarks.stores --quick``: it runs and reports both contenders.

No timing is asserted (that depends on the machine); only that every section ran, for
both libraries, and that the counts are consistent with the schedule they ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_run_reports_both_contenders(tmp_path: Path) -> None:
    out = tmp_path / "stores.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.stores", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "| healthy | breaker (this library) |" in result.stdout
    assert "| hung | Powertools 3.37.0 |" in result.stdout
    sections = json.loads(out.read_text())["sections"]
    assert set(sections) == {"healthy", "cycle", "outage_refused", "outage_hung"}
    for key in ("healthy", "cycle"):
        rows = sections[key]["rows"]
        assert set(rows) == {"breaker", "powertools"}
        for row in rows.values():
            assert row["invocations"] == sum(row["outcomes"].values())
            assert row["reads"] >= 1
            assert row["reads_per_invocation"] == row["reads"] / row["invocations"]
    for row in sections["healthy"]["rows"].values():
        assert row["writes"] == 0
        assert set(row["outcomes"]) == {"ok"}
    for row in sections["cycle"]["rows"].values():
        assert row["transitions"] == ["CLOSED->OPEN", "OPEN->HALF_OPEN", "HALF_OPEN->CLOSED"]
    for key in ("outage_refused", "outage_hung"):
        rows = sections[key]["rows"]
        assert set(rows) == {"breaker", "powertools"}
        for row in rows.values():
            assert row["calls"] > 0
            assert row["mean_ms"] > 0
            assert set(row["outcomes"]) == {"ok"}, "a store outage must not fail the calls"
        assert rows["breaker"]["store_calls_after_detection"] == 0
