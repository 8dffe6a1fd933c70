"""Ctrl-C (SIGINT) during a run or stream whose Python node is busy: the main thread's wait
ends at once with KeyboardInterrupt (it no longer waits for the node's call to return), the
call is interrupted, and the pipeline works again afterwards. Foreground sessions check for
signals while they wait; background and async sessions interrupt the chunk in progress when
they are aborted (leaving the ``with`` block on the KeyboardInterrupt)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import remotemedia as rm

    class Slow(rm.Node):
        def __init__(self) -> None:
            self.slow = True

        def process(self, data):
            if self.slow:
                print("started", flush=True)
                end = time.monotonic() + 60          # far longer than the test waits
                while time.monotonic() < end:
                    time.sleep(0.05)
            return data

    node = Slow()
    p = rm.Pipeline("slow").add_node(node)
    x = np.ones(160, dtype=np.float32)
    mode = sys.argv[1]

    async def in_asyncio():
        async with p.astream(sample_rate=16000) as s:
            await s.send(x)
            return np.concatenate([o.data for o in await s.close()])

    def go():
        if mode == "run":
            return p.run(x, sample_rate=16000)
        if mode == "async":
            import asyncio
            return asyncio.run(in_asyncio())
        with p.stream(sample_rate=16000, background=mode == "background") as s:
            s.send(x)
            return np.concatenate([o.data for o in s.poll() + s.close()])

    try:
        go()
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
    node.slow = False                                # the next run must work
    print("again", float(go().sum()), flush=True)
    """
)

#: The node's call lasts 60 s; an interrupted run must end long before that (the bound is
#: generous for a loaded machine; what it rules out is waiting for the call to return).
BOUND_S = 15.0


@pytest.mark.parametrize("mode", ["run", "stream", "background", "async"])
def test_ctrl_c_interrupts_a_busy_python_node_promptly(mode: str, tmp_path: Path) -> None:
    script = tmp_path / "slow_run.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=BOUND_S)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.splitlines() == ["KeyboardInterrupt", "again 160.0"], (out, err)
    assert took < BOUND_S
