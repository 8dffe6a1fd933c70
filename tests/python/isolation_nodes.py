"""Nodes for test_isolation.py (importable by the worker processes)."""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any

import numpy as np

import remotemedia


class Scale(remotemedia.Node):
    """Multiplies by ``factor``."""

    def __init__(self, factor: float = 0.5) -> None:
        self.factor = factor

    def process(self, audio: remotemedia.Audio) -> Any:
        return np.asarray(audio) * self.factor


class Count(remotemedia.Node):
    """Counts its calls (state kept in its worker) and says where it runs."""

    def __init__(self) -> None:
        self.calls = 0

    def process(self, audio: remotemedia.Audio) -> Any:
        self.calls += 1
        return {"calls": self.calls, "pid": os.getpid(), "frames": len(audio)}


class CrashOn(remotemedia.Node):
    """Crashes its process on call ``n`` (1-based): a segfault or an exit."""

    def __init__(self, n: int = 2, how: str = "segfault") -> None:
        self.n, self.how, self.calls = n, how, 0

    def process(self, audio: remotemedia.Audio) -> Any:
        self.calls += 1
        if self.calls == self.n:
            if self.how == "segfault":
                ctypes.string_at(0)
            os._exit(3)
        return audio


class BlockInC(remotemedia.Node):
    """Blocks in C (time.sleep) for ``seconds``."""

    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds

    def process(self, audio: remotemedia.Audio) -> Any:
        time.sleep(self.seconds)
        return audio


class Burn(remotemedia.Node):
    """Pure-Python CPU work, ``loops`` iterations a call."""

    def __init__(self, loops: int = 2_000_000) -> None:
        self.loops = loops

    def process(self, audio: remotemedia.Audio) -> Any:
        x = 0
        for i in range(self.loops):
            x += i
        return audio


class Fails(remotemedia.Node):
    def process(self, audio: remotemedia.Audio) -> Any:
        raise ValueError("bad input in the worker")


class FailsOdd(remotemedia.Node):
    """Raises on odd calls; on even ones says how many calls and where."""

    def __init__(self) -> None:
        self.calls = 0

    def process(self, audio: remotemedia.Audio) -> Any:
        self.calls += 1
        if self.calls % 2:
            raise ValueError(f"odd call {self.calls}")
        return {"calls": self.calls, "pid": os.getpid()}


class Hog(remotemedia.Node):
    """Allocates ``mb`` MiB (touching it) on calls whose input's first sample is 1.0."""

    def __init__(self, mb: int = 512) -> None:
        self.mb = mb
        self.kept: list[Any] = []

    def process(self, audio: remotemedia.Audio) -> Any:
        if float(np.asarray(audio)[0]) == 1.0:
            self.kept.append(np.ones(self.mb << 18, dtype=np.float32))  # mb MiB
        return {"pid": os.getpid(), "calls": len(self.kept)}


class Keep(remotemedia.Node):
    """Keeps every input chunk (a view of it, as a buffering node does) and returns the sum of
    all kept so far: wrong if a kept chunk's memory is reused."""

    def __init__(self) -> None:
        self.kept: list[Any] = []

    def process(self, audio: remotemedia.Audio) -> Any:
        self.kept.append(audio[1:])  # a view of a view
        if len(self.kept) > 3:
            self.kept.pop(0)
        return float(sum(np.asarray(a).sum() for a in self.kept))


class PassThrough(remotemedia.Node):
    """Returns its input."""

    def process(self, audio: remotemedia.Audio) -> Any:
        return audio
