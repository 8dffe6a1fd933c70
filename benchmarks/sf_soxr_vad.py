"""The 10-line script `remotemedia run` replaces (issue 11): soundfile + soxr + webrtcvad.

python benchmarks/sf_soxr_vad.py in.wav out.wav
"""

import sys

import numpy as np
import soundfile as sf
import soxr
import webrtcvad

x, rate = sf.read(sys.argv[1], dtype="float32")  # i16 -> f32, whole file
x = x.mean(axis=1) if x.ndim == 2 else x  # mono
y = soxr.resample(x, rate, 16000, quality="HQ")  # 16 kHz
pcm = (np.clip(y, -1, 1) * 32767).astype(np.int16)
vad, n = webrtcvad.Vad(2), 480  # 30 ms frames
frames = [pcm[i : i + n] for i in range(0, len(pcm) - n + 1, n)]
speech = [f for f in frames if vad.is_speech(f.tobytes(), 16000)]  # VAD speech
sf.write(sys.argv[2], np.concatenate(speech or [pcm[:0]]), 16000, subtype="PCM_16")
