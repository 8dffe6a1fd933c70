"""Speech detection: :class:`SpeechVADNode` (generated from its runtime definition), and
:func:`silero_model_path`, the installed silero-vad package's model file (for a
``model_path`` of your own, or to compare with Silero on ONNX Runtime; the engine's weights
are bundled)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from remotemedia._types import SpeechFrame, SpeechSegment
from remotemedia.nodes._generated import SpeechVadEngine, SpeechVADNode

__all__ = [
    "EngineName",
    "SpeechFrame",
    "SpeechSegment",
    "SpeechVADNode",
    "silero_model_path",
]

#: ``SpeechVADNode``'s engines: earshot's network or Silero VAD v6, both built in.
EngineName = SpeechVadEngine

#: The ``silero-vad`` package's file whose tensors are bundled (and which ``model_path`` may
#: name).
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
