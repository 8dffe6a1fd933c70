"""Per-chunk cost of a foreground streaming session from Python, beyond the node's own call.

    python benchmarks/session_overhead.py [--rounds 7]

For one-node pipelines (PassThroughNode at 48 kHz, AudioResampleNode(16000) from 48 kHz and
from 8 kHz, SpeechVADNode at 16 kHz; mono float32, 20 ms chunks) it times, in the calling
thread's CPU time (``time.thread_time``, so time spent descheduled on a loaded machine is not
counted), ``session.send(chunk); session.poll()`` and the same node's ``NativeNode.process``
on the same chunk (a stateful node called directly: the node's work plus one numpy crossing
each way). The difference is what the session adds per chunk: the Python methods, the
runtime call, the executor step (breaker, timeout, panic containment, retry, limits,
metrics) and the output objects. Best of ``--rounds`` rounds of 3000 chunks.
"""

from __future__ import annotations

import argparse
import json
import time
import timeit
from collections.abc import Callable
from typing import Any

import numpy as np

from remotemedia import Pipeline, _native
from remotemedia.nodes import AudioResampleNode, PassThroughNode, SpeechVADNode

CASES: dict[str, tuple[Callable[[], Any], str, dict[str, Any], int]] = {
    "PassThroughNode, 48 kHz": (PassThroughNode, "PassThroughNode", {}, 48000),
    "AudioResampleNode(16000), 48 kHz": (
        lambda: AudioResampleNode(16000),
        "AudioResampleNode",
        {"target_rate": 16000},
        48000,
    ),
    "AudioResampleNode(16000), 8 kHz": (
        lambda: AudioResampleNode(16000),
        "AudioResampleNode",
        {"target_rate": 16000},
        8000,
    ),
    "SpeechVADNode, 16 kHz": (SpeechVADNode, "SpeechVADNode", {}, 16000),
}


def best_us(fn: Callable[[], Any], rounds: int, n: int = 3000) -> float:
    timer = timeit.Timer(fn, timer=time.thread_time)
    return min(timer.repeat(number=n, repeat=rounds)) / n * 1e6


def measure(
    make: Callable[[], Any], node_type: str, params: dict[str, Any], rate: int, rounds: int
) -> tuple[float, float]:
    """(send + poll, node.process) in microseconds per chunk."""
    chunk = (np.random.default_rng(0).standard_normal(rate // 50) * 0.1).astype(np.float32)
    session = Pipeline("overhead").add_node(make()).stream(sample_rate=rate, channels=1)
    node = _native.NativeNode(node_type, json.dumps(params))
    send, poll, process = session.send, session.poll, node.process

    def streamed() -> None:
        send(chunk)
        poll()

    def direct() -> None:
        process(chunk, rate)

    s = best_us(streamed, rounds)
    d = best_us(direct, rounds)
    session.close()
    return s, d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    print(
        "| one-node session, 20 ms mono chunks | send + poll (us) | node.process (us) "
        "| session adds (us) |"
    )
    print("|---|---|---|---|")
    for name, (make, node_type, params, rate) in CASES.items():
        s, d = measure(make, node_type, params, rate, args.rounds)
        print(f"| {name} | {s:.2f} | {d:.2f} | {s - d:.2f} |")


if __name__ == "__main__":
    main()
