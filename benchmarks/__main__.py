"""``python -m benchmarks``: print the markdown report (``--json PATH``, ``--quick``)."""

from __future__ import annotations

from benchmarks.run import main

raise SystemExit(main())
