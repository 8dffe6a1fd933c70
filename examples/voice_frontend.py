"""A voice agent's front-end, streamed: the microphone and what the speaker played go in as two
inputs, in 10 ms and 20 ms chunks, through examples/voice_frontend.json (echo cancellation,
noise suppression, automatic gain, speech segments).

    python examples/voice_frontend.py [out.wav]

The signals are made from the bundled recording: the near-end talker is the recording, the far
end (the bot's voice) the recording reversed, heard back by the microphone 120 ms later through
a small room, with background noise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import remotemedia
from remotemedia import Pipeline

HERE = Path(__file__).parent
RATE = 48000


def signals() -> tuple[np.ndarray, np.ndarray]:
    speech = np.asarray(remotemedia.read(HERE / "speech_48k.wav", dtype="float32"))
    near = np.concatenate([np.zeros(RATE * 2, np.float32), speech])  # talks after 2 s
    far = np.concatenate([speech[::-1], np.zeros(len(near) - len(speech), np.float32)])
    rng = np.random.default_rng(0)
    room = np.zeros(RATE // 5, np.float32)
    room[int(0.12 * RATE)] = 0.6  # the speaker heard 120 ms later ...
    room[int(0.12 * RATE) :] += (  # ... with a short reverberant tail
        rng.standard_normal(len(room) - int(0.12 * RATE)).astype(np.float32)
        * 0.02
        * np.exp(-np.arange(len(room) - int(0.12 * RATE)) / (0.03 * RATE)).astype(np.float32)
    )
    echo = np.convolve(far, room)[: len(near)].astype(np.float32)
    noise = (0.003 * rng.standard_normal(len(near))).astype(np.float32)
    return near + echo + noise, far


def main() -> None:
    out_path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("frontend_out.wav")
    mic, far = signals()
    pipeline = Pipeline.from_manifest(HERE / "voice_frontend.json")
    clean, segments = [], []
    mic_step, far_step = RATE // 100, RATE // 50  # 10 ms and 20 ms chunks
    with pipeline.stream(sample_rate=RATE) as session:
        for i in range(0, len(mic), far_step):
            session.send(far[i : i + far_step], to="far")
            for j in range(i, min(i + far_step, len(mic)), mic_step):
                session.send(mic[j : j + mic_step], to="mic")
            for out in session.poll():
                (clean if out.node_id == "clean" else segments).append(out.data)
        for out in session.close():
            (clean if out.node_id == "clean" else segments).append(out.data)
    audio = np.concatenate([np.asarray(a) for a in clean])
    remotemedia.write(out_path, audio, 16000)
    found = [s for chunk in segments for s in chunk]
    print(f"wrote {out_path}: {len(audio) / 16000:.2f} s at 16 kHz")
    for s in found:
        print(f"speech {s.start_s:.2f}-{s.end_s:.2f} s")


if __name__ == "__main__":
    main()
