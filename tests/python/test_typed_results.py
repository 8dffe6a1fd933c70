"""Typed results: what ``run``, node calls, sessions and ``metrics`` return matches their
static types (typed_usage.py is type-checked with mypy --strict here and run here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import remotemedia as rm
import typed_usage as tu

from conftest import REPO, bursts


def test_typed_usage_passes_mypy_strict() -> None:
    if shutil.which("mypy") is None and not _has_mypy():
        pytest.skip("mypy not installed")
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *MYPY_VERSION, "typed_usage.py"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO / "tests" / "python",
    )
    assert r.returncode == 0, r.stdout + r.stderr


#: Check for this interpreter's Python: numpy's stubs for the newest numpy (which needs
#: Python >= 3.11) degrade to Any under the project's minimum, 3.10.
MYPY_VERSION = ["--python-version", f"{sys.version_info.major}.{sys.version_info.minor}"]


def _has_mypy() -> bool:
    try:
        import mypy  # noqa: F401
    except ImportError:
        return False
    return True


def test_audio_pipeline_returns_audio() -> None:
    out = tu.audio_pipeline(np.zeros(4800, dtype=np.float32))
    assert type(out) is rm.Audio
    assert (out.sample_rate, out.frames) == (16000, 1600)


def test_python_node_output_is_delivered_as_audio() -> None:
    x = np.full(160, 0.25, dtype=np.float32)
    out = tu.python_node(x)
    assert type(out) is rm.Audio
    assert out.sample_rate == 16000
    np.testing.assert_array_equal(out, np.full(160, 0.5, dtype=np.float32))


def test_vad_segments_are_segments() -> None:
    segs = tu.vad_segments(bursts())
    assert len(segs) == 2
    assert all(type(s) is rm.Segment for s in segs)
    assert segs[0].start_ms == pytest.approx(510, abs=30)
    # The one segment type: exact samples at the input rate, derived ms and s, the level.
    s = segs[0]
    assert s.sample_rate == 16000 and s.start_sample == round(s.start_ms * 16)
    assert (s.start_s, s.end_s) == (s.start_sample / 16000, s.end_sample / 16000)
    assert s.energy_db is not None and s.confidence is None
    assert s["end_sample"] == s.end_sample and "confidence" not in s
    assert s == s.to_dict() and json.loads(json.dumps(s.to_dict()))["start_s"] == s.start_s
    assert rm.Segment(**{k: s[k] for k in ("start_sample", "end_sample", "sample_rate")}) != s


def test_vad_events_are_typed_and_still_read_as_dicts() -> None:
    events = tu.vad_events(bursts())
    assert [type(e) for e in events] == [rm.SpeechStart, rm.SpeechEnd] * 2
    start, end = events[0], events[1]
    assert isinstance(start, rm.SpeechStart) and isinstance(end, rm.SpeechEnd)
    assert end.start_ms == start.start_ms
    assert end.end_ms > end.start_ms and end.duration_ms == end.end_ms - end.start_ms
    assert end.energy_db is not None and end.confidence is None
    # Code written when events were dicts keeps working.
    assert start["event"] == "speech_start" and end["event"] == "speech_end"
    assert end["end_ms"] == end.end_ms and "confidence" not in end
    assert end.get("energy_db") == end.energy_db
    assert start == {"event": "speech_start", "start_ms": start.start_ms}
    assert json.loads(json.dumps([e.to_dict() for e in events]))[1]["event"] == "speech_end"


def test_vad_speech_is_audio() -> None:
    out = tu.vad_speech(bursts())
    assert type(out) is rm.Audio and out.sample_rate == 16000
    assert 0.8 * 16000 < out.frames < 1.0 * 16000  # the two bursts: 0.6 s + 0.3 s


def test_speech_vad_results(example_wav: object) -> None:
    audio = rm.read(str(example_wav), dtype="float32")
    segs = tu.speech_vad_segments(audio)
    keys = {"start_ms", "end_ms", "start_s", "end_s", "start_sample", "end_sample", "sample_rate"}
    assert segs and all(set(s) == keys | {"confidence"} for s in segs)
    assert all(type(s) is rm.Segment and s.confidence is not None for s in segs)
    frames = tu.speech_vad_frames(audio)
    assert frames and all(set(f) == {"start_ms", "end_ms", "probability"} for f in frames)
    events = tu.speech_vad_events(audio)
    assert [type(e) for e in events[:2]] == [rm.SpeechStart, rm.SpeechEnd]
    end = events[1]
    assert isinstance(end, rm.SpeechEnd)
    assert end.confidence is not None and end.energy_db is None
    assert (end.start_ms, end.end_ms) == (segs[0]["start_ms"], segs[0]["end_ms"])


def test_untyped_pipeline_still_runs() -> None:
    out = tu.untyped_pipeline(np.zeros(4800, dtype=np.float32))
    assert isinstance(out, rm.Audio) and out.frames == 1600


def test_stream_outputs_are_audio() -> None:
    chunks = tu.stream_chunks(np.zeros(4800, dtype=np.float32))
    assert chunks and all(type(c) is rm.Audio for c in chunks)
    assert sum(c.frames for c in chunks) == 1600


def test_stream_events_are_typed() -> None:
    p = rm.Pipeline("ev").add_node(rm.VADNode(emit="events"))
    x = bursts()
    got: list[rm.VadEvent] = []
    with p.stream(sample_rate=16000) as s:
        for i in range(0, x.size, 320):
            s.send(x[i : i + 320])
            got.extend(e for out in s.poll() for e in out.data)
        got.extend(e for out in s.close() for e in out.data)
    assert got == tu.vad_events(x)
    metrics = s.metrics()
    assert isinstance(metrics, rm.RunMetrics)
    assert metrics.chunks == len(range(0, x.size, 320))
    assert metrics["nodes"][0]["calls"] == metrics.nodes[0].calls >= 1


def test_metrics_are_typed_and_round_trip() -> None:
    x = np.zeros(4800, dtype=np.float32)
    m = tu.metrics_and_policies(x)
    assert isinstance(m, rm.RunMetrics)
    node = m.node("audio_resample")
    assert isinstance(node, rm.NodeMetrics)
    assert (node.node_type, node.runtime, node.status, node.error) == (
        "AudioResampleNode",
        "rust",
        "success",
        None,
    )
    assert node.calls >= 1 and node.execution_time_us >= 0
    assert m.pipeline == "m" and m.chunks == 1
    # The dict form is exactly what get_metrics() returns; to_json is that as JSON.
    p_dict = m.to_dict()
    assert json.loads(m.to_json()) == p_dict
    assert p_dict["nodes"][0]["status"] == {"state": "success"}
    assert m["nodes"][0]["node_id"] == "audio_resample"
    with pytest.raises(KeyError, match=r"no node 'nope'.*audio_resample"):
        m.node("nope")


def test_failed_node_metrics_name_the_error() -> None:
    class Boom(rm.Node):
        def process(self, data: object) -> object:
            raise ValueError("boom")

    p = rm.Pipeline("f").add_node(Boom())
    with pytest.raises(RuntimeError, match="pipeline 'f' has no metrics yet: run"):
        _ = p.metrics
    with pytest.raises(ValueError, match="boom"):
        p.run(np.zeros(10, dtype=np.float32), sample_rate=16000)
    m = p.metrics
    assert m.nodes[0].status == "failed" and "boom" in (m.nodes[0].error or "")


def test_policies_are_typed_and_kept_in_the_manifest() -> None:
    p = rm.Pipeline("pol").add_node(
        rm.AudioResampleNode(16000),
        retry=rm.RetryPolicy(max_attempts=2, initial_delay_ms=5),
        circuit_breaker=rm.CircuitBreaker(cooldown_ms=1000),
    )
    spec = p.to_manifest()["nodes"][0]
    assert spec["retry"] == {"max_attempts": 2, "initial_delay_ms": 5, "max_delay_ms": 1600}
    assert spec["circuit_breaker"] == {"failure_threshold": 5, "cooldown_ms": 1000}
    again = rm.Pipeline.from_manifest(p.serialize())
    assert again.retry_policy("audio_resample") == rm.RetryPolicy(2, 5, 1600)
    assert again.circuit_breaker("audio_resample") == rm.CircuitBreaker(5, 1000)
    # The dict form still works, and a node without a policy has none.
    q = rm.Pipeline().add_node(rm.GainNode(db=1.0), retry={"max_attempts": 4})
    assert q.retry_policy("gain") == rm.RetryPolicy(max_attempts=4)
    assert q.circuit_breaker("gain") is None
    with pytest.raises(ValueError, match=r"retry\.max_attempts must be an integer >= 1, got 0"):
        rm.RetryPolicy(max_attempts=0)


def test_segments_from_a_python_node_cross_the_runtime_unchanged() -> None:
    # A Python node's list[Segment] becomes the runtime's segments and comes back equal;
    # a segment the runtime cannot hold is refused with what is wrong.
    made = [rm.Segment(480, 1600, 16000, confidence=0.5), rm.Segment(1600, 3200, 16000)]

    class Detect(rm.Node):
        def process(self, data: object) -> object:
            return made

    class Keep(rm.Node):
        def process(self, data: object) -> object:
            assert isinstance(data, list) and all(type(s) is rm.Segment for s in data)
            return data

    out = rm.Pipeline("s").add_node(Detect()).add_node(Keep()).run(bursts(), sample_rate=16000)
    assert out == made and out[0].start_ms == 30.0 and out[1].confidence is None

    class Bad(rm.Node):
        def process(self, data: object) -> object:
            return [rm.Segment(10, 5, 16000)]

    with pytest.raises(rm.NodeError, match="start_sample 10 is after end_sample 5"):
        rm.Pipeline("b").add_node(Bad()).add_node(Keep()).run(bursts(), sample_rate=16000)
