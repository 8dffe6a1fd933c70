"""EchoCancelNode next to WebRTC's audio processing module (LiveKit's `rtc.AudioProcessingModule`,
echo_cancellation only), in one run.

    apt-get install -y espeak-ng
    pip install livekit pystoi
    python benchmarks/aec_bench.py [--seconds 60]

Far end: espeak-ng sentences (benchmarks/vad_data.py's test sentences and voices) at 16 kHz,
played through generated rooms (a pure delay of 50, 150 or 300 ms, then an exponentially
decaying noise tail with an RT60 of 150 ms; echo at -6 dB). Near end: other sentences and
voices, talking in two periods while the far end plays (double talk). Microphone = echo + near
end + noise at -60 dBFS.

Reported: echo return loss enhancement (ERLE) over far-end-only speech after 5 s (converged),
the near-end talker's STOI in double talk (`pystoi`, against the near end alone), the time until
ERLE over a 0.5 s window first reaches 10 dB, and CPU per second of audio.

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
from remotemedia import EchoCancelNode, PassThroughNode, Pipeline  # noqa: E402

RATE = 16000


def room(delay_ms: int, rng: np.random.Generator) -> np.ndarray:
    d = delay_ms * RATE // 1000
    tail = RATE // 5
    h = np.zeros(d + tail)
    t = np.arange(tail)
    h[d:] = rng.uniform(-0.5, 0.5, tail) * np.exp(-6.9 * t / (0.15 * RATE))
    h[d] = 1.0
    return h / np.sqrt(np.sum(h**2)) * 0.5


def ours(mic: np.ndarray, far: np.ndarray) -> np.ndarray:
    p = Pipeline("aec").add_node(PassThroughNode(), "mic").add_node(PassThroughNode(), "far")
    p.add_node(EchoCancelNode(mic="mic", far="far"), "aec").connect("mic", "aec").connect(
        "far", "aec"
    )
    out = p.run({"mic": mic.astype(np.float32), "far": far.astype(np.float32)}, sample_rate=RATE)
    return np.asarray(out, dtype=np.float64)


def webrtc(mic: np.ndarray, far: np.ndarray) -> np.ndarray:
    from livekit import rtc

    apm = rtc.AudioProcessingModule(echo_cancellation=True)
    step = RATE // 100
    to16 = lambda x: (np.clip(x, -1, 1) * 32767).astype(np.int16)  # noqa: E731
    m16, f16 = to16(mic), to16(far)
    out = np.zeros(len(m16) // step * step, dtype=np.int16)
    for i in range(0, len(out), step):
        apm.process_reverse_stream(rtc.AudioFrame(f16[i : i + step].tobytes(), RATE, 1, step))
        frame = rtc.AudioFrame(m16[i : i + step].tobytes(), RATE, 1, step)
        apm.process_stream(frame)
        out[i : i + step] = np.frombuffer(frame.data, dtype=np.int16)
    return out.astype(np.float64) / 32768.0


METHODS = {"remotemedia EchoCancelNode": ours, "WebRTC APM AEC (livekit)": webrtc}


def main() -> None:
    from pystoi import stoi

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=60)
    args = ap.parse_args()
    vad_data.SECONDS = args.seconds
    rng = np.random.default_rng(53)
    far = vad_data.speech_track(vad_data.TEST_SENTENCES, ["en-us", "en-gb"], rng)
    talker = vad_data.speech_track(vad_data.DEV_SENTENCES, ["en-us+f3", "en-gb-x-rp"], rng)
    n = len(far)
    s = lambda a, b: slice(int(a * n), int(b * n))  # noqa: E731
    near = np.zeros(n)
    dt = [s(0.35, 0.5), s(0.7, 0.85)]  # double-talk periods
    for period in dt:
        near[period] = talker[period]
    far_only = np.ones(n, bool)
    for period in dt:
        far_only[period] = False
    far_only[: 5 * RATE] = False  # converging
    active = np.convolve(far**2, np.ones(RATE // 50) / (RATE // 50), "same") > 1e-5

    import importlib.metadata as md

    print(
        f"- versions: remotemedia {remotemedia.__version__}, livekit {md.version('livekit')}, "
        f"pystoi {md.version('pystoi')}"
    )
    print(f"- load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
    print(f"### Echo cancellation, {args.seconds} s at 16 kHz\n")
    print(
        "| room delay | method | ERLE (far end only, after 5 s) | near-end STOI in double talk (mic's) | 10 dB ERLE after | CPU ms per audio s |"
    )
    print("|---|---|---|---|---|---|")
    for delay in (50, 150, 300):
        echo = np.convolve(far, room(delay, rng))[:n]
        mic = echo + near + rng.standard_normal(n) * 1e-3
        mic_stoi = np.mean([stoi(near[p], mic[p], RATE) for p in dt])
        for name, fn in METHODS.items():
            t = time.process_time()
            y = fn(mic, far)
            cpu = (time.process_time() - t) / (n / RATE)
            y = np.pad(y, (0, max(0, n - len(y))))[:n]
            mask = far_only & active
            erle = 10 * np.log10(np.sum(echo[mask] ** 2) / max(np.sum(y[mask] ** 2), 1e-20))
            near_stoi = np.mean([stoi(near[p], y[p], RATE) for p in dt])
            w = RATE // 2
            conv = "never"
            for i in range(0, int(0.35 * n) - w, w // 2):
                seg = slice(i, i + w)
                e, r = np.sum(echo[seg] ** 2), np.sum(y[seg] ** 2)
                if e > 1e-3 and 10 * np.log10(e / max(r, 1e-20)) >= 10:
                    conv = f"{i / RATE:.1f} s"
                    break
            print(
                f"| {delay} ms | {name} | {erle:.1f} dB | {near_stoi:.3f} ({mic_stoi:.3f}) "
                f"| {conv} | {cpu * 1e3:.1f} |"
            )


if __name__ == "__main__":
    main()
