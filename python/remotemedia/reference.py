"""Pure-numpy reference implementations of the native nodes.

They are never a runtime (every pipeline runs on the Rust executor). They exist as the honest
"Python baseline" in the benchmarks and as test oracles: each follows the native node's
documented semantics (see ``docs/nodes.md``) and is streaming like it: ``process(chunk)`` any
number of times, then ``flush()``. :func:`oracle` gives the one for a node object.

Audio here is a numpy array of shape ``(frames,)`` or ``(frames, channels)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from remotemedia._types import Audio, Segment

__all__ = [
    "ChannelMixRef",
    "FormatConverterRef",
    "PassThroughRef",
    "ResampleRef",
    "VadRef",
    "channel_mix",
    "convert_format",
    "oracle",
]

DB_FLOOR = -120.0
_FORMATS = {"f32": np.float32, "i16": np.int16, "i32": np.int32, "f64": np.float64}


def _fmt_of(dtype: np.dtype[Any]) -> str:
    for name, t in _FORMATS.items():
        if dtype == t:
            return name
    raise TypeError(f"unsupported dtype {dtype}; use float32, float64, int16 or int32")


def _round_sat(y: npt.NDArray[np.floating[Any]], lo: float, hi: float) -> npt.NDArray[Any]:
    """Round half to even and saturate; NaN becomes 0 (the native rule)."""
    y = np.where(np.isnan(y), 0.0, y)
    out: npt.NDArray[Any] = np.rint(np.clip(y, lo, hi))
    return out


def convert_format(x: npt.NDArray[Any], target: str) -> npt.NDArray[Any]:
    """Sample-format conversion with the native scaling convention (identical results)."""
    src = _fmt_of(x.dtype)
    if target not in _FORMATS:
        raise ValueError(f"unknown format {target!r}; expected one of f32, i16, i32, f64")
    if src == target:
        return x
    if target == "f32":
        if src == "i16":
            y: npt.NDArray[Any] = x.astype(np.float32) * np.float32(1.0 / 32768.0)
            return y
        if src == "i32":
            return (x.astype(np.float64) * (1.0 / 2147483648.0)).astype(np.float32)
        return x.astype(np.float32)
    if target == "f64":
        scale = {"i16": 1.0 / 32768.0, "i32": 1.0 / 2147483648.0}.get(src, 1.0)
        z: npt.NDArray[Any] = x.astype(np.float64) * scale
        return z
    if target == "i16":
        if src == "f32":
            y32 = x * np.float32(32768.0)
            return _round_sat(y32, -32768.0, 32767.0).astype(np.int16)
        if src == "f64":
            return _round_sat(x * 32768.0, -32768.0, 32767.0).astype(np.int16)
        return _round_sat(x.astype(np.float64) / 65536.0, -32768.0, 32767.0).astype(np.int16)
    # target == "i32"
    if src == "i16":
        return x.astype(np.int32) << 16
    y = x.astype(np.float64) * 2147483648.0
    return _round_sat(y, -2147483648.0, 2147483647.0).astype(np.int32)


def channel_mix(x: npt.NDArray[Any], channels: int) -> npt.NDArray[Any]:
    """Downmix to mono (average) or up-mix mono to ``channels``."""
    have = 1 if x.ndim == 1 else x.shape[1]
    if have == channels:
        return x
    if channels == 1:
        mixed: npt.NDArray[np.float64] = x.astype(np.float64).sum(axis=1) * (1.0 / have)
        if x.dtype in (np.int16, np.int32):
            mixed = np.rint(mixed)
        out: npt.NDArray[Any] = mixed.astype(x.dtype)
        return out
    if have == 1:
        mono = x if x.ndim == 1 else x[:, 0]
        return np.repeat(mono[:, None], channels, axis=1)
    raise ValueError(
        f"ChannelMixNode mixes to mono or from mono; got {have} -> {channels} channels. "
        f"Chain two ChannelMixNodes ({have} -> 1 -> {channels}) for that"
    )


def _as_audio(x: npt.NDArray[Any], rate: int) -> Audio:
    return Audio(x, rate)


class PassThroughRef:
    """Emits its input unchanged."""

    def process(self, data: Any) -> Any:
        return data

    def flush(self) -> Any:
        return None

    def reset(self) -> None:
        return None


class FormatConverterRef:
    """Streaming wrapper of :func:`convert_format`."""

    def __init__(self, target_format: str) -> None:
        self.target_format = target_format

    def process(self, data: Audio) -> Audio:
        return _as_audio(convert_format(np.asarray(data), self.target_format), _rate(data))

    def flush(self) -> Any:
        return None

    def reset(self) -> None:
        return None


class ChannelMixRef:
    """Streaming wrapper of :func:`channel_mix`."""

    def __init__(self, channels: int) -> None:
        self.channels = channels

    def process(self, data: Audio) -> Audio:
        return _as_audio(channel_mix(np.asarray(data), self.channels), _rate(data))

    def flush(self) -> Any:
        return None

    def reset(self) -> None:
        return None


def _rate(data: Any) -> int:
    rate = getattr(data, "sample_rate", None)
    if not rate:
        raise TypeError("expects remotemedia.Audio (an array with a sample_rate)")
    return int(rate)


def _db(mean_square: float) -> float:
    if not mean_square > 0.0:  # also catches NaN
        return DB_FLOOR
    return max(10.0 * math.log10(mean_square), DB_FLOOR)


class VadRef:
    """The energy VAD, frame for frame the same algorithm as the native ``VADNode``."""

    def __init__(
        self,
        threshold: float = -30.0,
        frame_length_ms: int = 30,
        emit: str = "segments",
        hangover_ms: int = 0,
    ) -> None:
        self.threshold = threshold
        self.frame_length_ms = frame_length_ms
        self.emit = emit
        self.hang_frames = -(-hangover_ms // frame_length_ms)
        self.reset()

    def reset(self) -> None:
        self._rate: int | None = None
        self._pending: npt.NDArray[Any] | None = None
        self._position = 0
        self._open: list[float] | None = None  # [start_frame, sum_sq, samples]
        self._hang_left = 0

    def _segment(self, start: int, sum_sq: float, n: float, end: int) -> Segment:
        assert self._rate
        return Segment(start, end, self._rate, energy_db=_db(sum_sq / max(n, 1)))

    def _analyse(self, x: npt.NDArray[Any], last: bool) -> tuple[list[Any], list[tuple[int, int]]]:
        """Decisions (``("start", frame)`` or ``("end", Segment)``) and speech frame ranges."""
        frame = (self._rate * self.frame_length_ms + 500) // 1000 if self._rate else 1
        frame = max(frame, 1)
        frames = x.shape[0]
        scale = {np.dtype(np.int16): 1 / 32768.0, np.dtype(np.int32): 1 / 2147483648.0}.get(
            x.dtype, 1.0
        )
        events: list[Any] = []
        speech: list[tuple[int, int]] = []
        start = 0
        while start < frames and (frames - start >= frame or last):
            end = min(start + frame, frames)
            block = x[start:end].astype(np.float64) * scale
            ss = float(np.sum(block * block))
            n = block.size
            idx = self._position + start
            if _db(ss / n) > self.threshold:
                self._hang_left = self.hang_frames
                is_speech = True
            elif self._open is not None and self._hang_left > 0:
                self._hang_left -= 1
                is_speech = True
            else:
                is_speech = False
            if is_speech:
                if self._open is None:
                    self._open = [idx, 0.0, 0.0]
                    events.append(("start", idx))
                self._open[1] += ss
                self._open[2] += n
                if speech and speech[-1][1] == start:
                    speech[-1] = (speech[-1][0], end)
                else:
                    speech.append((start, end))
            elif self._open is not None:
                o = self._open
                events.append(("end", self._segment(int(o[0]), o[1], o[2], idx)))
                self._open = None
            start = end
        self._position += start
        self._pending = x[start:] if start < frames else None
        if last and self._open is not None:
            o = self._open
            events.append(("end", self._segment(int(o[0]), o[1], o[2], self._position)))
            self._open = None
        return events, speech

    def _emit(
        self, x: npt.NDArray[Any] | None, events: list[Any], speech: list[tuple[int, int]]
    ) -> Any:
        assert self._rate
        if self.emit == "segments":
            return [seg for kind, seg in events if kind == "end"]
        if self.emit == "events":
            out = []
            for kind, value in events:
                if kind == "start":
                    out.append({"event": "speech_start", "start_ms": value * 1000.0 / self._rate})
                else:
                    out.append(
                        {
                            "event": "speech_end",
                            "start_ms": value.start_ms,
                            "end_ms": value.end_ms,
                            "energy_db": value.energy_db,
                        }
                    )
            return out
        if x is None:
            return None
        parts = [x[a:b] for a, b in speech]
        audio = np.concatenate(parts) if parts else x[:0]
        return Audio(audio, self._rate)

    def process(self, data: Audio) -> Any:
        rate = _rate(data)
        if self._rate is None:
            self._rate = rate
        x = np.asarray(data)
        if self._pending is not None:
            x = np.concatenate([self._pending, x])
        events, speech = self._analyse(x, last=False)
        return self._emit(x, events, speech)

    def flush(self) -> Any:
        if self._rate is None:
            return None
        if self._pending is None:
            if self._open is None:
                return None
            o = self._open
            self._open = None
            end = ("end", self._segment(int(o[0]), o[1], o[2], self._position))
            return self._emit(None, [end], [])
        x = self._pending
        events, speech = self._analyse(x, last=True)
        return self._emit(x, events, speech)


class ResampleRef:
    """Band-limited resampling by a Kaiser-windowed sinc, evaluated polyphase in numpy.

    Streaming, delay-free (the filter is centred on each output instant, using look-ahead),
    and the total output is exactly ``ceil(n * target_rate / source_rate)`` frames, like the
    native node. The filter keeps ``zero_crossings`` zero crossings at the lower rate.
    """

    def __init__(
        self, target_rate: int, quality: str = "high", zero_crossings: int | None = None
    ) -> None:
        self.target_rate = int(target_rate)
        self.quality = quality
        self.zero_crossings = zero_crossings or {"fast": 8, "medium": 16, "high": 32}[quality]
        self.reset()

    def reset(self) -> None:
        self._rate: int | None = None
        self._buf: npt.NDArray[np.float64] | None = None  # (n, channels), starts at _buf_start
        self._buf_start = 0
        self._n_in = 0
        self._n_out = 0
        self._dtype: np.dtype[Any] | None = None
        self._mono = True

    def _setup(self, rate: int, channels: int) -> None:
        g = math.gcd(rate, self.target_rate)
        self._up, self._down = self.target_rate // g, rate // g
        fc = min(1.0, self._up / self._down) * 0.97
        half = self.zero_crossings / fc  # half-width in input samples
        self._taps = math.ceil(half)
        j = np.arange(-self._taps + 1, self._taps + 1)  # input offsets around floor(t)
        p = np.arange(self._up)[:, None] / self._up  # fractional parts
        t = p - j[None, :]
        window = np.kaiser(2 * self._taps + 1, 9.0)
        # Evaluate the (continuous) Kaiser window at t by interpolating its samples.
        w = np.interp(t, np.arange(-self._taps, self._taps + 1), window, left=0.0, right=0.0)
        self._table = fc * np.sinc(fc * t) * w * (np.abs(t) < half)
        self._buf = np.zeros((self._taps, channels))  # zeros before the stream start
        self._buf_start = -self._taps

    def _produce(self, until_in: int) -> npt.NDArray[np.float64]:
        """Outputs whose filter support ends before input index ``until_in``."""
        assert self._buf is not None
        # Output k sits at input time k*down/up and needs inputs up to floor(that) + taps:
        # it is ready when k*down < (until_in - taps) * up.
        ready = until_in - self._taps
        k_end = max(self._n_out, -(-ready * self._up // self._down)) if ready > 0 else self._n_out
        k = np.arange(self._n_out, k_end)
        if k.size == 0:
            return np.zeros((0, self._buf.shape[1]))
        q = (k * self._down) // self._up
        phase = (k * self._down) % self._up
        offsets = np.arange(-self._taps + 1, self._taps + 1)
        out = np.empty((k.size, self._buf.shape[1]))
        for s in range(0, k.size, 4096):
            idx = q[s : s + 4096, None] + offsets[None, :] - self._buf_start
            gathered = self._buf[idx]  # (K, taps, channels)
            out[s : s + 4096] = np.einsum("ktc,kt->kc", gathered, self._table[phase[s : s + 4096]])
        self._n_out = k_end
        # Drop input no output will need again.
        keep_from = (k_end * self._down) // self._up - self._taps + 1
        drop = keep_from - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return out

    def _wrap(self, y: npt.NDArray[np.float64]) -> Audio:
        assert self._dtype is not None
        fmt = _fmt_of(self._dtype)
        if fmt in ("i16", "i32"):
            out = convert_format(y, fmt)
        else:
            out = y.astype(self._dtype)
        if self._mono:
            out = out[:, 0]
        return Audio(out, self.target_rate)

    def process(self, data: Audio) -> Audio:
        rate = _rate(data)
        x = np.asarray(data)
        if self._rate is None:
            self._rate, self._dtype, self._mono = rate, x.dtype, x.ndim == 1
            if rate != self.target_rate:
                self._setup(rate, 1 if x.ndim == 1 else x.shape[1])
        if rate == self.target_rate:
            return data
        xf = convert_format(x, "f64") if x.dtype != np.float64 else x
        xf = xf.reshape(xf.shape[0], -1)
        assert self._buf is not None
        self._buf = np.concatenate([self._buf, xf])
        self._n_in += xf.shape[0]
        return self._wrap(self._produce(self._n_in))

    def flush(self) -> Audio | None:
        if self._rate is None or self._rate == self.target_rate:
            return None
        assert self._buf is not None
        total = -(-self._n_in * self._up // self._down)  # ceil
        self._buf = np.concatenate([self._buf, np.zeros((2 * self._taps + 1, self._buf.shape[1]))])
        before = self._n_out
        y = self._produce(self._n_in + 2 * self._taps + 1)
        y = y[: max(0, total - before)]
        self._n_out = total
        return self._wrap(y)


def oracle(node: Any) -> Any:
    """A fresh reference engine for a built-in node object, with the node's parameters."""
    engines: dict[str, Any] = {
        "AudioResampleNode": ResampleRef,
        "VADNode": VadRef,
        "FormatConverterNode": FormatConverterRef,
        "ChannelMixNode": ChannelMixRef,
        "PassThroughNode": PassThroughRef,
    }
    node_type = node.manifest_type()
    if node_type not in engines:
        raise ValueError(f"no numpy reference for {node_type}")
    return engines[node_type](**node.params)
