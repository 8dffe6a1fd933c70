"""Batching across streams: ``process`` calls of many sessions into one ``process_batch`` call.

A node class that defines ``process_batch(self, inputs: list) -> list`` (a model that scores many
inputs at once faster than one at a time: a GPU, onnxruntime, vectorised numpy) can be added
with ``batch={"max_size": N, "max_delay_ms": D}``. Its ``process`` calls made at the same time
by different sessions (pipelines, server streams) are then gathered: the first call of a batch
waits until ``N`` calls are queued or ``D`` ms have passed since it arrived, then calls
``process_batch`` once with all of them, and each caller gets its own result, in order.

Nodes batch together when they are of the same class with the same constructor arguments and
the same batch settings. ``process_batch`` runs on the node of one of the callers (the one whose
call is first in the queue when the batch is taken), so it must not depend on per-stream state:
a batched node is a model, the same for every stream (Triton's dynamic batcher makes the same
assumption). ``process_batch([x])[0]`` must equal ``process(x)``; a batch of one still goes
through ``process_batch``, so every call sees the same code. ``initialize``, ``flush`` and
``cleanup`` are called on each session's own node as usual.

Errors: an exception from ``process_batch`` (or a result list of the wrong length) is raised in
every caller of that batch; a caller interrupted while it waits (a timeout, a cancelled stream)
leaves the queue and the others carry on. Within one session calls never overlap (a session
sends its next chunk after the last returned), so per-session order is kept.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
import weakref
from collections import Counter, deque
from typing import Any, TypedDict

from remotemedia.nodes.base import Node

__all__ = ["BatchPolicy", "BatchStats", "BatchedNode", "check_policy"]

#: Upper bounds of the settings (the manifest schema says the same).
MAX_BATCH_SIZE = 4096
MAX_DELAY_MS = 10_000.0


class BatchPolicy(TypedDict):
    """``batch=`` of :meth:`Pipeline.add_node` and the manifest's ``"batch"``."""

    max_size: int
    max_delay_ms: float


class BatchStats(TypedDict):
    """What a batched node's batches were (:attr:`BatchedNode.batch_stats`)."""

    batches: int
    calls: int
    mean_size: float
    sizes: dict[int, int]
    mean_queue_delay_ms: float
    max_queue_delay_ms: float


def check_policy(node_name: str, batch: Any) -> BatchPolicy:
    """``batch`` as a checked policy; ``ValueError``/``TypeError`` naming the field otherwise."""
    if not isinstance(batch, dict):
        raise TypeError(
            f"{node_name}: batch must be a dict like {{'max_size': 16, 'max_delay_ms': 5}}, "
            f"got {type(batch).__name__}"
        )
    unknown = set(batch) - {"max_size", "max_delay_ms"}
    if unknown:
        raise ValueError(
            f"{node_name}: unknown batch setting(s) {sorted(unknown)}; "
            "expected max_size and max_delay_ms"
        )
    size = batch.get("max_size")
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH_SIZE:
        raise ValueError(
            f"{node_name}: batch.max_size is {size!r}; expected an integer in "
            f"1..={MAX_BATCH_SIZE} (the most calls one process_batch call takes)"
        )
    delay = batch.get("max_delay_ms", 0.0)
    if (
        isinstance(delay, bool)
        or not isinstance(delay, (int, float))
        or not 0.0 <= float(delay) <= MAX_DELAY_MS
    ):
        raise ValueError(
            f"{node_name}: batch.max_delay_ms is {delay!r}; expected a number of "
            f"milliseconds in 0..={MAX_DELAY_MS:g} (how long a call may wait for others)"
        )
    return {"max_size": size, "max_delay_ms": float(delay)}


class _Call:
    __slots__ = ("arrived", "data", "error", "result", "state")

    def __init__(self, data: Any) -> None:
        self.data = data
        self.arrived = time.monotonic()
        self.state = "queued"  # -> "taken" -> "done"
        self.result: Any = None
        self.error: BaseException | None = None


class _Batcher:
    """The queue shared by every node of one (class, params, policy)."""

    def __init__(self, max_size: int, max_delay_ms: float) -> None:
        self.max_size = max_size
        self.max_delay = max_delay_ms / 1000.0
        self.cond = threading.Condition()
        self.queue: deque[_Call] = deque()
        self.leading = False
        self.sizes: Counter[int] = Counter()
        self.delay_total = 0.0
        self.delay_max = 0.0

    def submit(self, node: Any, data: Any) -> Any:
        call = _Call(data)
        with self.cond:
            self.queue.append(call)
            self.cond.notify_all()
            try:
                while call.state != "done":
                    if not self.leading and call.state == "queued":
                        self._lead(node)
                    else:
                        # Short waits: an interrupt (CallInterrupted) is seen between them.
                        self.cond.wait(0.05)
            finally:
                if call.state == "queued":
                    self.queue.remove(call)  # interrupted while waiting: leave the queue
        if call.error is not None:
            raise call.error
        return call.result

    def _lead(self, node: Any) -> None:
        """Gathers a batch (called and returns holding the lock) and runs it without it."""
        self.leading = True
        try:
            deadline = self.queue[0].arrived + self.max_delay
            while len(self.queue) < self.max_size:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(min(left, 0.05))
            batch = [self.queue.popleft() for _ in range(min(self.max_size, len(self.queue)))]
            now = time.monotonic()
            for c in batch:
                c.state = "taken"
            self.sizes[len(batch)] += 1
            waited = now - batch[0].arrived
            self.delay_total += waited
            self.delay_max = max(self.delay_max, waited)
            self.cond.release()
            try:
                self._run(node, batch)
            finally:
                self.cond.acquire()
                for c in batch:
                    if c.state != "done":
                        c.error = c.error or RuntimeError(
                            "the process_batch call this input was in was interrupted"
                        )
                        c.state = "done"
        finally:
            self.leading = False
            self.cond.notify_all()

    @staticmethod
    def _run(node: Any, batch: list[_Call]) -> None:
        name = type(node).__name__
        try:
            results = node.process_batch([c.data for c in batch])
            if not isinstance(results, (list, tuple)) or len(results) != len(batch):
                got = len(results) if isinstance(results, (list, tuple)) else type(results).__name__
                raise TypeError(
                    f"{name}.process_batch returned {got} result(s) for {len(batch)} inputs; "
                    "it must return a list with one result per input, in order"
                )
        except Exception as exc:
            for c in batch:
                c.error, c.state = exc, "done"
            return
        for c, r in zip(batch, results, strict=True):
            c.result, c.state = r, "done"

    def stats(self) -> BatchStats:
        with self.cond:
            batches = sum(self.sizes.values())
            calls = sum(k * v for k, v in self.sizes.items())
            return {
                "batches": batches,
                "calls": calls,
                "mean_size": calls / batches if batches else 0.0,
                "sizes": dict(sorted(self.sizes.items())),
                "mean_queue_delay_ms": 1000.0 * self.delay_total / batches if batches else 0.0,
                "max_queue_delay_ms": 1000.0 * self.delay_max,
            }


#: Batchers by (class, params JSON, max_size, max_delay_ms); one lives while a node uses it.
_BATCHERS: weakref.WeakValueDictionary[tuple[Any, ...], _Batcher] = weakref.WeakValueDictionary()
_BATCHERS_LOCK = threading.Lock()


def _batcher_for(key: tuple[Any, ...], policy: BatchPolicy) -> _Batcher:
    with _BATCHERS_LOCK:
        b = _BATCHERS.get(key)
        if b is None:
            b = _Batcher(policy["max_size"], policy["max_delay_ms"])
            _BATCHERS[key] = b
        return b


class BatchedNode(Node[Any]):
    """A node whose ``process`` calls are batched with those of equal nodes (see the module).

    ``node`` is the user's node (or an :class:`~remotemedia.isolation.IsolatedNode` of it: the
    batch then crosses to its worker in one call). Built by ``Pipeline.add_node(node,
    batch=...)`` and by the runtime for a manifest's ``"batch"``."""

    def __init__(self, node: Node[Any], batch: Any) -> None:
        inner_type = getattr(node, "inner_type", type(node))
        name = inner_type.__name__
        fn = getattr(inner_type, "process_batch", None)
        if not callable(fn):
            raise TypeError(
                f"{name} has no process_batch(self, inputs) method; batch= needs one (it "
                "takes a list of inputs and returns a list of results, one per input)"
            )
        if inspect.iscoroutinefunction(fn):
            raise TypeError(f"{name}.process_batch must be a plain def, not async def")
        self.policy = check_policy(name, batch)
        self.inner = node
        self.node_id = node.node_id
        params = json.dumps(node.params, sort_keys=True, default=repr)
        key = (inner_type, params, self.policy["max_size"], self.policy["max_delay_ms"])
        self._batcher = _batcher_for(key, self.policy)

    # The manifest sees the wrapped node (its type and params) plus "batch".
    def manifest_type(self) -> str:  # type: ignore[override]
        return self.inner.manifest_type()

    @property
    def params(self) -> dict[str, Any]:
        return self.inner.params

    def default_id(self) -> str:
        return self.inner.default_id()

    def __repr__(self) -> str:
        return f"{self.inner!r} [batch={self.policy}]"

    @property
    def batch_stats(self) -> BatchStats:
        """Batches run so far by every node sharing this node's queue: how many, their sizes,
        and how long their first call waited."""
        return self._batcher.stats()

    def initialize(self) -> None:
        self.inner.initialize()

    def process(self, data: Any) -> Any:
        return self._batcher.submit(self.inner, data)

    def flush(self) -> Any:
        return self.inner.flush()

    def cleanup(self) -> None:
        self.inner.cleanup()
