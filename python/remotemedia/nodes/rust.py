"""The built-in nodes under ``Rust*`` names, for code that wants to say so: every built-in node
runs natively (there is no Python fallback), so these are the same classes by another name.

>>> from remotemedia.nodes.rust import RustResampleNode
>>> RustResampleNode(target_rate=16000, quality="high")
RustResampleNode(target_rate=16000, quality='high')
"""

from __future__ import annotations

from remotemedia.nodes import _generated as _g

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


class RustResampleNode(_g.AudioResampleNode):
    """:class:`~remotemedia.AudioResampleNode`, native only."""


class RustVADNode(_g.VADNode):
    """:class:`~remotemedia.VADNode`, native only."""


class RustFormatConverterNode(_g.FormatConverterNode):
    """:class:`~remotemedia.FormatConverterNode`, native only."""


class RustChannelMixNode(_g.ChannelMixNode):
    """:class:`~remotemedia.ChannelMixNode`, native only."""


class RustPassThroughNode(_g.PassThroughNode):
    """:class:`~remotemedia.PassThroughNode`, native only."""


class RustBiquadNode(_g.BiquadNode):
    """:class:`~remotemedia.BiquadNode` (an alias, like the others)."""


class RustFadeNode(_g.FadeNode):
    """:class:`~remotemedia.FadeNode` (an alias, like the others)."""


class RustGainNode(_g.GainNode):
    """:class:`~remotemedia.GainNode` (an alias, like the others)."""


class RustHighPassNode(_g.HighPassNode):
    """:class:`~remotemedia.HighPassNode` (an alias, like the others)."""


class RustLoudnessNormalizeNode(_g.LoudnessNormalizeNode):
    """:class:`~remotemedia.LoudnessNormalizeNode` (an alias, like the others)."""


class RustLowPassNode(_g.LowPassNode):
    """:class:`~remotemedia.LowPassNode` (an alias, like the others)."""


class RustMixNode(_g.MixNode):
    """:class:`~remotemedia.MixNode` (an alias, like the others)."""


class RustTrimSilenceNode(_g.TrimSilenceNode):
    """:class:`~remotemedia.TrimSilenceNode` (an alias, like the others)."""


class RustSpeechVADNode(_g.SpeechVADNode):
    """:class:`~remotemedia.SpeechVADNode` (an alias, like the others)."""
