"""Everyday native audio nodes: gain, loudness normalisation, filters, mixing, trimming and
fades, run natively like every built-in node; see docs/nodes.md for every parameter and its
range."""

from __future__ import annotations

from typing import Literal

from remotemedia._types import Audio
from remotemedia.nodes.audio import BuiltinNode

__all__ = [
    "BiquadNode",
    "FadeNode",
    "GainNode",
    "HighPassNode",
    "LoudnessNormalizeNode",
    "LowPassNode",
    "MixNode",
    "TrimSilenceNode",
]


class GainNode(BuiltinNode[Audio]):
    """Applies a gain: exactly one of ``db``, ``linear`` or ``peak_db``.

    ``peak_db`` scales the stream so its highest absolute sample is at that level; it needs
    the whole stream, so the audio is emitted at ``flush``. Integer outputs saturate.
    """

    node_type = "GainNode"

    def __init__(
        self, db: float | None = None, linear: float | None = None, peak_db: float | None = None
    ) -> None:
        self.db = db
        self.linear = linear
        self.peak_db = peak_db
        self._setup()


class LoudnessNormalizeNode(BuiltinNode[Audio]):
    """EBU R128 / ITU-R BS.1770 integrated loudness to ``target_lufs`` with a
    ``true_peak_db`` ceiling.

    ``mode="whole"`` measures the whole stream and emits it at ``flush`` (two passes);
    ``mode="streaming"`` follows a gated running estimate, updated every 100 ms, with no
    latency.
    """

    node_type = "LoudnessNormalizeNode"

    def __init__(
        self,
        target_lufs: float = -23.0,
        true_peak_db: float = -1.0,
        mode: Literal["whole", "streaming"] = "whole",
    ) -> None:
        self.target_lufs = target_lufs
        self.true_peak_db = true_peak_db
        self.mode = mode
        self._setup()


class HighPassNode(BuiltinNode[Audio]):
    """Butterworth high-pass of ``order`` 1..=8 at ``cutoff_hz``;
    ``preset="dc_removal"`` is 20 Hz, order 2."""

    node_type = "HighPassNode"

    def __init__(
        self,
        cutoff_hz: float | None = None,
        order: int = 2,
        preset: Literal["dc_removal"] | None = None,
    ) -> None:
        self.cutoff_hz = cutoff_hz
        self.order = order
        self.preset = preset
        self._setup()


class LowPassNode(BuiltinNode[Audio]):
    """Butterworth low-pass of ``order`` 1..=8 at ``cutoff_hz``."""

    node_type = "LowPassNode"

    def __init__(self, cutoff_hz: float, order: int = 2) -> None:
        self.cutoff_hz = cutoff_hz
        self.order = order
        self._setup()


BiquadType = Literal[
    "lowpass", "highpass", "bandpass", "notch", "allpass", "peaking", "lowshelf", "highshelf"
]


class BiquadNode(BuiltinNode[Audio]):
    """One RBJ "Audio EQ Cookbook" biquad section; ``gain_db`` applies to "peaking",
    "lowshelf" and "highshelf"."""

    node_type = "BiquadNode"

    def __init__(
        self,
        filter_type: BiquadType,
        freq_hz: float,
        q: float = 0.7071067811865476,
        gain_db: float = 0.0,
    ) -> None:
        self.filter_type = filter_type
        self.freq_hz = freq_hz
        self.q = q
        self.gain_db = gain_db
        self._setup()


class MixNode(BuiltinNode[Audio]):
    """Sums its inputs (connect several nodes to it), aligned by stream position; ``gains``
    maps upstream node ids to dB (default 0). Inputs must share rate and channel count."""

    node_type = "MixNode"

    def __init__(self, gains: dict[str, float] | None = None) -> None:
        self.gains = dict(gains or {})
        self._setup()


class TrimSilenceNode(BuiltinNode[Audio]):
    """Removes leading and trailing audio quieter than ``threshold_db`` dBFS, keeping
    ``pad_ms`` around the sound."""

    node_type = "TrimSilenceNode"

    def __init__(self, threshold_db: float = -60.0, pad_ms: int = 0) -> None:
        self.threshold_db = threshold_db
        self.pad_ms = pad_ms
        self._setup()


class FadeNode(BuiltinNode[Audio]):
    """Fades in over ``fade_in_ms`` and out over ``fade_out_ms`` (held back and applied at
    ``flush``) with ``curve`` "linear", "sine" or "quadratic"."""

    node_type = "FadeNode"

    def __init__(
        self,
        fade_in_ms: int = 0,
        fade_out_ms: int = 0,
        curve: Literal["linear", "sine", "quadratic"] = "linear",
    ) -> None:
        self.fade_in_ms = fade_in_ms
        self.fade_out_ms = fade_out_ms
        self.curve = curve
        self._setup()
