"""User Python nodes run by the Rust executor: sync and async, lifecycle, errors, retries,
the circuit breaker, wrong return types, fan-in, mixing with native nodes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import traceback
from typing import Any

import numpy as np
import pytest

import remotemedia
from remotemedia import (
    Audio,
    AudioResampleNode,
    CircuitOpenError,
    Node,
    NodeError,
    PassThroughNode,
    Pipeline,
    RetryableError,
    VADNode,
)

from conftest import bursts, music


class Gain(Node):
    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def process(self, audio: Audio) -> Audio:
        return audio * self.factor


class AsyncGain(Node):
    def __init__(self, factor: float = 0.5) -> None:
        self.factor = factor

    async def process(self, audio: Audio) -> Audio:
        await asyncio.sleep(0.001)
        return audio * self.factor


class Lifecycle(Node):
    events: list[str]

    def __init__(self) -> None:
        self.events = []

    async def initialize(self) -> None:
        self.events.append("initialize")

    def process(self, data: Any) -> Any:
        self.events.append("process")
        return data

    def flush(self) -> Any:
        self.events.append("flush")
        return None

    def cleanup(self) -> None:
        self.events.append("cleanup")


def deep_helper() -> None:
    raise KeyError("missing-key")


class Raises(Node):
    def process(self, data: Any) -> Any:
        deep_helper()


class Flaky(Node):
    def __init__(self, failures: int = 2, exc: str = "TimeoutError") -> None:
        self.failures = failures
        self.exc = exc
        self.calls = 0

    def process(self, data: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise {
                "TimeoutError": TimeoutError,
                "ConnectionError": ConnectionError,
                "RetryableError": RetryableError,
                "ValueError": ValueError,
            }[self.exc](f"attempt {self.calls}")
        return data


class ReturnsBadArray(Node):
    def process(self, data: Any) -> Any:
        return np.zeros((2, 2, 2), dtype=np.float32)


class ReturnsDict(Node):
    def process(self, data: Any) -> Any:
        return {"frames": int(np.asarray(data).shape[0])}


class Join(Node):
    def process(self, inputs: dict[str, Any]) -> Any:
        return {k: type(v).__name__ for k, v in sorted(inputs.items())}


def test_sync_and_async_python_nodes_run_between_native_nodes() -> None:
    x = music(48000, 0.5)
    p = (
        Pipeline("mix")
        .add_node(AudioResampleNode(16000))
        .add_node(Gain(2.0))
        .add_node(AsyncGain(0.25))
        .add_node(PassThroughNode())
    )
    out = p.run(x, sample_rate=48000)
    ref = Pipeline("ref").add_node(AudioResampleNode(16000)).run(x, sample_rate=48000)
    assert out.sample_rate == 16000
    np.testing.assert_allclose(out, ref * 0.5, rtol=1e-6, atol=1e-7)
    runtimes = {n["node_id"]: n["runtime"] for n in p.get_metrics()["nodes"]}
    assert runtimes == {
        "audio_resample": "rust",
        "gain": "python",
        "async_gain": "python",
        "pass_through": "rust",
    }


def test_lifecycle_methods_are_called_per_run() -> None:
    node = Lifecycle()
    p = Pipeline("l").add_node(node)
    p.run(music(16000, 0.1), sample_rate=16000)
    assert node.events == ["initialize", "process", "flush", "cleanup"]
    p.run(music(16000, 0.1), sample_rate=16000)
    assert node.events.count("initialize") == 2


def test_an_exception_keeps_type_message_traceback_and_names_the_node() -> None:
    p = Pipeline("e").add_node(AudioResampleNode(16000)).add_node(Raises(), "my_node")
    with pytest.raises(KeyError) as e:
        p.run(music(48000, 0.1), sample_rate=48000)
    assert e.value.args == ("missing-key",)
    frames = [f.name for f in traceback.extract_tb(e.value.__traceback__)]
    assert frames[-2:] == ["process", "deep_helper"]
    assert e.value.remotemedia_node_id == "my_node"  # type: ignore[attr-defined]
    notes = getattr(e.value, "__notes__", [])
    assert any("raised in remotemedia node 'my_node'" in n for n in notes)
    m = p.get_metrics()
    status = {n["node_id"]: n["status"]["state"] for n in m["nodes"]}
    assert status == {"audio_resample": "success", "my_node": "failed"}


@pytest.mark.parametrize("exc", ["TimeoutError", "ConnectionError", "RetryableError"])
def test_retryable_exceptions_go_through_the_rust_retry_policy(exc: str) -> None:
    node = Flaky(failures=2, exc=exc)
    p = Pipeline("r").add_node(node)
    t = time.perf_counter()
    out = p.run(music(16000, 0.1), sample_rate=16000)
    assert time.perf_counter() - t >= 0.3  # 100 ms + 200 ms backoff
    assert out.shape == (1600,)
    assert node.calls == 3
    assert p.get_metrics()["nodes"][0]["retry_count"] == 2


def test_other_exceptions_fail_at_once() -> None:
    node = Flaky(failures=1, exc="ValueError")
    with pytest.raises(ValueError, match="attempt 1"):
        Pipeline("r").add_node(node).run(music(16000, 0.1), sample_rate=16000)
    assert node.calls == 1


def test_exhausted_retries_re_raise_the_last_exception() -> None:
    node = Flaky(failures=10, exc="ConnectionError")
    p = Pipeline("r").add_node(node)
    with pytest.raises(ConnectionError, match="attempt 3") as e:
        p.run(music(16000, 0.1), sample_rate=16000)
    assert any("after 3 attempts" in n for n in getattr(e.value, "__notes__", []))


def test_the_circuit_breaker_opens_after_repeated_failures() -> None:
    node = Flaky(failures=100, exc="ValueError")
    # Breakers are opt-in (issue 9): without circuit_breaker a node never opens one.
    p = Pipeline("cb").add_node(node, "fragile", circuit_breaker={})
    x = music(16000, 0.05)
    for _ in range(5):
        with pytest.raises(ValueError):
            p.run(x, sample_rate=16000)
    with pytest.raises(CircuitOpenError, match="circuit breaker open for node 'fragile'") as e:
        p.run(x, sample_rate=16000)
    assert e.value.node_id == "fragile"  # type: ignore[attr-defined]
    assert node.calls == 5  # the open breaker did not call the node


def test_wrong_return_types_get_clear_errors_naming_the_node() -> None:
    p = Pipeline("w").add_node(ReturnsBadArray(), "bad")
    with pytest.raises(
        NodeError, match=r"process\(\) of node 'bad' .* returned an unusable ndarray"
    ):
        p.run(music(16000, 0.1), sample_rate=16000)
    # A dict is fine for Python consumers, but a native node says what it expected.
    p = Pipeline("w2").add_node(ReturnsDict(), "py").add_node(VADNode(), "vad")
    with pytest.raises(
        NodeError, match=r"\(VADNode\) failed: expected audio, got object of type dict"
    ) as e:
        p.run(music(16000, 0.1), sample_rate=16000)
    assert e.value.node_id == "vad"  # type: ignore[attr-defined]
    out = Pipeline("w3").add_node(ReturnsDict()).run(music(16000, 0.1), sample_rate=16000)
    assert out == {"frames": 1600}


def test_fan_in_python_node_gets_a_dict_keyed_by_upstream_id() -> None:
    src = PassThroughNode()
    p = Pipeline("fan").add_node(src).add_node(VADNode()).add_node(AudioResampleNode(16000))
    p.add_node(Join(), "join")
    p.connect(src, "vad").connect(src, "audio_resample")
    p.connect("vad", "join").connect("audio_resample", "join")
    out = p.run(bursts(48000), sample_rate=48000)
    assert out == [
        {"audio_resample": "Audio", "vad": "list"},
        {"audio_resample": "Audio", "vad": "list"},
    ]


def test_inputs_shared_with_other_nodes_are_read_only() -> None:
    class Mutates(Node):
        def process(self, audio: Audio) -> Audio:
            audio[0] = 1.0
            return audio

    x = music(16000, 0.1)
    before = x.copy()
    with pytest.raises(ValueError, match="read-only"):
        Pipeline("m").add_node(Mutates()).run(x, sample_rate=16000)
    np.testing.assert_array_equal(x, before)  # the caller's array is untouched


def test_the_gil_is_released_while_native_nodes_run() -> None:
    # A Python thread keeps counting while a long native run is in progress.
    x = music(48000, 30.0)
    p = Pipeline("g").add_node(AudioResampleNode(16000)).add_node(VADNode())
    counter = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal counter
        while not stop.is_set():
            counter += 1

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.01)
    before = counter
    p.run(x, sample_rate=48000)
    during = counter - before
    stop.set()
    t.join()
    assert during > 1000, f"the counting thread made {during} steps during the run"


def test_python_node_params_round_trip_and_unserializable_params_are_named() -> None:
    p = Pipeline("rt").add_node(Gain(factor=3.5), "g")
    node = Pipeline.from_manifest(p.serialize()).nodes["g"]
    assert isinstance(node, Gain) and node.factor == 3.5

    class Holds(Node):
        def __init__(self, thing: object) -> None:
            self.thing = thing

        def process(self, data: Any) -> Any:
            return data

    # A constructor with *args: the manifest keeps them ("*gains") and rebuilds the node.
    from cli_nodes import Mix

    p = Pipeline("star").add_node(Mix(2.0, 0.5, 0.25, offset=0.125), "m")
    manifest = json.loads(p.serialize())
    assert manifest["nodes"][0]["params"] == {
        "base": 2.0,
        "*gains": [0.5, 0.25],
        "offset": 0.125,
    }
    back = Pipeline.from_manifest(manifest)
    node = back.nodes["m"]
    assert isinstance(node, Mix)
    assert (node.base, node.gains, node.offset) == (2.0, (0.5, 0.25), 0.125)
    x = np.linspace(-1, 1, 480, dtype=np.float32)
    np.testing.assert_array_equal(back.run(x, sample_rate=16000), x * np.float32(0.25) + 0.125)
    manifest["nodes"][0]["params"]["*gains"] = 3
    with pytest.raises(remotemedia.ManifestError, match=r"node 'm' .*'\*gains' must be a list"):
        Pipeline.from_manifest(manifest)
    manifest["nodes"][0]["params"] = {"*gains": [1.0]}
    with pytest.raises(remotemedia.ManifestError, match=r"missing 'base'"):
        Pipeline.from_manifest(manifest)

    p = Pipeline("bad").add_node(Holds(object()), "h")
    with pytest.raises(remotemedia.ManifestError, match=r"node 'h' .* cannot go into a manifest"):
        p.serialize()


class Sleeper(Node):
    def __init__(self, seconds: float = 0.3) -> None:
        self.seconds = seconds

    def process(self, data: Any) -> Any:
        time.sleep(self.seconds)
        return data


def test_timeout_and_retry_policies_apply_and_round_trip() -> None:
    x = music(16000, 0.05)
    # timeout_ms: the call is abandoned (not waited for) and the error names the node.
    p = Pipeline("t").add_node(Sleeper(1.0), "slow", timeout_ms=50, retry={"max_attempts": 1})
    t = time.perf_counter()
    with pytest.raises(remotemedia.NodeTimeoutError, match="slow") as e:
        p.run(x, sample_rate=16000)
    assert time.perf_counter() - t < 0.6
    assert isinstance(e.value, remotemedia.NodeError)
    assert isinstance(e.value, remotemedia.RemoteMediaError)
    # retry: the policy given to add_node is the one the executor uses.
    node = Flaky(failures=1, exc="ConnectionError")
    p = Pipeline("r").add_node(node, "f", retry={"max_attempts": 1})
    with pytest.raises(ConnectionError):
        p.run(x, sample_rate=16000)
    assert node.calls == 1
    # Both survive serialize -> from_manifest -> serialize, for Python and built-in nodes.
    p.add_node(AudioResampleNode(8000), "r", timeout_ms=500, retry={"initial_delay_ms": 5})
    manifest = json.loads(p.serialize())
    assert manifest["nodes"][0]["retry"] == {"max_attempts": 1}
    assert manifest["nodes"][1]["timeout_ms"] == 500
    assert manifest["nodes"][1]["retry"] == {"initial_delay_ms": 5}
    assert json.loads(Pipeline.from_manifest(manifest).serialize()) == manifest
    with pytest.raises(ValueError, match="timeout_ms must be a positive integer"):
        Pipeline("x").add_node(PassThroughNode(), timeout_ms=0)
    with pytest.raises(ValueError, match="retry must be a dict with keys among"):
        Pipeline("x").add_node(PassThroughNode(), retry={"attempts": 3})
