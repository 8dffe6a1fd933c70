"""The benchmark harness that docs/benchmarks.md quotes still runs (a smoke test: it checks
the tables are produced and our rows are present, never the timings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_the_format_section_runs_and_prints_its_table() -> None:
    r = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/compare.py"), "--only", "format"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "### int16 -> float32, 1M samples" in r.stdout
    rows = [line for line in r.stdout.splitlines() if line.startswith("| remotemedia ")]
    assert any(row.startswith("| remotemedia FormatConverterNode |") for row in rows), r.stdout
    assert "- versions: remotemedia " in r.stdout


def test_the_io_bench_decode_section_runs() -> None:
    pytest.importorskip("soundfile")
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks/io_bench.py"),
            "--only",
            "decode",
            "--runs",
            "1",
            "--minutes",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "### Decoding a 1-minute 48 kHz stereo 16-bit file" in r.stdout
    assert "| WAV 12 MB | `remotemedia.read(dtype='float32')` |" in r.stdout, r.stdout


def test_the_io_bench_codecs_section_runs() -> None:
    pytest.importorskip("soundfile")
    r = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/io_bench.py"), "--only", "codecs", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| mp3 stereo |")]
    assert [row.split("|")[2].strip() for row in rows] == ["remotemedia", "soundfile"], r.stdout
    # Same LAME setting on both sides: the same size, and an SNR that shows no delay left in.
    snr = [float(row.split("|")[6].split()[0]) for row in rows]
    assert min(snr) > 20, r.stdout
