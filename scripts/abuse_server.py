#!/usr/bin/env python3
"""Abuse `remotemedia serve` as issue 34 describes, then check it recovers (docs/reliability.md).

1. N streams (default 1,000) of a pure-Python node that never returns, each abandoned by its
   client (cancelled) while the node spins, 16 at a time;
2. M raw TCP connections (default 300) that never send a byte, held open.

After each, a normal call is timed (it must be answered at once), and the server's threads,
open fds and RSS (from /proc) are compared with their baseline until they are back (or 30 s
pass). Not a CI step: it takes about a minute. Needs the package installed (`remotemedia` on
PATH) and grpcio + grpcio-tools.

    python scripts/abuse_server.py [--streams 1000] [--idle 300]

Exit status 1 if a normal call failed or a figure did not come back to its baseline.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent

NODES = '''
import remotemedia

class Spin(remotemedia.Node):
    """Loops in pure Python forever."""

    def process(self, audio):
        while True:
            pass
'''


def proto(work: Path) -> tuple[Any, Any]:
    from grpc_tools import protoc

    shutil.copy(REPO / "proto/remotemedia/v1/remotemedia.proto", work / "rm_v1.proto")
    rc = protoc.main(
        ["protoc", f"-I{work}", f"--python_out={work}", f"--grpc_python_out={work}", "rm_v1.proto"]
    )
    if rc != 0:
        raise SystemExit("protoc failed")
    sys.path.insert(0, str(work))
    return importlib.import_module("rm_v1_pb2"), importlib.import_module("rm_v1_pb2_grpc")


def figures(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "threads": int(fields["Threads"].strip()),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "rss_mib": int(fields["VmRSS"].split()[0]) // 1024,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--idle", type=int, default=300)
    ap.add_argument("--parallel", type=int, default=16)
    args = ap.parse_args()

    import grpc

    work = Path(tempfile.mkdtemp(prefix="rm-abuse-"))
    pb, rpc = proto(work)
    (work / "abuse_nodes.py").write_text(NODES)
    # In-process Python nodes: the harder case (an abandoned call's thread must be interrupted
    # and its slot freed; an isolated node's worker is simply killed).
    (work / "server.toml").write_text(
        'python_isolation = "none"\n[python_nodes]\n"Spin" = "abuse_nodes:Spin"\n'
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    exe = shutil.which("remotemedia")
    if not exe:
        raise SystemExit("`remotemedia` is not on PATH: pip install the package first")
    env = {**os.environ, "PYTHONPATH": str(work)}
    log = (work / "server.log").open("w")
    server = subprocess.Popen(
        [exe, "serve", "--listen", address, "--config", str(work / "server.toml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    failed = False
    try:
        for _ in range(600):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        audio = np.sin(np.arange(1600, dtype=np.float32) * 0.05) * 0.3
        chunk = pb.Value(
            audio=pb.Audio(
                samples=audio.astype("<f4").tobytes(),
                format=pb.SAMPLE_FORMAT_F32,
                sample_rate=16000,
                channels=1,
            )
        )
        spin = '{"version": "v1", "nodes": [{"id": "spin", "node_type": "Spin"}]}'
        normal = (
            '{"version": "v1", "nodes": [{"id": "r", "node_type": "AudioResampleNode",'
            ' "params": {"target_rate": 8000}}]}'
        )
        channel = grpc.insecure_channel(address)
        stub = rpc.RemoteMediaStub(channel)

        def normal_call() -> float:
            t = time.perf_counter()
            out = stub.Execute(pb.ExecuteRequest(manifest=normal, input=chunk), timeout=10)
            assert out.outputs[0].value.audio.sample_rate == 8000
            return time.perf_counter() - t

        normal_call()
        time.sleep(1.0)
        base = figures(server.pid)
        print(f"baseline: {base}")

        def settle(what: str) -> None:
            nonlocal failed
            t = time.monotonic()
            latency = normal_call()
            print(f"{what}: a normal call took {latency * 1e3:.1f} ms")
            while True:
                now = figures(server.pid)
                back = (
                    now["threads"] <= base["threads"]
                    and now["fds"] <= base["fds"]
                    and now["rss_mib"] <= base["rss_mib"] * 1.25 + 16
                )
                if back or time.monotonic() - t > 30:
                    break
                time.sleep(0.5)
            verdict = "back to baseline" if back else "NOT back to baseline"
            print(f"{what}: {now} after {time.monotonic() - t:.1f} s, {verdict}")
            failed |= not back or latency > 1.0

        # 1. Abandoned streams.
        def abandon(_: int) -> None:
            never = threading.Event()

            def requests() -> Any:
                yield pb.StreamRequest(open=pb.StreamOpen(manifest=spin))
                yield pb.StreamRequest(chunk=pb.StreamChunk(seq=0, input=chunk))
                never.wait(30)

            call = stub.Stream(requests(), timeout=30)
            try:
                next(call)  # opened: the node spins on the chunk now
                time.sleep(0.05)
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                    raise
            finally:
                call.cancel()
                never.set()

        t = time.monotonic()
        with ThreadPoolExecutor(args.parallel) as pool:
            list(pool.map(abandon, range(args.streams)))
        print(f"{args.streams} abandoned streams in {time.monotonic() - t:.1f} s")
        settle(f"after {args.streams} abandoned streams")

        # 2. Raw connections that never send a byte.
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(args.idle)]
        time.sleep(0.5)
        held = figures(server.pid)
        print(f"{args.idle} idle raw connections open: {held}")
        settle(f"with {args.idle} idle raw connections")
        closed = 0
        for s in idle:
            s.settimeout(0.1)
            try:
                closed += s.recv(1) == b""
            except (TimeoutError, ConnectionResetError):
                closed += 1
            s.close()
        print(f"the server had closed {closed} of the {args.idle} idle connections")
        failed |= closed != args.idle
        channel.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            failed = True
        log.close()
    print("FAILED" if failed else "ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
