"""Speech detection: :class:`SpeechVADNode` (generated from its runtime definition) and the
helpers that find Silero's model file for ``engine="silero"``."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from remotemedia._types import SpeechFrame, SpeechSegment
from remotemedia.nodes._generated import SpeechVadEngine, SpeechVADNode

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
EngineName = SpeechVadEngine

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
