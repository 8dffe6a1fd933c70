"""Running a pipeline over a corpus on Ray Data (``pip install "remotemedia[ray]"``).

Each Ray actor builds the pipeline once and processes rows; a failing row is recorded
(``status="error"`` and the message) instead of failing the job. The same code runs on a laptop
(``ray.init(num_cpus=2)``) and on a cluster (``ray.init(address="auto")``)::

    import ray, remotemedia.ray as rmray
    ds = ray.data.from_items([{"path": p} for p in paths])
    out = rmray.map_pipeline(ds, "job.json", out_dir="/shared/cleaned", concurrency=8)
    failed = out.filter(lambda r: r["status"] != "ok").take_all()

Rows hold either ``path`` (an audio file, read natively) or ``audio`` + ``sample_rate``
(decoded samples). The gRPC server stays the answer for live streams; Ray is for corpora.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PipelineMapper", "map_pipeline"]


def _manifest_text(manifest: str | os.PathLike[str] | dict[str, Any]) -> str:
    if isinstance(manifest, dict):
        return json.dumps(manifest)
    text = os.fspath(manifest)
    if text.lstrip().startswith("{"):
        return text
    return Path(text).read_text()


class PipelineMapper:
    """A Ray Data callable class: the pipeline is built once per actor, in ``__init__``."""

    def __init__(self, manifest: str, out_dir: str | None = None, audio_format: str = "wav"):
        import remotemedia

        self._rm = remotemedia
        self._pipeline = remotemedia.Pipeline.from_manifest(json.loads(manifest))
        self._out_dir = Path(out_dir) if out_dir else None
        self._ext = audio_format

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = dict(row)
        out.pop("audio", None)  # the input samples are not carried into the result row
        t0 = time.perf_counter()
        try:
            if "path" in row:
                audio = self._rm.read(row["path"])
            else:
                audio = self._rm.Audio(np.asarray(row["audio"]), int(row["sample_rate"]))
            out["audio_seconds"] = len(audio) / int(audio.sample_rate or 1)
            result = self._pipeline.run(audio)
            out["output"] = self._emit(row, result)
            out["status"], out["error"] = "ok", None
        except Exception as e:  # recorded per row, so one bad file does not end the job
            out["status"], out["error"] = "error", f"{type(e).__name__}: {e}"
            out["output"] = None
            out.setdefault("audio_seconds", None)
        out["wall_seconds"] = time.perf_counter() - t0
        return out

    def _emit(self, row: dict[str, Any], result: Any) -> Any:
        audio_cls = self._rm.Audio
        if self._out_dir is None:
            if isinstance(result, audio_cls):
                return {"sample_rate": result.sample_rate, "audio": np.asarray(result)}
            return json.loads(json.dumps(result, default=_jsonable))
        stem = Path(str(row.get("path", row.get("id", "row")))).stem
        self._out_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(result, audio_cls):
            dest = self._out_dir / f"{stem}.{self._ext}"
            self._rm.write(dest, result)
        else:
            dest = self._out_dir / f"{stem}.json"
            dest.write_text(json.dumps(result, default=_jsonable, indent=2) + "\n")
        return str(dest)


def _jsonable(value: Any) -> Any:
    for attr in ("to_dict", "_asdict"):
        if hasattr(value, attr):
            return getattr(value, attr)()
    if hasattr(value, "__dict__"):
        return vars(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} has no JSON form")


def map_pipeline(
    ds: Any,
    manifest: str | os.PathLike[str] | dict[str, Any],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    concurrency: int = 2,
    audio_format: str = "wav",
) -> Any:
    """Maps `manifest` over a Ray Dataset on `concurrency` actors; returns the result rows."""
    return ds.map(
        PipelineMapper,
        fn_constructor_kwargs={
            "manifest": _manifest_text(manifest),
            "out_dir": os.fspath(out_dir) if out_dir is not None else None,
            "audio_format": audio_format,
        },
        concurrency=concurrency,
    )
