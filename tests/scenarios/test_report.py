"""The report: terminal table, JSON journal, HTML timeline (rendered in headless Chromium and looked at)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

from pytest_circuitbreaker.report import html_page, journal, side_by_side, table, timeline_svg
from pytest_circuitbreaker.scenario_format import load_scenario
from pytest_circuitbreaker.scenarios import ScenarioResult, run_scenario

from .conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def results() -> list[ScenarioResult]:
    out = []
    for name in ("clean_outage", "store_outage_trip"):
        scenario = load_scenario(ROOT / "scenarios" / f"{name}.toml")
        out += [run_scenario(scenario, adapter, seed=11) for adapter in ("breaker", "powertools")]
    return out


def test_table_has_a_row_per_scenario_and_adapter(results: list[ScenarioResult]) -> None:
    text = table(results)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["scenario", "adapter", "verdict"]
    assert any(line.startswith("clean_outage") and " breaker " in line and " pass " in line for line in lines)
    assert any(
        line.startswith("store_outage_trip") and "powertools" in line and "fail" in line for line in lines
    )
    for column in ("calls after trip", "probes/recovery", "store r/w per call", "fallbacks", "transitions"):
        assert column in lines[0]


def test_side_by_side_markdown(results: list[ScenarioResult]) -> None:
    text = side_by_side(results)
    assert text.splitlines()[0] == "| scenario | breaker | powertools |"
    assert "| clean_outage | pass" in text


def test_json_journal_has_verdicts_anomalies_metrics_histories(results: list[ScenarioResult]) -> None:
    data = json.loads(json.dumps(journal(results), default=str))
    by = {(r["scenario"]["path"].rsplit("/", 1)[-1], r["adapter"]): r for r in data["results"]}
    ours = by[("clean_outage.toml", "breaker")]
    assert ours["status"] == "pass"
    assert ours["verdict"]["valid"] is True
    assert ours["metrics"]["probes_per_recovery"] >= 1
    assert ours["history"]["ops"]
    assert ours["history"]["meta"]["adapter"] == "breaker"
    theirs = by[("store_outage_trip.toml", "powertools")]
    assert theirs["status"] == "fail"
    assert theirs["verdict"]["anomalies"][0]["ops"], "each anomaly lists the ops that show it"
    assert theirs["anomaly_types"]


def test_journal_and_page_written_by_the_plugin(project: pytest.Pytester) -> None:
    shutil.copy(ROOT / "scenarios" / "clean_outage.toml", project.path / "scenarios")
    result = project.runpytest_inprocess(
        "scenarios", "--circuitbreaker-examples=0", "--circuitbreaker-report-json=out/r.json",
        "--circuitbreaker-report-html=out/r.html",
    )  # fmt: skip
    result.stdout.fnmatch_lines(["circuitbreaker: wrote */out/r.json", "circuitbreaker: wrote */out/r.html"])
    assert json.loads((project.path / "out" / "r.json").read_text())["results"][0]["status"] == "pass"
    assert "<svg" in (project.path / "out" / "r.html").read_text()


def test_html_is_self_contained_with_a_timeline_per_result(results: list[ScenarioResult]) -> None:
    page = html_page(results)
    assert page.count("<svg xmlns") == len(results)
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "src=" not in page
    assert "<link" not in page
    svg = timeline_svg(results[0])
    assert 'class="shared state-OPEN"' in svg
    assert 'class="view state-HALF_OPEN"' in svg
    assert 'class="fault"' in svg
    failing = next(r for r in results if r.status == "fail")
    assert 'class="anomaly"' in timeline_svg(failing)


# ---------------------------------------------------------------------- looking at the page


def _png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA PNG (what Chromium writes) into rows of raw pixels."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks += body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert (depth, color) in ((8, 2), (8, 6)), f"unexpected PNG format depth={depth} color={color}"
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(chunks)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    i = 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = previous[x], previous[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line if channels == 3 else bytes(v for k, v in enumerate(line) if k % 4 != 3)))
        previous = line
    return width, height, rows


def _screenshot(page: Path, png: Path, size: str = "1400,1600") -> None:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={size}", page.as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip


def _dump_dom(page: Path) -> str:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            check=True, capture_output=True, timeout=120, text=True,
        )  # fmt: skip
    return done.stdout


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="headless Chromium is not installed (apt-get install chromium); CI installs it and runs this test",
)


@needs_chromium
def test_html_renders_in_headless_chromium(results: list[ScenarioResult], tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(html_page(results[:2]))
    dom = _dump_dom(page)
    assert dom.count("<svg") >= 3
    assert 'class="shared state-OPEN"' in dom
    assert "<rect" in dom
    png = tmp_path / "shot.png"
    _screenshot(page, png)
    width, height, rows = _png_pixels(png)
    assert (width, height) == (1400, 1600)
    # Look at the page: the states' colours are painted (green CLOSED, red OPEN bands).
    pixels = [row[x : x + 3] for row in rows[::4] for x in range(0, len(row), 12)]
    green = sum(1 for p in pixels if p[1] > 150 and p[0] < 120 and p[2] < 120)
    red = sum(1 for p in pixels if p[0] > 190 and p[1] < 110 and p[2] < 110)
    non_white = sum(1 for p in pixels if min(p) < 230)
    assert non_white > len(pixels) // 20, "the page is (nearly) blank"
    assert green > 200, f"CLOSED bands not painted: green={green}"
    assert red > 100, f"OPEN bands not painted: red={red}"
