"""Python nodes in a worker process of their own (``add_node(node, isolation="process")``).

A node that crashes its process (a segfault in a C extension, ``os._exit``, the OOM killer)
takes only its worker down: the call fails with :class:`WorkerCrashed` naming the node, the
signal or exit status and the call, and the next call starts a new worker (after a back-off
when it keeps crashing: 0.1 s doubling to 5 s). A call that is interrupted (its ``timeout_ms``,
a cancelled stream) kills the worker, so a node blocked in C is stopped too, which the
in-process path cannot do. Workers run in parallel with each other and with the caller, so
Python nodes of several pipelines or streams use several cores.

How a call crosses: the input audio is copied once into shared memory
(``multiprocessing.shared_memory``); in the worker the node's ``Audio`` is a read-only view of
it (no copy); audio the node returns is copied once into shared memory by the worker and once
out of it by the caller. Anything else (segments, events, dicts of several inputs) is pickled
over a pipe. The node is built in the worker from its class and its recorded constructor
arguments (``node.params``): the class must be importable there, and what ``__init__`` sets up
(a model) lives in the worker, for the node's life; ``initialize``/``flush``/``cleanup`` run
there too. Workers are started with ``spawn`` (never ``fork``: the runtime has threads); when
a node object goes, its worker is kept idle (up to 4 per node) for the next instance of the
same class and params (a server forks its pipeline for every call).

Memory: ``IsolatedNode(..., memory_limit_mb=N)``, or ``REMOTEMEDIA_WORKER_MEMORY_MB=N`` in the
environment (for every worker, e.g. a server's), caps a worker's data memory (``RLIMIT_DATA``:
heap and anonymous mappings, so numpy arrays and model weights; about 100 MB is the
interpreter's own). An allocation past it raises ``MemoryError`` in the node, naming the limit,
instead of the OOM killer taking the machine's largest process (a server); the worker and its
state stay for the next call.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import inspect
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.shared_memory import SharedMemory
from typing import Any

import numpy as np

from remotemedia._native import RemoteMediaError
from remotemedia._types import Audio
from remotemedia.nodes.base import Node, construct

__all__ = ["IsolatedNode", "WorkerCrashed"]

#: How often a waiting caller checks that its worker is alive.
_POLL_S = 0.05
#: Back-off before restarting a worker that crashed: 0.1 s doubling to 5 s.
_BACKOFF_FIRST_S, _BACKOFF_MAX_S = 0.1, 5.0
#: How long ``cleanup`` waits for a worker to exit before killing it.
_EXIT_WAIT_S = 2.0
#: The environment variable that sets every worker's memory limit, in MiB.
MEMORY_ENV = "REMOTEMEDIA_WORKER_MEMORY_MB"


def _env_memory_limit() -> int | None:
    text = os.environ.get(MEMORY_ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MEMORY_ENV}={text!r}: expected a whole number of MiB, at least 1")
    return int(text)


class WorkerCrashed(RemoteMediaError):
    """The worker process of a node isolated with ``isolation="process"`` died during a call
    (a signal, ``os._exit``, the OOM killer). Its next call starts a new worker."""


class IsolatedNode(Node[Any]):
    """Runs ``node`` (its class, rebuilt from its constructor arguments) in a worker process.
    Made by ``Pipeline.add_node(node, isolation="process")``."""

    def __init__(
        self,
        node: Node[Any] | None = None,
        *,
        node_class: type[Node[Any]] | None = None,
        params: dict[str, Any] | None = None,
        memory_limit_mb: int | None = None,
    ) -> None:
        # From a node object (Pipeline.add_node), or from its class and manifest params (a
        # manifest run by the CLI or the server: the node is then built in the worker only).
        if node is not None:
            self.inner: Node[Any] | None = node
            self.inner_type: type[Node[Any]] = type(node)
            self.inner_params = node.params
            self.node_id = node.node_id
        elif node_class is not None:
            self.inner = None
            self.inner_type = node_class
            self.inner_params = dict(params or {})
        else:
            raise TypeError("IsolatedNode needs a node, or node_class and params")
        if memory_limit_mb is not None and (
            isinstance(memory_limit_mb, bool)
            or not isinstance(memory_limit_mb, int)
            or memory_limit_mb < 1
        ):
            raise ValueError(
                f"memory_limit_mb={memory_limit_mb!r}: expected a whole number of MiB, at least 1"
            )
        self.memory_limit_mb = memory_limit_mb
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Connection | None = None
        self._io: _CallerIO | None = None
        self._calls = 0
        self._crashes = 0
        self._next_start = 0.0

    # The manifest sees the wrapped node (its type and params) plus "isolation".
    def manifest_type(self) -> str:  # type: ignore[override]
        return self.inner_type.manifest_type()

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.inner_params)

    def default_id(self) -> str:
        return self.inner_type.__new__(self.inner_type).default_id()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.inner_params.items())
        return f"{self.inner_type.__name__}({args}) [isolation='process']"

    # ---------------------------------------------------------------- the node's methods

    # A method the node's class does not override is Node's no-op: no round trip for it.

    def _overrides(self, method: str) -> bool:
        return getattr(self.inner_type, method) is not getattr(Node, method)

    def initialize(self) -> None:
        if self._overrides("initialize"):
            self._call("initialize", None)

    def process(self, data: Any) -> Any:
        self._calls += 1
        return self._call("process", data)

    def process_batch(self, inputs: list[Any]) -> Any:
        """The node's ``process_batch``, in the worker (inputs and results are pickled)."""
        self._calls += 1
        return self._call("process_batch", list(inputs))

    def flush(self) -> Any:
        return self._call("flush", None) if self._overrides("flush") else None

    def cleanup(self) -> None:
        # The node's cleanup runs in its worker; the worker stays for the next run (as an
        # in-process node object does), until close() or the node is garbage-collected.
        if not self._overrides("cleanup"):
            return
        with self._lock:
            if self._proc is not None:
                self._request("cleanup", None)

    def close(self) -> None:
        """Stops the worker now (it stops with the node object or the interpreter anyway)."""
        with self._lock:
            self._stop()

    # ---------------------------------------------------------------- the caller's side

    def _name(self) -> str:
        # The type as the manifest names it (a server's allowlisted name, when it built us).
        node_type = getattr(self, "registered_type", None) or self.manifest_type()
        return f"node '{self.node_id or self.default_id()}' ({node_type})"

    def _limit(self) -> int | None:
        return self.memory_limit_mb if self.memory_limit_mb is not None else _env_memory_limit()

    def _pool_key(self) -> _PoolKey:
        params = json.dumps(self.inner_params, sort_keys=True, default=repr)
        return (self.inner_type, params, self._limit())

    def _start(self) -> None:
        wait = self._next_start - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        key = self._pool_key()
        # A worker of the same node (class and params) that an earlier instance left idle: a
        # server forks its pipeline per call, and each fork would otherwise start a worker.
        while True:
            with _IDLE_LOCK:
                idle = _IDLE.get(key)
                taken = idle.pop() if idle else None
            if taken is None:
                break
            proc, conn, io = taken
            if proc.is_alive():
                self._proc, self._conn, self._io = proc, conn, io
                weakref.finalize(self, _release, key, proc, conn, io)
                return
            _reap(proc, conn, io)
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_worker_main,
            args=(child, self.inner_type, self.inner_params, self._limit()),
            name=f"remotemedia-node-{self.node_id or self.default_id()}",
            daemon=True,
        )
        with _main_not_rerun():
            proc.start()
        child.close()
        io = _CallerIO()
        self._proc, self._conn, self._io = proc, parent, io
        # When this object goes, its worker (with its shared memory) is kept idle for the next
        # instance of the same node, or ends (its pipe closes, the worker's recv ends).
        weakref.finalize(self, _release, key, proc, parent, io)
        # The worker says whether it could build the node.
        try:
            kind, payload, _ = self._receive("start")
        except BaseException:
            self._stop(kill=True)
            raise
        if kind == "error":
            self._stop(kill=True)
            raise payload

    def _stop(self, kill: bool = False) -> None:
        proc, conn, io = self._proc, self._conn, self._io
        self._proc, self._conn, self._io = None, None, None
        if conn is not None:
            conn.close()
        if proc is not None:
            if kill:
                proc.kill()
            proc.join(_EXIT_WAIT_S)
            if proc.is_alive():
                proc.kill()
                proc.join()
        if io is not None:
            io.free()

    def _call(self, method: str, data: Any) -> Any:
        with self._lock:
            if self._proc is None:
                self._start()
            return self._request(method, data)

    def _request(self, method: str, data: Any) -> Any:
        assert self._conn is not None and self._io is not None
        io = self._io
        try:
            if isinstance(data, np.ndarray) and data.dtype != object:
                self._conn.send((method, "audio", io.inp.put(data)))
            else:
                self._conn.send((method, "pickle", data))
            kind, payload, kept = self._receive(f"{method}()")
            if kept:
                # The node keeps views of its input: that segment is its now (the worker
                # frees it when they go); the next input goes into a new one.
                io.inp.drop()
            result = io.out.copy_out(payload) if kind == "audio" else payload
        except BaseException:
            # Interrupted (a timeout, a cancelled stream), crashed, or the pipe failed: the
            # worker's state is unknown, so it goes; the next call starts a new one.
            if self._proc is not None:
                self._stop(kill=True)
            raise
        # The node's own exception: the worker and its state stay.
        if kind == "error":
            raise result
        return result

    def _receive(self, what: str) -> tuple[str, Any, bool]:
        """The worker's reply ``(kind, payload, kept)`` (``kept``: the node keeps views of its
        input); ``WorkerCrashed`` if it died instead."""
        conn, proc = self._conn, self._proc
        assert conn is not None and proc is not None
        while not conn.poll(_POLL_S):
            if not proc.is_alive():
                break
        try:
            reply = conn.recv()
        except (EOFError, OSError):
            proc.join(_EXIT_WAIT_S)
            code = proc.exitcode
            self._stop(kill=True)
            self._crashes += 1
            delay = min(_BACKOFF_FIRST_S * 2 ** (self._crashes - 1), _BACKOFF_MAX_S)
            self._next_start = time.monotonic() + delay
            raise WorkerCrashed(
                f"{self._name()}: its worker process {_how_it_ended(code)} during {what} "
                f"(call {self._calls}); a new worker is started for the next call "
                f"(in {delay:.1f} s)"
            ) from None
        self._crashes = 0
        return reply[0], reply[1], len(reply) > 2 and bool(reply[2])


#: Idle workers by node (class, params), at most ``_IDLE_PER_NODE`` each.
_PoolKey = tuple[type[Node[Any]], str, int | None]
_IDLE: dict[_PoolKey, list[tuple[Any, Connection, _CallerIO]]] = {}
_IDLE_LOCK = threading.Lock()
_IDLE_PER_NODE = 4


def _release(key: _PoolKey, proc: Any, conn: Connection, io: _CallerIO) -> None:
    """An instance's worker, when the instance goes: kept idle if it is healthy."""
    if proc.is_alive() and not conn.closed and not _EXITING:
        with _IDLE_LOCK:
            idle = _IDLE.setdefault(key, [])
            if len(idle) < _IDLE_PER_NODE:
                idle.append((proc, conn, io))
                return
    _reap(proc, conn, io)


_EXITING = False
_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_not_rerun() -> Iterator[None]:
    """Starts a worker without running the caller's script again in it. ``spawn`` imports the
    parent's ``__main__`` in the child (so a script without ``if __name__ == "__main__":``
    would run its pipelines again there, and fail at bootstrap); a worker needs nothing from
    it (a node class from ``__main__`` is refused), so what ``spawn`` reads to find it is
    hidden while the worker starts."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _MAIN_LOCK:
        saved_file = main.__dict__.pop("__file__", None)
        saved_spec = main.__dict__.get("__spec__")
        main.__spec__ = None
        try:
            yield
        finally:
            main.__spec__ = saved_spec
            if saved_file is not None:
                main.__file__ = saved_file


@atexit.register
def _reap_all() -> None:
    """At exit: every idle worker ends and its shared memory is freed (and so are those of
    nodes still alive, as their finalizers run after this)."""
    global _EXITING
    _EXITING = True
    with _IDLE_LOCK:
        entries = [e for idle in _IDLE.values() for e in idle]
        _IDLE.clear()
    for proc, conn, io in entries:
        _reap(proc, conn, io)


def _reap(proc: Any, conn: Connection, io: _CallerIO) -> None:
    conn.close()
    proc.join(_EXIT_WAIT_S)
    if proc.is_alive():
        proc.kill()
        proc.join()
    io.free()


def _how_it_ended(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with status {code}"


# -------------------------------------------------------------------- shared memory


_Message = tuple[str, tuple[int, ...], str, Any]


def _unlink(name: str) -> None:
    """Frees a segment by name (already gone is fine)."""
    try:
        shm = SharedMemory(name=name)
    except FileNotFoundError:
        return
    shm.close()
    try:
        shm.unlink()
    except FileNotFoundError:
        pass


class _Shelf:
    """A shared-memory segment this side owns and refills call after call (creating, mapping
    and registering one per call was most of a call's cost); replaced by a bigger one when an
    array does not fit, or when the other side keeps views of the one it has."""

    def __init__(self) -> None:
        self.shm: SharedMemory | None = None

    def put(self, arr: np.ndarray) -> _Message:
        need = max(arr.nbytes, 1)
        if self.shm is None or self.shm.size < need:
            self.drop()
            self.shm = SharedMemory(create=True, size=max(need, 1 << 16))
        view: np.ndarray = np.ndarray(arr.shape, dtype=arr.dtype, buffer=self.shm.buf)
        view[...] = arr
        del view
        return (self.shm.name, arr.shape, arr.dtype.str, getattr(arr, "sample_rate", None))

    def drop(self) -> None:
        """Unmaps and frees it (a mapping the other side still has stays valid until unmapped)."""
        shm, self.shm = self.shm, None
        if shm is not None:
            shm.close()
            try:
                shm.unlink()
            except FileNotFoundError:
                pass


class _Mapped:
    """The segment the other side refills, mapped once by name."""

    def __init__(self) -> None:
        self.shm: SharedMemory | None = None

    def get(self, name: str) -> SharedMemory:
        if self.shm is None or self.shm.name != name:
            self.close()
            self.shm = SharedMemory(name=name)
        return self.shm

    def copy_out(self, message: _Message) -> Any:
        name, shape, dtype, rate = message
        buf = self.get(name).buf
        arr = np.ndarray(shape, dtype=np.dtype(dtype), buffer=buf).copy()
        return Audio(arr, rate) if rate is not None else arr

    def close(self) -> None:
        shm, self.shm = self.shm, None
        if shm is not None:
            shm.close()


class _CallerIO:
    """A worker's two segments as the caller sees them: the input it fills, the output it
    copies from (the worker's). Freed with the worker (``free``)."""

    def __init__(self) -> None:
        self.inp, self.out = _Shelf(), _Mapped()

    def free(self) -> None:
        self.inp.drop()
        name = self.out.shm.name if self.out.shm is not None else None
        self.out.close()
        if name is not None:
            _unlink(name)


# -------------------------------------------------------------------- the worker


def _worker_main(
    conn: Connection, cls: type[Node[Any]], params: dict[str, Any], limit_mb: int | None
) -> None:
    # Ctrl-C in a terminal reaches the whole process group: the caller decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if limit_mb is not None:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        want = limit_mb << 20
        resource.setrlimit(
            resource.RLIMIT_DATA,
            (want if hard == resource.RLIM_INFINITY else min(want, hard), hard),
        )
    try:
        node = construct(cls, params)
    except BaseException as exc:
        _send_error(conn, _with_limit(exc, limit_mb, "building the node"))
        return
    conn.send(("ok", None))
    io = _WorkerIO()
    while True:
        try:
            method, kind, payload = conn.recv()
        except (EOFError, OSError):
            return  # the caller went away (it frees the shared memory)
        try:
            reply, kept = _handle(node, method, kind, payload, io)
            conn.send((*reply, kept))
            del reply
        except BaseException as exc:
            _send_error(conn, _with_limit(exc, limit_mb, f"{method}()"), io.take_kept())


def _with_limit(exc: BaseException, limit_mb: int | None, during: str) -> BaseException:
    """A ``MemoryError`` in a worker with a memory limit, saying the limit was reached."""
    if limit_mb is None or not isinstance(exc, MemoryError):
        return exc
    said = str(exc) or "out of memory"
    new = MemoryError(
        f"{said}: the node's worker process reached its memory limit of {limit_mb} MiB during "
        f"{during} (memory_limit_mb / {MEMORY_ENV}); the worker stays for the next call"
    )
    new.__traceback__ = exc.__traceback__
    return new


class _WorkerIO:
    """The worker's side of the shared memory: the caller's input segment (mapped once), the
    output segment it refills, and input segments a node keeps views of."""

    def __init__(self) -> None:
        self.inp, self.out = _Mapped(), _Shelf()
        #: Input segments the node still has views of (with the array every such view derives
        #: from): unmapped once it has none. Unmapping checks the array, not the buffer:
        #: numpy does not hold a buffer export, so closing the segment would leave the views
        #: reading unmapped (or reused) memory.
        self.held: list[tuple[SharedMemory, np.ndarray]] = []
        self.kept = False

    def input(self, message: _Message) -> np.ndarray:
        name, shape, dtype, _ = message
        arr: np.ndarray = np.ndarray(shape, dtype=np.dtype(dtype), buffer=self.inp.get(name).buf)
        arr.flags.writeable = False
        return arr

    def keep_input(self, arr: np.ndarray) -> None:
        """The node has views of its input (``arr``): the segment stays mapped for them, and
        the caller writes the next input into another."""
        shm, self.inp.shm = self.inp.shm, None
        if shm is not None:
            self.held.append((shm, arr))
            self.kept = True

    def prune(self) -> None:
        """Unmaps the held segments the node no longer has views of."""
        still = []
        while self.held:
            shm, arr = self.held.pop()
            # `arr` here and getrefcount's argument are its only references without views.
            if sys.getrefcount(arr) > 2:
                still.append((shm, arr))
            else:
                del arr
                shm.close()
        self.held = still

    def take_kept(self) -> bool:
        kept, self.kept = self.kept, False
        return kept


def _handle(
    node: Node[Any], method: str, kind: str, payload: Any, io: _WorkerIO
) -> tuple[tuple[str, Any], bool]:
    """Runs one call; the reply, and whether the node kept views of its input (audio in shared
    memory the caller would otherwise refill)."""
    io.prune()
    arr = io.input(payload) if kind == "audio" else None
    try:
        data: Any = payload
        if arr is not None:
            rate = payload[3]
            data = Audio(arr, rate) if rate is not None else arr
        fn = getattr(node, method)
        result = fn(data) if method in ("process", "process_batch") else fn()
        del data
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        if isinstance(result, np.ndarray) and result.dtype != object:
            reply: tuple[str, Any] = ("audio", io.out.put(result))
        else:
            reply = ("ok", result)
        del result
    except BaseException:
        if arr is not None:
            io.keep_input(arr)  # the traceback may hold views of it: never refill it
        raise
    # Views the node (or a pickled reply) still holds keep `arr` alive: `arr` here and
    # getrefcount's argument are the only references otherwise.
    if arr is not None and sys.getrefcount(arr) > 2:
        io.keep_input(arr)
    del arr
    return reply, io.take_kept()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _send_error(conn: Connection, exc: BaseException, kept: bool = False) -> None:
    # The worker's traceback goes along as a note (a pickled exception loses its own).
    tb = "".join(traceback.format_exception(exc)).rstrip()
    add_note = getattr(exc, "add_note", None)  # Python 3.11+
    if add_note is not None:
        add_note(f"in the node's worker process:\n{tb}")
    try:
        conn.send(("error", exc, kept))
    except Exception:  # an exception that does not pickle: its type and message
        conn.send(("error", RemoteMediaError(f"{type(exc).__name__}: {exc}"), kept))


if os.name != "posix":  # pragma: no cover
    raise ImportError("remotemedia.isolation needs POSIX shared memory")
