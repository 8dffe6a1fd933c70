"""The :class:`Pipeline`: build a graph of nodes, serialize it, run it."""

from __future__ import annotations

import asyncio
import html
import json
import os
import threading
import time
import warnings
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any, Generic, Literal, cast

from remotemedia import _native
from remotemedia._types import (
    CircuitBreaker,
    CircuitBreakerDict,
    RetryDict,
    RetryPolicy,
    RunMetrics,
)
from remotemedia._typing import TypeVar
from remotemedia.batch import BatchResult
from remotemedia.batching import BatchedNode, BatchPolicy
from remotemedia.errors import ManifestError
from remotemedia.nodes.base import Node, OutT, construct
from remotemedia.nodes.builtin import BUILTIN_TYPES, BuiltinNode, jsonable
from remotemedia.remote import client_for
from remotemedia.streaming import AsyncSession, Session

__all__ = ["Pipeline"]

ManifestSource = str | dict[str, Any] | os.PathLike[str]


_RETRY_FIELDS = frozenset({"max_attempts", "initial_delay_ms", "max_delay_ms"})
_BREAKER_FIELDS = frozenset({"failure_threshold", "cooldown_ms"})

_U = TypeVar("_U")


class Pipeline(Generic[OutT]):
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

    **Types.** ``Pipeline[T]``: ``run`` returns ``T``. ``add_node`` returns the pipeline typed
    by the node it added, so a chain is typed by its sink::

        p = Pipeline("voice").add_node(AudioResampleNode(16000)).add_node(VADNode())
        segments = p.run(audio, sample_rate=48000)        # list[Segment]

    ``Pipeline("x")`` on its own, :meth:`connect` and :meth:`from_manifest` give
    ``Pipeline[Any]`` (a graph with several sinks runs to a ``dict`` by sink id; annotate it
    ``Pipeline[dict[str, Any]]`` if you like).
    """

    def __init__(
        self,
        name: str = "pipeline",
        *,
        description: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.description = description
        #: Free-form string labels (manifest ``metadata.labels``), kept by the round trip.
        self.labels: dict[str, str] = dict(labels or {})
        self._nodes: list[tuple[str, Node[Any]]] = []
        # Per-node execution policy ("retry", "timeout_ms", "circuit_breaker"), as in the
        # manifest.
        self._policies: dict[str, dict[str, Any]] = {}
        self._connections: list[tuple[str, str]] | None = None
        self._version = 0  # bumped whenever the graph changes
        # The runtime's pipeline for the current graph (it pools node instances for
        # concurrent runs and makes runs of Python nodes take turns), built on first use.
        self._native: Any = None
        self._native_key: tuple[Any, ...] | None = None
        self._native_lock = threading.Lock()

    def __reduce_ex__(self, protocol: Any) -> Any:
        # pickle, copy.copy and copy.deepcopy all come here.
        raise TypeError(
            f"Pipeline {self.name!r} cannot be pickled or copied (it holds the runtime's "
            "built pipeline and locks): send `pipeline.serialize()` (manifest JSON) instead "
            "and rebuild it with `Pipeline.from_manifest(text)` (its Python nodes must be "
            "importable there as `module:Class`)"
        )

    # ------------------------------------------------------------------ building

    @property
    def nodes(self) -> dict[str, Node[Any]]:
        """The nodes by id, in insertion order."""
        return dict(self._nodes)

    def add_node(
        self,
        node: Node[_U],
        node_id: str | None = None,
        *,
        retry: RetryPolicy | RetryDict | None = None,
        timeout_ms: int | None = None,
        circuit_breaker: CircuitBreaker | CircuitBreakerDict | None = None,
        isolation: Literal["none", "process"] | None = None,
        batch: BatchPolicy | None = None,
    ) -> Pipeline[_U]:
        """Adds ``node``; returns the pipeline (the same object, so calls chain), typed by the
        node just added (see the class's *Types*).

        ``isolation="process"`` runs a Python node in a worker process of its own
        (:mod:`remotemedia.isolation`): a crash in it (a segfault in a C extension) fails that
        call with :class:`~remotemedia.isolation.WorkerCrashed` and the next call gets a new
        worker; a timed-out call is stopped even when blocked in C; such nodes of concurrent
        runs use several cores. The node is rebuilt in the worker from its class and
        constructor arguments. The manifest records it as ``"isolation": "process"``.

        ``batch={"max_size": N, "max_delay_ms": D}`` (a Python node whose class defines
        ``process_batch(self, inputs) -> list``) gathers the ``process`` calls that equal nodes
        of concurrent runs and streams make, up to ``N`` calls or ``D`` ms after the first,
        into one ``process_batch`` call (:mod:`remotemedia.batching`). The manifest records it
        as ``"batch"``.

        ``retry`` (a :class:`~remotemedia.RetryPolicy`, or the manifest's dict
        ``{"max_attempts", "initial_delay_ms", "max_delay_ms"}``, defaults 3, 100 and 1600) and
        ``timeout_ms`` (per call) are the node's execution policy, as in the manifest; retries
        apply to retryable errors only (``TimeoutError``, ``ConnectionError``,
        :class:`~remotemedia.RetryableError`). ``circuit_breaker`` (a
        :class:`~remotemedia.CircuitBreaker`, or ``{"failure_threshold", "cooldown_ms"}``,
        defaults 5 and 30000) makes the node refuse calls at once after that many consecutive
        failures; without it the node has no breaker.
        """
        if not isinstance(node, Node):
            raise TypeError(
                f"add_node() takes a remotemedia.Node, got {type(node).__name__}; subclass "
                "remotemedia.Node and implement process()"
            )
        if isolation not in (None, "none", "process"):
            raise ValueError(f"isolation must be 'none' or 'process', got {isolation!r}")
        if isolation == "process":
            if isinstance(node, BuiltinNode):
                raise ValueError(
                    f"isolation='process' is for Python nodes; {type(node).__name__} runs in "
                    "the Rust runtime (it cannot crash the process)"
                )
            from remotemedia.isolation import IsolatedNode

            if type(node).__module__ == "__main__":
                raise ValueError(
                    f"isolation='process' rebuilds the node in a worker process, which imports "
                    f"its class: {type(node).__name__} is defined in the script being run "
                    "(__main__), which a worker cannot import without running the script again; "
                    "move the class to a module (mynodes.py) and import it from there"
                )
            if not isinstance(node, IsolatedNode):
                node = cast("Node[_U]", IsolatedNode(node))
        if batch is not None:
            if isinstance(node, BuiltinNode):
                raise ValueError(
                    f"batch= is for Python nodes with process_batch; {type(node).__name__} "
                    "runs in the Rust runtime"
                )
            node = cast("Node[_U]", BatchedNode(node, batch))
        if any(
            n is node
            or getattr(n, "inner", None) is node
            or getattr(getattr(n, "inner", None), "inner", None) is node
            for _, n in self._nodes
        ):
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
        if isinstance(retry, RetryPolicy):
            retry = retry.to_dict()
        if isinstance(circuit_breaker, CircuitBreaker):
            circuit_breaker = circuit_breaker.to_dict()
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
        if circuit_breaker is not None:
            if not isinstance(circuit_breaker, dict) or not set(circuit_breaker) <= _BREAKER_FIELDS:
                raise ValueError(
                    f"node '{chosen}': circuit_breaker must be a dict with keys among "
                    f"{', '.join(sorted(_BREAKER_FIELDS))}, got {circuit_breaker!r}"
                )
            policy["circuit_breaker"] = dict(circuit_breaker)
        if isolation == "process":
            policy["isolation"] = "process"
        if batch is not None:
            policy["batch"] = dict(cast(BatchedNode, node).policy)
        node.node_id = chosen
        self._nodes.append((chosen, node))
        if policy:
            self._policies[chosen] = policy
        self._version += 1
        return cast("Pipeline[_U]", self)

    def connect(self, upstream: Node[Any] | str, downstream: Node[Any] | str) -> Pipeline[Any]:
        """Connects two nodes (objects or ids). Once used, only explicit connections count.
        Returns the pipeline as ``Pipeline[Any]`` (the sinks are no longer the last node)."""
        a, b = self._id_of(upstream), self._id_of(downstream)
        if self._connections is None:
            self._connections = []
        self._connections.append((a, b))
        self._version += 1
        return self

    def retry_policy(self, node: Node[Any] | str) -> RetryPolicy | None:
        """The retry policy given to ``node`` (an object or id), defaults filled in; ``None``
        when it has none."""
        retry = self._policies.get(self._id_of(node), {}).get("retry")
        return None if retry is None else RetryPolicy(**retry)

    def circuit_breaker(self, node: Node[Any] | str) -> CircuitBreaker | None:
        """The circuit breaker given to ``node`` (an object or id), defaults filled in;
        ``None`` when it has none."""
        breaker = self._policies.get(self._id_of(node), {}).get("circuit_breaker")
        return None if breaker is None else CircuitBreaker(**breaker)

    def _id_of(self, node: Node[Any] | str) -> str:
        if isinstance(node, str):
            if node not in self.nodes:
                raise ValueError(f"no node '{node}' in this pipeline; ids are {list(self.nodes)}")
            return node
        for i, n in self._nodes:
            if n is node or getattr(n, "inner", None) is node:
                return i
        raise ValueError(f"{node!r} is not in this pipeline; add_node() it first")

    def _edges(self) -> list[tuple[str, str]]:
        if self._connections is not None:
            return list(self._connections)
        ids = [i for i, _ in self._nodes]
        return list(pairwise(ids))

    # ------------------------------------------------------------------ manifest

    def to_manifest(self, *, local: bool = False) -> dict[str, Any]:
        """The v1 manifest as a dict (every node's constructor arguments included).

        Constructor arguments must be JSON values to go into a manifest. ``local=True`` is the
        manifest of a local run, where your Python nodes are passed to the runtime as live
        objects: their arguments may be any Python object (a loaded model, say) and are left
        out when they are not JSON."""
        metadata: dict[str, Any] = {"name": self.name}
        if self.description:
            metadata["description"] = self.description
        if self.labels:
            metadata["labels"] = dict(self.labels)
        nodes = []
        for node_id, node in self._nodes:
            params = node.params
            bad = _first_non_json(params)
            if bad is not None:
                if local and not isinstance(node, BuiltinNode):
                    params = {}
                else:
                    name, value = bad
                    raise ManifestError(
                        f"node '{node_id}' ({type(node).__name__}): argument '{name}' "
                        f"({type(value).__name__}) cannot go into a manifest, which "
                        "serialize(), from_manifest, the CLI and remote runs need; use JSON "
                        "values (numbers, strings, lists, dicts) there. Local runs accept any "
                        "Python object."
                    )
            node_type = node.manifest_type()
            spec: dict[str, Any] = {"id": node_id, "node_type": node_type, "params": params}
            if not local and node_type.startswith("__main__:"):
                warnings.warn(
                    f"node '{node_id}' ({type(node).__name__}) is defined in the script being "
                    f"run (__main__): the manifest names it '{node_type}', which no "
                    "other process (the CLI, a server, a worker) can import; move the class to a "
                    "module (mynodes.py) and import it from there",
                    UserWarning,
                    stacklevel=3,
                )
            spec.update(self._policies.get(node_id, {}))
            if local:
                # A local run gets the node object, already isolated (IsolatedNode) and
                # batched (BatchedNode).
                spec.pop("isolation", None)
                spec.pop("batch", None)
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
    def from_manifest(cls, source: ManifestSource) -> Pipeline[Any]:
        """Rebuilds a pipeline from a manifest: JSON text, a dict, or a path to a file.

        Built-in node types become their classes; ``"module:Class"`` types are imported and
        called with the params as keyword arguments.
        """
        manifest = _load_manifest(source)
        if not _has_python_nodes(manifest):
            # Full validation first: every problem at once, with node ids and fields.
            _native.NativePipeline(json.dumps(manifest))
        else:
            _check_fields(manifest)
        meta = manifest.get("metadata") or {}
        p: Pipeline[Any] = cls(
            meta.get("name", "pipeline"),
            description=meta.get("description"),
            labels=meta.get("labels"),
        )
        for spec in manifest.get("nodes", []):
            node_type = spec["node_type"]
            params = spec.get("params") or {}
            node_cls = BUILTIN_TYPES.get(node_type) or _import_node_class(spec["id"], node_type)
            try:
                node = construct(node_cls, params)
            except TypeError as exc:
                raise ManifestError(f"node '{spec['id']}' ({node_type}): {exc}") from None
            p.add_node(
                node,
                spec["id"],
                retry=spec.get("retry"),
                timeout_ms=spec.get("timeout_ms"),
                circuit_breaker=spec.get("circuit_breaker"),
                isolation=spec.get("isolation"),
                batch=spec.get("batch"),
            )
        connections = manifest.get("connections") or []
        ids = [i for i, _ in p._nodes]
        edges = [(c["from"], c["to"]) for c in connections]
        if edges != list(pairwise(ids)):
            p._connections = edges
            p._version += 1
        return p

    # ------------------------------------------------------------------ running

    def _python_nodes(self) -> dict[str, Node[Any]]:
        return {i: n for i, n in self._nodes if not isinstance(n, BuiltinNode)}

    def _pipeline(self) -> Any:
        """The runtime's pipeline for the current graph (built when the graph changed)."""
        # Node params are fixed at construction, so the graph changes only through add_node,
        # connect, or the name/description.
        key = (self._version, self.name, self.description, tuple(sorted(self.labels.items())))
        with self._native_lock:
            if self._native_key != key:
                if not self._nodes:
                    raise ManifestError(
                        "invalid manifest: nodes: a pipeline needs at least one node"
                    )
                self._native = _native.NativePipeline(
                    json.dumps(self.to_manifest(local=True), default=jsonable),
                    self._python_nodes(),
                )
                self._native_key = key
            return self._native

    def validate(self) -> None:
        """Checks the pipeline as the runtime will; raises :class:`ManifestError` listing
        every problem."""
        self._pipeline()

    def run(
        self,
        data: Any,
        sample_rate: int | None = None,
        *,
        remote: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        dtype: str | None = None,
        progress: bool | Callable[[float, float | None], None] = False,
    ) -> OutT:
        """Runs the whole input through the pipeline.

        ``data``: a :class:`~remotemedia.Audio`, a numpy array (``(frames,)`` or
        ``(frames, channels)``, float32/float64/int16/int32) with ``sample_rate``, a path to an
        audio file (WAV, FLAC, MP3, OGG), or any value for pipelines of Python nodes.
        Contiguous arrays are not copied (do not modify them while the run is in progress).

        Returns the sink's output (an :class:`~remotemedia.Audio`, a list of
        :class:`~remotemedia.Segment` or of VAD events, or what a Python node returned), or a
        dict by sink id when there are several sinks; typed ``OutT`` (see the class's *Types*).

        A file is read in its own sample format (a 16-bit WAV or FLAC gives int16 samples on
        the +-32768 scale); ``dtype="float32"`` (or "float64", "int16", "int32", as soundfile
        names them) converts it on reading, floats on the [-1, 1] scale.

        With ``remote="host:port"`` the pipeline runs on that remotemedia server (same results;
        ``token`` or ``$REMOTEMEDIA_TOKEN`` is sent as a bearer token; ``timeout`` in seconds).

        ``progress=True`` (a file input, run locally) reads the file half a second at a time
        and shows how far it got on stderr; a callable gets ``(seconds_done, seconds_total)``
        (total None when the file does not say) after each block instead. The result is the
        same as without it (the blocks are a stream, whose joined output equals the whole run).
        """
        if progress:
            if remote is not None:
                raise ValueError("progress= is for local runs; a remote run reports nothing")
            if sample_rate is not None:
                raise ValueError("progress= reads a file, which has its own sample rate")
            report = progress if callable(progress) else _ProgressLine(self.name)
            outputs = self._pipeline().run_file(data, dtype, report)
            if isinstance(report, _ProgressLine):
                report.done()
            return self._result(outputs)
        if remote is not None:
            if dtype is not None:
                data, _ = _native.prepare(data, sample_rate, dtype)
            result: OutT = client_for(remote, token).run(self, data, sample_rate, timeout)
            return result
        pipeline = self._pipeline()
        data, rate = _native.prepare(data, sample_rate, dtype)
        return self._result(pipeline.run(data, rate), stacklevel=3)

    def _result(self, outputs: dict[str, Any], stacklevel: int = 3) -> OutT:
        """A run's ``{sink_id: output}`` as ``run`` returns it."""
        if not outputs:
            warnings.warn(
                f"pipeline '{self.name}' produced no output: sink(s) "
                f"{', '.join(self._pipeline().sink_ids)} emitted nothing over the whole run (a "
                "node whose process() and flush() return None emits nothing); returning {}",
                RuntimeWarning,
                stacklevel=stacklevel,
            )
        if len(outputs) == 1:
            only: OutT = next(iter(outputs.values()))
            return only
        return cast(OutT, outputs)

    async def arun(
        self,
        data: Any,
        sample_rate: int | None = None,
        *,
        remote: str | None = None,
        token: str | None = None,
        timeout: float | None = None,
        dtype: str | None = None,
        progress: bool | Callable[[float, float | None], None] = False,
    ) -> OutT:
        """:meth:`run` without blocking the event loop (the work runs on a worker thread);
        the same arguments."""
        return await asyncio.to_thread(
            self.run,
            data,
            sample_rate,
            remote=remote,
            token=token,
            timeout=timeout,
            dtype=dtype,
            progress=progress,
        )

    def run_files(
        self,
        paths: str | os.PathLike[str] | list[str | os.PathLike[str]],
        out_dir: str | os.PathLike[str],
        *,
        jobs: int | None = None,
        skip_existing: bool = False,
        audio_format: str = "wav",
        subtype: str | None = None,
        chunk_ms: int = 1000,
        progress: bool = False,
        compression_level: float | None = None,
    ) -> BatchResult:
        """Runs the pipeline over many files on ``jobs`` threads (default: one per core),
        streaming each file block by block (memory does not grow with a file's length).

        ``paths``: files, directories (searched recursively for .wav, .flac, .mp3, .ogg, .opus) and
        glob patterns (``"corpus/**/*.flac"``). Outputs go under ``out_dir`` with each file's
        path relative to its directory or pattern root kept (``corpus/a/b.flac`` ->
        ``out_dir/a/b.wav``); ``audio_format`` is "wav", "flac", "ogg" (Vorbis), "opus" or
        "mp3", ``subtype`` and ``compression_level`` as in :func:`remotemedia.write`; a pipeline with several sinks gets a directory per file.
        Outputs are written under a temporary name and renamed when the file is done, so with
        ``skip_existing=True`` an interrupted batch resumes where it stopped.

        A failing file (damaged, unreadable, a node error) is recorded and the batch goes on:
        check :attr:`BatchResult.failed` or call :meth:`BatchResult.raise_if_failed`. The same
        records are in ``out_dir/summary.jsonl``. ``progress=True`` shows one progress bar for
        the corpus on a terminal's stderr.

        Nodes must be built from the manifest (:meth:`serialize`): Python nodes need JSON
        arguments and an importable class.
        """
        if isinstance(paths, (str, os.PathLike)):
            paths = [paths]
        inputs = [os.fspath(p) for p in paths]
        if not inputs:
            raise ValueError("run_files: paths is empty; give files, directories or patterns")
        if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
            raise ValueError(f"run_files: jobs={jobs!r}; use an int >= 1, or None for one per core")
        self._pipeline()  # the same errors as run() for an invalid graph
        out = Path(out_dir)
        t0 = time.perf_counter()
        text = _native.run_files(
            self.serialize(indent=None),
            inputs,
            os.fspath(out),
            jobs=jobs,
            skip_existing=skip_existing,
            audio_format=audio_format,
            subtype=subtype,
            chunk_ms=chunk_ms,
            progress=progress,
            compression_level=compression_level,
        )
        return BatchResult._from_json(text, out, time.perf_counter() - t0)

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
    ) -> Session[OutT]:
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
        ``remote="host:port"`` the stream runs on that server. Each output's ``data`` is a
        piece of the sink's output (``OutT``: an ``Audio`` chunk, a list of segments or
        events).
        """
        if remote is not None:
            remote_session: Session[OutT] = client_for(remote, token).stream(
                self, sample_rate, channels, max_pending=max_pending, background=background
            )
            return remote_session
        return Session(
            self._pipeline().session(),
            sample_rate,
            channels,
            max_pending=max_pending,
            background=background,
        )

    def astream(
        self,
        sample_rate: int,
        channels: int = 1,
        *,
        max_pending: int = 4,
        remote: str | None = None,
        token: str | None = None,
    ) -> AsyncSession[OutT]:
        """The asyncio form of :meth:`stream`::

            async with pipeline.astream(sample_rate=16000) as session:
                for chunk in chunks:
                    await session.send(chunk)       # waits while max_pending are queued
                    for out in session.poll():      # whatever is ready
                        ...
                for out in await session.close():   # flush: the tail
                    ...

        Or a producer task that sends then ``await session.finish()``, with a consumer task
        that runs ``async for out in session`` (it ends once the stream has ended).
        ``await session.aclose()`` ends it cleanly (flushing); ``await session.abort()``
        discards.
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

    @property
    def metrics(self) -> RunMetrics:
        """Metrics of the last local run or stream as a :class:`~remotemedia.RunMetrics`
        (``.nodes``, ``.node(id)``, ``.to_dict()``, ``.to_json()``): the same data as
        :meth:`get_metrics`, typed. ``RuntimeError`` before the first run."""
        raw = self.get_metrics()
        if raw is None:
            raise RuntimeError(
                f"pipeline '{self.name}' has no metrics yet: run() or stream() it first"
            )
        return RunMetrics.from_dict(raw)

    def get_metrics(self) -> dict[str, Any] | None:
        """Metrics of the last run as a dict (:attr:`metrics` is the typed form): ``{"pipeline", "total_time_us", "total_time_ms",
        "total_memory_mb", "nodes": [{"node_id", "node_type", "runtime",
        "execution_time_us", "execution_time_ms", "calls", "memory_mb", "status",
        "retry_count", ...}]}``.

        ``memory_mb`` is the largest output one call of the node produced (the memory that
        output holds). ``total_memory_mb`` is the process's peak resident memory so far
        (``getrusage`` max RSS), not this run's own: a large earlier run raises it for every
        later one."""
        if self._native is None:
            return None
        text = self._native.metrics_json()
        if text is None:
            return None
        raw: dict[str, Any] = json.loads(text)
        nodes = dict(self._nodes)
        for entry in raw.get("nodes", []):
            node = nodes.get(entry.get("node_id"))
            if isinstance(node, BatchedNode):
                entry["batch"] = dict(node.batch_stats)
        return raw

    def get_trace(self) -> dict[str, Any] | None:
        """The last run as a Chrome trace-event document (open it in https://ui.perfetto.dev)."""
        if self._native is None:
            return None
        text = self._native.trace_json()
        return None if text is None else json.loads(text)

    def export_trace(self, path: str | os.PathLike[str]) -> None:
        """Writes :meth:`get_trace` to ``path``."""
        trace = self.get_trace()
        if trace is None:
            raise RuntimeError("no native run to trace yet; call run() first")
        Path(path).write_text(json.dumps(trace))

    # ------------------------------------------------------------------ pictures

    def _draw(self, fmt: str) -> str:
        # Python nodes' non-JSON arguments (a loaded model) are shown by their repr.
        manifest = json.dumps(self.to_manifest(local=True), default=repr)
        notes: dict[str, str] | None = None
        metrics = self.get_metrics()
        if metrics is not None:
            notes = {n["node_id"]: _time_note(n) for n in metrics.get("nodes", [])}
        return str(_native.render_graph(manifest, fmt, notes))

    def to_mermaid(self) -> str:
        """The pipeline as a Mermaid ``flowchart`` (GitHub Markdown and many docs tools render
        it): each node with its type and parameters, native nodes blue, Python nodes yellow,
        sinks with a thick border; after a run, each node's time."""
        return self._draw("mermaid")

    def to_dot(self) -> str:
        """The pipeline as Graphviz DOT text (``dot -Tpng``), drawn as :meth:`to_mermaid`."""
        return self._draw("dot")

    def to_svg(self) -> str:
        """The pipeline as a standalone SVG picture, drawn by remotemedia itself (no Graphviz
        needed); what Jupyter shows for a pipeline."""
        return self._draw("svg")

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def _repr_html_(self) -> str:
        n_edges = len(self._edges())
        return (
            '<div class="remotemedia-pipeline" style="font-family: sans-serif; font-size: 12px">'
            f"<div><b>Pipeline</b> {html.escape(repr(self.name))}: {len(self._nodes)} node(s), "
            f"{n_edges} connection(s)</div>{self.to_svg()}</div>"
        )

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, nodes={[i for i, _ in self._nodes]})"


def _time_note(node: dict[str, Any]) -> str:
    """A node's time in the last run, for pictures: "37 us, 2 calls", "12.5 ms, 40 calls"."""
    us = int(node.get("execution_time_us", 0))
    calls = int(node.get("calls", 0))
    time = f"{us} us" if us < 1000 else f"{us / 1000:.1f} ms"
    return f"{time}, {calls} call{'s' if calls != 1 else ''}"


def _first_non_json(params: dict[str, Any]) -> tuple[str, Any] | None:
    """The first parameter that JSON cannot hold, as (name, value)."""
    for name, value in params.items():
        try:
            json.dumps(value, default=jsonable, allow_nan=False)
        except (TypeError, ValueError):
            return name, value
    return None


def _load_manifest(source: ManifestSource) -> dict[str, Any]:
    """A manifest as a dict from JSON text, a dict or a file; malformed JSON is a
    :class:`ManifestError` that says where.

    Text starting with ``{`` or ``[`` (after a byte-order mark and whitespace) is JSON, never a
    path; a file is read up to the runtime's manifest size limit; a key given twice in one
    object is refused (``json`` would keep the last silently), as the runtime does.
    """
    if isinstance(source, dict):
        return source
    limit = _native.MAX_MANIFEST_BYTES
    text = str(source).removeprefix("\ufeff")
    if isinstance(source, os.PathLike) or text.lstrip()[:1] not in ("{", "["):
        text = _read_manifest_file(source, text, limit)
    if len(text) > limit:
        raise ManifestError(
            f"invalid manifest: {len(text)} characters; the limit is {limit} bytes (1 MiB)"
        )
    try:
        manifest = json.loads(text, object_pairs_hook=_refuse_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ManifestError(
            f"invalid manifest: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:
        raise ManifestError("invalid manifest: JSON nested too deeply") from None
    if not isinstance(manifest, dict):
        raise ManifestError(
            'invalid manifest: expected a JSON object with "version", "nodes" and '
            f'"connections", got {type(manifest).__name__}'
        )
    if not isinstance(manifest.get("nodes", []), list) or not all(
        isinstance(n, dict) and isinstance(n.get("node_type"), str) and isinstance(n.get("id"), str)
        for n in manifest.get("nodes", [])
    ):
        # Let the runtime name every structural problem with its path.
        _native.NativePipeline(json.dumps(manifest))
    return manifest


def _read_manifest_file(source: ManifestSource, text: str, limit: int) -> str:
    """The text of the manifest file `source` names (BOM dropped), at most `limit` bytes."""
    shown = _escaped(text)
    if "\n" in text or "\0" in text or len(text) > 4096:
        raise ManifestError(f"invalid manifest: {shown} is neither manifest JSON nor a file")
    try:
        path = Path(source)  # type: ignore[arg-type]
        if not path.exists() or path.is_dir():
            raise ManifestError(f"invalid manifest: {shown} is neither manifest JSON nor a file")
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise ManifestError(f"invalid manifest: cannot read {shown}: {exc.strerror}") from None
    if len(data) > limit:
        raise ManifestError(f"invalid manifest: {shown} is over the limit of {limit} bytes (1 MiB)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"invalid manifest: {shown} is not UTF-8 text (byte {exc.start})"
        ) from None


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ManifestError(
                f"invalid manifest: the key {_escaped(key)} appears twice in one object; "
                "give each key once"
            )
        out[key] = value
    return out


def _escaped(text: str, keep: int = 64) -> str:
    """`text` quoted with control characters escaped, cut after `keep` characters."""
    cut = text[:keep]
    return repr(cut) + (f"... ({len(text)} characters)" if len(text) > keep else "")


def _has_python_nodes(manifest: dict[str, Any]) -> bool:
    return any(n.get("node_type") not in BUILTIN_TYPES for n in manifest.get("nodes", []))


def _schema_fields() -> tuple[list[str], list[str]]:
    """The manifest's top-level and node fields, from the runtime's schema."""
    schema = json.loads(_native.manifest_schema_json())
    return list(schema["properties"]), list(schema["$defs"]["NodeSpec"]["properties"])


def _check_fields(manifest: dict[str, Any]) -> None:
    """Refuses unknown fields (with a suggestion) in a manifest with Python nodes, which the
    runtime's full validation cannot check before the classes are imported: a misspelt
    ``"parms"`` must not silently become a node with default parameters."""
    top, node_fields = _schema_fields()
    problems = []

    def unknown(where: str, key: str, valid: list[str]) -> str:
        best = _native.closest(key, valid)
        hint = f"; did you mean '{best}'?" if best else ""
        return f"{where}{key}: unknown field{hint} (valid: {', '.join(valid)})"

    problems += [unknown("", k, top) for k in manifest if k not in top]
    for i, spec in enumerate(manifest.get("nodes") or []):
        if isinstance(spec, dict):
            where = f"node '{spec.get('id', i)}': "
            problems += [unknown(where, k, node_fields) for k in spec if k not in node_fields]
    if problems:
        raise ManifestError("invalid manifest: " + "; ".join(problems))


def _import_node_class(node_id: str, node_type: str) -> type[Node]:
    import importlib

    if ":" not in node_type:
        best = _native.closest(node_type, sorted(BUILTIN_TYPES))
        hint = f"did you mean '{best}'? " if best else ""
        raise ManifestError(
            f"invalid manifest: node '{node_id}': node_type: unknown node type {node_type[:64]!r}; "
            f"{hint}known types: {', '.join(sorted(BUILTIN_TYPES))}, or a Python class as "
            "'module:Class'"
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
            f"invalid manifest: node '{node_id}': node_type: '{node_type}' is not a "
            "remotemedia.Node subclass"
        )
    return obj


class _ProgressLine:
    """``progress=True``: one line on stderr, redrawn at most ten times a second on a terminal,
    else a line per tenth of the file."""

    def __init__(self, name: str) -> None:
        import sys

        self.name, self.out = name, sys.stderr
        self.tty = self.out.isatty()
        self.last, self.shown_tenth, self.t0 = 0.0, -1, time.monotonic()

    def __call__(self, done: float, total: float | None) -> None:
        now = time.monotonic()
        if total:
            tenth = int(10 * done / total)
            text = f"{self.name}: {done:.1f} / {total:.1f} s ({100 * done / total:.0f}%)"
        else:
            tenth, text = int(done // 60), f"{self.name}: {done:.1f} s"
        if self.tty and now - self.last >= 0.1:
            self.out.write(f"\r{text}  ")
            self.out.flush()
            self.last = now
        elif not self.tty and tenth > self.shown_tenth:
            self.out.write(text + "\n")
            self.shown_tenth = tenth

    def done(self) -> None:
        if self.tty:
            self.out.write(f"\r{self.name}: done in {time.monotonic() - self.t0:.1f} s\n")
            self.out.flush()
