"""A client connected straight to a replica that dies (no balancer): the stream fails with
UNAVAILABLE and says to open a new one; a unary call to it fails with UNAVAILABLE too, which the
retry recipe of docs/deploy.md retries."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lb_cluster import Replica
from remotemedia import AudioResampleNode, Pipeline, RemoteClient, RemoteError


def test_a_dead_replica_fails_streams_and_calls_with_unavailable(tmp_path: Path) -> None:
    exe = shutil.which("remotemedia")
    assert exe, "the remotemedia command is not on PATH"
    r = Replica("gone", tmp_path, exe)
    try:
        p = Pipeline("x").add_node(AudioResampleNode(16000))
        client = RemoteClient(r.address)
        s = client.stream(p, sample_rate=48000)
        s.send(np.zeros(2400, np.float32))
        assert client.execute(p.serialize(), np.zeros(480, np.float32), 48000)
        r.kill()
        with pytest.raises(RemoteError, match="open a new stream") as e:
            s.send(np.zeros(2400, np.float32))
            s.close()
        assert e.value.grpc_code == "Unavailable"  # type: ignore[attr-defined]
        with pytest.raises(RemoteError) as e:
            client.execute(p.serialize(), np.zeros(480, np.float32), 48000)
        assert e.value.grpc_code == "Unavailable"  # type: ignore[attr-defined]
    finally:
        r.stop()
