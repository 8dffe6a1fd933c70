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
from remotemedia.nodes.dsp import (
    BiquadNode,
    FadeNode,
    GainNode,
    HighPassNode,
    LoudnessNormalizeNode,
    LowPassNode,
    MixNode,
    TrimSilenceNode,
)
from remotemedia.nodes.remote import RemotePipelineNode
from remotemedia.nodes.speech import SpeechFrame, SpeechSegment, SpeechVADNode
from remotemedia.nodes.voice import AutoGainNode, DenoiseNode, EchoCancelNode

__all__ = [
    "AudioResampleNode",
    "AutoGainNode",
    "BiquadNode",
    "BuiltinNode",
    "ChannelMixNode",
    "DenoiseNode",
    "EchoCancelNode",
    "FadeNode",
    "FormatConverterNode",
    "GainNode",
    "HighPassNode",
    "LoudnessNormalizeNode",
    "LowPassNode",
    "MixNode",
    "Node",
    "PassThroughNode",
    "RemotePipelineNode",
    "SpeechFrame",
    "SpeechSegment",
    "SpeechVADNode",
    "TrimSilenceNode",
    "VADNode",
]
