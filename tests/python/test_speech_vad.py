"""SpeechVADNode from Python: in a Pipeline, standalone, streamed, through a manifest and the
CLI, with typed outputs and clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

import remotemedia as rm
from remotemedia import Audio, AudioResampleNode, ManifestError, NodeError, Pipeline, SpeechVADNode
from remotemedia.nodes import SpeechFrame, SpeechSegment
from remotemedia.nodes.rust import RustSpeechVADNode

from conftest import REPO

#: The keys every segment has, whichever VAD node made it.
SEGMENT_KEYS = {
    "start_ms",
    "end_ms",
    "start_s",
    "end_s",
    "start_sample",
    "end_sample",
    "sample_rate",
}


def clip() -> tuple[np.ndarray, int]:
    """The bundled speech clip with a second of near-silence on each side (float32, 48 kHz)."""
    with wave.open(str(REPO / "examples" / "speech_48k.wav")) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32)
    x /= 32768.0
    pad = np.zeros(rate, dtype=np.float32)
    noise = 0.003 * np.random.default_rng(0).standard_normal(2 * rate + x.size)
    return (np.concatenate([pad, x, pad]) + noise).astype(np.float32), rate


def test_pipeline_run_gives_typed_segments_inside_the_speech() -> None:
    x, rate = clip()
    segs = Pipeline("v").add_node(SpeechVADNode()).run(x, sample_rate=rate)
    assert isinstance(segs, list) and segs
    total_ms = x.size * 1000 / rate
    for s in segs:
        assert type(s) is SpeechSegment is rm.Segment
        assert set(s) == SEGMENT_KEYS | {"confidence"}
        assert s.sample_rate == rate and s.energy_db is None
        assert s.start_ms == s.start_sample * 1000 / rate and s.end_s == s.end_sample / rate
        assert isinstance(s.start_sample, int) and isinstance(s["confidence"], float)
        assert 960 <= s["start_ms"] < s["end_ms"] <= total_ms - 960
        assert 0.5 <= s["confidence"] <= 1.0


def test_standalone_call_equals_pipeline_and_streaming_equals_whole() -> None:
    x, rate = clip()
    whole = SpeechVADNode(emit="events")(x, sample_rate=rate)
    assert whole == Pipeline("v").add_node(SpeechVADNode(emit="events")).run(x, sample_rate=rate)
    assert [e["event"] for e in whole[:2]] == ["speech_start", "speech_end"]
    node = SpeechVADNode(emit="events")
    streamed: list[dict[str, float]] = []
    for i in range(0, x.size, 960):  # 20 ms chunks
        streamed += node.process(x[i : i + 960], sample_rate=rate) or []
    streamed += node.flush() or []
    assert streamed == whole


def test_speech_and_probabilities_outputs() -> None:
    x, rate = clip()
    stereo = np.stack([x, x], axis=1)
    speech = SpeechVADNode(emit="speech")(stereo, sample_rate=rate)
    assert isinstance(speech, Audio)
    assert (speech.sample_rate, speech.channels, speech.dtype) == (rate, 2, np.float32)
    segs = SpeechVADNode()(stereo, sample_rate=rate)
    want = sum(round(s["end_ms"] * 48) - round(s["start_ms"] * 48) for s in segs)
    assert speech.frames == want
    # The segments' sample positions index the input: the speech output is their audio.
    np.testing.assert_array_equal(
        speech, np.concatenate([stereo[s.start_sample : s.end_sample] for s in segs])
    )
    # Frames: 32 ms with the default engine (Silero), 16 ms with the light one.
    for engine, samples in (("silero", 512), ("earshot", 256)):
        probs = SpeechVADNode(emit="probabilities", engine=engine)(x, sample_rate=rate)
        assert len(probs) == -(-(x.size // 3) // samples)
        assert all(0.0 <= p["probability"] <= 1.0 for p in probs)
        assert set(probs[0]) == set(SpeechFrame.__annotations__)
        assert probs[1]["start_ms"] == samples / 16


def test_params_round_trip_through_the_manifest() -> None:
    p = Pipeline("rt").add_node(
        SpeechVADNode(
            threshold=0.6,
            end_threshold=0.3,
            min_speech_ms=100,
            min_silence_ms=200,
            pad_ms=50,
            min_snr_db=6.0,
            min_voicing=None,
            emit="events",
            engine="earshot",
            max_gain_db=12.0,
        )
    )
    p.add_node(RustSpeechVADNode())
    m = json.loads(p.serialize())
    assert m["nodes"][0]["params"] == {
        "threshold": 0.6,
        "end_threshold": 0.3,
        "min_speech_ms": 100,
        "min_silence_ms": 200,
        "pad_ms": 50,
        "min_snr_db": 6.0,
        "min_voicing": None,
        "emit": "events",
        "engine": "earshot",
        "model_path": None,
        "max_gain_db": 12.0,
        "max_speech_ms": None,
    }
    q = Pipeline.from_manifest(m)
    assert json.loads(q.serialize()) == m
    for a, b in zip(p.nodes.values(), q.nodes.values(), strict=True):
        assert isinstance(b, SpeechVADNode) and a.params == b.params


def test_bad_params_name_the_field_and_range() -> None:
    with pytest.raises(
        ManifestError, match=r"threshold: 1\.5 is out of range; expected a number in 0\.\.=1"
    ):
        SpeechVADNode(threshold=1.5)
    with pytest.raises(
        ManifestError, match=r"end_threshold: 0\.7 .*above 0\.0 and at most threshold \(0\.5\)"
    ):
        SpeechVADNode(threshold=0.5, end_threshold=0.7)
    with pytest.raises(ManifestError, match=r"pad_ms: 300 .*min_silence_ms"):
        SpeechVADNode(pad_ms=300)
    with pytest.raises(ManifestError, match="unknown variant `frames`"):
        SpeechVADNode(emit="frames")  # type: ignore[arg-type]
    with pytest.raises(
        ManifestError,
        match=r"max_gain_db: -1(\.0)? is out of range; expected a number in 0(\.0)?\.\.=60",
    ):
        SpeechVADNode(max_gain_db=-1.0)


def test_quiet_speech_is_found_as_at_its_own_level() -> None:
    # The clip in white noise, then all of it 30 dB quieter: the network hears it levelled.
    x, rate = clip()
    noise = 0.05 * np.random.default_rng(1).standard_normal(x.size).astype(np.float32)
    loud = x + noise
    quiet = loud * np.float32(10 ** (-30 / 20))

    def speech_ms(y: np.ndarray, **params: float) -> float:
        segs = SpeechVADNode(engine="earshot", **params)(y, sample_rate=rate)  # type: ignore[arg-type]
        return sum(s["end_ms"] - s["start_ms"] for s in segs)

    reference = speech_ms(loud)
    assert reference > 1000
    assert abs(speech_ms(quiet) - reference) <= 0.05 * reference
    assert speech_ms(quiet, max_gain_db=0.0) < 0.8 * reference  # what the levelling does


def test_nan_silence_and_tiny_inputs_are_defined() -> None:
    node = SpeechVADNode()
    assert node(np.zeros(16000, dtype=np.float32), sample_rate=16000) == []
    x = np.full(16000, np.nan, dtype=np.float32)
    assert node(x, sample_rate=16000) == []
    assert node(np.array([0.2], dtype=np.float32), sample_rate=8000) == []


def test_cli_runs_a_manifest_with_the_node(tmp_path: Path) -> None:
    exe = shutil.which("remotemedia")
    assert exe, "the remotemedia command is not on PATH"
    manifest = {
        "version": "v1",
        "nodes": [{"id": "vad", "node_type": "SpeechVADNode", "params": {"pad_ms": 16}}],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    out = tmp_path / "segs.json"
    r = subprocess.run(
        [exe, "run", str(path), "-i", "examples/speech_48k.wav", "-o", str(out)],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    segs = json.loads(out.read_text())
    assert segs and all(s["end_ms"] > s["start_ms"] for s in segs)
    # The same node from Python gives the same segments for the same file.
    assert segs == Pipeline.from_manifest(manifest).run(str(REPO / "examples/speech_48k.wav"))


def same_events(a: list[dict[str, object]], b: list[dict[str, object]]) -> bool:
    """Equal, but for the last bit of ``confidence``: the gRPC transport's JSON conversion
    does not round-trip every f64 exactly (times, being exact binary fractions here, do)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        cx, cy = x.get("confidence"), y.get("confidence")
        if {**x, "confidence": None} != {**y, "confidence": None}:
            return False
        if (cx is None) != (cy is None) or (cx is not None and cx != pytest.approx(cy, rel=1e-12)):
            return False
    return True


def test_remote_run_and_stream_equal_local(tmp_path: Path) -> None:
    from test_server import Server

    x, rate = clip()
    p = Pipeline("remote-vad").add_node(SpeechVADNode(emit="events"))
    local = p.run(x, sample_rate=rate)
    s = Server(tmp_path)
    try:
        assert same_events(p.run(x, sample_rate=rate, remote=s.address), local)
        streamed: list[dict[str, float]] = []
        with p.stream(sample_rate=rate, remote=s.address) as session:
            for i in range(0, x.size, 960):
                session.send(x[i : i + 960])
                streamed += [e for out in session.poll() for e in out.data]
            streamed += [e for out in session.close() for e in out.data]
        assert same_events(streamed, local)
    finally:
        s.stop()


def test_telephone_audio_upsampled_before_the_node_keeps_the_16_khz_decisions() -> None:
    # A voice agent's usual input: an 8 kHz call resampled to 16 kHz before the VAD. The node
    # sees a 16 kHz stream whose band ends at 4 kHz and treats it as 8 kHz audio, so its
    # segments stay within one 16 ms frame of the full-band audio's.
    x, rate = clip()

    def resampled(y: np.ndarray, src: int, dst: int) -> np.ndarray:
        return np.asarray(Pipeline("r").add_node(AudioResampleNode(dst)).run(y, sample_rate=src))

    def spans(y: np.ndarray, at: int) -> list[tuple[float, float]]:
        segs = Pipeline("v").add_node(SpeechVADNode()).run(y, sample_rate=at)
        return [(s["start_ms"], s["end_ms"]) for s in segs]

    full = spans(resampled(x, rate, 16000), 16000)
    call = resampled(resampled(x, rate, 8000), 8000, 16000)
    got = spans(call, 16000)
    assert len(got) == len(full) >= 1
    for (a, b), (c, d) in zip(got, full, strict=True):
        assert abs(a - c) <= 16 and abs(b - d) <= 16, (got, full)


def test_a_standalone_node_s_error_names_it_once() -> None:
    node = SpeechVADNode()
    node.process(np.zeros(320, np.float32), sample_rate=16000)
    with pytest.raises(NodeError) as e:
        node.process(np.zeros(320, np.float32), sample_rate=8000)
    assert str(e.value).startswith("SpeechVADNode: sample rate changed mid-stream"), e.value
    assert str(e.value).count("SpeechVADNode") == 1
    assert (e.value.kind, e.value.code, e.value.node_type) == (
        "sample_rate_changed",
        "invalid_input",
        "SpeechVADNode",
    )
    with pytest.raises(NodeError) as e:
        SpeechVADNode()([0.0] * 1600, sample_rate=16000)
    assert str(e.value).startswith("SpeechVADNode: expected audio, got object of type list")
    assert str(e.value).count("SpeechVADNode") == 1 and e.value.kind == "not_audio"


def test_max_speech_ms_caps_segments_from_python() -> None:
    x, rate = clip()
    free = SpeechVADNode()(x, sample_rate=rate)
    capped = SpeechVADNode(max_speech_ms=500)(x, sample_rate=rate)
    assert SpeechVADNode(max_speech_ms=500).params["max_speech_ms"] == 500
    assert len(capped) > len(free)
    assert max(s["end_ms"] - s["start_ms"] for s in capped) <= 500 + 2 * 32 + 16
    p = Pipeline("cap").add_node(SpeechVADNode(max_speech_ms=500))
    assert Pipeline.from_manifest(p.to_manifest()).run(x, sample_rate=rate) == capped
    with pytest.raises(ManifestError, match=r"max_speech_ms.*2 x min_speech_ms \(256 ms\)"):
        SpeechVADNode(max_speech_ms=200)


def spans(audio: Audio) -> list[tuple[int, int]]:
    origin = audio.origin
    assert origin is not None, "speech audio says where it came from"
    return [(s.start_sample, s.end_sample) for s in origin]


def merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in ranges:
        if out and out[-1][1] >= a:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def test_speech_audio_carries_the_input_times_it_came_from(tmp_path: Path) -> None:
    from test_server import Server

    x, rate = clip()
    segs = SpeechVADNode()(x, sample_rate=rate)
    want = merged([(s.start_sample, s.end_sample) for s in segs])
    assert want, "the clip has speech"
    p = Pipeline("speech").add_node(SpeechVADNode(emit="speech"))
    whole = p.run(x, sample_rate=rate)
    assert spans(whole) == want
    assert all(s.sample_rate == rate for s in whole.origin or [])
    assert whole.origin is not None and whole.origin[0].start_s == want[0][0] / rate
    # Standalone, and the audio of each span is the input's, sample for sample.
    alone = SpeechVADNode(emit="speech")(x, sample_rate=rate)
    assert spans(alone) == want
    np.testing.assert_array_equal(alone, np.concatenate([x[a:b] for a, b in want]))
    # A slice or a computed array is other audio: no origin.
    assert alone[10:].origin is None and (alone * 2).origin is None
    # Streamed in 20 ms chunks, locally and remotely: each output's spans cover its frames,
    # never reach past the audio sent so far, and together are the whole run's.
    s = Server(tmp_path)
    try:
        for remote in (None, s.address):
            got: list[tuple[int, int]] = []
            sent = 0
            with p.stream(sample_rate=rate, remote=remote) as session:
                for i in range(0, x.size, 960):
                    session.send(x[i : i + 960])
                    sent = min(i + 960, x.size)
                    for out in session.poll():
                        r = spans(out.data)
                        assert sum(b - a for a, b in r) == out.data.frames
                        assert all(b <= sent for _, b in r)
                        got += r
                got += [r for out in session.close() for r in spans(out.data)]
            assert merged(got) == want, remote
    finally:
        s.stop()
