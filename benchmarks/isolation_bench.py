#!/usr/bin/env python3
"""Throughput of a CPU-bound pure-Python node, in-process against isolation="process", with
1 and 2 pipelines running at once (one thread each), in one process (issue 35).

    python benchmarks/isolation_bench.py [--loops 300000] [--calls 40] [--rounds 3]

Prints calls per second for each case and the 2-thread / 1-thread ratio (in-process Python
nodes share one GIL: ~1.0x; isolated nodes run in worker processes: up to the core count),
then the fixed cost: the first call of an isolated node (its worker starting), the median
whole run of a one-node pipeline on 1,600 samples, and the p50/p99 round trip of a 20 ms chunk
through a pass-through Python node in a stream, isolated and in-process (outputs equal).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))

import remotemedia as rm
from isolation_nodes import Burn, PassThrough, Scale


def throughput(pipes: list[rm.Pipeline], calls: int, x: np.ndarray) -> float:
    def work(p: rm.Pipeline) -> None:
        for _ in range(calls):
            p.run(x, sample_rate=16000)

    threads = [threading.Thread(target=work, args=(p,)) for p in pipes]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return len(pipes) * calls / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loops", type=int, default=300_000, help="Python loop iterations per call")
    ap.add_argument("--calls", type=int, default=40, help="calls per pipeline per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    x = np.zeros(320, np.float32)
    print(f"remotemedia {rm.__version__}, Python {sys.version.split()[0]}")
    print("| node | 1 pipeline (calls/s) | 2 pipelines at once (calls/s) | ratio |")
    print("|---|---|---|---|")
    for isolation in ("none", "process"):
        pipes = [
            rm.Pipeline(f"p{i}").add_node(Burn(args.loops), "b", isolation=isolation)
            for i in range(2)
        ]
        for p in pipes:
            p.run(x, sample_rate=16000)  # workers started, caches warm
        one = max(throughput(pipes[:1], args.calls, x) for _ in range(args.rounds))
        two = max(throughput(pipes, args.calls, x) for _ in range(args.rounds))
        label = "in-process" if isolation == "none" else 'isolation="process"'
        print(f"| {label} | {one:.1f} | {two:.1f} | {two / one:.2f}x |")
    x = np.zeros(1600, np.float32)
    runs = {}
    for isolation in ("process", "none"):
        p = rm.Pipeline(isolation).add_node(Scale(0.5), "s", isolation=isolation)
        t = time.perf_counter()
        p.run(x, sample_rate=16000)
        first = time.perf_counter() - t
        times = []
        for _ in range(300):
            t = time.perf_counter()
            p.run(x, sample_rate=16000)
            times.append(time.perf_counter() - t)
        runs[isolation] = (first, float(np.median(times)))
    print(f"worker start (first call): {runs['process'][0] * 1e3:.0f} ms")
    print(
        f"one-node run, median of 300: isolated {runs['process'][1] * 1e6:.0f} us, "
        f"in-process {runs['none'][1] * 1e6:.0f} us"
    )
    # The hop: a 20 ms chunk (16 kHz) through a pass-through Python node in a stream, per
    # chunk round trip (send + poll), isolated and in-process; outputs compared.
    chunk = np.arange(320, dtype=np.float32) / 320
    print("| 20 ms chunk through a pass-through Python node | p50 (us) | p99 (us) |")
    print("|---|---|---|")
    outs = {}
    for isolation in ("none", "process"):
        p = rm.Pipeline(f"hop-{isolation}").add_node(PassThrough(), "p", isolation=isolation)
        got = []
        with p.stream(sample_rate=16000) as s:
            for _ in range(100):
                s.send(chunk)
                got += s.poll()
            times = []
            for _ in range(3000):
                t = time.perf_counter()
                s.send(chunk)
                got += s.poll()
                times.append(time.perf_counter() - t)
            got += s.close()
        outs[isolation] = np.concatenate([np.asarray(o.data) for o in got])
        us = np.array(times) * 1e6
        label = "in-process" if isolation == "none" else 'isolation="process"'
        print(f"| {label} | {np.percentile(us, 50):.0f} | {np.percentile(us, 99):.0f} |")
    np.testing.assert_array_equal(outs["process"], outs["none"])


if __name__ == "__main__":
    main()
