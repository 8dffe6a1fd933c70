"""Reading and writing audio files natively (the same streaming reader and writer as the CLI).

>>> import numpy as np, tempfile, os, remotemedia
>>> d = tempfile.mkdtemp()
>>> a = remotemedia.Audio(np.arange(8, dtype=np.int16), 16000)
>>> remotemedia.write(os.path.join(d, "x.flac"), a)
>>> remotemedia.read(os.path.join(d, "x.flac"))
Audio(frames=8, channels=1, sample_rate=16000, dtype=int16)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from remotemedia import _native
from remotemedia._types import Audio

__all__ = ["blocks", "read", "write"]

PathLike = str | os.PathLike[str]


def read(path: PathLike, dtype: str | None = None) -> Audio:
    """Reads a WAV, FLAC, MP3 or OGG/Vorbis file.

    The file's own sample format is kept unless ``dtype`` ("float32", "float64", "int16",
    "int32") asks for another: 16-bit -> int16, 24/32-bit -> int32 (24-bit in the top bits),
    float -> float32/float64; MP3 and Vorbis decode to float32. Damaged files (truncated, a
    header that disagrees with the data, a wrong extension) raise ValueError naming the file.
    """
    result: Audio = _native.read_file(os.fspath(path), dtype)
    return result


def write(
    path: PathLike,
    audio: Any,
    subtype: str | None = None,
    sample_rate: int | None = None,
) -> None:
    """Writes audio to a .wav or .flac file, atomically (a temporary file renamed into place).

    ``subtype`` is soundfile's: "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE" (FLAC takes
    PCM_16 or PCM_24); by default the one that keeps the data's format exactly. ``sample_rate``
    is needed only for a plain numpy array (an ``Audio`` carries its own).
    """
    rate = getattr(audio, "sample_rate", None) or sample_rate
    if rate is None:
        raise ValueError("pass sample_rate=... with a numpy array (an Audio carries its own)")
    arr = np.ascontiguousarray(np.asarray(audio))
    _native.write_file(os.fspath(path), arr, int(rate), subtype)


def blocks(path: PathLike, blocksize: int, dtype: str | None = None) -> Iterator[Audio]:
    """Iterates over a file in blocks of at most ``blocksize`` frames, in constant memory.

    A file found damaged part-way raises ValueError at that point (never a silently short
    result).
    """
    reader = _native.BlockReader(os.fspath(path), blocksize, dtype)
    yield from reader
