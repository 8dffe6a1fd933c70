"""The everyday DSP nodes (issue 13) next to scipy.signal, pyloudnorm and pedalboard, in one
process and one run.

    pip install ".[bench]"      # scipy, pyloudnorm, pedalboard (each optional)
    python benchmarks/dsp_bench.py

Prints a markdown table per task: time per second of audio (10 s clips, 48 kHz), ours first,
through the Python API (a whole-clip call, so the numpy <-> Rust hand-over is included).
Peers run the closest operation they have; where it is not the same computation the notes
say so. Timings are medians of interleaved rounds (see compare.py). Lower is better.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare import Table, music, version
from remotemedia import (
    BiquadNode,
    GainNode,
    HighPassNode,
    LoudnessNormalizeNode,
    LowPassNode,
)

try:
    from scipy import signal
except ImportError:  # pragma: no cover - optional peer
    signal = None
try:
    import pyloudnorm
except ImportError:  # pragma: no cover - optional peer
    pyloudnorm = None
try:
    import pedalboard
except ImportError:  # pragma: no cover - optional peer
    pedalboard = None

RATE = 48000
SECS = 10.0
US_PER_SEC = 1e6 / SECS  # seconds per clip -> microseconds per second of audio


def filter_section(x: np.ndarray) -> str:
    table = Table(
        "Butterworth low-pass, order 4, 1 kHz (10 s mono f32 at 48 kHz)",
        "us per s of audio",
        "scipy sosfilt",
    )
    ours = LowPassNode(cutoff_hz=1000.0, order=4)
    impls: list[tuple[str, Any, str]] = [("remotemedia LowPassNode", lambda: ours(x, RATE), "")]
    if signal is not None:
        sos = signal.butter(4, 1000.0, fs=RATE, output="sos")
        impls.append(("scipy sosfilt", lambda: signal.sosfilt(sos, x), "f32 in, f64 out"))
        x64 = x.astype(np.float64)
        impls.append(("scipy sosfilt (f64 in)", lambda: signal.sosfilt(sos, x64), ""))
    if pedalboard is not None:
        board = pedalboard.Pedalboard([pedalboard.LowpassFilter(cutoff_frequency_hz=1000.0)])
        impls.append(
            (
                "pedalboard LowpassFilter",
                lambda: board(x, RATE),
                "first-order (6 dB/oct), not order 4",
            )
        )
    table.measure(impls)
    return table.render(US_PER_SEC)


def eq_section(x: np.ndarray) -> str:
    table = Table(
        "Peaking EQ +6 dB at 1 kHz, Q 1 (one biquad; 10 s mono f32 at 48 kHz)",
        "us per s of audio",
        "scipy sosfilt",
    )
    ours = BiquadNode("peaking", 1000.0, q=1.0, gain_db=6.0)
    impls: list[tuple[str, Any, str]] = [("remotemedia BiquadNode", lambda: ours(x, RATE), "")]
    if signal is not None:
        sos = signal.butter(2, 1000.0, fs=RATE, output="sos")  # same cost: one section
        impls.append(("scipy sosfilt", lambda: signal.sosfilt(sos, x), "one section, f64 out"))
    if pedalboard is not None:
        board = pedalboard.Pedalboard(
            [pedalboard.PeakFilter(cutoff_frequency_hz=1000.0, gain_db=6.0, q=1.0)]
        )
        impls.append(("pedalboard PeakFilter", lambda: board(x, RATE), "JUCE biquad"))
    table.measure(impls)
    return table.render(US_PER_SEC)


def dc_section(x2: np.ndarray) -> str:
    table = Table(
        "DC removal, 20 Hz order 2 high-pass (10 s stereo f32 at 48 kHz)",
        "us per s of audio",
        "scipy sosfilt",
    )
    ours = HighPassNode(preset="dc_removal")
    impls: list[tuple[str, Any, str]] = [("remotemedia HighPassNode", lambda: ours(x2, RATE), "")]
    if signal is not None:
        sos = signal.butter(2, 20.0, "highpass", fs=RATE, output="sos")
        impls.append(("scipy sosfilt", lambda: signal.sosfilt(sos, x2, axis=0), "f64 out"))
    if pedalboard is not None:
        board = pedalboard.Pedalboard([pedalboard.HighpassFilter(cutoff_frequency_hz=20.0)])
        x2t = np.ascontiguousarray(x2.T)
        impls.append(
            (
                "pedalboard HighpassFilter",
                lambda: board(x2t, RATE),
                "first-order (6 dB/oct), not order 2",
            )
        )
    table.measure(impls)
    return table.render(US_PER_SEC)


def gain_section(x: np.ndarray) -> str:
    table = Table("Gain -6 dB (10 s mono f32 at 48 kHz)", "us per s of audio", "numpy x * g")
    ours = GainNode(db=-6.0)
    g = np.float32(10 ** (-6 / 20))
    impls: list[tuple[str, Any, str]] = [
        ("remotemedia GainNode", lambda: ours(x, RATE), "computed in f64, rounded once"),
        ("numpy x * g", lambda: x * g, "f32 arithmetic"),
    ]
    if pedalboard is not None:
        board = pedalboard.Pedalboard([pedalboard.Gain(gain_db=-6.0)])
        impls.append(("pedalboard Gain", lambda: board(x, RATE), ""))
    table.measure(impls)
    return table.render(US_PER_SEC)


def loudness_section(x2: np.ndarray, rate: int = RATE) -> str:
    note = (
        "with true peak (4x)"
        if rate >= 44100
        else "measured upsampled x3; true peak (4x) at 16 kHz"
    )
    table = Table(
        f"Loudness normalise to -23 LUFS (measure + scale; 10 s stereo f32 at {rate / 1000:g} kHz)",
        "us per s of audio",
        "pyloudnorm",
    )
    ours = LoudnessNormalizeNode(target_lufs=-23.0, true_peak_db=0.0)
    impls: list[tuple[str, Any, str]] = [
        ("remotemedia LoudnessNormalizeNode", lambda: ours(x2, rate), note),
    ]
    if pyloudnorm is not None:
        meter = pyloudnorm.Meter(rate)

        def pyln() -> np.ndarray:
            loud = meter.integrated_loudness(x2)
            return np.asarray(pyloudnorm.normalize.loudness(x2, loud, -23.0))

        impls.append(("pyloudnorm", pyln, "no true peak"))
    table.measure(impls, min_time=0.2)
    return table.render(US_PER_SEC)


def main() -> int:
    print("## DSP nodes side by side (benchmarks/dsp_bench.py)\n")
    print(
        "- versions: "
        + ", ".join(
            f"{p} {version(p)}"
            for p in ("remotemedia", "numpy", "scipy", "pyloudnorm", "pedalboard")
        )
    )
    print()
    x = music(RATE, SECS)
    x2 = np.stack([x, np.roll(x, 1000)], axis=1)
    x16 = music(16000, SECS)
    x2_16k = np.stack([x16, np.roll(x16, 333)], axis=1)
    for section in (
        filter_section(x),
        eq_section(x),
        dc_section(x2),
        gain_section(x),
        loudness_section(x2),
        loudness_section(x2_16k, 16000),
    ):
        print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
