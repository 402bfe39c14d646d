#!/usr/bin/env python3
"""The project's one entry point: `python3 dev.py scenarios`, `python3 dev.py test`.

Needs only Python 3.11+. `test` builds `.venv/` beside this file on first use (pip
from PyPI; if this Python lacks ensurepip, as Debian's does without python3-venv, pip
itself is fetched from PyPI) and reinstalls when pyproject.toml changes.

Commands:
    scenarios [ARGS] run every scenario pack (scenarios/*.toml) against this library and
                Powertools 3.37 on the embedded store and print the report (pytest ARGS
                are passed on, e.g. --circuitbreaker-report-html=report.html)
    demo        trip, reject, probe and recover a circuit under the fake clock (no install)
    test [ARGS] ruff, ruff format --check, mypy --strict, then pytest [ARGS]
    setup       only build/refresh .venv
    bench [ARGS] run the benchmarks (python -m benchmarks, then -m benchmarks.stores) with the bench extra
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".installed"


def say(message: str) -> None:
    print(f"dev.py: {message}", flush=True)


def run(*args: str | Path, check: bool = True, env: dict[str, str] | None = None) -> int:
    code = subprocess.call([str(a) for a in args], cwd=ROOT, env=env)
    if check and code != 0:
        say(f"failed ({code}): {' '.join(str(a) for a in args)}")
        sys.exit(code)
    return code


def _fetch_pip() -> Path:
    """Download pip's wheel from PyPI (for Pythons without ensurepip)."""
    with urllib.request.urlopen("https://pypi.org/pypi/pip/json", timeout=60) as response:
        meta = json.load(response)
    wheel = next(f for f in meta["urls"] if f["filename"].endswith(".whl"))
    target = Path(tempfile.mkdtemp()) / wheel["filename"]
    with urllib.request.urlopen(wheel["url"], timeout=120) as response:
        target.write_bytes(response.read())
    return target


def ensure_venv(extras: str = "dev") -> None:
    if not PY.exists():
        if sys.version_info < (3, 11):  # noqa: UP036 (this script runs on any python3)
            sys.exit(f"dev.py: Python 3.11+ is required, this is {sys.version.split()[0]}")
        say(f"creating {VENV.relative_to(ROOT)}")
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        except Exception as exc:  # Debian without python3-venv: no ensurepip
            say(f"venv with pip failed ({exc}); bootstrapping pip from PyPI")
            venv.EnvBuilder(with_pip=False, clear=True).create(VENV)
            wheel = _fetch_pip()
            run(PY, f"{wheel}/pip", "install", "--quiet", str(wheel))
    # The stamp says which extras are installed for which pyproject.toml: `dev` includes
    # everything `scenarios` needs, so either command reuses the other's install.
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    installed: set[str] = set()
    if STAMP.exists():
        try:
            stamp = json.loads(STAMP.read_text())
            if stamp.get("pyproject") == digest:
                installed = set(stamp.get("extras", []))
        except ValueError:
            pass
    wanted = set(extras.split(","))
    if "dev" in installed:
        installed |= {"scenarios"}
    if not wanted <= installed:
        extras = ",".join(sorted(wanted | installed))
        say(f"installing the project with extras [{extras}] (first run takes a minute)")
        run(PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f".[{extras}]")
        STAMP.write_text(json.dumps({"pyproject": digest, "extras": sorted(wanted | installed)}))
    # This machine's Python may be told not to write bytecode; compile once so that
    # imports (and `python -X importtime -c "import breaker"`) measure the real cost.
    run(PY, "-m", "compileall", "-q", "breaker", "pytest_circuitbreaker")


def cmd_demo(args: list[str]) -> int:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return run(sys.executable, ROOT / "examples" / "demo.py", *args, check=False, env=env)


def cmd_test(args: list[str]) -> int:
    ensure_venv()
    failed = []
    for name, command in (
        ("ruff check", [BIN / "ruff", "check", "."]),
        ("ruff format", [BIN / "ruff", "format", "--check", "."]),
        ("mypy --strict", [PY, "-m", "mypy"]),
        ("pytest", [PY, "-m", "pytest", *args]),
    ):
        say(f"running {name}")
        if run(*command, check=False) != 0:
            failed.append(name)
    if failed:
        say("FAILED: " + ", ".join(failed))
        return 1
    say("all checks passed")
    return 0


def cmd_scenarios(args: list[str]) -> int:
    # The light [scenarios] extra (pytest, hypothesis, Powertools): a fresh clone is
    # running packs within a minute; `test` adds the rest of the dev tools later.
    ensure_venv("scenarios")
    return run(
        PY,
        "-m",
        "pytest",
        "scenarios",
        "-p",
        "no:cacheprovider",
        "--circuitbreaker-adapters=breaker,powertools",
        "-q",
        *args,
        check=False,
    )


def cmd_setup(args: list[str]) -> int:
    ensure_venv()
    return 0


def cmd_bench(args: list[str]) -> int:
    ensure_venv("dev,bench")
    code = run(PY, "-m", "benchmarks", *args, check=False)
    return run(PY, "-m", "benchmarks.stores", *args, check=False) or code


def main() -> int:
    commands = {
        "scenarios": cmd_scenarios,
        "demo": cmd_demo,
        "test": cmd_test,
        "setup": cmd_setup,
        "bench": cmd_bench,
    }
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
