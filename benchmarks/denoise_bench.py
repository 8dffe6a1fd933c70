"""DenoiseNode next to RNNoise in C (pyrnnoise) and spectral gating (noisereduce), in one run.

    apt-get install -y espeak-ng
    pip install pesq pystoi pyrnnoise noisereduce
    python benchmarks/denoise_bench.py [--seconds 60] [--snrs 0,5,10]

Speech: a track of English sentences synthesised with espeak-ng (benchmarks/vad_data.py's test
sentences and voices, its own seed) and the bundled recording examples/speech_48k.wav (real
speech), both at 16 kHz, the rate voice agents run at. Noise, made here: white, pink, babble
(other synthesised talkers), synthetic music and mains hum with clicks (vad_data.py's
generators), mixed at each SNR over the speech frames.

For each method, on each noisy file: wideband PESQ (ITU-T P.862.2, the `pesq` package) and STOI
(`pystoi`) against the clean speech, as gains over the noisy input's own scores; CPU seconds per
second of audio (process time, one thread); the latency each adds in a stream. pyrnnoise's
output is delayed (its frame, and its resampler): it is lined up with the input by
cross-correlation before scoring, so no method is penalised for delay here.

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
from remotemedia import DenoiseNode, Pipeline  # noqa: E402

RATE = 16000


def real_clip() -> np.ndarray:
    a = remotemedia.read(HERE.parent / "examples" / "speech_48k.wav", dtype="float32")
    return np.asarray(
        Pipeline("r").add_node(remotemedia.AudioResampleNode(target_rate=RATE)).run(a),
        dtype=np.float64,
    )


def noises(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "white": vad_data.white(n, rng),
        "pink": vad_data.coloured(n, rng, 1.0),
        "babble": vad_data.babble(n, rng),
        "music": vad_data.music(n, rng),
        "hum+clicks": vad_data.hum_clicks(n, rng),
    }


def find_lag(ref: np.ndarray, y: np.ndarray, max_lag: int = 4000) -> int:
    """How many samples `y` lags `ref` (cross-correlation peak)."""
    n = min(len(ref), len(y) - max_lag)
    c = np.correlate(y[: n + max_lag], ref[:n], mode="valid")
    return int(np.argmax(np.abs(c)))


def shifted(ref: np.ndarray, y: np.ndarray, lag: int) -> np.ndarray:
    """`y` moved back by `lag` samples, cut or padded to `ref`'s length."""
    out = np.zeros_like(ref)
    part = y[lag : lag + len(ref)]
    out[: len(part)] = part
    return out


def ours(x: np.ndarray) -> np.ndarray:
    p = Pipeline("dn").add_node(DenoiseNode())
    return np.asarray(p.run(x.astype(np.float32), sample_rate=RATE), dtype=np.float64)


def theirs_rnnoise(x: np.ndarray) -> np.ndarray:
    from pyrnnoise import RNNoise

    d = RNNoise(RATE)
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    frames = [f for _, f in d.denoise_chunk(pcm, partial=True)]
    y = np.concatenate(frames, axis=-1).reshape(-1).astype(np.float64) / 32768.0
    return y


def theirs_noisereduce(x: np.ndarray) -> np.ndarray:
    import noisereduce as nr

    return np.asarray(nr.reduce_noise(y=x, sr=RATE), dtype=np.float64)


METHODS = {
    "remotemedia DenoiseNode": ours,
    "pyrnnoise (RNNoise in C)": theirs_rnnoise,
    "noisereduce (spectral gating)": theirs_noisereduce,
}


def scores(clean: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from pesq import pesq
    from pystoi import stoi

    return float(pesq(RATE, clean, y, "wb")), float(stoi(clean, y, RATE, extended=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--snrs", default="0,5,10")
    args = ap.parse_args()
    snrs = [float(s) for s in args.snrs.split(",")]
    vad_data.SECONDS = args.seconds
    rng = np.random.default_rng(37)
    synthetic = vad_data.speech_track(vad_data.TEST_SENTENCES, ["en-us", "en-gb", "en-us+f3"], rng)
    clips = {"espeak-ng speech": synthetic, "recorded speech": real_clip()}

    import importlib.metadata as md

    versions = ", ".join(
        f"{p} {md.version(p)}" for p in ("pyrnnoise", "noisereduce", "pesq", "pystoi")
    )
    print(f"- versions: remotemedia {remotemedia.__version__}, {versions}")
    print(f"- load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")

    rows: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    cpu: dict[str, list[float]] = {m: [] for m in METHODS}
    lags: dict[str, set[int]] = {m: set() for m in METHODS}
    for clip_name, clean in clips.items():
        labels = vad_data.labels_of(clean)
        # Each method's delay, found once on the clean speech (where the correlation peak is
        # unambiguous) and applied to all its noisy runs.
        lag = {name: find_lag(clean, fn(clean)) for name, fn in METHODS.items()}
        for name in METHODS:
            lags[name].add(lag[name])
        for noise_name, noise in noises(len(clean), rng).items():
            for snr in snrs:
                noisy = vad_data.mix(clean, noise, labels, snr)
                peak = np.max(np.abs(noisy))
                if peak > 0.99:
                    noisy, c = noisy / peak * 0.99, clean / peak * 0.99
                else:
                    c = clean
                p0, s0 = scores(c, noisy)
                for name, fn in METHODS.items():
                    t = time.process_time()
                    y = fn(noisy)
                    cpu[name].append((time.process_time() - t) / (len(noisy) / RATE))
                    p, s = scores(c, shifted(noisy, y, lag[name]))
                    rows.setdefault((noise_name, name), []).append((p - p0, s - s0, p, p0))
        print(f"- done: {clip_name}", file=sys.stderr)

    print(
        f"### Speech in noise at {', '.join(f'{s:g}' for s in snrs)} dB SNR, 16 kHz "
        f"({len(clips)} clips: {', '.join(clips)}; {args.seconds} s of espeak-ng speech)\n"
    )
    print("| noise | method | PESQ-WB gain | STOI change | PESQ-WB (noisy) |")
    print("|---|---|---|---|---|")
    for noise_name in ("white", "pink", "babble", "music", "hum+clicks"):
        for name in METHODS:
            r = np.array(rows[(noise_name, name)])
            print(
                f"| {noise_name} | {name} | {r[:, 0].mean():+.2f} | {r[:, 1].mean():+.3f} "
                f"| {r[:, 2].mean():.2f} ({r[:, 3].mean():.2f}) |"
            )
    print("\n| method | CPU ms per audio second (median) | delay found (samples at 16 kHz) |")
    print("|---|---|---|")
    for name in METHODS:
        print(
            f"| {name} | {np.median(cpu[name]) * 1e3:.1f} | "
            f"{', '.join(str(v) for v in sorted(lags[name]))} |"
        )


if __name__ == "__main__":
    main()
