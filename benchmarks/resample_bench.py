"""AudioResampleNode next to soxr (issue 14), in one process and one run.

    pip install ".[bench]"      # soxr
    python benchmarks/resample_bench.py [--secs 10] [--pairs 48000:16000,44100:16000]

Prints two markdown tables. Speed: time per second of audio (10 s of music-like float32
audio, mono and stereo), ours against soxr 1.x quality "HQ":

- whole clip: ``AudioResampleNode(rate)(x, sample_rate=...)`` against ``soxr.resample``;
- streamed: the clip in 20 ms chunks through ``Pipeline.stream`` (open, send every chunk,
  close) against ``soxr.ResampleStream`` (``resample_chunk`` per chunk, ``last=True`` at the
  end).

Timings are medians of interleaved rounds (see compare.py); the ratio columns are our time
over soxr's (below 1: we are faster). Quality is measured the same way for both (mono, 2 s
tones at amplitude 0.5, middle half of the output): alias is the total output level of tones
at 1.125 and 1.5 x the output Nyquist (for close rates, one tone halfway between the two
Nyquist frequencies); image (upsampling) is what remains after removing the fitted input tone
at 0.45 x the input rate; passband is the gain of a tone at 0.875 x the lower Nyquist.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import interleaved, level_db, music, tone, version
from remotemedia import AudioResampleNode, Pipeline

try:
    import soxr
except ImportError:  # pragma: no cover - optional peer
    soxr = None

PAIRS = [
    (48000, 16000),
    (44100, 16000),
    (16000, 48000),
    (22050, 16000),
    (8000, 16000),
    (48000, 44100),
]
CHUNK_MS = 20


def image_db(y: np.ndarray, freq: float, rate: int, x: np.ndarray) -> float:
    """Level of what remains of the middle half of `y` after removing the best-fitting sine
    at `freq` (images and noise), relative to the RMS of `x`, in dB."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    a = y.size // 4
    mid = y[a : y.size - a]
    n = np.arange(a, a + mid.size)
    w = 2 * np.pi * freq / rate
    basis = np.stack([np.sin(w * n), np.cos(w * n)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, mid, rcond=None)
    resid = mid - basis @ coef
    rms_x = np.sqrt(np.mean(x.astype(np.float64) ** 2))
    return 20 * np.log10(max(np.sqrt(np.mean(resid**2)), 1e-300) / rms_x)


def quality(fn: Callable[[np.ndarray], np.ndarray], rin: int, rout: int) -> tuple[float, float]:
    """(worst alias or image level, passband gain) in dB for a mono resampling function."""
    nyq = min(rin, rout) / 2
    f = 0.875 * nyq + 13.7
    passband = level_db(fn(tone(f, rin)), tone(f, rin))
    if rout < rin:
        tones = [f for f in (1.125 * nyq + 13.7, 1.5 * nyq + 101.3) if f < 0.98 * rin / 2]
        if not tones:
            tones = [(nyq + rin / 2) / 2]
        worst = max(level_db(fn(tone(f, rin)), tone(f, rin)) for f in tones)
    else:
        f = 0.45 * rin + 13.7
        worst = image_db(fn(tone(f, rin)), f, rout, tone(f, rin))
    return worst, passband


def ours_stream(rin: int, rout: int, chunks: list[np.ndarray], ch: int) -> Callable[[], Any]:
    pipe = Pipeline("resample").add_node(AudioResampleNode(rout, "high"))

    def run() -> list[Any]:
        session = pipe.stream(sample_rate=rin, channels=ch)
        out: list[Any] = []
        for c in chunks:
            session.send(c)
            out.extend(session.poll())
        out.extend(session.close())
        return out

    return run


def soxr_stream(rin: int, rout: int, chunks: list[np.ndarray], ch: int) -> Callable[[], Any]:
    def run() -> list[np.ndarray]:
        s = soxr.ResampleStream(rin, rout, ch, dtype="float32", quality="HQ")
        out = [s.resample_chunk(c) for c in chunks]
        out.append(s.resample_chunk(chunks[0][:0], last=True))
        return out

    return run


def speed(rin: int, rout: int, ch: int, secs: float, rounds: int) -> dict[str, float]:
    """Seconds per call of the four contenders on `secs` of `ch`-channel audio."""
    x = music(rin, secs)
    if ch == 2:
        x = np.ascontiguousarray(np.stack([x, np.roll(x, 1000)], axis=1))
    step = rin * CHUNK_MS // 1000
    chunks = [x[i : i + step] for i in range(0, len(x), step)]
    node = AudioResampleNode(rout, "high")
    return interleaved(
        {
            "ours": lambda: node(x, sample_rate=rin),
            "soxr": lambda: soxr.resample(x, rin, rout, quality="HQ"),
            "ours_stream": ours_stream(rin, rout, chunks, ch),
            "soxr_stream": soxr_stream(rin, rout, chunks, ch),
        },
        0.2,
        rounds,
    )


def qualities(rin: int, rout: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(ours, soxr HQ) quality figures for one pair."""
    node = AudioResampleNode(rout, "high")
    ours = quality(lambda a: np.asarray(node(a, sample_rate=rin)), rin, rout)
    peer = quality(lambda a: soxr.resample(a, rin, rout, quality="HQ"), rin, rout)
    return ours, peer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--secs", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--pairs", help="comma-separated in:out pairs (default: the issue's six)")
    args = ap.parse_args()
    if soxr is None:
        print("soxr is not installed: pip install soxr", file=sys.stderr)
        return 1
    pairs = PAIRS
    if args.pairs:
        pairs = [tuple(int(v) for v in p.split(":")) for p in args.pairs.split(",")]  # type: ignore[misc]
    secs = args.secs

    print("## Resampling side by side with soxr HQ (benchmarks/resample_bench.py)\n")
    print(
        f"- machine: {platform.machine()}, {platform.platform()}; Python {platform.python_version()}"
    )
    print("- versions: " + ", ".join(f"{p} {version(p)}" for p in ("remotemedia", "numpy", "soxr")))
    print(f"- {secs:.0f} s of music-like float32 audio; {CHUNK_MS} ms chunks when streamed\n")
    print(
        "| rate pair | channels | ours, node call (us/s) | soxr.resample HQ (us/s) | ratio "
        "| ours, Pipeline.stream (us/s) | soxr ResampleStream HQ (us/s) | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    qrows = []
    for rin, rout in pairs:
        for ch in (1, 2):
            times = speed(rin, rout, ch, secs, args.rounds)
            us = {k: v * 1e6 / secs for k, v in times.items()}
            print(
                f"| {rin} -> {rout} | {ch} | {us['ours']:.0f} | {us['soxr']:.0f} "
                f"| {us['ours'] / us['soxr']:.2f}x | {us['ours_stream']:.0f} "
                f"| {us['soxr_stream']:.0f} | {us['ours_stream'] / us['soxr_stream']:.2f}x |",
                flush=True,
            )
        qrows.append((rin, rout, *qualities(rin, rout)))
    kind = "alias (down) / image (up)"
    print()
    print(
        f"| rate pair | ours {kind} | ours gain at 0.875 x Nyquist "
        f"| soxr HQ {kind} | soxr HQ gain at 0.875 x Nyquist |"
    )
    print("|---|---|---|---|---|")
    for rin, rout, (oa, op), (sa, sp) in qrows:
        print(f"| {rin} -> {rout} | {oa:.1f} dB | {op:+.3f} dB | {sa:.1f} dB | {sp:+.3f} dB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
