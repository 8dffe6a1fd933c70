"""The :class:`Pipeline`: build a graph of nodes, serialize it, run it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from remotemedia import _runtime
from remotemedia._pyexec import PythonExecutor
from remotemedia._types import Audio
from remotemedia.errors import ManifestError, RemoteMediaError
from remotemedia.nodes.audio import (
    AudioResampleNode,
    BuiltinNode,
    ChannelMixNode,
    FormatConverterNode,
    PassThroughNode,
    VADNode,
    jsonable,
)
from remotemedia.nodes.base import Node, construct
from remotemedia.nodes.remote import RemotePipelineNode
from remotemedia.nodes.speech import SpeechVADNode
from remotemedia.streaming import AsyncSession, Session

__all__ = ["Pipeline"]

ManifestSource = str | dict[str, Any] | os.PathLike[str]

_BUILTINS: dict[str, type[BuiltinNode]] = {
    c.node_type: c
    for c in (
        AudioResampleNode,
        VADNode,
        FormatConverterNode,
        ChannelMixNode,
        PassThroughNode,
        RemotePipelineNode,
        SpeechVADNode,
    )
}
_DTYPES = (np.float32, np.float64, np.int16, np.int32)


_RETRY_FIELDS = frozenset({"max_attempts", "initial_delay_ms", "max_delay_ms"})


class Pipeline:
    """A graph of nodes, run by the Rust executor.

    >>> import numpy as np
    >>> from remotemedia import Pipeline, AudioResampleNode
    >>> p = Pipeline("audio_pipeline")
    >>> _ = p.add_node(AudioResampleNode(target_rate=16000))
    >>> out = p.run(np.zeros(48000, dtype=np.float32), sample_rate=48000)
    >>> out.sample_rate, out.shape
    (16000, (16000,))

    Nodes run in the order added unless :meth:`connect` is used, in which case only the
    explicit connections count. Node ids default to the class name in snake case
    (``audio_resample``), numbered when repeated.
    """

    def __init__(self, name: str = "pipeline", *, description: str | None = None) -> None:
        self.name = name
        self.description = description
        self._nodes: list[tuple[str, Node]] = []
        # Per-node execution policy ("retry", "timeout_ms"), as in the manifest.
        self._policies: dict[str, dict[str, Any]] = {}
        self._connections: list[tuple[str, str]] | None = None
        # Native pipelines for the current graph: idle instances to reuse, so concurrent runs
        # (arun, threads) each get their own node state. Pipelines with Python nodes run one
        # input at a time instead: a Python node object cannot be in two runs at once.
        self._idle: list[Any] = []
        self._idle_key: tuple[Any, ...] | None = None
        self._version = 0  # bumped whenever the graph changes
        self._streaming = False  # a stream holds the Python nodes
        self._pool_lock = threading.Lock()
        self._serial = threading.Lock()
        self._native: Any = None  # the instance of the last finished run
        self._py_metrics: dict[str, Any] | None = None
        self._last_runtime: str | None = None

    # ------------------------------------------------------------------ building

    @property
    def nodes(self) -> dict[str, Node]:
        """The nodes by id, in insertion order."""
        return dict(self._nodes)

    def add_node(
        self,
        node: Node,
        node_id: str | None = None,
        *,
        retry: dict[str, int] | None = None,
        timeout_ms: int | None = None,
    ) -> Pipeline:
        """Adds ``node`` (returns the pipeline, so calls chain).

        ``retry`` (``{"max_attempts", "initial_delay_ms", "max_delay_ms"}``, defaults 3, 100
        and 1600) and ``timeout_ms`` (per call) are the node's execution policy, as in the
        manifest; retries apply to retryable errors only (``TimeoutError``,
        ``ConnectionError``, :class:`~remotemedia.RetryableError`).
        """
        if not isinstance(node, Node):
            raise TypeError(
                f"add_node() takes a remotemedia.Node, got {type(node).__name__}; subclass "
                "remotemedia.Node and implement process()"
            )
        if any(n is node for _, n in self._nodes):
            raise ValueError(f"{node!r} is already in the pipeline; create another instance")
        ids = {i for i, _ in self._nodes}
        chosen = node_id or node.node_id
        if chosen is None:
            base = node.default_id()
            chosen, k = base, 2
            while chosen in ids:
                chosen, k = f"{base}_{k}", k + 1
        elif chosen in ids:
            raise ValueError(f"node id '{chosen}' is already used in this pipeline")
        policy: dict[str, Any] = {}
        if retry is not None:
            if not isinstance(retry, dict) or not set(retry) <= _RETRY_FIELDS:
                raise ValueError(
                    f"node '{chosen}': retry must be a dict with keys among "
                    f"{', '.join(sorted(_RETRY_FIELDS))}, got {retry!r}"
                )
            policy["retry"] = dict(retry)
        if timeout_ms is not None:
            if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms <= 0:
                raise ValueError(
                    f"node '{chosen}': timeout_ms must be a positive integer, got {timeout_ms!r}"
                )
            policy["timeout_ms"] = timeout_ms
        node.node_id = chosen
        self._nodes.append((chosen, node))
        if policy:
            self._policies[chosen] = policy
        self._version += 1
        return self

    def connect(self, upstream: Node | str, downstream: Node | str) -> Pipeline:
        """Connects two nodes (objects or ids). Once used, only explicit connections count."""
        a, b = self._id_of(upstream), self._id_of(downstream)
        if self._connections is None:
            self._connections = []
        self._connections.append((a, b))
        self._version += 1
        return self

    def _id_of(self, node: Node | str) -> str:
        if isinstance(node, str):
            if node not in self.nodes:
                raise ValueError(f"no node '{node}' in this pipeline; ids are {list(self.nodes)}")
            return node
        for i, n in self._nodes:
            if n is node:
                return i
        raise ValueError(f"{node!r} is not in this pipeline; add_node() it first")

    def _edges(self) -> list[tuple[str, str]]:
        if self._connections is not None:
            return list(self._connections)
        ids = [i for i, _ in self._nodes]
        return list(pairwise(ids))

    # ------------------------------------------------------------------ manifest

    def to_manifest(self) -> dict[str, Any]:
        """The v1 manifest as a dict (every node's constructor arguments included)."""
        metadata: dict[str, Any] = {"name": self.name}
        if self.description:
            metadata["description"] = self.description
        nodes = []
        for node_id, node in self._nodes:
            params = node.params
            try:
                json.dumps(params, default=jsonable)
            except (TypeError, ValueError) as exc:
                raise ManifestError(
                    f"node '{node_id}' ({type(node).__name__}): its constructor arguments "
                    f"{params!r} cannot go into a manifest: {exc}; use JSON values (numbers, "
                    "strings, lists, dicts)"
                ) from None
            spec = {"id": node_id, "node_type": node.manifest_type(), "params": params}
            spec.update(self._policies.get(node_id, {}))
            nodes.append(spec)
        return {
            "version": "v1",
            "metadata": metadata,
            "nodes": nodes,
            "connections": [{"from": a, "to": b} for a, b in self._edges()],
        }

    def serialize(self, indent: int | None = 2) -> str:
        """The v1 manifest as JSON text (what the Rust runtime, the CLI and the server read)."""
        return json.dumps(self.to_manifest(), indent=indent, default=jsonable)

    @classmethod
    def from_manifest(cls, source: ManifestSource) -> Pipeline:
        """Rebuilds a pipeline from a manifest: JSON text, a dict, or a path to a file.

        Built-in node types become their classes; ``"module:Class"`` types are imported and
        called with the params as keyword arguments.
        """
        if isinstance(source, dict):
            manifest = source
        else:
            text = str(source)
            if isinstance(source, os.PathLike) or not text.lstrip().startswith("{"):
                text = Path(source).read_text()
            manifest = json.loads(text)
        if _runtime.native_available() and not _has_python_nodes(manifest):
            # Full validation first: every problem at once, with node ids and fields.
            _runtime.native().NativePipeline(json.dumps(manifest))
        meta = manifest.get("metadata") or {}
        p = cls(meta.get("name", "pipeline"), description=meta.get("description"))
        for spec in manifest.get("nodes", []):
            node_type = spec["node_type"]
            params = spec.get("params") or {}
            node_cls = _BUILTINS.get(node_type) or _import_node_class(spec["id"], node_type)
            try:
                node = construct(node_cls, params)
            except TypeError as exc:
                raise ManifestError(f"node '{spec['id']}' ({node_type}): {exc}") from None
            p.add_node(node, spec["id"], retry=spec.get("retry"), timeout_ms=spec.get("timeout_ms"))
        connections = manifest.get("connections") or []
        ids = [i for i, _ in p._nodes]
        edges = [(c["from"], c["to"]) for c in connections]
        if edges != list(pairwise(ids)):
            p._connections = edges
            p._version += 1
        return p

    # ------------------------------------------------------------------ running

    def _python_nodes(self) -> dict[str, Node]:
        return {i: n for i, n in self._nodes if not isinstance(n, BuiltinNode)}

    def _acquire(self) -> tuple[Any, tuple[Any, ...]]:
        """An idle native pipeline for the current graph (built when none is idle)."""
        # Node params are fixed at construction, so the graph changes only through add_node,
        # connect, or the name/description.
        key = (self._version, self.name, self.description)
        with self._pool_lock:
            if self._idle_key != key:
                self._idle, self._idle_key = [], key
            if self._idle:
                return self._idle.pop(), key
        text = self.serialize(indent=None)
        return _runtime.native().NativePipeline(text, self._python_nodes()), key

    def _release(self, native: Any, key: tuple[Any, ...]) -> None:
        with self._pool_lock:
            self._native = native
            if self._idle_key == key:
                self._idle.append(native)

    def validate(self) -> None:
        """Checks the pipeline as the runtime will; raises :class:`ManifestError` listing
        every problem."""
        if not self._nodes:
            raise ManifestError("invalid manifest: nodes: a pipeline needs at least one node")
        if _runtime.native_available():
            native, key = self._acquire()
            self._release(native, key)
        else:
            PythonExecutor(self.to_manifest(), self.nodes)

    def run(
        self,
        data: Any,
        sample_rate: int | None = None,
        *,
        remote: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Runs the whole input through the pipeline.

        ``data``: a :class:`~remotemedia.Audio`, a numpy array (``(frames,)`` or
        ``(frames, channels)``, float32/float64/int16/int32) with ``sample_rate``, a path to an
        audio file (WAV, FLAC, MP3, OGG), or any value for pipelines of Python nodes.
        Contiguous arrays are not copied (do not modify them while the run is in progress).

        Returns the sink's output (an :class:`~remotemedia.Audio`, a list of
        :class:`~remotemedia.Segment`, or what a Python node returned), or a dict by sink id
        when there are several sinks.

        With ``remote="host:port"`` the pipeline runs on that remotemedia server (same results;
        ``token`` or ``$REMOTEMEDIA_TOKEN`` is sent as a bearer token; ``timeout`` in seconds).
        """
        if remote is not None:
            from remotemedia.remote import client_for

            return client_for(remote, token).run(self, data, sample_rate, timeout)
        if not self._nodes:
            raise ManifestError("invalid manifest: nodes: a pipeline needs at least one node")
        data, sample_rate = _prepare_input(data, sample_rate)
        if _runtime.runtime() == "python":
            ex = PythonExecutor(self.to_manifest(), self.nodes)
            if isinstance(data, np.ndarray) and not isinstance(data, Audio):
                data = Audio(data, sample_rate or 0)
            try:
                outputs = ex.run(data)
            finally:
                self._py_metrics = ex.metrics
                self._last_runtime = "python"
        else:
            has_python = any(not isinstance(n, BuiltinNode) for _, n in self._nodes)
            if has_python and self._streaming:
                raise RemoteMediaError(
                    f"pipeline '{self.name}' has Python nodes and a stream is open; close it first"
                )
            with self._serial if has_python else contextlib.nullcontext():
                native, key = self._acquire()
                try:
                    outputs = native.run(data, sample_rate)
                finally:
                    self._release(native, key)
                    self._last_runtime = "rust"
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        return outputs

    async def arun(
        self, data: Any, sample_rate: int | None = None, *, remote: str | None = None
    ) -> Any:
        """:meth:`run` without blocking the event loop (the work runs on a worker thread)."""
        return await asyncio.to_thread(self.run, data, sample_rate, remote=remote)

    # ------------------------------------------------------------------ streaming

    def stream(
        self,
        sample_rate: int,
        channels: int = 1,
        *,
        max_pending: int = 4,
        background: bool = False,
        remote: str | None = None,
        token: str | None = None,
    ) -> Session:
        """Opens a streaming session::

            with pipeline.stream(sample_rate=48000, channels=1) as session:
                for chunk in mic_chunks:            # numpy arrays of any length
                    session.send(chunk)
                    for out in session.poll():      # whatever is ready, never blocks
                        ...
                for out in session.close():         # flush: the tail
                    ...

        Outputs are :class:`~remotemedia.streaming.StreamOutput` (``node_id``, ``data``,
        ``start_frame``/``start_ms``). ``send`` processes the chunk before returning (its
        outputs are ready to ``poll``); with ``background=True`` a worker thread processes
        chunks and ``send`` only waits while ``max_pending`` are queued. With
        ``remote="host:port"`` the stream runs on that server.
        """
        if remote is not None:
            from remotemedia.remote import client_for

            return client_for(remote, token).stream(
                self, sample_rate, channels, max_pending=max_pending, background=background
            )
        if not self._nodes:
            raise ManifestError("invalid manifest: nodes: a pipeline needs at least one node")
        if _runtime.runtime() == "python":
            ex = PythonExecutor(self.to_manifest(), self.nodes)
            ex.start()

            def done_py() -> None:
                self._py_metrics = ex.metrics
                self._last_runtime = "python"

            return Session(
                ex,
                sample_rate,
                channels,
                max_pending=max_pending,
                background=background,
                on_done=done_py,
            )
        has_python = any(not isinstance(n, BuiltinNode) for _, n in self._nodes)
        if has_python and not self._serial.acquire(blocking=False):
            raise RemoteMediaError(
                f"pipeline '{self.name}' has Python nodes and is already running; a Python node "
                "object cannot serve two streams at once (close the other, or build a second "
                "pipeline)"
            )
        try:
            native, key = self._acquire()
            backend = native.session()
        except BaseException:
            if has_python:
                self._serial.release()
            raise
        self._streaming = has_python

        def done() -> None:
            self._release(native, key)
            self._last_runtime = "rust"
            if has_python:
                self._streaming = False
                self._serial.release()

        return Session(
            backend,
            sample_rate,
            channels,
            max_pending=max_pending,
            background=background,
            on_done=done,
        )

    def astream(
        self,
        sample_rate: int,
        channels: int = 1,
        *,
        max_pending: int = 4,
        remote: str | None = None,
        token: str | None = None,
    ) -> AsyncSession:
        """The asyncio form of :meth:`stream`::

        async with pipeline.astream(sample_rate=16000) as session:
            await session.send(chunk)
            async for out in session:
                ...
        """
        return AsyncSession(
            self.stream(
                sample_rate,
                channels,
                max_pending=max_pending,
                background=True,
                remote=remote,
                token=token,
            )
        )

    # ------------------------------------------------------------------ observing

    def get_metrics(self) -> dict[str, Any] | None:
        """Metrics of the last run: ``{"pipeline", "total_time_us", "total_time_ms",
        "total_memory_mb", "nodes": [{"node_id", "node_type", "runtime",
        "execution_time_us", "execution_time_ms", "calls", "memory_mb", "status",
        "retry_count", ...}]}``.

        ``memory_mb`` is the largest output one call of the node produced (the memory that
        output holds). ``total_memory_mb`` is the process's peak resident memory so far
        (``getrusage`` max RSS), not this run's own: a large earlier run raises it for every
        later one."""
        if self._last_runtime == "python":
            return self._py_metrics
        if self._native is None:
            return None
        text = self._native.metrics_json()
        return None if text is None else json.loads(text)

    def get_trace(self) -> dict[str, Any] | None:
        """The last run as a Chrome trace-event document (open it in https://ui.perfetto.dev)."""
        if self._native is None or self._last_runtime != "rust":
            return None
        text = self._native.trace_json()
        return None if text is None else json.loads(text)

    def export_trace(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`get_trace` to ``path``."""
        trace = self.get_trace()
        if trace is None:
            raise RuntimeError("no native run to trace yet; call run() first")
        Path(path).write_text(json.dumps(trace))

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, nodes={[i for i, _ in self._nodes]})"


def _has_python_nodes(manifest: dict[str, Any]) -> bool:
    return any(n.get("node_type") not in _BUILTINS for n in manifest.get("nodes", []))


def _import_node_class(node_id: str, node_type: str) -> type[Node]:
    import importlib

    if ":" not in node_type:
        raise ManifestError(
            f"invalid manifest: node '{node_id}': node_type: unknown node type '{node_type}'; "
            f"known types: {', '.join(sorted(_BUILTINS))}, or a Python class as 'module:Class'"
        )
    module, qualname = node_type.split(":", 1)
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ManifestError(
            f"invalid manifest: node '{node_id}': node_type: cannot import '{node_type}': {exc}"
        ) from None
    if not (isinstance(obj, type) and issubclass(obj, Node)):
        raise ManifestError(
            f"invalid manifest: node '{node_id}': node_type: '{node_type}' is not a remotemedia.Node subclass"
        )
    return obj


def _prepare_input(data: Any, sample_rate: int | None) -> tuple[Any, int | None]:
    """Normalises the run input: reads files, checks rates, makes arrays contiguous."""
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"no such audio file: {path}")
        if _runtime.native_available():
            arr, rate = _runtime.native().read_audio(path)
        else:
            arr, rate = _read_wav(path)
        if sample_rate is not None and sample_rate != rate:
            raise ValueError(f"{path} is {rate} Hz but sample_rate={sample_rate} was given")
        return Audio(arr, rate), rate
    if isinstance(data, np.ndarray):
        rate = getattr(data, "sample_rate", None)
        if rate is not None and sample_rate is not None and rate != sample_rate:
            raise ValueError(f"the Audio is {rate} Hz but sample_rate={sample_rate} was given")
        sample_rate = rate or sample_rate
        if sample_rate is None:
            raise ValueError(
                "pass sample_rate=... with a numpy array (or a remotemedia.Audio, which has one)"
            )
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
            raise TypeError(f"sample_rate must be an integer in Hz, got {sample_rate!r}")
        if data.dtype not in _DTYPES:
            raise TypeError(
                f"audio dtype {data.dtype} is not supported; use float32, float64, int16 or int32 "
                "(e.g. audio.astype(np.float32))"
            )
        if not data.dtype.isnative:
            data = data.astype(data.dtype.newbyteorder("="))
        if not data.flags.c_contiguous:
            data = np.ascontiguousarray(data)
        return data, int(sample_rate)
    return data, sample_rate


def _read_wav(path: Path) -> tuple[np.ndarray, int]:  # pragma: no cover - fallback only
    import wave

    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV can be read without the native module")
        frames = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
        ch = w.getnchannels()
        return (frames.reshape(-1, ch) if ch > 1 else frames), w.getframerate()
