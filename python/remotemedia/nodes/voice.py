"""Voice front-end nodes (echo cancellation, noise suppression, automatic gain),
native like every built-in node and generated from the runtime's node definitions; see
docs/nodes.md for every parameter and its range."""

from remotemedia.nodes._generated import AutoGainNode, DenoiseNode, EchoCancelNode

__all__ = ["AutoGainNode", "DenoiseNode", "EchoCancelNode"]
