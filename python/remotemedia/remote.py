"""Running pipelines on a remotemedia server (``remotemedia serve``)."""

from __future__ import annotations

import json
import os
import threading
from typing import Any, Protocol

from remotemedia import _native
from remotemedia.errors import RemoteError
from remotemedia.streaming import Session


class _Serializable(Protocol):
    """What a remote run needs of a pipeline: its manifest."""

    def serialize(self, indent: int | None = 2) -> str: ...


__all__ = ["TOKEN_ENV", "RemoteClient"]

#: Environment variable read for the bearer token when none is given.
TOKEN_ENV = "REMOTEMEDIA_TOKEN"


class RemoteClient:
    """A connection to a remotemedia server.

    >>> client = RemoteClient("127.0.0.1:50051")                    # doctest: +SKIP
    >>> client.run(pipeline, audio, sample_rate=48000)              # doctest: +SKIP

    ``token`` (or ``$REMOTEMEDIA_TOKEN``) is sent as ``authorization: Bearer <token>``.
    Results are the same types a local run returns; errors are the same exception classes
    (``ManifestError``, ``NodeError`` naming the node, ...), plus ``RemoteError`` for a refused
    call (auth, load, shutdown) or a broken connection, with ``grpc_code`` set.
    """

    def __init__(self, address: str, token: str | None = None) -> None:
        self.address = address
        self._native: Any = _native.RemoteClient(address, token or os.environ.get(TOKEN_ENV))
        self.last_metrics: dict[str, Any] | None = None

    def execute(
        self, manifest: str, data: Any, sample_rate: int | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """Runs a manifest (JSON text) on a whole input; returns ``{sink_id: output}``."""
        outputs: dict[str, Any]
        outputs, metrics = self._client().execute(manifest, data, sample_rate, timeout)
        self.last_metrics = json.loads(metrics)
        return outputs

    def run(
        self,
        pipeline: _Serializable,
        data: Any,
        sample_rate: int | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Like :meth:`Pipeline.run`, on the server."""
        data, rate = _native.prepare(data, sample_rate)
        outputs = self.execute(pipeline.serialize(indent=None), data, rate, timeout)
        return next(iter(outputs.values())) if len(outputs) == 1 else outputs

    def stream(
        self,
        pipeline: _Serializable,
        sample_rate: int,
        channels: int = 1,
        *,
        max_pending: int = 4,
        background: bool = False,
    ) -> Session:
        """Like :meth:`Pipeline.stream`, on the server."""
        backend = self._client().stream(pipeline.serialize(indent=None))
        return Session(
            backend, sample_rate, channels, max_pending=max_pending, background=background
        )

    def list_nodes(self) -> list[dict[str, str]]:
        """The server's node types."""
        nodes: list[dict[str, str]] = self._client().list_nodes()
        return nodes

    def version(self) -> dict[str, str]:
        """The server's versions."""
        version: dict[str, str] = self._client().version()
        return version

    def close(self) -> None:
        """Closes the connection (later calls raise). Clients from ``run(remote=...)`` are
        shared per address and closed at exit; close the ones you make yourself, or use
        ``with RemoteClient(...) as client:``."""
        self._native = None

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _client(self) -> Any:
        if self._native is None:
            raise RemoteError(f"the client for {self.address} is closed")
        return self._native

    def __repr__(self) -> str:
        return f"RemoteClient({self.address!r})"


_clients: dict[tuple[str, str | None], RemoteClient] = {}
_clients_lock = threading.Lock()


def client_for(address: str, token: str | None = None) -> RemoteClient:
    """A shared client per (address, token), so repeated runs reuse one connection."""
    key = (address, token or os.environ.get(TOKEN_ENV))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = RemoteClient(address, key[1])
        return client
