"""Value types that cross the Python/Rust boundary: :class:`Audio` and :class:`Segment`."""

from __future__ import annotations

import base64
import html
import io
import wave
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Audio", "Segment"]


class Audio(np.ndarray):
    """A numpy array of audio samples that knows its sample rate.

    Shape is ``(frames,)`` for mono or ``(frames, channels)`` (the soundfile/soxr layout);
    dtype is float32, float64, int16 or int32. It *is* an ndarray: every numpy function works
    on it, and ``np.asarray(audio)`` gives the plain array without copying.

    >>> a = Audio(np.zeros(16000, dtype=np.float32), 16000)
    >>> a.duration, a.channels
    (1.0, 1)
    """

    sample_rate: int | None

    def __new__(cls, samples: npt.ArrayLike, sample_rate: int) -> Audio:
        if isinstance(sample_rate, (float, np.floating)) and float(sample_rate).is_integer():
            sample_rate = int(sample_rate)  # 44100.0 is 44100 Hz (soxr accepts it too)
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
            raise TypeError(f"sample_rate must be an integer in Hz, got {sample_rate!r}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        obj = np.asarray(samples).view(cls)
        obj.sample_rate = int(sample_rate)
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.sample_rate = getattr(obj, "sample_rate", None)

    @property
    def channels(self) -> int:
        """Number of channels (1 for a 1-D array)."""
        return 1 if self.ndim == 1 else int(self.shape[1])

    @property
    def frames(self) -> int:
        """Number of frames (samples per channel)."""
        return int(self.shape[0]) if self.ndim else 0

    @property
    def duration(self) -> float:
        """Duration in seconds."""
        if not self.sample_rate:
            raise ValueError("this array has no sample rate")
        return self.frames / self.sample_rate

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep sample_rate through pickling (ndarray's reduce drops instance attributes).
        reduced = super().__reduce__()
        assert isinstance(reduced, tuple)
        return (*reduced[:2], (reduced[2], self.sample_rate))

    def __setstate__(self, state: Any) -> None:
        inner, rate = state
        super().__setstate__(inner)
        self.sample_rate = rate

    #: Longest audio embedded in a notebook's player (the page holds it as base64 WAV).
    HTML_MAX_SECONDS = 120.0

    def _repr_html_(self) -> str:
        """A notebook view: a waveform, an audio player (the first :attr:`HTML_MAX_SECONDS`
        seconds, as 16-bit WAV) and the format."""
        if self.ndim not in (1, 2) or not self.sample_rate or self.dtype.kind not in "fi":
            return f"<pre>{html.escape(repr(self))}</pre>"
        rate = int(self.sample_rate)
        mono = _as_float(np.asarray(self))
        if mono.ndim == 2:
            mono = mono.mean(axis=1) if mono.shape[1] else np.zeros(mono.shape[0])
        shown = min(self.frames, int(self.HTML_MAX_SECONDS * rate))
        note = (
            f" (player: first {self.HTML_MAX_SECONDS:g} s of {self.duration:.1f} s)"
            if shown < self.frames
            else ""
        )
        wav = _wav16(_as_float(np.asarray(self)[:shown]), rate)
        chans = "channel" if self.channels == 1 else "channels"
        return (
            '<div class="remotemedia-audio" style="font-family: sans-serif; font-size: 12px">'
            f"<div><b>Audio</b> {self.duration:.3f} s, {rate} Hz, {self.channels} {chans}, "
            f"{self.dtype}{html.escape(note)}</div>"
            f"{_waveform_svg(mono)}"
            '<br/><audio controls preload="metadata" '
            f'src="data:audio/wav;base64,{base64.b64encode(wav).decode()}"></audio></div>'
        )

    def __repr__(self) -> str:
        if self.ndim not in (1, 2):
            return np.asarray(self).__repr__()
        return (
            f"Audio(frames={self.frames}, channels={self.channels}, "
            f"sample_rate={self.sample_rate}, dtype={self.dtype})"
        )


def _as_float(samples: np.ndarray) -> np.ndarray:
    """Samples on the [-1, 1] scale as float64 (integers by their type's full scale)."""
    if samples.dtype.kind == "i":
        return samples.astype(np.float64) / float(-np.iinfo(samples.dtype).min)
    return samples.astype(np.float64, copy=False)


def _wav16(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM WAV bytes (what every browser plays) of float samples on [-1, 1]."""
    pcm = (np.clip(np.nan_to_num(samples), -1.0, 1.0) * 32767.0).round().astype("<i2")
    channels = 1 if pcm.ndim == 1 else pcm.shape[1]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(max(channels, 1))
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def _waveform_svg(mono: np.ndarray, width: int = 600, height: int = 72) -> str:
    """A min/max envelope of `mono` (float, [-1, 1]) as a small SVG."""
    mid = height / 2
    if mono.size == 0:
        body = f'<line x1="0" y1="{mid}" x2="{width}" y2="{mid}" stroke="#4a6fd0"/>'
    else:
        columns = min(width, mono.size)
        edges = np.linspace(0, mono.size, columns + 1).astype(int)
        clean = np.clip(np.nan_to_num(mono), -1.0, 1.0)
        hi = np.maximum.reduceat(clean, edges[:-1])
        lo = np.minimum.reduceat(clean, edges[:-1])
        xs = np.linspace(0, width, columns)
        top = " ".join(f"{x:.1f},{mid - h * mid:.1f}" for x, h in zip(xs, hi, strict=True))
        bottom = " ".join(
            f"{x:.1f},{mid - v * mid:.1f}" for x, v in zip(xs[::-1], lo[::-1], strict=True)
        )
        body = (
            f'<polygon points="{top} {bottom}" fill="#4a6fd0" stroke="#4a6fd0" stroke-width="0.6"/>'
        )
    return (
        f'<svg class="waveform" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" style="background:#f6f8fc">'
        f"{body}</svg>"
    )


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of detected speech: ``[start_ms, end_ms)`` and its level in dBFS."""

    start_ms: float
    end_ms: float
    energy_db: float

    @property
    def duration_ms(self) -> float:
        """Length in milliseconds."""
        return self.end_ms - self.start_ms

    def to_dict(self) -> dict[str, float]:
        """``{"start_ms": ..., "end_ms": ..., "energy_db": ...}``."""
        return asdict(self)
