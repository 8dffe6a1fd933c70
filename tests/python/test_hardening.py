"""Issue 9 hardening, seen from Python: breakers only where configured, clear rate errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import remotemedia
from remotemedia import AudioResampleNode, PassThroughNode, Pipeline


def test_circuit_breaker_round_trips_and_is_validated() -> None:
    p = Pipeline("b").add_node(
        AudioResampleNode(16000), "r", circuit_breaker={"failure_threshold": 2, "cooldown_ms": 500}
    )
    p.add_node(PassThroughNode(), "p")
    manifest = json.loads(p.serialize())
    assert manifest["nodes"][0]["circuit_breaker"] == {"failure_threshold": 2, "cooldown_ms": 500}
    assert "circuit_breaker" not in manifest["nodes"][1]
    assert json.loads(Pipeline.from_manifest(manifest).serialize()) == manifest
    with pytest.raises(ValueError, match="circuit_breaker must be a dict with keys among"):
        Pipeline("x").add_node(PassThroughNode(), circuit_breaker={"threshold": 3})


def _nan_input() -> np.ndarray:
    x = np.zeros(4800, dtype=np.float32)
    x[17] = np.nan
    return x


def test_bad_input_is_an_input_error_and_never_opens_a_breaker() -> None:
    good = np.full(4800, 0.1, dtype=np.float32)
    for breaker in (None, {"failure_threshold": 2, "cooldown_ms": 60000}):
        p = Pipeline("n").add_node(AudioResampleNode(16000), "r", circuit_breaker=breaker)
        for _ in range(10):
            with pytest.raises(remotemedia.NodeError, match=r"sample 17 .*NaN.*finite"):
                p.run(_nan_input(), sample_rate=48000)
        out = p.run(good, sample_rate=48000)
        assert len(out) == 1600


def test_configured_breaker_opens_and_default_does_not() -> None:
    class Fails(remotemedia.Node):
        def process(self, data: object) -> object:
            raise RuntimeError("boom")

    x = np.zeros(160, dtype=np.float32)
    p = Pipeline("d").add_node(Fails(), "f", retry={"max_attempts": 1})
    for _ in range(8):
        with pytest.raises(RuntimeError, match="boom"):
            p.run(x, sample_rate=16000)
    p = Pipeline("c").add_node(
        Fails(), "f", retry={"max_attempts": 1}, circuit_breaker={"failure_threshold": 2}
    )
    for _ in range(2):
        with pytest.raises(RuntimeError, match="boom"):
            p.run(x, sample_rate=16000)
    with pytest.raises(remotemedia.CircuitOpenError):
        p.run(x, sample_rate=16000)


@pytest.mark.parametrize("rate", [-1, 0, 2**32, 2**64, -(2**40)])
def test_unrepresentable_sample_rates_are_value_errors(rate: int) -> None:
    p = Pipeline("s").add_node(PassThroughNode())
    with pytest.raises(ValueError, match=r"sample_rate must be in 8000\.\.=384000 Hz"):
        p.run(np.zeros(480, dtype=np.float32), sample_rate=rate)


@pytest.mark.parametrize("rate", [1, 7999, 384001, 2**32 - 1])
def test_out_of_range_rates_are_refused_by_every_node(rate: int) -> None:
    p = Pipeline("s").add_node(PassThroughNode())
    with pytest.raises(remotemedia.NodeError, match=r"PassThroughNode.*8000\.\.=384000 Hz"):
        p.run(np.zeros(480, dtype=np.float32), sample_rate=rate)


class FailsOnChunk(remotemedia.Node):
    """Passes chunks on, numbered by their first sample; raises on chunk ``bad``."""

    def __init__(self, bad: int) -> None:
        self.bad = bad

    def process(self, data: object) -> object:
        x = np.asarray(data)
        if int(x[0]) == self.bad:
            raise ValueError(f"chunk {self.bad} is bad")
        return data


def _chunk(i: int) -> np.ndarray:
    return np.full(160, float(i), dtype=np.float32)


@pytest.mark.parametrize("background", [False, True])
def test_a_failed_stream_keeps_the_outputs_of_earlier_chunks_for_close(background: bool) -> None:
    p = Pipeline("s").add_node(FailsOnChunk(bad=3), "f")
    s = p.stream(sample_rate=16000, background=background)
    try:  # in the foreground chunk 3's send() raises; in the background maybe a later call
        for i in range(6):
            s.send(_chunk(i))
    except ValueError as exc:
        assert "chunk 3 is bad" in str(exc)
    # close() raises the stream's own error (not "the session is closed"), and carries
    # every output produced before the failure, exactly once.
    with pytest.raises(ValueError, match="chunk 3 is bad") as e:
        s.close()
    got = [int(np.asarray(o.data)[0]) for o in e.value.outputs]  # type: ignore[attr-defined]
    assert got == [0, 1, 2]
    # Nothing is delivered twice: poll() has nothing left and raises the error.
    with pytest.raises(ValueError, match="chunk 3 is bad"):
        s.poll()


def test_a_failed_background_stream_closed_without_sending_more_keeps_outputs() -> None:
    p = Pipeline("s").add_node(FailsOnChunk(bad=2), "f")
    s = p.stream(sample_rate=16000, background=True)
    for i in range(3):
        s.send(_chunk(i))
    with pytest.raises(ValueError, match="chunk 2 is bad") as e:
        s.close(timeout=10)
    got = [int(np.asarray(o.data)[0]) for o in e.value.outputs]  # type: ignore[attr-defined]
    assert got == [0, 1]


def test_async_iteration_yields_every_output_before_the_error() -> None:
    import asyncio

    p = Pipeline("s").add_node(FailsOnChunk(bad=4), "f")

    async def main() -> tuple[list[int], BaseException | None]:
        s = p.astream(sample_rate=16000)
        for i in range(6):
            try:
                await s.send(_chunk(i))
            except ValueError:
                break
        try:
            await s.finish()
        except ValueError:
            pass
        seen: list[int] = []
        error: BaseException | None = None
        try:
            async for out in s:
                seen.append(int(np.asarray(out.data)[0]))
        except ValueError as exc:
            error = exc
        return seen, error

    seen, error = asyncio.run(main())
    assert seen == [0, 1, 2, 3]
    assert error is not None and "chunk 4 is bad" in str(error)


def test_async_close_of_a_failed_stream_carries_the_outputs() -> None:
    import asyncio

    p = Pipeline("s").add_node(FailsOnChunk(bad=2), "f")

    async def main() -> list[int]:
        s = p.astream(sample_rate=16000)
        for i in range(3):
            await s.send(_chunk(i))
        try:
            await s.close()
        except ValueError as e:
            return [int(np.asarray(o.data)[0]) for o in e.outputs]  # type: ignore[attr-defined]
        raise AssertionError("close() did not raise")

    assert asyncio.run(main()) == [0, 1]


# ---------------------------------------------------------------- issue 34, weak items


class _Writer(remotemedia.Node):
    """Tries every way to change its input in place."""

    def process(self, audio: Any) -> Any:
        arr = np.asarray(audio)
        with pytest.raises(ValueError, match="WRITEABLE"):
            arr.flags.writeable = True
        with pytest.raises(ValueError, match="read-only"):
            arr[...] = 7
        return audio


def test_a_python_node_cannot_change_the_callers_array() -> None:
    x = np.ones(1600, dtype=np.float32)
    out = Pipeline("w").add_node(_Writer()).run(x, sample_rate=16000)
    assert np.array_equal(x, np.ones(1600, dtype=np.float32))
    assert np.array_equal(np.asarray(out), x)


def test_from_manifest_takes_a_bom_and_never_treats_json_as_a_path(tmp_path: Path) -> None:
    text = '{"version": "v1", "nodes": [{"id": "p", "node_type": "PassThroughNode"}]}'
    assert list(Pipeline.from_manifest("\ufeff" + text).nodes) == ["p"]
    f = tmp_path / "m.json"
    f.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert list(Pipeline.from_manifest(f).nodes) == ["p"]
    assert list(Pipeline.from_manifest(str(f)).nodes) == ["p"]
    # Deep arrays are JSON (not a file name too long for the OS).
    with pytest.raises(
        remotemedia.ManifestError, match=r"nested too deeply|expected a JSON object"
    ):
        Pipeline.from_manifest("[" * 10000 + "]" * 10000)
    with pytest.raises(remotemedia.ManifestError, match="neither manifest JSON nor a file"):
        Pipeline.from_manifest("x" * 100_000)
    with pytest.raises(remotemedia.ManifestError, match="neither manifest JSON nor a file"):
        Pipeline.from_manifest("no\nsuch\nfile")
    with pytest.raises(remotemedia.ManifestError, match="nodes"):
        Pipeline.from_manifest('{"version": "v1", "nodes": null}')


def test_from_manifest_refuses_a_key_given_twice_with_python_nodes_too() -> None:
    text = '{"version": "v1", "nodes": [{"id": "a", "node_type": "cli_nodes:Gain", "id": "b"}]}'
    with pytest.raises(remotemedia.ManifestError, match="'id' appears twice"):
        Pipeline.from_manifest(text)


def test_from_manifest_stops_reading_at_the_size_limit() -> None:
    with pytest.raises(remotemedia.ManifestError, match="over the limit of 1048576 bytes"):
        Pipeline.from_manifest("/dev/zero")


def test_pickling_or_copying_a_pipeline_says_what_to_do_instead() -> None:
    import copy
    import pickle

    p = Pipeline("x").add_node(PassThroughNode())
    for attempt in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match=r"serialize\(\).*from_manifest"):
            attempt(p)


def test_sending_through_a_session_nothing_keeps_says_to_keep_it() -> None:
    p = Pipeline("x").add_node(PassThroughNode())
    with pytest.raises(remotemedia.RemoteMediaError, match="keep it in a variable"):
        p.stream(sample_rate=16000).send(np.zeros(160, dtype=np.float32))
    # Kept, it works.
    s = p.stream(sample_rate=16000)
    s.send(np.ones(160, dtype=np.float32))
    outs = list(s.poll()) + list(s.close())
    assert sum(np.asarray(o.data).shape[0] for o in outs) == 160


class _Same(remotemedia.Node):
    def process(self, audio: Any) -> Any:
        return audio


def _frames_in_child(seed: int) -> int:
    p = Pipeline("child").add_node(AudioResampleNode(8000)).add_node(_Same())
    x = np.random.default_rng(seed).standard_normal(16000).astype(np.float32)
    s = p.stream(sample_rate=16000, background=True)
    s.send(x)
    streamed = sum(np.asarray(o.data).shape[0] for o in s.close())
    assert streamed == p.run(x, sample_rate=16000).frames
    return streamed


def test_forked_children_run_pipelines_after_the_parent_did() -> None:
    # A child made by fork() (multiprocessing's default on Linux) inherits the runtime's memory
    # but none of its threads: a run with a Python node (or a background stream) used to wait
    # forever in the child.
    import multiprocessing

    _frames_in_child(0)  # the parent's runtime threads exist now
    with multiprocessing.get_context("fork").Pool(2) as pool:
        result = pool.map_async(_frames_in_child, range(4))
        assert result.get(timeout=60) == [8000] * 4
