"""Streaming sessions: feed a pipeline chunk by chunk and get outputs as they are produced.

By default (``Pipeline.stream``) ``send`` runs the chunk through the pipeline before it
returns (with the GIL released for native work), so the outputs of a chunk are ready for
``poll`` right after ``send``, and a producer faster than the pipeline is held back by
construction. With ``background=True`` (what ``Pipeline.astream`` uses) a worker thread runs
the pipeline: ``send`` queues a chunk and returns at once unless ``max_pending`` chunks are
already waiting, in which case it waits (backpressure, instead of growing memory). Either way
``poll`` returns what is ready and never blocks, and ``close`` ends the stream (flushing every
node) and returns what was not polled yet. Outputs are delivered exactly once.

When a chunk fails, every output produced before the failure is still delivered: ``poll`` and
``async for`` return them first and raise the error once they are drained; ``close`` raises the
error with the outputs it would have returned in the exception's ``outputs`` attribute.

The concatenated streamed output equals ``Pipeline.run`` on the whole input, for every chunking.
"""

from __future__ import annotations

import asyncio
import collections
import json
import queue
import sys
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, Protocol

import numpy as np

from remotemedia import _native
from remotemedia._types import RunMetrics
from remotemedia.errors import RemoteMediaError
from remotemedia.nodes.base import OutT

__all__ = ["AsyncSession", "Session", "StreamOutput"]


def _start_ms(self: Any) -> float | None:
    rate = getattr(self.data, "sample_rate", None)
    if self.start_frame is None or not rate:
        return None
    return float(self.start_frame * 1000.0 / float(rate))


if TYPE_CHECKING or sys.version_info >= (3, 11):

    class StreamOutput(NamedTuple, Generic[OutT]):
        """One output of a sink during a stream: ``data`` is a piece of the sink's output
        (typed as the session's ``OutT``: an ``Audio`` chunk, a list of segments or events).

        ``start_frame`` is the position of an audio output's first frame in that sink's
        output stream (``None`` for non-audio values); ``start_ms`` is the same in
        milliseconds. A named tuple: cheap to make for every chunk, immutable, and unpacks as
        ``node_id, data, start_frame``.
        """

        node_id: str
        data: OutT
        start_frame: int | None

        @property
        def start_ms(self) -> float | None:
            return _start_ms(self)

else:  # Python 3.10: a named tuple cannot be generic at run time; subscripting is a no-op

    class StreamOutput(NamedTuple):
        """One output of a sink during a stream (see the 3.11+ definition above)."""

        node_id: str
        data: Any
        start_frame: int | None

        start_ms = property(_start_ms)

        def __class_getitem__(cls, item: Any) -> Any:
            return cls


class Backend(Protocol):
    """What a session drives: the runtime's session, local or remote (one type)."""

    def push(
        self, chunk: Any, sample_rate: int | None = None, channels: int | None = None
    ) -> Sequence[StreamOutput[Any]]: ...
    def finish(self) -> Sequence[StreamOutput[Any]]: ...
    def abort(self) -> None: ...
    def metrics_json(self) -> str: ...
    def is_open(self) -> bool: ...


_END = object()
_ABORT = object()


class Session(Generic[OutT]):
    """A stream through a pipeline (made by :meth:`Pipeline.stream`)."""

    def __init__(
        self,
        backend: Backend,
        sample_rate: int,
        channels: int,
        *,
        max_pending: int = 4,
        background: bool = False,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        sample_rate = _native.sample_rate_of(sample_rate)
        if not 1 <= channels <= _native.MAX_CHANNELS:
            raise ValueError(f"channels must be in 1..={_native.MAX_CHANNELS}, got {channels}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.sample_rate = int(sample_rate)
        self.channels = channels
        self._backend = backend
        self._inbox: queue.Queue[Any] = queue.Queue(maxsize=max_pending)
        self._outputs: collections.deque[StreamOutput[OutT]] = collections.deque()
        self._error: BaseException | None = None
        self._aborted = False
        self._closing = False
        self._done = threading.Event()
        self._listeners: list[Callable[[], None]] = []
        self._on_done = on_done
        self._listeners_lock = threading.Lock()
        self._metrics: RunMetrics | None = None
        self._background = background
        foreground = None if background else getattr(backend, "foreground", None)
        if foreground is not None:
            # The hot path of a foreground stream (every chunk) in native code: the runtime
            # checks the chunk (the code of prepare_chunk), runs it and appends its
            # outputs, with no Python frame in between. It stands in for `send` until the
            # stream fails or ends, or a listener is added (see `_leave_fast_path`).
            foreground(
                self.sample_rate,
                channels,
                self._outputs,
                weakref.WeakMethod(self._send_failed),
            )
            self.send = backend.send  # type: ignore[attr-defined, method-assign]
        if background:
            self._worker = threading.Thread(
                target=self._run, name="remotemedia-session", daemon=True
            )
            self._worker.start()

    # ------------------------------------------------------------------ worker

    def _deliver(self, items: Sequence[StreamOutput[Any]]) -> None:
        # The runtime already left out empty chunks (audio with no frames, no events).
        if not items:
            return
        self._outputs.extend(items)
        if self._listeners:
            self._notify()

    def _notify(self) -> None:
        # Listeners are only ever appended to; the lock guards the copy.
        with self._listeners_lock:
            listeners = list(self._listeners)
        for notify in listeners:
            notify()

    def _handle(self, item: Any) -> bool:
        """Processes one inbox item; returns True when the stream has ended."""
        try:
            if item is _ABORT:
                self._backend.abort()
                return True
            if item is _END:
                self._deliver(self._backend.finish())
                return True
            self._deliver(self._backend.push(item, self.sample_rate))
            return False
        except BaseException as exc:
            self._fail(exc)
            return True

    def _leave_fast_path(self) -> None:
        """Back to the Python ``send`` (which knows about errors, closing and listeners)."""
        self.__dict__.pop("send", None)

    def _send_failed(self, exc: BaseException) -> None:
        """A chunk sent through the native ``send`` failed: the stream ends with it."""
        self._fail(exc)
        self._finalize()
        raise self._error if self._error is not None else exc

    def _fail(self, exc: BaseException) -> None:
        self._leave_fast_path()
        # The first error is the one that ended the stream; keep it (unless the caller
        # aborted the stream: then the chunk in progress failing is expected).
        if self._error is None and not self._aborted:
            self._error = exc
        try:
            self._backend.abort()
        except Exception:
            pass

    def _finalize(self) -> None:
        if self._done.is_set():
            return
        try:
            raw = json.loads(self._backend.metrics_json())
            self._metrics = None if raw is None else RunMetrics.from_dict(raw)
        except Exception:
            self._metrics = None
        self._done.set()
        if self._on_done is not None:
            self._on_done()
        with self._listeners_lock:
            listeners = list(self._listeners)
        for notify in listeners:
            notify()

    def _run(self) -> None:
        while not self._handle(self._inbox.get()):
            pass
        self._finalize()

    def _submit(self, item: Any, timeout: float | None = None) -> None:
        """Hands an item to the pipeline: at once (foreground) or through the inbox."""
        if not self._background:
            if self._done.is_set():
                return  # the stream already ended (failed): nothing left to run
            if self._handle(item) or self._error is not None:
                if not self._done.is_set():
                    self._finalize()
            return
        while True:
            try:
                self._inbox.put(item, timeout=0.1 if timeout is None else timeout)
                return
            except queue.Full:
                self._check()  # the worker may have failed and stopped taking chunks
                if timeout is not None:
                    raise TimeoutError(
                        f"the pipeline did not take the chunk within {timeout} s"
                    ) from None

    # ------------------------------------------------------------------ API

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def send(
        self,
        chunk: np.ndarray | Mapping[str, np.ndarray],
        timeout: float | None = None,
        *,
        to: str | None = None,
    ) -> None:
        """Sends a chunk (any number of frames). In the foreground (default) it is processed
        before this returns; in the background it is queued, waiting while ``max_pending``
        chunks are queued (``TimeoutError`` after ``timeout`` seconds of waiting).

        A pipeline with several inputs (source nodes: a microphone and an echo reference, say)
        takes a dict by input name, ``send({"mic": a, "far": b})``, or one input's chunk with
        ``send(a, to="mic")``; the inputs are aligned by stream position, so they need not
        come in equal chunks, and each shares the session's rate and channel count. An array
        alone goes to every input. An unknown name is a ``ValueError`` naming the inputs.

        A chunk that does not fit the session (another rate or channel count) is refused
        with a ``ValueError`` saying so, without ending the stream; that check comes before
        any earlier error of the stream is raised again, so each error names what is wrong
        with the chunk at hand."""
        if to is not None:
            chunk = {to: chunk}  # type: ignore[dict-item]
        if self._error is not None or self._closing:
            self._prepare(chunk, own=False)
            self._check()
            raise RemoteMediaError("the session is closed; open a new one with Pipeline.stream()")
        if not self._background:
            # A foreground stream with listeners, or a backend without the native `send`:
            # the runtime checks the chunk against the session's rate and channels (the
            # code of prepare_chunk) and runs it. (A foreground stream ends only through
            # an error or close/abort, which the check above catches.)
            try:
                items = self._backend.push(chunk, self.sample_rate, self.channels)
            except (TypeError, ValueError) as exc:
                if self._backend.is_open():
                    raise  # a bad chunk, refused before it ran: the stream goes on
                self._fail(exc)
            except BaseException as exc:
                self._fail(exc)
            else:
                if items:  # () when the chunk gave nothing (no allocation)
                    self._outputs.extend(items)
                    if self._listeners:
                        self._notify()
                return
            self._finalize()
            raise self._error  # type: ignore[misc]
        self._submit(self._prepare(chunk, own=True), timeout)
        self._check()

    def _prepare(self, chunk: Any, own: bool) -> Any:
        """The chunk checked against the session (each input's, for a dict by input name)."""
        if isinstance(chunk, Mapping):
            return {
                k: _native.prepare_chunk(v, self.sample_rate, self.channels, own=own)
                for k, v in chunk.items()
            }
        return _native.prepare_chunk(chunk, self.sample_rate, self.channels, own=own)

    def try_send(
        self, chunk: np.ndarray | Mapping[str, np.ndarray], *, to: str | None = None
    ) -> bool:
        """Queues a chunk if there is room, without waiting; ``False`` when the queue is full
        (then call :meth:`send`, which waits). In the foreground it is :meth:`send`."""
        if to is not None:
            chunk = {to: chunk}  # type: ignore[dict-item]
        if not self._background:
            self.send(chunk)
            return True
        chunk = self._prepare(chunk, own=True)
        self._check()
        if self._closing:
            raise RemoteMediaError("the session is closed; open a new one")
        try:
            self._inbox.put_nowait(chunk)
        except queue.Full:
            return False
        return True

    def end_input(self) -> None:
        """Ends the input (the nodes flush) without taking any output: iterate or
        :meth:`poll` for the tail. Use this from a producer while a consumer reads."""
        if not self._closing:
            self._closing = True
            self._leave_fast_path()
            if self._done.is_set():
                return  # already ended (a chunk failed): the worker takes nothing more
            self._submit(_END)

    def wait(self, timeout: float | None = None) -> bool:
        """Waits until the stream has ended; ``False`` on timeout."""
        return self._done.wait(timeout)

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Calls ``callback()`` (from the worker thread) whenever outputs arrive or the
        stream ends."""
        self._leave_fast_path()  # the Python send notifies listeners
        with self._listeners_lock:
            self._listeners.append(callback)

    def poll_error(self) -> None:
        """Raises the error that ended the stream, if one did."""
        self._check()

    def poll(self) -> list[StreamOutput[OutT]]:
        """Outputs produced since the last poll (never blocks)."""
        outputs = self._outputs
        if not outputs:
            if self._error is not None:
                raise self._error
            return []
        out = []
        while outputs:  # popleft, not a copy and clear: a worker thread may be appending
            out.append(outputs.popleft())
        return out

    def close(self, timeout: float | None = None) -> list[StreamOutput[OutT]]:
        """Ends the stream: flushes every node and returns the outputs not polled yet.

        If the stream failed (a chunk or the flush raised), the error is raised instead, and
        the outputs not polled yet (everything produced before the failure) are in its
        ``outputs`` attribute: ``except Exception as e: e.outputs``."""
        try:
            self.end_input()
        except BaseException:
            if self._error is None:
                raise  # not the stream's error (e.g. the caller was interrupted)
        if not self._done.wait(timeout):
            raise TimeoutError(f"the pipeline did not finish within {timeout} s")
        out = []
        while self._outputs:
            out.append(self._outputs.popleft())
        if self._error is not None:
            _attach_outputs(self._error, out)
            raise self._error
        return out

    def abort(self) -> None:
        """Ends the stream without flushing. In the background, a chunk being processed is
        interrupted (a Python node's call gets ``CallInterrupted``) instead of awaited, so
        leaving a ``with`` block on Ctrl-C is prompt; queued chunks are dropped."""
        # What the interrupted chunk raises is the abort itself, not an error of the stream.
        self._aborted = True
        if self._background and not self._done.is_set():
            # Also after close() began (Ctrl-C while close() waited for the tail).
            interrupt = getattr(self._backend, "interrupt", None)
            if interrupt is not None:
                interrupt()
        if not self._closing:
            self._closing = True
            self._leave_fast_path()
            if self._background:
                while not self._done.is_set():
                    try:
                        self._inbox.put(_ABORT, timeout=0.05)
                        break
                    except queue.Full:
                        continue  # the worker is draining the queue (each chunk now fails)
            else:
                self._submit(_ABORT)
        self._done.wait()

    @property
    def done(self) -> bool:
        """True once the stream has ended (closed, aborted or failed)."""
        return self._done.is_set()

    def metrics(self) -> RunMetrics | None:
        """Per-node metrics of the stream, once it has ended (a
        :class:`~remotemedia.RunMetrics`; ``metrics()["nodes"]`` still reads as a dict)."""
        return self._metrics

    def __enter__(self) -> Session[OutT]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            if not self._closing:
                self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if not getattr(self, "_closing", True) and not self._done.is_set():
            self._closing = True
            self._leave_fast_path()
            if not self._background:
                if hasattr(self._backend, "foreground"):
                    # A native `send` taken from this session may still be called
                    # (`p.stream(...).send(x)`): it will say why the session is closed.
                    try:
                        self._backend.abort(dropped=True)  # type: ignore[call-arg]
                    except BaseException:
                        pass
                else:
                    self._handle(_ABORT)
                self._finalize()
                return
            try:
                self._inbox.put_nowait(_ABORT)
            except queue.Full:
                pass


def _attach_outputs(error: BaseException, outputs: list[StreamOutput[Any]]) -> None:
    """Puts the outputs a failed ``close`` could not return on its error (``.outputs``),
    adding to those of an earlier ``close`` of the same stream."""
    earlier = error.__dict__.get("outputs") if hasattr(error, "__dict__") else None
    try:
        if isinstance(earlier, list):
            earlier.extend(outputs)
        else:
            error.outputs = outputs  # type: ignore[attr-defined]
    except AttributeError:
        pass  # an exception type without attributes: nothing more can be done


class AsyncSession(Generic[OutT]):
    """The asyncio form of :class:`Session` (made by :meth:`Pipeline.astream`), built on the
    session's public API only.

    ``await send(chunk)``; ``async for out in session`` yields outputs as they are produced,
    until the stream ends. End the input with ``await finish()`` when another task iterates,
    or with ``await close()``, which also returns what was not consumed.
    """

    def __init__(self, session: Session[OutT]) -> None:
        self._s = session
        self._ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()

        def wake() -> None:
            self._loop.call_soon_threadsafe(self._ready.set)

        session.add_listener(wake)

    async def send(
        self, chunk: np.ndarray | Mapping[str, np.ndarray], *, to: str | None = None
    ) -> None:
        """Queues a chunk, waiting (without blocking the event loop) while the queue is full;
        a dict by input name or ``to=`` as for :meth:`Session.send`."""
        if to is not None:
            chunk = {to: chunk}  # type: ignore[dict-item]
        if not self._s.try_send(chunk):
            await asyncio.to_thread(self._s.send, chunk)

    def poll(self) -> list[StreamOutput[OutT]]:
        """Outputs produced since the last poll (never blocks)."""
        return self._s.poll()

    async def close(self) -> list[StreamOutput[OutT]]:
        """Ends the stream (flushing every node); returns the outputs not consumed yet. If the
        stream failed, raises its error with those outputs in the error's ``outputs``."""
        return await asyncio.to_thread(self._s.close)

    async def finish(self) -> None:
        """Ends the input (flushing every node) and waits until the stream is done, without
        taking any output: an ``async for`` loop over the session receives the tail. Use this
        from a producer task when a consumer task iterates."""
        await asyncio.to_thread(self._s.end_input)
        await asyncio.to_thread(self._s.wait)

    async def aclose(self) -> None:
        """Ends the stream cleanly, as :meth:`close` does (every node flushes), for
        ``contextlib.aclosing`` and async generators; outputs not consumed yet stay
        available to :meth:`poll` and ``async for``. :meth:`abort` discards instead."""
        if not self._s.done:
            await asyncio.to_thread(self._s.end_input)
            await asyncio.to_thread(self._s.wait)
        self._s.poll_error()

    async def abort(self) -> None:
        """Ends the stream without flushing."""
        await asyncio.to_thread(self._s.abort)

    @property
    def done(self) -> bool:
        """True once the stream has ended."""
        return self._s.done

    def metrics(self) -> RunMetrics | None:
        """Per-node metrics of the stream, once it has ended."""
        return self._s.metrics()

    async def __aiter__(self) -> AsyncIterator[StreamOutput[OutT]]:
        while True:
            self._ready.clear()
            done = self._s.done
            for out in self._s.poll():
                yield out
            if done:
                # Everything delivered before the end was polled above.
                for out in self._s.poll():
                    yield out
                return
            await self._ready.wait()

    async def __aenter__(self) -> AsyncSession[OutT]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            if not self._s.done:
                await asyncio.to_thread(self._s.close)
        else:
            await self.abort()
