"""The exception hierarchy for when the native module cannot load (same names and bases)."""

from __future__ import annotations


class RemoteMediaError(Exception):
    """Base class of every error remotemedia raises."""


class ManifestError(RemoteMediaError):
    """The manifest or a node's parameters are invalid."""


class NodeError(RemoteMediaError):
    """A node failed."""


class NodeTimeoutError(NodeError):
    """A node did not finish within its timeout."""


class CircuitOpenError(RemoteMediaError):
    """A node's circuit breaker is open."""


class RetryableError(RemoteMediaError):
    """Raise from a Python node to ask for a retry."""


class RemoteError(RemoteMediaError):
    """A remote call was refused or failed in transport."""
