"""Explicitly native nodes: the same nodes as :mod:`remotemedia.nodes.audio`, but they never
fall back to the Python reference. Constructing one without the native module raises
``ImportError`` with the reason.

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
from remotemedia.nodes.speech import SpeechVADNode

__all__ = [
    "RustChannelMixNode",
    "RustFormatConverterNode",
    "RustPassThroughNode",
    "RustResampleNode",
    "RustSpeechVADNode",
    "RustVADNode",
]


class RustResampleNode(AudioResampleNode):
    """:class:`~remotemedia.AudioResampleNode`, native only."""

    require_native = True


class RustVADNode(VADNode):
    """:class:`~remotemedia.VADNode`, native only."""

    require_native = True


class RustFormatConverterNode(FormatConverterNode):
    """:class:`~remotemedia.FormatConverterNode`, native only."""

    require_native = True


class RustChannelMixNode(ChannelMixNode):
    """:class:`~remotemedia.ChannelMixNode`, native only."""

    require_native = True


class RustPassThroughNode(PassThroughNode):
    """:class:`~remotemedia.PassThroughNode`, native only."""

    require_native = True


class RustSpeechVADNode(SpeechVADNode):
    """:class:`~remotemedia.SpeechVADNode` (native only, like every ``SpeechVADNode``)."""

    require_native = True
