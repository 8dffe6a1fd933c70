"""The exception hierarchy (defined in Rust, re-exported here).

::

    RemoteMediaError
     ├── ManifestError      invalid manifest or node parameters; ``issues`` lists them
     │                      as dicts {node_id, node_type, field, message}
     ├── NodeError          a native node failed; ``node_id`` / ``node_type`` name it,
     │                      ``kind`` says what went wrong (``"sample_rate_changed"``,
     │                      ``"not_audio"``, ``"not_finite"``, ``"failed"``, ...)
     │    └── NodeTimeoutError
     ├── CircuitOpenError   a node's circuit breaker is open
     ├── RemoteError        a remote call was refused or failed in transport (``grpc_code``)
     └── RetryableError     raise it from your node to ask for a retry

    CallInterrupted (a BaseException) is raised *inside* your node's call when the runtime
    gives up on it (its ``timeout_ms`` passed, the run was cancelled); let it propagate.

Every error has ``code`` (``"manifest"``, ``"timeout"``, ...): the same class and code for a
local run and a remote one. Exceptions raised by your own Python nodes keep their type, message
and traceback; a note (and the ``remotemedia_node_id`` attribute) says which node raised them.
"""

from __future__ import annotations

from remotemedia._native import (
    CallInterrupted,
    CircuitOpenError,
    ManifestError,
    NodeError,
    NodeTimeoutError,
    RemoteError,
    RemoteMediaError,
    RetryableError,
)

__all__ = [
    "CallInterrupted",
    "CircuitOpenError",
    "ManifestError",
    "NodeError",
    "NodeTimeoutError",
    "RemoteError",
    "RemoteMediaError",
    "RetryableError",
]
