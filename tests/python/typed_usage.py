"""Typed results, as a user writes them: every ``assert_type`` here is checked statically by
``mypy --strict`` (test_typed_results.py) and every value is checked at run time by the same
test, so the types and the runtime cannot drift apart."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

if sys.version_info >= (3, 11):
    from typing import assert_type
else:  # pragma: no cover
    from typing_extensions import assert_type

import remotemedia as rm
from remotemedia.nodes import SpeechFrame, SpeechSegment


class Double(rm.Node[rm.Audio]):
    """A typed Python node: returns a plain array; the pipeline delivers an ``Audio``."""

    def process(self, audio: rm.Audio) -> np.ndarray:
        return np.asarray(audio) * np.float32(2.0)


def audio_pipeline(x: np.ndarray) -> rm.Audio:
    p = rm.Pipeline("typed").add_node(rm.AudioResampleNode(16000)).add_node(rm.GainNode(db=-6.0))
    out = p.run(x, sample_rate=48000)
    assert_type(out, rm.Audio)
    return out


def vad_segments(x: np.ndarray) -> list[rm.Segment]:
    out = rm.Pipeline("seg").add_node(rm.VADNode(threshold=-35.0)).run(x, sample_rate=16000)
    assert_type(out, list[rm.Segment])
    return out


def vad_events(x: np.ndarray) -> list[rm.VadEvent]:
    out = rm.Pipeline("ev").add_node(rm.VADNode(emit="events")).run(x, sample_rate=16000)
    assert_type(out, list[rm.SpeechStart | rm.SpeechEnd])
    for e in out:
        if isinstance(e, rm.SpeechEnd):
            assert_type(e.end_ms, float)
    return out


def vad_speech(x: np.ndarray) -> rm.Audio:
    out = rm.VADNode(emit="speech")(x, sample_rate=16000)
    assert_type(out, rm.Audio)
    return out


def speech_vad_segments(x: rm.Audio) -> list[SpeechSegment]:
    out = rm.SpeechVADNode()(x)
    assert_type(out, list[SpeechSegment])
    return out


def speech_vad_frames(x: rm.Audio) -> list[SpeechFrame]:
    out = rm.SpeechVADNode(emit="probabilities")(x)
    assert_type(out, list[SpeechFrame])
    return out


def speech_vad_events(x: rm.Audio) -> list[rm.VadEvent]:
    p = rm.Pipeline("sv").add_node(rm.SpeechVADNode(emit="events"))
    out = p.run(x)
    assert_type(out, list[rm.VadEvent])
    return out


def python_node(x: np.ndarray) -> rm.Audio:
    out = rm.Pipeline("py").add_node(Double()).run(x, sample_rate=16000)
    assert_type(out, rm.Audio)
    return out


def untyped_pipeline(x: np.ndarray) -> Any:
    p = rm.Pipeline("plain")  # built step by step: Pipeline[Any]
    p.add_node(rm.AudioResampleNode(16000))
    out = p.run(x, sample_rate=48000)
    assert_type(out, Any)
    return out


def stream_chunks(x: np.ndarray) -> list[rm.Audio]:
    p = rm.Pipeline("st").add_node(rm.AudioResampleNode(16000))
    with p.stream(sample_rate=48000) as session:
        session.send(x)
        outs = session.poll() + session.close()
    assert_type(outs[0].data, rm.Audio)
    return [o.data for o in outs]


def metrics_and_policies(x: np.ndarray) -> rm.RunMetrics:
    p = rm.Pipeline("m").add_node(
        rm.AudioResampleNode(16000),
        retry=rm.RetryPolicy(max_attempts=2),
        circuit_breaker=rm.CircuitBreaker(failure_threshold=3),
    )
    p.run(x, sample_rate=48000)
    m = p.metrics
    assert_type(m.node("audio_resample").execution_time_us, int)
    assert_type(p.retry_policy("audio_resample"), rm.RetryPolicy | None)
    return m
