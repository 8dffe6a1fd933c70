"""The exception hierarchy (defined in Rust, re-exported here).

::

    RemoteMediaError
     ├── ManifestError      invalid manifest or node parameters (names node and field)
     ├── NodeError          a native node failed; ``node_id`` names it
     │    └── NodeTimeoutError
     ├── CircuitOpenError   a node's circuit breaker is open
     └── RetryableError     raise it from your node to ask for a retry

Exceptions raised by your own Python nodes keep their type, message and traceback; a note
(and the ``remotemedia_node_id`` attribute) says which node raised them.
"""

from __future__ import annotations

from remotemedia._runtime import _native

__all__ = [
    "CircuitOpenError",
    "ManifestError",
    "NodeError",
    "NodeTimeoutError",
    "RemoteMediaError",
    "RetryableError",
]

if _native is not None:
    RemoteMediaError = _native.RemoteMediaError
    ManifestError = _native.ManifestError
    NodeError = _native.NodeError
    NodeTimeoutError = _native.NodeTimeoutError
    CircuitOpenError = _native.CircuitOpenError
    RetryableError = _native.RetryableError
else:  # pragma: no cover - only without the built extension

    class RemoteMediaError(Exception):  # type: ignore[no-redef]
        """Base class of every error remotemedia raises."""

    class ManifestError(RemoteMediaError):  # type: ignore[no-redef]
        """The manifest or a node's parameters are invalid."""

    class NodeError(RemoteMediaError):  # type: ignore[no-redef]
        """A node failed."""

    class NodeTimeoutError(NodeError):  # type: ignore[no-redef]
        """A node did not finish within its timeout."""

    class CircuitOpenError(RemoteMediaError):  # type: ignore[no-redef]
        """A node's circuit breaker is open."""

    class RetryableError(RemoteMediaError):  # type: ignore[no-redef]
        """Raise from a Python node to ask for a retry."""
