"""The everyday audio nodes (issue 13) against references computed in the same run:
loudness against pyloudnorm, filter responses against scipy.signal designs, gain and mix
against exact numpy arithmetic; plus streaming == whole input and parameter errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import remotemedia
from remotemedia import (
    BiquadNode,
    FadeNode,
    FormatConverterNode,
    GainNode,
    HighPassNode,
    LoudnessNormalizeNode,
    LowPassNode,
    ManifestError,
    MixNode,
    Pipeline,
    TrimSilenceNode,
)
from remotemedia.nodes.rust import RustGainNode

from conftest import music

pyloudnorm = pytest.importorskip("pyloudnorm")
signal = pytest.importorskip("scipy.signal")


def speech_like(rate: int, secs: float, seed: int = 1) -> np.ndarray:
    """Noise shaped like speech: a 150 Hz buzz with formant-ish band noise, in 4 Hz syllables
    separated by pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * secs)) / rate
    buzz = np.sign(np.sin(2 * np.pi * 150 * t)) * 0.1
    noise = (
        signal.sosfilt(
            signal.butter(2, [300, 3000], "bandpass", fs=rate, output="sos"),
            rng.standard_normal(t.size),
        )
        * 0.2
    )
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    pauses = (np.floor(t / 1.5) % 2 == 0).astype(float)
    return ((buzz + noise) * syllables * (0.2 + 0.8 * pauses)).astype(np.float32)


def tones(rate: int, secs: float) -> np.ndarray:
    t = np.arange(int(rate * secs)) / rate
    return (0.3 * np.sin(2 * np.pi * 997 * t) + 0.1 * np.sin(2 * np.pi * 5000 * t)).astype(
        np.float32
    )


SIGNALS = {
    "music": lambda rate: music(rate, 6.0, channels=2, seed=3),
    "speech": lambda rate: speech_like(rate, 6.0),
    "tone": lambda rate: tones(rate, 6.0),
}


RATES = [8000, 16000, 22050, 44100, 48000]


def _loudness_read(x: np.ndarray, rate: int) -> float:
    """Our integrated loudness of `x`, read from the gain LoudnessNormalizeNode applies."""
    out = np.asarray(LoudnessNormalizeNode(target_lufs=-26.0, true_peak_db=0.0)(x, rate))
    assert out.shape == x.shape and out.dtype == x.dtype
    return -26.0 - 20 * np.log10(np.max(np.abs(out)) / np.max(np.abs(x)))


# pyloudnorm's default meter is itself 0.115 LU below BS.1770 on this tone pair at 8 kHz
# (its high-shelf is re-designed at the rate by the bilinear transform, and its high-pass is
# normalised to unity gain where BS.1770's has +0.04 dB): see the BS.1770 tests below.
_PYLOUDNORM_OFF = {("tone", 8000)}


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("kind", sorted(SIGNALS))
def test_loudness_matches_pyloudnorm_within_0_1_lu(kind: str, rate: int) -> None:
    if (kind, rate) in _PYLOUDNORM_OFF:
        pytest.xfail("pyloudnorm reads 0.115 LU below BS.1770 here (tested against BS.1770)")
    x = SIGNALS[kind](rate).astype(np.float64)
    reference = pyloudnorm.Meter(rate).integrated_loudness(x)
    assert abs(_loudness_read(x, rate) - reference) < 0.1, (kind, rate, reference)


def test_the_pyloudnorm_exception_is_pyloudnorm_being_off() -> None:
    """The one case excluded above is excluded because pyloudnorm misses the BS.1770 value
    there, while we hit it."""
    for kind, rate in _PYLOUDNORM_OFF:
        x = SIGNALS[kind](rate).astype(np.float64)
        truth = _bs1770_tones(rate)
        assert abs(pyloudnorm.Meter(rate).integrated_loudness(x) - truth) > 0.1
        assert abs(_loudness_read(x, rate) - truth) < 0.02


def _bs1770_k_weight_power(freq: float) -> float:
    """|H(f)|^2 of the BS.1770-4 K-weighting filter (its published 48 kHz coefficients)."""
    z = np.exp(-2j * np.pi * freq / 48000)
    shelf = np.polyval([1.19839281085285, -2.69169618940638, 1.53512485958697], z) / np.polyval(
        [0.73248077421585, -1.69065929318241, 1.0], z
    )
    high = np.polyval([1.0, -2.0, 1.0], z) / np.polyval(
        [0.99007225036621, -1.99004745483398, 1.0], z
    )
    return float(abs(shelf * high) ** 2)


def _bs1770_tones(rate: int) -> float:
    """The exact BS.1770 loudness of `tones(rate)`: two steady sines (the 5 kHz one aliases to
    rate - 5 kHz below 10 kHz), so every gating block has the same mean square."""
    f2 = 5000.0 if rate > 10000 else rate - 5000.0
    power = 0.3**2 / 2 * _bs1770_k_weight_power(997.0) + 0.1**2 / 2 * _bs1770_k_weight_power(f2)
    return -0.691 + 10 * np.log10(power)


@pytest.mark.parametrize("rate", [*RATES, 11025, 32000])
def test_loudness_of_tones_matches_bs1770_within_0_02_lu(rate: int) -> None:
    """At every rate, steady tones read what BS.1770's 48 kHz filter gives analytically. Below
    44.1 kHz this needs the upsampled measurement: the K-weighting re-designed at 16 kHz read
    0.12..0.15 LU high (see docs/nodes.md)."""
    x = tones(rate, 6.0).astype(np.float64)
    assert abs(_loudness_read(x, rate) - _bs1770_tones(rate)) < 0.02


@pytest.mark.parametrize("rate", [8000, 16000, 22050])
@pytest.mark.parametrize("kind", ["music", "speech"])
def test_loudness_at_low_rates_reads_as_bs1770_at_48_khz(kind: str, rate: int) -> None:
    """Broadband audio at a low rate reads within 0.02 LU of BS.1770's own 48 kHz filter
    (pyloudnorm's "DeMan" filter class, the standard's coefficients) on the same audio
    upsampled to 48 kHz."""
    from fractions import Fraction

    x = SIGNALS[kind](rate).astype(np.float64)
    up = Fraction(48000, rate)
    at_48k = signal.resample_poly(x, up.numerator, up.denominator, axis=0)
    reference = pyloudnorm.Meter(48000, filter_class="DeMan").integrated_loudness(at_48k)
    assert abs(_loudness_read(x, rate) - reference) < 0.02, (kind, rate, reference)


@pytest.mark.parametrize("rate", [48000, 16000])
def test_loudness_streaming_mode_equals_itself_in_chunks(rate: int) -> None:
    x = music(rate, 3.0, channels=2, seed=4)
    node = LoudnessNormalizeNode(mode="streaming")
    whole = np.asarray(node(x, rate))
    parts = [np.asarray(node.process(x[i : i + 3001], rate)) for i in range(0, len(x), 3001)]
    tail = node.flush()
    if tail is not None:
        parts.append(np.asarray(tail))
    np.testing.assert_array_equal(np.concatenate(parts), whole)


FREQS = np.geomspace(30.0, 20000.0, 20)


def response_db(node: object, rate: int, n: int = 1 << 16) -> np.ndarray:
    """Magnitude response at FREQS from the node's impulse response (f64 in, f64 out)."""
    impulse = np.zeros(n)
    impulse[0] = 1.0
    h = np.asarray(node(impulse, rate), dtype=np.float64)  # type: ignore[operator]
    w = 2 * np.pi * FREQS / rate
    hw = np.exp(-1j * np.outer(w, np.arange(n))) @ h
    return np.asarray(20 * np.log10(np.abs(hw)))


@pytest.mark.parametrize("order", range(1, 9))
@pytest.mark.parametrize("btype", ["lowpass", "highpass"])
def test_butterworth_response_matches_scipy_butter_within_0_01_db(btype: str, order: int) -> None:
    rate, cutoff = 48000, 1000.0
    node = (LowPassNode if btype == "lowpass" else HighPassNode)(cutoff_hz=cutoff, order=order)
    ours = response_db(node, rate)
    sos = signal.butter(order, cutoff, btype, fs=rate, output="sos")
    _, ref = signal.sosfreqz(sos, worN=FREQS, fs=rate)
    ref_db = 20 * np.log10(np.abs(ref))
    keep = ref_db > -200  # below that both are rounding noise
    assert keep.sum() >= 10
    np.testing.assert_allclose(ours[keep], ref_db[keep], atol=0.01)


@pytest.mark.parametrize("btype", ["lowpass", "highpass"])
def test_biquad_matches_scipy_iirfilter(btype: str) -> None:
    rate = 44100
    ours = response_db(BiquadNode(btype, 2500.0), rate)  # type: ignore[arg-type]
    sos = signal.iirfilter(2, 2500.0, btype=btype, ftype="butter", fs=rate, output="sos")
    _, ref = signal.sosfreqz(sos, worN=FREQS, fs=rate)
    np.testing.assert_allclose(ours, 20 * np.log10(np.abs(ref)), atol=0.01)


def test_dc_removal_preset_is_a_20_hz_order_2_high_pass() -> None:
    ours = response_db(HighPassNode(preset="dc_removal"), 16000, n=1 << 17)
    sos = signal.butter(2, 20.0, "highpass", fs=16000, output="sos")
    _, ref = signal.sosfreqz(sos, worN=FREQS[FREQS < 8000], fs=16000)
    np.testing.assert_allclose(ours[FREQS < 8000], 20 * np.log10(np.abs(ref)), atol=0.01)


def test_gain_is_exact() -> None:
    x = music(16000, 0.5, channels=2)
    out = np.asarray(GainNode(db=-6.0)(x, 16000))
    want = (x.astype(np.float64) * 10.0 ** (-6.0 / 20.0)).astype(np.float32)
    np.testing.assert_array_equal(out, want)
    xi = (x * 32767).astype(np.int16)
    out = np.asarray(RustGainNode(linear=3.0)(xi, 16000))
    want_i = np.clip(xi.astype(np.float64) * 3.0, -32768, 32767).astype(np.int16)
    np.testing.assert_array_equal(out, want_i)
    out = np.asarray(GainNode(peak_db=-1.0)(x.astype(np.float64), 16000))
    assert np.max(np.abs(out)) == pytest.approx(10 ** (-1 / 20), abs=1e-12)


def test_mix_is_sample_exact() -> None:
    x = music(16000, 0.5, channels=2, seed=5)
    p = Pipeline("mix")
    p.add_node(GainNode(db=-3.0), "a").add_node(GainNode(db=-6.0), "b")
    p.add_node(MixNode(gains={"a": 2.0}), "m")
    p.connect("a", "m").connect("b", "m")
    out = np.asarray(p.run(x, sample_rate=16000))
    x64 = x.astype(np.float64)
    a = (x64 * 10.0 ** (-3.0 / 20.0)).astype(np.float32).astype(np.float64)
    b = (x64 * 10.0 ** (-6.0 / 20.0)).astype(np.float32).astype(np.float64)
    acc = np.zeros_like(x64)
    acc += a * 10.0 ** (2.0 / 20.0)
    acc += b
    np.testing.assert_array_equal(out, acc.astype(np.float32))
    # The manifest keeps the gains and rebuilds the same mix.
    again = Pipeline.from_manifest(p.serialize())
    np.testing.assert_array_equal(np.asarray(again.run(x, sample_rate=16000)), out)


def test_trim_and_fade_lengths_and_values() -> None:
    rate = 16000
    x = np.concatenate([np.zeros(8000), 0.5 * np.ones(4000), np.zeros(8000)]).astype(np.float32)
    out = np.asarray(TrimSilenceNode(threshold_db=-40.0, pad_ms=10)(x, rate))
    assert len(out) == 4000 + 2 * 160
    faded = np.asarray(FadeNode(fade_in_ms=100, fade_out_ms=100)(out, rate))
    assert len(faded) == len(out)
    assert faded[0] == 0.0 and faded[-1] == 0.0
    assert faded[160 + 800] == pytest.approx(0.5 * (160 + 800) / 1600)


def test_tpdf_dither_is_seeded_and_default_unchanged() -> None:
    x = music(16000, 0.5)
    plain = np.asarray(FormatConverterNode("i16")(x, 16000))
    np.testing.assert_array_equal(
        plain, np.clip(np.rint(x.astype(np.float64) * 32768), -32768, 32767).astype(np.int16)
    )
    d1 = np.asarray(FormatConverterNode("i16", dither="tpdf", seed=3)(x, 16000))
    d2 = np.asarray(FormatConverterNode("i16", dither="tpdf", seed=3)(x, 16000))
    np.testing.assert_array_equal(d1, d2)
    err = d1.astype(np.float64) - x.astype(np.float64) * 32768
    assert np.max(np.abs(err)) <= 1.5 and abs(err.mean()) < 0.02
    assert not np.array_equal(d1, plain)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: GainNode(), "db"),
        (lambda: GainNode(db=100.0), "db"),
        (lambda: LoudnessNormalizeNode(target_lufs=3.0), "target_lufs"),
        (lambda: LowPassNode(cutoff_hz=1000.0, order=9), "order"),
        (lambda: HighPassNode(cutoff_hz=50.0, preset="dc_removal"), "preset"),
        (lambda: BiquadNode("peaking", 1000.0, q=0.0), "q"),
        (lambda: MixNode(gains={"a": 99.0}), "gains.a"),
        (lambda: TrimSilenceNode(pad_ms=20000), "pad_ms"),
        (lambda: FadeNode(curve="cubic"), "curve"),  # type: ignore[arg-type]
        (lambda: FormatConverterNode("i16", dither="white"), "dither"),  # type: ignore[arg-type]
    ],
)
def test_bad_params_name_the_field(make: object, field: str) -> None:
    with pytest.raises(ManifestError, match=rf"params\.{field}"):
        make()  # type: ignore[operator]


def test_params_round_trip_through_the_manifest() -> None:
    nodes = [
        GainNode(peak_db=-2.0),
        LoudnessNormalizeNode(target_lufs=-16.0, true_peak_db=-1.5, mode="streaming"),
        HighPassNode(preset="dc_removal"),
        LowPassNode(cutoff_hz=3000.0, order=5),
        BiquadNode("highshelf", 4000.0, q=0.5, gain_db=3.0),
        TrimSilenceNode(threshold_db=-50.0, pad_ms=30),
        FadeNode(fade_in_ms=10, fade_out_ms=20, curve="sine"),
        FormatConverterNode("i16", dither="tpdf", seed=9),
    ]
    p = Pipeline("all")
    for n in nodes:
        p.add_node(n)
    again = Pipeline.from_manifest(p.serialize())
    assert [n.params for n in again.nodes.values()] == [n.params for n in nodes]
    x = music(48000, 0.3)
    np.testing.assert_array_equal(
        np.asarray(again.run(x, sample_rate=48000)), np.asarray(p.run(x, sample_rate=48000))
    )


def test_dsp_pipeline_runs_the_same_on_the_server(tmp_path: object) -> None:
    from test_server import Server  # the same `remotemedia serve` harness

    server = Server(tmp_path)  # type: ignore[arg-type]
    try:
        x = music(48000, 1.0, channels=2, seed=6)
        p = Pipeline("remote-dsp")
        p.add_node(HighPassNode(preset="dc_removal"), "hp").add_node(GainNode(db=-4.0), "g")
        p.add_node(LowPassNode(cutoff_hz=4000.0, order=3), "lp")
        p.add_node(MixNode(gains={"g": -2.0}), "m")
        p.add_node(LoudnessNormalizeNode(target_lufs=-20.0), "loud")
        p.connect("hp", "g").connect("hp", "lp").connect("g", "m").connect("lp", "m")
        p.connect("m", "loud")
        local = np.asarray(p.run(x, sample_rate=48000))
        remote = np.asarray(p.run(x, sample_rate=48000, remote=server.address))
        assert local.shape == x.shape
        np.testing.assert_array_equal(remote, local)
    finally:
        server.stop()


def test_loudness_reports_integrated_true_peak_and_range(tmp_path: Path) -> None:
    import math

    rate = 48000
    t = np.arange(rate * 10) / rate
    tone = (0.5 * np.sin(2 * np.pi * 997 * t)).astype(np.float32)
    m = remotemedia.loudness(tone, rate)
    # BS.1770: a full-scale 997 Hz sine in one channel reads -3.01 LUFS; this one is 6.02 dB
    # lower.
    assert m.integrated_lufs == pytest.approx(-3.01 - 6.02, abs=0.05)
    assert m.true_peak_dbtp == pytest.approx(-6.02, abs=0.05)
    assert m.loudness_range_lu == pytest.approx(0.0, abs=0.1)
    # EBU Tech 3342: 20 s at one level then 20 s 10 dB lower reads a range of 10 LU.
    t20 = np.arange(rate * 20) / rate
    loud = 0.5 * np.sin(2 * np.pi * 1000 * t20)
    steps = np.concatenate([loud, loud * 10 ** (-10 / 20)]).astype(np.float32)
    assert remotemedia.loudness(steps, rate).loudness_range_lu == pytest.approx(10.0, abs=0.3)
    # A file (read block by block) reads as the same audio in memory; int16 at its own scale.
    stereo = np.stack([tone, tone], axis=1)
    p = tmp_path / "tone.wav"
    remotemedia.write(p, remotemedia.Audio(stereo, rate), "PCM_16")
    from_file = remotemedia.loudness(p)
    assert from_file == remotemedia.loudness(remotemedia.read(p))
    assert from_file == remotemedia.loudness(p.read_bytes())
    assert from_file.integrated_lufs == pytest.approx(m.integrated_lufs + 3.01, abs=0.05)
    # Silence is below the gate.
    assert remotemedia.loudness(np.zeros(rate, np.float32), rate).integrated_lufs == -math.inf
    with pytest.raises(TypeError, match=r"loudness\(\) takes audio"):
        remotemedia.loudness([0.1, 0.2], 16000)


def test_voice_preset_is_an_80_hz_order_4_high_pass() -> None:
    ours = response_db(HighPassNode(preset="voice"), 16000, n=1 << 17)
    sos = signal.butter(4, 80.0, "highpass", fs=16000, output="sos")
    _, ref = signal.sosfreqz(sos, worN=FREQS[FREQS < 8000], fs=16000)
    np.testing.assert_allclose(ours[FREQS < 8000], 20 * np.log10(np.abs(ref)), atol=0.01)
    with pytest.raises(remotemedia.ManifestError, match=r'preset="voice" fixes the order at 4'):
        HighPassNode(preset="voice", order=6)
