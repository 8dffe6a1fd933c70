#!/usr/bin/env python3
"""Batching across streams (issue 35): N concurrent sessions, one thread each, stream 20 ms
chunks through a numpy model node (tests/python/batching_nodes.py `Mlp`: two dense layers),
unbatched and with ``batch={"max_size": N, "max_delay_ms": D}``; in one process.

    python benchmarks/batching_bench.py [--streams 16] [--chunks 100] [--delay-ms 5] [--rounds 3]

Prints chunks per second for both, the ratio, the mean batch size and queue delay, and checks
that every result equals the unbatched one (to float32 rounding of a batched matrix product).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "python"))

import remotemedia as rm
from batching_nodes import Mlp
from remotemedia.batching import BatchedNode

RATE = 16000


def run(pipes: list[rm.Pipeline[Any]], chunks: list[np.ndarray]) -> tuple[float, list[list[Any]]]:
    outs: list[list[Any]] = [[] for _ in pipes]
    barrier = threading.Barrier(len(pipes) + 1)

    def work(i: int) -> None:
        barrier.wait()
        with pipes[i].stream(sample_rate=RATE) as s:
            for c in chunks:
                s.send(c)
                outs[i] += [o.data for o in s.poll()]
            outs[i] += [o.data for o in s.close()]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(pipes))]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return len(pipes) * len(chunks) / (time.perf_counter() - t0), outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--chunks", type=int, default=100, help="20 ms chunks per stream")
    ap.add_argument("--delay-ms", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=1024, help="the model's layer width")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    chunks = [(0.1 * rng.standard_normal(320)).astype(np.float32) for _ in range(args.chunks)]
    policy = {"max_size": args.streams, "max_delay_ms": args.delay_ms}
    plain = [rm.Pipeline(f"u{i}").add_node(Mlp(args.hidden), "m") for i in range(args.streams)]
    batched = [
        rm.Pipeline(f"b{i}").add_node(Mlp(args.hidden), "m", batch=policy)
        for i in range(args.streams)
    ]
    best_u = best_b = 0.0
    ref: list[list[Any]] = []
    for _ in range(args.rounds):
        u, ref = run(plain, chunks)
        b, got = run(batched, chunks)
        best_u, best_b = max(best_u, u), max(best_b, b)
        for r, g in zip(ref, got, strict=True):
            np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)
    node = batched[0].nodes["m"]
    assert isinstance(node, BatchedNode)
    st = node.batch_stats
    print(f"remotemedia {rm.__version__}, numpy {np.__version__}, Python {sys.version.split()[0]}")
    print(f"{args.streams} streams x {args.chunks} chunks of 20 ms, best of {args.rounds} rounds")
    print("| node | chunks/s | ratio | mean batch | mean / max queue delay (ms) |")
    print("|---|---|---|---|---|")
    print(f"| Mlp {args.hidden}, unbatched | {best_u:,.0f} | 1.00x | 1 | - |")
    print(
        f"| Mlp {args.hidden}, batch max_size={args.streams} max_delay_ms={args.delay_ms:g} | {best_b:,.0f} | "
        f"{best_b / best_u:.2f}x | {st['mean_size']:.1f} | "
        f"{st['mean_queue_delay_ms']:.2f} / {st['max_queue_delay_ms']:.2f} |"
    )
    print("results equal the unbatched ones (rtol 1e-4)")


if __name__ == "__main__":
    main()
