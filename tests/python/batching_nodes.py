"""Nodes for test_batching.py (importable by worker processes and the server)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

import remotemedia


class BatchScale(remotemedia.Node):
    """Multiplies by ``factor``; ``process_batch`` does the same for many inputs at once and
    tags each result with the batch's size (so a test can see batches were formed)."""

    def __init__(self, factor: float = 0.5) -> None:
        self.factor = factor

    def process(self, audio: remotemedia.Audio) -> Any:
        return self.process_batch([audio])[0]

    def process_batch(self, inputs: list[remotemedia.Audio]) -> list[Any]:
        return [
            {
                "out": (np.asarray(a) * self.factor).tolist(),
                "batch": len(inputs),
                "pid": os.getpid(),
            }
            for a in inputs
        ]


class BatchFails(remotemedia.Node):
    """``process_batch`` raises, or returns one result too many with ``extra=True``."""

    def __init__(self, extra: bool = False) -> None:
        self.extra = extra

    def process(self, audio: remotemedia.Audio) -> Any:
        return audio

    def process_batch(self, inputs: list[Any]) -> list[Any]:
        if self.extra:
            return [*inputs, None]
        raise ValueError("model exploded")


class NoBatch(remotemedia.Node):
    def process(self, audio: remotemedia.Audio) -> Any:
        return audio


class Mlp(remotemedia.Node):
    """A small numpy model: a 20 ms chunk (320 samples) through two dense layers, scored to one
    number; ``process_batch`` runs a whole batch as one matrix product per layer."""

    def __init__(self, hidden: int = 512, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.w1 = (rng.standard_normal((320, hidden)) / np.sqrt(320)).astype(np.float32)
        self.w2 = (rng.standard_normal((hidden, hidden)) / np.sqrt(hidden)).astype(np.float32)
        self.w3 = (rng.standard_normal(hidden) / np.sqrt(hidden)).astype(np.float32)

    def _score(self, x: np.ndarray) -> np.ndarray:
        h = np.tanh(x @ self.w1)
        h = np.tanh(h @ self.w2)
        return np.asarray(h @ self.w3)

    def process(self, audio: remotemedia.Audio) -> Any:
        return float(self._score(np.asarray(audio, dtype=np.float32)[None, :])[0])

    def process_batch(self, inputs: list[remotemedia.Audio]) -> list[Any]:
        x = np.stack([np.asarray(a, dtype=np.float32) for a in inputs])
        return [float(v) for v in self._score(x)]
