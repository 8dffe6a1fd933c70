//! The bundled recording (examples/speech_48k.wav, real speech) for the voice node tests.

use remotemedia_nodes::audio::{ResampleQuality, StreamResampler};

/// The recording (48 kHz mono i16) as f32.
pub fn clip() -> Vec<f32> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/speech_48k.wav");
    let mut r = hound::WavReader::open(path).expect("examples/speech_48k.wav");
    r.samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32768.0)
        .collect()
}

/// `x` (mono, 48 kHz) at `rate`, with the high-quality resampler.
pub fn at_rate(x: &[f32], rate: u32) -> Vec<f32> {
    if rate == 48_000 {
        return x.to_vec();
    }
    let mut r = StreamResampler::<f32>::new(ResampleQuality::High, 48_000, rate, 1).unwrap();
    let mut out = Vec::new();
    r.push(x, &mut out);
    r.flush(&mut out);
    out
}
