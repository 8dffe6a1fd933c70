//! IIR filters as cascades of biquad sections: `HighPassNode` / `LowPassNode` (Butterworth,
//! order 1..=8) and `BiquadNode` (one section of any RBJ "Audio EQ Cookbook" type).
//!
//! The sections are designed in `crate::dsp::biquad`. Sections run in direct form I with `f64` state per channel, carried across
//! chunks, so streamed output equals whole-input output; each sample is converted back to the
//! input format once (integers round and saturate). The design needs the sample rate, so it is
//! made on the first chunk; a cutoff at or above Nyquist is refused then.
//!
//! DC removal: `HighPassNode` with `preset="dc_removal"` is a 20 Hz, order 2 high-pass.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use std::f64::consts::PI;

pub use crate::dsp::biquad::BiquadType;
use crate::dsp::biquad::{butterworth, rbj, Cascade, Pass, Section};
use crate::dsp::samples::{from_f64, to_f64};
use remotemedia_core::data::Data;
use remotemedia_core::error::{InputError, NodeError};
use remotemedia_core::node::{Node, StreamShape};
use remotemedia_core::registry::{NodeDef, NodeParams, ParamIssue};

/// The streaming part shared by the three filter nodes: design on the first chunk, then run.
#[derive(Debug, Default)]
struct FilterStream {
    shape: StreamShape,
    cascade: Option<Cascade>,
}

impl FilterStream {
    fn process(
        &mut self,
        input: &Data,
        design: impl FnOnce(u32) -> Result<Vec<Section>, NodeError>,
    ) -> Result<Option<Data>, NodeError> {
        let audio = self.shape.accept(input)?;
        if self.cascade.is_none() {
            let sections = design(audio.sample_rate())?;
            self.cascade = Some(Cascade::new(sections, audio.channels() as usize));
        }
        let mut v = to_f64(audio.samples());
        self.cascade.as_mut().expect("designed").run(&mut v);
        Ok(Some(Data::Audio(from_f64(v, audio))))
    }

    fn reset(&mut self) {
        self.shape.reset();
        self.cascade = None;
    }
}

fn check_below_nyquist(field: &'static str, hz: f64, rate: u32) -> Result<(), NodeError> {
    if hz >= rate as f64 / 2.0 {
        return Err(InputError::AboveNyquist { field, hz, rate }.into());
    }
    Ok(())
}

fn default_order() -> u8 {
    2
}

/// Named `HighPassNode` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum HighPassPreset {
    /// Removes DC offset and subsonic rumble: 20 Hz, order 2.
    DcRemoval,
    /// For speech: removes rumble, wind and handling noise below the voice (the lowest voice
    /// fundamentals are near 80 Hz): 80 Hz, order 4 (24 dB/octave), as voice front-ends do
    /// before echo cancellation and VAD.
    Voice,
}

impl HighPassPreset {
    /// The preset's cutoff (Hz) and order.
    fn design(self) -> (f64, u8) {
        match self {
            Self::DcRemoval => (20.0, 2),
            Self::Voice => (80.0, 4),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::DcRemoval => "dc_removal",
            Self::Voice => "voice",
        }
    }
}

/// Parameters of `HighPassNode`: `cutoff_hz`, or a `preset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HighPassParams {
    /// -3 dB frequency in Hz, 1.0..=192000.0 and below the input's Nyquist frequency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0, max = 192000.0), extend("x-unit" = "Hz"))]
    pub cutoff_hz: Option<f64>,
    /// Butterworth order, 1..=8 (6 dB/octave each). Default 2.
    #[serde(default = "default_order")]
    #[schemars(range(min = 1, max = 8))]
    pub order: u8,
    /// "dc_removal": 20 Hz, order 2; "voice": 80 Hz, order 4 (give no cutoff_hz or order with
    /// it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<HighPassPreset>,
}

impl NodeParams for HighPassParams {
    fn check(&self) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        match (self.cutoff_hz, self.preset) {
            (None, None) => issues.push(ParamIssue::new(
                "cutoff_hz",
                "missing; give cutoff_hz (1.0..=192000.0 Hz) or preset=\"dc_removal\" or \"voice\"",
            )),
            (Some(_), Some(_)) => issues.push(ParamIssue::new(
                "preset",
                "give either cutoff_hz or preset, not both",
            )),
            (Some(_), None) => {}
            (None, Some(p)) if self.order != default_order() => issues.push(ParamIssue::new(
                "order",
                format!(
                    "preset=\"{}\" fixes the order at {}; give cutoff_hz to choose it",
                    p.name(),
                    p.design().1
                ),
            )),
            (None, Some(_)) => {}
        }
        issues
    }
}

/// Parameters of `LowPassNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LowPassParams {
    /// -3 dB frequency in Hz, 1.0..=192000.0 and below the input's Nyquist frequency.
    #[schemars(range(min = 1.0, max = 192000.0), extend("x-unit" = "Hz"))]
    pub cutoff_hz: f64,
    /// Butterworth order, 1..=8 (6 dB/octave each). Default 2.
    #[serde(default = "default_order")]
    #[schemars(range(min = 1, max = 8))]
    pub order: u8,
}

impl NodeParams for LowPassParams {
    fn check(&self) -> Vec<ParamIssue> {
        // Ranges come from the schema attributes (checked generically by the registry).
        Vec::new()
    }
}

/// Butterworth high-pass (see module docs).
#[derive(Debug)]
pub struct HighPassNode {
    params: HighPassParams,
    stream: FilterStream,
}

impl HighPassNode {
    /// Builds the node.
    pub fn new(params: HighPassParams) -> Self {
        Self {
            params,
            stream: FilterStream::default(),
        }
    }
}

impl NodeDef for HighPassNode {
    const NAME: &'static str = "HighPassNode";
    const DESCRIPTION: &'static str =
        "Butterworth high-pass of `order` 1..=8 at `cutoff_hz` (cascaded biquads, f64 state);\n\
     preset=\"dc_removal\" is 20 Hz, order 2; preset=\"voice\" is 80 Hz, order 4 (for speech).";
    type Params = HighPassParams;
    fn build(params: HighPassParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for HighPassNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.stream.reset();
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let (hz, order) = match self.params.preset {
            Some(p) => p.design(),
            None => (self.params.cutoff_hz.unwrap_or(20.0), self.params.order),
        };
        self.stream.process(&input, |rate| {
            check_below_nyquist("cutoff_hz", hz, rate)?;
            Ok(butterworth(Pass::High, order, hz, rate))
        })
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        self.stream.reset();
        Ok(None)
    }
}

/// Butterworth low-pass (see module docs).
#[derive(Debug)]
pub struct LowPassNode {
    params: LowPassParams,
    stream: FilterStream,
}

impl LowPassNode {
    /// Builds the node.
    pub fn new(params: LowPassParams) -> Self {
        Self {
            params,
            stream: FilterStream::default(),
        }
    }
}

impl NodeDef for LowPassNode {
    const NAME: &'static str = "LowPassNode";
    const DESCRIPTION: &'static str =
        "Butterworth low-pass of `order` 1..=8 at `cutoff_hz` (cascaded biquads, f64 state).";
    type Params = LowPassParams;
    fn build(params: LowPassParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for LowPassNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.stream.reset();
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let (hz, order) = (self.params.cutoff_hz, self.params.order);
        self.stream.process(&input, |rate| {
            check_below_nyquist("cutoff_hz", hz, rate)?;
            Ok(butterworth(Pass::Low, order, hz, rate))
        })
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        self.stream.reset();
        Ok(None)
    }
}

fn default_q() -> f64 {
    std::f64::consts::FRAC_1_SQRT_2
}

/// Parameters of `BiquadNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BiquadParams {
    /// "lowpass", "highpass", "bandpass", "notch", "allpass", "peaking", "lowshelf" or
    /// "highshelf".
    pub filter_type: BiquadType,
    /// Centre or corner frequency in Hz, 1.0..=192000.0 and below the input's Nyquist.
    #[schemars(range(min = 1.0, max = 192000.0), extend("x-unit" = "Hz"))]
    pub freq_hz: f64,
    /// Quality factor, 0.01..=100.0. Default 0.7071.
    #[serde(default = "default_q")]
    #[schemars(range(min = 0.01, max = 100.0))]
    pub q: f64,
    /// Gain in dB for "peaking", "lowshelf" and "highshelf", -60.0..=60.0. Default 0.
    #[serde(default)]
    #[schemars(range(min = -60.0, max = 60.0), extend("x-unit" = "dB"))]
    pub gain_db: f64,
}

impl NodeParams for BiquadParams {
    fn check(&self) -> Vec<ParamIssue> {
        // Ranges come from the schema attributes (checked generically by the registry).
        Vec::new()
    }
}

/// One RBJ cookbook section (see module docs).
#[derive(Debug)]
pub struct BiquadNode {
    params: BiquadParams,
    stream: FilterStream,
}

impl BiquadNode {
    /// Builds the node.
    pub fn new(params: BiquadParams) -> Self {
        Self {
            params,
            stream: FilterStream::default(),
        }
    }
}

impl NodeDef for BiquadNode {
    const NAME: &'static str = "BiquadNode";
    const DESCRIPTION: &'static str = "One RBJ \"Audio EQ Cookbook\" biquad section: `filter_type` lowpass, highpass, bandpass,\n\
     notch, allpass, peaking, lowshelf or highshelf at `freq_hz` with `q`; `gain_db` applies to\n\
     peaking, lowshelf and highshelf.";
    type Params = BiquadParams;
    fn build(params: BiquadParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for BiquadNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.stream.reset();
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let p = self.params.clone();
        self.stream.process(&input, |rate| {
            check_below_nyquist("freq_hz", p.freq_hz, rate)?;
            let w0 = 2.0 * PI * p.freq_hz / rate as f64;
            Ok(vec![rbj(p.filter_type, w0, p.q, p.gain_db)])
        })
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        self.stream.reset();
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// |H(e^jw)| of a cascade.
    fn magnitude(sections: &[Section], w: f64) -> f64 {
        sections
            .iter()
            .map(|s| {
                let (z1r, z1i) = (w.cos(), -w.sin());
                let (z2r, z2i) = ((2.0 * w).cos(), -(2.0 * w).sin());
                let nr = s.b[0] + s.b[1] * z1r + s.b[2] * z2r;
                let ni = s.b[1] * z1i + s.b[2] * z2i;
                let dr = 1.0 + s.a[0] * z1r + s.a[1] * z2r;
                let di = s.a[0] * z1i + s.a[1] * z2i;
                ((nr * nr + ni * ni) / (dr * dr + di * di)).sqrt()
            })
            .product()
    }

    #[test]
    fn butterworth_is_3db_down_at_the_cutoff_and_flat_in_the_passband() {
        for order in 1..=8u8 {
            for pass in [Pass::Low, Pass::High] {
                let s = butterworth(pass, order, 1000.0, 48_000);
                assert_eq!(s.len(), (order as usize).div_ceil(2));
                let wc = 2.0 * PI * 1000.0 / 48_000.0;
                let at_cut = 20.0 * magnitude(&s, wc).log10();
                assert!((at_cut + 3.0103).abs() < 1e-3, "{pass:?} {order}: {at_cut}");
                let pass_w = if pass == Pass::Low { 1e-4 } else { PI - 1e-4 };
                assert!(
                    (magnitude(&s, pass_w) - 1.0).abs() < 1e-6,
                    "{pass:?} {order}"
                );
            }
        }
    }
}
