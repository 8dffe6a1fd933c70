"""Reading and writing audio files natively (the same streaming reader and writer as the CLI).

>>> import numpy as np, tempfile, os, remotemedia
>>> d = tempfile.mkdtemp()
>>> a = remotemedia.Audio(np.arange(8, dtype=np.int16), 16000)
>>> remotemedia.write(os.path.join(d, "x.flac"), a)
>>> remotemedia.read(os.path.join(d, "x.flac"))
Audio(frames=8, channels=1, sample_rate=16000, dtype=int16)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from remotemedia import _native
from remotemedia._types import Audio, Segment

__all__ = ["blocks", "read", "write", "write_segments"]

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


def _samples(seg: Segment | Mapping[str, Any], i: int) -> tuple[int, int, int]:
    """A segment's ``(start_sample, end_sample, sample_rate)``."""
    try:
        return int(seg["start_sample"]), int(seg["end_sample"]), int(seg["sample_rate"])
    except (KeyError, TypeError):
        raise TypeError(
            f"segments[{i}] is {type(seg).__name__}; expected a remotemedia.Segment (or a "
            "mapping with start_sample, end_sample and sample_rate), as the VAD nodes give"
        ) from None


def _span(seg: Segment | Mapping[str, Any], rate: int, i: int) -> tuple[int, int]:
    """A segment's ``[start, end)`` in frames at ``rate`` (its own samples when it counts at
    that rate, else its times rounded to the nearest frame, as the runtime places them)."""
    start, end, seg_rate = _samples(seg, i)
    if seg_rate != rate:
        start, end = round(start * rate / seg_rate), round(end * rate / seg_rate)
    if not 0 <= start <= end:
        raise ValueError(f"segments[{i}] spans frames {start}..{end}; expected 0 <= start <= end")
    return start, end


def write_segments(
    audio: Any,
    segments: Iterable[Segment | Mapping[str, Any]],
    out_dir: PathLike,
    *,
    sample_rate: int | None = None,
    prefix: str = "seg_",
    audio_format: str = "wav",
    subtype: str | None = None,
    index: str | None = "segments.jsonl",
) -> list[Path]:
    """Writes each segment's audio to its own file, ``out_dir/seg_0001.wav``, ... in order,
    plus an index, ``out_dir/segments.jsonl``: one JSON line per file with its name and the
    segment's fields (``start_s``, ``end_s``, ``start_sample``, ..., ``confidence``).

    ``audio`` is what the segments were found in: an :class:`~remotemedia.Audio` (or a numpy
    array with ``sample_rate``), or a path to an audio file, read once, block by block, each
    block's part of a segment written as it comes (constant memory; segments must then come in
    order without overlap, as a VAD node gives them). Segments counted at another rate than the audio's (a VAD after a
    resampler) are placed by their times. ``audio_format`` is "wav" or "flac"; ``subtype`` as
    for :func:`write`. Returns the audio files' paths::

        segments = Pipeline("v").add_node(SpeechVADNode()).run(audio)
        remotemedia.write_segments(audio, segments, "out/")
    """
    if audio_format not in ("wav", "flac"):
        raise ValueError(f"audio_format={audio_format!r}; expected 'wav' or 'flac'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    segs = list(segments)
    names = [f"{prefix}{i + 1:04d}.{audio_format}" for i in range(len(segs))]
    paths = [out / n for n in names]
    if isinstance(audio, (str, os.PathLike)):
        # The runtime's one pass over the file (the CLI's --segments-dir too).
        spans = [_samples(s, i) for i, s in enumerate(segs)]
        _native.write_segments_file(os.fspath(audio), spans, [str(p) for p in paths], subtype)
    else:
        rate = getattr(audio, "sample_rate", None) or sample_rate
        if rate is None:
            raise ValueError("pass sample_rate=... with a numpy array (an Audio carries its own)")
        arr = np.asarray(audio)
        for i, (seg, path) in enumerate(zip(segs, paths, strict=True)):
            start, end = _span(seg, int(rate), i)
            if end > arr.shape[0]:
                raise ValueError(
                    f"segments[{i}] ends at frame {end}, past the audio's {arr.shape[0]} frames"
                )
            write(path, arr[start:end], subtype, int(rate))
    if index is not None:
        lines = []
        for name, seg in zip(names, segs, strict=True):
            fields = seg.to_dict() if isinstance(seg, Segment) else dict(seg)
            lines.append(json.dumps({"file": name, **fields}) + "\n")
        tmp = out / f".{index}.part"
        tmp.write_text("".join(lines))
        tmp.replace(out / index)
    return paths
