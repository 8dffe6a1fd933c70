"""remotemedia.write_segments: each VAD segment to its own file, with a JSON-lines index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import remotemedia as rm

from conftest import REPO

WAV = REPO / "examples" / "speech_48k.wav"


def speech() -> tuple[rm.Audio, list[rm.Segment]]:
    audio = rm.read(WAV)
    segs = rm.Pipeline("v").add_node(rm.SpeechVADNode()).run(audio)
    assert len(segs) >= 2
    return audio, segs


def test_each_segment_is_its_audio_and_the_index_lists_them(tmp_path: Path) -> None:
    audio, segs = speech()
    paths = rm.write_segments(audio, segs, tmp_path / "out")
    assert [p.name for p in paths] == [f"seg_{i:04d}.wav" for i in range(1, len(segs) + 1)]
    for seg, path in zip(segs, paths, strict=True):
        got = rm.read(path)
        assert got.sample_rate == 48000 and got.dtype == audio.dtype
        np.testing.assert_array_equal(got, audio[seg.start_sample : seg.end_sample])
    lines = (tmp_path / "out" / "segments.jsonl").read_text().splitlines()
    index = [json.loads(line) for line in lines]
    assert [e["file"] for e in index] == [p.name for p in paths]
    assert [(e["start_s"], e["end_sample"]) for e in index] == [
        (s.start_s, s.end_sample) for s in segs
    ]
    assert all("confidence" in e for e in index)


def test_a_file_is_read_block_by_block_with_the_same_result(tmp_path: Path) -> None:
    audio, segs = speech()
    whole = rm.write_segments(audio, segs, tmp_path / "a", audio_format="flac")
    streamed = rm.write_segments(WAV, segs, tmp_path / "b", audio_format="flac", index=None)
    assert not (tmp_path / "b" / "segments.jsonl").exists()
    for x, y in zip(whole, streamed, strict=True):
        assert y.suffix == ".flac"
        np.testing.assert_array_equal(rm.read(x), rm.read(y))


def test_segments_found_after_a_resampler_are_placed_by_their_times(tmp_path: Path) -> None:
    audio = rm.read(WAV)
    p = rm.Pipeline("v").add_node(rm.AudioResampleNode(16000)).add_node(rm.SpeechVADNode())
    segs = p.run(audio)
    assert segs and all(s.sample_rate == 16000 for s in segs)
    paths = rm.write_segments(audio, segs, tmp_path)
    for seg, path in zip(segs, paths, strict=True):
        assert rm.read(path).frames == seg.end_sample * 3 - seg.start_sample * 3


def test_bad_segments_are_refused_naming_the_segment(tmp_path: Path) -> None:
    audio, segs = speech()
    late = rm.Segment(segs[-1].end_sample, audio.frames + 10, 48000)
    with pytest.raises(ValueError, match=r"segments\[1\] ends at frame \d+, past the audio"):
        rm.write_segments(audio, [segs[0], late], tmp_path)
    with pytest.raises(ValueError, match=r"segments\[1\] ends at frame \d+, past the end of"):
        rm.write_segments(WAV, [segs[0], late], tmp_path)
    with pytest.raises(
        ValueError, match=r"segments\[1\] starts at frame \d+, before segments\[0\] ends"
    ):
        rm.write_segments(WAV, [segs[1], segs[0]], tmp_path)
    with pytest.raises(TypeError, match=r"segments\[0\] is tuple; expected a remotemedia.Segment"):
        rm.write_segments(audio, [(0, 10)], tmp_path)  # type: ignore[list-item]
    with pytest.raises(
        ValueError, match="audio_format='aac'; expected one of wav, flac, ogg, opus, mp3"
    ):
        rm.write_segments(audio, segs, tmp_path, audio_format="aac")
    with pytest.raises(ValueError, match="pass sample_rate"):
        rm.write_segments(np.zeros(100, np.float32), [rm.Segment(0, 10, 16000)], tmp_path)
    # A mapping with the sample fields works as a Segment does (JSON read back, say).
    paths = rm.write_segments(audio, [segs[0].to_dict()], tmp_path / "m")
    assert rm.read(paths[0]).frames == segs[0].end_sample - segs[0].start_sample


def test_the_cli_and_python_write_the_same_files_and_index(tmp_path: Path) -> None:
    # One implementation of placement and of the index (the runtime's), for both.
    import subprocess
    import sys

    manifest = tmp_path / "vad.json"
    p = rm.Pipeline("v").add_node(rm.AudioResampleNode(16000)).add_node(rm.SpeechVADNode())
    manifest.write_text(p.serialize())
    out, cli_dir = tmp_path / "segs.json", tmp_path / "cli"
    args = ["run", str(manifest), "-i", str(WAV), "-o", str(out), "--segments-dir", str(cli_dir)]
    r = subprocess.run(
        [sys.executable, "-m", "remotemedia.cli", *args, "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    segs = rm.Pipeline.from_manifest(manifest).run(rm.read(WAV))
    rm.write_segments(rm.read(WAV), segs, tmp_path / "py")
    cli_index = (tmp_path / "cli" / "segments.jsonl").read_text()
    assert cli_index == (tmp_path / "py" / "segments.jsonl").read_text()
    for line in cli_index.splitlines():
        name = json.loads(line)["file"]
        np.testing.assert_array_equal(
            rm.read(tmp_path / "cli" / name), rm.read(tmp_path / "py" / name)
        )


def test_overlapping_segments_in_memory_each_get_their_audio(tmp_path: Path) -> None:
    audio = rm.Audio(np.arange(48000, dtype=np.int16), 48000)
    segs = [rm.Segment(100, 900, 48000), rm.Segment(500, 1500, 48000), rm.Segment(0, 0, 48000)]
    paths = rm.write_segments(audio, segs, tmp_path, index=None)
    np.testing.assert_array_equal(rm.read(paths[0]), np.arange(100, 900, dtype=np.int16))
    np.testing.assert_array_equal(rm.read(paths[1]), np.arange(500, 1500, dtype=np.int16))
    assert rm.read(paths[2]).frames == 0
    assert not (tmp_path / "segments.jsonl").exists()
