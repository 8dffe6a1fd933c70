//! Regression tests for what the cargo-fuzz targets (fuzz/, `make fuzz`) found: each input
//! here made a node panic (or feed a library values it must not get) before its fix.

use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_core::executor::Pipeline;

fn run(node_type: &str, params: &str, input: AudioBuffer) -> Data {
    let manifest = format!(
        r#"{{"version": "v1", "nodes": [{{"id": "n", "node_type": "{node_type}", "params": {params}}}]}}"#
    );
    let p = Pipeline::from_json(&manifest, &remotemedia_nodes::builtin_registry()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let out = rt
        .block_on(p.run(Data::Audio(input)))
        .unwrap_or_else(|e| panic!("{node_type}: {e}"));
    out.outputs["n"].clone()
}

fn probabilities(d: &Data) -> Vec<f64> {
    let Data::Json(serde_json::Value::Array(frames)) = d else {
        panic!("expected a list of frames, got {d:?}");
    };
    frames
        .iter()
        .map(|f| f["probability"].as_f64().expect("probability"))
        .collect()
}

/// SpeechVADNode resamples to 16 kHz for its model: f32 samples beyond 1e25 overflowed the FFT
/// and rubato panicked ("Imaginary part of first value was non-zero"). Huge samples are now
/// bounded for the analysis; the run succeeds with valid probabilities.
#[test]
fn speech_vad_takes_huge_samples_at_any_rate() {
    for rate in [48_000, 44_100, 8_000] {
        let mut v = vec![0.01f32; rate as usize / 2];
        for (i, x) in v.iter_mut().enumerate().step_by(97) {
            *x = if i % 2 == 0 { 1e30 } else { -3e38 };
        }
        let out = run(
            "SpeechVADNode",
            r#"{"emit": "probabilities"}"#,
            AudioBuffer::mono_f32(v, rate),
        );
        let p = probabilities(&out);
        assert!(!p.is_empty(), "{rate} Hz");
        assert!(
            p.iter().all(|x| (0.0..=1.0).contains(x)),
            "{rate} Hz: {p:?}"
        );
    }
}

/// +3e38 and -3e38 in the two channels of a frame summed to NaN in the downmix, which reached
/// the model (earshot asserts its input is in [-1, 1]).
#[test]
fn speech_vad_channel_sums_never_overflow() {
    let mut v = Vec::new();
    for i in 0..16_000 {
        let s = if i % 50 == 0 { 3e38f32 } else { 0.01 };
        v.extend([s, -s, f32::MAX, f32::MAX]);
    }
    let input = AudioBuffer::new(Samples::F32(v.into()), 16_000, 4).unwrap();
    let out = run("SpeechVADNode", r#"{"emit": "probabilities"}"#, input);
    assert!(probabilities(&out).iter().all(|x| (0.0..=1.0).contains(x)));
}
