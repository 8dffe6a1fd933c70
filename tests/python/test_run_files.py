"""Pipeline.run_files: a corpus in parallel, failures recorded, resume, relative paths kept."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import remotemedia
from remotemedia import BatchResult, ChannelMixNode, FileResult, PassThroughNode, Pipeline


def _corpus(root: Path) -> dict[str, np.ndarray]:
    """Three good files in nested directories and one corrupt one; returns the good data."""
    rng = np.random.default_rng(3)
    files = {
        "a.wav": rng.integers(-32768, 32767, size=(800, 2), dtype=np.int16),
        "sub/b.flac": rng.integers(-32768, 32767, size=(1600, 2), dtype=np.int16),
        "sub/deeper/c.wav": rng.integers(-32768, 32767, size=(2400, 2), dtype=np.int16),
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        remotemedia.write(root / rel, data, sample_rate=8000)
    (root / "sub" / "broken.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk")
    return files


def _pass() -> Pipeline:
    p = Pipeline("pass")
    p.add_node(PassThroughNode())
    return p


def test_a_corpus_with_a_corrupt_file_is_processed_and_the_failure_recorded(
    tmp_path: Path,
) -> None:
    files = _corpus(tmp_path / "corpus")
    result = _pass().run_files(tmp_path / "corpus", tmp_path / "out", jobs=2)
    assert isinstance(result, BatchResult)
    assert all(isinstance(f, FileResult) for f in result.files)
    assert len(result.files) == 4
    assert [Path(f.file).name for f in result.ok] == ["a.wav", "b.flac", "c.wav"]
    (bad,) = result.failed
    assert bad.status == "error" and bad.file.endswith("broken.wav")
    assert "broken.wav" in (bad.error or "") and bad.outputs == [] and bad.audio_seconds is None
    assert result.skipped == []
    # Every good file, bit-exact under the same relative path, as WAV.
    for rel, data in files.items():
        out = (tmp_path / "out" / rel).with_suffix(".wav")
        np.testing.assert_array_equal(remotemedia.read(out), data)
    by_name = {Path(f.file).name: f for f in result.files}
    assert by_name["c.wav"].outputs == [str(tmp_path / "out" / "sub" / "deeper" / "c.wav")]
    assert by_name["c.wav"].audio_seconds == pytest.approx(2400 / 8000)
    assert result.audio_seconds == pytest.approx((800 + 1600 + 2400) / 8000)
    assert all(f.wall_seconds > 0 for f in result.files)
    assert not list((tmp_path / "out").rglob("broken*"))
    # The summary file holds the same records.
    rows = [json.loads(x) for x in result.summary_path.read_text().splitlines()]
    assert sorted(r["file"] for r in rows) == sorted(f.file for f in result.files)
    with pytest.raises(RuntimeError, match=r"1 of 4 file\(s\) failed[\s\S]*broken\.wav"):
        result.raise_if_failed()
    assert "failed=1" in repr(result)


def test_skip_existing_resumes_without_redoing_finished_files(tmp_path: Path) -> None:
    files = _corpus(tmp_path / "corpus")
    (tmp_path / "corpus" / "sub" / "broken.wav").unlink()
    p = _pass()
    first = p.run_files(tmp_path / "corpus", tmp_path / "out", jobs=1)
    assert len(first.ok) == 3
    # An interrupted batch: one output missing, another a leftover temporary file.
    (tmp_path / "out" / "sub" / "b.wav").unlink()
    (tmp_path / "out" / "sub" / ".b.wav.part-1").write_bytes(b"partial")
    done = tmp_path / "out" / "a.wav"
    stamp = done.stat().st_mtime_ns
    again = p.run_files(tmp_path / "corpus", tmp_path / "out", jobs=2, skip_existing=True)
    assert {Path(f.file).name: f.status for f in again.files} == {
        "a.wav": "skipped",
        "b.flac": "ok",
        "c.wav": "skipped",
    }
    assert done.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(
        remotemedia.read(tmp_path / "out" / "sub" / "b.wav"), files["sub/b.flac"]
    )
    assert again.audio_seconds == pytest.approx(1600 / 8000)


def test_relative_inputs_and_globs_keep_relative_paths_and_formats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _corpus(tmp_path / "corpus")
    monkeypatch.chdir(tmp_path)
    p = Pipeline("mono")
    p.add_node(ChannelMixNode(channels=1))
    result = p.run_files(["corpus/sub/**/*.wav"], "out", audio_format="flac")
    # The pattern's root is corpus/sub: its relative paths are kept under out/.
    assert sorted(f.file for f in result.files) == [
        os.path.join("corpus", "sub", "broken.wav"),
        os.path.join("corpus", "sub", "deeper", "c.wav"),
    ]
    ok = result.ok[0]
    assert ok.outputs == [os.path.join("out", "deeper", "c.flac")]
    mono = remotemedia.read(tmp_path / "out" / "deeper" / "c.flac")
    assert mono.shape == (2400,) and mono.dtype == np.int16
    expected = files["sub/deeper/c.wav"].astype(np.int32).sum(axis=1) / 2
    assert np.max(np.abs(mono - expected)) <= 1
    assert len(result.failed) == 1


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    p = _pass()
    with pytest.raises(ValueError, match="jobs=0"):
        p.run_files(tmp_path, tmp_path / "o", jobs=0)
    with pytest.raises(ValueError, match="paths is empty"):
        p.run_files([], tmp_path / "o")
    with pytest.raises(
        ValueError, match=r"audio_format=.aac.: use one of 'wav', 'flac', 'ogg', 'opus' or 'mp3'"
    ):
        p.run_files(tmp_path, tmp_path / "o", audio_format="aac")
    with pytest.raises(RuntimeError, match="no audio files found"):
        p.run_files(tmp_path, tmp_path / "o")
    with pytest.raises(RuntimeError, match=r"nope\.wav: no such file"):
        p.run_files(tmp_path / "nope.wav", tmp_path / "o")
