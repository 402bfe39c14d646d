"""Side-by-side benchmarks of ``breaker`` against the hand-written floor and its peers.

Run from the repository root: ``python -m benchmarks`` (``--quick``, ``--json PATH``).
See ``benchmarks/run.py`` for what is measured and how (DESIGN §8).
"""

from __future__ import annotations
