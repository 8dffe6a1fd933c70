"""remotemedia.ray on a local Ray (skipped when ray is not installed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import remotemedia

ray = pytest.importorskip("ray")

MANIFEST = {
    "version": "v1",
    "metadata": {"name": "to16k"},
    "nodes": [
        {"id": "rs", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}},
    ],
    "connections": [],
}


@pytest.fixture(scope="module")
def local_ray():  # type: ignore[no-untyped-def]
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield
    ray.shutdown()


def test_files_on_actors_with_a_failing_row_recorded(local_ray: None, tmp_path: Path) -> None:
    from remotemedia.ray import map_pipeline

    paths = []
    for i in range(4):
        p = tmp_path / f"in{i}.wav"
        remotemedia.write(p, remotemedia.Audio(np.zeros(48000 * (i + 1), np.float32), 48000))
        paths.append(str(p))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    paths.append(str(bad))
    ds = ray.data.from_items([{"path": p} for p in paths])
    out_dir = tmp_path / "out"
    rows = map_pipeline(ds, json.dumps(MANIFEST), out_dir, concurrency=2).take_all()
    by = {Path(r["path"]).name: r for r in rows}
    assert len(by) == 5
    assert by["bad.wav"]["status"] == "error" and "bad.wav" in by["bad.wav"]["error"]
    for i in range(4):
        r = by[f"in{i}.wav"]
        assert r["status"] == "ok", r
        assert r["audio_seconds"] == pytest.approx(i + 1)
        back = remotemedia.read(r["output"])
        assert back.sample_rate == 16000 and len(back) == 16000 * (i + 1)
