"""remotemedia: audio pipelines with a Rust executor and native audio nodes.

>>> import numpy as np
>>> from remotemedia import Pipeline, AudioResampleNode
>>> p = Pipeline("audio_pipeline")
>>> _ = p.add_node(AudioResampleNode(target_rate=16000))
>>> p.run(np.zeros(4800, dtype=np.float32), sample_rate=48000)
Audio(frames=1600, channels=1, sample_rate=16000, dtype=float32)
"""

try:
    from remotemedia import _native  # noqa: F401  (loaded first, for the message below)
except ImportError as exc:  # pragma: no cover - a broken install
    raise ImportError(
        f"remotemedia's native extension (remotemedia._native) did not load: {exc}. "
        "Reinstall with `pip install --force-reinstall remotemedia` (installing from source "
        "needs a Rust toolchain: https://rustup.rs)."
    ) from exc

from remotemedia._types import (
    Audio,
    CircuitBreaker,
    NodeMetrics,
    RetryPolicy,
    RunMetrics,
    Segment,
    SpeechEnd,
    SpeechStart,
    VadEvent,
)
from remotemedia.batch import BatchResult, FileResult
from remotemedia.errors import (
    CallInterrupted,
    CircuitOpenError,
    ManifestError,
    NodeError,
    NodeTimeoutError,
    RemoteError,
    RemoteMediaError,
    RetryableError,
)
from remotemedia.io import (
    AudioFileInfo,
    Loudness,
    blocks,
    info,
    loudness,
    read,
    write,
    write_segments,
)
from remotemedia.isolation import WorkerCrashed
from remotemedia.nodes import (
    AudioResampleNode,
    AutoGainNode,
    BiquadNode,
    ChannelMixNode,
    DenoiseNode,
    EchoCancelNode,
    FadeNode,
    FormatConverterNode,
    GainNode,
    HighPassNode,
    LoudnessNormalizeNode,
    LowPassNode,
    MixNode,
    Node,
    PassThroughNode,
    RemotePipelineNode,
    SpeechVADNode,
    TrimSilenceNode,
    VADNode,
)
from remotemedia.pipeline import Pipeline
from remotemedia.remote import RemoteClient
from remotemedia.streaming import AsyncSession, Session, StreamOutput

__version__ = "0.2.0"

__all__ = [
    "AsyncSession",
    "Audio",
    "AudioFileInfo",
    "AudioResampleNode",
    "AutoGainNode",
    "BatchResult",
    "BiquadNode",
    "CallInterrupted",
    "ChannelMixNode",
    "CircuitBreaker",
    "CircuitOpenError",
    "DenoiseNode",
    "EchoCancelNode",
    "FadeNode",
    "FileResult",
    "FormatConverterNode",
    "GainNode",
    "HighPassNode",
    "Loudness",
    "LoudnessNormalizeNode",
    "LowPassNode",
    "ManifestError",
    "MixNode",
    "Node",
    "NodeError",
    "NodeMetrics",
    "NodeTimeoutError",
    "PassThroughNode",
    "Pipeline",
    "RemoteClient",
    "RemoteError",
    "RemoteMediaError",
    "RemotePipelineNode",
    "RetryPolicy",
    "RetryableError",
    "RunMetrics",
    "Segment",
    "Session",
    "SpeechEnd",
    "SpeechStart",
    "SpeechVADNode",
    "StreamOutput",
    "TrimSilenceNode",
    "VADNode",
    "VadEvent",
    "WorkerCrashed",
    "__version__",
    "blocks",
    "info",
    "loudness",
    "read",
    "write",
    "write_segments",
]
