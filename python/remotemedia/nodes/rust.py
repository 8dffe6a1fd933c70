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
    "RustTrimSilenceNode",
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


class RustBiquadNode(BiquadNode):
    """:class:`~remotemedia.BiquadNode` (native only already; the alias keeps the ``Rust*`` set
    complete)."""

    require_native = True


class RustFadeNode(FadeNode):
    """:class:`~remotemedia.FadeNode` (native only already; the alias keeps the ``Rust*`` set
    complete)."""

    require_native = True


class RustGainNode(GainNode):
    """:class:`~remotemedia.GainNode` (native only already; the alias keeps the ``Rust*`` set
    complete)."""

    require_native = True


class RustHighPassNode(HighPassNode):
    """:class:`~remotemedia.HighPassNode` (native only already; the alias keeps the ``Rust*`` set
    complete)."""

    require_native = True


class RustLoudnessNormalizeNode(LoudnessNormalizeNode):
    """:class:`~remotemedia.LoudnessNormalizeNode` (native only already; the alias keeps the ``Rust*`` set
    complete)."""

    require_native = True


class RustLowPassNode(LowPassNode):
    """:class:`~remotemedia.LowPassNode` (native only already; the alias keeps the ``Rust*`` set
    complete)."""

    require_native = True


class RustMixNode(MixNode):
    """:class:`~remotemedia.MixNode` (native only already; the alias keeps the ``Rust*`` set
    complete)."""

    require_native = True


class RustTrimSilenceNode(TrimSilenceNode):
    """:class:`~remotemedia.TrimSilenceNode` (native only already; the alias keeps the ``Rust*`` set
    complete)."""

    require_native = True
