"""Import cost: ``python -X importtime -c "import X"`` in fresh subprocesses.

Bytecode is compiled first (``python -m compileall -q breaker``; the machine may set
PYTHONDONTWRITEBYTECODE=1), and one discarded warm-up run per module is made with
bytecode writing enabled, so every module it loads (Powertools' included) is read from
a ``.pyc``, as in a deployed Lambda package. The runs of the contenders alternate.

The cost of one import is the sum of the cumulative microseconds of the top-level
entries of that import (``import a.b.c`` shows ``a``, ``a.b`` and ``a.b.c``), taken
after the interpreter's own start-up imports (``site`` and what ``.pth`` files load),
which do not count. The modules of those entries' subtrees are what the import loaded;
any whose top-level package is neither in the standard library nor the imported
package itself is reported as third-party. Names the child process does not have in
``sys.modules`` afterwards were failed attempts (``copy`` probes for Jython's
``org.python.core``) and are dropped.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

#: Lines look like ``import time:   self |  cumulative | <2 spaces per level>name``.
_PREFIX = "import time:"


def parse_importtime(stderr: str, module: str) -> tuple[int, list[str]]:
    """(cumulative µs, modules loaded) of ``import module`` in ``-X importtime`` output."""
    root = module.split(".")[0]
    total = 0
    loaded: list[str] = []
    pending: list[str] = []
    for line in stderr.splitlines():
        if not line.startswith(_PREFIX) or "|" not in line:
            continue
        parts = line[len(_PREFIX) :].split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the header line
        cumulative = int(parts[1])
        field = parts[2]
        name = field.strip()
        level = (len(field) - len(field.lstrip(" ")) - 1) // 2
        if level > 0:
            pending.append(name)  # children are printed before their parent
            continue
        if name == root or name.startswith(root + "."):
            total += cumulative
            loaded.extend(pending)
            loaded.append(name)
        pending = []
    return total, loaded


def third_party(modules: list[str], own_package: str) -> list[str]:
    """The loaded modules that are neither standard library nor ``own_package``."""
    allowed = set(sys.stdlib_module_names) | {own_package}
    return sorted({name for name in modules if name.split(".")[0] not in allowed})


def _run(module: str, cwd: Path, env: dict[str, str]) -> tuple[str, set[str]]:
    """The ``-X importtime`` report of ``import module`` and the child's final ``sys.modules``."""
    code = f"import {module}\nimport sys\nprint(' '.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stderr, set(result.stdout.split())


def measure_imports(modules: list[str], *, runs: int, cwd: Path) -> dict[str, dict[str, object]]:
    """Median/min import µs, loaded modules and third-party modules, per module."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "breaker"], cwd=cwd, check=True)
    warm_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    for module in modules:
        _run(module, cwd, warm_env)  # writes any missing .pyc; not measured
    samples: dict[str, list[int]] = {module: [] for module in modules}
    loaded: dict[str, set[str]] = {module: set() for module in modules}
    for _ in range(runs):
        for module in modules:
            report, present = _run(module, cwd, env)
            total, names = parse_importtime(report, module)
            samples[module].append(total)
            loaded[module].update(name for name in names if name in present)
    results: dict[str, dict[str, object]] = {}
    for module in modules:
        own = module.split(".")[0]
        results[module] = {
            "median_us": statistics.median(samples[module]),
            "min_us": min(samples[module]),
            "samples_us": samples[module],
            "modules_loaded": len(loaded[module]),
            "modules": sorted(loaded[module]),
            "third_party": third_party(sorted(loaded[module]), own),
        }
    return results
