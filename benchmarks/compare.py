"""remotemedia next to the libraries a user would otherwise pick, in one process and one run.

    pip install ".[bench]"      # soxr, scipy, webrtcvad-wheels
    python benchmarks/compare.py

Prints a markdown report: package versions, then for each task the time per unit of work for
our nodes (through the Python API), the numpy reference implementation of the same node, and
the peers, with ratios, and for the resamplers their alias rejection and passband gain
measured the same way for all. Timings are the median of repeated runs (each run long enough
to time reliably); the machine, and noise, are the reader's to judge. Lower is better.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

import remotemedia
from remotemedia import (
    AudioResampleNode,
    FormatConverterNode,
    PassThroughNode,
    Pipeline,
    VADNode,
    reference,
)

try:
    import soxr
except ImportError:  # pragma: no cover - optional peer
    soxr = None
try:
    from scipy import signal as scipy_signal
except ImportError:  # pragma: no cover - optional peer
    scipy_signal = None
try:
    import webrtcvad
except ImportError:  # pragma: no cover - optional peer
    webrtcvad = None


def version(pkg: str) -> str:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return "not installed"


def calibrate(fn: Callable[[], Any], min_time: float) -> int:
    """Calls per round so that one round lasts at least `min_time` seconds."""
    fn()  # warm up (plans FFTs, fills caches)
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t
        if dt >= min_time:
            return n
        n = max(n * 2, int(n * min_time / max(dt, 1e-9)))


def timeit(fn: Callable[[], Any], min_time: float = 0.05, repeat: int = 7) -> float:
    """Median seconds per call over `repeat` rounds of `calibrate`d length."""
    return interleaved({"fn": fn}, min_time, repeat)["fn"]


def interleaved(
    fns: dict[str, Callable[[], Any]], min_time: float = 0.05, repeat: int = 7
) -> dict[str, float]:
    """Median seconds per call of each function, measured in interleaved rounds (A B C A B C
    ...) so that drifting machine load affects all of them alike."""
    counts = {name: calibrate(fn, min_time) for name, fn in fns.items()}
    rounds: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            n = counts[name]
            t = time.perf_counter()
            for _ in range(n):
                fn()
            rounds[name].append((time.perf_counter() - t) / n)
    return {name: statistics.median(r) for name, r in rounds.items()}


def music(rate: int, secs: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(int(rate * secs)) / rate
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t)
    s = sum(0.08 * np.sin(2 * np.pi * f * t) for f in (110, 220, 330, 440, 660, 1250, 2500, 3100))
    return (env * s + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def tone(freq: float, rate: int, secs: float = 2.0) -> np.ndarray:
    t = np.arange(int(rate * secs)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def level_db(y: np.ndarray, x: np.ndarray) -> float:
    """RMS of the middle half of `y` relative to the RMS of `x`, in dB."""
    y = np.asarray(y, dtype=np.float64)
    a = y.size // 4
    mid = y[a : y.size - a]
    return 20 * np.log10(
        max(np.sqrt(np.mean(mid**2)), 1e-300) / np.sqrt(np.mean(x.astype(np.float64) ** 2))
    )


class Table:
    def __init__(self, title: str, unit: str, baseline: str) -> None:
        self.title, self.unit, self.baseline = title, unit, baseline
        self.rows: list[tuple[str, float, str]] = []

    def add(self, name: str, seconds: float, note: str = "") -> None:
        self.rows.append((name, seconds, note))

    def measure(
        self,
        impls: list[tuple[str, Callable[[], Any], str]],
        min_time: float = 0.05,
        per: float = 1.0,
    ) -> None:
        """Times the implementations in interleaved rounds; `per` divides the time per call."""
        times = interleaved({name: fn for name, fn, _ in impls}, min_time)
        for name, _, note in impls:
            self.add(name, times[name] / per, note)

    def render(self, scale: float) -> str:
        base = next((s for n, s, _ in self.rows if n == self.baseline), None)
        ours = self.rows[0][1]
        lines = [
            f"### {self.title}",
            "",
            f"| implementation | {self.unit} | ours is faster by | vs {self.baseline} | notes |",
            "|---|---|---|---|---|",
        ]
        for name, s, note in self.rows:
            speed = "-" if name == self.rows[0][0] else f"{s / ours:.2f}x"
            rel = "-" if base is None else f"{s / base:.2f}x"
            lines.append(f"| {name} | {s * scale:,.2f} | {speed} | {rel} | {note} |")
        lines.append("")
        return "\n".join(lines)


def resample_section(rin: int, rout: int, secs: float = 10.0) -> str:
    x = music(rin, secs)
    g = np.gcd(rin, rout)
    up, down = rout // g, rin // g
    impls: list[tuple[str, Callable[[np.ndarray], np.ndarray]]] = []
    node = AudioResampleNode(rout, "high")
    impls.append(
        ("remotemedia AudioResampleNode high (node call)", lambda a: node(a, sample_rate=rin))
    )
    pipe = Pipeline("r").add_node(AudioResampleNode(rout, "high"))
    impls.append(("remotemedia Pipeline.run, 1 node", lambda a: pipe.run(a, sample_rate=rin)))
    fast = AudioResampleNode(rout, "fast")
    impls.append(("remotemedia AudioResampleNode fast", lambda a: fast(a, sample_rate=rin)))
    if soxr is not None:
        impls.append(("soxr HQ", lambda a: soxr.resample(a, rin, rout, quality="HQ")))
        impls.append(("soxr VHQ", lambda a: soxr.resample(a, rin, rout, quality="VHQ")))
    if scipy_signal is not None:
        impls.append(
            (
                "scipy.signal.resample_poly",
                lambda a: scipy_signal.resample_poly(a, up, down).astype(np.float32),
            )
        )
    ref = AudioResampleNode(rout)
    impls.append(
        (
            "remotemedia numpy reference",
            lambda a: remotemedia.nodes.audio._join(
                (r := reference.oracle(ref)).process(remotemedia.Audio(a, rin)), r.flush()
            ),
        )
    )

    nyq = min(rin, rout) / 2
    table = Table(
        f"Resample {rin} -> {rout} Hz, mono float32 ({secs:.0f} s of music-like audio)",
        "ms per second of audio",
        "soxr HQ",
    )
    times = interleaved({name: (lambda fn=fn: fn(x)) for name, fn in impls}, 0.2, 7)
    for name, fn in impls:
        secs_per_call = times[name]
        if rout < rin:
            alias = max(
                level_db(fn(tone(f, rin)), tone(f, rin))
                for f in (1.125 * nyq + 13.7, 1.5 * nyq + 101.3)
                if f < 0.98 * rin / 2
            )
        else:
            alias = float("nan")
        passband = level_db(fn(tone(0.875 * nyq + 13.7, rin)), tone(0.875 * nyq + 13.7, rin))
        note = f"alias {alias:.0f} dB, gain at 0.875 Nyquist {passband:+.2f} dB"
        table.add(name, secs_per_call / secs, note)
    return table.render(1e3)


def vad_section() -> str:
    rate, secs = 16000, 10.0
    rng = np.random.default_rng(1)
    t = np.arange(int(rate * secs)) / rate
    x = (
        0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)
        + 0.003 * rng.standard_normal(t.size)
    ).astype(np.float32)
    frames = int(secs * 1000 // 30)
    pcm = (x * 32767).astype(np.int16)
    frame_bytes = [pcm[i * 480 : (i + 1) * 480].tobytes() for i in range(frames)]
    node = VADNode(threshold=-30)
    chunks = [x[i * 480 : (i + 1) * 480] for i in range(frames)]
    table = Table("Voice activity detection, 16 kHz, per 30 ms frame", "us per frame", "webrtcvad")

    def stream() -> None:
        for c in chunks:
            node.process(c, sample_rate=rate)
        node.flush()

    ref = reference.VadRef(threshold=-30)

    def numpy_vad() -> None:
        ref.reset()
        ref.process(remotemedia.Audio(x, rate))
        ref.flush()

    impls: list[tuple[str, Callable[[], Any], str]] = [
        ("remotemedia VADNode, 10 s in one call", lambda: node(x, sample_rate=rate), ""),
        (
            "remotemedia VADNode, streamed one 30 ms frame per call",
            stream,
            "includes the Python call per frame",
        ),
    ]
    if webrtcvad is not None:
        vad = webrtcvad.Vad(3)
        impls.append(
            (
                "webrtcvad",
                lambda: [vad.is_speech(b, rate) for b in frame_bytes],
                "GMM VAD (different algorithm), one Python call per frame",
            )
        )
    impls.append(("remotemedia numpy reference", numpy_vad, "same algorithm in numpy"))
    table.measure(impls, per=frames)
    return table.render(1e6)


def format_section() -> str:
    a = (np.random.default_rng(2).uniform(-1, 1, 1_000_000) * 32767).astype(np.int16)
    node = FormatConverterNode("f32")

    def numpy_best() -> np.ndarray:
        y = a.astype(np.float32)
        y *= 1 / 32768
        return y

    table = Table("int16 -> float32, 1M samples", "us per 1M samples", "numpy astype + *=")
    table.measure(
        [
            ("remotemedia FormatConverterNode", lambda: node(a, sample_rate=16000), ""),
            ("numpy astype + *=", numpy_best, "y = a.astype(np.float32); y *= 1/32768"),
            ("numpy a / 32768", lambda: a / 32768.0, "float64 result"),
            ("remotemedia numpy reference", lambda: reference.convert_format(a, "f32"), ""),
        ]
    )
    return table.render(1e6)


def overhead_section() -> str:
    x = np.zeros(160, dtype=np.float32)
    chunk = remotemedia.Audio(x, 16000)
    pt = PassThroughNode()
    pt.process(chunk)  # built on first use, as any caller's node is after its first chunk
    # The peer: numpy's cheapest real call on the same small array (the boundary targets of
    # the node-definition issue are ratios to it). Every row is a functools.partial, so no
    # row pays for a Python lambda frame around the call it measures.
    table = Table("Per-call overhead", "us per call", "numpy np.negative")

    def noop(a: np.ndarray, sample_rate: int) -> np.ndarray:
        return a

    p3 = (
        Pipeline("three")
        .add_node(PassThroughNode())
        .add_node(PassThroughNode())
        .add_node(PassThroughNode())
    )
    table.measure(
        [
            (
                "remotemedia PassThroughNode.process, Audio chunk (native)",
                partial(pt.process, chunk),
                "10 ms chunk; the chunk comes back as is",
            ),
            (
                "remotemedia PassThroughNode.process, plain ndarray + sample_rate",
                partial(pt.process, x, sample_rate=16000),
                "includes making the Audio view of the result",
            ),
            (
                "Python no-op function",
                partial(noop, x, sample_rate=16000),
                "the floor for any call from Python",
            ),
            (
                "numpy np.negative",
                partial(np.negative, x),
                f"numpy {np.__version__}, the same 160-sample array",
            ),
            (
                "remotemedia Pipeline.run, 3 PassThrough nodes (orchestration)",
                partial(p3.run, chunk),
                "whole run: input, 3 nodes + flush, metrics, output",
            ),
        ],
        min_time=0.2,
    )
    return table.render(1e6)


def streaming_section() -> str:
    """Per-chunk cost of streaming 20 ms chunks: locally, and over loopback gRPC."""
    import os
    import shutil
    import signal
    import socket
    import subprocess

    rate = 48000
    chunk = remotemedia.Audio(music(rate, 0.02), rate)  # 20 ms at 48 kHz
    passthrough = (
        Pipeline("3 pass-through")
        .add_node(PassThroughNode())
        .add_node(PassThroughNode())
        .add_node(PassThroughNode())
    )
    real3 = Pipeline("resample, i16, VAD").add_node(AudioResampleNode(16000))
    real3.add_node(FormatConverterNode("i16")).add_node(VADNode(emit="events"))

    def per_chunk(p: Pipeline, **kw: Any) -> Callable[[], Any]:
        session = p.stream(sample_rate=rate, **kw)

        def step() -> None:
            session.send(chunk)
            session.poll()

        return step

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # The CLI installed next to this interpreter (a venv's python run without activating it).
    exe = shutil.which("remotemedia", path=os.path.dirname(sys.executable)) or shutil.which(
        "remotemedia"
    )
    if exe is None:
        print("gRPC rows skipped: the `remotemedia` command is not installed", file=sys.stderr)
    server = None
    if exe:
        server = subprocess.Popen(
            [exe, "serve", "--listen", f"127.0.0.1:{port}"],
            stderr=subprocess.DEVNULL,
            env={**os.environ},
        )
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
    try:
        impls: list[tuple[str, Callable[[], Any], str]] = [
            (
                "local session, 3 PassThrough nodes",
                per_chunk(passthrough),
                "executor + Python session overhead per chunk",
            ),
            (
                "local session, 3 PassThrough nodes, background=True",
                per_chunk(passthrough, background=True),
                "worker-thread hand-off per chunk",
            ),
            (
                "local session, resample 48k->16k + i16 + VAD events",
                per_chunk(real3),
                "including the nodes' work",
            ),
        ]
        if server is not None:
            address = f"127.0.0.1:{port}"
            impls += [
                (
                    "gRPC loopback session, 3 PassThrough nodes",
                    per_chunk(passthrough, remote=address),
                    "round trip: send, outputs, chunk ack",
                ),
                (
                    "gRPC loopback session, resample 48k->16k + i16 + VAD events",
                    per_chunk(real3, remote=address),
                    "round trip including the nodes' work",
                ),
            ]
        table = Table(
            "Streaming 20 ms chunks (48 kHz mono)",
            "us per chunk",
            "local session, 3 PassThrough nodes",
        )
        table.measure(impls, min_time=0.2)
        return table.render(1e6)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=15)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--only",
        choices=["resample", "vad", "format", "overhead", "streaming"],
        help="run one section",
    )
    args = ap.parse_args()
    print("## Measured side by side (benchmarks/compare.py)\n")
    print(
        f"- machine: {platform.machine()}, {platform.processor() or platform.platform()}; "
        f"Python {platform.python_version()}"
    )
    print(
        "- versions: "
        + ", ".join(
            f"{p} {version(p)}"
            for p in ("remotemedia", "numpy", "soxr", "scipy", "webrtcvad-wheels")
        )
    )
    print()
    sections = {
        "resample": lambda: resample_section(48000, 16000) + "\n" + resample_section(44100, 16000),
        "vad": vad_section,
        "format": format_section,
        "overhead": overhead_section,
        "streaming": streaming_section,
    }
    for name, fn in sections.items():
        if args.only in (None, name):
            print(fn())
    return 0


if __name__ == "__main__":
    sys.exit(main())
