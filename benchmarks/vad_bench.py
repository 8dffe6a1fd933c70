"""Voice-activity detectors side by side on the labelled speech-in-noise set.

    apt-get install -y espeak-ng
    pip install webrtcvad-wheels onnxruntime && pip install --no-deps silero-vad
    python benchmarks/vad_data.py                  # makes benchmarks/vad_data/{test,dev}
    python benchmarks/vad_bench.py                 # the table in docs/benchmarks.md
    python benchmarks/vad_bench.py --split music    # music, tones, TV-like sound, quiet copies
    python benchmarks/vad_bench.py --split dev --speech-vad '{"min_silence_ms": 240}'

Systems, each with its documented defaults:
- SpeechVADNode(engine="earshot") (ours, earshot's network with the energy/voicing gate)
  through ``Pipeline.run``;
- SpeechVADNode(engine="silero") (the same node with Silero VAD v6 as its network, run by the
  runtime in Rust with its bundled weights);
- VADNode (ours, energy gate, threshold -30 dBFS);
- webrtcvad mode 3 on 10 ms frames (its own frame decisions);
- Silero VAD (the ``silero-vad`` package's ONNX model on ``onnxruntime``, one thread), 512-sample
  windows with its 64-sample context, then its ``get_speech_timestamps`` post-processing with
  the package's defaults (reimplemented here without torch).

Scores: precision, recall and F1 of speech over 10 ms frames (a frame is speech for a
segment-based system when its centre lies in a segment), per condition and averaged over the
noisy conditions; false alarms on non-speech frames more than 0.5 s from any speech, for
every noise kind, worst of its files at 0-10 dB SNR (and each at 0 dB);
CPU time (``time.process_time``) per second of audio over the whole split, for whole files and
for 20 ms chunks streamed through ``Pipeline.stream`` (every measure once per round, best of
``--cpu-rounds``, with each system's ratio to webrtcvad's); and the decision latency of
SpeechVADNode's ``speech_start`` in a 20 ms-chunk stream.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import platform
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from remotemedia import Pipeline, SpeechVADNode, VADNode
from remotemedia.nodes.speech import silero_model_path as silero_weights_file

RATE = 16000
FRAME_MS = 10
FAR_MS = 500

try:
    import webrtcvad
except ImportError:  # pragma: no cover - optional peer
    webrtcvad = None
try:
    import onnxruntime as ort
except ImportError:  # pragma: no cover - optional peer
    ort = None


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def scaled(x: np.ndarray, gain_db: float) -> np.ndarray:
    """int16 samples `gain_db` dB louder (or quieter), rounded and clipped to int16."""
    if gain_db == 0.0:
        return x
    y = np.round(x.astype(np.float64) * 10 ** (gain_db / 20))
    return np.clip(y, -32768, 32767).astype(np.int16)


def frames_from_segments(spans: list[tuple[float, float]], n: int) -> np.ndarray:
    """10 ms frame decisions: speech when the frame's centre lies in a segment."""
    centres = np.arange(n) * FRAME_MS + FRAME_MS / 2
    out = np.zeros(n, dtype=np.uint8)
    for a, b in spans:
        out[(centres >= a) & (centres < b)] = 1
    return out


# --- systems -------------------------------------------------------------------------------


def speech_vad(params: dict[str, Any]) -> Callable[[np.ndarray, int], np.ndarray]:
    pipe = Pipeline("speech_vad").add_node(SpeechVADNode(**params))

    def run(x: np.ndarray, n: int) -> np.ndarray:
        segs = pipe.run(x, sample_rate=RATE)
        return frames_from_segments([(s["start_ms"], s["end_ms"]) for s in segs], n)

    return run


def energy_vad() -> Callable[[np.ndarray, int], np.ndarray]:
    pipe = Pipeline("vad").add_node(VADNode(threshold=-30.0))

    def run(x: np.ndarray, n: int) -> np.ndarray:
        segs = pipe.run(x, sample_rate=RATE)
        return frames_from_segments([(s.start_ms, s.end_ms) for s in segs], n)

    return run


def webrtc_vad() -> Callable[[np.ndarray, int], np.ndarray]:
    assert webrtcvad is not None
    vad = webrtcvad.Vad(3)
    step = RATE * FRAME_MS // 1000

    def run(x: np.ndarray, n: int) -> np.ndarray:
        raw = x.tobytes()
        out = np.zeros(n, dtype=np.uint8)
        for i in range(min(n, x.size // step)):
            out[i] = vad.is_speech(raw[2 * i * step : 2 * (i + 1) * step], RATE)
        return out

    return run


def silero_model_path() -> Path:
    """The silero-vad package's own ``silero_vad.onnx`` (next to the file our engine reads)."""
    weights = silero_weights_file()
    assert weights is not None, "pip install --no-deps silero-vad (version 6 or later)"
    return weights.with_name("silero_vad.onnx")


def silero_timestamps(
    probs: list[float],
    n_samples: int,
    threshold: float = 0.5,
    min_speech_ms: int = 250,
    min_silence_ms: int = 100,
    pad_ms: int = 30,
) -> list[tuple[int, int]]:
    """``silero_vad.get_speech_timestamps_from_probs`` with its defaults (no max length), on
    the probabilities of 512-sample windows at 16 kHz (or 256 at 8 kHz: the same 32 ms; give
    `n_samples` at 16 kHz then), in 16 kHz samples."""
    win = 512
    min_speech = RATE * min_speech_ms / 1000
    min_silence = RATE * min_silence_ms / 1000
    pad = RATE * pad_ms / 1000
    neg = max(threshold - 0.15, 0.01)
    triggered, temp_end, start = False, 0, 0
    speeches: list[list[int]] = []
    for i, p in enumerate(probs):
        cur = win * i
        if p >= threshold and temp_end:
            temp_end = 0
        if p >= threshold and not triggered:
            triggered, start = True, cur
            continue
        if p < neg and triggered:
            if not temp_end:
                temp_end = cur
            if cur - temp_end < min_silence:
                continue
            if temp_end - start > min_speech:
                speeches.append([start, temp_end])
            triggered, temp_end = False, 0
    if triggered and n_samples - start > min_speech:
        speeches.append([start, n_samples])
    for i, s in enumerate(speeches):
        if i == 0:
            s[0] = int(max(0, s[0] - pad))
        if i != len(speeches) - 1:
            gap = speeches[i + 1][0] - s[1]
            if gap < 2 * pad:
                s[1] += int(gap // 2)
                speeches[i + 1][0] = int(max(0, speeches[i + 1][0] - gap // 2))
            else:
                s[1] = int(min(n_samples, s[1] + pad))
                speeches[i + 1][0] = int(max(0, speeches[i + 1][0] - pad))
        else:
            s[1] = int(min(n_samples, s[1] + pad))
    return [(a, b) for a, b in speeches]


def silero_session() -> Any:
    """Silero's own ``silero_vad.onnx`` on ONNX Runtime, one thread."""
    assert ort is not None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(
        str(silero_model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
    )


def silero_probs(sess: Any, f: np.ndarray, rate: int = RATE) -> list[float]:
    """Silero's probability per window of float audio at 16 kHz (512-sample windows with the
    previous 64 samples as context) or 8 kHz (its own 8 kHz branch: 256 and 32), as the
    package's ``OnnxWrapper`` feeds them."""
    win, ctx = {16000: (512, 64), 8000: (256, 32)}[rate]
    sr = np.array(rate, dtype=np.int64)
    state = np.zeros((2, 1, 128), dtype=np.float32)
    context = np.zeros((1, ctx), dtype=np.float32)
    probs = []
    for i in range(0, f.size, win):
        chunk = f[i : i + win].astype(np.float32)
        if chunk.size < win:
            chunk = np.pad(chunk, (0, win - chunk.size))
        inp = np.concatenate([context, chunk[None, :]], axis=1)
        out, state = sess.run(None, {"input": inp, "state": state, "sr": sr})
        context = inp[:, -ctx:]
        probs.append(float(out[0, 0]))
    return probs


def silero_vad() -> Callable[[np.ndarray, int], np.ndarray]:
    sess = silero_session()

    def run(x: np.ndarray, n: int) -> np.ndarray:
        f = x.astype(np.float32) / 32768.0
        spans = silero_timestamps(silero_probs(sess, f), f.size)
        return frames_from_segments([(a / 16, b / 16) for a, b in spans], n)

    return run


# --- scoring -------------------------------------------------------------------------------


def prf(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float, float]:
    tp = float(np.sum((pred == 1) & (ref == 1)))
    fp = float(np.sum((pred == 1) & (ref == 0)))
    fn = float(np.sum((pred == 0) & (ref == 1)))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def far_mask(ref: np.ndarray) -> np.ndarray:
    """Non-speech frames more than FAR_MS from any speech frame."""
    k = FAR_MS // FRAME_MS
    near = np.convolve(ref.astype(float), np.ones(2 * k + 1), mode="same") > 0
    return ~near


def cpu_per_second(fn: Callable[[], Any], audio_secs: float, repeat: int = 3) -> float:
    """Best of `repeat` process-time measurements, in microseconds per second of audio."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best / audio_secs * 1e6


def stream_chunks(pipe: Pipeline, x: np.ndarray, chunk: int) -> list[Any]:
    outs: list[Any] = []
    with pipe.stream(sample_rate=RATE, channels=1) as s:
        for i in range(0, x.size, chunk):
            s.send(x[i : i + chunk])
            outs.extend(s.poll())
        outs.extend(s.close())
    return outs


def start_latency(params: dict[str, Any], x: np.ndarray, ref: np.ndarray) -> list[float]:
    """For each labelled onset after >= 300 ms without speech: ms from the onset until a
    ``speech_start`` at or before it (padding included) comes out of a 20 ms-chunk stream."""
    pipe = Pipeline("lat").add_node(SpeechVADNode(**{**params, "emit": "events"}))
    chunk = RATE // 50
    starts: list[tuple[float, float]] = []  # (start_ms reported, stream ms when emitted)
    with pipe.stream(sample_rate=RATE, channels=1) as s:
        for i in range(0, x.size, chunk):
            s.send(x[i : i + chunk])
            now = (i + chunk) / RATE * 1000
            for out in s.poll():
                for e in out.data:
                    if e["event"] == "speech_start":
                        starts.append((e["start_ms"], now))
        s.close()
    onsets = [
        i * FRAME_MS for i in range(30, ref.size) if ref[i] == 1 and not ref[i - 30 : i].any()
    ]
    lat = []
    for on in onsets:
        # The first start reported within 300 ms of the onset, whenever it was emitted.
        hits = [emitted for start, emitted in starts if on - 300 <= start <= on + 300]
        if hits:
            lat.append(min(hits) - on)
    return lat


def versions() -> str:
    out = [f"python {platform.python_version()}", f"remotemedia {md.version('remotemedia')}"]
    for pkg in ("numpy", "webrtcvad-wheels", "onnxruntime", "silero-vad"):
        try:
            out.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            out.append(f"{pkg} (not installed)")
    return ", ".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).parent / "vad_data")
    ap.add_argument("--split", default="test", choices=["test", "dev", "held", "music"])
    ap.add_argument(
        "--speech-vad", default="{}", help='SpeechVADNode(engine="earshot") params as JSON'
    )
    ap.add_argument(
        "--silero-vad", default="{}", help='SpeechVADNode(engine="silero") params as JSON'
    )
    ap.add_argument(
        "--gain-db",
        type=float,
        default=0.0,
        help="scale every file by this many dB first (int16, clipped): the same speech and "
        "noise at another level",
    )
    ap.add_argument("--only", default="", help="comma-separated system names")
    ap.add_argument("--no-cpu", action="store_true")
    ap.add_argument(
        "--cpu-rounds", type=int, default=3, help="rounds of the CPU measures (best of)"
    )
    args = ap.parse_args()
    params = {**json.loads(args.speech_vad), "engine": "earshot"}
    silero_params = {**json.loads(args.silero_vad), "engine": "silero"}

    folder = args.data / args.split
    ref_all = np.load(folder / "labels.npy")
    files = sorted(folder.glob("*.wav"), key=lambda p: (p.stem != "clean", p.stem))
    audio = {p.stem: scaled(read_wav(p), args.gain_db) for p in files}
    systems: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
        "SpeechVADNode(silero)": speech_vad(silero_params),
        "SpeechVADNode(earshot)": speech_vad(params),
        "VADNode(-30)": energy_vad(),
    }
    if webrtcvad is not None:
        systems["webrtcvad(3)"] = webrtc_vad()
    if ort is not None and silero_weights_file() is not None:
        systems["Silero(onnx)"] = silero_vad()
    if args.only:
        keep = args.only.split(",")
        systems = {k: v for k, v in systems.items() if k in keep}

    level = f", files scaled by {args.gain_db:+g} dB" if args.gain_db else ""
    print(
        f"# VAD benchmark ({args.split} split{level}, SpeechVADNode params: earshot {params}, "
        f"silero {silero_params}; the rest at their defaults)\n"
    )
    print(versions() + "\n")
    names = list(systems)
    print("| condition | " + " | ".join(f"{n} P/R/F1" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    f1s: dict[str, list[float]] = {n: [] for n in names}
    fa0: dict[str, list[str]] = {n: [] for n in names}
    # Far false alarms per system and noise kind: the worst file at 0-10 dB SNR.
    fa_worst: dict[str, dict[str, float]] = {n: {} for n in names}
    for cond, x in audio.items():
        ref = ref_all[: x.size // (RATE // 100)]
        cells = []
        for n, fn in systems.items():
            pred = fn(x, ref.size)
            p, r, f1 = prf(pred, ref)
            cells.append(f"{p:.2f}/{r:.2f}/**{f1:.3f}**")
            if cond != "clean":
                f1s[n].append(f1)
            far_rate = float(pred[far_mask(ref)].mean())
            if cond.endswith("_0dB"):
                fa0[n].append(f"{cond.split('_')[0]} {far_rate:.2f}")
            snr = cond.rsplit("_", 1)[-1]
            if snr.endswith("dB") and 0 <= int(snr[:-2]) <= 10:
                kind = cond.rsplit("_", 1)[0]
                fa_worst[n][kind] = max(fa_worst[n].get(kind, 0.0), far_rate)
        print(f"| {cond} | " + " | ".join(cells) + " |")
    print("| **mean, noisy** | " + " | ".join(f"**{np.mean(f1s[n]):.3f}**" for n in names) + " |")
    print(f"\nFalse-alarm rate at 0 dB on non-speech frames > {FAR_MS} ms from speech:\n")
    for n in names:
        print(f"- {n}: " + ", ".join(fa0[n]))
    print(
        f"\nFalse-alarm rate on non-speech frames > {FAR_MS} ms from speech, worst file per "
        "noise kind at 0-10 dB SNR (and the worst of all):\n"
    )
    for n in names:
        kinds = fa_worst[n]
        worst = max(kinds.values(), default=0.0)
        print(
            f"- {n}: "
            + ", ".join(f"{k} {v:.2f}" for k, v in sorted(kinds.items()))
            + f"; worst **{worst:.2f}**"
        )

    if args.no_cpu:
        return
    secs = sum(x.size for x in audio.values()) / RATE
    # Every measure once per round, round after round, best of the rounds each: a machine that
    # speeds up or slows down during the run moves every system alike, so the ratios hold.
    jobs: dict[str, Callable[[], Any]] = {}
    for n, fn in systems.items():
        jobs[f"{n}, whole files"] = lambda fn=fn: [
            fn(x, x.size // (RATE // 100)) for x in audio.values()
        ]
    ours: list[tuple[str, Any]] = [
        ("SpeechVADNode(earshot)", lambda: SpeechVADNode(**params)),
        ("SpeechVADNode(silero)", lambda: SpeechVADNode(**silero_params)),
        ("VADNode(-30)", VADNode),
    ]
    for n, make in ours:
        if n not in systems:
            continue
        pipe = Pipeline("s").add_node(make())
        jobs[f"{n} through Pipeline only: whole files"] = lambda pipe=pipe: [
            pipe.run(x, sample_rate=RATE) for x in audio.values()
        ]
        jobs[f"{n} through Pipeline only: 20 ms chunks"] = lambda pipe=pipe: [
            stream_chunks(pipe, x, RATE // 50) for x in audio.values()
        ]
    best = {k: float("inf") for k in jobs}
    for _ in range(args.cpu_rounds):
        for k, job in jobs.items():
            best[k] = min(best[k], cpu_per_second(job, secs, repeat=1))
    peer = best.get("webrtcvad(3), whole files")
    print(
        f"\nCPU per second of audio (process_time, best of {args.cpu_rounds} rounds taken in "
        f"turn, {secs:.0f} s of audio):\n"
    )
    for k, us in best.items():
        if "through Pipeline only" in k:
            continue
        vs = f" ({us / peer:.2f}x webrtcvad)" if peer else ""
        print(f"- {k}: {us:.0f} us/s{vs}")
    for n, _ in ours:
        whole = best.get(f"{n} through Pipeline only: whole files")
        if whole is None:
            continue
        streamed = best[f"{n} through Pipeline only: 20 ms chunks"]
        vs = f", {whole / peer:.2f}x / {streamed / peer:.2f}x webrtcvad" if peer else ""
        print(
            f"- {n} through Pipeline only: whole files {whole:.0f} us/s, 20 ms chunks "
            f"{streamed:.0f} us/s ({(streamed / whole - 1) * 100:+.0f}%{vs})"
        )
    for n, p in (("SpeechVADNode(earshot)", params), ("SpeechVADNode(silero)", silero_params)):
        if n not in systems:
            continue
        for cond in ("clean", "white_10dB", "pink_5dB"):
            if cond in audio:
                x = audio[cond]
                lat = start_latency(p, x, ref_all[: x.size // (RATE // 100)])
                if lat:
                    print(
                        f"- {n} speech_start latency ({cond}, 20 ms chunks, {len(lat)} "
                        f"onsets): median {np.median(lat):.0f} ms, max {np.max(lat):.0f} ms"
                    )


if __name__ == "__main__":
    main()
