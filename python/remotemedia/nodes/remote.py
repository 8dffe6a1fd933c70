"""`RemotePipelineNode`: a sub-pipeline on a remotemedia server, as one node."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Protocol

from remotemedia.nodes.builtin import BuiltinNode


class _HasManifest(Protocol):
    def to_manifest(self) -> dict[str, Any]: ...


__all__ = ["RemotePipelineNode"]


class RemotePipelineNode(BuiltinNode[Any]):
    """Runs ``manifest`` (a :class:`~remotemedia.Pipeline` or a manifest dict) on the server
    at ``address``, streaming each chunk through it; emits the sub-pipeline's output (a dict
    by sink id when it has several sinks). ``token_env`` names an environment variable that
    holds the server's bearer token."""

    node_type = "RemotePipelineNode"
    runtime: ClassVar[str] = "remote"

    def __new__(
        cls, address: str, manifest: Any, token_env: str | None = None
    ) -> RemotePipelineNode:
        # Store a Pipeline argument as its manifest, so the node serializes as data.
        if hasattr(manifest, "to_manifest"):
            manifest = manifest.to_manifest()
        elif isinstance(manifest, str):
            manifest = json.loads(manifest)
        obj = super().__new__(cls, address, manifest, token_env)
        return obj

    def __init__(
        self,
        address: str,
        manifest: _HasManifest | dict[str, Any] | str,
        token_env: str | None = None,
    ) -> None:
        self.address = address
        self.manifest = self._init_params["manifest"]
        self.token_env = token_env
        if token_env is None:
            self._init_params.pop("token_env", None)
        self._setup()
