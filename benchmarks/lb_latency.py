"""What haproxy adds per call and per chunk: the same Execute calls and stream chunks sent to
one replica directly and through the balancer, interleaved in rounds so that load on a shared
machine hits both alike. Used by scripts/scale-demo.sh; figures in docs/deploy.md.

    python benchmarks/lb_latency.py --direct 127.0.0.1:50061 --lb 127.0.0.1:50060
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from remotemedia import AudioResampleNode, Pipeline, RemoteClient


def tone(rate: int, secs: float) -> np.ndarray:
    t = np.arange(int(rate * secs)) / rate
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def calls(client: RemoteClient, manifest: str, x: np.ndarray, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        client.execute(manifest, x, 48000)
        out.append(time.perf_counter() - t)
    return out


def chunks(client: RemoteClient, pipe: Pipeline, chunk: np.ndarray, n: int) -> list[float]:
    out = []
    with client.stream(pipe, sample_rate=48000) as s:
        for _ in range(n):
            t = time.perf_counter()
            s.send(chunk)  # foreground: returns when the server has answered the chunk
            out.append(time.perf_counter() - t)
            s.poll()
        s.close()
    return out


def row(name: str, direct: list[float], lb: list[float]) -> str:
    def q(v: list[float], p: float) -> float:
        return float(np.percentile(v, p)) * 1e3

    med_d, med_l = statistics.median(direct) * 1e3, statistics.median(lb) * 1e3
    return (
        f"| {name} | {med_d:.3f} | {med_l:.3f} | {med_l - med_d:+.3f} "
        f"| {q(direct, 99):.3f} | {q(lb, 99):.3f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--direct", required=True, help="one replica's gRPC address")
    ap.add_argument("--lb", required=True, help="the balancer's address")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--n", type=int, default=200, help="calls (and chunks) per round and path")
    args = ap.parse_args()
    pipe = Pipeline("lat").add_node(AudioResampleNode(16000))
    manifest = pipe.serialize(indent=None)
    x, chunk = tone(48000, 0.1), tone(48000, 0.02)
    direct, lb = RemoteClient(args.direct), RemoteClient(args.lb)
    calls(direct, manifest, x, 20), calls(lb, manifest, x, 20)  # warm connections
    res: dict[str, list[float]] = {k: [] for k in ("cd", "cl", "kd", "kl")}
    for _ in range(args.rounds):
        res["cd"] += calls(direct, manifest, x, args.n)
        res["cl"] += calls(lb, manifest, x, args.n)
        res["kd"] += chunks(direct, pipe, chunk, args.n)
        res["kl"] += chunks(lb, pipe, chunk, args.n)
    n = args.rounds * args.n
    print(
        f"latency, {n} of each, ms (median direct, median via haproxy, added, p99 direct, p99 via haproxy):"
    )
    print("| what | direct | haproxy | added | p99 direct | p99 haproxy |")
    print("|---|---|---|---|---|---|")
    print(row("Execute, 100 ms of 48 kHz mono -> 16 kHz", res["cd"], res["cl"]))
    print(row("Stream chunk, 20 ms of 48 kHz mono", res["kd"], res["kl"]))


if __name__ == "__main__":
    main()
