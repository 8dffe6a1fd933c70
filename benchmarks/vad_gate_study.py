"""What the SpeechVADNode energy gate could be instead: a study, not a benchmark table.

    python benchmarks/vad_data.py            # the dev, held and test splits
    python benchmarks/vad_gate_study.py      # ~3 min

The network's raw probabilities (``SpeechVADNode(emit="probabilities", min_snr_db=0)``, the gate
off) are combined in numpy with candidate gates and a frame-level copy of the node's
post-processing (threshold 0.5, end threshold 0.35, 128 ms minimum speech, 160 ms minimum
silence, 32 ms padding). The first row is a copy of the node's own gate (energy above 150 Hz,
48 ms mean, 2 dB over the minimum of the last 2 s) and reproduces its benchmark table exactly.
Prints, per split, the mean F1 over the noisy files and the false-alarm rate far from speech
at the lowest SNR (0 dB; 2 dB in dev). Since the voicing rows were adopted (min_voicing 0.25),
the node's own default is the "or voicing 0.25" row; "node's gate" is min_voicing=None.
"""

from __future__ import annotations

import sys
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent))

from remotemedia import Pipeline, SpeechVADNode
from vad_bench import far_mask, frames_from_segments, prf

RATE = 16000
FRAME = 256  # the engine's 16 ms frame
DATA = Path(__file__).parent / "vad_data"
Stat = Callable[[np.ndarray, int], np.ndarray]


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def raw_probs(x: np.ndarray) -> np.ndarray:
    pipe = Pipeline("p").add_node(
        SpeechVADNode(emit="probabilities", engine="earshot", min_snr_db=0)
    )
    return np.array([o["probability"] for o in pipe.run(x, sample_rate=RATE)])


def mel_bands(x: np.ndarray, n: int) -> np.ndarray:
    """40 mel band powers per frame (768-sample Hann window ending at the frame, as the engine)."""
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(0, mel(8000), 42) / 2595) - 1)
    freqs = np.fft.rfftfreq(1024, 1 / RATE)
    fb = np.array(
        [
            np.clip(np.minimum((freqs - a) / (b - a), (c - freqs) / (c - b)), 0, None)
            for a, b, c in zip(edges, edges[1:], edges[2:], strict=False)
        ]
    )
    padded = np.concatenate([np.zeros(512), x / 32768.0])
    idx = np.arange(n)[:, None] * FRAME + np.arange(768)[None, :]
    spec = np.abs(np.fft.rfft(padded[idx] * np.hanning(768), 1024, axis=1)) ** 2
    return spec @ fb.T


def highpass_energy(x: np.ndarray, n: int) -> np.ndarray:
    sos = signal.butter(2, 150, "highpass", fs=RATE, output="sos")
    y = signal.sosfilt(sos, x / 32768.0)
    return (y[: n * FRAME].reshape(n, FRAME) ** 2).mean(1)


def over_floor(power: np.ndarray) -> np.ndarray:
    """dB over the noise floor: 48 ms mean power against the minimum of the last 2 s."""
    prev1 = np.concatenate([power[:1], power[:-1]])
    prev2 = np.concatenate([power[:1], power[:1], power[:-2]])
    db = 10 * np.log10((power + prev1 + prev2) / 3 + 1e-12)
    floor = np.array([db[max(0, j - 124) : j + 1].min(axis=0) for j in range(db.shape[0])])
    return db - floor


def broadband(x: np.ndarray, n: int) -> np.ndarray:
    return over_floor(highpass_energy(x, n))


def band_sum(lo: int, hi: int) -> Stat:
    return lambda x, n: over_floor(mel_bands(x, n)[:, lo:hi].sum(1))


def sub_bands_mean(x: np.ndarray, n: int) -> np.ndarray:
    b = mel_bands(x, n)
    groups = [(2, 10), (10, 20), (20, 30), (30, 40)]
    return over_floor(np.stack([b[:, a:c].sum(1) for a, c in groups], 1)).mean(1)


def per_band_ltsd(x: np.ndarray, n: int) -> np.ndarray:
    d = over_floor(mel_bands(x, n)[:, 3:])
    return 10 * np.log10(np.mean(10 ** (d / 10), axis=1))


def voicing(x: np.ndarray, n: int) -> np.ndarray:
    """The node's voicing over its floor: 150 Hz high-pass, 1 kHz 4th-order low-pass, every
    4th sample; per frame the largest normalised autocorrelation of the last 80 samples at lags
    10..=50; mean of 3 frames; minus the minimum of the last 125 frames."""
    hp = signal.butter(2, 150, "highpass", fs=RATE, output="sos")
    lp = signal.butter(4, 1000, "lowpass", fs=RATE, output="sos")
    d = signal.sosfilt(lp, signal.sosfilt(hp, x / 32768.0))[3::4]
    width, lag_max = 80, 50
    padded = np.concatenate([np.zeros(width + lag_max), d])
    ends = (np.arange(n) + 1) * (FRAME // 4) + width + lag_max
    idx = ends[:, None] - width + np.arange(width)[None, :]
    a = padded[idx]
    best = np.zeros(n)
    for lag in range(10, lag_max + 1):
        b = padded[idx - lag]
        r = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1) + 1e-20)
        best = np.maximum(best, r)
    mean = np.convolve(best, np.ones(3) / 3, mode="full")[:n]
    mean[:2] = [best[0], (2 * best[0] + best[1]) / 3][: min(2, n)]
    return mean - np.array([mean[max(0, j - 124) : j + 1].min() for j in range(n)])


def energy_or_voicing(min_voicing: float) -> Stat:
    """1 where the node's energy gate (2 dB) or its voicing (`min_voicing`) passes, else 0."""
    return lambda x, n: ((broadband(x, n) >= 2.0) | (voicing(x, n) >= min_voicing)).astype(float)


def held_max(s: np.ndarray, frames: int) -> np.ndarray:
    """The largest value of the last `frames` frames (a hangover on the gate statistic)."""
    out = s.copy()
    for k in range(1, frames):
        out[k:] = np.maximum(out[k:], s[:-k])
    return out


def wiener_denoise(x: np.ndarray) -> np.ndarray:
    """A textbook noise-suppression front end: 512-point STFT, noise power from the minimum
    of the smoothed power over the last 1.5 s (x1.5 for its bias), gain 1 - N/P, floor 0.05."""
    _, _, z = signal.stft(x, fs=RATE, nperseg=512, noverlap=256)
    power = np.abs(z) ** 2
    smooth = signal.lfilter([0.3], [1, -0.7], power, axis=1)
    span = int(1.5 * RATE / 256)
    noise = np.stack(
        [smooth[:, max(0, j - span) : j + 1].min(axis=1) for j in range(smooth.shape[1])], 1
    )
    gain = np.maximum(1 - 1.5 * noise / np.maximum(power, 1e-12), 0.05)
    _, y = signal.istft(z * gain, fs=RATE, nperseg=512, noverlap=256)
    return np.clip(y[: x.size], -32768, 32767).astype(np.int16)


def segments(
    p: np.ndarray, s: np.ndarray, t_open: float, t_cont: float, hang: int = 1
) -> list[tuple[int, int]]:
    """The node's post-processing on 16 ms frames, the gate applied to opening (`t_open`) and
    to continuing (`t_cont`, on the gate statistic held for `hang` frames); returns
    (start_ms, end_ms)."""
    held = held_max(s, hang)
    segs, start, last, quiet = [], None, 0, 0
    for j in range(p.size):
        if start is None:
            if p[j] >= 0.5 and s[j] >= t_open:
                start, last, quiet = j, j, 0
        elif p[j] >= 0.35 and held[j] >= t_cont:
            last, quiet = j, 0
        else:
            quiet += 1
            if quiet >= 10:
                if last + 1 - start >= 8:
                    segs.append((start, last + 1))
                start = None
    if start is not None and last + 1 - start >= 8:
        segs.append((start, last + 1))
    out: list[tuple[int, int]] = []
    for a, b in segs:
        a, b = max(0, a - 2), b + 2
        if out and a < out[-1][1]:
            a = out[-1][1]
        out.append((a, b))
    return [(a * 16, b * 16) for a, b in out]


def main() -> None:
    # (name, gate statistic, dB to open, dB to continue, gate hangover in frames, network fed
    # the Wiener-denoised audio instead of the input)
    gates: list[tuple[str, Stat, float, float, int, bool]] = [
        ("node's gate: >150 Hz energy, 2 dB", broadband, 2.0, 2.0, 1, False),
        ("4 sub-band floors, mean dB, 2 dB", sub_bands_mean, 2.0, 2.0, 1, False),
        ("37 mel-band floors, LTSD, 4 dB", per_band_ltsd, 4.0, 4.0, 1, False),
        ("150-3000 Hz band energy, 2 dB", band_sum(3, 27), 2.0, 2.0, 1, False),
        ("node's gate, 1 dB to continue", broadband, 2.0, 1.0, 1, False),
        ("node's gate held 64 ms to continue", broadband, 2.0, 2.0, 4, False),
        ("node's gate held 256 ms to continue", broadband, 2.0, 2.0, 16, False),
        *(
            (f"node's gate or voicing {t} over its floor", energy_or_voicing(t), 0.5, 0.5, 1, False)
            for t in (0.2, 0.25, 0.3, 0.35, 0.4)
        ),
        ("network on Wiener-denoised audio, no gate", broadband, -1e9, -1e9, 1, True),
        ("network on Wiener-denoised audio, node's gate", broadband, 2.0, 2.0, 1, True),
    ]
    splits = {}
    for split in ("dev", "held", "test"):
        folder = DATA / split
        labels = np.load(folder / "labels.npy")
        files = []
        for path in sorted(folder.glob("*.wav")):
            x = read_wav(path).astype(np.float64)
            probs = raw_probs(read_wav(path))
            denoised = raw_probs(wiener_denoise(x))
            files.append((path.stem, x, probs, denoised, labels[: x.size // 160]))
        splits[split] = files
    print("| gate | " + " | ".join(f"{s} F1 / far FA at lowest SNR" for s in splits) + " |")
    print("|---|" + "---|" * len(splits))
    for name, stat, t_open, t_cont, hang, on_denoised in gates:
        cells = []
        for files in splits.values():
            f1s, fas = [], []
            lowest = min(int(c.split("_")[1][:-2]) for c, *_ in files if c != "clean")
            for cond, x, probs, denoised, ref in files:
                p = denoised if on_denoised else probs
                spans = segments(p, stat(x, probs.size), t_open, t_cont, hang)
                pred = frames_from_segments(spans, ref.size)
                if cond != "clean":
                    f1s.append(prf(pred, ref)[2])
                if cond.endswith(f"_{lowest}dB"):
                    fas.append(f"{cond.split('_')[0]} {pred[far_mask(ref)].mean():.2f}")
            cells.append(f"**{np.mean(f1s):.3f}** ({', '.join(fas)})")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
