"""Input preparation, in one place for local runs, remote runs and streams: files are read,
sample rates checked, arrays brought to a layout the runtime borrows without copying."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from remotemedia import _native
from remotemedia._types import Audio

__all__ = ["prepare", "prepare_chunk", "sample_rate_of"]

_DTYPES = (np.float32, np.float64, np.int16, np.int32)


# The runtime's supported input rates (crates/remotemedia-core data::MIN/MAX_SAMPLE_RATE).
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 384000
_U32_MAX = 2**32 - 1


def sample_rate_of(value: Any, what: str = "sample_rate") -> int:
    """An integer sample rate in Hz from an int, a numpy integer or an integral float.

    Rates the runtime cannot even hold (below 1 or beyond u32) are refused here: they would
    otherwise fail converting to u32 with an OverflowError naming nothing. Other rates
    outside the range reach the nodes, whose NodeError names the node."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be an integer in Hz, got {value!r}")
    if isinstance(value, (int, np.integer)):
        rate = int(value)
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        rate = int(value)
    else:
        raise TypeError(f"{what} must be an integer in Hz, got {value!r}")
    if not 1 <= rate <= _U32_MAX:
        raise ValueError(
            f"{what} must be in {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz, got {value!r}"
        )
    return rate


def _array(data: np.ndarray) -> np.ndarray:
    if data.dtype not in _DTYPES:
        raise TypeError(
            f"audio dtype {data.dtype} is not supported; use float32, float64, int16 or int32 "
            "(e.g. audio.astype(np.float32))"
        )
    if not data.dtype.isnative or not data.flags.c_contiguous:
        # The runtime borrows C-contiguous native-order arrays; anything else is copied once.
        data = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("="))
    return data


def prepare(data: Any, sample_rate: Any = None, dtype: str | None = None) -> tuple[Any, int | None]:
    """Normalises a run input: reads files (in their own sample format, or ``dtype`` as
    soundfile names it), checks rates, makes arrays contiguous."""
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"no such audio file: {path}")
        audio: Audio = _native.read_file(os.fspath(path), dtype)
        rate = audio.sample_rate
        if sample_rate is not None and sample_rate_of(sample_rate) != rate:
            raise ValueError(f"{path} is {rate} Hz but sample_rate={sample_rate} was given")
        return audio, rate
    if dtype is not None:
        raise ValueError("dtype= applies to files; convert arrays with numpy (a.astype(...))")
    if isinstance(data, np.ndarray):
        own: int | None = getattr(data, "sample_rate", None)
        given = None if sample_rate is None else sample_rate_of(sample_rate)
        if own is not None and given is not None and own != given:
            raise ValueError(f"the Audio is {own} Hz but sample_rate={given} was given")
        chosen = own or given
        if chosen is None:
            raise ValueError(
                "pass sample_rate=... with a numpy array (or a remotemedia.Audio, which has one)"
            )
        return _array(data), int(chosen)
    return data, None if sample_rate is None else sample_rate_of(sample_rate)


def prepare_chunk(chunk: Any, sample_rate: int, channels: int, *, own: bool) -> np.ndarray:
    """Checks one stream chunk against the session's rate and layout. With ``own`` (the chunk
    is queued and processed after ``send`` returns) the result never shares memory with the
    caller's array, so a caller that refills one buffer cannot change queued chunks."""
    if not isinstance(chunk, np.ndarray):
        raise TypeError(f"send() takes a numpy array of audio, got {type(chunk).__name__}")
    rate = getattr(chunk, "sample_rate", None)
    if rate is not None and rate != sample_rate:
        raise ValueError(f"chunk is {rate} Hz but the session was opened at {sample_rate} Hz")
    have = 1 if chunk.ndim == 1 else (chunk.shape[1] if chunk.ndim == 2 else -1)
    if have != channels:
        raise ValueError(
            f"chunk has shape {chunk.shape} but the session has {channels} channel(s); "
            "chunks are (frames,) for mono or (frames, channels)"
        )
    out = _array(chunk)
    if own and np.may_share_memory(out, chunk):
        out = out.copy()
    return out
