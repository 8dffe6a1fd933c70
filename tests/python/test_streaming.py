"""Local streaming sessions: streamed output equals a whole-input run for any chunking, VAD
events arrive as they are decided, Python nodes stream, backpressure bounds memory."""

from __future__ import annotations

import asyncio
import pickle
import time
from typing import Any

import numpy as np
import pytest

import remotemedia
from remotemedia import (
    Audio,
    AudioResampleNode,
    ChannelMixNode,
    FormatConverterNode,
    Node,
    NodeError,
    PassThroughNode,
    Pipeline,
    SpeechVADNode,
    VADNode,
)
from remotemedia.streaming import StreamOutput

from conftest import bursts, music


def chunks(x: np.ndarray, rate: int, rng: np.random.Generator, max_secs: float = 1.0):
    pos = 0
    while pos < len(x):
        n = int(rng.integers(1, max(2, int(rate * max_secs)) + 1))
        if rng.random() < 0.2:
            n = int(rng.integers(1, 8))  # some tiny chunks, down to one sample
        yield x[pos : pos + n]
        pos += n


def joined(outputs: list[StreamOutput], node_id: str) -> Any:
    values = [o.data for o in outputs if o.node_id == node_id]
    if values and isinstance(values[0], Audio):
        return np.concatenate([np.asarray(v) for v in values])
    return [item for v in values for item in v]


def stream_all(
    p: Pipeline, x: np.ndarray, rate: int, seed: int, background: bool = False
) -> list[StreamOutput]:
    rng = np.random.default_rng(seed)
    channels = 1 if x.ndim == 1 else x.shape[1]
    outputs: list[StreamOutput] = []
    with p.stream(sample_rate=rate, channels=channels, background=background) as s:
        for c in chunks(x, rate, rng):
            s.send(c)
            outputs += s.poll()
        outputs += s.close()
    return outputs


CASES = [
    ("resample 48k->16k", lambda: [AudioResampleNode(16000)], 48000, 1),
    ("resample 44.1k->48k stereo fast", lambda: [AudioResampleNode(48000, "fast")], 44100, 2),
    ("resample 16k->22.05k medium", lambda: [AudioResampleNode(22050, "medium")], 16000, 1),
    ("vad segments", lambda: [VADNode(threshold=-30)], 16000, 1),
    ("vad speech + hangover", lambda: [VADNode(emit="speech", hangover_ms=90)], 16000, 2),
    ("vad events", lambda: [VADNode(emit="events", hangover_ms=200)], 8000, 1),
    ("format i16", lambda: [FormatConverterNode("i16")], 16000, 2),
    ("channel mix", lambda: [ChannelMixNode(1)], 16000, 3),
    ("pass through", lambda: [PassThroughNode()], 16000, 1),
    (
        "chain",
        lambda: [ChannelMixNode(1), AudioResampleNode(16000), FormatConverterNode("i16")],
        44100,
        2,
    ),
]


@pytest.mark.parametrize(("name", "nodes", "rate", "channels"), CASES, ids=[c[0] for c in CASES])
def test_streamed_output_equals_run_for_random_chunkings(
    name: str, nodes: Any, rate: int, channels: int
) -> None:
    x = music(rate, 2.0, channels) if channels > 1 else music(rate, 2.0)
    x = (
        x
        + (np.repeat(bursts(rate)[:, None], channels, 1) if channels > 1 else bursts(rate))[
            : len(x)
        ]
    )
    p = Pipeline(name)
    for n in nodes():
        p.add_node(n)
    sink = list(p.nodes)[-1]
    whole = p.run(x, sample_rate=rate)
    for seed in range(3):
        streamed = joined(stream_all(p, x, rate, seed, background=seed == 2), sink)
        if isinstance(whole, Audio):
            np.testing.assert_array_equal(
                streamed, np.asarray(whole), err_msg=f"{name} seed {seed}"
            )
        else:
            assert streamed == whole, f"{name} seed {seed}"


def test_audio_outputs_carry_contiguous_positions() -> None:
    p = Pipeline("pos").add_node(AudioResampleNode(16000))
    outputs = stream_all(p, music(48000, 1.0), 48000, seed=7)
    expected = 0
    for o in outputs:
        assert o.start_frame == expected
        assert o.start_ms == pytest.approx(expected / 16.0)
        expected += o.data.frames
    assert expected == 16000


def test_vad_speech_start_arrives_long_before_close() -> None:
    p = Pipeline("v").add_node(VADNode(emit="events", hangover_ms=300))
    x = bursts(16000)  # speech starts at 0.5 s
    seen_at: dict[str, float] = {}
    with p.stream(sample_rate=16000) as s:
        for i in range(0, len(x), 320):  # 20 ms chunks
            s.send(x[i : i + 320])
            time.sleep(0.002)
            for out in s.poll():
                for e in out.data:
                    seen_at.setdefault(e["event"], (i + 320) / 16.0)
        s.close()
    assert seen_at["speech_start"] <= 500 + 30 + 20 + 60, seen_at  # frame + chunk + worker lag
    assert seen_at["speech_end"] < 2000 - 100, seen_at  # decided after the hangover, not at close


class Collect(Node):
    def __init__(self) -> None:
        self.frames = 0
        self.calls: list[str] = []

    def initialize(self) -> None:
        self.frames = 0
        self.calls.append("initialize")

    def process(self, audio: Audio) -> Audio:
        self.frames += audio.frames
        self.calls.append("process")
        return audio * 2

    def flush(self) -> Any:
        self.calls.append("flush")
        return {"frames": self.frames}


def test_python_nodes_stream_too() -> None:
    node = Collect()
    p = Pipeline("py").add_node(AudioResampleNode(16000)).add_node(node, "collect")
    outputs = stream_all(p, music(48000, 1.0), 48000, seed=1)
    assert node.calls[0] == "initialize" and node.calls[-1] == "flush"
    assert node.calls.count("process") > 3
    assert outputs[-1].data == {"frames": 16000}
    audio = np.concatenate([np.asarray(o.data) for o in outputs[:-1]])
    whole = (
        Pipeline("ref").add_node(AudioResampleNode(16000)).run(music(48000, 1.0), sample_rate=48000)
    )
    np.testing.assert_allclose(audio, np.asarray(whole) * 2, rtol=1e-6)
    # A second stream on the same pipeline while the first is open is refused clearly.
    s = p.stream(48000)
    with pytest.raises(remotemedia.RemoteMediaError, match="already running"):
        p.stream(48000)
    with pytest.raises(remotemedia.RemoteMediaError, match="already running a session"):
        p.run(music(48000, 0.1), sample_rate=48000)
    s.close()
    p.run(music(48000, 0.1), sample_rate=48000)  # free again


class Slow(Node):
    def process(self, audio: Audio) -> Audio:
        time.sleep(0.05)
        return audio


def test_backpressure_makes_a_fast_producer_wait() -> None:
    p = Pipeline("bp").add_node(Slow())
    x = np.zeros(160, dtype=np.float32)
    with p.stream(sample_rate=16000, max_pending=2, background=True) as s:
        t = time.perf_counter()
        for _ in range(10):
            s.send(x)
            assert s._inbox.qsize() <= 2
        elapsed = time.perf_counter() - t
        s.close()
    # Ten chunks at 50 ms each with at most 2 queued: the producer waited for most of them.
    assert elapsed >= 0.3, elapsed
    with p.stream(sample_rate=16000, max_pending=1, background=True) as s:
        s.send(x)
        with pytest.raises(TimeoutError):
            for _ in range(5):
                s.send(x, timeout=0.01)
        s.close()


def test_errors_in_a_stream_surface_with_their_own_type() -> None:
    class Fails(Node):
        def process(self, audio: Audio) -> Audio:
            raise RuntimeError("broken microphone")

    p = Pipeline("e").add_node(Fails(), "fails")
    for background in (False, True):
        s = p.stream(sample_rate=16000, background=background)
        # In the foreground the chunk's own send() raises; in the background a later call.
        with pytest.raises(RuntimeError, match="broken microphone") as e:
            s.send(np.zeros(160, dtype=np.float32))
            s.close()
        assert e.value.remotemedia_node_id == "fails"  # type: ignore[attr-defined]
        assert s.done
        with pytest.raises(RuntimeError):
            s.send(np.zeros(160, dtype=np.float32))


@pytest.mark.parametrize("background", [False, True])
def test_bad_chunks_are_refused_in_the_callers_thread(background: bool) -> None:
    p = Pipeline("c").add_node(PassThroughNode())
    good = music(16000, 0.01, 2)
    with p.stream(sample_rate=16000, channels=2, background=background) as s:
        with pytest.raises(ValueError, match=r"shape \(160,\) but the session has 2 channel"):
            s.send(np.zeros(160, dtype=np.float32))
        with pytest.raises(TypeError, match="float16"):
            s.send(np.zeros((160, 2), dtype=np.float16))
        with pytest.raises(TypeError, match="use float32, float64, int16 or int32"):
            s.send(np.zeros((160, 2), dtype=">f4"))
        with pytest.raises(TypeError, match="takes a numpy array of audio, got list"):
            s.send([0.0, 0.0])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="16000 Hz"):
            s.send(Audio(np.zeros((160, 2), dtype=np.float32), 48000))
        # Refused chunks leave the stream usable; a strided view is copied, not refused.
        s.send(good)
        s.send(np.asfortranarray(good))
        s.send(np.stack([good[:, 1], good[:, 0]], axis=1)[:, ::-1])
        outputs = s.close()
    out = np.concatenate([np.asarray(o.data) for o in outputs])
    np.testing.assert_array_equal(out, np.concatenate([good, good, good]))
    with pytest.raises(remotemedia.RemoteMediaError, match="closed"):
        s.send(np.zeros((160, 2), dtype=np.float32))


def test_stream_outputs_are_immutable_named_tuples() -> None:
    p = Pipeline("t").add_node(PassThroughNode(), "sink")
    with p.stream(sample_rate=16000) as s:
        s.send(np.ones(160, dtype=np.float32))
        (out,) = s.poll()
    node_id, data, start = out
    assert (node_id, start, out.start_ms) == ("sink", 0, 0.0)
    assert out.data is data and data.sample_rate == 16000
    with pytest.raises(AttributeError):
        out.node_id = "other"  # type: ignore[misc]


def test_stream_outputs_made_by_the_runtime_are_full_stream_outputs() -> None:
    # Outputs are built in Rust as StreamOutput (a tuple subclass) and new audio as Audio
    # directly over the handed-over buffer: check every behaviour of both types.
    p = Pipeline("t").add_node(AudioResampleNode(16000), "rs")
    x = np.linspace(-0.5, 0.5, 4800, dtype=np.float32).reshape(2400, 2)
    with p.stream(sample_rate=48000, channels=2) as s:
        for i in range(0, 2400, 480):
            s.send(x[i : i + 480])
        outs = s.poll()
        outs += s.close()
    assert outs and all(type(o) is StreamOutput for o in outs)
    first = outs[0]
    assert first == ("rs", first.data, 0) and first._asdict()["node_id"] == "rs"
    assert first._replace(start_frame=5).start_frame == 5 and len(first) == 3
    data = first.data
    assert type(data) is Audio and data.sample_rate == 16000 and data.shape[1] == 2
    assert data.flags.c_contiguous and data.flags.writeable and data.flags.owndata is False
    data[0, 0] = 0.25  # the caller owns it: writeable in place
    view = data[:3]
    assert type(view) is Audio and view.sample_rate == 16000 and view[0, 0] == 0.25
    del data, first, outs
    assert view[0, 0] == 0.25  # the view keeps the Rust buffer alive
    streamed = np.concatenate([o.data for o in stream_all(p, x, 48000, seed=3)])
    np.testing.assert_array_equal(streamed, np.asarray(p.run(x, sample_rate=48000)))


def test_chunks_without_output_poll_as_empty_lists() -> None:
    p = Pipeline("v").add_node(VADNode(emit="events"))
    with p.stream(sample_rate=16000) as s:
        for _ in range(5):
            s.send(np.zeros(320, dtype=np.float32))
            got = s.poll()
            assert got == [] and type(got) is list
        assert s.close() == []


def test_leaving_a_with_block_by_exception_aborts_and_frees_the_pipeline() -> None:
    p = Pipeline("a").add_node(AudioResampleNode(16000))
    with pytest.raises(KeyError), p.stream(sample_rate=48000) as s:
        s.send(music(48000, 0.1))
        raise KeyError("stop")
    assert s.done
    assert p.run(music(48000, 0.3), sample_rate=48000).frames == 4800


def _reused_buffer_chunks(n: int) -> tuple[np.ndarray, list[float]]:
    return np.zeros(160, dtype=np.float32), [i / 64 for i in range(n)]


@pytest.mark.parametrize("mode", ["foreground", "background", "async"])
def test_a_producer_reusing_one_buffer_gets_every_chunk_as_sent(mode: str) -> None:
    # Queued chunks are the caller's data at send() time, even when the caller overwrites its
    # buffer right after (the usual audio-callback pattern).
    p = Pipeline("reuse").add_node(FormatConverterNode("f64"))
    buf, values = _reused_buffer_chunks(50)
    if mode == "async":

        async def main() -> list[StreamOutput]:
            async with p.astream(sample_rate=16000, max_pending=64) as s:
                for v in values:
                    buf[:] = v
                    await s.send(buf)
                return await s.close()

        outs = asyncio.run(main())
    else:
        with p.stream(sample_rate=16000, background=mode == "background", max_pending=64) as s:
            outs = []
            for v in values:
                buf[:] = v
                s.send(buf)
                outs += s.poll()
            outs += s.close()
    got = np.concatenate([np.asarray(o.data) for o in outs])
    np.testing.assert_array_equal(got, np.repeat(np.array(values, dtype=np.float64), 160))


def test_async_sessions() -> None:
    p = Pipeline("async").add_node(AudioResampleNode(16000))
    x = music(48000, 1.0)

    async def main() -> list[StreamOutput]:
        async with p.astream(sample_rate=48000) as s:

            async def produce() -> None:
                for i in range(0, len(x), 960):
                    await s.send(x[i : i + 960])
                await s.finish()

            task = asyncio.create_task(produce())
            outs = [o async for o in s]
            await task
            return outs

    outs = asyncio.run(main())
    audio = np.concatenate([np.asarray(o.data) for o in outs])
    np.testing.assert_array_equal(audio, p.run(x, sample_rate=48000))


@pytest.mark.parametrize("background", [False, True])
def test_each_send_error_names_what_changed_in_that_chunk(background: bool) -> None:
    """A sample-format change fails the stream (the resampler refuses it); a later chunk with
    another channel count is refused for *that*, not with the earlier format error."""
    p = Pipeline("fmt").add_node(AudioResampleNode(16000))
    s = p.stream(sample_rate=48000, channels=1, background=background)
    s.send(np.zeros(480, dtype=np.float32))
    with pytest.raises(NodeError, match="sample format changed mid-stream from f32 to i16"):
        s.send(np.zeros(480, dtype=np.int16))
        s.wait(30)
        # The first chunk's output (the FIR resampler has some for 10 ms) comes first.
        s.poll()
        s.poll()
    with pytest.raises(ValueError, match=r"shape \(480, 2\) but the session has 1 channel"):
        s.send(np.zeros((480, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="chunk is 44100 Hz but the session was opened at 48000"):
        s.send(Audio(np.zeros(441, dtype=np.float32), 44100))
    # A chunk that fits gets the stream's own error again (it ended at the format change).
    with pytest.raises(NodeError, match="from f32 to i16"):
        s.send(np.zeros(480, dtype=np.float32))


def test_a_node_failing_in_the_native_send_ends_the_stream_once() -> None:
    # A foreground chunk runs in native code end to end (the session's send is the runtime's
    # own); a failure there still ends the stream as the Python path does: that send raises
    # the node's error, outputs made before it are still delivered, then every call raises it.
    p = Pipeline("f").add_node(SpeechVADNode(emit="probabilities"), "vad")
    s = p.stream(sample_rate=16000)
    assert type(s.send).__name__ == "builtin_function_or_method"
    s.send(music(16000, 0.5))
    s.send(music(16000, 0.5))
    with pytest.raises(NodeError, match="sample format changed mid-stream") as e:
        s.send(np.zeros(320, dtype=np.int16))
    assert (e.value.node_id, e.value.node_type) == ("vad", "SpeechVADNode")
    assert s.done and s.metrics() is not None
    assert type(s.send).__name__ == "method"  # back to the Python send, which knows the error
    probs = [p for o in s.poll() for p in o.data]
    assert len(probs) >= 27  # 1 s at 32 ms frames, minus the frames still in the window
    with pytest.raises(NodeError, match="sample format changed") as again:
        s.send(np.zeros(320, dtype=np.float32))
    assert again.value is e.value
    with pytest.raises(NodeError):
        s.poll()
    # The instance is free again: a new stream works.
    with p.stream(sample_rate=16000) as s2:
        s2.send(music(16000, 0.1))


def test_listeners_hear_about_foreground_outputs() -> None:
    p = Pipeline("l").add_node(PassThroughNode())
    s = p.stream(sample_rate=16000)
    s.send(np.ones(160, dtype=np.float32))  # through the native send
    calls: list[int] = []
    s.add_listener(lambda: calls.append(len(calls)))
    s.send(np.ones(160, dtype=np.float32))
    assert calls == [0] and len(s.poll()) == 2
    s.close()
    assert len(calls) == 2  # the end of the stream


def test_a_dropped_foreground_session_is_freed_without_the_cycle_collector() -> None:
    import gc
    import weakref

    p = Pipeline("d").add_node(AudioResampleNode(16000))
    gc.disable()
    try:
        s = p.stream(sample_rate=48000)
        s.send(music(48000, 0.1))
        ref = weakref.ref(s)
        del s
        assert ref() is None  # no reference cycle through the native send
    finally:
        gc.enable()
    # Dropping it aborted the stream and gave the instance back.
    assert p.run(music(48000, 0.3), sample_rate=48000).frames == 4800


def test_streams_on_threads_share_a_pipeline_without_waiting_on_each_other() -> None:
    # Small chunks through native nodes run with the GIL held (no release per chunk): threads
    # streaming through one pipeline at once must still each get their own instance and the
    # output of a whole run, and a session used from two threads must not deadlock.
    import threading

    p = Pipeline("t").add_node(AudioResampleNode(16000), "rs")
    x = music(48000, 0.5)
    whole = np.asarray(p.run(x, sample_rate=48000))
    results: dict[int, np.ndarray] = {}

    def worker(k: int) -> None:
        with p.stream(sample_rate=48000) as s:
            outs = []
            for i in range(0, len(x), 960):
                s.send(x[i : i + 960])
                outs += s.poll()
                s.metrics()  # reads the session while others push
            outs += s.close()
        results[k] = np.concatenate([np.asarray(o.data) for o in outs])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert sorted(results) == [0, 1, 2, 3]
    for out in results.values():
        np.testing.assert_array_equal(out, whole)

    shared = p.stream(sample_rate=48000)
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            shared._backend.is_open()
            shared._backend.metrics_json()

    t = threading.Thread(target=reader)
    t.start()
    outs = []
    try:
        for i in range(0, len(x), 960):
            shared.send(x[i : i + 960])
            outs += shared.poll()
    finally:
        stop.set()
        t.join(timeout=60)
    assert not t.is_alive()
    outs += shared.close()
    np.testing.assert_array_equal(np.concatenate([np.asarray(o.data) for o in outs]), whole)


def test_kept_stream_outputs_cost_the_cycle_collector_nothing() -> None:
    # A caller keeping every output of a long stream must not make Python's cycle collector
    # visit them over and over: the runtime's audio outputs are untracked (they can be in no
    # cycle: an Audio has no instance dict, only its rate) and so are their StreamOutput
    # tuples. Views made by the caller are ordinary objects again.
    import gc

    p = Pipeline("g").add_node(AudioResampleNode(16000), "rs")
    with p.stream(sample_rate=48000) as s:
        for _ in range(20):
            s.send(music(48000, 0.02))
        outs = s.poll()
    assert len(outs) >= 19
    assert not any(gc.is_tracked(o.data) or gc.is_tracked(o) for o in outs)
    data = outs[0].data
    assert data.sample_rate == 16000 and data[:4].sample_rate == 16000
    assert gc.is_tracked(data[:4])
    with pytest.raises(AttributeError):
        data.label = "x"  # type: ignore[attr-defined]  # like ndarray: no new attributes
    assert pickle.loads(pickle.dumps(data)).sample_rate == 16000
