"""Voice front-end nodes from Python (issue 37): DenoiseNode whole, standalone in chunks, in a
streaming session and on the CLI give the same samples; bad parameters are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import remotemedia
from remotemedia import DenoiseNode, Pipeline


def _noisy_speech(rate: int) -> np.ndarray:
    speech = remotemedia.read("examples/speech_48k.wav", dtype="float32")
    if rate != 48000:
        speech = Pipeline("r").add_node(remotemedia.AudioResampleNode(target_rate=rate)).run(speech)
    x = np.asarray(speech)[: rate * 2]
    rng = np.random.default_rng(1)
    return (x + 0.02 * rng.standard_normal(len(x))).astype(np.float32)


@pytest.mark.parametrize("rate", [16000, 48000])
def test_denoise_streamed_in_20_ms_chunks_equals_the_whole_run(rate: int) -> None:
    x = _noisy_speech(rate)
    pipeline = Pipeline("dn").add_node(DenoiseNode(attenuation_limit_db=30))
    whole = np.asarray(pipeline.run(x, sample_rate=rate))
    assert whole.shape == x.shape and whole.dtype == np.float32
    chunk = rate // 50
    parts = []
    with pipeline.stream(sample_rate=rate) as s:
        for i in range(0, len(x), chunk):
            s.send(x[i : i + chunk])
            parts.extend(np.asarray(o.data) for o in s.poll())
        parts.extend(np.asarray(o.data) for o in s.close())
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    # Standalone, chunk by chunk, the same again.
    node = DenoiseNode(attenuation_limit_db=30)
    pieces = [np.asarray(node.process(x[i : i + 777], rate)) for i in range(0, len(x), 777)]
    tail = node.flush()
    if tail is not None:
        pieces.append(np.asarray(tail))
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_denoise_keeps_int16_and_pulls_noise_down() -> None:
    x = _noisy_speech(16000)
    pcm = (x * 32767).astype(np.int16)
    out = np.asarray(Pipeline("dn").add_node(DenoiseNode()).run(pcm, sample_rate=16000))
    assert out.dtype == np.int16 and out.shape == pcm.shape
    # The first 0.2 s is noise before the speech: it comes out well below.
    lead = slice(0, 3200)
    assert np.std(out[lead].astype(float)) < 0.5 * np.std(pcm[lead].astype(float))


def test_denoise_bad_parameters_are_named() -> None:
    with pytest.raises(
        remotemedia.ManifestError,
        match=r"attenuation_limit_db: 0 is out of range; expected a number in 1\.\.=100 dB",
    ):
        DenoiseNode(attenuation_limit_db=0)
    with pytest.raises(TypeError, match="did you mean 'attenuation_limit_db'"):
        DenoiseNode(attenuation_limit=10)  # type: ignore[call-arg]


def test_auto_gain_brings_quiet_speech_up_and_streams_like_the_whole_run() -> None:
    from remotemedia import AutoGainNode

    speech = np.asarray(remotemedia.read("examples/speech_48k.wav", dtype="float32"))
    quiet = (np.tile(speech, 3) * 0.01).astype(np.float32)
    pipeline = Pipeline("agc").add_node(AutoGainNode(target_db=-20))
    whole = np.asarray(pipeline.run(quiet, sample_rate=48000))
    assert whole.shape == quiet.shape
    tail = slice(-48000 * 6, None)
    gain_db = 20 * np.log10(np.std(whole[tail]) / np.std(quiet[tail]))
    assert 20 < gain_db < 32, gain_db
    parts = []
    with pipeline.stream(sample_rate=48000) as s:
        for i in range(0, len(quiet), 960):
            s.send(quiet[i : i + 960])
            parts.extend(np.asarray(o.data) for o in s.poll())
        parts.extend(np.asarray(o.data) for o in s.close())
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_the_front_end_example_streams_two_inputs_and_finds_only_the_near_talker(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    out = tmp_path / "fe.wav"
    r = subprocess.run(
        [sys.executable, "examples/voice_frontend.py", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    info = remotemedia.info(out)
    assert info.sample_rate == 16000 and info.frames > 16000 * 8
    starts = [
        float(line.split()[1].split("-")[0])
        for line in r.stdout.splitlines()
        if line.startswith("speech ")
    ]
    # The bot's echo plays from 0 s; the near-end talker starts at 2 s: only the talker is found.
    assert starts and min(starts) >= 1.9, r.stdout


def test_denoise_emits_rnnoise_speech_probabilities_per_10_ms() -> None:
    x = _noisy_speech(16000)
    frames = Pipeline("p").add_node(DenoiseNode(emit="probabilities")).run(x, sample_rate=16000)
    assert len(frames) == -(-len(x) // 160)
    assert frames[0]["start_ms"] == 0.0 and frames[0]["end_ms"] == 10.0
    assert all(0.0 <= f["probability"] <= 1.0 for f in frames)
