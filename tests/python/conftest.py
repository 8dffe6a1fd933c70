"""Shared fixtures: test signals and a clean environment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees another's fault-injection switch."""
    monkeypatch.delenv("REMOTEMEDIA_TEST_NODES", raising=False)


def music(rate: int, secs: float, channels: int = 1, seed: int = 0) -> np.ndarray:
    """Music-like test audio: harmonics with slow amplitude modulation plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * secs)) / rate
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 0.7 * t)
    cols = []
    for c in range(channels):
        s = sum(
            0.08 * np.sin(2 * np.pi * f * t + c)
            for f in (110.0, 220.0, 330.0, 440.0, 660.0, 1250.0, 2500.0, 3100.0)
        )
        cols.append(env * s + 0.01 * rng.standard_normal(t.size))
    x = np.stack(cols, axis=1) if channels > 1 else cols[0]
    return x.astype(np.float32)


def bursts(rate: int = 16000) -> np.ndarray:
    """0.5 s silence, 0.6 s tone, 0.4 s silence, 0.3 s tone, 0.2 s silence."""
    parts = []
    for secs, amp in ((0.5, 0.0), (0.6, 0.5), (0.4, 0.0), (0.3, 0.5), (0.2, 0.0)):
        t = np.arange(int(rate * secs)) / rate
        parts.append(amp * np.sin(2 * np.pi * 440 * t))
    return np.concatenate(parts).astype(np.float32)


@pytest.fixture
def example_wav() -> Path:
    return REPO / "examples" / "speech_48k.wav"
