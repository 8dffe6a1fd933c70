# Generated from the node definitions in crates/remotemedia-nodes (each node's NodeDef) by
# `REMOTEMEDIA_BLESS=1 cargo test -p remotemedia-nodes --test generated`. Do not edit by hand:
# change the node's Rust definition and regenerate.
"""The built-in node classes, generated from their Rust definitions: names, parameters, their
order, defaults, types (``Literal`` for enumerations) and docs all come from the runtime's own
node definitions, so Python runs what the CLI and the server run."""

from __future__ import annotations

import os
from typing import Any, Literal, overload

from remotemedia._types import Audio, Segment, SpeechFrame, VadEvent
from remotemedia.nodes.base import OutT
from remotemedia.nodes.builtin import BuiltinNode, SampleFormatLike, format_name

__all__ = [
    "AudioResampleNode",
    "AutoGainNode",
    "BiquadNode",
    "BiquadType",
    "ChannelMixNode",
    "DenoiseEmit",
    "DenoiseNode",
    "Dither",
    "EchoCancelNode",
    "FadeCurve",
    "FadeNode",
    "FormatConverterNode",
    "GainNode",
    "HighPassNode",
    "HighPassPreset",
    "LoudnessMode",
    "LoudnessNormalizeNode",
    "LowPassNode",
    "MixNode",
    "PassThroughNode",
    "ResampleQuality",
    "SpeechVADNode",
    "SpeechVadEmit",
    "SpeechVadEngine",
    "TrimSilenceNode",
    "VADNode",
    "VadEmit",
]

#: RBJ cookbook filter types.
BiquadType = Literal[
    "lowpass",
    "highpass",
    "bandpass",
    "notch",
    "allpass",
    "peaking",
    "lowshelf",
    "highshelf",
]

#: What `DenoiseNode` emits.
DenoiseEmit = Literal["audio", "probabilities"]

#: Dither added before quantising to an integer format.
Dither = Literal["none", "tpdf"]

#: Shape of a fade, as gain over `t` in [0, 1] (0 silent, 1 full level).
FadeCurve = Literal["linear", "sine", "quadratic"]

#: Named `HighPassNode` settings.
HighPassPreset = Literal["dc_removal", "voice"]

#: How `LoudnessNormalizeNode` measures.
LoudnessMode = Literal["whole", "streaming"]

#: Speed/quality trade-off. Each pair runs on the faster of two engines (a polyphase FIR, or
#: rubato's FFT resampler where that is faster); figures per pair,
#: including the streaming latency (1-6 ms on the FIR, up to about 30 ms on rubato at
#: `high`), are in `docs/resampling.md`.
ResampleQuality = Literal["fast", "medium", "high"]

#: What `SpeechVADNode` emits.
SpeechVadEmit = Literal["segments", "speech", "events", "probabilities"]

#: Which network gives the speech probabilities.
SpeechVadEngine = Literal["earshot", "silero"]

#: What `VADNode` emits.
VadEmit = Literal["segments", "speech", "events"]


class AudioResampleNode(BuiltinNode[Audio]):
    """Converts audio to `target_rate` Hz (any rate pair, any channel count) with a band-limited
    resampler (polyphase FIR or FFT, whichever is faster for the pair).

    Output length is `ceil(n * target_rate / source_rate)`; the filter delay is compensated, so
    output lines up with input; the sample format is kept. `quality` "fast", "medium" or "high"
    (all band-limited) trade latency for passband width and alias rejection (docs/resampling.md).

    Parameters:
        target_rate (``int``, 8000..=384000 Hz): Output sample rate in Hz, an integer in
            8000..=384000.
        quality (``ResampleQuality``, default ``"high"``): "fast", "medium" or "high" (default).
    """

    node_type = "AudioResampleNode"

    def __init__(self, target_rate: int, quality: ResampleQuality = "high") -> None:
        self.target_rate = target_rate
        self.quality = quality
        self._setup()


class AutoGainNode(BuiltinNode[Audio]):
    """Automatic gain control for speech: brings speech to `target_db` (RMS over speech) and keeps peaks under `limiter_db`.

    The level is measured only where the bundled Silero detector finds speech, so noise and
    pauses do not pump the gain; the gain moves at most `max_gain_change_db_per_s` and never
    above `max_gain_db`. Any rate and channel count (one gain for all channels), the format kept;
    no added latency at 16 kHz (the resampler's look-ahead at other rates).

    Parameters:
        target_db (``float``, default ``-20.0``, -50.0..=-3.0 dBFS): The speech level to reach, RMS
            over speech, -50.0..=-3.0 dBFS. Default -20.
        max_gain_db (``float``, default ``30.0``, 0.0..=60.0 dB): Most gain applied, 0.0..=60.0 dB.
            Default 30.
        max_gain_change_db_per_s (``float``, default ``12.0``, 1.0..=100.0 dB/s): Fastest gain
            change, 1.0..=100.0 dB per second. Default 12.
        limiter_db (``float``, default ``-1.0``, -20.0..=0.0 dBFS): Peak ceiling of the limiter,
            -20.0..=0.0 dBFS. Default -1.
    """

    node_type = "AutoGainNode"

    def __init__(
        self,
        target_db: float = -20.0,
        max_gain_db: float = 30.0,
        max_gain_change_db_per_s: float = 12.0,
        limiter_db: float = -1.0,
    ) -> None:
        self.target_db = target_db
        self.max_gain_db = max_gain_db
        self.max_gain_change_db_per_s = max_gain_change_db_per_s
        self.limiter_db = limiter_db
        self._setup()


class BiquadNode(BuiltinNode[Audio]):
    """One RBJ "Audio EQ Cookbook" biquad section: `filter_type` lowpass, highpass, bandpass,
    notch, allpass, peaking, lowshelf or highshelf at `freq_hz` with `q`; `gain_db` applies to
    peaking, lowshelf and highshelf.

    Parameters:
        filter_type (``BiquadType``): "lowpass", "highpass", "bandpass", "notch", "allpass",
            "peaking", "lowshelf" or "highshelf".
        freq_hz (``float``, 1.0..=192000.0 Hz): Centre or corner frequency in Hz, 1.0..=192000.0 and
            below the input's Nyquist.
        q (``float``, default ``0.7071067811865476``, 0.01..=100.0): Quality factor, 0.01..=100.0.
            Default 0.7071.
        gain_db (``float``, default ``0.0``, -60.0..=60.0 dB): Gain in dB for "peaking", "lowshelf"
            and "highshelf", -60.0..=60.0. Default 0.
    """

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


class ChannelMixNode(BuiltinNode[Audio]):
    """Changes the channel count: downmix to mono (`channels=1`, the average of the channels)
    or up-mix mono to `channels` identical channels. Keeps the sample format.

    Parameters:
        channels (``int``, 1..=64): Output channel count, 1..=64. 1 averages all input channels; N >
            1 requires mono input and copies it to every channel.
    """

    node_type = "ChannelMixNode"

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self._setup()


class DenoiseNode(BuiltinNode[OutT]):
    """Suppresses background noise in speech with RNNoise (a small recurrent network, in Rust).

    Any rate (resampled to 48 kHz and back inside), any channel count (each denoised on its own),
    the sample format kept; output lines up with the input and has its length. A live stream lags
    by 10 ms at 48 kHz (plus the resamplers' look-ahead at other rates). `attenuation_limit_db`
    caps the suppression (the input mixed back in at that level); emit="probabilities" gives
    RNNoise's speech probability per 10 ms instead of audio.

    Parameters:
        emit (``DenoiseEmit``, default ``"audio"``): "audio" (default): the denoised audio;
            "probabilities": RNNoise's speech probability per 10 ms, `[{start_ms, end_ms,
            probability}]`.
        attenuation_limit_db (``float | None``, default ``None``, 1.0..=100.0 dB): Most attenuation
            applied anywhere, 1.0..=100.0 dB (the input is mixed back in at -limit dB). Default:
            none (RNNoise's full suppression).
    """

    node_type = "DenoiseNode"

    @overload
    def __init__(
        self: DenoiseNode[Audio],
        emit: Literal["audio"] = "audio",
        attenuation_limit_db: float | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: DenoiseNode[list[SpeechFrame]],
        *,
        emit: Literal["probabilities"],
        attenuation_limit_db: float | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: DenoiseNode[Any],
        emit: str = "audio",
        attenuation_limit_db: float | None = None,
    ) -> None: ...
    def __init__(self, emit: str = "audio", attenuation_limit_db: float | None = None) -> None:
        self.emit = emit
        self.attenuation_limit_db = attenuation_limit_db
        self._setup()


class EchoCancelNode(BuiltinNode[Audio]):
    """Removes the echo of the far-end reference (`far`: what the speaker played) from the microphone (`mic`), with WebRTC's AEC3.

    Two inputs named by upstream node id; aligned by stream position (send silence on the
    reference while nothing plays). AEC3 finds the echo delay (0-500 ms) and its drift and keeps
    near-end speech in double talk. Output: the microphone's rate, channels, format and length.

    Parameters:
        mic (``str``): The upstream node id of the microphone input.
        far (``str``): The upstream node id of the far-end reference (what the speaker played).
    """

    node_type = "EchoCancelNode"

    def __init__(self, mic: str, far: str) -> None:
        self.mic = mic
        self.far = far
        self._setup()


class FadeNode(BuiltinNode[Audio]):
    """Fades in over `fade_in_ms` and out over `fade_out_ms` with `curve` "linear", "sine" or
    "quadratic"; the fade-out holds back its length of audio and is applied at flush.

    Parameters:
        fade_in_ms (``int``, default ``0``, 0..=600000): Fade-in length, 0..=600000 ms. Default 0.
        fade_out_ms (``int``, default ``0``, 0..=600000): Fade-out length, 0..=600000 ms (held back
            until flush). Default 0.
        curve (``FadeCurve``, default ``"linear"``): "linear" (default), "sine" or "quadratic".
    """

    node_type = "FadeNode"

    def __init__(
        self,
        fade_in_ms: int = 0,
        fade_out_ms: int = 0,
        curve: FadeCurve = "linear",
    ) -> None:
        self.fade_in_ms = fade_in_ms
        self.fade_out_ms = fade_out_ms
        self.curve = curve
        self._setup()


class FormatConverterNode(BuiltinNode[Audio]):
    """Converts the sample format ("f32", "i16", "i32", "f64").

    Integer <-> float scales by 2^(bits-1); float -> integer rounds half to even and saturates
    (never wraps); the same format passes through without a copy. dither="tpdf" adds +-1 LSB
    triangular noise (seeded by `seed`, reproducible) before rounding float -> integer and
    i32 -> i16.

    Parameters:
        target_format (``SampleFormatLike``): Output sample format: "f32", "i16", "i32" or "f64".
        dither (``Dither``, default ``"none"``): "none" (default) or "tpdf": dither when reducing to
            an integer format.
        seed (``int``, default ``0``, >= 0): Seed of the dither noise (any unsigned 64-bit integer).
            Default 0.
    """

    node_type = "FormatConverterNode"

    def __init__(
        self,
        target_format: SampleFormatLike,
        dither: Dither = "none",
        seed: int = 0,
    ) -> None:
        self.target_format = format_name(target_format)
        self._init_params["target_format"] = self.target_format
        self.dither = dither
        self.seed = seed
        self._setup()


class GainNode(BuiltinNode[Audio]):
    """Applies a gain: exactly one of `db`, `linear` or `peak_db`.

    `peak_db` scales the stream so its highest absolute sample is at that level; it needs the
    whole stream, so the audio is emitted at flush. Computed in f64; integer outputs round and
    saturate.

    Parameters:
        db (``float | None``, default ``None``, -120.0..=60.0 dB): Gain in dB, -120.0..=60.0.
        linear (``float | None``, default ``None``, 0.0..=1000.0): Gain as a factor, 0.0..=1000.0
            (negative factors are not gains; use a filter).
        peak_db (``float | None``, default ``None``, -120.0..=0.0 dBFS): Scale so the stream's
            highest absolute sample is at this level, -120.0..=0.0 dBFS. Holds the stream until
            flush.
    """

    node_type = "GainNode"

    def __init__(
        self,
        db: float | None = None,
        linear: float | None = None,
        peak_db: float | None = None,
    ) -> None:
        self.db = db
        self.linear = linear
        self.peak_db = peak_db
        self._setup()


class HighPassNode(BuiltinNode[Audio]):
    """Butterworth high-pass of `order` 1..=8 at `cutoff_hz` (cascaded biquads, f64 state);
    preset="dc_removal" is 20 Hz, order 2; preset="voice" is 80 Hz, order 4 (for speech).

    Parameters:
        cutoff_hz (``float | None``, default ``None``, 1.0..=192000.0 Hz): -3 dB frequency in Hz,
            1.0..=192000.0 and below the input's Nyquist frequency.
        order (``int``, default ``2``, 1..=8): Butterworth order, 1..=8 (6 dB/octave each). Default
            2.
        preset (``HighPassPreset | None``, default ``None``): "dc_removal": 20 Hz, order 2; "voice":
            80 Hz, order 4 (give no cutoff_hz or order with it).
    """

    node_type = "HighPassNode"

    def __init__(
        self,
        cutoff_hz: float | None = None,
        order: int = 2,
        preset: HighPassPreset | None = None,
    ) -> None:
        self.cutoff_hz = cutoff_hz
        self.order = order
        self.preset = preset
        self._setup()


class LoudnessNormalizeNode(BuiltinNode[Audio]):
    """EBU R128 / ITU-R BS.1770 integrated loudness normalisation to `target_lufs` with a
    `true_peak_db` ceiling.

    mode="whole" measures the whole stream and emits it at flush (two passes);
    mode="streaming" follows a gated running estimate, updated every 100 ms, with no latency.

    Parameters:
        target_lufs (``float``, default ``-23.0``, -70.0..=0.0 LUFS): Integrated loudness to reach,
            -70.0..=0.0 LUFS. Default -23.0 (EBU R128).
        true_peak_db (``float``, default ``-1.0``, -30.0..=0.0 dBTP): True-peak ceiling, -30.0..=0.0
            dBTP. Default -1.0.
        mode (``LoudnessMode``, default ``"whole"``): "whole" (default, two passes, emits at flush)
            or "streaming" (running estimate).
    """

    node_type = "LoudnessNormalizeNode"

    def __init__(
        self,
        target_lufs: float = -23.0,
        true_peak_db: float = -1.0,
        mode: LoudnessMode = "whole",
    ) -> None:
        self.target_lufs = target_lufs
        self.true_peak_db = true_peak_db
        self.mode = mode
        self._setup()


class LowPassNode(BuiltinNode[Audio]):
    """Butterworth low-pass of `order` 1..=8 at `cutoff_hz` (cascaded biquads, f64 state).

    Parameters:
        cutoff_hz (``float``, 1.0..=192000.0 Hz): -3 dB frequency in Hz, 1.0..=192000.0 and below
            the input's Nyquist frequency.
        order (``int``, default ``2``, 1..=8): Butterworth order, 1..=8 (6 dB/octave each). Default
            2.
    """

    node_type = "LowPassNode"

    def __init__(self, cutoff_hz: float, order: int = 2) -> None:
        self.cutoff_hz = cutoff_hz
        self.order = order
        self._setup()


class MixNode(BuiltinNode[Audio]):
    """Sums its inputs (connect several nodes to it), aligned by stream position, each scaled
    by `gains` (dB per upstream node id, default 0).

    Shorter inputs are padded with silence at flush; integer outputs saturate. Inputs must share
    rate and channel count.

    Parameters:
        gains (``dict[str, float] | None``, default ``None``): Gain per input in dB (-120.0..=60.0),
            keyed by upstream node id; inputs not named get 0 dB.
    """

    node_type = "MixNode"

    def __init__(self, gains: dict[str, float] | None = None) -> None:
        self.gains = gains
        self._setup()


class PassThroughNode(BuiltinNode[Any]):
    """Emits its input unchanged, without a copy (so its output is its input's type)."""

    node_type = "PassThroughNode"

    def __init__(self) -> None:
        self._setup()


class SpeechVADNode(BuiltinNode[OutT]):
    """Neural voice-activity detector: Silero VAD v6 by default, built in.

    Any sample rate (8000..=384000 Hz) and channel count: the node downmixes, resamples to 16 kHz
    internally and scores each frame with a speech probability (32 ms frames with the default
    engine, Silero VAD v6 run in Rust with its weights bundled (MIT): nothing to install, no ONNX
    Runtime; `model_path` reads a silero-vad silero_vad_op18_ifless.onnx instead). A segment opens
    at a frame `>= threshold`, continues while frames stay `>= end_threshold` (default
    `max(threshold - 0.15, 0.01)`, at most `threshold`), closes after `min_silence_ms` below it, is
    reported once its speech spans `min_speech_ms` and is widened by `pad_ms` on both sides;
    `max_speech_ms` splits longer ones. Times are in the input's timeline, exact to the sample.
    NaN/Inf samples are read as 0.

    emit="segments" gives the speech segments (times in ms, seconds and input samples, and
    `confidence`, the mean speech probability of the segment's frames, padding excluded);
    "speech" only the speech audio in the input's format (each output's `origin`: the input ranges
    it is, for the whole run and every stream chunk); "events" speech_start / speech_end
    events as soon as each is decided; "probabilities" `{start_ms, end_ms, probability}` per
    frame.

    engine="earshot" is the light engine (about a fifth of the CPU; 16 ms frames): earshot's
    network behind an energy and voicing gate. A frame's probability counts only when its energy
    above 150 Hz is `min_snr_db` above the noise floor (the quietest such energy of the last 2 s),
    or its voicing (periodicity of the 150-1000 Hz band, 0..1) is `min_voicing` above its own
    lowest value of the last 2 s (null: energy alone decides); the network hears the input
    levelled by at most `max_gain_db`. It mistakes music and steady tones for speech far more
    often (docs/benchmarks.md). With Silero these three gate parameters must keep their defaults.

    Parameters:
        threshold (``float``, default ``0.5``, 0.0..=1.0): Speech probability that opens a segment,
            0.0..=1.0. Default 0.5.
        end_threshold (``float | None``, default ``None``, 0.0..=1.0): Probability below which a
            frame counts as silence inside a segment, above 0 and at most threshold. Default (null):
            `max(threshold - 0.15, 0.01)`, at most threshold.
        min_speech_ms (``int``, default ``128``, 0..=10000 ms): Shortest speech reported, 0..=10000
            ms (speech_start comes this late). Default 128.
        min_silence_ms (``int``, default ``160``, 16..=10000 ms): Silence that ends a segment,
            16..=10000 ms. Default 160.
        pad_ms (``int``, default ``32``, 0..=10000 ms): Audio added before and after each segment,
            0..=min_silence_ms. Default 32.
        min_snr_db (``float``, default ``2.0``, 0.0..=40.0 dB): engine="earshot" only: how far, in
            dB, a frame's energy must rise above the noise floor (the quietest frame of the last 2
            s) for its probability to count, 0.0..=40.0 (0 disables). Default 2.0.
        min_voicing (``float | None``, default ``0.25``, 0.05..=1.0): engine="earshot" only: how far
            a frame's voicing (periodicity of the 150-1000 Hz band, 0..1) must rise above its lowest
            value of the last 2 s for its probability to count even when its energy does not stand
            out (speech in loud noise), 0.05..=1.0; null: energy alone decides. Default 0.25.
        emit (``SpeechVadEmit``, default ``"segments"``): "segments" (default), "speech", "events"
            or "probabilities".
        engine (``SpeechVadEngine``, default ``"silero"``): "silero" (default: Silero VAD v6, 32 ms
            frames) or "earshot" (the light engine, 16 ms frames, with the energy/voicing gate);
            both are built in.
        model_path (``str | os.PathLike[str] | None``, default ``None``): engine="silero" only: a
            Silero model file to read instead of the bundled weights (the silero-vad package's
            `silero_vad_op18_ifless.onnx`, version 6 or later). Default (null): the
            `REMOTEMEDIA_SILERO_MODEL` environment variable, else the bundled weights.
        max_gain_db (``float``, default ``30.0``, 0.0..=60.0 dB): engine="earshot" only: the network
            hears the input levelled: quiet speech louder, loud input quieter, by at most this many
            dB, 0.0..=60.0 (0: as it is). Only the analysis is levelled; emitted audio is the input.
            Default 30.0.
        max_speech_ms (``int | None``, default ``None``, 100..=3600000 ms): Longest segment,
            100..=3600000 ms, at least 2 x min_speech_ms; null (default): no limit. A segment that
            reaches it is split at its least speech-like frame after min_speech_ms (a pause, where
            there is one), and the rest goes on as a new segment.
    """

    node_type = "SpeechVADNode"

    @overload
    def __init__(
        self: SpeechVADNode[list[Segment]],
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        emit: Literal["segments"] = "segments",
        engine: SpeechVadEngine = "silero",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
        max_speech_ms: int | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: SpeechVADNode[Audio],
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        *,
        emit: Literal["speech"],
        engine: SpeechVadEngine = "silero",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
        max_speech_ms: int | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: SpeechVADNode[list[VadEvent]],
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        *,
        emit: Literal["events"],
        engine: SpeechVadEngine = "silero",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
        max_speech_ms: int | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: SpeechVADNode[list[SpeechFrame]],
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        *,
        emit: Literal["probabilities"],
        engine: SpeechVadEngine = "silero",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
        max_speech_ms: int | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: SpeechVADNode[Any],
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        emit: str = "segments",
        engine: SpeechVadEngine = "silero",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
        max_speech_ms: int | None = None,
    ) -> None: ...
    def __init__(
        self,
        threshold: float = 0.5,
        end_threshold: float | None = None,
        min_speech_ms: int = 128,
        min_silence_ms: int = 160,
        pad_ms: int = 32,
        min_snr_db: float = 2.0,
        min_voicing: float | None = 0.25,
        emit: str = "segments",
        engine: SpeechVadEngine = "silero",
        model_path: str | os.PathLike[str] | None = None,
        max_gain_db: float = 30.0,
        max_speech_ms: int | None = None,
    ) -> None:
        self.threshold = threshold
        self.end_threshold = end_threshold
        self.min_speech_ms = min_speech_ms
        self.min_silence_ms = min_silence_ms
        self.pad_ms = pad_ms
        self.min_snr_db = min_snr_db
        self.min_voicing = min_voicing
        self.emit = emit
        self.engine = engine
        self.model_path = model_path
        self.max_gain_db = max_gain_db
        self.max_speech_ms = max_speech_ms
        self._setup()


class TrimSilenceNode(BuiltinNode[Audio]):
    """Removes leading and trailing audio quieter than `threshold_db` dBFS, keeping `pad_ms`
    around the sound; trailing quiet audio is held until sound resumes or flush.

    Parameters:
        threshold_db (``float``, default ``-60.0``, -120.0..=0.0 dBFS): Level above which a sample
            counts as sound, -120.0..=0.0 dBFS. Default -60.0.
        pad_ms (``int``, default ``0``, 0..=10000 ms): Silence kept before the first and after the
            last loud frame, 0..=10000 ms. Default 0.
    """

    node_type = "TrimSilenceNode"

    def __init__(self, threshold_db: float = -60.0, pad_ms: int = 0) -> None:
        self.threshold_db = threshold_db
        self.pad_ms = pad_ms
        self._setup()


class VADNode(BuiltinNode[OutT]):
    """Energy voice-activity detector.

    Frames of `frame_length_ms` whose RMS level exceeds `threshold` dBFS are speech;
    `hangover_ms` keeps counting speech for that long after the last loud frame.
    emit="segments" gives the speech segments (times in ms, seconds and input samples, and
    `energy_db`, the segment's level in dBFS); emit="speech" only the speech audio, each
    output's `origin` the input ranges it is (whole run and every stream chunk);
    emit="events" speech_start / speech_end events as soon as each is decided (for streams).

    Parameters:
        threshold (``float``, default ``-30.0``, -120.0..=0.0 dBFS): Speech threshold in dBFS, a
            finite number in -120.0..=0.0. Default -30.0.
        frame_length_ms (``int``, default ``30``, 1..=1000 ms): Analysis frame length in
            milliseconds, 1..=1000. Default 30.
        emit (``VadEmit``, default ``"segments"``): "segments" (default), "speech" or "events".
        hangover_ms (``int``, default ``0``, 0..=10000 ms): Time after the last loud frame that
            still counts as speech, 0..=10000 ms. Default 0.
    """

    node_type = "VADNode"

    @overload
    def __init__(
        self: VADNode[list[Segment]],
        threshold: float = -30.0,
        frame_length_ms: int = 30,
        emit: Literal["segments"] = "segments",
        hangover_ms: int = 0,
    ) -> None: ...
    @overload
    def __init__(
        self: VADNode[Audio],
        threshold: float = -30.0,
        frame_length_ms: int = 30,
        *,
        emit: Literal["speech"],
        hangover_ms: int = 0,
    ) -> None: ...
    @overload
    def __init__(
        self: VADNode[list[VadEvent]],
        threshold: float = -30.0,
        frame_length_ms: int = 30,
        *,
        emit: Literal["events"],
        hangover_ms: int = 0,
    ) -> None: ...
    @overload
    def __init__(
        self: VADNode[Any],
        threshold: float = -30.0,
        frame_length_ms: int = 30,
        emit: str = "segments",
        hangover_ms: int = 0,
    ) -> None: ...
    def __init__(
        self,
        threshold: float = -30.0,
        frame_length_ms: int = 30,
        emit: str = "segments",
        hangover_ms: int = 0,
    ) -> None:
        self.threshold = threshold
        self.frame_length_ms = frame_length_ms
        self.emit = emit
        self.hangover_ms = hangover_ms
        self._setup()
