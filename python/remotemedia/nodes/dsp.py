"""Everyday native audio nodes: gain, loudness normalisation, filters, mixing, trimming and
fades, run natively like every built-in node and generated from the runtime's node
definitions; see docs/nodes.md for every parameter and its range."""

from remotemedia.nodes._generated import (
    BiquadNode,
    BiquadType,
    FadeNode,
    GainNode,
    HighPassNode,
    LoudnessNormalizeNode,
    LowPassNode,
    MixNode,
    TrimSilenceNode,
)

__all__ = [
    "BiquadNode",
    "BiquadType",
    "FadeNode",
    "GainNode",
    "HighPassNode",
    "LoudnessNormalizeNode",
    "LowPassNode",
    "MixNode",
    "TrimSilenceNode",
]
