"""Node classes: the built-in audio nodes and the :class:`Node` base for your own."""

from remotemedia.nodes.audio import (
    AudioResampleNode,
    BuiltinNode,
    ChannelMixNode,
    FormatConverterNode,
    PassThroughNode,
    VADNode,
)
from remotemedia.nodes.base import Node
from remotemedia.nodes.remote import RemotePipelineNode
from remotemedia.nodes.speech import SpeechVADNode

__all__ = [
    "AudioResampleNode",
    "BuiltinNode",
    "ChannelMixNode",
    "FormatConverterNode",
    "Node",
    "PassThroughNode",
    "RemotePipelineNode",
    "SpeechVADNode",
    "VADNode",
]
