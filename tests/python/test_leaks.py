"""Issue 9: no memory grows with the number of runs. The cheap form of scripts/leak_runs.py
(10,000 rounds; figures in docs/reliability.md): 2,000 rounds of native runs, a Python node,
a streaming session, a failing run and a manifest round trip, with RSS and the Python heap
compared after a warm-up. A leak of one 4800-sample buffer per round would add ~38 MB."""

from __future__ import annotations

import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))

import leak_runs


def test_two_thousand_rounds_do_not_grow_memory() -> None:
    r = leak_runs.measure(2000, every=100)
    assert r["rss_fit_growth_mb"] < 3.0, r
    assert r["rss_growth_mb"] < 4.0, r
    assert r["heap_growth_mb"] < 0.5, r
