"""Transparent acceleration is real: built-in nodes run in Rust (there is no fallback runtime;
a node that did not run natively fails these tests), and the numpy reference oracles agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

import remotemedia
from remotemedia import (
    Audio,
    AudioResampleNode,
    ChannelMixNode,
    FormatConverterNode,
    PassThroughNode,
    Pipeline,
    VADNode,
    _native,
    reference,
)
from remotemedia.nodes import rust

from conftest import bursts, music


def all_builtins() -> list[remotemedia.Node]:
    return [
        ChannelMixNode(1),
        AudioResampleNode(16000),
        FormatConverterNode("i16"),
        FormatConverterNode("f32"),
        PassThroughNode(),
        VADNode(emit="speech"),
    ]


def test_there_is_no_python_runtime_to_select(monkeypatch: pytest.MonkeyPatch) -> None:
    # The old switch is gone: setting it changes nothing, built-in nodes still run in Rust.
    monkeypatch.setenv("REMOTEMEDIA_RUNTIME", "python")
    p = Pipeline("p").add_node(AudioResampleNode(16000))
    p.run(music(48000, 0.1), sample_rate=48000)
    assert p.get_metrics()["nodes"][0]["runtime"] == "rust"
    assert not hasattr(remotemedia, "runtime")


def test_every_builtin_node_runs_in_rust_inside_a_pipeline() -> None:
    p = Pipeline("all")
    for n in all_builtins():
        p.add_node(n)
    p.run(music(48000, 0.5, channels=2), sample_rate=48000)
    nodes = p.get_metrics()["nodes"]
    assert len(nodes) == 6
    assert {n["runtime"] for n in nodes} == {"rust"}, nodes
    assert all(n["calls"] >= 1 for n in nodes)


@pytest.mark.parametrize("background", [False, True])
def test_every_builtin_node_runs_in_rust_in_a_stream(background: bool) -> None:
    p = Pipeline("all")
    for n in all_builtins():
        p.add_node(n)
    x = music(48000, 0.2, channels=2)
    with p.stream(sample_rate=48000, channels=2, background=background) as s:
        for i in range(0, len(x), 960):
            s.send(x[i : i + 960])
        s.close()
    metrics = s.metrics()
    assert metrics is not None
    assert {n["runtime"] for n in metrics["nodes"]} == {"rust"}, metrics["nodes"]
    assert all(n["calls"] >= 1 for n in metrics["nodes"])


def test_rust_named_classes_are_the_builtin_nodes() -> None:
    node = rust.RustResampleNode(target_rate=16000)
    assert isinstance(node, AudioResampleNode)
    assert node.manifest_type() == "AudioResampleNode"
    out = node(music(48000, 0.1), sample_rate=48000)
    assert out.shape == (1600,)


def _python(node: remotemedia.nodes.BuiltinNode, x: np.ndarray, rate: int) -> object:
    ref = reference.oracle(node)
    head = ref.process(Audio(x, rate))
    tail = ref.flush()
    return remotemedia.nodes.audio._join(head, tail)


@pytest.mark.parametrize(
    ("rin", "rout", "channels"),
    [(48000, 16000, 1), (44100, 16000, 2), (16000, 48000, 1), (22050, 44100, 1), (48000, 44100, 2)],
)
def test_resample_rust_and_reference_agree(rin: int, rout: int, channels: int) -> None:
    x = music(rin, 1.0, channels)
    node = AudioResampleNode(rout)
    fast = node(x, sample_rate=rin)
    ref = _python(node, x, rin)
    assert isinstance(ref, Audio)
    assert fast.shape == ref.shape and fast.dtype == ref.dtype
    a, b = np.asarray(fast).reshape(-1), np.asarray(ref).reshape(-1)
    corr = np.corrcoef(a, b)[0, 1]
    assert corr > 0.999, corr


def test_vad_rust_and_reference_give_the_same_segments() -> None:
    for rate in (16000, 44100):
        x = bursts(rate)
        node = VADNode(threshold=-30, frame_length_ms=20)
        fast = node(x, sample_rate=rate)
        ref = _python(node, x, rate)
        assert [(s.start_ms, s.end_ms) for s in fast] == [(s.start_ms, s.end_ms) for s in ref]
        for a, b in zip(fast, ref, strict=True):
            assert abs(a.energy_db - b.energy_db) < 1e-9
        speech = VADNode(emit="speech", hangover_ms=120)
        np.testing.assert_array_equal(speech(x, sample_rate=rate), _python(speech, x, rate))
        events = VADNode(emit="events", hangover_ms=300)
        fast_events, ref_events = events(x, sample_rate=rate), _python(events, x, rate)
        assert [e["event"] for e in fast_events] == [e["event"] for e in ref_events]
        for a, b in zip(fast_events, ref_events, strict=True):
            assert a.keys() == b.keys()
            assert all(abs(a[k] - b[k]) < 1e-9 for k in a if k != "event")


@pytest.mark.parametrize("src", ["f32", "f64", "i16", "i32"])
@pytest.mark.parametrize("dst", ["f32", "f64", "i16", "i32"])
def test_format_conversion_rust_and_reference_are_identical(src: str, dst: str) -> None:
    rng = np.random.default_rng(1)
    f = np.concatenate(
        [
            rng.uniform(-1.2, 1.2, 5000),
            [1.0, -1.0, 0.5 / 32768, 1.5 / 32768, np.nan, np.inf, -np.inf],
        ]
    )
    dtypes = {"f32": np.float32, "f64": np.float64, "i16": np.int16, "i32": np.int32}
    x = reference.convert_format(f.astype(np.float64), src) if src != "f64" else f
    x = np.ascontiguousarray(x, dtype=dtypes[src])
    fast = FormatConverterNode(dst)(x, sample_rate=16000)  # type: ignore[arg-type]
    ref = reference.convert_format(x, dst)
    assert fast.dtype == ref.dtype
    np.testing.assert_array_equal(np.asarray(fast), ref)


def test_channel_mix_rust_and_reference_are_identical() -> None:
    x = (music(16000, 0.2, 3) * 32767).astype(np.int16)
    np.testing.assert_array_equal(
        ChannelMixNode(1)(x, sample_rate=16000), reference.channel_mix(x, 1)
    )
    m = music(16000, 0.2)
    np.testing.assert_array_equal(
        ChannelMixNode(4)(m, sample_rate=16000), reference.channel_mix(m, 4)
    )


def test_node_type_listing_matches_the_python_classes() -> None:
    from remotemedia.nodes.audio import BUILTIN_TYPES

    infos = json.loads(_native.node_types_json())
    # Every native node type has its Python class, and every class a native node type.
    assert {i["node_type"] for i in infos} == set(BUILTIN_TYPES)
    assert {"SpeechVADNode", "GainNode", "MixNode", "RemotePipelineNode"} <= set(BUILTIN_TYPES)
