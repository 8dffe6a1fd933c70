"""Which runtime runs the nodes: the native Rust module, or the pure-Python reference.

``REMOTEMEDIA_RUNTIME`` selects it: ``rust`` (require the native module), ``python`` (the
numpy reference implementations, for comparison and debugging), or unset (native when it
loads, Python otherwise, with a warning).
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType

_native: ModuleType | None
_import_error: ImportError | None
try:
    from remotemedia import _native
except ImportError as exc:  # pragma: no cover - exercised only without the built extension
    _native = None
    _import_error = exc
else:
    _import_error = None

_warned = False


def native_available() -> bool:
    """Whether the native Rust module loaded."""
    return _native is not None


def native() -> ModuleType:
    """The native module, or a clear error when it is not available."""
    if _native is None:
        raise ImportError(
            "the remotemedia native module (remotemedia._native) is not available: "
            f"{_import_error}. Reinstall with `pip install remotemedia` (or `pip install .` "
            "in a checkout, which needs a Rust toolchain)."
        )
    return _native


def runtime() -> str:
    """``"rust"`` or ``"python"``: where built-in nodes run now."""
    global _warned
    choice = os.environ.get("REMOTEMEDIA_RUNTIME", "").strip().lower()
    if choice == "python":
        return "python"
    if choice in ("rust", "native"):
        native()
        return "rust"
    if choice:
        raise ValueError(
            f"REMOTEMEDIA_RUNTIME={choice!r} is not valid; use 'rust', 'python' or leave it unset"
        )
    if _native is None:
        if not _warned:
            warnings.warn(
                "remotemedia: native module unavailable, running the pure-Python reference "
                f"nodes (much slower): {_import_error}",
                RuntimeWarning,
                stacklevel=3,
            )
            _warned = True
        return "python"
    return "rust"
