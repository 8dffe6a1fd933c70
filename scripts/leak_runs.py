"""Leak check from Python (issue 9; docs/reliability.md): many runs with RSS sampled.

Each round does one of each: a whole-input run through native nodes (resample, VAD,
format conversion), a run through a Python node, a short streaming session, a run that fails
on bad input (NaN), and building a pipeline from its manifest. RSS (/proc/self/status) and the
Python heap (tracemalloc) are sampled every ``--every`` rounds; the report gives the
least-squares slope after the first 10% of rounds (warm-up: allocator pools, caches).

    python scripts/leak_runs.py --runs 10000

A cheap form of it runs in the test suite: tests/python/test_leaks.py. Exits 1 when the RSS
grows by more than ``--max-growth-mb`` over the measured rounds.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

import remotemedia
from remotemedia import (
    AudioResampleNode,
    FormatConverterNode,
    PassThroughNode,
    Pipeline,
    VADNode,
)


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


class Double(remotemedia.Node):
    def process(self, data: object) -> object:
        return data * 2  # type: ignore[operator]


def build() -> tuple[Pipeline, Pipeline, Pipeline]:
    native = Pipeline("leak-native")
    native.add_node(AudioResampleNode(16000), "r")
    native.add_node(VADNode(threshold=-40.0), "v")
    native.add_node(FormatConverterNode("i16"), "f")
    native.connect("r", "v")
    native.connect("r", "f")
    python = Pipeline("leak-python").add_node(Double(), "d")
    streaming = Pipeline("leak-stream").add_node(AudioResampleNode(16000), "r")
    streaming.add_node(PassThroughNode(), "p")
    streaming.connect("r", "p")
    return native, python, streaming


def one_round(
    native: Pipeline, python: Pipeline, streaming: Pipeline, audio: np.ndarray, bad: np.ndarray
) -> None:
    out = native.run(audio, sample_rate=48000)
    assert len(out["f"]) == 1600
    assert python.run(3) == 6
    with streaming.stream(sample_rate=48000) as s:
        for chunk in np.array_split(audio, 3):
            s.send(chunk)
        s.poll()
        s.close()
    try:
        native.run(bad, sample_rate=48000)
    except remotemedia.NodeError:
        pass
    else:
        raise AssertionError("NaN input was accepted")
    Pipeline.from_manifest(native.serialize())


def slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return sxy / sxx if sxx else 0.0


def measure(runs: int, every: int) -> dict[str, float]:
    """Runs ``runs`` rounds; returns RSS and Python-heap figures (MB) after the warm-up."""
    native, python, streaming = build()
    t = np.arange(4800) / 48000
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    bad = audio.copy()
    bad[100] = np.nan
    warmup = max(runs // 10, 1)
    tracemalloc.start()
    rss: list[tuple[float, float]] = []
    heap: list[tuple[float, float]] = []
    for i in range(1, runs + 1):
        one_round(native, python, streaming, audio, bad)
        if i >= warmup and (i % every == 0 or i == warmup):
            rss.append((i, rss_kb() / 1024))
            heap.append((i, tracemalloc.get_traced_memory()[0] / 2**20))
    tracemalloc.stop()
    measured = runs - warmup
    return {
        "rounds": runs,
        "warmup": warmup,
        "rss_first_mb": rss[0][1],
        "rss_last_mb": rss[-1][1],
        "rss_max_mb": max(p[1] for p in rss),
        "rss_growth_mb": rss[-1][1] - rss[0][1],
        "rss_slope_kb_per_1000": slope(rss) * 1024 * 1000,
        "rss_fit_growth_mb": slope(rss) * measured,
        "heap_growth_mb": heap[-1][1] - heap[0][1],
        "heap_slope_kb_per_1000": slope(heap) * 1024 * 1000,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000, help="rounds (default 10000)")
    ap.add_argument("--every", type=int, default=250, help="sample every N rounds")
    ap.add_argument("--max-growth-mb", type=float, default=4.0)
    args = ap.parse_args()
    t0 = time.monotonic()
    r = measure(args.runs, args.every)
    print(
        f"{r['rounds']} rounds (5 pipeline calls each) in {time.monotonic() - t0:.0f} s; "
        f"measured after {r['warmup']} warm-up rounds"
    )
    print(
        f"RSS: {r['rss_first_mb']:.1f} -> {r['rss_last_mb']:.1f} MB (max {r['rss_max_mb']:.1f}); "
        f"slope {r['rss_slope_kb_per_1000']:.1f} kB per 1000 rounds "
        f"(fit over the run: {r['rss_fit_growth_mb']:.2f} MB)"
    )
    print(
        f"Python heap (tracemalloc): growth {r['heap_growth_mb'] * 1024:.1f} kB; "
        f"slope {r['heap_slope_kb_per_1000']:.2f} kB per 1000 rounds"
    )
    return 0 if r["rss_fit_growth_mb"] <= args.max_growth_mb else 1


if __name__ == "__main__":
    raise SystemExit(main())
