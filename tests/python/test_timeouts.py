"""Issue 9: a Python node call that exceeds ``timeout_ms`` is interrupted, not abandoned.

The run fails at once with ``NodeTimeoutError``, the call's thread gets an asynchronous
exception, the next run on the same pipeline works, no thread is left behind and the process
exits cleanly. A call blocked in C (``time.sleep``) stops only when the C call returns; until
then the next call fails with a clear error instead of hanging.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np
import pytest

import remotemedia
from remotemedia import Node, Pipeline, _native

X = np.zeros(160, dtype=np.float32)


def _wait_until(predicate: Any, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


class Spinner(Node):
    """Loops in pure Python while ``spin`` is set; records how its calls ended."""

    def __init__(self) -> None:
        self.spin = True
        self.calls = 0
        self.interrupted = 0
        self.cleanups = 0

    def process(self, data: Any) -> Any:
        self.calls += 1
        try:
            n = 0
            while self.spin:
                n += 1
        except BaseException:
            self.interrupted += 1
            raise
        return data

    def cleanup(self) -> None:
        self.cleanups += 1


def test_a_timed_out_pure_python_call_is_interrupted_and_the_next_run_works() -> None:
    node = Spinner()
    p = Pipeline("t").add_node(node, "spin", timeout_ms=300, retry={"max_attempts": 1})
    started = time.monotonic()
    with pytest.raises(remotemedia.NodeTimeoutError, match="spin"):
        p.run(X, sample_rate=16000)
    assert time.monotonic() - started < 10
    # The call saw CallInterrupted (a BaseException) and returned: nothing is left running.
    assert _wait_until(lambda: node.interrupted == 1)
    assert _wait_until(lambda: _native._interrupted_calls() == 0)
    # The second run on the same pipeline works (it used to hang forever).
    node.spin = False
    out = p.run(X + 0.25, sample_rate=16000)
    assert np.allclose(np.asarray(out), 0.25)
    assert node.calls == 2
    assert node.interrupted == 1


def test_a_timeout_is_not_retried_by_the_default_policy() -> None:
    node = Spinner()
    p = Pipeline("t").add_node(node, "spin", timeout_ms=200)
    with pytest.raises(remotemedia.NodeTimeoutError):
        p.run(X, sample_rate=16000)
    assert _wait_until(lambda: node.interrupted == 1)
    assert node.calls == 1
    # With an explicit retry policy the timeout is retried, each attempt interrupted.
    node = Spinner()
    p = Pipeline("t").add_node(
        node, "spin", timeout_ms=200, retry={"max_attempts": 2, "initial_delay_ms": 0}
    )
    with pytest.raises(remotemedia.NodeTimeoutError):
        p.run(X, sample_rate=16000)
    assert _wait_until(lambda: node.interrupted == 2)
    assert node.calls == 2


def test_an_async_node_awaiting_forever_is_cancelled() -> None:
    class Waits(Node):
        def __init__(self) -> None:
            self.cancelled = 0
            self.wait = True

        async def process(self, data: Any) -> Any:
            if self.wait:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    self.cancelled += 1
                    raise
            return data

    node = Waits()
    p = Pipeline("a").add_node(node, "waits", timeout_ms=200, retry={"max_attempts": 1})
    with pytest.raises(remotemedia.NodeTimeoutError):
        p.run(X, sample_rate=16000)
    assert _wait_until(lambda: node.cancelled == 1)
    node.wait = False
    out = p.run(X + 0.5, sample_rate=16000)
    assert np.allclose(np.asarray(out), 0.5)


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
def test_timed_out_calls_leak_no_threads() -> None:
    node = Spinner()
    p = Pipeline("l").add_node(node, "spin", timeout_ms=100, retry={"max_attempts": 1})
    # Warm up the runtime's pools.
    with pytest.raises(remotemedia.NodeTimeoutError):
        p.run(X, sample_rate=16000)
    assert _wait_until(lambda: _native._interrupted_calls() == 0)
    before = _threads()
    for _ in range(12):
        with pytest.raises(remotemedia.NodeTimeoutError):
            p.run(X, sample_rate=16000)
    assert _wait_until(lambda: _native._interrupted_calls() == 0)
    assert node.interrupted == 13
    # Each timed-out call used to keep its thread for good (4 -> 23 after 14 calls).
    assert _wait_until(lambda: _threads() <= before + 2), (before, _threads())


class Sleeps(Node):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def process(self, data: Any) -> Any:
        time.sleep(self.seconds)
        return data


def test_a_call_blocked_in_c_gives_the_next_run_a_clear_error_not_a_hang() -> None:
    node = Sleeps(2.0)
    p = Pipeline("c").add_node(node, "sleeps", timeout_ms=200, retry={"max_attempts": 1})
    with pytest.raises(remotemedia.NodeTimeoutError):
        p.run(X, sample_rate=16000)
    node.seconds = 0.0
    # time.sleep cannot be interrupted: the object is still busy, and the next run says so.
    started = time.monotonic()
    with pytest.raises(remotemedia.NodeError, match=r"previous call to process\(\).*still running"):
        p.run(X, sample_rate=16000)
    assert time.monotonic() - started < 10
    # Once the sleep returns, the pending interrupt ends the call and runs work again.
    assert _wait_until(lambda: _native._interrupted_calls() == 0)
    out = p.run(X + 0.125, sample_rate=16000)
    assert np.allclose(np.asarray(out), 0.125)


def _run_script(body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_process_whose_node_loops_forever_exits_cleanly_after_the_timeout() -> None:
    r = _run_script(
        """
        import numpy as np
        import remotemedia
        from remotemedia import Node, Pipeline

        class Forever(Node):
            def process(self, data):
                while True:
                    pass

        p = Pipeline("f").add_node(Forever(), "forever", timeout_ms=300, retry={"max_attempts": 1})
        try:
            p.run(np.zeros(160, dtype=np.float32), sample_rate=16000)
        except remotemedia.NodeTimeoutError as e:
            print("timed out:", e)
        """
    )
    # It used to print "Fatal Python error: Aborted" and exit with 134.
    assert r.returncode == 0, r.stderr
    assert "timed out:" in r.stdout
    assert "Fatal Python error" not in r.stderr


def _server_threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
def test_the_server_interrupts_timed_out_calls_and_still_shuts_down(tmp_path: Any) -> None:
    import signal

    from test_server import Server

    s = Server(tmp_path, '[limits]\ndrain_ms = 300\n[python_nodes]\n"Spin" = "cli_nodes:Spin"\n')
    try:
        spin = (
            '{"version": "v1", "nodes": [{"id": "spin", "node_type": "Spin", '
            '"timeout_ms": 200, "retry": {"max_attempts": 1}}]}'
        )
        with remotemedia.RemoteClient(s.address) as client:
            with pytest.raises(remotemedia.NodeTimeoutError, match="spin"):
                client.execute(spin, X, 16000)
            time.sleep(0.5)
            before = _server_threads(s.proc.pid)
            for _ in range(6):
                with pytest.raises(remotemedia.NodeTimeoutError, match="spin"):
                    client.execute(spin, X, 16000)
        # Every timed-out call used to keep a thread spinning for good (4 -> 23 threads).
        assert _wait_until(lambda: _server_threads(s.proc.pid) <= before + 2), (
            before,
            _server_threads(s.proc.pid),
        )
        started = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        # It used to log "stopped" and never exit.
        assert s.proc.wait(timeout=20) == 0
        assert time.monotonic() - started < 10
    finally:
        s.stop()


def test_the_server_logs_a_python_nodes_traceback_with_the_request_id(tmp_path: Any) -> None:
    from test_server import Server

    s = Server(
        tmp_path,
        '[python_nodes]\n"Explode" = "cli_nodes:Explode"\n',
        env={"RUST_LOG": "warn"},
    )
    try:
        boom = '{"version": "v1", "nodes": [{"id": "boom", "node_type": "Explode"}]}'
        with remotemedia.RemoteClient(s.address) as client:
            with pytest.raises(remotemedia.NodeError, match="injected failure"):
                client.execute(boom, X, 16000)
    finally:
        s.stop()
    log = s.log.read_text()
    assert re.search(
        r"request rm-[0-9a-f]+-\d+: node 'boom' \(Explode\) raised ValueError: injected failure",
        log,
    ), log
    assert "Traceback (most recent call last)" in log
    assert 'raise ValueError("injected failure")' in log
    assert re.search(r"request_id=rm-[0-9a-f]+-\d+ rpc=Execute", log), log


def test_the_server_warns_when_a_python_node_returns_none_for_a_whole_run(tmp_path: Any) -> None:
    from test_server import Server

    s = Server(
        tmp_path,
        '[python_nodes]\n"Silent" = "cli_nodes:Silent"\n"Stats" = "cli_nodes:Stats"\n',
        env={"RUST_LOG": "warn"},
    )
    try:
        silent = '{"version": "v1", "nodes": [{"id": "quiet", "node_type": "Silent"}]}'
        stats = '{"version": "v1", "nodes": [{"id": "stats", "node_type": "Stats"}]}'
        with remotemedia.RemoteClient(s.address) as client:
            assert client.execute(silent, X, 16000) == {}
            # process() returns None but flush() a value: no warning.
            assert client.execute(stats, X, 16000) == {
                "stats": {"frames": 160, "sample_rate": 16000}
            }
    finally:
        s.stop()
    log = s.log.read_text()
    # An OK Execute with no outputs used to leave no trace at all.
    assert "node 'quiet' (Silent) returned None from all 2 of its process()/flush() calls" in log
    assert "node 'stats'" not in log


def test_the_cli_does_not_wait_for_a_call_blocked_in_c_after_its_timeout(tmp_path: Any) -> None:
    import json
    import shutil
    from pathlib import Path

    exe = shutil.which("remotemedia")
    assert exe, "the remotemedia command is not on PATH"
    manifest = {
        "version": "v1",
        "nodes": [
            {
                "id": "z",
                "node_type": "cli_nodes:Sleep",
                "params": {"seconds": 60},
                "timeout_ms": 200,
            }
        ],
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    repo = Path(__file__).resolve().parents[2]
    started = time.monotonic()
    r = subprocess.run(
        [
            exe,
            "run",
            str(path),
            "-i",
            str(repo / "examples/speech_48k.wav"),
            "-o",
            str(tmp_path / "out.wav"),
            "--quiet",
        ],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # It used to wait for the whole 60 s sleep (the runtime's drop joins blocking calls).
    assert time.monotonic() - started < 30
    assert r.returncode == 1, r.stderr
    assert "timed out after 200 ms" in r.stderr
    assert "Fatal Python error" not in r.stderr
