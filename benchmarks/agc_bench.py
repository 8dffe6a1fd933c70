"""AutoGainNode next to WebRTC's audio processing module (LiveKit's `rtc.AudioProcessingModule`,
auto_gain_control only), in one run.

    apt-get install -y espeak-ng
    pip install livekit
    python benchmarks/agc_bench.py [--seconds 60]

Speech: espeak-ng sentences (benchmarks/vad_data.py's test sentences, voices and pauses, its own
seed) at 16 kHz, scaled so its level (power mean over the windows within 30 dB of the loudest)
is -45, -35, -25, -15 and -5 dBFS; the same with pink noise at 10 dB SNR; and noise alone
(white and pink at -50 and -30 dBFS). Reported: the output's speech level over the second half
(after the controllers settle), how far noise alone was raised, and CPU per second of audio.

Prints a markdown report.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import remotemedia  # noqa: E402
import vad_data  # noqa: E402
from remotemedia import AutoGainNode, Pipeline  # noqa: E402

RATE = 16000
W = 512
TARGET = -20.0


def speech_level_db(reference: np.ndarray, x: np.ndarray) -> float:
    n = min(len(reference), len(x)) // W * W
    r = (reference[:n].reshape(-1, W) ** 2).mean(axis=1)
    y = (x[:n].reshape(-1, W) ** 2).mean(axis=1)
    active = r > r.max() * 1e-3
    return float(10 * np.log10(y[active].mean()))


def ours(x: np.ndarray) -> np.ndarray:
    p = Pipeline("agc").add_node(AutoGainNode(target_db=TARGET))
    return np.asarray(p.run(x.astype(np.float32), sample_rate=RATE), dtype=np.float64)


def webrtc(x: np.ndarray) -> np.ndarray:
    from livekit import rtc

    apm = rtc.AudioProcessingModule(auto_gain_control=True)
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    step = RATE // 100
    out = np.zeros(len(pcm) // step * step, dtype=np.int16)
    for i in range(0, len(out), step):
        frame = rtc.AudioFrame(pcm[i : i + step].tobytes(), RATE, 1, step)
        apm.process_stream(frame)
        out[i : i + step] = np.frombuffer(frame.data, dtype=np.int16)
    return out.astype(np.float64) / 32768.0


METHODS = {"remotemedia AutoGainNode (target -20)": ours, "WebRTC APM AGC (livekit)": webrtc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    args = ap.parse_args()
    vad_data.SECONDS = args.seconds
    rng = np.random.default_rng(41)
    clean = vad_data.speech_track(vad_data.TEST_SENTENCES, ["en-us", "en-gb", "en-us+f3"], rng)
    level = speech_level_db(clean, clean)
    pink = vad_data.coloured(len(clean), rng, 1.0)
    pink /= np.sqrt(np.mean(pink**2))

    import importlib.metadata as md

    print(f"- versions: remotemedia {remotemedia.__version__}, livekit {md.version('livekit')}")
    print(f"- load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
    half = len(clean) // 2
    cpu: dict[str, list[float]] = {m: [] for m in METHODS}

    def run(name: str, x: np.ndarray) -> np.ndarray:
        t = time.process_time()
        y = METHODS[name](x)
        cpu[name].append((time.process_time() - t) / (len(x) / RATE))
        return y

    print(f"### Speech level out (second half of {args.seconds} s of espeak-ng speech, 16 kHz)\n")
    print("| input speech level | noise | " + " | ".join(METHODS) + " |")
    print("|---|---|" + "---|" * len(METHODS))
    for noisy in (False, True):
        for in_db in (-45, -35, -25, -15, -5):
            x = clean * 10 ** ((in_db - level) / 20)
            if noisy:
                x = x + pink * 10 ** ((in_db - 10) / 20)
            cells = []
            for name in METHODS:
                y = run(name, x)
                cells.append(f"{speech_level_db(clean[half:], y[half:]):.1f} dBFS")
            noise = "pink at 10 dB SNR" if noisy else "none"
            print(f"| {in_db} dBFS | {noise} | " + " | ".join(cells) + " |")
    print("\n### Noise alone: how far it is raised (whole file)\n")
    print("| noise | " + " | ".join(METHODS) + " |")
    print("|---|" + "---|" * len(METHODS))
    for kind in ("white", "pink"):
        for noise_db in (-50, -30):
            base = rng.standard_normal(len(clean)) if kind == "white" else pink
            x = base / np.sqrt(np.mean(base**2)) * 10 ** (noise_db / 20)
            cells = []
            for name in METHODS:
                y = run(name, x)
                n = min(len(x), len(y))
                cells.append(f"{20 * np.log10(np.std(y[:n]) / np.std(x[:n])):+.1f} dB")
            print(f"| {kind} at {noise_db} dBFS | " + " | ".join(cells) + " |")
    print("\n| method | CPU ms per audio second (median) |")
    print("|---|---|")
    for name in METHODS:
        print(f"| {name} | {np.median(cpu[name]) * 1e3:.2f} |")


if __name__ == "__main__":
    main()
