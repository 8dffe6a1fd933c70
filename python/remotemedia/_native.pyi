"""Type stubs for the native module (checked against the built module by mypy stubtest)."""

import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, final

import numpy as np

from remotemedia.streaming import StreamOutput

__all__ = [
    "AUDIO_FORMATS",
    "MAX_CHANNELS",
    "BlockReader",
    "CallInterrupted",
    "CircuitOpenError",
    "ManifestError",
    "NativeNode",
    "NativePipeline",
    "NativeSession",
    "NodeError",
    "NodeTimeoutError",
    "RemoteClient",
    "RemoteError",
    "RemoteMediaError",
    "RetryableError",
    "__version__",
    "_interrupted_calls",
    "_set_crossing_log",
    "_take_crossing_log",
    "_wait_for_interrupted_calls",
    "audio_info",
    "check_params",
    "cli_main",
    "closest",
    "loudness",
    "manifest_schema_json",
    "node_types_json",
    "prepare",
    "prepare_chunk",
    "read_file",
    "run_files",
    "sample_rate_of",
    "write_file",
    "write_segment_index",
    "write_segments",
]

__version__: str
#: The most channels the runtime takes (remotemedia_core::data::MAX_CHANNELS).
MAX_CHANNELS: int
#: The extensions audio outputs may take: "wav", "flac", "ogg", "opus", "mp3".
AUDIO_FORMATS: list[str]
#: The largest manifest the runtime reads, in bytes (remotemedia_core::manifest::limits).
MAX_MANIFEST_BYTES: int

class RemoteMediaError(Exception):
    """Base class of every error remotemedia raises."""

    code: str

class ManifestError(RemoteMediaError):
    """The manifest or a node's parameters are invalid."""

    issues: list[dict[str, str | None]]

class NodeError(RemoteMediaError):
    """A native node failed."""

    node_id: str | None
    node_type: str
    kind: str | None

class NodeTimeoutError(NodeError):
    """A node did not finish within its timeout."""

class CircuitOpenError(RemoteMediaError):
    """A node's circuit breaker is open."""

class RetryableError(RemoteMediaError):
    """Raise from a Python node to ask for a retry."""

class RemoteError(RemoteMediaError):
    """A remote call was refused or failed in transport."""

    grpc_code: str | None

class CallInterrupted(BaseException):
    """Raised inside a Python node's call that the runtime gave up on."""

@final
class NativePipeline:
    def __new__(
        cls, manifest: str, python_nodes: dict[str, Any] | None = None
    ) -> NativePipeline: ...
    def run(self, input: Any, sample_rate: int | None = None) -> dict[str, Any]: ...
    def run_file(
        self,
        source: Any,
        dtype: str | None = None,
        progress: Callable[[float, float | None], Any] | None = None,
    ) -> dict[str, Any]: ...
    def session(self) -> NativeSession: ...
    def metrics_json(self) -> str | None: ...
    def trace_json(self) -> str | None: ...
    @property
    def sink_ids(self) -> list[str]: ...
    @property
    def runtimes(self) -> list[tuple[str, str]]: ...

@final
class NativeSession:
    def push(
        self, chunk: Any, sample_rate: int | None = None, channels: int | None = None
    ) -> Sequence[StreamOutput[Any]]: ...
    def foreground(
        self,
        sample_rate: int,
        channels: int,
        queue: deque[StreamOutput[Any]],
        on_error: Callable[[], Callable[[BaseException], None] | None],
    ) -> None: ...
    def send(self, chunk: Any, timeout: float | None = None, *, to: str | None = None) -> None: ...
    def finish(self) -> Sequence[StreamOutput[Any]]: ...
    def abort(self, dropped: bool = False) -> None: ...
    def interrupt(self) -> None: ...
    def metrics_json(self) -> str: ...
    def is_open(self) -> bool: ...

@final
class NativeNode:
    def __new__(cls, node_type: str, params_json: str) -> NativeNode: ...
    def process(self, data: Any, sample_rate: Any = None) -> Any: ...
    def run(self, data: Any, sample_rate: Any = None) -> Any: ...
    def flush(self) -> Any: ...
    def reset(self) -> None: ...
    @property
    def node_type(self) -> str: ...

@final
class RemoteClient:
    def __new__(cls, address: str, token: str | None = None) -> RemoteClient: ...
    def execute(
        self,
        manifest: str,
        input: Any,
        sample_rate: int | None = None,
        timeout: float | None = None,
    ) -> tuple[dict[str, Any], str]: ...
    def stream(self, manifest: str) -> NativeSession: ...
    def list_nodes(self) -> list[dict[str, str]]: ...
    def version(self) -> dict[str, str]: ...
    @property
    def address(self) -> str: ...

def check_params(node_type: str, params_json: str) -> None: ...
def audio_finalizer(cls: type) -> Any: ...
def node_types_json() -> str: ...
def closest(name: str, candidates: list[str]) -> str | None: ...
def manifest_schema_json() -> str: ...
def cli_main(argv: list[str]) -> int: ...
def render_graph(manifest_json: str, format: str, notes: dict[str, str] | None = None) -> str: ...
def prepare(
    data: Any, sample_rate: Any = None, dtype: str | None = None
) -> tuple[Any, int | None]: ...
def prepare_chunk(
    chunk: Any, sample_rate: int, channels: int, own: bool
) -> np.ndarray[Any, Any]: ...
def sample_rate_of(value: Any, what: str = "sample_rate") -> int: ...

#: A segment as the runtime takes it: (start_sample, end_sample, sample_rate, confidence,
#: energy_db).
_SegmentTuple = tuple[int, int, int, float | None, float | None]

def write_segments(
    source: str | os.PathLike[str] | np.ndarray[Any, Any],
    sample_rate: int | None,
    segments: list[_SegmentTuple],
    outputs: list[str],
    subtype: str | None = None,
) -> list[int]: ...
def write_segment_index(
    path: str | os.PathLike[str], names: list[str], segments: list[_SegmentTuple]
) -> None: ...
def read_file(source: Any, dtype: str | None = None) -> Any: ...
def audio_info(source: Any) -> dict[str, Any]: ...
def loudness(source: Any, sample_rate: Any = None) -> dict[str, float]: ...
def write_file(
    path: str | os.PathLike[str],
    audio: np.ndarray[Any, Any],
    sample_rate: int,
    subtype: str | None = None,
    compression_level: float | None = None,
) -> int: ...
def run_files(
    manifest_json: str,
    inputs: list[str],
    out_dir: str | os.PathLike[str],
    jobs: int | None = None,
    skip_existing: bool = False,
    audio_format: str = "wav",
    subtype: str | None = None,
    chunk_ms: int = 1000,
    progress: bool = False,
    compression_level: float | None = None,
) -> str: ...

@final
class BlockReader:
    sample_rate: int
    channels: int
    frames: int | None
    def __new__(
        cls, path: str | os.PathLike[str], blocksize: int, dtype: str | None = None
    ) -> BlockReader: ...
    def __iter__(self) -> BlockReader: ...
    def __next__(self) -> Any: ...

def _set_crossing_log(on: bool) -> None: ...
def _take_crossing_log() -> list[tuple[int, str]]: ...
def _wait_for_interrupted_calls(timeout_s: float = 2.0) -> int: ...
def _interrupted_calls() -> int: ...
