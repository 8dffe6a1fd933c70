"""Voice front-end nodes (noise suppression, automatic gain; echo cancellation to come),
native like every built-in node and generated from the runtime's node definitions; see
docs/nodes.md for every parameter and its range."""

from remotemedia.nodes._generated import AutoGainNode, DenoiseNode

__all__ = ["AutoGainNode", "DenoiseNode"]
