"""The built-in audio nodes. They run natively (Rust) inside pipelines and when called on
their own; with ``REMOTEMEDIA_RUNTIME=python`` (or without the native module) they run the
numpy reference implementations in :mod:`remotemedia.reference` instead."""

from __future__ import annotations

import abc
import json
from typing import Any, ClassVar, Literal

import numpy as np

from remotemedia import _runtime, reference
from remotemedia._types import Audio
from remotemedia.errors import ManifestError
from remotemedia.nodes.base import Node

__all__ = [
    "AudioResampleNode",
    "ChannelMixNode",
    "FormatConverterNode",
    "PassThroughNode",
    "VADNode",
]

SampleFormatName = Literal["f32", "i16", "i32", "f64"]


def jsonable(value: Any) -> Any:
    """numpy scalars and arrays to plain Python values, for manifests."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


class BuiltinNode(Node):
    """Base of the built-in nodes: parameters validated at construction with the runtime's
    own messages; ``process``/``flush`` stream through the node; calling the node runs a
    whole clip at once."""

    runtime: ClassVar[str] = "rust"
    #: Refuse to fall back to the Python reference (the ``Rust*`` classes).
    require_native: ClassVar[bool] = False

    def _setup(self) -> None:
        if self.require_native:
            _runtime.native()
        validate_params(self.manifest_type(), self.params)
        self._engine: Any = None
        self._native_engine = False

    def _make_engine(self) -> Any:
        self._native_engine = self.require_native or _runtime.runtime() == "rust"
        if self._native_engine:
            native = _runtime.native()
            return native.NativeNode(
                self.manifest_type(), json.dumps(self.params, default=jsonable)
            )
        return self._reference()

    @abc.abstractmethod
    def _reference(self) -> Any:
        """A fresh numpy reference implementation of this node (streaming)."""

    @property
    def active_runtime(self) -> str:
        """Where this node's standalone calls run now: "rust" or "python"."""
        if self._engine is None:
            self._engine = self._make_engine()
        return "rust" if self._native_engine else "python"

    def process(self, data: Any, sample_rate: int | None = None) -> Any:
        """Feeds one chunk of a stream; returns the output ready so far (may be empty).

        ``data`` is an :class:`~remotemedia.Audio` or a numpy array with ``sample_rate``.
        """
        engine = self._engine
        if engine is None:
            engine = self._engine = self._make_engine()
        if self._native_engine:
            return engine.process(data, sample_rate)
        if not isinstance(data, Audio):
            if sample_rate is None:
                raise ValueError("pass sample_rate=... with a plain numpy array")
            data = Audio(np.ascontiguousarray(data), sample_rate)
        return engine.process(data)

    def flush(self) -> Any:
        """Ends the stream: returns what is still buffered; the next chunk starts a new one."""
        if self._engine is None:
            return None
        out = self._engine.flush()
        self.reset()
        return out

    def reset(self) -> None:
        """Drops any stream state."""
        if self._engine is not None:
            self._engine.reset()

    def __call__(self, data: Any, sample_rate: int | None = None) -> Any:
        """Processes a whole clip: ``process`` then ``flush``, joined."""
        self.reset()
        head = self.process(data, sample_rate)
        tail = self.flush()
        return _join(head, tail)


def _join(head: Any, tail: Any) -> Any:
    if tail is None or (isinstance(tail, list) and not tail and head is not None):
        return head
    if head is None:
        return tail
    if isinstance(head, Audio) and isinstance(tail, Audio):
        if tail.frames == 0:
            return head
        return Audio(np.concatenate([np.asarray(head), np.asarray(tail)]), head.sample_rate or 0)
    if isinstance(head, list) and isinstance(tail, list):
        return head + tail
    return [head, tail]


class AudioResampleNode(BuiltinNode):
    """Converts audio to ``target_rate`` Hz (any rate pair, any channel count).

    Output length is ``ceil(n * target_rate / source_rate)``; the filter delay is compensated;
    the sample format is kept. ``quality``: "fast", "medium" or "high" (all band-limited; they
    trade latency for passband width, see docs/resampling.md).
    """

    node_type = "AudioResampleNode"

    def __init__(
        self, target_rate: int, quality: Literal["fast", "medium", "high"] = "high"
    ) -> None:
        self.target_rate = target_rate
        self.quality = quality
        self._setup()

    def _reference(self) -> Any:
        return reference.ResampleRef(self.target_rate, self.quality)


class VADNode(BuiltinNode):
    """Energy voice-activity detector.

    Frames of ``frame_length_ms`` whose RMS level exceeds ``threshold`` dBFS are speech;
    ``hangover_ms`` keeps counting speech for that long after the last loud frame.
    ``emit="segments"`` gives a list of :class:`~remotemedia.Segment`; ``emit="speech"`` gives
    only the speech audio; ``emit="events"`` gives ``speech_start`` / ``speech_end`` dicts as
    soon as each is decided (for streams).
    """

    node_type = "VADNode"

    def __init__(
        self,
        threshold: float = -30.0,
        frame_length_ms: int = 30,
        emit: Literal["segments", "speech", "events"] = "segments",
        hangover_ms: int = 0,
    ) -> None:
        self.threshold = threshold
        self.frame_length_ms = frame_length_ms
        self.emit = emit
        self.hangover_ms = hangover_ms
        self._setup()

    def _reference(self) -> Any:
        return reference.VadRef(self.threshold, self.frame_length_ms, self.emit, self.hangover_ms)


class FormatConverterNode(BuiltinNode):
    """Converts the sample format ("f32", "i16", "i32", "f64").

    Integer <-> float scales by 2^(bits-1); float -> integer rounds half to even and
    saturates (never wraps); the same format passes through without a copy.
    """

    node_type = "FormatConverterNode"

    def __init__(self, target_format: SampleFormatName) -> None:
        self.target_format = target_format
        self._setup()

    def _reference(self) -> Any:
        return reference.FormatConverterRef(self.target_format)


class ChannelMixNode(BuiltinNode):
    """Downmixes to mono (``channels=1``, the average) or up-mixes mono to ``channels``."""

    node_type = "ChannelMixNode"

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self._setup()

    def _reference(self) -> Any:
        return reference.ChannelMixRef(self.channels)


class PassThroughNode(BuiltinNode):
    """Emits its input unchanged, without a copy."""

    node_type = "PassThroughNode"

    def __init__(self) -> None:
        self._setup()

    def _reference(self) -> Any:
        return reference.PassThroughRef()


# ---------------------------------------------------------------------------- validation

_RATE = (8000, 384000)


def _issue(node_type: str, field: str, message: str) -> str:
    return f"{node_type}: params.{field}: {message}"


def _python_issues(node_type: str, params: dict[str, Any]) -> list[str]:
    """The native checks, for when the native module is unavailable (same messages for
    ranges, choices and unknown or missing fields)."""
    specs: dict[str, dict[str, tuple[str, Any]]] = {
        "AudioResampleNode": {
            "target_rate": ("rate", None),
            "quality": ("choice", ("fast", "medium", "high")),
        },
        "VADNode": {
            "threshold": ("threshold", None),
            "frame_length_ms": ("frame", None),
            "emit": ("choice", ("segments", "speech", "events")),
            "hangover_ms": ("hangover", None),
        },
        "FormatConverterNode": {"target_format": ("choice", ("f32", "i16", "i32", "f64"))},
        "ChannelMixNode": {"channels": ("channels", None)},
        "PassThroughNode": {},
    }
    spec = specs[node_type]
    issues = []
    for name in params:
        if name not in spec:
            if not spec:
                issues.append(
                    _issue(
                        node_type, name, f"unknown field `{name}`; {node_type} takes no parameters"
                    )
                )
            else:
                valid = " or ".join(f"`{k}`" for k in spec)
                issues.append(_issue(node_type, name, f"unknown field `{name}`, expected {valid}"))
    for name, (kind, choices) in spec.items():
        value = params.get(name)
        if kind == "choice":
            if value not in choices:
                issues.append(
                    _issue(
                        node_type,
                        name,
                        f"unknown variant `{value}`, expected one of "
                        + ", ".join(f"`{c}`" for c in choices),
                    )
                )
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            issues.append(_issue(node_type, name, f"expected a number, got {value!r}"))
        elif kind == "rate" and not (isinstance(value, int) and _RATE[0] <= value <= _RATE[1]):
            issues.append(
                _issue(
                    node_type,
                    name,
                    f"{value} is out of range; expected an integer sample rate in 8000..=384000 Hz",
                )
            )
        elif kind == "threshold" and not (-120.0 <= value <= 0.0):
            issues.append(
                _issue(
                    node_type,
                    name,
                    f"{value} is out of range; expected a finite level in -120.0..=0.0 dBFS",
                )
            )
        elif kind == "frame" and not (isinstance(value, int) and 1 <= value <= 1000):
            issues.append(
                _issue(
                    node_type, name, f"{value} is out of range; expected 1..=1000 ms (must be > 0)"
                )
            )
        elif kind == "hangover" and not (isinstance(value, int) and 0 <= value <= 10000):
            issues.append(
                _issue(node_type, name, f"{value} is out of range; expected 0..=10000 ms")
            )
        elif kind == "channels" and not (isinstance(value, int) and 1 <= value <= 64):
            issues.append(
                _issue(
                    node_type,
                    name,
                    f"{value} is out of range; expected an integer channel count in 1..=64",
                )
            )
    return issues


def validate_params(node_type: str, params: dict[str, Any]) -> None:
    """Raises :class:`~remotemedia.ManifestError` when ``params`` are invalid for a built-in
    node type, with the runtime's message."""
    try:
        text = json.dumps(params, default=jsonable, allow_nan=True)
    except TypeError as exc:
        raise ManifestError(f"{node_type}: params: {exc}") from None
    if _runtime.native_available():
        _runtime.native().check_params(node_type, text)
        return
    issues = _python_issues(node_type, params)
    if issues:
        raise ManifestError("\n".join(issues))
