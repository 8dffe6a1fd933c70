#!/usr/bin/env python3
"""The default speech detector on a server with many streams (issue 33): the server's CPU per
stream and per second of audio at 1, 50 and 200 concurrent sessions.

    python benchmarks/vad_streams.py [--streams 1 50 200] [--seconds 6] [--chunk-ms 20]

Starts `remotemedia serve` (the installed package's command), opens N streams at once through
`SpeechVADNode()` (the default engine, Silero v6 in Rust), each sending the bundled speech clip
(6.4 s at 48 kHz, resampled inside the node) in 20 ms chunks as fast as the server takes them,
and reads the server process's CPU time (user + system, /proc) over the run. Prints CPU ms per
second of audio (per stream: what one stream costs, whatever the concurrency), the audio
seconds the server handled per wall second, and checks every stream's segments equal a local
run's. The machine and its core count go with the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import remotemedia as rm

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_streams(
    p: rm.Pipeline[Any], address: str, x: np.ndarray, rate: int, n: int, chunk: int
) -> list[Any]:
    outs: list[list[Any]] = [[] for _ in range(n)]
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def work(i: int) -> None:
        try:
            with p.stream(sample_rate=rate, remote=address) as s:
                start.wait()
                for k in range(0, x.size, chunk):
                    s.send(x[k : k + chunk])
                    outs[i] += [seg for o in s.poll() for seg in o.data]
                outs[i] += [seg for o in s.close() for seg in o.data]
        except BaseException as e:  # reported by the caller
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return outs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, nargs="+", default=[1, 50, 200])
    ap.add_argument("--chunk-ms", type=int, default=20)
    args = ap.parse_args()
    x = rm.read(REPO / "examples" / "speech_48k.wav", dtype="float32")
    rate = int(x.sample_rate or 48000)
    chunk = rate * args.chunk_ms // 1000
    p = rm.Pipeline("vad").add_node(SpeechVADNodeDefault())
    want = p.run(x)
    exe = shutil.which("remotemedia")
    if exe is None:
        raise SystemExit("`remotemedia` is not on PATH: pip install the package first")
    port = free_port()
    address = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "server.toml"
        top = max(args.streams)
        cfg.write_text(f"[limits]\nmax_concurrent = {top + 8}\nstream_buffer = 64\n")
        proc = subprocess.Popen(
            [exe, "serve", "--listen", address, "--config", str(cfg)], stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the server did not start") from None
                    time.sleep(0.1)
            run_streams(p, address, x, rate, 1, chunk)  # warm: the pipeline is built and cached
            print(
                f"remotemedia {rm.__version__}, {os.cpu_count()} cores; SpeechVADNode() (Silero v6 in Rust)"
            )
            print(
                f"input: the bundled 6.4 s speech clip at {rate} Hz in {args.chunk_ms} ms chunks per stream"
            )
            print(
                "| streams at once | server CPU ms per audio second | audio seconds per wall second | segments equal local |"
            )
            print("|---|---|---|---|")
            for n in args.streams:
                c0, t0 = cpu_seconds(proc.pid), time.perf_counter()
                outs = run_streams(p, address, x, rate, n, chunk)
                wall = time.perf_counter() - t0
                cpu = cpu_seconds(proc.pid) - c0
                audio = n * x.frames / rate
                same = all(o == want for o in outs)
                print(
                    f"| {n} | {1000 * cpu / audio:.2f} | {audio / wall:.0f} | {'yes' if same else 'NO'} |"
                )
        finally:
            proc.terminate()
            proc.wait(30)


def SpeechVADNodeDefault() -> rm.SpeechVADNode[Any]:
    return rm.SpeechVADNode()


if __name__ == "__main__":
    sys.exit(main())
