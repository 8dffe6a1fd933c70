"""Value types that cross the Python/Rust boundary: :class:`Audio` and :class:`Segment`."""

from __future__ import annotations

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

    def __repr__(self) -> str:
        if self.ndim not in (1, 2):
            return np.asarray(self).__repr__()
        return (
            f"Audio(frames={self.frames}, channels={self.channels}, "
            f"sample_rate={self.sample_rate}, dtype={self.dtype})"
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
