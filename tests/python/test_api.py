"""The user-facing API: the seed's snippets unchanged, building, serializing, inputs, outputs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

import remotemedia
from remotemedia import (
    Audio,
    AudioResampleNode,
    ChannelMixNode,
    FormatConverterNode,
    ManifestError,
    PassThroughNode,
    Pipeline,
    Segment,
    VADNode,
)

from conftest import REPO, bursts, music


def test_seed_phase1_snippet_runs_unchanged() -> None:
    audio_data = music(48000, 1.0)
    p = Pipeline("audio")
    p.add_node(AudioResampleNode(target_rate=16000))
    result = p.run(audio_data, sample_rate=48000)
    assert isinstance(result, Audio)
    assert result.sample_rate == 16000
    assert result.shape == (16000,)
    assert result.dtype == np.float32


def test_seed_phase2_snippet_runs_unchanged() -> None:
    from remotemedia.nodes.rust import RustResampleNode, RustVADNode

    audio_data = bursts(48000)
    p = Pipeline("audio")
    p.add_node(RustVADNode(threshold=-30.0))
    p.add_node(RustResampleNode(target_rate=16000, quality="high"))
    with pytest.raises(
        remotemedia.NodeError, match=r"\(AudioResampleNode\) failed: expected audio, got segments"
    ) as e:
        p.run(audio_data, sample_rate=48000)
    assert (e.value.kind, e.value.code) == ("not_audio", "invalid_input")
    # With the VAD emitting speech audio the chain is meaningful.
    p = Pipeline("audio")
    p.add_node(RustVADNode(threshold=-30.0, emit="speech"))
    p.add_node(RustResampleNode(target_rate=16000, quality="high"))
    out = p.run(audio_data, sample_rate=48000)
    assert out.sample_rate == 16000
    assert 0.85 < out.duration < 0.95


def test_add_node_chains_and_ids_are_derived_and_unique() -> None:
    p = (
        Pipeline("p")
        .add_node(AudioResampleNode(16000))
        .add_node(AudioResampleNode(8000))
        .add_node(VADNode())
    )
    assert list(p.nodes) == ["audio_resample", "audio_resample_2", "vad"]
    with pytest.raises(ValueError, match="already used"):
        p.add_node(PassThroughNode(), "vad")
    with pytest.raises(TypeError, match=r"remotemedia\.Node"):
        p.add_node(lambda x: x)  # type: ignore[arg-type]


def test_every_node_keeps_its_params_through_serialize_and_from_manifest() -> None:
    p = Pipeline("roundtrip", description="all params")
    nodes = [
        AudioResampleNode(target_rate=22050, quality="fast"),
        VADNode(threshold=-42.5, frame_length_ms=20, emit="speech"),
        VADNode(threshold=-30.0, frame_length_ms=10, emit="events", hangover_ms=150),
        FormatConverterNode(target_format="i32"),
        ChannelMixNode(channels=2),
        PassThroughNode(),
    ]
    for n in nodes:
        p.add_node(n)
    m = json.loads(p.serialize())
    got = [(n["node_type"], n["params"]) for n in m["nodes"]]
    assert got == [
        ("AudioResampleNode", {"target_rate": 22050, "quality": "fast"}),
        (
            "VADNode",
            {"threshold": -42.5, "frame_length_ms": 20, "emit": "speech", "hangover_ms": 0},
        ),
        (
            "VADNode",
            {"threshold": -30.0, "frame_length_ms": 10, "emit": "events", "hangover_ms": 150},
        ),
        ("FormatConverterNode", {"target_format": "i32", "dither": "none", "seed": 0}),
        ("ChannelMixNode", {"channels": 2}),
        ("PassThroughNode", {}),
    ]
    assert m["version"] == "v1"
    assert m["metadata"] == {"name": "roundtrip", "description": "all params"}
    # Rebuild from text, dict and file: same manifest, same node classes and params.
    for source in (p.serialize(), m):
        q = Pipeline.from_manifest(source)
        assert json.loads(q.serialize()) == m
        for (_, a), (_, b) in zip(p.nodes.items(), q.nodes.items(), strict=True):
            assert type(a) is type(b) and a.params == b.params


def test_from_manifest_reads_files_and_the_bundled_examples(tmp_path: Path) -> None:
    for path in sorted((REPO / "examples").glob("*.json")):
        p = Pipeline.from_manifest(path)
        original = json.loads(path.read_text())
        rebuilt = json.loads(p.serialize())
        assert rebuilt["connections"] == original["connections"]
        for a, b in zip(rebuilt["nodes"], original["nodes"], strict=True):
            # Same nodes; omitted params come back with their defaults spelled out.
            assert (a["id"], a["node_type"]) == (b["id"], b["node_type"])
            assert a["params"].items() >= b.get("params", {}).items()
    f = tmp_path / "m.json"
    f.write_text(Pipeline("f").add_node(VADNode()).serialize())
    assert list(Pipeline.from_manifest(str(f)).nodes) == ["vad"]


def test_connect_builds_non_linear_graphs_and_several_sinks_give_a_dict() -> None:
    src = PassThroughNode()
    r16 = AudioResampleNode(16000)
    vad = VADNode()
    p = Pipeline("fan").add_node(src).add_node(r16).add_node(vad)
    p.connect(src, r16).connect("pass_through", "vad")
    out = p.run(bursts(48000), sample_rate=48000)
    assert set(out) == {"audio_resample", "vad"}
    assert out["audio_resample"].sample_rate == 16000
    assert [type(s) for s in out["vad"]] == [Segment, Segment]
    with pytest.raises(ValueError, match="no node 'nope'"):
        p.connect("nope", vad)


def test_validate_reports_every_problem_with_node_and_field() -> None:
    class Custom(remotemedia.Node):
        def process(self, data: object) -> object:
            return data

    p = Pipeline("bad").add_node(VADNode()).add_node(Custom())
    p.connect("vad", "custom").connect("custom", "vad")
    with pytest.raises(ManifestError, match=r"cycle detected: vad -> custom -> vad"):
        p.validate()
    with pytest.raises(ManifestError, match="at least one node"):
        Pipeline("empty").validate()


def test_constructor_validation_uses_the_runtime_messages() -> None:
    with pytest.raises(ManifestError) as e:
        AudioResampleNode(target_rate=7000)
    msg = str(e.value)
    assert msg == (
        "AudioResampleNode: params.target_rate: 7000 is out of range; "
        "expected an integer in 8000..=384000 Hz"
    )
    # Structured, for programs (as pydantic's errors()).
    assert e.value.issues == [
        {
            "node_id": None,
            "node_type": "AudioResampleNode",
            "field": "params.target_rate",
            "message": "7000 is out of range; expected an integer in 8000..=384000 Hz",
        }
    ]
    # The runtime says the same, with the node id in front.
    manifest = {
        "version": "v1",
        "nodes": [{"id": "r", "node_type": "AudioResampleNode", "params": {"target_rate": 7000}}],
    }
    with pytest.raises(ManifestError) as e2:
        Pipeline.from_manifest(manifest)
    assert msg.split(": ", 1)[1] in str(e2.value)
    assert "node 'r' (AudioResampleNode)" in str(e2.value)
    assert e2.value.issues[0]["node_id"] == "r"
    assert e2.value.issues[0]["field"] == "params.target_rate"

    with pytest.raises(ManifestError, match="unknown variant `loud`"):
        VADNode(emit="loud")  # type: ignore[arg-type]
    with pytest.raises(ManifestError, match=r"params\.threshold: 3 is out of range"):
        VADNode(threshold=3)
    with pytest.raises(ManifestError, match="unknown variant `u8`"):
        FormatConverterNode("u8")  # type: ignore[arg-type]
    with pytest.raises(ManifestError, match="channels: 0 is out of range"):
        ChannelMixNode(0)
    with pytest.raises(ManifestError, match="got string"):
        AudioResampleNode(target_rate="16k")  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int32])
@pytest.mark.parametrize("channels", [1, 2])
def test_inputs_in_every_dtype_and_layout_keep_dtype_and_layout(dtype: type, channels: int) -> None:
    x = music(44100, 0.5, channels)
    if dtype in (np.int16, np.int32):
        x = (x * (32767 if dtype is np.int16 else 2**31 - 1)).astype(dtype)
    else:
        x = x.astype(dtype)
    out = Pipeline("p").add_node(AudioResampleNode(16000)).run(x, sample_rate=44100)
    assert out.dtype == dtype
    expected_frames = -(-x.shape[0] * 16000 // 44100)
    assert out.shape == ((expected_frames,) if channels == 1 else (expected_frames, channels))


def test_input_errors_are_clear() -> None:
    p = Pipeline("p").add_node(AudioResampleNode(16000))
    x = music(48000, 0.1)
    with pytest.raises(ValueError, match="pass sample_rate"):
        p.run(x)
    with pytest.raises(TypeError, match="dtype float16 is not supported"):
        p.run(x.astype(np.float16), sample_rate=48000)
    for other in (">f4", ">i2", np.uint16, np.int64, np.complex64):
        with pytest.raises(TypeError, match="use float32, float64, int16 or int32"):
            p.run(x.astype(other), sample_rate=48000)
    with pytest.raises(ValueError, match=r"looks like \(channels, frames\), pass `audio.T`"):
        p.run(np.zeros((2, 48000), dtype=np.float32), sample_rate=48000)
    with pytest.raises(ValueError, match=r"1-D .* or 2-D"):
        p.run(np.zeros((2, 2, 2), dtype=np.float32), sample_rate=48000)
    with pytest.raises(remotemedia.NodeError, match=r"outside the supported 8000\.\.=384000 Hz"):
        p.run(x, sample_rate=4000)
    with pytest.raises(ValueError, match="is 48000 Hz but sample_rate=44100"):
        p.run(Audio(x, 48000), sample_rate=44100)
    with pytest.raises(FileNotFoundError):
        p.run("no/such/file.wav")


def test_non_contiguous_input_is_accepted() -> None:
    stereo = music(48000, 0.2, 2)
    left = stereo[:, 0]  # a strided view
    out = Pipeline("p").add_node(AudioResampleNode(16000)).run(left, sample_rate=48000)
    assert out.shape == (3200,)


def test_a_file_path_is_read_and_results_carry_their_rate(example_wav: Path) -> None:
    p = Pipeline("p").add_node(ChannelMixNode(1)).add_node(AudioResampleNode(16000))
    out = p.run(example_wav)
    assert out.sample_rate == 16000 and out.dtype == np.int16
    segs = Pipeline("v").add_node(VADNode(threshold=-35)).run(str(example_wav))
    assert len(segs) >= 2 and all(s.end_ms > s.start_ms for s in segs)


def test_arun_is_awaitable() -> None:
    p = Pipeline("p").add_node(AudioResampleNode(16000))

    async def main() -> list[Audio]:
        x = music(48000, 0.5)
        return list(await asyncio.gather(p.arun(x, 48000), p.arun(x, 48000)))

    a, b = asyncio.run(main())
    np.testing.assert_array_equal(a, b)


def test_metrics_have_the_seed_structure_and_a_trace(tmp_path: Path) -> None:
    p = Pipeline("m").add_node(AudioResampleNode(16000)).add_node(VADNode())
    assert p.get_metrics() is None
    p.run(music(48000, 2.0), sample_rate=48000)
    m = p.get_metrics()
    assert m is not None and m["pipeline"] == "m"
    for key in ("total_time_ms", "total_memory_mb", "nodes"):
        assert key in m
    for n in m["nodes"]:
        assert set(n) >= {
            "node_id",
            "node_type",
            "execution_time_ms",
            "execution_time_us",
            "memory_mb",
            "status",
            "retry_count",
            "runtime",
        }
        assert n["execution_time_us"] > 0 and n["status"] == {"state": "success"}
    path = tmp_path / "trace.json"
    p.export_trace(path)
    events = json.loads(path.read_text())["traceEvents"]
    assert any(e["ph"] == "X" and e["name"] == "audio_resample.process" for e in events)


def test_audio_is_an_ndarray_with_a_rate() -> None:
    a = Audio(np.zeros((480, 2), dtype=np.float32), 48000)
    assert isinstance(a, np.ndarray) and a.channels == 2 and a.frames == 480
    assert a.duration == 0.01
    assert (a * 2).sample_rate == 48000
    assert a[:240].sample_rate == 48000
    import pickle

    b = pickle.loads(pickle.dumps(a))
    assert b.sample_rate == 48000 and b.shape == a.shape
    with pytest.raises(TypeError, match="sample_rate must be an integer"):
        Audio(np.zeros(3), 16000.5)  # type: ignore[arg-type]


def test_standalone_nodes_stream_and_one_shot() -> None:
    x = music(48000, 0.5)
    node = AudioResampleNode(16000)
    whole = node(x, sample_rate=48000)
    assert whole.shape == (8000,)
    parts = [node.process(c, sample_rate=48000) for c in np.array_split(x, 7)]
    parts.append(node.flush())
    streamed = np.concatenate([np.asarray(p) for p in parts if p is not None])
    np.testing.assert_array_equal(streamed, whole)


def test_one_shot_calls_join_the_flushed_tail_and_start_fresh_each_time() -> None:
    # The runtime joins process() and flush() of a whole-clip call (NativeNode.run): audio
    # appended, lists concatenated; each call is a new stream, also after a refused one.
    x = music(44100, 0.7, 2)
    node = AudioResampleNode(16000)
    head = node.process(x, sample_rate=44100)
    tail = node.flush()
    assert head is not None and tail is not None and tail.frames > 0
    whole = node(x, sample_rate=44100)
    assert isinstance(whole, Audio) and whole.sample_rate == 16000
    assert whole.shape == (int(np.ceil(x.shape[0] * 16000 / 44100)), 2)
    np.testing.assert_array_equal(whole, np.concatenate([head, tail]))
    with pytest.raises(remotemedia.NodeError, match="finite"):
        node(np.full(100, np.nan, np.float32), sample_rate=44100)
    np.testing.assert_array_equal(node(x, sample_rate=44100), whole)

    speech = bursts(16000)
    vad = VADNode(threshold=-30, frame_length_ms=20)
    head_s = vad.process(speech, sample_rate=16000) or []
    tail_s = vad.flush() or []
    segments = vad(speech, sample_rate=16000)
    assert len(segments) >= 2
    assert [(s.start_ms, s.end_ms) for s in segments] == [
        (s.start_ms, s.end_ms) for s in [*head_s, *tail_s]
    ]


def test_audio_views_slices_and_results_keep_the_rate() -> None:
    # Audio's finalizer (the runtime's C version of Audio.__array_finalize__): a new Audio
    # made from an Audio keeps its rate, one made from a plain array or from scratch has None.
    a = Audio(np.arange(12, dtype=np.float32).reshape(6, 2), 22050)
    for derived in (a[1:4], a[:, 0], a * 2, a.view(Audio), np.abs(a), a.copy()):
        assert isinstance(derived, Audio) and derived.sample_rate == 22050
    assert np.zeros(3).view(Audio).sample_rate is None
    assert np.ndarray.__new__(Audio, (4,)).sample_rate is None
    assert type(np.asarray(a)) is np.ndarray
    out = Pipeline("r").add_node(AudioResampleNode(16000)).run(a[:, 0].copy(), sample_rate=22050)
    assert out.sample_rate == 16000 and out[1:].sample_rate == 16000


def test_a_built_in_node_s_process_stays_the_node_s_after_the_first_call() -> None:
    # After its first chunk a built-in node calls the runtime directly (no Python frame);
    # results are the same, and a subclass that overrides process keeps its override.
    node = AudioResampleNode(8000)
    first = node.process(bursts(16000)[:1600], sample_rate=16000)
    second = node.process(bursts(16000)[1600:3200], sample_rate=16000)
    assert first is not None and second is not None and first.frames + second.frames > 0

    seen: list[int] = []

    class Counting(AudioResampleNode):
        def process(self, data: object, sample_rate: int | None = None) -> object:
            seen.append(1)
            return super().process(data, sample_rate)

    c = Counting(8000)
    for _ in range(3):
        c.process(bursts(16000)[:1600], sample_rate=16000)
    assert len(seen) == 3
