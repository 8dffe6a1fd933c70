"""The :class:`Node` base class for your own Python nodes."""

from __future__ import annotations

import abc
import inspect
import re
from typing import TYPE_CHECKING, Any, ClassVar, Generic

from remotemedia._typing import TypeVar

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Node", "OutT"]

#: What a node outputs, as a pipeline delivers it (``Pipeline[...]`` follows the last node
#: added). ``Node`` alone is ``Node[Any]``.
OutT = TypeVar("OutT", covariant=True, default=Any)


class Node(abc.ABC, Generic[OutT]):
    """A processing step in a :class:`~remotemedia.Pipeline`.

    Subclass it and implement :meth:`process`; optionally :meth:`initialize`, :meth:`flush`
    and :meth:`cleanup`. Any of them may be ``async def``. The Rust executor calls your node
    on a worker thread, holding the GIL only while your code runs.

    Constructor arguments are recorded automatically, so a pipeline containing your node
    serializes to a manifest that rebuilds it (they must be JSON values)::

        class Gain(remotemedia.Node):
            def __init__(self, factor: float = 2.0):
                self.factor = factor

            def process(self, audio):
                return audio * self.factor   # an Audio in, an Audio out (same sample rate)

    To have ``Pipeline.run`` typed, name what the node outputs as the pipeline delivers it:
    ``class Gain(remotemedia.Node[remotemedia.Audio])`` (a numpy array your ``process``
    returns is delivered as an ``Audio``). Plain ``Node`` outputs ``Any``.

    ``process`` receives what the upstream node produced: a :class:`~remotemedia.Audio`
    (read-only: the executor keeps it for a retry; compute a new array), a list of
    :class:`~remotemedia.Segment`, any Python
    object, or a ``dict`` keyed by upstream node id when the node has several inputs. Return
    ``None`` to emit nothing. Raise ``TimeoutError``, ``ConnectionError`` or
    :class:`~remotemedia.RetryableError` to have the call retried; anything else fails at once.
    """

    #: The manifest ``node_type``. Defaults to the import path ``"module:QualName"``.
    node_type: ClassVar[str | None] = None
    #: Where the node runs ("python" for your nodes, "rust" for the built-in ones).
    runtime: ClassVar[str] = "python"

    _init_params: dict[str, Any]
    node_id: str | None

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = super().__new__(cls)
        self._init_params = _bound_params(cls, args, kwargs)
        self.node_id = None
        return self

    @classmethod
    def manifest_type(cls) -> str:
        """The ``node_type`` this class is written as in a manifest."""
        return cls.node_type or f"{cls.__module__}:{cls.__qualname__}"

    @property
    def params(self) -> dict[str, Any]:
        """The constructor arguments (defaults included), as they go into the manifest."""
        return dict(self._init_params)

    @abc.abstractmethod
    def process(self, data: Any) -> Any:
        """Handles one input; returns the output (or ``None`` for nothing yet)."""

    def initialize(self) -> None:
        """Called before the first input of every run or stream."""
        return None

    def flush(self) -> Any:
        """Called at end of stream; returns anything still buffered (or ``None``)."""
        return None

    def cleanup(self) -> None:
        """Called after every run or stream, whether it succeeded or not."""
        return None

    def default_id(self) -> str:
        """A node id derived from the class name (``AudioResampleNode`` -> ``audio_resample``)."""
        name = type(self).__name__
        if name.endswith("Node") and len(name) > 4:
            name = name[:-4]
        name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
        return re.sub(r"[^a-z0-9_.-]", "_", name) or "node"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._init_params.items())
        return f"{type(self).__name__}({args})"


def _bound_params(cls: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Binds constructor arguments to parameter names, defaults applied. Arguments that do
    not bind are left for ``__init__`` to reject with Python's own error."""
    init = cls.__init__  # type: ignore[misc]
    if init is object.__init__:
        return {}
    try:
        sig = inspect.signature(init)
    except (TypeError, ValueError):
        return {}
    _check_keywords(cls, sig, kwargs)
    try:
        bound = sig.bind(None, *args, **kwargs)
    except (TypeError, ValueError):
        return {}
    bound.apply_defaults()
    params: dict[str, Any] = {}
    names = list(sig.parameters)
    for name, value in bound.arguments.items():
        if name == names[0]:
            continue  # self
        kind = sig.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            params.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                params[f"*{name}"] = list(value)
        else:
            params[name] = value
    return params


def _check_keywords(cls: type, sig: inspect.Signature, kwargs: dict[str, Any]) -> None:
    """Refuses a keyword the constructor does not take, suggesting the closest one it does
    (``SpeechVADNode(treshold=0.5)``: "did you mean 'threshold'?")."""
    params = list(sig.parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    names = [
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    for key in kwargs:
        if key not in names:
            from remotemedia import _native

            best = _native.closest(key, names)
            hint = f"; did you mean '{best}'?" if best else ""
            takes = ", ".join(names) if names else "no parameters"
            raise TypeError(
                f"{cls.__name__}() got an unexpected keyword argument '{key}'{hint} "
                f"(it takes: {takes})"
            )


def construct(cls: type, params: dict[str, Any]) -> Any:
    """Builds a node from its manifest ``params`` (the inverse of ``_bound_params``): a
    ``"*name"`` entry is the constructor's ``*name`` arguments, so the parameters before it are
    passed by position. Used by ``Pipeline.from_manifest`` and by the runtime's own loader."""
    star = [k for k in params if k.startswith("*")]
    if not star:
        return cls(**params)
    if len(star) > 1:
        raise TypeError(f"more than one variadic parameter: {', '.join(sorted(star))}")
    kwargs = dict(params)
    extra = kwargs.pop(star[0])
    if not isinstance(extra, list):
        raise TypeError(f"'{star[0]}' must be a list of positional arguments")
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    args: list[Any] = []
    for name, p in list(sig.parameters.items())[1:]:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            if name != star[0][1:]:
                raise TypeError(f"got '{star[0]}' but the variadic parameter is '*{name}'")
            break
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            if name not in kwargs:
                raise TypeError(f"missing '{name}' (needed before '{star[0]}')")
            args.append(kwargs.pop(name))
    else:
        raise TypeError(f"{cls.__name__}() takes no '{star[0]}' arguments")
    return cls(*args, *extra, **kwargs)
