//! AudioResampleNode: exact lengths, delay compensation, streaming == whole input, quality.

#[path = "../../remotemedia-core/tests/common/mod.rs"]
mod common;

use common::*;
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat, Samples};

/// Every rate-pair family: integer ratios down (3:1, 2:1) and up (1:2, 1:3, 1:6), the 44.1k
/// family (147/160, 160/441, 320/441), and pairs with no useful common factor (interpolated
/// phase table).
const PAIRS: [(u32, u32); 12] = [
    (48_000, 16_000),
    (44_100, 16_000),
    (16_000, 48_000),
    (22_050, 44_100),
    (44_100, 48_000),
    (48_000, 44_100),
    (8_000, 16_000),
    (22_050, 16_000),
    (32_000, 16_000),
    (8_000, 48_000),
    // No common factor: interpolated phases.
    (48_000, 44_101),
    (384_000, 64_031),
];

fn resampler(target: u32, quality: &str) -> remotemedia_core::Pipeline {
    pipeline(&one_node(
        "AudioResampleNode",
        &format!(r#"{{"target_rate": {target}, "quality": "{quality}"}}"#),
    ))
}

#[test]
fn output_length_is_exactly_ceil_n_out_over_in() {
    for (rin, rout) in PAIRS {
        for quality in ["fast", "medium", "high"] {
            let p = resampler(rout, quality);
            for frames in [0usize, 1, 7, 959, 960, 961, 12_345] {
                let input = AudioBuffer::mono_f32(vec![0.1; frames], rin);
                let out = if frames == 0 {
                    // An empty stream still produces a (empty) result.
                    let o = rt().block_on(p.run(Data::Audio(input))).unwrap();
                    o.outputs
                        .get("n")
                        .cloned()
                        .unwrap_or(Data::Audio(AudioBuffer::mono_f32(vec![], rout)))
                } else {
                    run_whole(&p, input)
                };
                let a = out.as_audio().unwrap();
                let expected = (frames as u64 * rout as u64).div_ceil(rin as u64) as usize;
                assert_eq!(a.frames(), expected, "{rin}->{rout} {quality} n={frames}");
                assert_eq!(a.sample_rate(), rout);
            }
        }
    }
}

#[test]
fn streamed_output_equals_whole_output_for_any_chunking() {
    let mut seed = 1;
    for (rin, rout) in PAIRS {
        for channels in [1u16, 2, 3] {
            for quality in ["fast", "medium", "high"] {
                let p = resampler(rout, quality);
                let input =
                    AudioBuffer::new(music(rin, 0.37, channels, seed).into(), rin, channels)
                        .unwrap();
                let whole = f32_samples(&run_whole(&p, input.clone()));
                for max_chunk in [1usize, 100, 1024, 5000] {
                    seed += 1;
                    if max_chunk == 1 && quality != "high" {
                        continue; // one-frame chunks are slow; one quality suffices
                    }
                    let streamed = f32_samples(&run_streamed(&p, &input, max_chunk, seed));
                    assert_eq!(
                        streamed, whole,
                        "{rin}->{rout} ch={channels} {quality} max_chunk={max_chunk}"
                    );
                }
            }
        }
    }
}

/// Finds the lag (in output frames) maximising correlation between `y` and the ideal `x`.
fn best_lag(x: &[f32], y: &[f32], max_lag: i64) -> i64 {
    let score = |lag: i64| -> f64 {
        let mut s = 0.0;
        for i in 0..x.len() as i64 {
            let j = i + lag;
            if j >= 0 && (j as usize) < y.len() {
                s += x[i as usize] as f64 * y[j as usize] as f64;
            }
        }
        s
    };
    (-max_lag..=max_lag)
        .max_by(|a, b| score(*a).partial_cmp(&score(*b)).unwrap())
        .unwrap()
}

#[test]
fn delay_is_compensated_no_leading_silence_no_lost_tail() {
    for (rin, rout, quality) in PAIRS
        .iter()
        .flat_map(|&(i, o)| ["fast", "medium", "high"].map(move |q| (i, o, q)))
    {
        // A band-limited chirp-free test: a 440 Hz + 1 kHz mix, identical formula at both rates.
        let gen = |rate: u32, frames: usize| -> Vec<f32> {
            (0..frames)
                .map(|n| {
                    let t = n as f64 / rate as f64;
                    (0.3 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()
                        + 0.2 * (2.0 * std::f64::consts::PI * 1000.0 * t).sin())
                        as f32
                })
                .collect()
        };
        let n_in = rin as usize / 4;
        let input = AudioBuffer::mono_f32(gen(rin, n_in), rin);
        let ideal = gen(
            rout,
            (n_in as u64 * rout as u64).div_ceil(rin as u64) as usize,
        );
        let out = f32_samples(&run_whole(&resampler(rout, quality), input));
        assert_eq!(out.len(), ideal.len());
        assert_eq!(
            best_lag(&ideal, &out, 40),
            0,
            "{rin}->{rout} {quality}: output is shifted"
        );
        // Away from the edges the output matches the ideal signal closely.
        let a = out.len() / 8;
        let b = out.len() - a;
        let err: Vec<f32> = out[a..b]
            .iter()
            .zip(&ideal[a..b])
            .map(|(o, i)| o - i)
            .collect();
        assert!(db(rms(&err) / rms(&ideal[a..b])) < -60.0, "{rin}->{rout}");
        // Neither end is silent.
        let edge = (rout / 500) as usize; // 2 ms
        assert!(rms(&out[..edge]) > 0.05, "{rin}->{rout}: leading silence");
        assert!(
            rms(&out[out.len() - edge..]) > 0.05,
            "{rin}->{rout}: lost tail"
        );
    }
}

/// Output level of a tone relative to its input level, measured on the middle of the output.
fn tone_gain_db(rin: u32, rout: u32, freq: f64, quality: &str) -> f64 {
    let input = sine(freq, rin, 1.0, 0.5, 1);
    let out = f32_samples(&run_whole(
        &resampler(rout, quality),
        AudioBuffer::mono_f32(input.clone(), rin),
    ));
    let a = out.len() / 4;
    db(rms(&out[a..out.len() - a]) / rms(&input))
}

#[test]
fn high_quality_rejects_aliases_by_100_db_and_keeps_passband_within_0_1_db() {
    for f in [9_000.0, 12_000.0] {
        let g = tone_gain_db(48_000, 16_000, f, "high");
        assert!(g <= -100.0, "{f} Hz leaks at {g:.1} dB");
    }
    let g = tone_gain_db(48_000, 16_000, 7_000.0, "high");
    assert!(g.abs() <= 0.1, "7 kHz passband gain {g:.3} dB");
    // 44.1k -> 16k: same requirements relative to its Nyquist.
    assert!(tone_gain_db(44_100, 16_000, 9_000.0, "high") <= -100.0);
    assert!(tone_gain_db(44_100, 16_000, 7_000.0, "high").abs() <= 0.1);
}

#[test]
fn medium_and_fast_reject_aliases_by_100_db() {
    for quality in ["medium", "fast"] {
        for f in [9_000.0, 12_000.0] {
            let g = tone_gain_db(48_000, 16_000, f, quality);
            assert!(g <= -100.0, "{quality}: {f} Hz leaks at {g:.1} dB");
        }
        assert!(tone_gain_db(48_000, 16_000, 1_000.0, quality).abs() <= 0.1);
    }
    assert!(tone_gain_db(48_000, 16_000, 7_000.0, "medium").abs() <= 0.1);
}

#[test]
fn upsampling_rejects_images_by_100_db() {
    // A 7 kHz tone at 16 kHz, upsampled to 48 kHz: everything above 8 kHz is an image.
    let input = sine(7_000.0, 16_000, 1.0, 0.5, 1);
    let out = f32_samples(&run_whole(
        &resampler(48_000, "high"),
        AudioBuffer::mono_f32(input.clone(), 16_000),
    ));
    let a = out.len() / 4;
    let mid = &out[a..out.len() - a];
    // Remove the 7 kHz tone by least squares; what is left is images + noise.
    let w = 2.0 * std::f64::consts::PI * 7_000.0 / 48_000.0;
    let (mut ss, mut sc, mut cc, mut xs, mut xc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &y) in mid.iter().enumerate() {
        let n = (i + a) as f64;
        let (s, c) = (w * n).sin_cos();
        ss += s * s;
        sc += s * c;
        cc += c * c;
        xs += y as f64 * s;
        xc += y as f64 * c;
    }
    let det = ss * cc - sc * sc;
    let (bs, bc) = ((xs * cc - xc * sc) / det, (xc * ss - xs * sc) / det);
    let resid: Vec<f32> = mid
        .iter()
        .enumerate()
        .map(|(i, &y)| {
            let n = (i + a) as f64;
            (y as f64 - bs * (w * n).sin() - bc * (w * n).cos()) as f32
        })
        .collect();
    let g = db(rms(&resid) / rms(&input));
    assert!(g <= -100.0, "images at {g:.1} dB");
}

#[test]
fn keeps_sample_format_and_channel_count() {
    for format in SampleFormat::ALL {
        let input = AudioBuffer::new(music(48_000, 0.1, 2, 7).into(), 48_000, 2)
            .unwrap()
            .to_format(format);
        let out = run_whole(&resampler(16_000, "high"), input);
        let a = out.as_audio().unwrap();
        assert_eq!(a.format(), format);
        assert_eq!(a.channels(), 2);
        assert_eq!(a.frames(), 1600);
    }
}

#[test]
fn same_rate_is_a_no_copy_pass_through() {
    let input = AudioBuffer::mono_f32(vec![0.25; 1000], 16_000);
    let out = run_whole(&resampler(16_000, "high"), input.clone());
    match (input.samples(), out.as_audio().unwrap().samples()) {
        (Samples::F32(a), Samples::F32(b)) => assert!(a.shares_storage_with(b)),
        _ => unreachable!(),
    }
}

#[test]
fn rejects_bad_input_with_a_clear_error() {
    let p = resampler(16_000, "high");
    let err = rt()
        .block_on(p.run(Data::Json(serde_json::json!(1))))
        .unwrap_err();
    assert_eq!(err.node_id(), Some("n"));
    assert!(
        err.to_string().contains("expected audio, got json"),
        "{err}"
    );

    let err = rt()
        .block_on(p.run(Data::Audio(AudioBuffer::mono_f32(vec![0.0; 10], 4_000))))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("outside the supported 8000..=384000 Hz"),
        "{err}"
    );

    // Rate change mid-stream is an error, not a silent restart.
    let err = rt().block_on(async {
        let mut s = p.session().unwrap();
        s.push(Data::Audio(AudioBuffer::mono_f32(vec![0.0; 10], 48_000)))
            .await
            .unwrap();
        s.push(Data::Audio(AudioBuffer::mono_f32(vec![0.0; 10], 44_100)))
            .await
            .unwrap_err()
    });
    assert!(err.to_string().contains("changed mid-stream"), "{err}");
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Latency bound for every rate pair at each quality: at most 50 ms at `high`, less at the
/// lower levels, coprime pairs included; and a stream's output really is that far behind.
#[test]
fn latency_is_bounded_for_every_pair_and_streams_keep_up() {
    use remotemedia_nodes::audio::{ResampleQuality, StreamResampler};
    for (rin, rout) in PAIRS {
        let mut last = f64::MAX;
        for (q, bound_ms) in [
            (ResampleQuality::High, 50.0),
            (ResampleQuality::Medium, 40.0),
            (ResampleQuality::Fast, 30.0),
        ] {
            let mut r = StreamResampler::<f32>::new(q, rin, rout, 1).unwrap();
            let ms = r.delay_frames() as f64 * 1000.0 / rout as f64;
            assert!(ms <= bound_ms, "{rin}->{rout} {q:?}: latency {ms:.1} ms");
            // The FIR engine is what makes awkward pairs low-latency: it is used wherever
            // rubato's FFT blocks would be long (more than 160 input frames).
            let block = rin / gcd(rin, rout);
            if remotemedia_nodes::audio::polyphase_taps(q, rin, rout) > 0
                && rin.max(rout) % rin.min(rout) != 0
                && block > 160
            {
                assert_eq!(
                    r.engine(),
                    remotemedia_nodes::audio::ResampleEngine::Polyphase
                );
            }
            assert!(
                ms <= last,
                "{rin}->{rout} {q:?}: latency {ms:.1} ms above the level above"
            );
            last = ms;
            // Push 10 ms chunks: after each, the output covers the input minus the latency.
            let chunk = vec![0.1f32; (rin / 100) as usize];
            let (mut out, mut fed) = (Vec::new(), 0u64);
            for _ in 0..30 {
                r.push(&chunk, &mut out);
                fed += chunk.len() as u64;
                let ready_by_input = (fed * rout as u64) / rin as u64;
                let lag = ready_by_input.saturating_sub(out.len() as u64);
                assert!(
                    lag <= r.delay_frames() as u64 + 1,
                    "{rin}->{rout} {q:?}: {lag} frames behind, latency {}",
                    r.delay_frames()
                );
            }
        }
    }
}

/// Every sample format the node accepts, streamed in uneven chunks, equals the whole-input
/// result, for one pair of each family and 1 or 2 channels.
#[test]
fn every_format_streams_bit_identically_in_each_family() {
    let mut seed = 100;
    for (rin, rout) in [
        (48_000, 16_000),
        (16_000, 48_000),
        (44_100, 16_000),
        (48_000, 44_101),
    ] {
        for channels in [1u16, 2] {
            for format in SampleFormat::ALL {
                seed += 1;
                let p = resampler(rout, "high");
                let input = AudioBuffer::new(music(rin, 0.3, channels, seed).into(), rin, channels)
                    .unwrap()
                    .to_format(format);
                let whole = run_whole(&p, input.clone());
                let streamed = run_streamed(&p, &input, 777, seed);
                let (w, s) = (whole.as_audio().unwrap(), streamed.as_audio().unwrap());
                assert_eq!(w.format(), format);
                assert_eq!(s.format(), format);
                assert_eq!(w.channels(), channels);
                let expected = (input.frames() as u64 * rout as u64).div_ceil(rin as u64);
                assert_eq!(w.frames() as u64, expected, "{rin}->{rout} {format:?}");
                assert_eq!(
                    w.samples(),
                    s.samples(),
                    "{rin}->{rout} ch={channels} {format:?}: streamed differs"
                );
            }
        }
    }
}

/// The polyphase engine and rubato's FFT engine compute the same band-limited signal: on
/// music (content below 0.85 x the lower Nyquist) they agree within -90 dB.
#[test]
fn polyphase_and_rubato_engines_agree() {
    use remotemedia_nodes::audio::{ResampleEngine, ResampleQuality, StreamResampler};
    for (rin, rout) in [
        (48_000, 16_000),
        (44_100, 16_000),
        (16_000, 48_000),
        (48_000, 44_100),
    ] {
        let nyq = rin.min(rout) as f64 / 2.0;
        // Tones well inside both passbands.
        let x: Vec<f32> = (0..rin as usize / 2)
            .map(|n| {
                let t = n as f64 / rin as f64;
                [0.11, 0.37, 0.61, 0.8]
                    .iter()
                    .map(|f| 0.2 * (2.0 * std::f64::consts::PI * f * nyq * t).sin())
                    .sum::<f64>() as f32
            })
            .collect();
        let run = |engine| {
            let mut r =
                StreamResampler::<f32>::with_engine(engine, ResampleQuality::High, rin, rout, 1)
                    .unwrap();
            let mut out = Vec::new();
            r.push(&x, &mut out);
            r.flush(&mut out);
            out
        };
        let (a, b) = (
            run(ResampleEngine::Polyphase),
            run(ResampleEngine::RubatoFft),
        );
        assert_eq!(a.len(), b.len());
        let m = a.len() / 8;
        let err: Vec<f32> = a[m..a.len() - m]
            .iter()
            .zip(&b[m..b.len() - m])
            .map(|(p, q)| p - q)
            .collect();
        let d = db(rms(&err) / rms(&b[m..b.len() - m]));
        assert!(d < -90.0, "{rin}->{rout}: engines differ at {d:.1} dB");
    }
}

/// Which engine each pair family runs on by default in f32 (the choice documented in
/// docs/resampling.md), and that both precisions stream the same length.
#[test]
fn default_engine_per_pair_family() {
    use remotemedia_nodes::audio::{ResampleEngine, ResampleQuality, StreamResampler};
    let avx2 =
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
    for (rin, rout, fir_kernel) in [
        (48_000, 16_000, true),
        (32_000, 16_000, true),
        (16_000, 48_000, true),
        (8_000, 16_000, true),
        (8_000, 48_000, true),
        (22_050, 44_100, true),
        (44_100, 16_000, false),
        (22_050, 16_000, false),
        (44_100, 48_000, false),
        (48_000, 44_101, false),
    ] {
        for q in [
            ResampleQuality::Fast,
            ResampleQuality::Medium,
            ResampleQuality::High,
        ] {
            let r = StreamResampler::<f32>::new(q, rin, rout, 2).unwrap();
            if fir_kernel && avx2 {
                assert_eq!(r.engine(), ResampleEngine::Polyphase, "{rin}->{rout} {q:?}");
            }
            if !fir_kernel {
                assert_eq!(r.engine(), ResampleEngine::Polyphase, "{rin}->{rout} {q:?}");
            }
        }
    }
    // Close-rate downsampling with 160-frame FFT blocks: the FIR's row kernel in f32 for any
    // channel count and quality (with AVX2/FMA); rubato in f64, within the latency bound.
    for q in [ResampleQuality::Medium, ResampleQuality::High] {
        let r = StreamResampler::<f64>::new(q, 48_000, 44_100, 2).unwrap();
        assert_eq!(r.engine(), ResampleEngine::RubatoFft, "f64 {q:?}");
        assert!(r.delay_frames() as f64 * 1000.0 / 44_100.0 <= 50.0);
    }
    let fir = if avx2 {
        ResampleEngine::Polyphase
    } else {
        ResampleEngine::RubatoFft
    };
    for (q, ch) in [
        (ResampleQuality::High, 1),
        (ResampleQuality::High, 2),
        (ResampleQuality::Medium, 1),
        (ResampleQuality::Medium, 3),
        (ResampleQuality::Fast, 1),
    ] {
        let r = StreamResampler::<f32>::new(q, 48_000, 44_100, ch).unwrap();
        assert_eq!(r.engine(), fir, "{q:?} x{ch}");
    }
}
