"""Value types that cross the Python/Rust boundary: :class:`Audio`, :class:`Segment`, the VAD
events :class:`SpeechStart` / :class:`SpeechEnd`, run metrics (:class:`RunMetrics`) and the
execution policies (:class:`RetryPolicy`, :class:`CircuitBreaker`)."""

from __future__ import annotations

import base64
import copy
import html
import io
import json
import wave
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypedDict

import numpy as np
import numpy.typing as npt

__all__ = [
    "Audio",
    "CircuitBreaker",
    "CircuitBreakerDict",
    "NodeMetrics",
    "RetryDict",
    "RetryPolicy",
    "RunMetrics",
    "Segment",
    "SpeechEnd",
    "SpeechFrame",
    "SpeechSegment",
    "SpeechStart",
    "VadEvent",
]


class Audio(np.ndarray):
    """A numpy array of audio samples that knows its sample rate.

    Shape is ``(frames,)`` for mono or ``(frames, channels)`` (the soundfile/soxr layout);
    dtype is float32, float64, int16 or int32. It *is* an ndarray: every numpy function works
    on it, and ``np.asarray(audio)`` gives the plain array without copying.

    >>> a = Audio(np.zeros(16000, dtype=np.float32), 16000)
    >>> a.duration, a.channels
    (1.0, 1)
    """

    # A slot, as ndarray takes no new attributes either: an Audio is made for every stream
    # output, and an instance dict would be one more object to allocate and for Python's
    # cycle collector to visit again and again while a caller keeps the outputs.
    __slots__ = ("_origin", "sample_rate")

    #: The rate in Hz; ``None`` for arrays made without one.
    sample_rate: int | None
    _origin: tuple[Segment, ...]

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
        # Views, slices and results of an Audio keep its rate; arrays made from scratch
        # (`obj` is None: the runtime's outputs, which set the rate next) or from a plain
        # ndarray have none. Replaced below by the runtime's C version of this same rule
        # (numpy calls a capsule'd C finalizer directly: no Python call per new array).
        self.sample_rate = obj.sample_rate if isinstance(obj, Audio) else None

    @property
    def origin(self) -> list[Segment] | None:
        """Which stretches of a node's input these frames are, in order, when the node picked
        them out of its input: a VAD's ``emit="speech"`` output (whole-run or each stream
        chunk) gives the input ranges it kept, as :class:`Segment` s at the input's rate
        (``seg.start_s``, ``seg.start_sample``...; their lengths add up to ``frames``).
        ``None`` for any other audio, and for a slice or copy of it."""
        spans = getattr(self, "_origin", None)
        return None if spans is None else list(spans)

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
    #: Above this many bytes of 16-bit WAV, the player gets a mono 16 kHz preview instead (so
    #: two minutes of 48 kHz stereo embed 3.8 MB, not 23 MB).
    HTML_MAX_PLAYER_BYTES = 1_000_000

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
        clip = _as_float(np.asarray(self)[:shown])
        player_rate = rate
        if clip.nbytes // (clip.itemsize // 2) > self.HTML_MAX_PLAYER_BYTES and (
            rate > 16000 or self.channels > 1
        ):
            # A preview: mono, resampled to 16 kHz by the runtime's own resampler.
            from remotemedia.nodes import AudioResampleNode

            if clip.ndim == 2:
                clip = clip.mean(axis=1)
            if rate > 16000:
                clip = np.asarray(
                    AudioResampleNode(16000)(clip.astype(np.float32), sample_rate=rate)
                )
                player_rate = 16000
            note += f" (player: a mono {player_rate // 1000} kHz preview)"
        wav = _wav16(clip, player_rate)
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


def _install_native_finalizer() -> None:
    # The same rule as `Audio.__array_finalize__` above, as a C function numpy calls directly
    # (a stream makes an Audio per output and every slice of one is a new Audio). A subclass
    # that overrides `__array_finalize__` sets `sample_rate` itself.
    from remotemedia import _native

    Audio.__array_finalize__ = _native.audio_finalizer(Audio)  # type: ignore[method-assign]


_install_native_finalizer()


class _DictAccess:
    """Read access by key (``obj["field"]``, ``.get``, ``in``, ``keys()``) over
    :meth:`to_dict`, and equality with that dict, for code written when these values were
    plain dicts."""

    __slots__ = ()

    if TYPE_CHECKING:
        # Every subclass defines it (SpeechStart, SpeechEnd, NodeMetrics, RunMetrics); the
        # mixin only reads through it.
        def to_dict(self) -> dict[str, Any]: ...

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        """``to_dict().get(key, default)``."""
        return self.to_dict().get(key, default)

    def keys(self) -> KeysView[str]:
        """``to_dict().keys()``."""
        return self.to_dict().keys()

    def values(self) -> ValuesView[Any]:
        """``to_dict().values()``."""
        return self.to_dict().values()

    def items(self) -> ItemsView[str, Any]:
        """``to_dict().items()``."""
        return self.to_dict().items()

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __contains__(self, key: object) -> bool:
        return key in self.to_dict()


@dataclass(frozen=True, slots=True, eq=False)
class Segment(_DictAccess):
    """A stretch of detected speech, the one segment type of every VAD node.

    ``[start_sample, end_sample)`` at ``sample_rate`` (the input's rate) is exact; the times in
    milliseconds (``start_ms``, ``end_ms``) and seconds (``start_s``, ``end_s``) are derived
    from it. ``confidence`` is the detector's mean speech probability (0..1) where it gives one
    (:class:`~remotemedia.SpeechVADNode`), ``energy_db`` the segment's level in dBFS where it
    measures one (:class:`~remotemedia.VADNode`); the other is ``None``.

    Read fields as attributes (``seg.start_s``) or by key (``seg["start_ms"]``); ``audio[
    seg.start_sample:seg.end_sample]`` is the segment's audio."""

    start_sample: int
    end_sample: int
    sample_rate: int
    confidence: float | None = None
    energy_db: float | None = None

    @property
    def start_ms(self) -> float:
        """Start in milliseconds."""
        return self.start_sample * 1000.0 / self.sample_rate

    @property
    def end_ms(self) -> float:
        """End (exclusive) in milliseconds."""
        return self.end_sample * 1000.0 / self.sample_rate

    @property
    def start_s(self) -> float:
        """Start in seconds."""
        return self.start_sample / self.sample_rate

    @property
    def end_s(self) -> float:
        """End (exclusive) in seconds."""
        return self.end_sample / self.sample_rate

    @property
    def duration_ms(self) -> float:
        """Length in milliseconds."""
        return self.end_ms - self.start_ms

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        """The segment as the CLI's JSON writes it: ``start_ms``, ``end_ms``, ``start_s``,
        ``end_s``, ``start_sample``, ``end_sample``, ``sample_rate``, and ``confidence`` /
        ``energy_db`` when set."""
        d: dict[str, Any] = {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "start_sample": self.start_sample,
            "end_sample": self.end_sample,
            "sample_rate": self.sample_rate,
        }
        if self.confidence is not None:
            d["confidence"] = self.confidence
        if self.energy_db is not None:
            d["energy_db"] = self.energy_db
        return d

    def __eq__(self, other: object) -> bool:
        return _eq(self, other)

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().items()))


@dataclass(frozen=True, slots=True, eq=False)
class SpeechStart(_DictAccess):
    """A VAD event (``emit="events"``): speech started at ``start_ms`` (decided as soon as it
    is known, before the segment ends).

    ``event["event"] == "speech_start"`` and the other dict-style reads keep working."""

    start_ms: float
    event: ClassVar[Literal["speech_start"]] = "speech_start"

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "speech_start", "start_ms": ...}``, as the VAD nodes emit it."""
        return {"event": self.event, "start_ms": self.start_ms}

    def __eq__(self, other: object) -> bool:
        return _eq(self, other)

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().items()))


@dataclass(frozen=True, slots=True, eq=False)
class SpeechEnd(_DictAccess):
    """A VAD event (``emit="events"``): the speech segment ``[start_ms, end_ms)`` ended.

    ``energy_db`` is set by :class:`~remotemedia.VADNode` (the segment's level in dBFS),
    ``confidence`` by :class:`~remotemedia.SpeechVADNode` (mean speech probability); the other
    is ``None``."""

    start_ms: float
    end_ms: float
    energy_db: float | None = None
    confidence: float | None = None
    event: ClassVar[Literal["speech_end"]] = "speech_end"

    @property
    def duration_ms(self) -> float:
        """Length in milliseconds."""
        return self.end_ms - self.start_ms

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "speech_end", "start_ms", "end_ms", "energy_db" or "confidence"}``, as
        the VAD nodes emit it."""
        d: dict[str, Any] = {"event": self.event, "start_ms": self.start_ms, "end_ms": self.end_ms}
        if self.energy_db is not None:
            d["energy_db"] = self.energy_db
        if self.confidence is not None:
            d["confidence"] = self.confidence
        return d

    def __eq__(self, other: object) -> bool:
        return _eq(self, other)

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().items()))


#: One item of a VAD node's ``emit="events"`` output.
VadEvent = SpeechStart | SpeechEnd


#: The segment type of ``SpeechVADNode(emit="segments")``: :class:`Segment` (an alias kept for
#: code written when that output was a list of dicts; ``seg["start_ms"]`` still works).
SpeechSegment = Segment


class SpeechFrame(TypedDict):
    """One item of ``SpeechVADNode(emit="probabilities")``'s output list (one frame: 16 ms,
    or 32 ms with ``engine="silero"``)."""

    start_ms: float
    end_ms: float
    probability: float


def _eq(a: _DictAccess, other: object) -> bool:
    if isinstance(other, _DictAccess):
        return type(a) is type(other) and a.to_dict() == other.to_dict()
    if isinstance(other, Mapping):
        return a.to_dict() == dict(other)
    return False


def _events_from_json(items: list[dict[str, Any]]) -> list[VadEvent]:
    """The runtime's event dicts as :class:`SpeechStart` / :class:`SpeechEnd` (called by the
    extension for every event list a VAD node emits)."""
    out: list[VadEvent] = []
    for item in items:
        if item["event"] == "speech_start":
            out.append(SpeechStart(float(item["start_ms"])))
        else:
            energy, conf = item.get("energy_db"), item.get("confidence")
            out.append(
                SpeechEnd(
                    float(item["start_ms"]),
                    float(item["end_ms"]),
                    None if energy is None else float(energy),
                    None if conf is None else float(conf),
                )
            )
    return out


def _json_default(value: Any) -> Any:
    """``json.dumps`` ``default=`` for remotemedia's value types (events, segments, metrics)."""
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# ---------------------------------------------------------------------------- metrics


@dataclass(frozen=True, eq=False)
class NodeMetrics(_DictAccess):
    """One node's metrics over a run or stream (an item of :attr:`RunMetrics.nodes`)."""

    node_id: str
    node_type: str
    #: Where it ran: "rust", "python" or "remote".
    runtime: str
    #: Time inside the node's calls (every attempt), in microseconds.
    execution_time_us: int
    #: The same in whole milliseconds.
    execution_time_ms: int
    #: Calls made (process and flush, every attempt).
    calls: int
    #: Longest single call, in microseconds.
    max_call_us: int
    #: Largest output one call produced, in MiB.
    memory_mb: float
    #: "success", "failed" or "skipped".
    status: str
    #: The failure's message (status "failed") or why it was skipped; else ``None``.
    error: str | None
    #: Retries made (attempts beyond the first).
    retry_count: int
    #: For a node added with ``batch=``: the batches its queue (shared by equal nodes) has run
    #: so far (``batches``, ``calls``, ``mean_size``, ``sizes``, ``mean_queue_delay_ms``,
    #: ``max_queue_delay_ms``); else ``None``.
    batch: dict[str, Any] | None = None
    _raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NodeMetrics:
        """Parses one entry of the runtime's metrics JSON."""
        status = d.get("status") or {}
        state = status.get("state", "success") if isinstance(status, Mapping) else str(status)
        error = status.get("error", status.get("reason")) if isinstance(status, Mapping) else None
        us = int(d.get("execution_time_us", 0))
        return cls(
            node_id=str(d.get("node_id", "")),
            node_type=str(d.get("node_type", "")),
            runtime=str(d.get("runtime", "")),
            execution_time_us=us,
            execution_time_ms=int(d.get("execution_time_ms", us // 1000)),
            calls=int(d.get("calls", 0)),
            max_call_us=int(d.get("max_call_us", 0)),
            memory_mb=float(d.get("memory_mb", 0.0)),
            status=state,
            error=error,
            retry_count=int(d.get("retry_count", 0)),
            batch=copy.deepcopy(d.get("batch")),
            _raw=copy.deepcopy(dict(d)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The entry as the runtime wrote it (``status`` is ``{"state", "error"?}``)."""
        return copy.deepcopy(self._raw)

    def __eq__(self, other: object) -> bool:
        return _eq(self, other)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class RunMetrics(_DictAccess):
    """Metrics of a run or a stream: :attr:`Pipeline.metrics <remotemedia.Pipeline.metrics>`,
    :meth:`Session.metrics <remotemedia.Session.metrics>`.

    >>> m = pipeline.metrics                                      # doctest: +SKIP
    >>> m.node("audio_resample").execution_time_us                # doctest: +SKIP
    >>> m.to_json()                                               # doctest: +SKIP

    ``m["nodes"]`` and the other dict-style reads give the JSON form (:meth:`to_dict`)."""

    #: The pipeline's name.
    pipeline: str
    #: Wall time of the run (stream: from open to end), in microseconds.
    total_time_us: int
    #: The same in whole milliseconds.
    total_time_ms: int
    #: The process's peak resident memory so far in MiB (``getrusage``), not the run's own.
    total_memory_mb: float | None
    #: Chunks pushed (a whole-input run is 1).
    chunks: int
    #: Per node, in manifest order.
    nodes: tuple[NodeMetrics, ...]
    _raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunMetrics:
        """Parses the runtime's metrics JSON (as a dict)."""
        us = int(d.get("total_time_us", 0))
        mem = d.get("total_memory_mb")
        return cls(
            pipeline=str(d.get("pipeline", "")),
            total_time_us=us,
            total_time_ms=int(d.get("total_time_ms", us // 1000)),
            total_memory_mb=None if mem is None else float(mem),
            chunks=int(d.get("chunks", 1)),
            nodes=tuple(NodeMetrics.from_dict(n) for n in d.get("nodes") or []),
            _raw=copy.deepcopy(dict(d)),
        )

    def node(self, node_id: str) -> NodeMetrics:
        """The metrics of node ``node_id``."""
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        raise KeyError(
            f"no node '{node_id}' in the metrics; nodes are {[n.node_id for n in self.nodes]}"
        )

    def to_dict(self) -> dict[str, Any]:
        """The metrics as the runtime wrote them (what ``Pipeline.get_metrics()`` returns)."""
        return copy.deepcopy(self._raw)

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self._raw, indent=indent)

    def __eq__(self, other: object) -> bool:
        return _eq(self, other)

    __hash__ = None  # type: ignore[assignment]


# ---------------------------------------------------------------------------- policies


class RetryDict(TypedDict, total=False):
    """The dict form of :class:`RetryPolicy` (as in the manifest's ``retry``)."""

    max_attempts: int
    initial_delay_ms: int
    max_delay_ms: int


class CircuitBreakerDict(TypedDict, total=False):
    """The dict form of :class:`CircuitBreaker` (as in the manifest's ``circuit_breaker``)."""

    failure_threshold: int
    cooldown_ms: int


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A node's retry policy (``Pipeline.add_node(node, retry=RetryPolicy(...))``): up to
    ``max_attempts`` attempts in all, waiting ``initial_delay_ms`` and doubling up to
    ``max_delay_ms`` between them. Applies to retryable errors only (``TimeoutError``,
    ``ConnectionError``, :class:`~remotemedia.RetryableError`)."""

    max_attempts: int = 3
    initial_delay_ms: int = 100
    max_delay_ms: int = 1600

    def __post_init__(self) -> None:
        _check_ints(
            self, "retry", ("max_attempts", 1), ("initial_delay_ms", 0), ("max_delay_ms", 0)
        )

    def to_dict(self) -> RetryDict:
        """The manifest form: ``{"max_attempts", "initial_delay_ms", "max_delay_ms"}``."""
        return RetryDict(
            max_attempts=self.max_attempts,
            initial_delay_ms=self.initial_delay_ms,
            max_delay_ms=self.max_delay_ms,
        )


@dataclass(frozen=True, slots=True)
class CircuitBreaker:
    """A node's circuit breaker (``Pipeline.add_node(node, circuit_breaker=CircuitBreaker())``):
    after ``failure_threshold`` consecutive failures the node's calls are refused at once with
    :class:`~remotemedia.CircuitOpenError` for ``cooldown_ms``."""

    failure_threshold: int = 5
    cooldown_ms: int = 30000

    def __post_init__(self) -> None:
        _check_ints(self, "circuit_breaker", ("failure_threshold", 1), ("cooldown_ms", 0))

    def to_dict(self) -> CircuitBreakerDict:
        """The manifest form: ``{"failure_threshold", "cooldown_ms"}``."""
        return CircuitBreakerDict(
            failure_threshold=self.failure_threshold, cooldown_ms=self.cooldown_ms
        )


def _check_ints(obj: object, what: str, *fields: tuple[str, int]) -> None:
    for name, low in fields:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{what}.{name} must be an integer >= {low}, got {value!r}")
