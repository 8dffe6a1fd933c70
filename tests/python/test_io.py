"""remotemedia.read / write / blocks and the native batch runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import remotemedia
from remotemedia import _native


def _noise(frames: int, channels: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    shape = (frames,) if channels == 1 else (frames, channels)
    if dtype == "int16":
        return rng.integers(-32768, 32767, size=shape, dtype=np.int16)
    if dtype == "int32":
        return (rng.integers(-(2**23), 2**23 - 1, size=shape, dtype=np.int32) << 8).astype(np.int32)
    return (rng.standard_normal(shape) * 0.3).astype(dtype)


@pytest.mark.parametrize(
    ("name", "dtype", "subtype"),
    [
        ("a.wav", "int16", None),
        ("b.wav", "int32", None),
        ("c.wav", "int32", "PCM_24"),
        ("d.wav", "float32", None),
        ("e.wav", "float64", None),
        ("f.flac", "int16", None),
        ("g.flac", "int32", None),
    ],
)
def test_round_trip_keeps_values_and_dtype(
    tmp_path: Path, name: str, dtype: str, subtype: str | None
) -> None:
    data = _noise(5001, 2, dtype)
    remotemedia.write(tmp_path / name, data, subtype=subtype, sample_rate=22050)
    back = remotemedia.read(tmp_path / name)
    assert back.dtype == np.dtype(dtype)
    assert back.sample_rate == 22050
    assert back.shape == (5001, 2)
    np.testing.assert_array_equal(np.asarray(back), data)


def test_read_with_dtype_converts(tmp_path: Path) -> None:
    a = remotemedia.Audio(np.array([0, 16384, -32768], dtype=np.int16), 8000)
    remotemedia.write(tmp_path / "x.wav", a)
    f = remotemedia.read(tmp_path / "x.wav", dtype="float32")
    assert f.dtype == np.float32
    np.testing.assert_allclose(np.asarray(f), [0.0, 0.5, -1.0])
    with pytest.raises(ValueError, match='dtype="uint8" is not supported'):
        remotemedia.read(tmp_path / "x.wav", dtype="uint8")


def test_blocks_cover_the_file_in_order(tmp_path: Path) -> None:
    data = _noise(10_000, 1, "int16")
    remotemedia.write(tmp_path / "m.flac", data, sample_rate=16000)
    parts = list(remotemedia.blocks(tmp_path / "m.flac", 3000))
    assert [len(p) for p in parts] == [3000, 3000, 3000, 1000]
    assert all(p.sample_rate == 16000 for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), data)


def test_damaged_and_missing_files_raise_naming_the_file(tmp_path: Path) -> None:
    data = _noise(4000, 1, "int16")
    remotemedia.write(tmp_path / "ok.wav", data, sample_rate=16000)
    raw = (tmp_path / "ok.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(raw[:-2000])
    with pytest.raises(ValueError, match=r"cut\.wav: truncated"):
        remotemedia.read(tmp_path / "cut.wav")
    (tmp_path / "odd.wav").write_bytes(raw[:40] + (1001).to_bytes(4, "little") + raw[44:1045])
    with pytest.raises(ValueError, match=r"odd\.wav.*1001 bytes"):
        remotemedia.read(tmp_path / "odd.wav")
    with pytest.raises(FileNotFoundError, match=r"missing\.wav"):
        remotemedia.read(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="FLAC stores PCM_16 or PCM_24"):
        remotemedia.write(
            tmp_path / "f.flac", data.astype(np.float32) / 32768, subtype="FLOAT", sample_rate=16000
        )
    assert not (tmp_path / "f.flac").exists()
    with pytest.raises(ValueError, match="sample_rate"):
        remotemedia.write(tmp_path / "n.wav", data)


def test_run_files_processes_a_corpus_and_records_failures(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    remotemedia.write(corpus / "a.wav", _noise(800, 1, "int16"), sample_rate=8000)
    remotemedia.write(corpus / "sub" / "b.wav", _noise(1600, 1, "int16"), sample_rate=8000)
    (corpus / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    manifest = json.dumps(
        {
            "version": "v1",
            "metadata": {"name": "pass"},
            "nodes": [{"id": "p", "node_type": "PassThroughNode", "params": {}}],
            "connections": [],
        }
    )
    out = tmp_path / "out"
    records = json.loads(_native.run_files(manifest, [str(corpus)], str(out), jobs=2))
    assert remotemedia.read(out / "sub" / "b.wav").shape == (1600,)
    rows = [json.loads(x) for x in (out / "summary.jsonl").read_text().splitlines()]
    assert sorted(r["status"] for r in rows) == ["error", "ok", "ok"]
    # The returned records are the summary's, in input order (sorted directory walk).
    assert sorted(rows, key=lambda r: r["file"]) == records
    assert [Path(r["file"]).name for r in records] == ["a.wav", "bad.wav", "b.wav"]


def test_integer_scaled_float_audio_is_refused_with_the_fix(tmp_path: Path) -> None:
    # Issue 36: read int16 (int16 by design), `a * 0.5` (float64 at integer scale), write: a
    # DOUBLE WAV peaking at 14393.0, without a word.
    a = remotemedia.Audio(np.array([0, 28786, -20000], dtype=np.int16), 16000)
    half = a * 0.5
    with pytest.raises(ValueError, match=r"peaks at 14393.*Divide by 32768") as e:
        remotemedia.write(tmp_path / "x.wav", half)
    assert "check_range=False" in str(e.value)
    assert not (tmp_path / "x.wav").exists()
    remotemedia.write(tmp_path / "x.wav", half, check_range=False)
    np.testing.assert_array_equal(np.asarray(remotemedia.read(tmp_path / "x.wav")), half)
    # Float audio at float scale, overs up to +6 dB included, is written as always.
    ok = np.array([0.0, 1.9, -1.5], dtype=np.float32)
    remotemedia.write(tmp_path / "ok.wav", ok, sample_rate=16000)
    np.testing.assert_array_equal(np.asarray(remotemedia.read(tmp_path / "ok.wav")), ok)


def test_the_sample_rate_as_soundfiles_third_argument(tmp_path: Path) -> None:
    data = _noise(800, 1, "int16")
    remotemedia.write(tmp_path / "w.wav", data, 16000)
    back = remotemedia.read(tmp_path / "w.wav")
    assert back.sample_rate == 16000
    np.testing.assert_array_equal(np.asarray(back), data)
    with pytest.raises(ValueError, match="two sample rates"):
        remotemedia.write(tmp_path / "w.wav", data, 16000, sample_rate=8000)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_read_takes_bytes_and_file_like_objects_as_a_path(tmp_path: Path, ext: str) -> None:
    import io

    import soundfile as sf

    rng = np.random.default_rng(3)
    x = (0.3 * rng.standard_normal((4000, 2))).astype(np.float32)
    p = tmp_path / f"x.{ext}"
    sf.write(p, x, 16000, format={"ogg": "OGG", "mp3": "MP3"}.get(ext, ext.upper()))
    want = remotemedia.read(p)
    data = p.read_bytes()
    for source in (data, bytearray(data), memoryview(data), io.BytesIO(data)):
        got = remotemedia.read(source)
        assert got.sample_rate == 16000 and got.dtype == want.dtype, type(source)
        np.testing.assert_array_equal(got, want)
    with p.open("rb") as f:
        np.testing.assert_array_equal(
            remotemedia.read(f, dtype="float64"), remotemedia.read(p, dtype="float64")
        )
    # info() reads the header only, from any of the same sources.
    i = remotemedia.info(io.BytesIO(data))
    assert (i.sample_rate, i.channels, i.container) == (16000, 2, ext)
    assert i == remotemedia.info(p) and i.dtype == str(want.dtype)
    if i.frames is not None:
        assert i.frames == want.frames and i.duration == pytest.approx(want.frames / 16000)
    # A pipeline takes the same inputs.
    p1 = remotemedia.Pipeline("r").add_node(remotemedia.AudioResampleNode(8000))
    np.testing.assert_array_equal(p1.run(io.BytesIO(data)), p1.run(p))


def test_info_names_the_subtype_as_soundfile_does(tmp_path: Path) -> None:
    import soundfile as sf

    x = np.zeros((100, 1), dtype=np.float32)
    for fmt, subtype in [
        ("WAV", "PCM_16"),
        ("WAV", "PCM_24"),
        ("WAV", "PCM_32"),
        ("WAV", "FLOAT"),
        ("WAV", "DOUBLE"),
        ("WAV", "PCM_U8"),
        ("FLAC", "PCM_16"),
        ("FLAC", "PCM_24"),
        ("OGG", "VORBIS"),
    ]:
        p = tmp_path / f"x_{subtype}.{fmt.lower()}"
        sf.write(p, x, 8000, format=fmt, subtype=subtype)
        assert remotemedia.info(p).subtype == sf.info(p).subtype == subtype, (fmt, subtype)


def test_read_errors_for_other_objects_say_what_is_taken() -> None:
    import io

    with pytest.raises(
        TypeError, match=r"read\(\) returned str, not bytes: open the file in binary mode"
    ):
        remotemedia.read(io.StringIO("RIFF"))  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"read\(\) takes a path, bytes or a binary file-like object, got list"
    ):
        remotemedia.read([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"<bytes>: not a readable audio file"):
        remotemedia.read(b"not audio at all")
    with pytest.raises(ValueError, match="empty"):
        remotemedia.read(b"")
