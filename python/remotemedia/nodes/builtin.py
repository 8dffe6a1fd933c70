"""The base of the built-in node classes (:class:`BuiltinNode`) and the rules they share:
parameters checked by the runtime, manifests' JSON, numpy spellings of sample formats. The
classes themselves are generated from the runtime's node definitions
(:mod:`remotemedia.nodes._generated`); :mod:`remotemedia.reference` keeps numpy versions of
them as the benchmark baseline and test oracle (never as a runtime)."""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import reprlib
from typing import Any, ClassVar, Literal

import numpy as np

from remotemedia import _native
from remotemedia._types import Audio
from remotemedia.errors import ManifestError
from remotemedia.nodes.base import Node, OutT

__all__ = [
    "BUILTIN_TYPES",
    "BuiltinNode",
    "SampleFormatLike",
    "SampleFormatName",
    "format_name",
    "jsonable",
    "params_json",
    "validate_params",
]

#: The runtime's sample-format names.
SampleFormatName = Literal["f32", "i16", "i32", "f64"]
#: A sample format as Python code may spell it: the runtime's name, numpy's name, or a numpy
#: scalar type or dtype (``"float32"``, ``np.int16``, ``np.dtype("f8")``). A misspelt name
#: (``"f16"``) is a type error for mypy and a ``ManifestError`` at run time.
SampleFormatLike = (
    SampleFormatName
    | Literal["float32", "int16", "int32", "float64"]
    | type[np.floating[Any]]
    | type[np.signedinteger[Any]]
    | np.dtype[Any]
)

#: Built-in node classes by manifest ``node_type`` (filled as the classes are defined), so
#: ``Pipeline.from_manifest`` knows every native node without a list to keep in sync.
BUILTIN_TYPES: dict[str, type[BuiltinNode]] = {}


def jsonable(value: Any) -> Any:
    """numpy scalars and arrays to plain Python values, for manifests."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


@functools.cache
def _param_names(cls: type) -> frozenset[str]:
    """The constructor's parameter names (a node's parameters, also those its manifest leaves
    out when unset)."""
    init = cls.__init__  # type: ignore[misc]
    return frozenset(list(inspect.signature(init).parameters)[1:])


class BuiltinNode(Node[OutT]):
    """Base of the built-in nodes: parameters validated at construction with the runtime's
    own checks; ``process``/``flush`` stream through the node; calling the node runs a
    whole clip at once. ``OutT`` is what the node outputs (``Audio`` for audio nodes; a VAD
    node's depends on its ``emit``)."""

    runtime: ClassVar[str] = "rust"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.node_type is not None:
            BUILTIN_TYPES.setdefault(cls.node_type, cls)

    def _setup(self) -> None:
        validate_params(self.manifest_type(), self.params)
        self._engine: Any = None
        # From here on the parameters are what was checked and what runs (see __setattr__).
        self._built = True

    def __setattr__(self, name: str, value: Any) -> None:
        # A parameter set after construction would be ignored (the node, its pipelines and
        # manifests use the values checked when it was built): refuse it instead.
        if self.__dict__.get("_built", False) and name in _param_names(type(self)):
            kind = type(self).__name__
            raise AttributeError(
                f"{kind}.{name} cannot be changed after the node is built (its parameters "
                f"were checked then, and runs and manifests use them); build a new node: "
                f"{kind}(**{{**node.params, {name!r}: {reprlib.repr(value)}}})"
            )
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if self.__dict__.get("_built", False) and name in _param_names(type(self)):
            raise AttributeError(
                f"{type(self).__name__}.{name} cannot be deleted: it is a parameter of the node"
            )
        super().__delattr__(name)

    def _native_engine(self) -> Any:
        """The runtime's node (built on first use, with the parameters checked at
        construction)."""
        engine = self._engine
        if engine is None:
            engine = self._engine = _native.NativeNode(
                self.manifest_type(), params_json(self.manifest_type(), self.params)
            )
            if type(self).process is BuiltinNode.process:
                # Later calls go straight to the runtime's method: an instance attribute
                # shadows this class's `process` (a plain function), which saves a Python
                # frame per call, a third of a small chunk's cost. Not done for a subclass
                # that overrides `process`.
                object.__setattr__(self, "process", engine.process)
        return engine

    def process(self, data: Any, sample_rate: int | None = None) -> OutT | None:
        """Feeds one chunk of a stream; returns the output ready so far (may be empty, or
        ``None`` when the node has nothing to say yet).

        ``data`` is an :class:`~remotemedia.Audio` or a numpy array with ``sample_rate``.
        """
        # The same preparation as Pipeline.run (the runtime's, `_native.prepare`:
        # non-contiguous arrays such as a.T, x[:, 0] or Fortran order are copied once, rates
        # may be integral floats, files are read), done in the runtime, which takes arrays it
        # can borrow as they are without a further look.
        out: OutT | None = self._native_engine().process(data, sample_rate)
        return out

    def flush(self) -> OutT | None:
        """Ends the stream: returns what is still buffered; the next chunk starts a new one."""
        if self._engine is None:
            return None
        out: OutT | None = self._engine.flush()
        self.reset()
        return out

    def reset(self) -> None:
        """Drops any stream state."""
        if self._engine is not None:
            self._engine.reset()

    def __call__(self, data: Any, sample_rate: int | None = None) -> OutT:
        """Processes a whole clip: ``process`` then ``flush``, joined (by the runtime, which
        appends the flushed tail to the head's buffer instead of copying both)."""
        out: OutT = self._native_engine().run(data, sample_rate)
        return out


def _join(head: Any, tail: Any) -> Any:
    """A whole clip's ``process`` and ``flush`` outputs as one, in Python: what the runtime's
    ``NativeNode.run`` does for native nodes, kept for the pure-Python reference nodes
    (``remotemedia.reference``) so both are joined by the same rule."""
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


# ---------------------------------------------------------------------------- validation

_FORMAT_NAMES = {
    "f32": "f32",
    "float32": "f32",
    "i16": "i16",
    "int16": "i16",
    "i32": "i32",
    "int32": "i32",
    "f64": "f64",
    "float64": "f64",
}


def format_name(fmt: Any) -> Any:
    """Our short sample-format name for any numpy spelling ("float32", np.float32,
    np.dtype("int16"), "f32"); anything else is returned as is for the runtime to refuse."""
    try:
        key = np.dtype(fmt).name if not isinstance(fmt, str) else fmt
    except TypeError:
        return fmt
    if isinstance(fmt, str) and fmt not in _FORMAT_NAMES:
        try:
            key = np.dtype(fmt).name
        except TypeError:
            return fmt
    return _FORMAT_NAMES.get(key, fmt)


def params_json(node_type: str, params: dict[str, Any]) -> str:
    """``params`` as manifest JSON; a value JSON cannot hold is refused naming its field."""
    for name, value in params.items():
        if isinstance(value, (float, np.floating)) and not math.isfinite(value):
            raise ManifestError(
                f"{node_type}: params.{name}: {value} is not a finite number; "
                "parameters must be finite"
            )
    try:
        return json.dumps(params, default=jsonable, allow_nan=False)
    except (TypeError, ValueError) as exc:
        bad = next((k for k, v in params.items() if not _is_json(v)), None)
        field = f"params.{bad}" if bad else "params"
        raise ManifestError(f"{node_type}: {field}: {exc}; use JSON values") from None


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, default=jsonable, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def validate_params(node_type: str, params: dict[str, Any]) -> None:
    """Raises :class:`~remotemedia.ManifestError` when ``params`` are invalid for a built-in
    node type, with the runtime's message (the ranges come from the node's schema)."""
    _native.check_params(node_type, params_json(node_type, params))
