"""SpeechVADNode on the same audio at other input rates: do its decisions stay those of 16 kHz?

    pip install soxr
    python benchmarks/vad_data.py                  # makes benchmarks/vad_data/{test,dev,held}
    python benchmarks/vad_rates.py                 # dev and held, 8 and 11.025 kHz
    python benchmarks/vad_rates.py --splits test --rates 8000,22050,48000

Each file of a split (16 kHz, full band) is resampled with soxr (HQ) to each rate and run
through ``Pipeline.run`` with the node's defaults; below 16 kHz the copy has lost everything
above its Nyquist frequency, as telephone audio has. Per split and rate: the mean F1 over the
split's files (10 ms frames, as ``vad_bench.py`` scores them) next to the 16 kHz run's; the
share of 10 ms frames where the two runs decide the same; and how many of the 16 kHz run's
segment bounds have no bound of the other run within one engine frame (16 ms). With
``--telephone`` each copy is also band-passed to 300-3400 Hz, as telephone (G.711) audio is.
With ``--upsampled`` each copy is resampled back to 16 kHz (soxr HQ) and run at 16 kHz, as
audio a voice agent upsampled from a telephone call reaches the node: the input rate no
longer says the band is limited, the audio does. ``--upsampler linear`` upsamples by linear
interpolation (``np.interp``, as quick glue code does) instead, which leaves images of the
spectrum above the old Nyquist frequency.

    pip install onnxruntime && pip install --no-deps silero-vad
    python benchmarks/vad_rates.py --silero --splits test,dev,held

compares, on 8 kHz copies, Silero's own 8 kHz branch with its 16 kHz one: Silero on ONNX
Runtime at 16 kHz (the original), at 8 kHz (``sr=8000``: the model's 8 kHz network, 256-sample
windows) and at 16 kHz on the 8 kHz copy resampled back (soxr HQ), each with the package's
post-processing (as ``vad_bench.py``), and ``SpeechVADNode(engine="silero")`` on the original
and on the 8 kHz copy (which the node resamples to 16 kHz for the 16 kHz network). Mean F1
over the split's files, noisy conditions and all.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from remotemedia import Pipeline, SpeechVADNode
from vad_bench import (
    frames_from_segments,
    prf,
    read_wav,
    silero_probs,
    silero_session,
    silero_timestamps,
)

RATE = 16000
FRAME_MS = 16.0


def spans(x: np.ndarray, rate: int, **params: Any) -> list[tuple[float, float]]:
    """Segments of SpeechVADNode; the light engine (this study's subject) unless `params`
    name another."""
    params.setdefault("engine", "earshot")
    segs = Pipeline("speech_vad").add_node(SpeechVADNode(**params)).run(x, sample_rate=rate)
    return [(s["start_ms"], s["end_ms"]) for s in segs]


def upsample(y: np.ndarray, rate: int, how: str) -> np.ndarray:
    """`y` at `rate` brought to 16 kHz by soxr (HQ) or by linear interpolation."""
    if how == "soxr":
        return soxr.resample(y, rate, RATE, quality="HQ")
    n = round(y.size * RATE / rate)
    return np.interp(np.arange(n) / RATE, np.arange(y.size) / rate, y)


def silero_branches(data: Path, splits: list[str]) -> None:
    """The ``--silero`` table (see the module docs)."""
    sess = silero_session()

    def onnx_spans(f: np.ndarray, rate: int) -> list[tuple[float, float]]:
        # Both branches decide per 32 ms; the post-processing counts in 16 kHz samples.
        got = silero_timestamps(silero_probs(sess, f, rate), f.size * RATE // rate)
        return [(a / 16, b / 16) for a, b in got]

    systems: dict[str, Callable[[np.ndarray, np.ndarray], list[tuple[float, float]]]] = {
        "Silero (onnx), 16 kHz original": lambda x, _: onnx_spans(x, RATE),
        "Silero (onnx), 8 kHz copy, its 8 kHz branch": lambda _, y: onnx_spans(y, 8000),
        "Silero (onnx), 8 kHz copy resampled to 16 kHz": lambda _, y: onnx_spans(
            soxr.resample(y, 8000, RATE, quality="HQ").astype(np.float32), RATE
        ),
        'SpeechVADNode(engine="silero"), 16 kHz original': lambda x, _: spans(
            x, RATE, engine="silero"
        ),
        'SpeechVADNode(engine="silero"), 8 kHz copy': lambda _, y: spans(y, 8000, engine="silero"),
    }
    print("| split | system | mean F1, noisy | mean F1, all |")
    print("|---|---|---|---|")
    for split in splits:
        folder = data / split
        labels = np.load(folder / "labels.npy")
        files = sorted(folder.glob("*.wav"))
        if not files:
            raise SystemExit(f"no files in {folder}; run benchmarks/vad_data.py first")
        f1s: dict[str, list[tuple[str, float]]] = {k: [] for k in systems}
        for f in files:
            x = read_wav(f).astype(np.float32) / 32768.0
            y = soxr.resample(x, RATE, 8000, quality="HQ").astype(np.float32)
            for name, run in systems.items():
                pred = frames_from_segments(run(x, y), labels.size)
                f1s[name].append((f.stem, prf(pred, labels)[2]))
        for name, v in f1s.items():
            noisy = np.mean([f1 for stem, f1 in v if stem != "clean"])
            print(
                f"| {split} | {name} | {noisy:.3f} | {np.mean([f1 for _, f1 in v]):.3f} |",
                flush=True,
            )


def moved(ref: list[tuple[float, float]], got: list[tuple[float, float]]) -> int:
    """Bounds of `ref` with no bound of `got` within one engine frame."""
    a = np.array([t for s in ref for t in s])
    b = np.array([t for s in got for t in s])
    if a.size == 0:
        return 0
    if b.size == 0:
        return int(a.size)
    return int(np.sum(np.abs(a[:, None] - b[None, :]).min(axis=1) > FRAME_MS + 1e-6))


def telephone(y: np.ndarray, rate: int) -> np.ndarray:
    """A telephone channel's band, 300-3400 Hz (8th-order Butterworth band-pass)."""
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(4, [300, 3400], btype="bandpass", fs=rate, output="sos"), y)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).parent / "vad_data")
    ap.add_argument("--splits", default="dev,held")
    ap.add_argument("--rates", default="8000,11025")
    ap.add_argument(
        "--telephone",
        action="store_true",
        help="also band-pass each copy to 300-3400 Hz (a telephone channel, as G.711 audio)",
    )
    ap.add_argument(
        "--upsampled",
        action="store_true",
        help="resample each copy back to 16 kHz and run it at 16 kHz",
    )
    ap.add_argument(
        "--upsampler",
        choices=["soxr", "linear"],
        default="soxr",
        help="how --upsampled brings each copy back to 16 kHz (default soxr HQ)",
    )
    ap.add_argument(
        "--silero",
        action="store_true",
        help="Silero's 8 kHz branch against its 16 kHz one on 8 kHz copies (needs onnxruntime "
        "and silero-vad; ignores --rates)",
    )
    args = ap.parse_args()
    if args.upsampler != "soxr" and not args.upsampled:
        ap.error("--upsampler applies to --upsampled copies only")
    if args.silero and (args.telephone or args.upsampled):
        ap.error("--silero compares plain 8 kHz copies; leave out --telephone and --upsampled")
    if args.silero:
        silero_branches(args.data, args.splits.split(","))
        return
    rates = [int(r) for r in args.rates.split(",")]
    upsampled_note = ""
    if args.upsampled:
        upsampled_note = " -> 16000" + (" (linear)" if args.upsampler == "linear" else "")
    print(
        "| split | input rate | F1 | F1 at 16 kHz | frames decided as at 16 kHz | bounds moved > 1 frame |"
    )
    print("|---|---|---|---|---|---|")
    for split in args.splits.split(","):
        folder = args.data / split
        labels = np.load(folder / "labels.npy")
        files = sorted(folder.glob("*.wav"))
        if not files:
            raise SystemExit(f"no files in {folder}; run benchmarks/vad_data.py first")
        x16 = {f: read_wav(f).astype(np.float32) / 32768.0 for f in files}
        ref = {f: spans(x, RATE) for f, x in x16.items()}
        n = labels.size
        f1_ref = np.mean([prf(frames_from_segments(ref[f], n), labels)[2] for f in files])
        for rate in rates:
            f1s, same, bounds, total = [], [], 0, 0
            for f in files:
                y = soxr.resample(x16[f], RATE, rate, quality="HQ")
                if args.telephone:
                    y = telephone(y, rate)
                run_rate = rate
                if args.upsampled:
                    y, run_rate = upsample(y, rate, args.upsampler), RATE
                got = spans(y.astype(np.float32), run_rate)
                pred = frames_from_segments(got, n)
                f1s.append(prf(pred, labels)[2])
                same.append(np.mean(pred == frames_from_segments(ref[f], n)))
                bounds += moved(ref[f], got)
                total += 2 * len(ref[f])
            print(
                f"| {split} | {rate}{' (300-3400 Hz)' if args.telephone else ''}"
                f"{upsampled_note} | {np.mean(f1s):.3f} | {f1_ref:.3f} | "
                f"{np.mean(same):.3f} | {bounds} of {total} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
