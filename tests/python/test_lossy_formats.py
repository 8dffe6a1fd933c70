"""Ogg Vorbis, Ogg Opus and MP3 outputs, checked with an independent decoder (libsndfile via
soundfile); Ogg Opus files made by libsndfile read back by remotemedia."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

import remotemedia

sf = pytest.importorskip("soundfile")


def _tones(frames: int, rate: int, channels: int) -> np.ndarray:
    """A different pair of tones per channel (so a channel in the wrong place shows)."""
    t = np.arange(frames) / rate
    cols = [
        0.3 * np.sin(2 * np.pi * (300 + 150 * c) * t) + 0.2 * np.sin(2 * np.pi * 1000 * t + c)
        for c in range(channels)
    ]
    out = np.stack(cols, axis=1).astype(np.float32)
    return out[:, 0] if channels == 1 else out


def _snr_db(want: np.ndarray, got: np.ndarray, rate: int) -> float:
    """Sample for sample, the first and last 20 ms left out (a delay left in would show)."""
    edge = rate // 50
    w, g = want[edge:-edge].astype(np.float64), got[edge:-edge].astype(np.float64)
    return float(10 * np.log10(np.sum(w**2) / max(np.sum((w - g) ** 2), 1e-30)))


@pytest.mark.parametrize(
    ("name", "rate", "channels", "fmt", "subtype"),
    [
        ("v.ogg", 44100, 2, "OGG", "VORBIS"),
        ("v.ogg", 22050, 1, "OGG", "VORBIS"),
        ("o.opus", 48000, 2, "OGG", "OPUS"),
        ("o.opus", 16000, 1, "OGG", "OPUS"),
        ("m.mp3", 44100, 2, "MP3", "MPEG_LAYER_III"),
        ("m.mp3", 16000, 1, "MP3", "MPEG_LAYER_III"),
    ],
)
def test_libsndfile_reads_what_we_write_at_its_exact_length(
    tmp_path: Path, name: str, rate: int, channels: int, fmt: str, subtype: str
) -> None:
    frames = rate + 321  # not a whole number of codec frames
    data = _tones(frames, rate, channels)
    path = tmp_path / name
    remotemedia.write(path, data, rate)
    info = sf.info(str(path))
    assert (info.format, info.subtype) == (fmt, subtype)
    assert (info.samplerate, info.channels) == (rate, channels)
    theirs, their_rate = sf.read(str(path), dtype="float32")
    assert their_rate == rate
    assert theirs.shape == data.shape, "the encoder delay and padding are dropped on reading"
    assert _snr_db(data, theirs, rate) > 15
    # Ours gives the same length and, decoding the same bitstream, nearly the same samples.
    ours = remotemedia.read(path)
    assert ours.shape == data.shape
    assert ours.sample_rate == rate
    assert _snr_db(data, np.asarray(ours), rate) > 15
    mine = remotemedia.info(path)
    assert (mine.frames, mine.subtype) == (frames, subtype)


def test_surround_is_written_in_the_vorbis_channel_order(tmp_path: Path) -> None:
    # WAV/SMPTE 5.1 (FL FR FC LFE BL BR) goes into an Ogg file as FL FC FR BL BR LFE (the Vorbis
    # order, which Opus's family 1 uses too); libsndfile hands the file's order back as it is.
    data = _tones(48000, 48000, 6)
    vorbis_slot = [0, 2, 1, 5, 3, 4]  # where each WAV-order channel lands in the file
    for name in ("s.ogg", "s.opus"):
        remotemedia.write(tmp_path / name, data, 48000)
        theirs, _ = sf.read(str(tmp_path / name), dtype="float32")
        for c in (0, 1, 2, 4, 5):  # the LFE is low-passed by the encoder by design
            assert _snr_db(data[:, c], theirs[:, vorbis_slot[c]], 48000) > 12, (name, c)
    # Our Opus reader puts them back in WAV order.
    ours = np.asarray(remotemedia.read(tmp_path / "s.opus"))
    for c in (0, 1, 2, 4, 5):
        assert _snr_db(data[:, c], ours[:, c], 48000) > 12, c


@pytest.mark.parametrize("rate", [48000, 16000])
def test_opus_written_by_libsndfile_reads_at_its_rate_and_length(tmp_path: Path, rate: int) -> None:
    data = _tones(rate * 2 + 77, rate, 2)
    path = tmp_path / "theirs.opus"
    sf.write(str(path), data, rate, format="OGG", subtype="OPUS")
    theirs, _ = sf.read(str(path), dtype="float32")
    ours = remotemedia.read(path)
    assert ours.sample_rate == rate
    assert ours.shape == theirs.shape
    assert float(np.max(np.abs(np.asarray(ours) - theirs))) < 2e-3
    info = remotemedia.info(path)
    assert (info.container, info.subtype, info.frames) == ("ogg", "OPUS", theirs.shape[0])


def test_an_opus_read_in_blocks_equals_the_whole(tmp_path: Path) -> None:
    path = tmp_path / "b.opus"
    remotemedia.write(path, _tones(50000, 24000, 1), 24000)
    whole = np.asarray(remotemedia.read(path))
    parts = np.concatenate([np.asarray(b) for b in remotemedia.blocks(path, 4096)])
    np.testing.assert_array_equal(parts, whole)


def test_compression_level_changes_the_size(tmp_path: Path) -> None:
    noise = np.random.default_rng(3).standard_normal((48000 * 2, 2)).astype(np.float32)
    data = _tones(48000 * 2, 48000, 2) + 0.05 * noise  # music-like: bits depend on quality
    for ext in ("ogg", "opus", "mp3"):
        remotemedia.write(tmp_path / f"best.{ext}", data, 48000, compression_level=0.0)
        remotemedia.write(tmp_path / f"small.{ext}", data, 48000, compression_level=1.0)
        best, small = (
            (tmp_path / f"best.{ext}").stat().st_size,
            (tmp_path / f"small.{ext}").stat().st_size,
        )
        assert best > 2 * small, ext


def test_what_a_codec_cannot_store_is_a_clear_error(tmp_path: Path) -> None:
    a = _tones(4410, 44100, 1)
    with pytest.raises(
        ValueError,
        match=r"x\.opus: Opus encodes 8000, 12000, 16000, 24000 or 48000 Hz, not 44100 Hz; resample",
    ):
        remotemedia.write(tmp_path / "x.opus", a, 44100)
    with pytest.raises(ValueError, match="MP3 stores 1 or 2 channels, not 3"):
        remotemedia.write(tmp_path / "x.mp3", _tones(4410, 44100, 3), 44100)
    with pytest.raises(ValueError, match="compression_level applies to the lossy codings"):
        remotemedia.write(tmp_path / "x.wav", a, 44100, compression_level=0.5)
    with pytest.raises(ValueError, match=r"compression_level=2 is out of range; valid: 0\.0"):
        remotemedia.write(tmp_path / "x.ogg", a, 44100, compression_level=2.0)
    with pytest.raises(ValueError, match="OGG stores VORBIS or OPUS, not PCM_16"):
        remotemedia.write(tmp_path / "x.ogg", a, 44100, "PCM_16")
    assert list(tmp_path.iterdir()) == [], "a refused output leaves no file"


def test_opus_in_a_dot_ogg_file_as_soundfile_writes_it(tmp_path: Path) -> None:
    remotemedia.write(tmp_path / "voice.ogg", _tones(16000, 16000, 1), 16000, "OPUS")
    assert sf.info(str(tmp_path / "voice.ogg")).subtype == "OPUS"


def test_the_cli_writes_lossy_outputs(tmp_path: Path) -> None:
    src = tmp_path / "in.wav"
    remotemedia.write(src, (_tones(44100, 44100, 2) * 32767).astype(np.int16), 44100)
    out = tmp_path / "out.opus"
    subprocess.run(
        [
            "remotemedia",
            "run",
            "AudioResampleNode target_rate=48000",
            "-i",
            str(src),
            "-o",
            str(out),
            "-q",
        ],
        check=True,
    )
    info = sf.info(str(out))
    assert (info.subtype, info.samplerate, info.frames) == ("OPUS", 48000, 48000)
    small = tmp_path / "small.mp3"
    subprocess.run(
        [
            "remotemedia",
            "run",
            "GainNode db=-3",
            "-i",
            str(src),
            "-o",
            str(small),
            "-q",
            "--compression-level",
            "1",
        ],
        check=True,
    )
    assert sf.info(str(small)).frames == 44100
    bad = subprocess.run(
        [
            "remotemedia",
            "run",
            "GainNode db=-3",
            "-i",
            str(src),
            "-o",
            str(tmp_path / "x.opus"),
            "-q",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0
    assert "Opus encodes 8000, 12000, 16000, 24000 or 48000 Hz, not 44100 Hz" in bad.stderr


def test_a_batch_writes_ogg(tmp_path: Path) -> None:
    for i in range(2):
        remotemedia.write(tmp_path / f"in{i}.wav", _tones(8000, 16000, 1), 16000)
    p = remotemedia.Pipeline("g").add_node(remotemedia.GainNode(db=-6))
    result = p.run_files(sorted(tmp_path.glob("in*.wav")), tmp_path / "o", audio_format="opus")
    assert not result.failed
    for i in range(2):
        assert sf.info(str(tmp_path / "o" / f"in{i}.opus")).frames == 8000
