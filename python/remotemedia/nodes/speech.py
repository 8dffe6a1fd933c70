"""Speech nodes that exist only natively: :class:`SpeechVADNode`."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from pathlib import Path
from typing import Any, Literal, TypedDict, overload

from remotemedia._types import Audio, VadEvent
from remotemedia.nodes.audio import BuiltinNode
from remotemedia.nodes.base import OutT

__all__ = [
    "EngineName",
    "SpeechFrame",
    "SpeechSegment",
    "SpeechVADNode",
    "silero_install_problem",
    "silero_model_path",
]

#: ``SpeechVADNode``'s engines: the built-in ``"earshot"`` network, or Silero VAD v6 run by the
#: runtime with the weights of the installed ``silero-vad`` package.
EngineName = Literal["earshot", "silero"]

#: The ``silero-vad`` package's file the runtime reads the Silero weights from.
SILERO_MODEL_FILE = "silero_vad_op18_ifless.onnx"


def silero_model_path() -> Path | None:
    """The installed ``silero-vad`` package's model file for ``engine="silero"`` (``None``
    when the package, version 6 or later, is not installed). Found without importing the
    package (``pip install --no-deps silero-vad`` is enough: its model files only)."""
    try:
        spec = importlib.util.find_spec("silero_vad")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / SILERO_MODEL_FILE
        if candidate.is_file():
            return candidate
    return None


def silero_install_problem() -> str | None:
    """Why the installed ``silero-vad`` package gives no model file for ``engine="silero"``
    (a version before 6, which lacks it), or ``None`` when it does or is not installed."""
    if silero_model_path() is not None:
        return None
    try:
        if importlib.util.find_spec("silero_vad") is None:
            return None
    except (ImportError, ValueError):
        return None
    try:
        version = importlib.metadata.version("silero-vad")
    except importlib.metadata.PackageNotFoundError:
        version = "(version unknown)"
    major = version.split(".", 1)[0]
    if major.isdigit() and int(major) < 6:
        return (
            f"the installed silero-vad {version} has no {SILERO_MODEL_FILE} (it came with "
            "version 6): upgrade it with `pip install --no-deps --upgrade 'silero-vad>=6'`"
        )
    return (
        f"the installed silero-vad {version} has no data/{SILERO_MODEL_FILE} (this engine "
        "reads that file of version 6); point model_path at a copy of it"
    )


class SpeechSegment(TypedDict):
    """One item of ``SpeechVADNode(emit="segments")``'s output list."""

    start_ms: float
    """Start (padding included), in ms of the input's timeline."""
    end_ms: float
    """End (exclusive, padding included)."""
    confidence: float
    """Mean speech probability (0..1) of the segment's frames, padding excluded."""


class SpeechFrame(TypedDict):
    """One item of ``SpeechVADNode(emit="probabilities")``'s output list (one frame: 16 ms,
    or 32 ms with ``engine="silero"``)."""

    start_ms: float
    end_ms: float
    probability: float


class SpeechVADNode(BuiltinNode[OutT]):
    """Neural voice-activity detector (the ``earshot`` network, built into the extension).

    Any sample rate (8000..=384000 Hz) and channel count: the node downmixes, resamples to
    16 kHz internally and scores each 16 ms frame with a speech probability. A segment opens
    at a frame ``>= threshold``, continues while frames stay ``>= end_threshold`` (default
    ``max(threshold - 0.15, 0.01)``, at most ``threshold``), closes after ``min_silence_ms``
    below it, is reported once its speech spans ``min_speech_ms`` and is widened by
    ``pad_ms`` on both sides. A frame's
    probability counts only when its energy above 150 Hz is ``min_snr_db`` above the noise
    floor (the quietest such energy of the last 2 s), or its voicing (periodicity of the
    150-1000 Hz band, 0..1) is ``min_voicing`` above its own lowest value of the last 2 s
    (speech in noise loud enough to hide its energy; ``None``: energy alone decides). The
    network hears the input levelled (its decisions depend on the level): quiet speech
    louder, loud input quieter, by at most ``max_gain_db`` (0: as it is); a quiet room's
    noise alone is not boosted. Only the analysis is levelled; emitted audio is the input.
    Times are in the input's timeline, exact to the sample. NaN/Inf samples are read as 0.

    ``emit="segments"`` gives a list of :class:`SpeechSegment`
    ``{"start_ms", "end_ms", "confidence"}`` (confidence: mean speech probability of the
    segment's frames); ``"speech"`` only the speech audio in the input's format;
    ``"events"`` :class:`~remotemedia.SpeechStart` / :class:`~remotemedia.SpeechEnd` events
    as soon as each is decided; ``"probabilities"`` a :class:`SpeechFrame`
    ``{"start_ms", "end_ms", "probability"}`` per frame. The type follows ``emit``
    (``SpeechVADNode[list[SpeechSegment]]``, ...).

    ``engine="silero"`` scores 32 ms frames with Silero VAD v6 instead, run by the runtime in
    Rust with the weights of the installed ``silero-vad`` package (``pip install --no-deps
    silero-vad``; found automatically) or of ``model_path`` (its
    ``silero_vad_op18_ifless.onnx``); no ONNX Runtime is needed. Silero separates speech from
    loud noise itself, so the energy and voicing gate and the levelling are off and
    ``min_snr_db`` / ``min_voicing`` / ``max_gain_db`` must keep their defaults. The
    post-processing rules are the same.
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
        engine: EngineName = "earshot",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
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
        engine: EngineName = "earshot",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
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
        engine: EngineName = "earshot",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
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
        engine: EngineName = "earshot",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
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
        engine: EngineName = "earshot",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
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
        engine: EngineName = "earshot",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
    ) -> None:
        self.threshold = threshold
        self.end_threshold = end_threshold
        self.min_speech_ms = min_speech_ms
        self.min_silence_ms = min_silence_ms
        self.pad_ms = pad_ms
        self.min_snr_db = min_snr_db
        self.min_voicing = min_voicing
        self.emit = emit
        self.engine = engine
        self.model_path = model_path
        self.max_gain_db = max_gain_db
        self._setup()
