"""The pure-Python executor, used when ``REMOTEMEDIA_RUNTIME=python`` or without the native
module: same graph semantics as the Rust executor (topological order, one step per chunk plus
a flush, fan-in dicts keyed by upstream id, retries with exponential backoff), running the
numpy reference nodes. It has no circuit breaker and runs branches one after another."""

from __future__ import annotations

import asyncio
import heapq
import inspect
import time
from typing import Any

import numpy as np

from remotemedia._types import Audio
from remotemedia.errors import ManifestError, NodeError, RetryableError
from remotemedia.nodes.audio import BuiltinNode
from remotemedia.nodes.base import Node

_RETRYABLE = (TimeoutError, ConnectionError, RetryableError)


def topological_order(ids: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """Kahn's algorithm, ties broken by manifest order; raises ManifestError on a cycle."""
    index = {n: i for i, n in enumerate(ids)}
    for a, b in edges:
        for end in (a, b):
            if end not in index:
                raise ManifestError(f"invalid manifest: connections: no node has id '{end}'")
    indegree = {n: 0 for n in ids}
    for _, b in edges:
        indegree[b] += 1
    ready = [index[n] for n in ids if indegree[n] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = ids[heapq.heappop(ready)]
        order.append(n)
        for a, b in edges:
            if a == n:
                indegree[b] -= 1
                if indegree[b] == 0:
                    heapq.heappush(ready, index[b])
    if len(order) != len(ids):
        left = [n for n in ids if n not in order]
        raise ManifestError(
            f"invalid manifest: connections: cycle detected among {', '.join(left)}"
        )
    return order


def _call(fn: Any, *args: Any) -> Any:
    result = fn(*args)
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    return result


def _join(values: list[Any]) -> Any:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    if all(isinstance(v, Audio) for v in values):
        audio = [v for v in values if v.frames] or values[:1]
        if len(audio) == 1:
            return audio[0]
        return Audio(np.concatenate([np.asarray(a) for a in audio]), audio[0].sample_rate or 0)
    if all(isinstance(v, list) for v in values):
        return [x for v in values for x in v]
    return values


class PythonExecutor:
    """Runs a manifest's graph with Python objects (reference engines for built-in nodes)."""

    def __init__(self, manifest: dict[str, Any], nodes: dict[str, Node]) -> None:
        self.name = manifest.get("metadata", {}).get("name", "pipeline")
        self.specs = {n["id"]: n for n in manifest["nodes"]}
        self.ids = [n["id"] for n in manifest["nodes"]]
        self.edges = [(c["from"], c["to"]) for c in manifest.get("connections", [])]
        self.order = topological_order(self.ids, self.edges)
        self.upstream = {n: [a for a, b in self.edges if b == n] for n in self.ids}
        self.downstream = {n: [b for a, b in self.edges if a == n] for n in self.ids}
        self.nodes = nodes
        self.metrics: dict[str, Any] | None = None

    def _engine(self, node_id: str) -> Any:
        node = self.nodes[node_id]
        if isinstance(node, BuiltinNode):
            if node.require_native:
                raise ManifestError(
                    f"node '{node_id}' ({type(node).__name__}) requires the native runtime; "
                    "unset REMOTEMEDIA_RUNTIME=python"
                )
            return node._reference()
        return node

    def start(self) -> None:
        """Begins a stream: fresh engines, ``initialize()`` on Python nodes."""
        self._t0 = time.perf_counter()
        self._engines = {n: self._engine(n) for n in self.ids}
        self._stats = {
            n: {"time": 0.0, "calls": 0, "retries": 0, "error": None, "max": 0.0} for n in self.ids
        }
        self._chunks = 0
        self._open = True
        for n in self.ids:
            if isinstance(self._engines[n], Node):
                _call(self._engines[n].initialize)

    def step(self, data: Any, flush: bool) -> list[tuple[str, Any, int | None]]:
        """One chunk (or the final flush when ``flush``); returns ``[(sink_id, value, None)]``."""
        emitted: dict[str, list[Any]] = {}
        try:
            for n in self.order:
                ups = self.upstream[n]
                if not ups:
                    events = [] if flush else [data]
                elif len(ups) == 1:
                    events = emitted[ups[0]]
                else:
                    joined = {u: _join(emitted[u]) for u in ups if emitted[u]}
                    events = [joined] if joined else []
                out = []
                for ev in events:
                    r = self._attempt(n, self._engines[n].process, (ev,), self._stats[n])
                    if r is not None:
                        out.append(r)
                if flush:
                    r = self._attempt(n, self._engines[n].flush, (), self._stats[n])
                    if r is not None:
                        out.append(r)
                emitted[n] = out
        except BaseException:
            self.stop()
            raise
        if not flush:
            self._chunks += 1
        sinks = [n for n in self.ids if not self.downstream[n]]
        return [(n, v, None) for n in sinks for v in emitted[n]]

    def stop(self) -> None:
        """Ends the stream: ``cleanup()`` on Python nodes, metrics."""
        if not getattr(self, "_open", False):
            return
        self._open = False
        for n in self.ids:
            if isinstance(self._engines[n], Node):
                try:
                    _call(self._engines[n].cleanup)
                except Exception as exc:
                    print(f"warning: cleanup() of node '{n}' raised {exc!r}")
        self.metrics = self._metrics(self._stats, time.perf_counter() - self._t0)
        self.metrics["chunks"] = self._chunks

    def run(self, data: Any) -> dict[str, Any]:
        """The whole input as one chunk, then the flush; returns ``{sink_id: output}``."""
        self.start()
        outputs: dict[str, list[Any]] = {}
        for flush in (False, True):
            for n, v, _ in self.step(data, flush):
                outputs.setdefault(n, []).append(v)
        self.stop()
        return {n: _join(vs) for n, vs in outputs.items()}

    # The streaming-backend interface used by remotemedia.streaming.Session.
    def push(self, chunk: Any, sample_rate: int | None = None) -> list[tuple[str, Any, int | None]]:
        if isinstance(chunk, np.ndarray) and not isinstance(chunk, Audio):
            chunk = Audio(chunk, sample_rate or 0)
        return self.step(chunk, flush=False)

    def finish(self) -> list[tuple[str, Any, int | None]]:
        out = self.step(None, flush=True)
        self.stop()
        return out

    def abort(self) -> None:
        self.stop()

    def metrics_json(self) -> str:
        import json

        return json.dumps(self.metrics)

    def _attempt(self, node_id: str, fn: Any, args: tuple[Any, ...], st: dict[str, Any]) -> Any:
        retry = self.specs[node_id].get("retry") or {}
        max_attempts = retry.get("max_attempts", 3)
        delay = retry.get("initial_delay_ms", 100) / 1000.0
        cap = retry.get("max_delay_ms", 1600) / 1000.0
        node_type = self.specs[node_id]["node_type"]
        attempt = 0
        while True:
            attempt += 1
            t = time.perf_counter()
            try:
                result = _call(fn, *args)
                ok = True
            except Exception as exc:
                ok = False
                error = exc
            dt = time.perf_counter() - t
            st["time"] += dt
            st["max"] = max(st["max"], dt)
            st["calls"] += 1
            if attempt > 1:
                st["retries"] += 1
            if ok:
                st["error"] = None
                return result
            st["error"] = f"{type(error).__name__}: {error}"
            if isinstance(error, _RETRYABLE) and attempt < max_attempts:
                time.sleep(min(delay * 2 ** (attempt - 1), cap))
                continue
            if isinstance(self.nodes[node_id], BuiltinNode):
                raise NodeError(f"node '{node_id}' ({node_type}) failed: {error}") from error
            note = f"raised in remotemedia node '{node_id}' ({node_type})"
            if attempt > 1:
                note += f" after {attempt} attempts"
            if hasattr(error, "add_note"):
                error.add_note(note)
            error.remotemedia_node_id = node_id  # type: ignore[attr-defined]
            raise error

    def _metrics(self, stats: dict[str, dict[str, Any]], total: float) -> dict[str, Any]:
        nodes = []
        for n in self.ids:
            st = stats[n]
            if st["error"]:
                status: dict[str, Any] = {"state": "failed", "error": st["error"]}
            elif st["calls"] == 0:
                status = {"state": "skipped", "reason": "never called: no input reached it"}
            else:
                status = {"state": "success"}
            us = int(st["time"] * 1e6)
            nodes.append(
                {
                    "node_id": n,
                    "node_type": self.specs[n]["node_type"],
                    "runtime": "python",
                    "execution_time_us": us,
                    "execution_time_ms": us // 1000,
                    "calls": st["calls"],
                    "max_call_us": int(st["max"] * 1e6),
                    "memory_mb": 0.0,
                    "status": status,
                    "retry_count": st["retries"],
                }
            )
        return {
            "pipeline": self.name,
            "total_time_us": int(total * 1e6),
            "total_time_ms": int(total * 1e3),
            "total_memory_mb": None,
            "chunks": getattr(self, "_chunks", 1),
            "trace_events_dropped": 0,
            "nodes": nodes,
        }
