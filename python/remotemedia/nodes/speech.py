"""Speech nodes that exist only natively: :class:`SpeechVADNode`."""

from __future__ import annotations

from typing import Any, Literal, TypedDict, overload

from remotemedia._types import Audio, VadEvent
from remotemedia.nodes.audio import BuiltinNode
from remotemedia.nodes.base import OutT

__all__ = ["SpeechFrame", "SpeechSegment", "SpeechVADNode"]


class SpeechSegment(TypedDict):
    """One item of ``SpeechVADNode(emit="segments")``'s output list."""

    start_ms: float
    """Start (padding included), in ms of the input's timeline."""
    end_ms: float
    """End (exclusive, padding included)."""
    confidence: float
    """Mean speech probability (0..1) of the segment's frames, padding excluded."""


class SpeechFrame(TypedDict):
    """One item of ``SpeechVADNode(emit="probabilities")``'s output list (one 16 ms frame)."""

    start_ms: float
    end_ms: float
    probability: float


class SpeechVADNode(BuiltinNode[OutT]):
    """Neural voice-activity detector (the ``earshot`` network, built into the extension).

    Any sample rate (8000..=384000 Hz) and channel count: the node downmixes, resamples to
    16 kHz internally and scores each 16 ms frame with a speech probability. A segment opens
    at a frame ``>= threshold``, continues while frames stay ``>= end_threshold`` (default
    ``threshold - 0.15``), closes after ``min_silence_ms`` below it, is reported once its
    speech spans ``min_speech_ms`` and is widened by ``pad_ms`` on both sides. A frame's
    probability counts only when its energy above 150 Hz is ``min_snr_db`` above the noise
    floor (the quietest such energy of the last 2 s), or its voicing (periodicity of the
    150-1000 Hz band, 0..1) is ``min_voicing`` above its own lowest value of the last 2 s
    (speech in noise loud enough to hide its energy; ``None``: energy alone decides). Times
    are in the input's timeline, exact to the sample. NaN/Inf samples are read as 0.

    ``emit="segments"`` gives a list of :class:`SpeechSegment`
    ``{"start_ms", "end_ms", "confidence"}`` (confidence: mean speech probability of the
    segment's frames); ``"speech"`` only the speech audio in the input's format;
    ``"events"`` :class:`~remotemedia.SpeechStart` / :class:`~remotemedia.SpeechEnd` events
    as soon as each is decided; ``"probabilities"`` a :class:`SpeechFrame`
    ``{"start_ms", "end_ms", "probability"}`` per frame. The type follows ``emit``
    (``SpeechVADNode[list[SpeechSegment]]``, ...).
    """

    node_type = "SpeechVADNode"

    @overload
    def __init__(
        self: SpeechVADNode[list[SpeechSegment]],
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        emit: Literal["segments"] = "segments",
    ) -> None: ...
    @overload
    def __init__(
        self: SpeechVADNode[Audio],
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        *,
        emit: Literal["speech"],
    ) -> None: ...
    @overload
    def __init__(
        self: SpeechVADNode[list[VadEvent]],
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        *,
        emit: Literal["events"],
    ) -> None: ...
    @overload
    def __init__(
        self: SpeechVADNode[list[SpeechFrame]],
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        *,
        emit: Literal["probabilities"],
    ) -> None: ...
    @overload
    def __init__(
        self: SpeechVADNode[Any],
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        emit: str = "segments",
    ) -> None: ...
    def __init__(
        self,
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        emit: str = "segments",
    ) -> None:
        self.threshold = threshold
        self.end_threshold = end_threshold
        self.min_speech_ms = min_speech_ms
        self.min_silence_ms = min_silence_ms
        self.pad_ms = pad_ms
        self.min_snr_db = min_snr_db
        self.min_voicing = min_voicing
        self.emit = emit
        self._setup()
