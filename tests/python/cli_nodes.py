"""Python node classes that manifests name as 'cli_nodes:Class' (used by test_cli.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

import remotemedia


class Gain(remotemedia.Node):
    """Multiplies audio by a factor."""

    def __init__(self, factor: float = 1.0) -> None:
        self.factor = factor

    def process(self, audio: remotemedia.Audio) -> remotemedia.Audio:
        return audio * np.float32(self.factor)


class Stats(remotemedia.Node):
    """Emits a JSON-able summary of the audio it saw."""

    def __init__(self) -> None:
        self.frames = 0
        self.rate: int | None = None

    def initialize(self) -> None:
        self.frames = 0

    def process(self, audio: remotemedia.Audio) -> None:
        self.frames += audio.frames
        self.rate = audio.sample_rate
        return None

    def flush(self) -> Any:
        return {"frames": self.frames, "sample_rate": self.rate}


class Mix(remotemedia.Node):
    """Scales audio by ``base`` times every one of ``gains`` (a node with ``*args``)."""

    def __init__(self, base: float, *gains: float, offset: float = 0.0) -> None:
        self.base = base
        self.gains = gains
        self.offset = offset

    def process(self, audio: remotemedia.Audio) -> remotemedia.Audio:
        scale = self.base * float(np.prod(self.gains))
        return audio * np.float32(scale) + np.float32(self.offset)


class Explode(remotemedia.Node):
    """Raises on every call (a failing node for server tests)."""

    def process(self, audio: remotemedia.Audio) -> None:
        raise ValueError("injected failure")


class Sleep(remotemedia.Node):
    """Sleeps ``seconds`` per call, then passes its input on."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds

    def process(self, audio: remotemedia.Audio) -> remotemedia.Audio:
        import time

        time.sleep(self.seconds)
        return audio


class Spin(remotemedia.Node):
    """Loops in pure Python forever (a hung node for timeout tests)."""

    def process(self, audio: remotemedia.Audio) -> remotemedia.Audio:
        while True:
            pass


class Silent(remotemedia.Node):
    """Returns None from every call (a node that passes nothing on)."""

    def process(self, audio: remotemedia.Audio) -> None:
        return None
