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

__all__ = [
    "RustChannelMixNode",
    "RustFormatConverterNode",
    "RustPassThroughNode",
    "RustResampleNode",
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
