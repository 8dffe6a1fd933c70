//! Issue 9 hardening: bad input gets a clear error, never a panic, and never poisons the
//! pipeline for later runs.

mod common;

use common::*;
use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_core::error::{ExecutorError, NodeErrorKind};
use remotemedia_core::executor::BreakerState;

fn resampler(target: u32) -> remotemedia_core::Pipeline {
    pipeline(&one_node(
        "AudioResampleNode",
        &format!(r#"{{"target_rate": {target}}}"#),
    ))
}

/// The node error of a failed run, which must be an input error.
fn input_error(e: ExecutorError) -> String {
    match &e {
        ExecutorError::NodeError { source, .. } => {
            assert_eq!(*source.kind(), NodeErrorKind::InvalidInput, "{e}");
            e.to_string()
        }
        other => panic!("expected an input error, got {other:?}"),
    }
}

#[test]
fn resampler_refuses_non_finite_samples_naming_the_first() {
    let p = resampler(16_000);
    let rt = rt();
    for (bad, shown) in [
        (f32::NAN, "NaN"),
        (f32::INFINITY, "inf"),
        (f32::NEG_INFINITY, "-inf"),
    ] {
        let mut v = vec![0.1f32; 4800];
        v[1234] = bad;
        v[2000] = bad;
        let e = rt
            .block_on(p.run(Data::Audio(AudioBuffer::mono_f32(v, 48_000))))
            .unwrap_err();
        let msg = input_error(e);
        assert!(msg.contains("AudioResampleNode"), "{msg}");
        assert!(msg.contains("sample 1234 "), "{msg}");
        assert!(msg.contains(shown) && msg.contains("finite"), "{msg}");
    }
    // f64 audio too.
    let mut v = vec![0.0f64; 960];
    v[7] = f64::NAN;
    let a = AudioBuffer::new(Samples::F64(v.into()), 48_000, 1).unwrap();
    let msg = input_error(rt.block_on(p.run(Data::Audio(a))).unwrap_err());
    assert!(msg.contains("sample 7 ") && msg.contains("NaN"), "{msg}");
}

#[test]
fn huge_finite_samples_are_refused_or_resampled_never_a_panic() {
    let rt = rt();
    // 3e38 (near f32::MAX) overflowed inside the FFT and panicked in realfft.
    let p = resampler(16_000);
    let mut v = vec![0.1f32; 4800];
    v[10] = 3e38;
    let msg = input_error(
        rt.block_on(p.run(Data::Audio(AudioBuffer::mono_f32(v, 48_000))))
            .unwrap_err(),
    );
    assert!(msg.contains("sample 10 ") && msg.contains("f64"), "{msg}");
    // The same value as f64 is resampled (scaled, it is ordinary audio).
    let v64: Vec<f64> = (0..4800).map(|n| 3e38 * (n as f64 * 0.01).sin()).collect();
    let a = AudioBuffer::new(Samples::F64(v64.into()), 48_000, 1).unwrap();
    let out = run_whole(&p, a);
    match out.as_audio().unwrap().samples() {
        Samples::F64(b) => {
            assert_eq!(b.len(), 1600);
            assert!(b.iter().all(|x| x.is_finite()));
            let peak = b.iter().fold(0.0f64, |m, x| m.max(x.abs()));
            assert!(peak > 2e38 && peak < 4e38, "{peak:e}");
        }
        other => panic!("expected f64 output, got {other:?}"),
    }
    // Values just inside the f32 bound go through the longest FFT blocks and the largest
    // ratios without overflow.
    for (rin, rout) in [(48_000, 44_101), (8_000, 384_000), (384_000, 8_000)] {
        let frames = rin as usize / 2;
        let v: Vec<f32> = (0..frames)
            .map(|n| if n % 2 == 0 { 0.99e25 } else { -0.99e25 })
            .collect();
        let out = run_whole(&resampler(rout), AudioBuffer::mono_f32(v, rin));
        let s = f32_samples(&out);
        let expected = (frames as u64 * rout as u64).div_ceil(rin as u64) as usize;
        assert_eq!(s.len(), expected, "{rin}->{rout}");
        assert!(s.iter().all(|x| x.is_finite()), "{rin}->{rout}");
    }
    // And f64 just inside its bound.
    let v64: Vec<f64> = (0..48_000).map(|n| 0.99e290 * (n as f64).sin()).collect();
    let a = AudioBuffer::new(Samples::F64(v64.into()), 48_000, 1).unwrap();
    let out = run_whole(&resampler(44_101), a);
    match out.as_audio().unwrap().samples() {
        Samples::F64(b) => assert!(b.iter().all(|x| x.is_finite())),
        other => panic!("expected f64 output, got {other:?}"),
    }
}

#[test]
fn ten_bad_inputs_in_a_row_do_not_open_a_configured_breaker() {
    let p = pipeline(
        r#"{"version": "v1", "nodes": [{"id": "n", "node_type": "AudioResampleNode",
            "params": {"target_rate": 16000},
            "circuit_breaker": {"failure_threshold": 5, "cooldown_ms": 60000}}]}"#,
    );
    let rt = rt();
    for _ in 0..10 {
        let mut v = vec![0.1f32; 960];
        v[0] = f32::NAN;
        let e = rt
            .block_on(p.run(Data::Audio(AudioBuffer::mono_f32(v, 48_000))))
            .unwrap_err();
        input_error(e);
    }
    assert!(
        matches!(p.breaker_state("n"), Some(BreakerState::Closed { .. })),
        "{:?}",
        p.breaker_state("n")
    );
    let out = run_whole(&p, AudioBuffer::mono_f32(vec![0.1; 960], 48_000));
    assert_eq!(f32_samples(&out).len(), 320);
}

#[test]
fn without_a_configured_breaker_failures_never_refuse_a_run() {
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
            {"id": "bad", "node_type": "TestFailNode", "params": {"retryable": false}}]}"#,
    );
    let rt = rt();
    for i in 0..12 {
        let e = rt
            .block_on(p.run(Data::Audio(AudioBuffer::mono_f32(vec![0.0; 160], 16_000))))
            .unwrap_err();
        assert!(
            matches!(e, ExecutorError::NodeError { .. }),
            "run {i}: {e:?}"
        );
    }
    assert_eq!(
        p.breaker_state("bad"),
        Some(BreakerState::Closed {
            consecutive_failures: 12
        })
    );
}

#[test]
fn an_empty_circuit_breaker_object_gets_the_defaults_and_opens_after_5() {
    let p = pipeline(
        r#"{"version": "v1", "nodes": [
            {"id": "bad", "node_type": "TestFailNode", "params": {"retryable": false},
             "circuit_breaker": {}}]}"#,
    );
    let rt = rt();
    for _ in 0..5 {
        let e = rt
            .block_on(p.run(Data::Audio(AudioBuffer::mono_f32(vec![0.0; 160], 16_000))))
            .unwrap_err();
        assert!(matches!(e, ExecutorError::NodeError { .. }), "{e:?}");
    }
    let e = rt
        .block_on(p.run(Data::Audio(AudioBuffer::mono_f32(vec![0.0; 160], 16_000))))
        .unwrap_err();
    match e {
        ExecutorError::CircuitOpen {
            consecutive_failures,
            retry_after_ms,
            ..
        } => {
            assert_eq!(consecutive_failures, 5);
            assert!(retry_after_ms > 29_000 && retry_after_ms <= 30_000);
        }
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
}

#[test]
fn every_native_node_refuses_input_rates_outside_the_supported_range() {
    let registry = remotemedia_nodes::builtin_registry();
    let rt = rt();
    let mut checked = Vec::new();
    for node_type in registry.node_types() {
        // The first parameter set the type accepts (types needing other required parameters
        // are skipped here; the three that accepted any rate must not be).
        let candidates = [
            "{}",
            r#"{"target_format": "i16"}"#,
            r#"{"channels": 2}"#,
            r#"{"target_rate": 16000}"#,
        ];
        let Some(p) = candidates.iter().find_map(|params| {
            remotemedia_core::Pipeline::from_json(&one_node(node_type, params), &registry).ok()
        }) else {
            continue;
        };
        for rate in [1u32, 7_999, 384_001, u32::MAX] {
            let input = AudioBuffer::mono_f32(vec![0.1; 480], rate);
            let e = rt.block_on(p.run(Data::Audio(input))).unwrap_err();
            let msg = input_error(e);
            assert!(
                msg.contains(node_type)
                    && msg.contains(&format!("{rate} Hz"))
                    && msg.contains("8000..=384000"),
                "{node_type} at {rate} Hz: {msg}"
            );
        }
        checked.push(node_type.to_string());
    }
    for t in ["PassThroughNode", "FormatConverterNode", "ChannelMixNode"] {
        assert!(
            checked.iter().any(|c| c == t),
            "{t} not checked: {checked:?}"
        );
    }
}

fn manifest_error(node_type_json: &str) -> String {
    let json = format!(
        r#"{{"version": "v1", "nodes": [{{"id": "n", "node_type": {node_type_json}, "params": {{}}}}]}}"#
    );
    match remotemedia_core::Pipeline::from_json(&json, &registry()) {
        Ok(_) => panic!("{node_type_json} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn node_type_length_is_enforced_and_long_values_are_not_echoed() {
    let long = "A".repeat(100_000);
    let msg = manifest_error(&format!("\"{long}\""));
    assert!(
        msg.contains("100000 characters; a node type has 1 to 128"),
        "{msg}"
    );
    assert!(msg.len() < 400, "{} bytes", msg.len());
    let msg = manifest_error(&format!("\"{}\"", "B".repeat(129)));
    assert!(msg.contains("129 characters"), "{msg}");
    let msg = manifest_error("\"\"");
    assert!(msg.contains("0 characters"), "{msg}");
    // 128 characters is within the limit: the error is about the type being unknown.
    let msg = manifest_error(&format!("\"{}\"", "C".repeat(128)));
    assert!(msg.contains("unknown node type"), "{msg}");
}

#[test]
fn control_characters_in_node_type_are_never_echoed_raw() {
    for (json, escaped) in [
        (r#""Pass\u0000Through""#, r"Pass\0Through"),
        (r#""\u001b[31mred\u001b[0m""#, r"\u{1b}[31mred"),
        (r#""a\nb""#, r"a\nb"),
        (r#""x\r\u0007""#, r"x\r\u{7}"),
    ] {
        let msg = manifest_error(json);
        assert!(
            !msg.chars().any(|c| c.is_control() && c != '\n'),
            "{json}: {msg:?}"
        );
        assert!(!msg.contains("a\nb"), "{msg:?}");
        assert!(msg.contains("control characters"), "{msg}");
        assert!(msg.contains(escaped), "{json}: {msg}");
    }
    // Unknown but printable types keep the familiar message.
    let msg = manifest_error(r#""VADnode""#);
    assert!(
        msg.contains("unknown node type 'VADnode'; did you mean 'VADNode'?"),
        "{msg}"
    );
}
