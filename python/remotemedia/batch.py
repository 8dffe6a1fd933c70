"""The result of :meth:`Pipeline.run_files <remotemedia.Pipeline.run_files>`: one record per file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["BatchResult", "FileResult"]

Status = Literal["ok", "error", "skipped"]


@dataclass(frozen=True)
class FileResult:
    """What happened to one input file (one line of ``summary.jsonl``)."""

    file: str
    """The input path, as found (relative inputs stay relative)."""
    status: Status
    """``"ok"``, ``"error"`` (see :attr:`error`) or ``"skipped"`` (``skip_existing`` found it done)."""
    error: str | None = None
    """Why the file failed: the message names the file and what is wrong with it."""
    audio_seconds: float | None = None
    """Seconds of audio read (``None`` for an error; for ``"skipped"``, what the run that made
    its outputs read, when its summary says)."""
    wall_seconds: float = 0.0
    """Wall time spent on this file, reading and writing included."""
    outputs: list[str] = field(default_factory=list)
    """The files written for it (one per sink), under ``out_dir`` with the relative path kept."""

    @classmethod
    def _from_record(cls, r: dict[str, Any]) -> FileResult:
        return cls(
            file=str(r["file"]),
            status=r["status"],
            error=r.get("error"),
            audio_seconds=r.get("audio_seconds"),
            wall_seconds=float(r.get("wall_seconds", 0.0)),
            outputs=[str(p) for p in r.get("outputs", [])],
        )


@dataclass(frozen=True)
class BatchResult:
    """Every file's :class:`FileResult`, in input order, and totals.

    A failing file does not stop the batch; check :attr:`failed` (or call
    :meth:`raise_if_failed`).
    """

    files: list[FileResult]
    out_dir: Path
    summary_path: Path
    """``summary.jsonl`` in ``out_dir``: the same records as JSON lines."""
    wall_seconds: float
    """Wall time of the whole batch."""

    @property
    def ok(self) -> list[FileResult]:
        """Files processed successfully in this run."""
        return [f for f in self.files if f.status == "ok"]

    @property
    def failed(self) -> list[FileResult]:
        """Files that failed, each with its :attr:`FileResult.error`."""
        return [f for f in self.files if f.status == "error"]

    @property
    def skipped(self) -> list[FileResult]:
        """Files left alone because their outputs existed (``skip_existing=True``)."""
        return [f for f in self.files if f.status == "skipped"]

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio processed in this run (skipped files not counted)."""
        return sum(f.audio_seconds or 0.0 for f in self.files if f.status == "ok")

    def raise_if_failed(self) -> None:
        """Raises RuntimeError listing the failed files (up to 5) and their errors."""
        failed = self.failed
        if failed:
            lines = [f"  {f.file}: {f.error}" for f in failed[:5]]
            more = f"\n  ... and {len(failed) - 5} more" if len(failed) > 5 else ""
            raise RuntimeError(
                f"{len(failed)} of {len(self.files)} file(s) failed (see {self.summary_path}):\n"
                + "\n".join(lines)
                + more
            )

    def __repr__(self) -> str:
        return (
            f"BatchResult(files={len(self.files)}, ok={len(self.ok)}, failed={len(self.failed)}, "
            f"skipped={len(self.skipped)}, audio_seconds={self.audio_seconds:.1f}, "
            f"wall_seconds={self.wall_seconds:.2f})"
        )

    @classmethod
    def _from_json(cls, text: str, out_dir: Path, wall_seconds: float) -> BatchResult:
        return cls(
            files=[FileResult._from_record(r) for r in json.loads(text)],
            out_dir=out_dir,
            summary_path=out_dir / "summary.jsonl",
            wall_seconds=wall_seconds,
        )
