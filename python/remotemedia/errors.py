"""The exception hierarchy (defined in Rust, re-exported here).

::

    RemoteMediaError
     ├── ManifestError      invalid manifest or node parameters (names node and field)
     ├── NodeError          a native node failed; ``node_id`` names it
     │    └── NodeTimeoutError
     ├── CircuitOpenError   a node's circuit breaker is open
     ├── RemoteError        a remote call was refused or failed in transport (``grpc_code``)
     └── RetryableError     raise it from your node to ask for a retry

Exceptions raised by your own Python nodes keep their type, message and traceback; a note
(and the ``remotemedia_node_id`` attribute) says which node raised them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from remotemedia._runtime import _native

__all__ = [
    "CircuitOpenError",
    "ManifestError",
    "NodeError",
    "NodeTimeoutError",
    "RemoteError",
    "RemoteMediaError",
    "RetryableError",
]

if TYPE_CHECKING or _native is not None:
    from remotemedia._native import (
        CircuitOpenError,
        ManifestError,
        NodeError,
        NodeTimeoutError,
        RemoteError,
        RemoteMediaError,
        RetryableError,
    )
else:  # pragma: no cover - only without the built extension
    from remotemedia._fallback_errors import (
        CircuitOpenError,
        ManifestError,
        NodeError,
        NodeTimeoutError,
        RemoteError,
        RemoteMediaError,
        RetryableError,
    )
