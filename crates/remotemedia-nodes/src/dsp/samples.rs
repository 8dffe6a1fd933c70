//! Helpers shared by the level and filter nodes: every node computes in `f64` and converts
//! back to the input's format once, so integer outputs round half to even and saturate
//! (the rules of [`remotemedia_core::data::convert`]) and never wrap.

use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{check_stream_format, data_bytes, data_samples};

/// The samples as `f64` full scale (integers divided by 2^(bits-1)).
pub(crate) fn to_f64(samples: &Samples) -> Vec<f64> {
    samples.to_f64_vec()
}

/// `f64` full-scale samples back in the format of `like`, with its rate and channel count.
pub(crate) fn from_f64(values: Vec<f64>, like: &AudioBuffer) -> AudioBuffer {
    let samples = Samples::F64(values.into()).to_format(like.format());
    AudioBuffer::new(samples, like.sample_rate(), like.channels())
        .expect("same shape as a valid buffer")
}

/// Full-scale `f32` samples (what the f32 engines compute: RNNoise, AEC3, the AGC) as audio
/// in `format` with the given rate and channel count; no copy when `format` is f32.
pub(crate) fn from_f32(
    values: Vec<f32>,
    rate: u32,
    channels: u16,
    format: remotemedia_core::data::SampleFormat,
) -> AudioBuffer {
    AudioBuffer::new(
        Samples::F32(values.into()).to_format(format),
        rate,
        channels,
    )
    .expect("whole frames")
}

/// `f` applied to every sample in full-scale `f64`, in one pass, back in the input's format
/// with the rounding and saturation of [`from_f64`] (identical results, no intermediate
/// `f64` vector).
pub(crate) fn map_f64(audio: &AudioBuffer, f: impl Fn(f64) -> f64) -> AudioBuffer {
    const I16: f64 = 32_768.0;
    const I32: f64 = 2_147_483_648.0;
    let samples = match audio.samples() {
        Samples::F32(b) => Samples::F32(
            b.iter()
                .map(|&x| f(x as f64) as f32)
                .collect::<Vec<_>>()
                .into(),
        ),
        Samples::F64(b) => Samples::F64(b.iter().map(|&x| f(x)).collect::<Vec<_>>().into()),
        Samples::I16(b) => Samples::I16(
            b.iter()
                .map(|&x| {
                    // NaN survives clamp and rounding and becomes 0 in the cast, as in convert.
                    (f(x as f64 / I16) * I16)
                        .clamp(-I16, I16 - 1.0)
                        .round_ties_even() as i16
                })
                .collect::<Vec<_>>()
                .into(),
        ),
        Samples::I32(b) => Samples::I32(
            b.iter()
                .map(|&x| {
                    (f(x as f64 / I32) * I32)
                        .clamp(-I32, I32 - 1.0)
                        .round_ties_even() as i32
                })
                .collect::<Vec<_>>()
                .into(),
        ),
    };
    AudioBuffer::new(samples, audio.sample_rate(), audio.channels())
        .expect("same shape as a valid buffer")
}

/// Decibels to a linear amplitude factor.
pub(crate) fn db_to_gain(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// Appends `audio` to the held-back buffer of a stream, refusing a format change midway.
pub(crate) fn append(
    held: Option<AudioBuffer>,
    audio: &AudioBuffer,
) -> Result<AudioBuffer, NodeError> {
    match held {
        None => Ok(audio.clone()),
        Some(h) if h.frames() == 0 && h.format() != audio.format() => Ok(audio.clone()),
        Some(h) => {
            check_stream_format(Some(h.format()), audio)?;
            Ok(AudioBuffer::concat(&[&h, audio]).expect("same shape checked"))
        }
    }
}

/// Chunks held until flush, joined once there (appending to one buffer per chunk would copy
/// the whole stream again at every chunk).
#[derive(Debug, Default)]
pub(crate) struct Held(Vec<AudioBuffer>);

impl Held {
    /// Keeps a chunk, refusing a format change midway.
    pub(crate) fn push(&mut self, audio: &AudioBuffer) -> Result<(), NodeError> {
        check_stream_format(self.0.first().map(AudioBuffer::format), audio)?;
        self.0.push(audio.clone());
        Ok(())
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> u64 {
        self.0.iter().map(|a| a.byte_len() as u64).sum()
    }

    /// What a call of a node holding this stream allocates, for `Node::output_bytes`: the
    /// input kept (and its f64 working copy), plus what `flush` will need for the whole
    /// stream: one joined copy and one output of the same size.
    pub(crate) fn claim(&self, input: &Data) -> u64 {
        let all = self.bytes().saturating_add(data_bytes(input));
        all.saturating_mul(3)
            .saturating_add(data_samples(input).saturating_mul(8))
    }

    /// The parts held, in order.
    pub(crate) fn parts(&self) -> &[AudioBuffer] {
        &self.0
    }

    /// Everything held, joined; `None` when nothing was.
    pub(crate) fn take(&mut self) -> Option<AudioBuffer> {
        let parts = std::mem::take(&mut self.0);
        let refs: Vec<&AudioBuffer> = parts.iter().collect();
        AudioBuffer::concat(&refs)
    }
}

/// Scales every sample by `gain` (rounded and saturated as the module doc says).
pub(crate) fn scale(audio: &AudioBuffer, gain: f64) -> AudioBuffer {
    map_f64(audio, |x| x * gain)
}

/// Highest absolute sample in full-scale units.
pub(crate) fn peak(samples: &Samples) -> f64 {
    fn p<T: Copy>(s: &[T], f: impl Fn(T) -> f64) -> f64 {
        s.iter().fold(0.0f64, |m, &x| m.max(f(x).abs()))
    }
    match samples {
        Samples::F32(b) => p(b, |x| x as f64),
        Samples::F64(b) => p(b, |x| x),
        Samples::I16(b) => p(b, |x| x as f64 / 32768.0),
        Samples::I32(b) => p(b, |x| x as f64 / 2_147_483_648.0),
    }
}
