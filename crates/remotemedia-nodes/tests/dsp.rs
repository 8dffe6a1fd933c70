//! Everyday audio nodes (issue 13): gain, loudness, filters, mix, trim, fade, dither.
//! Values, lengths, streaming == whole input at random chunkings, bad parameters.

#[path = "../../remotemedia-core/tests/common/mod.rs"]
mod common;

use common::*;
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat, Samples};
use remotemedia_core::Pipeline;
use remotemedia_nodes::audio::measure_loudness;

fn node(node_type: &str, params: &str) -> Pipeline {
    pipeline(&one_node(node_type, params))
}

fn bad(node_type: &str, params: &str) -> String {
    Pipeline::from_json(&one_node(node_type, params), &registry())
        .err()
        .unwrap_or_else(|| panic!("{node_type} {params} was accepted"))
        .to_string()
}

fn f64s(d: &Data) -> Vec<f64> {
    d.as_audio().expect("audio").samples().to_f64_vec()
}

fn buf(v: Vec<f32>, rate: u32, ch: u16) -> AudioBuffer {
    AudioBuffer::new(v.into(), rate, ch).unwrap()
}

/// Streamed output equals whole-input output for every format at several random chunkings.
fn assert_streaming_equals_batch(node_type: &str, params: &str, input: &AudioBuffer) {
    for format in SampleFormat::ALL {
        let input = input.to_format(format);
        let p = node(node_type, params);
        let whole = run_whole(&p, input.clone());
        assert_eq!(whole.as_audio().unwrap().format(), format, "{node_type}");
        for (max_chunk, seed) in [(97, 1), (1500, 2), (4000, 3)] {
            let streamed = run_streamed(&p, &input, max_chunk, seed);
            assert_eq!(
                streamed, whole,
                "{node_type} {params} {format}: streamed (max chunk {max_chunk}) != whole"
            );
        }
    }
}

// ---- GainNode ----

#[test]
fn gain_db_is_exact_in_f64_and_rounded_once() {
    let x = music(16_000, 0.2, 2, 1);
    let out = run_whole(
        &node("GainNode", r#"{"db": -6.0}"#),
        buf(x.clone(), 16_000, 2),
    );
    let g = 10f64.powf(-6.0 / 20.0);
    let want: Vec<f32> = x.iter().map(|&s| (s as f64 * g) as f32).collect();
    assert_eq!(f32_samples(&out), want);
    let out = run_whole(
        &node("GainNode", r#"{"linear": 0.5}"#),
        buf(x.clone(), 16_000, 2),
    );
    let want: Vec<f32> = x.iter().map(|&s| (s as f64 * 0.5) as f32).collect();
    assert_eq!(f32_samples(&out), want);
}

#[test]
fn gain_saturates_integer_formats_never_wraps() {
    let x = AudioBuffer::new(vec![20_000i16, -20_000, 100, -32768].into(), 8000, 1).unwrap();
    let out = run_whole(&node("GainNode", r#"{"linear": 2.0}"#), x);
    match out.as_audio().unwrap().samples() {
        Samples::I16(b) => assert_eq!(b.to_vec(), vec![32767, -32768, 200, -32768]),
        other => panic!("{other:?}"),
    }
    let x = AudioBuffer::new(vec![i32::MAX / 2 + 10, i32::MIN / 2 - 10].into(), 8000, 1).unwrap();
    let out = run_whole(&node("GainNode", r#"{"db": 12.0}"#), x);
    match out.as_audio().unwrap().samples() {
        Samples::I32(b) => assert_eq!(b.to_vec(), vec![i32::MAX, i32::MIN]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn gain_peak_normalises_the_whole_stream_and_leaves_silence() {
    let x = music(48_000, 0.5, 2, 2);
    let out = run_whole(
        &node("GainNode", r#"{"peak_db": -1.0}"#),
        buf(x, 48_000, 2).to_format(SampleFormat::F64),
    );
    let peak = f64s(&out).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!((peak - 10f64.powf(-1.0 / 20.0)).abs() < 1e-12, "{peak}");
    let silence = buf(vec![0.0; 800], 8000, 1);
    let out = run_whole(&node("GainNode", r#"{"peak_db": -1.0}"#), silence.clone());
    assert_eq!(out.as_audio().unwrap(), &silence);
}

#[test]
fn gain_streams_like_whole_input() {
    let x = buf(music(16_000, 0.5, 2, 3), 16_000, 2);
    assert_streaming_equals_batch("GainNode", r#"{"db": 7.5}"#, &x);
    assert_streaming_equals_batch("GainNode", r#"{"peak_db": -3.0}"#, &x);
}

#[test]
fn gain_bad_params_are_named() {
    assert!(bad("GainNode", "{}").contains("give exactly one of db, linear, peak_db"));
    let e = bad("GainNode", r#"{"db": -3.0, "linear": 2.0}"#);
    assert!(
        e.contains("params.db/linear: db and linear were both given; give exactly one"),
        "{e}"
    );
    // Only the fields given are named.
    let e = bad("GainNode", r#"{"db": -3.0, "peak_db": -1.0}"#);
    assert!(
        e.contains("params.db/peak_db: db and peak_db were both given"),
        "{e}"
    );
    assert!(!e.contains("linear:"), "{e}");
    let e = bad("GainNode", r#"{"db": 100.0}"#);
    assert!(
        e.contains("params.db: 100.0 is out of range") && e.contains("-120..=60"),
        "{e}"
    );
    let e = bad("GainNode", r#"{"peak_db": 3.0}"#);
    assert!(e.contains("params.peak_db"), "{e}");
    let e = bad("GainNode", r#"{"linear": -1.0}"#);
    assert!(e.contains("params.linear"), "{e}");
}

// ---- LoudnessNormalizeNode ----

#[test]
fn loudness_whole_mode_reaches_the_target() {
    for (rate, ch, target) in [(48_000, 2, -23.0), (16_000, 1, -16.0), (44_100, 2, -30.0)] {
        let x = buf(music(rate, 3.0, ch, 4), rate, ch);
        let p = node(
            "LoudnessNormalizeNode",
            &format!(r#"{{"target_lufs": {target}}}"#),
        );
        let out = run_whole(&p, x.clone());
        let a = out.as_audio().unwrap();
        assert_eq!(a.frames(), x.frames());
        let (l, tp) = measure_loudness(&a.to_format(SampleFormat::F64)).unwrap();
        assert!((l - target).abs() < 0.05, "{rate} {ch}: {l}");
        assert!(20.0 * tp.log10() <= -1.0 + 0.05, "true peak {tp}");
    }
}

#[test]
fn loudness_true_peak_ceiling_wins_over_the_target() {
    let x = buf(sine(997.0, 48_000, 2.0, 0.5, 1), 48_000, 1);
    let p = node(
        "LoudnessNormalizeNode",
        r#"{"target_lufs": -3.0, "true_peak_db": -2.0}"#,
    );
    let out = run_whole(&p, x)
        .as_audio()
        .unwrap()
        .to_format(SampleFormat::F64);
    let (l, tp) = measure_loudness(&out).unwrap();
    assert!(
        (20.0 * tp.log10() + 2.0).abs() < 0.01,
        "true peak {}",
        20.0 * tp.log10()
    );
    assert!(l < -3.0 - 1.0, "{l}");
}

#[test]
fn loudness_leaves_silence_unchanged() {
    let x = buf(vec![0.0; 48_000], 48_000, 1);
    let out = run_whole(&node("LoudnessNormalizeNode", "{}"), x.clone());
    assert_eq!(out.as_audio().unwrap(), &x);
}

#[test]
fn loudness_passes_audio_with_nan_or_inf_unchanged_at_every_rate() {
    // Below 44.1 kHz the measurement goes through the FFT upsampler, which must never see
    // NaN or infinity (rubato panics); the reading is undefined, so the audio passes as is.
    for rate in [8_000, 16_000, 48_000] {
        for bad_value in [f32::NAN, f32::INFINITY, f32::MAX] {
            let mut v = music(rate, 2.0, 2, 7);
            v[1_001] = bad_value;
            let x = buf(v, rate, 2);
            for mode in ["whole", "streaming"] {
                let p = node("LoudnessNormalizeNode", &format!(r#"{{"mode": "{mode}"}}"#));
                let out = run_whole(&p, x.clone());
                let a = out.as_audio().unwrap();
                assert_eq!(a.frames(), x.frames(), "{rate} {mode}");
                if mode == "whole" && !bad_value.is_finite() {
                    let (got, want) = (f32_samples(&out), f32_samples(&Data::Audio(x.clone())));
                    for (g, w) in got.iter().zip(&want) {
                        assert!(g == w || (g.is_nan() && w.is_nan()), "{rate} {bad_value}");
                    }
                }
            }
        }
    }
}

#[test]
fn loudness_streaming_mode_converges_and_streams_like_whole_input() {
    let x = buf(music(16_000, 8.0, 1, 5), 16_000, 1);
    let p = node(
        "LoudnessNormalizeNode",
        r#"{"mode": "streaming", "target_lufs": -20.0}"#,
    );
    let out = run_whole(&p, x.clone());
    let a = out.as_audio().unwrap();
    assert_eq!(a.frames(), x.frames());
    // The estimate of a steady signal settles: the last 3 s are at target.
    let tail = a
        .slice_frames(a.frames() - 48_000, a.frames())
        .to_format(SampleFormat::F64);
    let (l, _) = measure_loudness(&tail).unwrap();
    assert!((l + 20.0).abs() < 0.5, "{l}");
    let short = x.slice_frames(0, 16_000);
    assert_streaming_equals_batch("LoudnessNormalizeNode", r#"{"mode": "streaming"}"#, &short);
    assert_streaming_equals_batch("LoudnessNormalizeNode", "{}", &short);
}

#[test]
fn loudness_bad_params_are_named() {
    let e = bad(
        "LoudnessNormalizeNode",
        r#"{"target_lufs": 5.0, "true_peak_db": -40.0}"#,
    );
    assert!(e.contains("params.target_lufs: 5.0 is out of range"), "{e}");
    assert!(
        e.contains("params.true_peak_db: -40.0 is out of range"),
        "{e}"
    );
    let e = bad("LoudnessNormalizeNode", r#"{"mode": "fast"}"#);
    assert!(e.contains("params.mode"), "{e}");
}

// ---- HighPassNode / LowPassNode / BiquadNode ----

/// Gain in dB of a filter at `freq`, from a sine's RMS after the filter settles.
fn measured_gain_db(node_type: &str, params: &str, freq: f64, rate: u32) -> f64 {
    let x = sine(freq, rate, 1.0, 0.25, 1);
    let out = f32_samples(&run_whole(
        &node(node_type, params),
        buf(x.clone(), rate, 1),
    ));
    let half = x.len() / 2;
    db(rms(&out[half..]) / rms(&x[half..]))
}

/// Analog-prototype Butterworth magnitude after the bilinear transform.
fn butterworth_db(low: bool, order: i32, fc: f64, f: f64, rate: f64) -> f64 {
    let r = (std::f64::consts::PI * f / rate).tan() / (std::f64::consts::PI * fc / rate).tan();
    let r = if low { r } else { 1.0 / r };
    -10.0 * (1.0 + r.powi(2 * order)).log10()
}

#[test]
fn butterworth_filters_have_the_designed_response() {
    for order in [1, 2, 3, 4, 8] {
        for (f, low) in [
            (300.0, true),
            (2000.0, true),
            (4000.0, true),
            (300.0, false),
            (4000.0, false),
        ] {
            let (name, want) = if low {
                (
                    "LowPassNode",
                    butterworth_db(true, order, 1000.0, f, 16_000.0),
                )
            } else {
                (
                    "HighPassNode",
                    butterworth_db(false, order, 1000.0, f, 16_000.0),
                )
            };
            if want < -60.0 {
                continue; // below the f32 test signal's precision
            }
            let got = measured_gain_db(
                name,
                &format!(r#"{{"cutoff_hz": 1000.0, "order": {order}}}"#),
                f,
                16_000,
            );
            assert!(
                (got - want).abs() < 0.05,
                "{name} order {order} at {f} Hz: {got} vs {want}"
            );
        }
    }
}

#[test]
fn dc_removal_preset_removes_offset() {
    let x: Vec<f32> = sine(440.0, 16_000, 2.0, 0.3, 1)
        .iter()
        .map(|s| s + 0.4)
        .collect();
    let out = f32_samples(&run_whole(
        &node("HighPassNode", r#"{"preset": "dc_removal"}"#),
        buf(x, 16_000, 1),
    ));
    let tail = &out[16_000..];
    let mean = tail.iter().map(|&s| s as f64).sum::<f64>() / tail.len() as f64;
    assert!(mean.abs() < 1e-3, "{mean}");
    assert!((rms(tail) - 0.3 / 2f64.sqrt()).abs() < 0.01);
}

#[test]
fn biquad_types_shape_the_spectrum() {
    let at = |p: &str, f: f64| measured_gain_db("BiquadNode", p, f, 48_000);
    let peaking = r#"{"filter_type": "peaking", "freq_hz": 1000.0, "q": 1.0, "gain_db": 6.0}"#;
    assert!((at(peaking, 1000.0) - 6.0).abs() < 0.05);
    assert!(at(peaking, 10_000.0).abs() < 0.2);
    let notch = r#"{"filter_type": "notch", "freq_hz": 1000.0, "q": 2.0}"#;
    assert!(at(notch, 1000.0) < -40.0);
    let shelf = r#"{"filter_type": "lowshelf", "freq_hz": 500.0, "gain_db": -12.0}"#;
    assert!((at(shelf, 50.0) + 12.0).abs() < 0.1);
    let allpass = r#"{"filter_type": "allpass", "freq_hz": 1000.0}"#;
    assert!(at(allpass, 3000.0).abs() < 0.01);
    let lp = r#"{"filter_type": "lowpass", "freq_hz": 1000.0}"#;
    assert!((at(lp, 4000.0) - butterworth_db(true, 2, 1000.0, 4000.0, 48_000.0)).abs() < 0.05);
}

#[test]
fn filters_stream_like_whole_input_at_every_order() {
    let x = buf(music(16_000, 0.4, 2, 6), 16_000, 2);
    for order in 1..=8 {
        assert_streaming_equals_batch(
            "LowPassNode",
            &format!(r#"{{"cutoff_hz": 900.0, "order": {order}}}"#),
            &x,
        );
    }
    assert_streaming_equals_batch("HighPassNode", r#"{"cutoff_hz": 300.0, "order": 5}"#, &x);
    assert_streaming_equals_batch(
        "BiquadNode",
        r#"{"filter_type": "highshelf", "freq_hz": 2000.0, "gain_db": 20.0}"#,
        &x,
    );
}

#[test]
fn filters_saturate_integer_outputs() {
    // A +20 dB shelf on a loud i16 sine must clip at full scale, not wrap to the other sign.
    let x = buf(sine(100.0, 16_000, 0.5, 0.9, 1), 16_000, 1).to_format(SampleFormat::I16);
    let p = node(
        "BiquadNode",
        r#"{"filter_type": "lowshelf", "freq_hz": 1000.0, "gain_db": 20.0}"#,
    );
    let out = run_whole(&p, x.clone());
    let (Samples::I16(i), Samples::I16(o)) = (x.samples(), out.as_audio().unwrap().samples())
    else {
        panic!()
    };
    let mut clipped = 0;
    for (&a, &b) in i.iter().zip(o.iter()).skip(2000) {
        if a.abs() > 10_000 {
            assert_eq!(a.signum(), b.signum(), "wrapped: {a} -> {b}");
        }
        clipped += (b == 32767 || b == -32768) as usize;
    }
    assert!(clipped > 1000, "{clipped}");
}

#[test]
fn filter_bad_params_are_named() {
    let e = bad("LowPassNode", r#"{"cutoff_hz": 0.0, "order": 9}"#);
    assert!(e.contains("params.cutoff_hz: 0.0 is out of range"), "{e}");
    assert!(
        e.contains("params.order: 9 is out of range; expected an integer in 1..=8"),
        "{e}"
    );
    let e = bad("HighPassNode", "{}");
    assert!(
        e.contains("params.cutoff_hz") && e.contains("dc_removal"),
        "{e}"
    );
    let e = bad(
        "HighPassNode",
        r#"{"cutoff_hz": 20.0, "preset": "dc_removal"}"#,
    );
    assert!(e.contains("params.preset"), "{e}");
    let e = bad("BiquadNode", r#"{"filter_type": "comb", "freq_hz": 100.0}"#);
    assert!(e.contains("params.filter_type"), "{e}");
    let e = bad(
        "BiquadNode",
        r#"{"filter_type": "peaking", "freq_hz": 100.0, "q": 0.0}"#,
    );
    assert!(e.contains("params.q: 0.0 is out of range"), "{e}");
    // Nyquist is known only once the rate is.
    let err = rt()
        .block_on(
            node("LowPassNode", r#"{"cutoff_hz": 9000.0}"#).run(Data::Audio(buf(
                vec![0.0; 160],
                16_000,
                1,
            ))),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("params.cutoff_hz 9000 Hz must be below Nyquist (8000 Hz"),
        "{err}"
    );
}

// ---- MixNode ----

fn mix(a: &str, b: &str, mix_params: &str) -> Pipeline {
    pipeline(&format!(
        r#"{{"version": "v1", "nodes": [
              {{"id": "a", {a}}},
              {{"id": "b", {b}}},
              {{"id": "m", "node_type": "MixNode", "params": {mix_params}}}],
            "connections": [{{"from": "a", "to": "m"}}, {{"from": "b", "to": "m"}}]}}"#
    ))
}

#[test]
fn mix_sums_inputs_with_their_gains_sample_exactly() {
    let x = music(16_000, 0.3, 2, 7);
    let p = mix(
        r#""node_type": "PassThroughNode""#,
        r#""node_type": "GainNode", "params": {"db": -6.0}"#,
        r#"{"gains": {"a": -3.0}}"#,
    );
    let out = run_whole(&p, buf(x.clone(), 16_000, 2));
    let (ga, gb) = (10f64.powf(-3.0 / 20.0), 10f64.powf(-6.0 / 20.0));
    let want: Vec<f32> = x
        .iter()
        .map(|&s| {
            let b = (s as f64 * gb) as f32;
            (0.0 + s as f64 * ga + b as f64) as f32
        })
        .collect();
    assert_eq!(f32_samples(&out), want);
}

#[test]
fn mix_aligns_inputs_by_position_whatever_their_latency() {
    // FadeNode holds back 100 ms, so its output arrives later than the pass-through's.
    let x = buf(music(16_000, 0.5, 1, 8), 16_000, 1);
    let p = mix(
        r#""node_type": "FadeNode", "params": {"fade_out_ms": 100}"#,
        r#""node_type": "PassThroughNode""#,
        "{}",
    );
    let whole = run_whole(&p, x.clone());
    assert_eq!(whole.as_audio().unwrap().frames(), x.frames());
    for seed in 1..4 {
        assert_eq!(run_streamed(&p, &x, 900, seed), whole);
    }
    // Where the fade has not started, the mix is exactly twice the input.
    let out = f32_samples(&whole);
    let xs = f32_samples(&Data::Audio(x));
    for i in 0..6000 {
        assert_eq!(out[i], (xs[i] as f64 * 2.0) as f32);
    }
}

#[test]
fn mix_pads_the_shorter_input_and_saturates_integers() {
    // The trimmed branch ends 600 frames early; the mix pads it with silence.
    let mut v = vec![0.8f32; 1000];
    v.extend(vec![0.0f32; 600]);
    let x = buf(v, 16_000, 1).to_format(SampleFormat::I16);
    let p = mix(
        r#""node_type": "TrimSilenceNode""#,
        r#""node_type": "PassThroughNode""#,
        "{}",
    );
    let out = run_whole(&p, x);
    let Samples::I16(o) = out.as_audio().unwrap().samples() else {
        panic!()
    };
    assert_eq!(o.len(), 1600);
    assert!(o[..1000].iter().all(|&v| v == 32767));
    assert!(o[1000..].iter().all(|&v| v == 0));
}

#[test]
fn mix_refuses_inputs_of_different_rates_and_unknown_gain_ids() {
    let p = mix(
        r#""node_type": "AudioResampleNode", "params": {"target_rate": 8000}"#,
        r#""node_type": "PassThroughNode""#,
        "{}",
    );
    let err = rt()
        .block_on(p.run(Data::Audio(buf(vec![0.1; 1600], 16_000, 1))))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "(MixNode) failed: input 'b' is 16000 Hz, 1 ch but input 'a' is 8000 Hz, 1 ch"
        ),
        "{err}"
    );
    let p = mix(
        r#""node_type": "PassThroughNode""#,
        r#""node_type": "PassThroughNode""#,
        r#"{"gains": {"c": 1.0}}"#,
    );
    let err = rt()
        .block_on(p.run(Data::Audio(buf(vec![0.1; 160], 16_000, 1))))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("params.gains names 'c'") && err.contains("a, b"),
        "{err}"
    );
    let e = bad("MixNode", r#"{"gains": {"a": 99.0}}"#);
    assert!(e.contains("params.gains.a: 99 is out of range"), "{e}");
}

// ---- TrimSilenceNode ----

/// 0.5 s silence, 0.3 s tone, 0.2 s silence, 0.3 s tone, 0.5 s silence (16 kHz).
fn speechy(ch: u16) -> AudioBuffer {
    let mut v = vec![0.0f32; 8000 * ch as usize];
    v.extend(sine(440.0, 16_000, 0.3, 0.5, ch));
    v.extend(vec![0.0f32; 3200 * ch as usize]);
    v.extend(sine(440.0, 16_000, 0.3, 0.5, ch));
    v.extend(vec![0.0f32; 8000 * ch as usize]);
    buf(v, 16_000, ch)
}

#[test]
fn trim_cuts_leading_and_trailing_silence_only() {
    let x = speechy(1);
    let out = run_whole(
        &node("TrimSilenceNode", r#"{"threshold_db": -40.0}"#),
        x.clone(),
    );
    let a = out.as_audio().unwrap();
    let xs = f32_samples(&Data::Audio(x.clone()));
    let first = xs.iter().position(|s| s.abs() as f64 > 0.01).unwrap();
    let last = xs.iter().rposition(|s| s.abs() as f64 > 0.01).unwrap();
    assert_eq!(f32_samples(&out), xs[first..=last].to_vec());
    assert!(
        a.frames() > 12_500 && a.frames() <= 12_800,
        "{}",
        a.frames()
    );
    let padded = run_whole(
        &node(
            "TrimSilenceNode",
            r#"{"threshold_db": -40.0, "pad_ms": 50}"#,
        ),
        x,
    );
    assert_eq!(padded.as_audio().unwrap().frames(), a.frames() + 2 * 800);
}

#[test]
fn trim_streams_like_whole_input_and_empties_silence() {
    assert_streaming_equals_batch(
        "TrimSilenceNode",
        r#"{"threshold_db": -30.0, "pad_ms": 20}"#,
        &speechy(2),
    );
    let out = run_whole(
        &node("TrimSilenceNode", "{}"),
        buf(vec![0.0; 1000], 16_000, 1),
    );
    assert_eq!(out.as_audio().unwrap().frames(), 0);
    let e = bad(
        "TrimSilenceNode",
        r#"{"threshold_db": 1.0, "pad_ms": 20000}"#,
    );
    assert!(
        e.contains("params.threshold_db: 1.0 is out of range")
            && e.contains("params.pad_ms: 20000"),
        "{e}"
    );
}

// ---- FadeNode ----

#[test]
fn fade_values_follow_the_curve() {
    let x = AudioBuffer::new(vec![0.5f64; 16_000].into(), 16_000, 1).unwrap();
    let out = f64s(&run_whole(
        &node("FadeNode", r#"{"fade_in_ms": 100, "fade_out_ms": 100}"#),
        x.clone(),
    ));
    assert_eq!(out.len(), 16_000);
    assert_eq!(out[0], 0.0);
    assert_eq!(out[800], 0.25);
    assert_eq!(out[1600], 0.5);
    assert_eq!(out[8000], 0.5);
    assert_eq!(out[15_999], 0.0);
    assert_eq!(out[15_999 - 800], 0.25);
    let out = f64s(&run_whole(
        &node("FadeNode", r#"{"fade_in_ms": 100, "curve": "sine"}"#),
        x,
    ));
    assert!((out[800] - 0.5 * (std::f64::consts::PI / 4.0).sin()).abs() < 1e-15);
    assert_eq!(out[15_999], 0.5);
}

#[test]
fn fade_streams_like_whole_input() {
    let x = buf(music(16_000, 0.6, 2, 9), 16_000, 2);
    assert_streaming_equals_batch(
        "FadeNode",
        r#"{"fade_in_ms": 120, "fade_out_ms": 250, "curve": "quadratic"}"#,
        &x,
    );
    // Shorter than the fades: both apply to every frame.
    let short = x.slice_frames(0, 1000);
    assert_streaming_equals_batch(
        "FadeNode",
        r#"{"fade_in_ms": 200, "fade_out_ms": 200}"#,
        &short,
    );
    let e = bad("FadeNode", r#"{"fade_in_ms": 700000, "curve": "cubic"}"#);
    assert!(e.contains("params.curve"), "{e}");
}

// ---- FormatConverterNode dither ----

#[test]
fn dither_default_is_plain_rounding() {
    let x = buf(music(16_000, 0.2, 1, 10), 16_000, 1);
    let out = run_whole(
        &node("FormatConverterNode", r#"{"target_format": "i16"}"#),
        x.clone(),
    );
    assert_eq!(out.as_audio().unwrap(), &x.to_format(SampleFormat::I16));
}

#[test]
fn tpdf_dither_is_reproducible_bounded_and_streams() {
    let x = buf(music(16_000, 0.3, 2, 11), 16_000, 2);
    let p = |seed: u64| {
        node(
            "FormatConverterNode",
            &format!(r#"{{"target_format": "i16", "dither": "tpdf", "seed": {seed}}}"#),
        )
    };
    let a = run_whole(&p(7), x.clone());
    assert_eq!(run_whole(&p(7), x.clone()), a);
    assert_ne!(run_whole(&p(8), x.clone()), a);
    for s in 1..4 {
        assert_eq!(run_streamed(&p(7), &x, 700, s), a);
    }
    let Samples::I16(o) = a.as_audio().unwrap().samples() else {
        panic!()
    };
    let xs = f32_samples(&Data::Audio(x));
    let mut sum = 0.0;
    for (&q, &s) in o.iter().zip(&xs) {
        let err = q as f64 - s as f64 * 32768.0;
        assert!(err.abs() <= 1.5, "{err}");
        sum += err;
    }
    assert!((sum / o.len() as f64).abs() < 0.02);
    // A sine of 0.4 LSB vanishes without dither and survives (on average) with it.
    let quiet = buf(sine(100.0, 16_000, 1.0, 0.4 / 32768.0, 1), 16_000, 1);
    let plain = run_whole(
        &node("FormatConverterNode", r#"{"target_format": "i16"}"#),
        quiet.clone(),
    );
    assert!(f64s(&plain).iter().all(|&v| v == 0.0));
    let d = f64s(&run_whole(&p(1), quiet.clone()));
    let q = f32_samples(&Data::Audio(quiet));
    let corr: f64 = d.iter().zip(&q).map(|(a, b)| a * *b as f64).sum();
    assert!(corr > 0.0, "{corr}");
}

// ---- Named inputs (several source nodes) ----

#[test]
fn a_map_by_source_id_feeds_each_input_its_own_stream() {
    use std::collections::BTreeMap;
    let p = mix(
        r#""node_type": "PassThroughNode""#,
        r#""node_type": "PassThroughNode""#,
        "{}",
    );
    let a = buf(vec![0.25; 300], 16_000, 1);
    let b = buf(vec![0.5; 200], 16_000, 1);
    let named = |a: AudioBuffer, b: AudioBuffer| {
        Data::Map(BTreeMap::from([
            ("a".to_string(), Data::Audio(a)),
            ("b".to_string(), Data::Audio(b)),
        ]))
    };
    let out = rt().block_on(p.run(named(a.clone(), b.clone()))).unwrap();
    let v = f32_samples(out.single().unwrap());
    assert_eq!(v.len(), 300);
    assert!(v[..200].iter().all(|s| *s == 0.75) && v[200..].iter().all(|s| *s == 0.25));
    // Streamed: the inputs in chunks of their own sizes, one input per push.
    let streamed = rt().block_on(async {
        let mut s = p.session().unwrap();
        let mut outs = Vec::new();
        for i in 0..3 {
            let one = BTreeMap::from([(
                "a".to_string(),
                Data::Audio(a.slice_frames(i * 100, i * 100 + 100)),
            )]);
            outs.extend(s.push(Data::Map(one)).await.unwrap());
            if i < 2 {
                let one = BTreeMap::from([(
                    "b".to_string(),
                    Data::Audio(b.slice_frames(i * 100, i * 100 + 100)),
                )]);
                outs.extend(s.push(Data::Map(one)).await.unwrap());
            }
        }
        outs.extend(s.finish().await.unwrap());
        Data::join(outs.into_iter().map(|o| o.data).collect()).unwrap()
    });
    assert_eq!(f32_samples(&streamed), v);
    // An unknown name is refused, naming the inputs, and the session goes on.
    rt().block_on(async {
        let mut s = p.session().unwrap();
        let bad = Data::Map(BTreeMap::from([("c".to_string(), Data::Audio(a.clone()))]));
        let e = s.push(bad).await.unwrap_err();
        assert_eq!(e.code(), "unknown_input");
        assert!(
            e.to_string()
                .contains("inputs, its source nodes, are: a, b"),
            "{e}"
        );
        assert_eq!(s.inputs(), ["a", "b"]);
        s.push(named(a.clone(), b.clone())).await.unwrap();
    });
}
