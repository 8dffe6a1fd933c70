"""`remotemedia serve` from the Python package, on a loopback port started by each test:
remote runs and streams equal local ones, allowlisted Python nodes, no imports from manifests,
auth, a plain grpcio client from the shipped proto, SIGTERM, remote sub-pipelines."""

from __future__ import annotations

import functools
import importlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import remotemedia
from remotemedia import (
    AudioResampleNode,
    FormatConverterNode,
    ManifestError,
    NodeError,
    Pipeline,
    RemoteClient,
    RemoteError,
    RemotePipelineNode,
    VADNode,
)

from conftest import REPO, bursts, music

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, tmp: Path, config: str = "", env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        cfg = tmp / f"server-{self.port}.toml"
        cfg.write_text(config)
        exe = shutil.which("remotemedia")
        assert exe, "the remotemedia command is not on PATH"
        self.log = tmp / f"server-{self.port}.log"
        full_env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{tmp}", **(env or {})}
        full_env.pop("REMOTEMEDIA_TOKEN", None)
        self.proc = subprocess.Popen(
            [exe, "serve", "--listen", self.address, "--config", str(cfg)],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start: {self.log.read_text()}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path, '[python_nodes]\n"cli_nodes:Gain" = "cli_nodes:Gain"\n')
    yield s
    s.stop()


def test_remote_runs_give_the_same_results_as_local_runs(server: Server) -> None:
    x = music(48000, 1.0) + bursts(48000)[:48000]
    p = Pipeline("same").add_node(AudioResampleNode(16000))
    p.add_node(VADNode(), "vad").add_node(FormatConverterNode("i16"), "pcm")
    p.connect("audio_resample", "vad").connect("audio_resample", "pcm")
    local = p.run(x, sample_rate=48000)
    remote = p.run(x, sample_rate=48000, remote=server.address)
    assert set(remote) == {"vad", "pcm"}
    assert remote["vad"] == local["vad"] and all(
        isinstance(s, remotemedia.Segment) for s in remote["vad"]
    )
    assert remote["pcm"].dtype == np.int16 and remote["pcm"].sample_rate == 16000
    np.testing.assert_array_equal(remote["pcm"], local["pcm"])


def test_remote_streams_give_the_same_results_as_local_streams(server: Server) -> None:
    x = music(48000, 1.0, channels=2)
    p = Pipeline("s").add_node(AudioResampleNode(16000))

    def run(**kw: str) -> np.ndarray:
        with p.stream(sample_rate=48000, channels=2, **kw) as s:
            outs = []
            for i in range(0, len(x), 1111):
                s.send(x[i : i + 1111])
                outs += s.poll()
            outs += s.close()
        starts = [o.start_frame for o in outs]
        assert starts == sorted(starts)
        return np.concatenate([np.asarray(o.data) for o in outs])

    np.testing.assert_array_equal(run(remote=server.address), run())


def test_allowlisted_python_nodes_run_remotely_and_others_are_refused(server: Server) -> None:
    import cli_nodes

    p = Pipeline("py").add_node(AudioResampleNode(16000)).add_node(cli_nodes.Gain(0.25))
    x = music(48000, 0.5)
    np.testing.assert_array_equal(
        p.run(x, sample_rate=48000, remote=server.address), p.run(x, sample_rate=48000)
    )
    q = Pipeline("no").add_node(cli_nodes.Stats())
    with pytest.raises(ManifestError, match=r"unknown node type 'cli_nodes:Stats'"):
        q.run(x, sample_rate=48000, remote=server.address)


def test_a_manifest_can_never_make_the_server_import_a_module(
    server: Server, tmp_path: Path
) -> None:
    marker = tmp_path / "imported.txt"
    (tmp_path / "canary_mod.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\n"
        "import remotemedia\n"
        "class Canary(remotemedia.Node):\n"
        "    def process(self, data):\n"
        "        return data\n"
    )
    manifest = '{"version": "v1", "nodes": [{"id": "c", "node_type": "canary_mod:Canary"}]}'
    client = RemoteClient(server.address)
    with pytest.raises(ManifestError, match="unknown node type 'canary_mod:Canary'"):
        client.execute(manifest, music(16000, 0.1), 16000)
    with pytest.raises(ManifestError):
        client._native.stream(manifest)
    time.sleep(0.2)
    assert not marker.exists(), "the server imported a module named by a manifest"
    # The module is importable: it was the server's refusal that kept it out.
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.import_module("canary_mod")
        assert marker.exists()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("canary_mod", None)


def test_bearer_token_auth(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = Server(tmp_path, '[auth]\ntokens = ["t0ken"]\n')
    try:
        p = Pipeline("a").add_node(AudioResampleNode(16000))
        x = music(48000, 0.1)
        with pytest.raises(RemoteError, match="bearer token") as e:
            p.run(x, sample_rate=48000, remote=s.address)
        assert e.value.grpc_code == "Unauthenticated"  # type: ignore[attr-defined]
        with pytest.raises(RemoteError):
            p.run(x, sample_rate=48000, remote=s.address, token="wrong")
        assert p.run(x, sample_rate=48000, remote=s.address, token="t0ken").frames == 1600
        monkeypatch.setenv("REMOTEMEDIA_TOKEN", "t0ken")
        assert RemoteClient(s.address).version()["manifest_version"] == "v1"
    finally:
        s.stop()


def test_node_failures_name_the_node_and_the_server_carries_on(tmp_path: Path) -> None:
    # Fault-injection native nodes exist only in test builds of the Rust crates, never in the
    # installed package (REMOTEMEDIA_TEST_NODES does nothing here); a failing allowlisted
    # Python node stands in for them.
    s = Server(
        tmp_path,
        '[python_nodes]\n"Explode" = "cli_nodes:Explode"\n',
        env={"REMOTEMEDIA_TEST_NODES": "1"},
    )
    try:
        client = RemoteClient(s.address)
        assert "TestPanicNode" not in {n["node_type"] for n in client.list_nodes()}
        boom = '{"version": "v1", "nodes": [{"id": "boom", "node_type": "Explode"}]}'
        with pytest.raises(NodeError, match="injected failure") as e:
            client.execute(boom, music(16000, 0.1), 16000)
        assert e.value.node_id == "boom"  # type: ignore[attr-defined]
        assert e.value.code == "host"  # type: ignore[attr-defined]
        assert e.value.kind == "host_exception"  # type: ignore[attr-defined]
        p = Pipeline("ok").add_node(AudioResampleNode(8000))
        assert p.run(music(16000, 0.1), sample_rate=16000, remote=s.address).frames == 800
        # A refused input: the same class, code and kind as a local run's.
        bad = Pipeline("bad").add_node(VADNode()).add_node(AudioResampleNode(8000))
        with pytest.raises(NodeError, match="failed: expected audio, got segments") as e:
            bad.run(music(16000, 0.1), sample_rate=16000, remote=s.address)
        assert (e.value.code, e.value.kind) == ("invalid_input", "not_audio")  # type: ignore[attr-defined]
    finally:
        s.stop()


@functools.cache
def shipped_proto() -> tuple[Any, Any]:
    """The shipped proto compiled by grpcio-tools: its message and service modules (once per
    process: protobuf's descriptor pool takes a package's symbols once)."""
    import tempfile

    from grpc_tools import protoc

    # The proto's package is remotemedia.v1; generate it under a module name that does not
    # collide with this Python package (the service name stays remotemedia.v1.RemoteMedia).
    out = Path(tempfile.mkdtemp(prefix="rm-proto-"))
    shutil.copy(REPO / "proto/remotemedia/v1/remotemedia.proto", out / "rm_v1.proto")
    rc = protoc.main(
        ["protoc", f"-I{out}", f"--python_out={out}", f"--grpc_python_out={out}", "rm_v1.proto"]
    )
    assert rc == 0
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module("rm_v1_pb2"), importlib.import_module("rm_v1_pb2_grpc")
    finally:
        sys.path.remove(str(out))


def f32_value(pb: Any, x: Any, rate: int) -> Any:
    """Mono float audio as the proto's `Value`."""
    return pb.Value(
        audio=pb.Audio(
            samples=x.astype("<f4").tobytes(),
            format=pb.SAMPLE_FORMAT_F32,
            sample_rate=rate,
            channels=1,
        )
    )


def test_a_plain_grpcio_client_from_the_shipped_proto(server: Server, tmp_path: Path) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    pb, rpc = shipped_proto()
    x = music(48000, 0.5)
    manifest = Pipeline("g").add_node(AudioResampleNode(16000)).serialize()
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert (
            health.Check(health_pb2.HealthCheckRequest(service="")).status
            == health_pb2.HealthCheckResponse.SERVING
        )
        stub = rpc.RemoteMediaStub(channel)
        req = pb.ExecuteRequest(
            manifest=manifest,
            input=pb.Value(
                audio=pb.Audio(
                    samples=x.astype("<f4").tobytes(),
                    format=pb.SAMPLE_FORMAT_F32,
                    sample_rate=48000,
                    channels=1,
                )
            ),
        )
        resp = stub.Execute(req, timeout=30)
        (out_value,) = resp.outputs
        got = np.frombuffer(out_value.value.audio.samples, dtype="<f4")
        want = Pipeline("g").add_node(AudioResampleNode(16000)).run(x, sample_rate=48000)
        np.testing.assert_array_equal(got, want)
        assert stub.GetVersion(pb.GetVersionRequest()).api_version == "remotemedia.v1"
        with pytest.raises(grpc.RpcError) as e:
            stub.Execute(pb.ExecuteRequest(manifest="{}", input=req.input), timeout=30)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_sigterm_drains_and_stops(tmp_path: Path) -> None:
    s = Server(tmp_path, "[limits]\ndrain_ms = 300\n")
    p = Pipeline("d").add_node(AudioResampleNode(16000))
    session = p.stream(sample_rate=48000, remote=s.address)
    session.send(music(48000, 0.1))
    time.sleep(0.2)
    t = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=15) == 0
    assert time.monotonic() - t < 10
    log = s.log.read_text()
    assert "shutting down" in log and "stopped" in log
    with pytest.raises(RemoteError):
        session.send(music(48000, 0.1))
        session.close()


def test_remote_pipeline_node_chains_two_servers(tmp_path: Path) -> None:
    a, b = Server(tmp_path), Server(tmp_path)
    try:
        first = Pipeline("a").add_node(AudioResampleNode(16000))
        second = Pipeline("b").add_node(VADNode(emit="speech"))
        p = Pipeline("chain")
        p.add_node(RemotePipelineNode(a.address, first), "on_a")
        p.add_node(RemotePipelineNode(b.address, second), "on_b")
        x = bursts(48000)
        local = Pipeline("l").add_node(AudioResampleNode(16000)).add_node(VADNode(emit="speech"))
        np.testing.assert_array_equal(p.run(x, sample_rate=48000), local.run(x, sample_rate=48000))
        runtimes = {n["node_id"]: n["runtime"] for n in p.get_metrics()["nodes"]}
        assert runtimes == {"on_a": "remote", "on_b": "remote"}
        # It serializes as plain data and comes back.
        q = Pipeline.from_manifest(p.serialize())
        assert isinstance(q.nodes["on_a"], RemotePipelineNode)
    finally:
        a.stop()
        b.stop()


def test_a_remote_client_closes_and_is_a_context_manager(server: Server) -> None:
    from remotemedia import RemoteError

    with RemoteClient(server.address) as client:
        assert client.version()["api_version"] == "remotemedia.v1"
    with pytest.raises(RemoteError, match="closed"):
        client.version()


def test_a_missed_call_deadline_is_deadline_exceeded(tmp_path: Path) -> None:
    from remotemedia import RemoteError

    s = Server(tmp_path, '[python_nodes]\n"Sleep" = "cli_nodes:Sleep"\n')
    try:
        slow = '{"version": "v1", "nodes": [{"id": "z", "node_type": "Sleep", "params": {"seconds": 2}}]}'
        with RemoteClient(s.address) as client, pytest.raises(RemoteError) as e:
            client.execute(slow, music(16000, 0.1), 16000, timeout=0.3)
        assert e.value.grpc_code == "DeadlineExceeded"  # type: ignore[attr-defined]
    finally:
        s.stop()


def test_abandoned_streams_free_their_slots_while_a_python_node_runs(tmp_path: Path) -> None:
    # Streams whose client goes away while a pure-Python node loops forever: each used to keep
    # its concurrency slot (and a thread) until a restart, so after max_concurrent of them
    # every call got RESOURCE_EXHAUSTED.
    import grpc

    pb, rpc = shipped_proto()
    s = Server(
        tmp_path, '[limits]\nmax_concurrent = 2\n[python_nodes]\n"Spin" = "cli_nodes:Spin"\n'
    )
    spin = '{"version": "v1", "nodes": [{"id": "spin", "node_type": "Spin"}]}'
    x = music(16000, 0.1)
    chunk = f32_value(pb, x, 16000)
    try:
        with grpc.insecure_channel(s.address) as channel:
            stub = rpc.RemoteMediaStub(channel)
            for _ in range(3):  # more than max_concurrent, one after the other
                never = threading.Event()

                def requests(never: threading.Event = never) -> Any:
                    yield pb.StreamRequest(open=pb.StreamOpen(manifest=spin))
                    yield pb.StreamRequest(chunk=pb.StreamChunk(seq=0, input=chunk))
                    never.wait(30)

                call = stub.Stream(requests())
                assert next(call).HasField("opened")
                time.sleep(0.3)  # the node is spinning now
                call.cancel()
                never.set()
            # Every slot is free again: a call is admitted and runs.
            p = Pipeline("ok").add_node(AudioResampleNode(8000))
            deadline = time.monotonic() + 10
            while True:
                try:
                    out_audio = p.run(x, sample_rate=16000, remote=s.address)
                    break
                except RemoteError as e:
                    assert time.monotonic() < deadline, f"slots were never freed: {e}"
                    time.sleep(0.2)
            assert out_audio.frames == 800
    finally:
        s.stop()


def test_stream_chunks_get_the_server_node_timeout_and_abandoned_calls_are_counted(
    tmp_path: Path,
) -> None:
    # A node without timeout_ms of its own gets the server's node_timeout_ms: a chunk stuck
    # in a Python node ends its stream with DEADLINE_EXCEEDED instead of holding the slot
    # until the stream's maximum duration; a call blocked in C is counted until it returns.
    import urllib.request

    import grpc

    pb, rpc = shipped_proto()
    metrics_port = free_port()
    s = Server(
        tmp_path,
        f'metrics_listen = "127.0.0.1:{metrics_port}"\n'
        # In-process: a call blocked in C then stays until it returns (a worker is killed).
        'python_isolation = "none"\n'
        "[limits]\nnode_timeout_ms = 300\n"
        '[python_nodes]\n"Spin" = "cli_nodes:Spin"\n"Sleep" = "cli_nodes:Sleep"\n',
    )

    def metric(name: str) -> float:
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        line = next(x for x in text.splitlines() if x.startswith(name + " "))
        return float(line.split()[1])

    chunk = f32_value(pb, music(16000, 0.1), 16000)
    try:
        with grpc.insecure_channel(s.address) as channel:
            stub = rpc.RemoteMediaStub(channel)
            for node, params in [("Spin", {}), ("Sleep", {"seconds": 2.0})]:
                manifest = json.dumps(
                    {"version": "v1", "nodes": [{"id": "n", "node_type": node, "params": params}]}
                )

                def requests(manifest: str = manifest) -> Any:
                    yield pb.StreamRequest(open=pb.StreamOpen(manifest=manifest))
                    yield pb.StreamRequest(chunk=pb.StreamChunk(seq=0, input=chunk))
                    time.sleep(5)

                t = time.monotonic()
                with pytest.raises(grpc.RpcError) as e:
                    for _ in stub.Stream(requests(), timeout=10):
                        pass
                assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
                assert time.monotonic() - t < 2.0
                if node == "Sleep":
                    # Interrupted, but blocked in time.sleep until it returns.
                    assert metric("remotemedia_abandoned_calls") >= 1  # the call (+ its cleanup)
            deadline = time.monotonic() + 5
            while metric("remotemedia_abandoned_calls") != 0:
                assert time.monotonic() < deadline, "the abandoned call was never counted off"
                time.sleep(0.1)
    finally:
        s.stop()


def test_named_inputs_run_and_stream_remotely_as_locally(server: Server) -> None:
    from remotemedia import GainNode, MixNode

    p = Pipeline("two")
    p.add_node(GainNode(db=0), "mic").add_node(GainNode(db=-6), "far").add_node(MixNode(), "mix")
    p.connect("mic", "mix").connect("far", "mix")
    mic, far = music(16000, 0.3), music(16000, 0.2)
    local = np.asarray(p.run({"mic": mic, "far": far}, sample_rate=16000))
    remote = np.asarray(p.run({"mic": mic, "far": far}, sample_rate=16000, remote=server.address))
    np.testing.assert_array_equal(remote, local)
    outs = []
    with p.stream(sample_rate=16000, remote=server.address) as s:
        for i in range(0, len(mic), 320):
            s.send(mic[i : i + 320], to="mic")
            s.send({"far": far[i : i + 320]})
            outs += [np.asarray(o.data) for o in s.poll()]
        outs += [np.asarray(o.data) for o in s.close()]
    np.testing.assert_array_equal(np.concatenate(outs), local)
    with pytest.raises(ValueError, match="unknown input 'mik'"):
        p.run({"mik": mic, "far": far}, sample_rate=16000, remote=server.address)


def test_the_voice_front_end_runs_remotely_as_locally(server: Server) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    import voice_frontend  # the example's signals: a near talker, the bot's echo, noise

    mic, far = voice_frontend.signals()
    mic, far = mic[: 48000 * 4], far[: 48000 * 4]
    p = Pipeline.from_manifest(Path(__file__).resolve().parents[2] / "examples/voice_frontend.json")
    local = p.run({"mic": mic, "far": far}, sample_rate=48000)
    remote = p.run({"mic": mic, "far": far}, sample_rate=48000, remote=server.address)
    np.testing.assert_array_equal(np.asarray(remote["clean"]), np.asarray(local["clean"]))
    assert remote["segments"] == local["segments"]
