//! IIR filters as cascades of biquad sections: `HighPassNode` / `LowPassNode` (Butterworth,
//! order 1..=8) and `BiquadNode` (one section of any RBJ "Audio EQ Cookbook" type).
//!
//! A Butterworth filter of order N is N/2 second-order sections with the Butterworth pole
//! Qs, `Q_k = 1 / (2 sin((2k + 1) pi / 2N))`, plus one first-order section when N is odd.
//! Each section is the bilinear transform of its analog prototype with the cutoff prewarped,
//! which is exactly how `scipy.signal.butter` designs, so the magnitude responses agree.
//! Sections run in direct form I with `f64` state per channel, carried across
//! chunks, so streamed output equals whole-input output; each sample is converted back to the
//! input format once (integers round and saturate). The design needs the sample rate, so it is
//! made on the first chunk; a cutoff at or above Nyquist is refused then.
//!
//! DC removal: `HighPassNode` with `preset="dc_removal"` is a 20 Hz, order 2 high-pass.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

use super::dsp::{from_f64, to_f64};
use remotemedia_core::data::Data;
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{Node, StreamShape};
use remotemedia_core::registry::{NodeDef, NodeParams, ParamIssue};

/// One normalised biquad section (`a0 = 1`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Section {
    /// Feed-forward coefficients.
    pub b: [f64; 3],
    /// Feedback coefficients `a1`, `a2`.
    pub a: [f64; 2],
}

impl Section {
    fn new(b0: f64, b1: f64, b2: f64, a0: f64, a1: f64, a2: f64) -> Self {
        Self {
            b: [b0 / a0, b1 / a0, b2 / a0],
            a: [a1 / a0, a2 / a0],
        }
    }
}

/// Which side of the cutoff a Butterworth filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Keeps frequencies below the cutoff.
    Low,
    /// Keeps frequencies above the cutoff.
    High,
}

/// A Butterworth design as biquad sections (see module docs).
pub fn butterworth(pass: Pass, order: u8, cutoff_hz: f64, rate: u32) -> Vec<Section> {
    let n = order as usize;
    let w0 = 2.0 * PI * cutoff_hz / rate as f64;
    let mut sections = Vec::with_capacity(n.div_ceil(2));
    for k in 0..n / 2 {
        let q = 1.0 / (2.0 * ((2 * k + 1) as f64 * PI / (2 * n) as f64).sin());
        let kind = match pass {
            Pass::Low => BiquadType::Lowpass,
            Pass::High => BiquadType::Highpass,
        };
        sections.push(rbj(kind, w0, q, 0.0));
    }
    if n % 2 == 1 {
        let k = (w0 / 2.0).tan();
        sections.push(match pass {
            Pass::Low => Section::new(k, k, 0.0, 1.0 + k, k - 1.0, 0.0),
            Pass::High => Section::new(1.0, -1.0, 0.0, 1.0 + k, k - 1.0, 0.0),
        });
    }
    sections
}

/// An RBJ cookbook section at normalised frequency `w0` (radians per sample).
pub fn rbj(kind: BiquadType, w0: f64, q: f64, gain_db: f64) -> Section {
    let (sin, cos) = w0.sin_cos();
    let alpha = sin / (2.0 * q);
    let a = 10f64.powf(gain_db / 40.0);
    let sa = 2.0 * a.sqrt() * alpha;
    match kind {
        BiquadType::Lowpass => Section::new(
            (1.0 - cos) / 2.0,
            1.0 - cos,
            (1.0 - cos) / 2.0,
            1.0 + alpha,
            -2.0 * cos,
            1.0 - alpha,
        ),
        BiquadType::Highpass => Section::new(
            (1.0 + cos) / 2.0,
            -(1.0 + cos),
            (1.0 + cos) / 2.0,
            1.0 + alpha,
            -2.0 * cos,
            1.0 - alpha,
        ),
        BiquadType::Bandpass => {
            Section::new(alpha, 0.0, -alpha, 1.0 + alpha, -2.0 * cos, 1.0 - alpha)
        }
        BiquadType::Notch => {
            Section::new(1.0, -2.0 * cos, 1.0, 1.0 + alpha, -2.0 * cos, 1.0 - alpha)
        }
        BiquadType::Allpass => Section::new(
            1.0 - alpha,
            -2.0 * cos,
            1.0 + alpha,
            1.0 + alpha,
            -2.0 * cos,
            1.0 - alpha,
        ),
        BiquadType::Peaking => Section::new(
            1.0 + alpha * a,
            -2.0 * cos,
            1.0 - alpha * a,
            1.0 + alpha / a,
            -2.0 * cos,
            1.0 - alpha / a,
        ),
        BiquadType::Lowshelf => Section::new(
            a * ((a + 1.0) - (a - 1.0) * cos + sa),
            2.0 * a * ((a - 1.0) - (a + 1.0) * cos),
            a * ((a + 1.0) - (a - 1.0) * cos - sa),
            (a + 1.0) + (a - 1.0) * cos + sa,
            -2.0 * ((a - 1.0) + (a + 1.0) * cos),
            (a + 1.0) + (a - 1.0) * cos - sa,
        ),
        BiquadType::Highshelf => Section::new(
            a * ((a + 1.0) + (a - 1.0) * cos + sa),
            -2.0 * a * ((a - 1.0) + (a + 1.0) * cos),
            a * ((a + 1.0) + (a - 1.0) * cos - sa),
            (a + 1.0) - (a - 1.0) * cos + sa,
            2.0 * ((a - 1.0) - (a + 1.0) * cos),
            (a + 1.0) - (a - 1.0) * cos - sa,
        ),
    }
}

/// A cascade of sections with per-channel state.
#[derive(Debug)]
struct Cascade {
    sections: Vec<Section>,
    /// `state[section * channels + channel]`: `[x1, x2, y1, y2]`, the section's last two
    /// inputs and outputs.
    state: Vec<[f64; 4]>,
    channels: usize,
}

impl Cascade {
    fn new(sections: Vec<Section>, channels: usize) -> Self {
        let state = vec![[0.0; 4]; sections.len() * channels];
        Self {
            sections,
            state,
            channels,
        }
    }

    /// Filters interleaved samples in place, channel by channel, every section per sample.
    /// Running all sections in one loop lets the CPU overlap the sections' recursions (each
    /// alone is latency-bound); the arithmetic per sample is the same in any chunking.
    fn run(&mut self, v: &mut [f64]) {
        match self.sections.len() {
            1 => self.run_n::<1>(v),
            2 => self.run_n::<2>(v),
            3 => self.run_n::<3>(v),
            _ => self.run_n::<4>(v),
        }
    }

    /// Direct form I, `y = b0 x + b1 x1 + b2 x2 - a2 y2 - a1 y1`, summed in that order: only
    /// the last multiply-subtract waits for the previous output, so the loop-carried chain is
    /// one multiply and one subtraction per sample (transposed direct form II chains an add,
    /// a multiply and an add: 3.3 against 1.6 ns per sample for one section in isolation,
    /// see docs/benchmarks.md).
    /// In f64 the forms agree to rounding; the state is f64 so low cutoffs (a 20 Hz high-pass
    /// at 192 kHz has poles 0.9993 from the unit circle) keep their precision.
    fn run_n<const N: usize>(&mut self, v: &mut [f64]) {
        debug_assert_eq!(self.sections.len(), N);
        let ch = self.channels;
        let secs: [Section; N] = std::array::from_fn(|s| self.sections[s]);
        for c in 0..ch {
            let mut z: [[f64; 4]; N] = std::array::from_fn(|s| self.state[s * ch + c]);
            let mut step = |x: &mut f64| {
                let mut u = *x;
                for (sec, z) in secs.iter().zip(z.iter_mut()) {
                    let [x1, x2, y1, y2] = *z;
                    let y = sec.b[0] * u + sec.b[1] * x1 + sec.b[2] * x2
                        - sec.a[1] * y2
                        - sec.a[0] * y1;
                    *z = [u, x1, y, y1];
                    u = y;
                }
                *x = u;
            };
            if ch == 1 {
                v.iter_mut().for_each(&mut step);
            } else {
                v.iter_mut().skip(c).step_by(ch).for_each(&mut step);
            }
            for (s, zs) in z.iter().enumerate() {
                self.state[s * ch + c] = *zs;
            }
        }
    }
}

/// The streaming part shared by the three filter nodes: design on the first chunk, then run.
#[derive(Debug, Default)]
struct FilterStream {
    shape: StreamShape,
    cascade: Option<Cascade>,
}

impl FilterStream {
    fn process(
        &mut self,
        name: &str,
        input: &Data,
        design: impl FnOnce(u32) -> Result<Vec<Section>, NodeError>,
    ) -> Result<Option<Data>, NodeError> {
        let audio = self.shape.accept(name, input)?;
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

fn check_below_nyquist(name: &str, field: &str, hz: f64, rate: u32) -> Result<(), NodeError> {
    if hz >= rate as f64 / 2.0 {
        return Err(NodeError::invalid_input(format!(
            "{name}: params.{field} {hz} Hz must be below Nyquist ({} Hz for {rate} Hz input)",
            rate as f64 / 2.0
        )));
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
    /// "dc_removal": 20 Hz, order 2 (give no cutoff_hz or order with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<HighPassPreset>,
}

impl NodeParams for HighPassParams {
    fn check(&self) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        match (self.cutoff_hz, self.preset) {
            (None, None) => issues.push(ParamIssue::new(
                "cutoff_hz",
                "missing; give cutoff_hz (1.0..=192000.0 Hz) or preset=\"dc_removal\"",
            )),
            (Some(_), Some(_)) => issues.push(ParamIssue::new(
                "preset",
                "give either cutoff_hz or preset, not both",
            )),
            (Some(_), None) => {}
            (None, Some(_)) if self.order != default_order() => issues.push(ParamIssue::new(
                "order",
                "preset=\"dc_removal\" fixes the order at 2; give cutoff_hz to choose it",
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
     preset=\"dc_removal\" is 20 Hz, order 2.";
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
            Some(HighPassPreset::DcRemoval) => (20.0, 2),
            None => (self.params.cutoff_hz.unwrap_or(20.0), self.params.order),
        };
        self.stream.process("HighPassNode", &input, |rate| {
            check_below_nyquist("HighPassNode", "cutoff_hz", hz, rate)?;
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
        self.stream.process("LowPassNode", &input, |rate| {
            check_below_nyquist("LowPassNode", "cutoff_hz", hz, rate)?;
            Ok(butterworth(Pass::Low, order, hz, rate))
        })
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        self.stream.reset();
        Ok(None)
    }
}

/// RBJ cookbook filter types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BiquadType {
    /// 12 dB/octave low-pass; `q` sets the resonance (0.7071 is Butterworth).
    Lowpass,
    /// 12 dB/octave high-pass.
    Highpass,
    /// Band-pass with 0 dB peak gain; `q` sets the bandwidth.
    Bandpass,
    /// Notch (band-reject) at `freq_hz`.
    Notch,
    /// All-pass: flat magnitude, phase turns around `freq_hz`.
    Allpass,
    /// Peaking EQ: `gain_db` at `freq_hz`, bandwidth from `q`.
    Peaking,
    /// Low shelf: `gain_db` below `freq_hz`.
    Lowshelf,
    /// High shelf: `gain_db` above `freq_hz`.
    Highshelf,
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
        self.stream.process("BiquadNode", &input, |rate| {
            check_below_nyquist("BiquadNode", "freq_hz", p.freq_hz, rate)?;
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
