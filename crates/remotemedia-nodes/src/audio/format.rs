//! `FormatConverterNode`: sample-format conversion (scaling rules in [`remotemedia_core::data::convert`]),
//! with optional TPDF dither when reducing to an integer format.
//!
//! With `dither="tpdf"`, float -> integer and i32 -> i16 conversions add triangular noise of
//! +-1 LSB (the difference of two uniform values in [0, 1) LSB) before rounding, which turns
//! the quantisation error into signal-independent noise (no distortion on quiet passages).
//! The noise comes from a SplitMix64 generator seeded with `seed`, stepped once per sample of
//! the stream, so output is reproducible and streamed output equals whole-input output. The
//! generator restarts at each new stream. Other conversions ignore `dither`. Default "none":
//! plain rounding, unchanged.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use remotemedia_core::data::{AudioBuffer, Data, SampleFormat, Samples};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{audio_input, Node};
use remotemedia_core::registry::{NodeDef, NodeParams};

use crate::dsp::rng::SplitMix;

/// Dither added before quantising to an integer format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Dither {
    /// Plain rounding (half to even).
    #[default]
    None,
    /// Triangular (TPDF) dither of +-1 LSB.
    Tpdf,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Parameters of `FormatConverterNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FormatConverterParams {
    /// Output sample format: "f32", "i16", "i32" or "f64".
    pub target_format: SampleFormat,
    /// "none" (default) or "tpdf": dither when reducing to an integer format.
    #[serde(default, skip_serializing_if = "is_default")]
    #[schemars(extend("default" = "none"))]
    pub dither: Dither,
    /// Seed of the dither noise (any unsigned 64-bit integer). Default 0.
    #[serde(default, skip_serializing_if = "is_default")]
    #[schemars(extend("default" = 0))]
    pub seed: u64,
}

impl NodeParams for FormatConverterParams {}

/// Quantises full-scale `x` to an integer of full scale `scale` (2^(bits-1)) with dither.
#[inline]
fn dithered(x: f64, scale: f64, rng: &mut SplitMix) -> f64 {
    // NaN stays NaN through clamp and becomes 0 in the integer cast.
    (x * scale + rng.tpdf())
        .round_ties_even()
        .clamp(-scale, scale - 1.0)
}

/// Converts `audio` to `target` with TPDF dither, or `None` when the conversion does not
/// reduce to an integer format (dither does not apply).
fn convert_dithered(
    audio: &AudioBuffer,
    target: SampleFormat,
    rng: &mut SplitMix,
) -> Option<Samples> {
    let reduces = matches!(
        (audio.format(), target),
        (
            SampleFormat::F32 | SampleFormat::F64,
            SampleFormat::I16 | SampleFormat::I32
        ) | (SampleFormat::I32, SampleFormat::I16)
    );
    if !reduces {
        return None;
    }
    let x = audio.samples().to_f64_vec();
    Some(match target {
        SampleFormat::I16 => Samples::I16(
            x.iter()
                .map(|&v| dithered(v, 32768.0, rng) as i16)
                .collect::<Vec<_>>()
                .into(),
        ),
        _ => Samples::I32(
            x.iter()
                .map(|&v| dithered(v, 2_147_483_648.0, rng) as i32)
                .collect::<Vec<_>>()
                .into(),
        ),
    })
}

/// Converts audio to `target_format`; a no-op (no copy) when already in it.
#[derive(Debug)]
pub struct FormatConverterNode {
    target: SampleFormat,
    dither: Dither,
    seed: u64,
    rng: SplitMix,
}

impl FormatConverterNode {
    /// Builds the node.
    pub fn new(p: FormatConverterParams) -> Self {
        Self {
            target: p.target_format,
            dither: p.dither,
            seed: p.seed,
            rng: SplitMix(p.seed),
        }
    }
}

impl NodeDef for FormatConverterNode {
    const NAME: &'static str = "FormatConverterNode";
    const DESCRIPTION: &'static str =
        "Converts the sample format (\"f32\", \"i16\", \"i32\", \"f64\").\n\
     \n\
     Integer <-> float scales by 2^(bits-1); float -> integer rounds half to even and saturates\n\
     (never wraps); the same format passes through without a copy. dither=\"tpdf\" adds +-1 LSB\n\
     triangular noise (seeded by `seed`, reproducible) before rounding float -> integer and\n\
     i32 -> i16.";
    type Params = FormatConverterParams;
    fn build(params: FormatConverterParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for FormatConverterNode {
    /// The samples in the target format, plus an f64 working copy when dithering.
    fn output_bytes(&self, input: &Data) -> u64 {
        let Some(a) = input.as_audio() else {
            return 0;
        };
        if a.format() == self.target {
            return 0;
        }
        let n = a.samples().len() as u64;
        let work = if self.dither == Dither::Tpdf { 8 } else { 0 };
        n.saturating_mul(self.target.bytes_per_sample() as u64 + work)
    }

    fn output_size(&self, input: &Data) -> Option<u64> {
        let a = input.as_audio()?;
        (a.format() != self.target).then(|| {
            (a.samples().len() as u64).saturating_mul(self.target.bytes_per_sample() as u64)
        })
    }

    async fn start(&mut self) -> Result<(), NodeError> {
        self.rng = SplitMix(self.seed);
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let audio = audio_input(&input)?;
        if self.dither == Dither::Tpdf {
            if let Some(samples) = convert_dithered(audio, self.target, &mut self.rng) {
                let out = AudioBuffer::new(samples, audio.sample_rate(), audio.channels())
                    .expect("same shape as the input");
                return Ok(Some(Data::Audio(out)));
            }
        }
        Ok(Some(Data::Audio(audio.to_format(self.target))))
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        self.rng = SplitMix(self.seed);
        Ok(None)
    }
}
