"""The built-in nodes under ``Rust*`` names, for code that wants to say so: every built-in node
runs natively (there is no Python fallback), so these are the same classes by another name.

>>> from remotemedia.nodes.rust import RustResampleNode
>>> RustResampleNode(target_rate=16000, quality="high")
RustResampleNode(target_rate=16000, quality='high')
"""

from __future__ import annotations

from remotemedia.nodes.audio import (
    AudioResampleNode,
    ChannelMixNode,
    FormatConverterNode,
    PassThroughNode,
    VADNode,
)
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
from remotemedia.nodes.speech import SpeechVADNode

__all__ = [
    "RustBiquadNode",
    "RustChannelMixNode",
    "RustFadeNode",
    "RustFormatConverterNode",
    "RustGainNode",
    "RustHighPassNode",
    "RustLoudnessNormalizeNode",
    "RustLowPassNode",
    "RustMixNode",
    "RustPassThroughNode",
    "RustResampleNode",
    "RustSpeechVADNode",
    "RustTrimSilenceNode",
    "RustVADNode",
]


class RustResampleNode(AudioResampleNode):
    """:class:`~remotemedia.AudioResampleNode`, native only."""


class RustVADNode(VADNode):
    """:class:`~remotemedia.VADNode`, native only."""


class RustFormatConverterNode(FormatConverterNode):
    """:class:`~remotemedia.FormatConverterNode`, native only."""


class RustChannelMixNode(ChannelMixNode):
    """:class:`~remotemedia.ChannelMixNode`, native only."""


class RustPassThroughNode(PassThroughNode):
    """:class:`~remotemedia.PassThroughNode`, native only."""


class RustBiquadNode(BiquadNode):
    """:class:`~remotemedia.BiquadNode` (an alias, like the others)."""


class RustFadeNode(FadeNode):
    """:class:`~remotemedia.FadeNode` (an alias, like the others)."""


class RustGainNode(GainNode):
    """:class:`~remotemedia.GainNode` (an alias, like the others)."""


class RustHighPassNode(HighPassNode):
    """:class:`~remotemedia.HighPassNode` (an alias, like the others)."""


class RustLoudnessNormalizeNode(LoudnessNormalizeNode):
    """:class:`~remotemedia.LoudnessNormalizeNode` (an alias, like the others)."""


class RustLowPassNode(LowPassNode):
    """:class:`~remotemedia.LowPassNode` (an alias, like the others)."""


class RustMixNode(MixNode):
    """:class:`~remotemedia.MixNode` (an alias, like the others)."""


class RustTrimSilenceNode(TrimSilenceNode):
    """:class:`~remotemedia.TrimSilenceNode` (an alias, like the others)."""


class RustSpeechVADNode(SpeechVADNode):
    """:class:`~remotemedia.SpeechVADNode` (an alias, like the others)."""
