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
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from remotemedia import _native
from remotemedia._types import Audio, Segment

__all__ = [
    "AudioFileInfo",
    "Loudness",
    "blocks",
    "info",
    "loudness",
    "read",
    "write",
    "write_segments",
]

PathLike = str | os.PathLike[str]


class BinaryReadable(Protocol):
    """A binary file-like object (``io.BytesIO``, ``open(p, "rb")``, an HTTP response)."""

    def read(self, size: int = -1, /) -> bytes: ...


#: What ``read`` and ``info`` take: a path, the file's bytes, or a binary file-like object.
AudioSource = PathLike | bytes | bytearray | memoryview | BinaryReadable


class AudioFileInfo(NamedTuple):
    """What :func:`info` reads from a file's header (soundfile's ``sf.info`` fields)."""

    sample_rate: int
    channels: int
    #: Frames the header announces (None for a stream of unknown length).
    frames: int | None
    #: Seconds (None when ``frames`` is).
    duration: float | None
    #: "wav", "flac", "mp3", "ogg".
    container: str
    #: soundfile's name of the encoding: "PCM_16", "PCM_24", "FLOAT", "VORBIS", ...
    subtype: str
    #: The dtype :func:`read` gives by default.
    dtype: str


class Loudness(NamedTuple):
    """EBU R128 figures (:func:`loudness`)."""

    #: Gated integrated loudness, LUFS (-inf for silence or audio below the -70 LUFS gate).
    integrated_lufs: float
    #: Highest true peak over all channels (4x oversampled below 96 kHz), dBTP.
    true_peak_dbtp: float
    #: Loudness range (EBU Tech 3342), LU.
    loudness_range_lu: float


def loudness(source: Any, sample_rate: int | None = None) -> Loudness:
    """Measures audio as EBU R128 / ITU-R BS.1770 does, with the meter of
    :class:`~remotemedia.LoudnessNormalizeNode` (the ``ebur128`` crate): integrated loudness,
    true peak and loudness range. ``source`` is audio (an array with ``sample_rate``, an
    :class:`Audio`) or a file (a path, bytes or a binary file-like object, read block by block in
    constant memory). Floats are full scale at 1.0, integers at their type's range.

    >>> import numpy as np, remotemedia
    >>> t = np.arange(48000 * 3) / 48000
    >>> tone = np.sin(2 * np.pi * 997 * t).astype(np.float32)  # full scale, one channel
    >>> round(remotemedia.loudness(tone, 48000).integrated_lufs, 1)  # BS.1770 reads -3.0 LUFS
    -3.0
    """
    return Loudness(**_native.loudness(source, sample_rate))


def info(source: AudioSource) -> AudioFileInfo:
    """Reads a file's header without decoding its audio: rate, channels, frames, duration,
    container, subtype and the dtype :func:`read` gives (a path, bytes, or a binary file-like
    object, as for :func:`read`).

    >>> import numpy as np, tempfile, os, remotemedia
    >>> p = os.path.join(tempfile.mkdtemp(), "x.wav")
    >>> remotemedia.write(p, remotemedia.Audio(np.zeros(800, np.int16), 8000))
    >>> remotemedia.info(p)
    AudioFileInfo(sample_rate=8000, channels=1, frames=800, duration=0.1, container='wav', subtype='PCM_16', dtype='int16')
    """
    return AudioFileInfo(**_native.audio_info(source))


def read(path: AudioSource, dtype: str | None = None) -> Audio:
    """Reads a WAV, FLAC, MP3 or OGG/Vorbis file: a path, the file's bytes (``bytes``,
    ``bytearray``, ``memoryview``), or a binary file-like object (``io.BytesIO``, ``open(p,
    "rb")``, read to its end). The result is an :class:`Audio` (an ndarray that knows its
    rate): soundfile's ``data, sr = sf.read(p)`` is ``data = read(p); sr = data.sample_rate``.

    The file's own sample format is kept unless ``dtype`` ("float32", "float64", "int16",
    "int32") asks for another: 16-bit -> int16, 24/32-bit -> int32 (24-bit in the top bits),
    float -> float32/float64; MP3 and Vorbis decode to float32. Damaged files (truncated, a
    header that disagrees with the data, a wrong extension) raise ValueError naming the file.
    """
    result: Audio = _native.read_file(path, dtype)
    return result


def write(
    path: PathLike,
    audio: Any,
    subtype: str | int | None = None,
    sample_rate: int | str | None = None,
    *,
    check_range: bool = True,
    compression_level: float | None = None,
) -> None:
    """Writes audio to a file, atomically (a temporary file renamed into place); the container
    comes from the extension: .wav, .flac, .ogg/.oga (Ogg Vorbis), .opus (Ogg Opus), .mp3.

    ``subtype`` is soundfile's: "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE" (FLAC takes
    PCM_16 or PCM_24; by default the one that keeps the data's format exactly), "VORBIS",
    "OPUS" (either in a .ogg file), "MPEG_LAYER_III". ``sample_rate`` is needed only for a plain
    numpy array (an ``Audio`` carries its own); soundfile's order, ``write(path, data, 16000)``
    or ``write(path, data, 16000, "PCM_24")``, works too.

    Lossy outputs: ``compression_level`` as soundfile's, 0.0 (best quality, largest) to 1.0
    (smallest); by default Vorbis quality 0.4, Opus's automatic bitrate, MP3 VBR V2 (~190
    kbit/s stereo). Opus takes 8, 12, 16, 24 or 48 kHz and MP3 8 to 48 kHz MPEG rates, 1 or 2
    channels: other rates are refused (resample first), never changed silently. Lengths come
    back exactly on reading (the files carry their encoder delay and padding).

    Float audio is full scale at 1.0: float data peaking beyond 2.0 (6 dB over) is refused, as
    it is almost always integer-scaled samples made float by arithmetic (an int16 file times
    0.5), which would be written as a file of enormous values (or clipped flat in PCM);
    ``check_range=False`` writes it as it is.
    """
    if (
        isinstance(subtype, (int, np.integer))
        and not isinstance(subtype, bool)
        and isinstance(sample_rate, str)
    ):
        # soundfile's order in full: write(path, data, samplerate, subtype).
        subtype, sample_rate = sample_rate, subtype
    if isinstance(subtype, (int, np.integer)) and not isinstance(subtype, bool):
        positional_rate = int(subtype)
        if sample_rate is not None and int(sample_rate) != positional_rate:
            raise ValueError(
                f"write(path, audio, {positional_rate}, sample_rate={sample_rate}): two sample "
                "rates; the third argument is the sample rate (as in soundfile) or a subtype"
            )
        subtype, sample_rate = None, positional_rate
    if not (subtype is None or isinstance(subtype, str)):
        raise TypeError(f"subtype must be a string such as 'PCM_16', got {subtype!r}")
    rate = getattr(audio, "sample_rate", None) or sample_rate
    if rate is None:
        raise ValueError("pass sample_rate=... with a numpy array (an Audio carries its own)")
    arr = np.ascontiguousarray(np.asarray(audio))
    if check_range and arr.dtype.kind == "f" and arr.size:
        peak = float(np.max(np.abs(arr)))
        if peak > 2.0:
            raise ValueError(
                f"{os.fspath(path)}: the {arr.dtype} audio peaks at {peak:g}, but float audio is "
                f"full scale at 1.0 ({20 * np.log10(peak):.0f} dB over): this looks like "
                "integer-scaled samples made float by arithmetic (an int16 file times 0.5, say). "
                "Divide by 32768 (16-bit data) or 2147483648 (32-bit) first, or convert back "
                "with .astype(np.int16); pass check_range=False to write it as it is"
            )
    _native.write_file(os.fspath(path), arr, int(rate), subtype, compression_level)


def blocks(path: PathLike, blocksize: int, dtype: str | None = None) -> Iterator[Audio]:
    """Iterates over a file in blocks of at most ``blocksize`` frames, in constant memory.

    A file found damaged part-way raises ValueError at that point (never a silently short
    result).
    """
    reader = _native.BlockReader(os.fspath(path), blocksize, dtype)
    yield from reader


def _segment(
    seg: Segment | Mapping[str, Any], i: int
) -> tuple[int, int, int, float | None, float | None]:
    """A segment as the runtime takes it: ``(start_sample, end_sample, sample_rate,
    confidence, energy_db)``."""
    try:
        confidence, energy = seg.get("confidence"), seg.get("energy_db")
        return (
            int(seg["start_sample"]),
            int(seg["end_sample"]),
            int(seg["sample_rate"]),
            None if confidence is None else float(confidence),
            None if energy is None else float(energy),
        )
    except (KeyError, TypeError, AttributeError):
        raise TypeError(
            f"segments[{i}] is {type(seg).__name__}; expected a remotemedia.Segment (or a "
            "mapping with start_sample, end_sample and sample_rate), as the VAD nodes give"
        ) from None


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
    resampler) are placed by their times. ``audio_format`` is one of "wav", "flac", "ogg",
    "opus", "mp3"; ``subtype`` as for :func:`write`. Returns the audio files' paths::

        segments = Pipeline("v").add_node(SpeechVADNode()).run(audio)
        remotemedia.write_segments(audio, segments, "out/")
    """
    if audio_format not in _native.AUDIO_FORMATS:
        raise ValueError(
            f"audio_format={audio_format!r}; expected one of {', '.join(_native.AUDIO_FORMATS)}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    segs = list(segments)
    names = [f"{prefix}{i + 1:04d}.{audio_format}" for i in range(len(segs))]
    paths = [out / n for n in names]
    # Placement (segments counted at another rate are placed by their times) and the index
    # are the runtime's, shared with the CLI's --segments-dir.
    spans = [_segment(s, i) for i, s in enumerate(segs)]
    if isinstance(audio, (str, os.PathLike)):
        source: Any = os.fspath(audio)  # read once, block by block
        rate = None
    else:
        source, rate = np.asarray(audio), getattr(audio, "sample_rate", None) or sample_rate
    _native.write_segments(source, rate, spans, [str(p) for p in paths], subtype)
    if index is not None:
        _native.write_segment_index(out / index, names, spans)
    return paths
