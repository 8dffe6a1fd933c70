"""Batching across streams: equal nodes' process calls gathered into process_batch calls."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from batching_nodes import BatchFails, BatchScale, NoBatch
from remotemedia import ManifestError, Pipeline, VADNode
from remotemedia.batching import BatchedNode

RATE = 16000


def run_streams(pipelines: list[Pipeline[Any]], chunks: int = 6, **kw: Any) -> list[list[Any]]:
    """Streams `chunks` chunks through each pipeline on its own thread, all at once; each
    stream's chunk k is the constant (stream index + 1) * (k + 1). Returns the outputs."""
    outs: list[list[Any]] = [[] for _ in pipelines]
    errors: list[BaseException] = []
    start = threading.Barrier(len(pipelines))

    def work(i: int) -> None:
        try:
            start.wait()
            with pipelines[i].stream(sample_rate=RATE, **kw) as s:
                for k in range(chunks):
                    s.send(np.full(4, (i + 1) * (k + 1), dtype=np.float32))
                    outs[i] += [o.data for o in s.poll()]
                outs[i] += [o.data for o in s.close()]
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(pipelines))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return outs


def check_results(outs: list[list[Any]], chunks: int = 6) -> list[int]:
    """Each stream got its own results, in order; returns the batch sizes seen."""
    sizes = []
    for i, got in enumerate(outs):
        assert [o["out"] for o in got] == [[0.5 * (i + 1) * (k + 1)] * 4 for k in range(chunks)], (
            f"stream {i}"
        )
        sizes += [o["batch"] for o in got]
    return sizes


def test_concurrent_streams_are_batched_and_each_gets_its_own_results_in_order() -> None:
    policy = {"max_size": 8, "max_delay_ms": 50}
    pipelines = [Pipeline(f"p{i}").add_node(BatchScale(), batch=policy) for i in range(8)]
    sizes = check_results(run_streams(pipelines))
    assert max(sizes) > 1, "calls made at the same time share a batch"
    assert max(sizes) <= 8
    node = pipelines[0].nodes["batch_scale"]
    assert isinstance(node, BatchedNode)
    stats = node.batch_stats
    assert stats["calls"] == 8 * 6
    assert sum(k * v for k, v in stats["sizes"].items()) == stats["calls"]
    assert stats["batches"] < stats["calls"] and stats["mean_size"] > 1
    assert 0 <= stats["mean_queue_delay_ms"] <= stats["max_queue_delay_ms"]
    # The pipeline's metrics carry them too.
    m = pipelines[0].metrics.node("batch_scale")
    assert m.batch is not None and m.batch["calls"] == stats["calls"]
    assert m.to_dict()["batch"]["sizes"] == stats["sizes"]
    assert pipelines[0].metrics.node("batch_scale").batch is not None


def test_nodes_batch_only_with_equal_class_params_and_policy() -> None:
    a = BatchedNode(BatchScale(0.5), {"max_size": 4, "max_delay_ms": 1})
    b = BatchedNode(BatchScale(0.5), {"max_size": 4, "max_delay_ms": 1})
    c = BatchedNode(BatchScale(0.25), {"max_size": 4, "max_delay_ms": 1})
    d = BatchedNode(BatchScale(0.5), {"max_size": 2, "max_delay_ms": 1})
    assert a._batcher is b._batcher
    assert len({id(a._batcher), id(c._batcher), id(d._batcher)}) == 3


def test_a_single_call_runs_through_process_batch_without_waiting_for_more() -> None:
    p = Pipeline("one").add_node(BatchScale(2.0), batch={"max_size": 64, "max_delay_ms": 0})
    out = p.run(np.ones(3, dtype=np.float32), sample_rate=RATE)
    assert out == {"out": [2.0, 2.0, 2.0], "batch": 1, "pid": out["pid"]}


def test_process_batch_errors_reach_every_caller_named() -> None:
    p = Pipeline("f").add_node(BatchFails(), batch={"max_size": 4})
    # The node's own exception, as for an unbatched call.
    with pytest.raises(ValueError, match="model exploded"):
        p.run(np.ones(3, dtype=np.float32), sample_rate=RATE)
    q = Pipeline("g").add_node(BatchFails(extra=True), batch={"max_size": 4})
    with pytest.raises(TypeError, match=r"process_batch returned 2 result\(s\) for 1 inputs"):
        q.run(np.ones(3, dtype=np.float32), sample_rate=RATE)
    # The node keeps working after an error.
    with pytest.raises(ValueError, match="model exploded"):
        p.run(np.ones(3, dtype=np.float32), sample_rate=RATE)


def test_bad_batch_settings_are_refused_with_the_field_named() -> None:
    with pytest.raises(TypeError, match=r"NoBatch has no process_batch\(self, inputs\) method"):
        Pipeline("x").add_node(NoBatch(), batch={"max_size": 2})
    with pytest.raises(ValueError, match=r"batch\.max_size is 0; expected an integer in 1..=4096"):
        Pipeline("x").add_node(BatchScale(), batch={"max_size": 0})
    with pytest.raises(ValueError, match=r"batch\.max_delay_ms is -1"):
        Pipeline("x").add_node(BatchScale(), batch={"max_size": 2, "max_delay_ms": -1})
    with pytest.raises(ValueError, match=r"unknown batch setting\(s\) \['size'\]"):
        Pipeline("x").add_node(BatchScale(), batch={"size": 2})  # type: ignore[typeddict-unknown-key]
    with pytest.raises(ValueError, match="batch= is for Python nodes"):
        Pipeline("x").add_node(VADNode(), batch={"max_size": 2})


def test_the_manifest_records_batch_and_is_checked() -> None:
    p = Pipeline("m").add_node(BatchScale(0.25), batch={"max_size": 16, "max_delay_ms": 5})
    spec = p.to_manifest()["nodes"][0]
    assert spec["batch"] == {"max_size": 16, "max_delay_ms": 5.0}
    assert spec["node_type"] == "batching_nodes:BatchScale" and spec["params"] == {"factor": 0.25}
    again = Pipeline.from_manifest(p.serialize())
    node = again.nodes["batch_scale"]
    assert isinstance(node, BatchedNode) and node.policy == spec["batch"]
    assert again.run(np.ones(2, dtype=np.float32), sample_rate=RATE)["out"] == [0.25, 0.25]
    bad = {
        "version": "v1",
        "nodes": [{"id": "v", "node_type": "VADNode", "batch": {"max_size": 0}}],
    }
    with pytest.raises(ManifestError) as e:
        Pipeline.from_manifest(json.dumps(bad))
    assert "batch" in str(e.value)


def test_batched_and_isolated_runs_process_batch_in_the_worker() -> None:
    import os

    policy = {"max_size": 4, "max_delay_ms": 20}
    pipelines = [
        Pipeline(f"i{i}").add_node(BatchScale(), isolation="process", batch=policy)
        for i in range(4)
    ]
    outs = run_streams(pipelines, chunks=3)
    check_results(outs, chunks=3)
    assert all(o["pid"] != os.getpid() for got in outs for o in got)


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_the_server_batches_concurrent_clients_streams(tmp_path: Path, isolation: str) -> None:
    from test_server import Server

    s = Server(
        tmp_path,
        f'python_isolation = "{isolation}"\n'
        '[python_nodes]\n"batching_nodes:BatchScale" = "batching_nodes:BatchScale"\n',
    )
    try:
        policy = {"max_size": 8, "max_delay_ms": 50}
        pipelines = [Pipeline(f"r{i}").add_node(BatchScale(), batch=policy) for i in range(6)]
        sizes = check_results(run_streams(pipelines, remote=s.address))
        assert max(sizes) > 1, "the server's sessions share batches"
    finally:
        s.stop()
