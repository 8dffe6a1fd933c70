"""remotemedia: audio pipelines with a Rust executor and native audio nodes.

>>> import numpy as np
>>> from remotemedia import Pipeline, AudioResampleNode
>>> p = Pipeline("audio_pipeline")
>>> _ = p.add_node(AudioResampleNode(target_rate=16000))
>>> p.run(np.zeros(4800, dtype=np.float32), sample_rate=48000)
Audio(frames=1600, channels=1, sample_rate=16000, dtype=float32)
"""

from remotemedia._runtime import native_available, runtime
from remotemedia._types import Audio, Segment
from remotemedia.errors import (
    CircuitOpenError,
    ManifestError,
    NodeError,
    NodeTimeoutError,
    RemoteError,
    RemoteMediaError,
    RetryableError,
)
from remotemedia.io import blocks, read, write
from remotemedia.nodes import (
    AudioResampleNode,
    ChannelMixNode,
    FormatConverterNode,
    Node,
    PassThroughNode,
    RemotePipelineNode,
    VADNode,
)
from remotemedia.pipeline import Pipeline
from remotemedia.remote import RemoteClient
from remotemedia.streaming import AsyncSession, Session, StreamOutput

__version__ = "0.2.0"

__all__ = [
    "AsyncSession",
    "Audio",
    "AudioResampleNode",
    "ChannelMixNode",
    "CircuitOpenError",
    "FormatConverterNode",
    "ManifestError",
    "Node",
    "NodeError",
    "NodeTimeoutError",
    "PassThroughNode",
    "Pipeline",
    "RemoteClient",
    "RemoteError",
    "RemoteMediaError",
    "RemotePipelineNode",
    "RetryableError",
    "Segment",
    "Session",
    "StreamOutput",
    "VADNode",
    "__version__",
    "blocks",
    "native_available",
    "read",
    "runtime",
    "write",
]
