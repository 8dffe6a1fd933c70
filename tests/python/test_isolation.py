"""Issue 35: Python nodes in worker processes (add_node(..., isolation="process"))."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import remotemedia as rm
from isolation_nodes import BlockInC, Count, CrashOn, Fails, FailsOdd, Scale


def tone(n: int = 1600) -> np.ndarray:
    return (np.sin(np.arange(n, dtype=np.float32) * 0.05) * 0.5).astype(np.float32)


def test_an_isolated_node_gives_the_same_result_and_keeps_state_in_its_worker() -> None:
    import os

    x = tone()
    inproc = rm.Pipeline("a").add_node(Scale(0.25)).run(x, sample_rate=16000)
    p = rm.Pipeline("b").add_node(Scale(0.25), "s", isolation="process")
    out = p.run(x, sample_rate=16000)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(inproc))
    assert out.sample_rate == 16000
    # A stream: one worker for the stream's life, state kept between chunks.
    s = rm.Pipeline("c").add_node(Count(), "n", isolation="process").stream(16000)
    for _ in range(3):
        s.send(x)
    got = [o.data for o in list(s.poll()) + list(s.close())]
    assert [d["calls"] for d in got] == [1, 2, 3]
    assert {d["frames"] for d in got} == {1600}
    assert len({d["pid"] for d in got}) == 1 and got[0]["pid"] != os.getpid()
    # The manifest says so, and from_manifest rebuilds it isolated.
    m = json.loads(p.serialize())
    assert m["nodes"][0]["isolation"] == "process"
    q = rm.Pipeline.from_manifest(m)
    np.testing.assert_array_equal(np.asarray(q.run(x, sample_rate=16000)), np.asarray(inproc))


@pytest.mark.parametrize(("how", "says"), [("segfault", "SIGSEGV"), ("exit", "status 3")])
def test_a_crash_fails_the_call_naming_node_and_signal_and_the_next_call_works(
    how: str, says: str
) -> None:
    p = rm.Pipeline("c").add_node(CrashOn(n=2, how=how), "crashy", isolation="process")
    x = tone()
    assert p.run(x, sample_rate=16000).frames == 1600  # call 1
    s = p.stream(16000)
    with pytest.raises(rm.WorkerCrashed) as e:
        s.send(x)  # call 2: the worker dies
    text = str(e.value)
    assert "node 'crashy'" in text and says in text and "process() (call 2)" in text, text
    # The process lives on, and the next run gets a new worker.
    assert p.run(x, sample_rate=16000).frames == 1600


def test_a_node_error_in_the_worker_is_raised_with_its_type_and_traceback() -> None:
    p = rm.Pipeline("f").add_node(Fails(), "f", isolation="process")
    with pytest.raises(ValueError, match="bad input in the worker") as e:
        p.run(tone(), sample_rate=16000)
    assert any("in the node's worker process" in n for n in getattr(e.value, "__notes__", []))
    # The node's own error keeps its worker and its state.
    q = rm.Pipeline("g").add_node(FailsOdd(), "n", isolation="process")
    seen = []
    for _ in range(2):
        with pytest.raises(ValueError, match="odd call"):
            q.run(tone(), sample_rate=16000)
        seen.append(q.run(tone(), sample_rate=16000))
    assert [d["calls"] for d in seen] == [2, 4]
    assert seen[0]["pid"] == seen[1]["pid"]


def test_a_timed_out_call_blocked_in_c_is_stopped_and_the_next_call_works() -> None:
    # In-process, a call blocked in C cannot be interrupted; in a worker it is killed.
    p = rm.Pipeline("t").add_node(BlockInC(30.0), "slow", isolation="process", timeout_ms=1500)
    t = time.monotonic()
    with pytest.raises(rm.NodeTimeoutError):
        p.run(tone(), sample_rate=16000)
    assert time.monotonic() - t < 10
    q = rm.Pipeline("t2").add_node(BlockInC(0.0), "fast", isolation="process")
    assert q.run(tone(), sample_rate=16000).frames == 1600


def test_isolated_nodes_of_two_pipelines_run_in_processes_of_their_own() -> None:
    # What lets them use several cores (the speed-up is measured by
    # benchmarks/isolation_bench.py, not asserted here).
    import os

    pipes = [rm.Pipeline(f"p{i}").add_node(Count(), "n", isolation="process") for i in range(2)]
    results: list[dict[str, int]] = []

    def run(p: rm.Pipeline) -> None:
        results.append(p.run(tone(), sample_rate=16000))

    threads = [threading.Thread(target=run, args=(p,)) for p in pipes]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    pids = {r["pid"] for r in results}
    assert len(results) == 2 and len(pids) == 2 and os.getpid() not in pids


def test_isolation_is_refused_where_it_cannot_apply() -> None:
    with pytest.raises(ValueError, match="is for Python nodes; AudioResampleNode runs in"):
        rm.Pipeline("x").add_node(rm.AudioResampleNode(8000), isolation="process")
    with pytest.raises(ValueError, match="isolation must be 'none' or 'process'"):
        rm.Pipeline("x").add_node(Scale(), isolation="thread")  # type: ignore[arg-type]


def test_a_node_class_from_the_running_script_is_refused_with_the_fix() -> None:
    main_cls = type("Local", (Scale,), {"__module__": "__main__"})
    with pytest.raises(ValueError, match=r"defined in the script being run .* move the class"):
        rm.Pipeline("x").add_node(main_cls(), isolation="process")


def test_the_cli_runs_an_isolated_node_and_survives_its_crash(tmp_path: Path) -> None:
    import os
    import shutil
    import subprocess

    from conftest import REPO

    HERE = REPO / "tests" / "python"

    def manifest(node_type: str, params: dict[str, object]) -> Path:
        path = tmp_path / f"{node_type.split(':')[1]}.json"
        path.write_text(
            json.dumps(
                {
                    "version": "v1",
                    "nodes": [
                        {
                            "id": "n",
                            "node_type": node_type,
                            "params": params,
                            "isolation": "process",
                        }
                    ],
                }
            )
        )
        return path

    exe = shutil.which("remotemedia")
    assert exe
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    wav = str(REPO / "examples" / "speech_48k.wav")

    def run(m: Path, out: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, "run", str(m), "-i", wav, "-o", str(tmp_path / out), "-q"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    r = run(manifest("isolation_nodes:Scale", {"factor": 0.5}), "half.wav")
    assert r.returncode == 0, r.stderr
    half, orig = rm.read(tmp_path / "half.wav"), rm.read(wav)
    assert half.frames == orig.frames
    r = run(manifest("isolation_nodes:CrashOn", {"n": 1}), "crash.wav")
    assert r.returncode == 1
    assert "killed by SIGSEGV during process()" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_a_server_survives_an_isolated_node_that_segfaults(tmp_path: Path) -> None:
    from test_server import Server

    s = Server(
        tmp_path,
        '[python_nodes]\n"Crash" = "isolation_nodes:CrashOn"\n"Scale" = "isolation_nodes:Scale"\n',
    )
    try:
        x = tone()
        # No "isolation" in the manifest: the server's default (python_isolation) applies.
        crash = {"version": "v1", "nodes": [{"id": "c", "node_type": "Crash", "params": {"n": 1}}]}
        client = rm.RemoteClient(s.address)
        with pytest.raises(
            rm.NodeError, match=r"node 'c' \(Crash\): its worker process was killed by SIGSEGV"
        ):
            client.execute(json.dumps(crash), x, sample_rate=16000)
        # The server process is alive and serves the next call.
        assert s.proc.poll() is None
        ok = {"version": "v1", "nodes": [{"id": "s", "node_type": "Scale", "params": {}}]}
        out = client.execute(json.dumps(ok), x, sample_rate=16000)["s"]
        np.testing.assert_allclose(np.asarray(out), x * 0.5, rtol=1e-6)
    finally:
        s.stop()


def test_a_server_keeps_an_isolated_nodes_worker_across_calls(tmp_path: Path) -> None:
    # Each Execute forks the cached pipeline (fresh node objects); the worker of the same node
    # is taken over instead of starting one per call.
    from test_server import Server

    s = Server(tmp_path, '[python_nodes]\n"Count" = "isolation_nodes:Count"\n')
    try:
        m = {
            "version": "v1",
            "nodes": [{"id": "n", "node_type": "Count", "isolation": "process"}],
        }
        client = rm.RemoteClient(s.address)
        got = [client.execute(json.dumps(m), tone(), sample_rate=16000)["n"] for _ in range(3)]
        assert len({g["pid"] for g in got}) == 1, got
        assert [g["calls"] for g in got] == [1, 2, 3]
    finally:
        s.stop()


def test_a_worker_past_its_memory_limit_gets_a_memory_error_and_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from isolation_nodes import Hog
    from remotemedia.isolation import IsolatedNode

    quiet = rm.Audio(np.zeros(8, np.float32), 8000)
    hungry = rm.Audio(np.ones(8, np.float32), 8000)
    node = IsolatedNode(Hog(mb=1024), memory_limit_mb=400)
    first = node.process(quiet)
    with pytest.raises(
        MemoryError, match=r"reached its memory limit of 400 MiB during process\(\)"
    ):
        node.process(hungry)
    # The same worker, with its state, serves the next call.
    assert node.process(quiet) == first
    # Under the limit, the allocation is fine; the environment sets every worker's limit.
    monkeypatch.setenv("REMOTEMEDIA_WORKER_MEMORY_MB", "400")
    small = IsolatedNode(Hog(mb=64))
    assert small.process(hungry)["calls"] == 1
    monkeypatch.setenv("REMOTEMEDIA_WORKER_MEMORY_MB", "lots")
    with pytest.raises(ValueError, match="REMOTEMEDIA_WORKER_MEMORY_MB='lots': expected a whole"):
        IsolatedNode(Hog(mb=1)).process(quiet)
    with pytest.raises(ValueError, match=r"memory_limit_mb=0"):
        IsolatedNode(Hog(), memory_limit_mb=0)


def test_a_node_that_keeps_its_inputs_sees_them_unchanged() -> None:
    from isolation_nodes import Keep
    from remotemedia.isolation import IsolatedNode

    # The worker reuses one shared-memory segment for inputs; a node keeping views of its
    # input gets that segment to itself (the next input goes elsewhere) until it drops them.
    node = IsolatedNode(Keep())
    plain = Keep()
    for v in range(1, 9):
        chunk = rm.Audio(np.full(5, float(v), np.float32), 16000)
        assert node.process(chunk) == plain.process(chunk), v
    # Big chunks (a bigger segment) too.
    big = rm.Audio(np.full(100_000, 2.0, np.float32), 16000)
    assert node.process(big) == plain.process(big)


def test_a_script_without_a_main_guard_runs_once_and_its_isolated_node_works(
    tmp_path: Path,
) -> None:
    import os
    import subprocess
    import sys

    script = tmp_path / "job.py"
    script.write_text(
        "import numpy as np, remotemedia as rm\n"
        "from isolation_nodes import Scale\n"
        "print('script ran', flush=True)\n"
        "p = rm.Pipeline('n').add_node(Scale(0.5), isolation='process')\n"
        "print(p.run(np.ones(4, np.float32), sample_rate=8000).tolist(), flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    o = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert o.returncode == 0, o.stderr
    # spawn would import the script again in the worker: it ran once, and the node worked.
    assert o.stdout == "script ran\n[0.5, 0.5, 0.5, 0.5]\n", o.stdout + o.stderr
