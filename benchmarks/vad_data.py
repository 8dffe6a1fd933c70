"""A labelled speech-in-noise set for VAD benchmarks, made deterministically.

    apt-get install -y espeak-ng
    python benchmarks/vad_data.py --out benchmarks/vad_data     # ~40 s

Speech: English sentences synthesised with ``espeak-ng`` in several voices, speeds and
pitches, placed on a 60 s, 16 kHz track with random pauses (0.2-3 s) from a seeded generator.
Labels: one per 10 ms frame, speech when the clean track's frame RMS is within 40 dB of the
loudest frame and above -60 dBFS (energy of the clean speech, no smoothing).
Noise: white, pink (1/f) and mains hum (50 Hz and harmonics) with random clicks, each scaled so
the speech-frame power over the noise power is 20, 10, 5 and 0 dB; plus the clean track.

Two splits with disjoint voices, sentences and seeds:
- ``test``: the conditions above (13 files), the table in docs/benchmarks.md;
- ``dev``: held apart for choosing defaults: other voices and sentences, brown noise,
  babble-like noise (other synthesized speech, unlabelled), keyboard-like taps and fan noise
  at 15, 7 and 2 dB;
- ``held``: for checking a change on other data of the test split's kinds: white, pink, hum
  and brown noise at 5 and 0 dB with other seeds, sentences and voices;
- ``music``: what voice agents hear besides noise, at 10, 5 and 0 dB: synthetic music (piano
  chords, a bass line, drums and a sung-like lead with vibrato), tones (beeps, DTMF pairs and a
  ringback tone, as on hold lines), TV-like sound (babble of other talkers over music) and hum
  with clicks; plus copies 25 dB quieter (clean, and music at 5 dB). Its own seed, sentences
  from both lists and every voice; for choosing the default engine, never for tuning one.

Writes ``<out>/<split>/<condition>.wav`` (int16) and ``<out>/<split>/labels.npy`` (uint8).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import wave
from pathlib import Path

import numpy as np

RATE = 16000
FRAME = RATE // 100  # 10 ms label frames
SECONDS = 60

TEST_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the sea shore.",
    "We will meet at the station at half past nine tomorrow morning.",
    "Turn left at the second traffic light and keep going for two miles.",
    "Can you hear me now? The connection seems to be breaking up.",
    "My phone number is five five five, one two three four.",
    "The weather today is cloudy with a chance of rain in the evening.",
    "I would like to order a large pizza with mushrooms and olives.",
    "Remember to save your work before you close the application.",
    "Seven hundred and forty two people attended the concert last night.",
    "Yes.",
    "No, thank you.",
    "Okay, let me check that for you.",
]
DEV_SENTENCES = [
    "A journey of a thousand miles begins with a single step.",
    "The museum opens at ten and closes at six on weekdays.",
    "Could you repeat the last part of the message, please?",
    "Our flight was delayed by three hours because of the storm.",
    "He put the book on the table and walked out of the room.",
    "Mix the flour and the sugar, then add two eggs.",
    "Hello.",
    "Sure, that works for me.",
    "Thirteen, fourteen, fifteen, sixteen.",
]
TEST_VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029"]
DEV_VOICES = ["en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]


def synth(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """One utterance from espeak-ng at 16 kHz, float32 in [-1, 1]."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        n = w.getnframes()
        # espeak-ng's header may claim more frames than it wrote when writing to a pipe.
        raw = w.readframes(n)
    x = np.frombuffer(raw[: len(raw) // 2 * 2], dtype=np.int16).astype(np.float64) / 32768.0
    return resample(x, rate, RATE)


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling by FFT (whole signal; fine for short utterances)."""
    if rate_in == rate_out:
        return x
    n_out = round(x.size * rate_out / rate_in)
    spec = np.fft.rfft(x)
    keep = min(spec.size, n_out // 2 + 1)
    out_spec = np.zeros(n_out // 2 + 1, dtype=complex)
    out_spec[:keep] = spec[:keep]
    return np.fft.irfft(out_spec, n_out) * (n_out / x.size)


def speech_track(sentences: list[str], voices: list[str], rng: np.random.Generator) -> np.ndarray:
    """About SECONDS of utterances separated by random pauses (exactly SECONDS long)."""
    total = SECONDS * RATE
    track = np.zeros(total)
    pos = int(rng.uniform(0.5, 1.5) * RATE)
    while True:
        text = sentences[rng.integers(len(sentences))]
        voice = voices[rng.integers(len(voices))]
        u = synth(text, voice, int(rng.integers(130, 200)), int(rng.integers(30, 70)))
        u *= 10 ** (rng.uniform(-12, 0) / 20) * 0.5 / max(np.max(np.abs(u)), 1e-9)
        if pos + u.size > total - RATE // 2:
            break
        track[pos : pos + u.size] += u
        pos += u.size + int(rng.uniform(0.2, 3.0) * RATE)
    return track


def labels_of(clean: np.ndarray) -> np.ndarray:
    frames = clean[: clean.size // FRAME * FRAME].reshape(-1, FRAME)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    floor = max(np.max(rms) * 10 ** (-40 / 20), 10 ** (-60 / 20))
    return (rms > floor).astype(np.uint8)


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def coloured(n: int, rng: np.random.Generator, exponent: float) -> np.ndarray:
    """Noise with power spectral density ~ 1/f**exponent (1: pink, 2: brown)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    f[0] = f[1]
    spec /= f ** (exponent / 2)
    spec[f < 20] = 0
    return np.fft.irfft(spec, n)


def hum_clicks(n: int, rng: np.random.Generator) -> np.ndarray:
    """50 Hz mains hum with decaying harmonics, plus about 2 clicks a second."""
    t = np.arange(n) / RATE
    x = sum(
        (0.6**k) * np.sin(2 * np.pi * 50 * (k + 1) * t + rng.uniform(0, 2 * np.pi))
        for k in range(8)
    )
    clicks = np.zeros(n)
    for pos in rng.integers(0, n - 64, size=2 * n // RATE):
        clicks[pos : pos + 64] += rng.choice([-1, 1]) * 4.0 * np.exp(-np.arange(64) / 8.0)
    return np.asarray(x) + clicks


def fan(n: int, rng: np.random.Generator) -> np.ndarray:
    """Fan/air-conditioning-like noise: broadband, 1/f**0.5, rolled off above 4 kHz, with a
    120 Hz motor tone (dev split only)."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    f[0] = f[1]
    spec *= f**-0.25 / (1 + (f / 4000) ** 4)
    x = np.fft.irfft(spec, n)
    x /= np.sqrt(np.mean(x**2))
    return x + 0.3 * np.sin(2 * np.pi * 120 * np.arange(n) / RATE)


def taps(n: int, rng: np.random.Generator) -> np.ndarray:
    """Keyboard-like taps: ~3 a second, 20 ms decaying noise bursts, over a faint brown bed
    (dev split only: impulsive noise unlike the test split's clicks)."""
    x = 0.05 * coloured(n, rng, 2.0) / np.sqrt(np.mean(coloured(n, rng, 2.0) ** 2))
    burst = 320
    for pos in rng.integers(0, n - burst, size=3 * n // RATE):
        env = rng.uniform(0.5, 2.0) * np.exp(-np.arange(burst) / 60.0)
        x[pos : pos + burst] += env * rng.standard_normal(burst)
    return x


def babble(n: int, rng: np.random.Generator) -> np.ndarray:
    """Four overlapping unlabelled talkers, far below the foreground (dev split only)."""
    out = np.zeros(n)
    for _ in range(4):
        t = speech_track(DEV_SENTENCES, ["en-gb-x-rp"], rng)
        out += np.roll(t, int(rng.integers(n)))[:n]
    return out


def _note(f0: float, n: int, tau: float, rng: np.random.Generator, partials: int = 8) -> np.ndarray:
    """A plucked/struck note: harmonic partials with 1/k amplitudes, 5 ms attack, exp decay."""
    t = np.arange(n) / RATE
    x = sum(
        np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k
        for k in range(1, partials + 1)
        if f0 * k < RATE / 2
    )
    env = np.minimum(t / 0.005, 1.0) * np.exp(-t / tau)
    return np.asarray(x) * env


def music(n: int, rng: np.random.Generator) -> np.ndarray:
    """Synthetic music: piano-like chords on every beat, a bass line, kick/snare/hi-hat, and a
    sung-like lead (sustained harmonic notes with 5.5 Hz vibrato), at 90-130 bpm."""
    beat = int(RATE * 60 / rng.uniform(90, 130))
    out = np.zeros(n + 4 * RATE)
    roots = [0, 5, 7, 9, 2, 4]  # I IV V vi ii iii of a major key
    key = 220 * 2 ** (rng.integers(0, 12) / 12)
    pos, bar = 0, 0
    while pos < n:
        root = roots[rng.integers(len(roots))]
        third = 3 if root in (9, 2, 4) else 4
        for b in range(4):
            p = pos + b * beat
            for semis in (root, root + third, root + 7):
                out[p : p + 2 * beat] += 0.25 * _note(key * 2 ** (semis / 12), 2 * beat, 0.6, rng)
            out[p : p + beat] += 0.5 * _note(key / 4 * 2 ** (root / 12), beat, 0.3, rng, 4)
            k = np.arange(beat // 2) / RATE
            if b in (0, 2):
                sweep = np.sin(2 * np.pi * (100 * k - 400 * k**2))
                out[p : p + beat // 2] += 0.8 * sweep * np.exp(-k / 0.08)
            else:
                out[p : p + beat // 2] += 0.4 * rng.standard_normal(beat // 2) * np.exp(-k / 0.05)
            for h in (p, p + beat // 2):
                out[h : h + 800] += 0.08 * rng.standard_normal(800) * np.exp(-np.arange(800) / 150)
        # The lead: one or two notes per bar, vibrato and a slow swell, like a voice or violin.
        lp = pos
        for length in [4] if rng.random() < 0.5 else [2, 2]:
            m = length * beat
            f0 = key * 2 * 2 ** (roots[rng.integers(len(roots))] / 12)
            t = np.arange(m) / RATE
            phase = 2 * np.pi * np.cumsum(f0 * 2 ** (0.03 * np.sin(2 * np.pi * 5.5 * t))) / RATE
            lead = sum(np.sin(k * phase) / k**1.5 for k in range(1, 7))
            env = np.minimum(t / 0.08, 1.0) * np.minimum((m / RATE - t) / 0.08, 1.0)
            out[lp : lp + m] += 0.35 * np.asarray(lead) * env
            lp += m
        pos += 4 * beat
        bar += 1
    return out[:n]


def tones(n: int, rng: np.random.Generator) -> np.ndarray:
    """Hold-line tones: 1 kHz beeps, DTMF digit pairs and a 440+480 Hz ringback (2 s on,
    4 s off), over a faint hiss."""
    t = np.arange(n) / RATE
    x = 0.01 * rng.standard_normal(n)
    ring = (np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 480 * t)) * ((t % 6) < 2)
    x += 0.5 * ring * (t < n / RATE / 3)
    rows, cols = [697, 770, 852, 941], [1209, 1336, 1477]
    pos = n // 3
    while pos < 2 * n // 3:
        m = int(0.12 * RATE)
        tt = np.arange(m) / RATE
        f1, f2 = rows[rng.integers(4)], cols[rng.integers(3)]
        x[pos : pos + m] += 0.5 * (np.sin(2 * np.pi * f1 * tt) + np.sin(2 * np.pi * f2 * tt))
        pos += m + int(rng.uniform(0.08, 0.4) * RATE)
    pos = 2 * n // 3
    while pos < n - RATE // 4:
        m = int(0.15 * RATE)
        x[pos : pos + m] += np.sin(2 * np.pi * 1000 * np.arange(m) / RATE)
        pos += int(rng.uniform(0.8, 1.5) * RATE)
    return x


def mix(clean: np.ndarray, noise: np.ndarray, labels: np.ndarray, snr_db: float) -> np.ndarray:
    speech_frames = clean[: labels.size * FRAME].reshape(-1, FRAME)[labels == 1]
    p_speech = np.mean(speech_frames**2)
    p_noise = np.mean(noise**2)
    return clean + noise * np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))


def write_wav(path: Path, x: np.ndarray) -> None:
    peak = np.max(np.abs(x))
    if peak > 1.0:  # keep the SNR: scale the whole mix rather than clip it
        x = x / peak
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.round(x * 32767).astype(np.int16).tobytes())


def make_split(out: Path, split: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if split == "test":
        rng = np.random.default_rng(20261129)
        clean = speech_track(TEST_SENTENCES, TEST_VOICES, rng)
        noises = {
            "white": white(clean.size, rng),
            "pink": coloured(clean.size, rng, 1.0),
            "hum": hum_clicks(clean.size, rng),
        }
        snrs = [20, 10, 5, 0]
    elif split == "held":
        # Held apart from both: the test split's noise kinds (plus brown) with other seeds,
        # sentences and voices, at the hardest SNRs; for checking a change, never for tuning.
        rng = np.random.default_rng(31337)
        clean = speech_track(DEV_SENTENCES, ["en-us", "en-gb-x-rp"], rng)
        noises = {
            "white": white(clean.size, rng),
            "pink": coloured(clean.size, rng, 1.0),
            "hum": hum_clicks(clean.size, rng),
            "brown": coloured(clean.size, rng, 2.0),
        }
        snrs = [5, 0]
    elif split == "music":
        rng = np.random.default_rng(4242)
        clean = speech_track(TEST_SENTENCES + DEV_SENTENCES, TEST_VOICES + DEV_VOICES, rng)
        tune = music(clean.size, rng)
        noises = {
            "music": tune,
            "tones": tones(clean.size, rng),
            "tv": babble(clean.size, rng) / 2 + music(clean.size, rng),
            "hum": hum_clicks(clean.size, rng),
        }
        snrs = [10, 5, 0]
    else:
        rng = np.random.default_rng(777)
        clean = speech_track(DEV_SENTENCES, DEV_VOICES, rng)
        noises = {
            "brown": coloured(clean.size, rng, 2.0),
            "babble": babble(clean.size, rng),
            "taps": taps(clean.size, rng),
            "fan": fan(clean.size, rng),
        }
        snrs = [15, 7, 2]
    labels = labels_of(clean)
    np.save(out / "labels.npy", labels)
    write_wav(out / "clean.wav", clean)
    for name, noise in noises.items():
        for snr in snrs:
            write_wav(out / f"{name}_{snr}dB.wav", mix(clean, noise, labels, snr))
    if split == "music":
        quiet = 10 ** (-25 / 20)
        write_wav(out / "quiet_clean.wav", quiet * clean)
        write_wav(out / "quiet_music_5dB.wav", quiet * mix(clean, tune, labels, 5))
    files = len(list(out.glob("*.wav")))
    print(f"{split}: {labels.mean():.0%} speech frames, {files} files")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "vad_data")
    ap.add_argument(
        "--splits", default="test,dev,held,music", help="comma-separated splits to make"
    )
    args = ap.parse_args()
    for split in args.splits.split(","):
        make_split(args.out / split, split)


if __name__ == "__main__":
    main()
