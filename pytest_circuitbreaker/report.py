"""The scenario run's report: a terminal table, a JSON journal and a self-contained HTML timeline.

* :func:`table` renders one line per scenario and adapter: the verdict, the anomalies,
  the transitions, downstream calls while OPEN (after the trip), probes per recovery,
  store reads and writes per invocation, calls handed to the fallback.
* :func:`journal` is the JSON document of ``--circuitbreaker-report-json``: every
  result with its scenario, verdict, anomalies (with their ops), metrics and history.
* :func:`html_page` is the page of ``--circuitbreaker-report-html``: inline CSS, and one
  inline SVG timeline per scenario and adapter: the shared record's state over time, a
  band per environment with its view, faults shaded, anomalies marked.

Example:
    >>> from pytest_circuitbreaker.scenario_format import Scenario
    >>> from pytest_circuitbreaker.scenarios import run_scenario
    >>> result = run_scenario(Scenario(name="idle", path="idle.toml", duration=5), "breaker", seed=0)
    >>> table([result]).splitlines()[2].split()[:4]
    ['idle', 'breaker', 'pass', '-']
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from pytest_circuitbreaker.history import (
    CRASH,
    DOWNSTREAM_CALL,
    FALLBACK,
    LOCAL_TRANSITION,
    REJECTED,
    STORE_FAULT,
    STORE_READ,
    STORE_WRITE,
    TRANSITION,
    History,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    import pytest

    from pytest_circuitbreaker.scenarios import ScenarioResult

__all__ = ["html_page", "journal", "side_by_side", "summarize", "table", "timeline_svg"]

_COLUMNS = (
    ("scenario", "scenario"),
    ("adapter", "adapter"),
    ("verdict", "verdict"),
    ("anomalies", "anomalies / failed expectations"),
    ("transitions", "transitions"),
    ("leak", "calls after trip"),
    ("probes", "probes/recovery"),
    ("store", "store r/w per call"),
    ("fallbacks", "fallbacks"),
)


def _row(result: ScenarioResult) -> dict[str, str]:
    m = result.metrics
    problems = list(result.anomalies) + [f.split(":", 1)[0] for f in result.expectation_failures]
    if result.status == "n/a":
        return {"scenario": result.scenario.id, "adapter": result.adapter, "verdict": "n/a",
                "anomalies": "; ".join(result.notes)[:60], "transitions": "", "leak": "", "probes": "",
                "store": "", "fallbacks": ""}  # fmt: skip
    verdict = result.status
    if result.status == "pass" and result.verdict is not None and result.verdict.valid is None:
        verdict = "pass*"
    return {
        "scenario": result.scenario.id,
        "adapter": result.adapter,
        "verdict": verdict,
        "anomalies": ", ".join(problems) or "-",
        "transitions": str(m.get("transitions", 0)),
        "leak": str(m.get("calls_after_trip", 0)),
        "probes": str(m.get("probes_per_recovery", 0)),
        "store": f"{m.get('store_reads_per_call', 0):.2f}/{m.get('store_writes_per_call', 0):.3f}",
        "fallbacks": str(m.get("fallbacks", 0) or (m.get("rejected", 0) and f"{m['rejected']} rej")),
    }


def table(results: Sequence[ScenarioResult]) -> str:
    """The terminal table: one line per scenario and adapter (``pass*``: some checkers could not decide).

    ``store r/w per call`` is store reads/writes per invocation; ``fallbacks`` counts calls
    handed to ``on_circuit_open`` (``N rej`` for a breaker without one: rejections).
    """
    rows = [_row(result) for result in sorted(results, key=lambda r: (r.scenario.id, r.adapter))]
    header = dict(_COLUMNS)
    widths = (
        {key: max(len(header[key]), *(len(row[key]) for row in rows)) for key, _ in _COLUMNS}
        if rows
        else {key: len(title) for key, title in _COLUMNS}
    )
    widths["anomalies"] = min(widths["anomalies"], 48)

    def line(row: dict[str, str]) -> str:
        cells = []
        for key, _ in _COLUMNS:
            text = row[key]
            if len(text) > widths[key]:
                text = text[: widths[key] - 1] + "…"
            cells.append(
                text.ljust(widths[key])
                if key in ("scenario", "adapter", "verdict", "anomalies")
                else text.rjust(widths[key])
            )
        return "  ".join(cells).rstrip()

    out = [line(header), "  ".join("-" * widths[key] for key, _ in _COLUMNS)]
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def side_by_side(results: Sequence[ScenarioResult]) -> str:
    """A Markdown table: one row per scenario, one verdict column per adapter (for the README).

    Example:
        >>> side_by_side([])
        '| scenario |\\n|---|'
    """
    adapters = sorted({r.adapter for r in results}, key=lambda a: (a != "breaker", a))
    scenarios = sorted({r.scenario.id for r in results})
    by = {(r.scenario.id, r.adapter): r for r in results}
    lines = ["| scenario | " + " | ".join(adapters) + " |" if adapters else "| scenario |"]
    lines.append("|---|" + "---|" * len(adapters))
    for scenario in scenarios:
        cells = []
        for adapter in adapters:
            result = by.get((scenario, adapter))
            if result is None:
                cells.append("")
                continue
            row = _row(result)
            detail = "" if row["anomalies"] == "-" or result.status == "n/a" else f": {row['anomalies']}"
            metrics = f" (after trip {row['leak']}, probes {row['probes']})" if result.status != "n/a" else ""
            cells.append(f"{row['verdict']}{detail}{metrics}")
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summarize(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The plugin's terminal summary; writes the JSON journal and HTML page when their options are set."""
    from pytest_circuitbreaker import options
    from pytest_circuitbreaker.plugin import session_seed
    from pytest_circuitbreaker.scenarios import RESULTS

    results = config.stash.get(RESULTS, [])
    if not results:
        return
    terminalreporter.write_sep("=", "circuit breaker scenarios")
    terminalreporter.write_line(table(results))
    terminalreporter.write_line(
        f"seed={session_seed(config)} (replay: --circuitbreaker-seed={session_seed(config)}); "
        "calls after trip = downstream calls while the shared record is OPEN; "
        "store r/w = reads/writes per invocation; pass* = some checkers answered unknown"
    )
    for name, writer in (("report_json", write_json), ("report_html", write_html)):
        target = options.setting(config, name)
        if target:
            path = Path(str(target))
            if not path.is_absolute():
                path = Path(config.invocation_params.dir, path)
            writer(results, path)
            terminalreporter.write_line(f"circuitbreaker: wrote {path}")


# ---------------------------------------------------------------------- JSON


def result_dict(result: ScenarioResult, *, with_history: bool = True) -> dict[str, Any]:
    """One result as JSON-ready data."""
    verdict = result.verdict
    data: dict[str, Any] = {
        "scenario": result.scenario.to_dict(),
        "adapter": result.adapter,
        "status": result.status,
        "seed": result.seed,
        "example": {"order": result.example.order, "shifts": [list(s) for s in result.example.shifts]},
        "examples_run": result.examples_run,
        "seconds": round(result.seconds, 3),
        "verdict": None
        if verdict is None
        else {
            "valid": verdict.valid,
            "checks": verdict.checks,
            "unknown": verdict.unknown,
            "anomalies": [
                {
                    "type": a.type,
                    "checker": a.checker,
                    "message": a.message,
                    "ops": [op.to_dict() for op in a.ops],
                }
                for a in verdict.instances
            ],
        },
        "anomaly_types": result.anomalies,
        "expectation_failures": result.expectation_failures,
        "metrics": result.metrics,
        "faults": result.faults,
        "notes": result.notes,
    }
    if with_history and result.history is not None:
        data["history"] = json.loads(result.history.to_json())
    return data


def journal(results: Sequence[ScenarioResult]) -> dict[str, Any]:
    """The JSON journal: ``{"results": [...]}`` with every result's scenario, verdict, metrics, history."""
    return {
        "format": "pytest-circuitbreaker scenario journal 1",
        "results": [result_dict(r) for r in results],
    }


def write_json(results: Sequence[ScenarioResult], path: Path) -> None:
    """Write :func:`journal` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(journal(results), indent=1, default=str), encoding="utf-8")


# ---------------------------------------------------------------------- HTML timeline

_STATE_COLOR = {"CLOSED": "#5cb85c", "OPEN": "#d9534f", "HALF_OPEN": "#f0ad4e", "DOWN": "#9e9e9e"}
_FAULT_COLOR = {
    "downstream_outage": "#d9534f",
    "downstream_error_rate": "#e57373",
    "downstream_slow": "#ba68c8",
    "store_outage": "#5c6bc0",
    "clock_skew": "#26a69a",
    "ignored_errors": "#8d6e63",
    "probe_owner_crash": "#000000",
    "cold_start": "#0288d1",
}


def _segments(changes: list[tuple[float, str]], end: float) -> list[tuple[float, float, str]]:
    out = []
    for index, (time, state) in enumerate(changes):
        until = changes[index + 1][0] if index + 1 < len(changes) else end
        if until > time or index + 1 == len(changes):
            out.append((time, max(until, time), state))
    return out


def _bands(
    history: History, start: float
) -> tuple[list[tuple[float, str]], dict[str, list[tuple[float, str]]]]:
    """The shared record's state changes and each environment's view changes (times from the start)."""
    shared: list[tuple[float, str]] = [(0.0, "CLOSED")]
    views: dict[str, list[tuple[float, str]]] = {}
    reports_only = not history.has_store_ops
    for op in history:
        t = op.time - start
        value = op.value if isinstance(op.value, dict) else {}
        env = op.environment
        key = env.split("#", 1)[0] if env else None
        if op.kind in (STORE_READ, STORE_WRITE, STORE_FAULT) and "truth" in value:
            state = str((value.get("truth") or {}).get("state") or "CLOSED")
            if state != shared[-1][1]:
                shared.append((t, state))
        if key is None:
            continue
        view = views.setdefault(key, [(0.0, "CLOSED")])
        seen: str | None = None
        if op.kind == STORE_READ:
            seen = str((value.get("record") or {}).get("state") or "CLOSED")
        elif op.kind == STORE_WRITE and value.get("stored"):
            seen = str((value.get("truth") or {}).get("state") or "CLOSED")
        elif op.kind in (TRANSITION, LOCAL_TRANSITION):
            seen = str(value.get("to"))
            if reports_only and op.kind == TRANSITION and seen != shared[-1][1]:
                shared.append((t, seen))
        elif op.kind in (REJECTED, FALLBACK):
            seen = "OPEN" if view[-1][1] == "CLOSED" else view[-1][1]
        elif op.kind == STORE_FAULT:
            seen = None
        elif op.kind == CRASH:
            seen = "CLOSED"
        if seen is not None and seen != view[-1][1]:
            view.append((t, seen))
    return shared, views


def timeline_svg(result: ScenarioResult, *, width: int = 1200) -> str:
    """One result's timeline as an inline SVG: shared state band, one band per environment, faults, anomalies."""
    history = result.history or History()
    start = history.start_time
    duration = float(result.scenario.duration) or 1.0
    shared, views = _bands(history, start)
    envs = sorted(views, key=lambda e: int(e.removeprefix("env-")) if e.removeprefix("env-").isdigit() else 0)
    max_bands = 24
    shown = envs[:max_bands]
    left, right, band, gap, top = 110, 20, 14 if len(shown) > 12 else 18, 4, 40
    plot = width - left - right

    def x(t: float) -> float:
        return left + plot * min(max(t, 0.0), duration) / duration

    rows = 1 + len(shown)
    height = top + rows * (band + gap) + 46
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="timeline of {html.escape(result.scenario.id)} '
        f'against {html.escape(result.adapter)}">'
    ]

    def draw_band(y: float, label: str, changes: list[tuple[float, str]], css: str) -> None:
        parts.append(
            f'<text x="{left - 8}" y="{y + band - 4}" font-size="11" text-anchor="end">{html.escape(label)}</text>'
        )
        for t0, t1, state in _segments(changes, duration):
            parts.append(
                f'<rect class="{css} state-{state}" x="{x(t0):.1f}" y="{y}" width="{max(x(t1) - x(t0), 0.8):.1f}" '
                f'height="{band}" fill="{_STATE_COLOR.get(state, "#999")}"><title>{html.escape(label)}: {state} '
                f"+{t0:g}s to +{t1:g}s</title></rect>"
            )

    y = top
    if history.has_store_ops:
        draw_band(y, "shared record", shared, "shared")
    else:
        draw_band(y, "reported (no store)", shared, "shared")
    rows_y = {}
    for env in shown:
        y += band + gap
        rows_y[env] = y
        draw_band(y, env, views[env], "view")
    # Faults shaded over the bands (translucent), labelled above them.
    for number, fault in enumerate(result.faults):
        color = _FAULT_COLOR.get(fault["fault"], "#999")
        x0 = x(fault["start"])
        if fault.get("end") is None and fault["fault"] in ("probe_owner_crash", "cold_start"):
            parts.append(
                f'<line class="fault" x1="{x0:.1f}" x2="{x0:.1f}" y1="{top - 6}" y2="{height - 40}" '
                f'stroke="{color}" stroke-width="2" stroke-dasharray="4 3"><title>{html.escape(fault["fault"])} '
                f"at +{fault['start']:g}s</title></line>"
            )
            continue
        x1 = x(fault["end"] if fault.get("end") is not None else duration)
        parts.append(
            f'<rect class="fault" x="{x0:.1f}" y="{top - 6}" width="{max(x1 - x0, 1):.1f}" height="{height - top - 34}" '
            f'fill="{color}" fill-opacity="0.28" stroke="{color}" stroke-opacity="0.8" stroke-dasharray="3 2">'
            f"<title>{html.escape(_fault_title(fault))}</title></rect>"
        )
        parts.append(
            f'<text x="{x0 + 3:.1f}" y="{top - 9 - 12 * (number % 2)}" font-size="10" fill="{color}">{html.escape(fault["fault"])}</text>'
        )

    # Downstream calls as ticks under each environment's band.
    for op in history.filter(DOWNSTREAM_CALL, where=lambda op: op.value == "start"):
        key = (op.environment or "").split("#", 1)[0]
        if key in rows_y:
            xx = x(op.time - start)
            parts.append(
                f'<line class="call" x1="{xx:.1f}" x2="{xx:.1f}" y1="{rows_y[key] + band}" y2="{rows_y[key] + band + 3}" '
                'stroke="#333" stroke-width="0.6"/>'
            )
    # Anomalies: a marker at each op that shows one.
    if result.verdict is not None:
        for anomaly in result.verdict.instances[:200]:
            for op in anomaly.ops[-1:]:
                key = (op.environment or "").split("#", 1)[0]
                yy = rows_y.get(key, top) + band / 2
                xx = x(op.time - start)
                parts.append(
                    f'<path class="anomaly" d="M{xx:.1f},{yy - 7:.1f} L{xx + 6:.1f},{yy + 5:.1f} L{xx - 6:.1f},{yy + 5:.1f} Z" '
                    f'fill="#ffeb3b" stroke="#b71c1c" stroke-width="1.5"><title>{html.escape(anomaly.type)}: '
                    f"{html.escape(anomaly.message)}</title></path>"
                )
    # Time axis.
    axis = height - 36
    parts.append(f'<line x1="{left}" x2="{left + plot}" y1="{axis}" y2="{axis}" stroke="#555"/>')
    step = _nice_step(duration)
    t = 0.0
    while t <= duration + 1e-9:
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{axis}" y2="{axis + 4}" stroke="#555"/>')
        parts.append(
            f'<text x="{x(t):.1f}" y="{axis + 15}" font-size="10" text-anchor="middle">{t:g}s</text>'
        )
        t += step
    if len(envs) > len(shown):
        parts.append(
            f'<text x="{left}" y="{axis + 30}" font-size="11">… and {len(envs) - len(shown)} more environments '
            "(the JSON journal has them all)</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _fault_title(fault: dict[str, Any]) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in fault.items() if k not in ("fault", "start", "end"))
    end = "end" if fault.get("end") is None else f"+{fault['end']:g}s"
    return f"{fault['fault']} +{fault['start']:g}s to {end}" + (f" ({extra})" if extra else "")


def _nice_step(duration: float) -> float:
    for step in (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1800, 3600):
        if duration / step <= 12:
            return float(step)
    return duration / 10


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 4px} .muted{color:#666}
table.summary{border-collapse:collapse;margin:12px 0} .summary td,.summary th{border:1px solid #ddd;padding:3px 8px;text-align:left;font-size:13px}
.summary th{background:#f4f4f4} .pass{color:#2e7d32;font-weight:600} .fail{color:#c62828;font-weight:600} .na{color:#777}
.legend span{display:inline-block;margin-right:14px;font-size:12px} .sw{display:inline-block;width:12px;height:12px;vertical-align:-2px;margin-right:4px;border:1px solid #0003}
section.result{border-top:1px solid #eee;padding-top:6px} .metrics{font-size:12px;color:#444} ul.anomalies{font-size:12px;margin:4px 0}
svg.timeline{display:block;margin:6px 0;background:#fcfcfc;border:1px solid #eee}
"""


def html_page(results: Sequence[ScenarioResult], *, title: str = "Circuit breaker scenarios") -> str:
    """One self-contained HTML page: summary table, legend, and a timeline per scenario and adapter."""
    ordered = sorted(results, key=lambda r: (r.scenario.id, r.adapter != "breaker", r.adapter))
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<p class='muted'>Each timeline: the shared record's state over time (top band), each environment's "
        "view of it below (what it last read, wrote or decided), downstream calls as ticks under its band, "
        "faults shaded, anomalies marked with a triangle (hover for details).</p>",
        _legend(),
        "<table class='summary'><tr>" + "".join(f"<th>{html.escape(t)}</th>" for _, t in _COLUMNS) + "</tr>",
    ]
    for result in ordered:
        row = _row(result)
        css = {"pass": "pass", "pass*": "pass", "fail": "fail"}.get(row["verdict"], "na")
        cells = []
        for key, _ in _COLUMNS:
            text = html.escape(row[key])
            if key == "scenario":
                text = (
                    f"<a href='#{html.escape(result.scenario.id)}-{html.escape(result.adapter)}'>{text}</a>"
                )
            cells.append(f"<td class='{css if key == 'verdict' else ''}'>{text}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    for result in ordered:
        anchor = f"{result.scenario.id}-{result.adapter}"
        row = _row(result)
        css = {"pass": "pass", "pass*": "pass", "fail": "fail"}.get(row["verdict"], "na")
        out.append(f"<section class='result' id='{html.escape(anchor)}'>")
        out.append(
            f"<h2>{html.escape(result.scenario.name)} <span class='muted'>({html.escape(result.scenario.id)})</span> "
            f"— {html.escape(result.adapter)}: <span class='{css}'>{html.escape(row['verdict'])}</span></h2>"
        )
        out.append(f"<p>{html.escape(result.scenario.description)}</p>")
        if result.status == "n/a":
            out.append(f"<p class='na'>{html.escape('; '.join(result.notes))}</p></section>")
            continue
        m = result.metrics
        out.append(
            "<p class='metrics'>"
            + html.escape(
                f"path {m.get('path')} · {m.get('invocations')} invocations · {m.get('downstream_calls')} downstream calls "
                f"· {m.get('calls_after_trip')} after the trip · {m.get('probes_per_recovery')} probes/recovery "
                f"· store {m.get('store_reads_per_call')} reads, {m.get('store_writes_per_call')} writes per call "
                f"· {m.get('fallbacks')} fallbacks · seed {result.seed} · {result.example.describe()}"
            )
            + "</p>"
        )
        problems = result.expectation_failures + [
            f"{a.type}: {a.message}" for a in (result.verdict.instances[:8] if result.verdict else [])
        ]
        total = len(result.expectation_failures) + (len(result.verdict.instances) if result.verdict else 0)
        if total > 4:
            problems = [
                *problems[:4],
                f"... and {total - 4} more (hover the markers; the JSON journal has them all)",
            ]
        if problems:
            out.append(
                "<ul class='anomalies'>" + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>"
            )
        out.append(timeline_svg(result))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)


def _legend() -> str:
    items = [
        f"<span><i class='sw' style='background:{c}'></i>{s}</span>"
        for s, c in _STATE_COLOR.items()
        if s != "DOWN"
    ]
    items += [
        f"<span><i class='sw' style='background:{c};opacity:.35'></i>{html.escape(f)}</span>"
        for f, c in _FAULT_COLOR.items()
    ]
    items.append(
        "<span><svg width='12' height='12'><path d='M6,0 L12,12 L0,12 Z' fill='#ffeb3b' stroke='#b71c1c'/></svg> anomaly</span>"
    )
    return "<div class='legend'>" + "".join(items) + "</div>"


def write_html(results: Sequence[ScenarioResult], path: Path) -> None:
    """Write :func:`html_page` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html_page(results), encoding="utf-8")
