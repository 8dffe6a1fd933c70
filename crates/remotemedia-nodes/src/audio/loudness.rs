//! `LoudnessNormalizeNode`: EBU R128 / ITU-R BS.1770 integrated loudness to a target, with a
//! true-peak ceiling. Measurement is the `ebur128` crate (a port of libebur128): K-weighting,
//! 400 ms blocks with 75% overlap, absolute gate -70 LUFS and relative gate -10 LU; true peak
//! by 4x oversampling below 96 kHz.
//!
//! `mode="whole"` (default) is two passes: the node holds the stream back, measures it at
//! `flush`, and emits it scaled by `target_lufs - integrated` dB, lowered if needed so the
//! true peak does not exceed `true_peak_db` (the ceiling wins: output can end below target).
//! The held stream counts against the executor's `max_call_bytes` (three times its size:
//! held, joined, scaled), so a stream longer than a third of that limit is refused with an
//! error naming the node, the limit and `mode="streaming"`. Audio quieter than the absolute
//! gate (or silence) passes unchanged, and so does audio with a NaN or infinite sample (its
//! loudness is undefined; in streaming mode the gain returns to 0 dB from the next block).
//!
//! `mode="streaming"` has no latency: the stream is cut into 100 ms blocks counted from its
//! first sample; at each block boundary the gated integrated loudness of everything before it
//! gives a new gain (capped so the highest true peak seen so far stays under the ceiling), and
//! the gain moves linearly to it across the next block, so there are no steps. Until the
//! first 400 ms gating block exists the gain is 0 dB. The gain follows the running estimate,
//! so early audio is not yet at target, and a peak louder than any before it can pass the
//! ceiling until the next block (integer outputs saturate). Block boundaries depend only on
//! stream position, so streamed output equals whole-input output in this mode too.
//!
//! Below 44.1 kHz both modes measure the audio upsampled by an integer factor (see [`Meter`]):
//! BS.1770's filter re-designed at a low rate reads too loud (+0.09..0.15 LU at 16 kHz). In
//! streaming mode the estimate then lags the input by the upsampler's delay (one resampler
//! block, about 20 ms).

use async_trait::async_trait;
use ebur128::{EbuR128, Mode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dsp::resample::{ResampleQuality, StreamResampler};
use crate::dsp::samples::{db_to_gain, from_f64, scale, to_f64, Held};
use remotemedia_core::data::{AudioBuffer, Data};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{data_bytes, data_samples, Node, StreamShape};
use remotemedia_core::registry::{NodeDef, NodeParams, ParamIssue};

/// How `LoudnessNormalizeNode` measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LoudnessMode {
    /// Two passes: hold the stream, measure, then scale it all by one gain.
    #[default]
    Whole,
    /// No latency: gain follows the gated running estimate, updated every 100 ms.
    Streaming,
}

fn default_target() -> f64 {
    -23.0
}
fn default_true_peak() -> f64 {
    -1.0
}

/// Parameters of `LoudnessNormalizeNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoudnessParams {
    /// Integrated loudness to reach, -70.0..=0.0 LUFS. Default -23.0 (EBU R128).
    #[serde(default = "default_target")]
    #[schemars(range(min = -70.0, max = 0.0), extend("x-unit" = "LUFS"))]
    pub target_lufs: f64,
    /// True-peak ceiling, -30.0..=0.0 dBTP. Default -1.0.
    #[serde(default = "default_true_peak")]
    #[schemars(range(min = -30.0, max = 0.0), extend("x-unit" = "dBTP"))]
    pub true_peak_db: f64,
    /// "whole" (default, two passes, emits at flush) or "streaming" (running estimate).
    #[serde(default)]
    pub mode: LoudnessMode,
}

impl Default for LoudnessParams {
    fn default() -> Self {
        Self {
            target_lufs: default_target(),
            true_peak_db: default_true_peak(),
            mode: LoudnessMode::Whole,
        }
    }
}

impl NodeParams for LoudnessParams {
    fn check(&self) -> Vec<ParamIssue> {
        // Ranges come from the schema attributes (checked generically by the registry).
        Vec::new()
    }
}

fn meter_error(e: ebur128::Error) -> NodeError {
    NodeError::failed(format!("loudness meter: {e}"))
}

/// Rates below this are measured on the audio upsampled by an integer factor to at least
/// this rate (see [`Meter`]).
const MIN_METER_RATE: u32 = 44_100;

/// The `ebur128` meter, fed at a rate where its K-weighting filter is accurate.
///
/// BS.1770 specifies the K-weighting filter at 48 kHz; other rates get the bilinear transform
/// of its analog prototype, which compresses the response towards Nyquist: the high-shelf
/// rises at lower frequencies than it should, so at 16 kHz the crate read 0.09..0.15 LU
/// louder than the 48 kHz reading of the same audio upsampled (0.13..0.32 at 8 kHz). Audio below 44.1 kHz is therefore upsampled by the smallest integer factor that
/// reaches 44.1 kHz (16 kHz x3, 22.05 kHz x2, 8 kHz x6) with our own resampler before it is
/// measured (at 44.1 kHz the filter reads within 0.003 LU of the 48 kHz reading). The
/// upsampler's delay is compensated, its re-cutting depends only on stream position (so the
/// streaming mode stays chunking-independent), and it only feeds the meter: the audio that is
/// scaled and emitted is the input itself. The true peak is measured on the input at its own
/// rate (ebur128 oversamples it 4x there; at the upsampled rate that would be 3x to 6x the
/// work for the same estimate).
///
/// The upsampler runs in f32: its error (about -140 dB) is far below what moves a loudness
/// reading by 0.001 LU.
struct Meter {
    meter: EbuR128,
    up: Option<(StreamResampler<f32>, EbuR128)>,
    input: Vec<f32>,
    scratch: Vec<f32>,
    /// A NaN or infinite sample was measured: the loudness is undefined from then on.
    nonfinite: bool,
}

impl Meter {
    fn new(audio: &AudioBuffer) -> Result<Self, NodeError> {
        Self::with_modes(audio.sample_rate(), audio.channels(), Mode::I)
    }

    /// A meter of `loudness` modes (`Mode::I`, plus `Mode::LRA` for the loudness range) and
    /// the true peak.
    fn with_modes(rate: u32, channels: u16, loudness: Mode) -> Result<Self, NodeError> {
        let ch = channels as usize;
        let factor = MIN_METER_RATE.div_ceil(rate).max(1);
        let (meter, up) = if factor > 1 {
            let resampler = StreamResampler::new(ResampleQuality::High, rate, rate * factor, ch)
                .map_err(|e| NodeError::failed(format!("upsampler: {e}")))?;
            let loudness = EbuR128::new(ch as u32, rate * factor, loudness).map_err(meter_error)?;
            let peak = EbuR128::new(ch as u32, rate, Mode::TRUE_PEAK).map_err(meter_error)?;
            (peak, Some((resampler, loudness)))
        } else {
            let both =
                EbuR128::new(ch as u32, rate, loudness | Mode::TRUE_PEAK).map_err(meter_error)?;
            (both, None)
        };
        Ok(Self {
            meter,
            up,
            input: Vec::new(),
            scratch: Vec::new(),
            nonfinite: false,
        })
    }

    /// Measures interleaved full-scale frames.
    fn add(&mut self, frames: &[f64]) -> Result<(), NodeError> {
        self.nonfinite |= frames.iter().any(|x| !x.is_finite());
        self.meter.add_frames_f64(frames).map_err(meter_error)?;
        if let Some((up, loudness)) = &mut self.up {
            self.input.clear();
            // The FFT resampler must not see NaN, infinities or values near f32::MAX (see
            // resample.rs); such input makes the reading undefined anyway.
            self.input.extend(frames.iter().map(|&x| {
                if x.is_finite() {
                    x.clamp(-1e20, 1e20) as f32
                } else {
                    0.0
                }
            }));
            self.scratch.clear();
            up.push(&self.input, &mut self.scratch);
            loudness
                .add_frames_f32(&self.scratch)
                .map_err(meter_error)?;
        }
        Ok(())
    }

    /// Measures what the upsampler still holds (the end of the stream).
    fn finish(&mut self) -> Result<(), NodeError> {
        if let Some((up, loudness)) = &mut self.up {
            self.scratch.clear();
            up.flush(&mut self.scratch);
            loudness
                .add_frames_f32(&self.scratch)
                .map_err(meter_error)?;
        }
        Ok(())
    }

    /// Gated integrated loudness so far, LUFS (-inf below the absolute gate).
    fn loudness(&self) -> Result<f64, NodeError> {
        if self.nonfinite {
            return Ok(f64::NAN);
        }
        match &self.up {
            None => self.meter.loudness_global(),
            Some((_, loudness)) => loudness.loudness_global(),
        }
        .map_err(meter_error)
    }

    /// Loudness range (EBU Tech 3342), LU; needs `Mode::LRA`.
    fn loudness_range(&self) -> Result<f64, NodeError> {
        if self.nonfinite {
            return Ok(f64::NAN);
        }
        match &self.up {
            None => self.meter.loudness_range(),
            Some((_, loudness)) => loudness.loudness_range(),
        }
        .map_err(meter_error)
    }

    /// Highest true peak over all channels, linear.
    fn true_peak(&self) -> Result<f64, NodeError> {
        let mut tp = 0.0f64;
        for c in 0..self.meter.channels() {
            tp = tp.max(self.meter.true_peak(c).map_err(meter_error)?);
        }
        Ok(tp)
    }
}

/// The gain that brings `loudness` to `target`, capped by the ceiling; 1.0 when the loudness
/// is not measurable (below the absolute gate).
fn gain_for(loudness: f64, tp: f64, target: f64, ceiling_db: f64) -> f64 {
    if !loudness.is_finite() {
        return 1.0;
    }
    let g = db_to_gain(target - loudness);
    let ceiling = db_to_gain(ceiling_db);
    if tp > 0.0 && tp * g > ceiling {
        ceiling / tp
    } else {
        g
    }
}

/// Feeds `audio` to the meter about a second at a time.
fn add_in_pieces(meter: &mut Meter, audio: &AudioBuffer) -> Result<(), NodeError> {
    const PIECE: usize = 1 << 16;
    let frames = audio.frames();
    let mut at = 0;
    while at < frames {
        let end = (at + PIECE).min(frames);
        meter.add(&to_f64(audio.slice_frames(at, end).samples()))?;
        at = end;
    }
    Ok(())
}

/// EBU R128 figures of a stream: what `remotemedia.loudness` and the CLI report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoudnessReport {
    /// Gated integrated loudness, LUFS (-inf below the absolute gate, NaN with a NaN sample).
    pub integrated_lufs: f64,
    /// Highest true peak over all channels, dBTP.
    pub true_peak_dbtp: f64,
    /// Loudness range (EBU Tech 3342), LU.
    pub loudness_range_lu: f64,
}

/// The meter of `LoudnessNormalizeNode`, fed block by block (constant memory for a file of any
/// length): integrated loudness, true peak and loudness range.
pub struct LoudnessMeter(Meter);

impl LoudnessMeter {
    /// A meter for audio at `sample_rate` with `channels`.
    pub fn new(sample_rate: u32, channels: u16) -> Result<Self, NodeError> {
        Meter::with_modes(sample_rate, channels, Mode::I | Mode::LRA).map(Self)
    }

    /// Measures a block (full scale 1.0 for floats, the type's range for integers).
    pub fn add(&mut self, audio: &AudioBuffer) -> Result<(), NodeError> {
        add_in_pieces(&mut self.0, audio)
    }

    /// The figures of everything added.
    pub fn finish(mut self) -> Result<LoudnessReport, NodeError> {
        self.0.finish()?;
        Ok(LoudnessReport {
            integrated_lufs: self.0.loudness()?,
            true_peak_dbtp: 20.0 * self.0.true_peak()?.log10(),
            loudness_range_lu: self.0.loudness_range()?,
        })
    }
}

/// Measures the integrated loudness (LUFS) and true peak (linear) of a whole buffer.
pub fn measure(audio: &AudioBuffer) -> Result<(f64, f64), NodeError> {
    let mut meter = Meter::new(audio)?;
    add_in_pieces(&mut meter, audio)?;
    meter.finish()?;
    Ok((meter.loudness()?, meter.true_peak()?))
}

struct Running {
    meter: Meter,
    block: usize,
    /// Frames of the current block already processed.
    in_block: usize,
    from: f64,
    to: f64,
}

/// Normalises loudness (see module docs).
pub struct LoudnessNormalizeNode {
    params: LoudnessParams,
    shape: StreamShape,
    held: Held,
    running: Option<Running>,
}

impl std::fmt::Debug for LoudnessNormalizeNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoudnessNormalizeNode")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl LoudnessNormalizeNode {
    /// Builds the node.
    pub fn new(params: LoudnessParams) -> Self {
        Self {
            params,
            shape: StreamShape::default(),
            held: Held::default(),
            running: None,
        }
    }

    fn stream(&mut self, audio: &AudioBuffer) -> Result<AudioBuffer, NodeError> {
        let (target, ceiling) = (self.params.target_lufs, self.params.true_peak_db);
        let r = match &mut self.running {
            Some(r) => r,
            None => self.running.insert(Running {
                meter: Meter::new(audio)?,
                block: ((audio.sample_rate() as usize + 5) / 10).max(1),
                in_block: 0,
                from: 1.0,
                to: 1.0,
            }),
        };
        let ch = audio.channels() as usize;
        let mut v = to_f64(audio.samples());
        let frames = audio.frames();
        let mut f = 0;
        while f < frames {
            let n = (r.block - r.in_block).min(frames - f);
            let part = &mut v[f * ch..(f + n) * ch];
            // Measure before scaling: the estimate is of the input.
            r.meter.add(part)?;
            let step = (r.to - r.from) / r.block as f64;
            for (i, frame) in part.chunks_exact_mut(ch).enumerate() {
                let g = r.from + step * (r.in_block + i + 1) as f64;
                for x in frame {
                    *x *= g;
                }
            }
            r.in_block += n;
            f += n;
            if r.in_block == r.block {
                r.in_block = 0;
                r.from = r.to;
                let l = r.meter.loudness()?;
                r.to = gain_for(l, r.meter.true_peak()?, target, ceiling);
            }
        }
        Ok(from_f64(v, audio))
    }
}

impl NodeDef for LoudnessNormalizeNode {
    const NAME: &'static str = "LoudnessNormalizeNode";
    const DESCRIPTION: &'static str =
        "EBU R128 / ITU-R BS.1770 integrated loudness normalisation to `target_lufs` with a\n\
     `true_peak_db` ceiling.\n\
     \n\
     mode=\"whole\" measures the whole stream and emits it at flush (two passes);\n\
     mode=\"streaming\" follows a gated running estimate, updated every 100 ms, with no latency.";
    type Params = LoudnessParams;
    fn build(params: LoudnessParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for LoudnessNormalizeNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.shape.reset();
        self.held = Held::default();
        self.running = None;
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let audio = self.shape.accept(&input)?;
        match self.params.mode {
            LoudnessMode::Whole => {
                self.held.push(audio)?;
                Ok(None)
            }
            LoudnessMode::Streaming => Ok(Some(Data::Audio(self.stream(audio)?))),
        }
    }

    fn output_bytes(&self, input: &Data) -> u64 {
        match self.params.mode {
            LoudnessMode::Whole => self.held.claim(input),
            LoudnessMode::Streaming => {
                data_bytes(input).saturating_add(data_samples(input).saturating_mul(8))
            }
        }
    }

    fn holding_advice(&self) -> Option<String> {
        (self.params.mode == LoudnessMode::Whole).then(|| {
            "LoudnessNormalizeNode with mode=\"whole\" holds the whole stream until its end \
             (two passes), and the stream held so far is counted against this limit; for \
             longer streams use mode=\"streaming\" or raise the limit"
                .to_string()
        })
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        self.shape.reset();
        self.running = None;
        let Some(first) = self.held.parts().first() else {
            return Ok(None);
        };
        // Measured part by part, in pieces: the f64 copy and the upsampled copy stay small.
        let mut meter = Meter::new(first)?;
        for part in self.held.parts() {
            add_in_pieces(&mut meter, part)?;
        }
        meter.finish()?;
        let (loudness, tp) = (meter.loudness()?, meter.true_peak()?);
        let held = self.held.take().expect("a part is held");
        let g = gain_for(
            loudness,
            tp,
            self.params.target_lufs,
            self.params.true_peak_db,
        );
        Ok(Some(Data::Audio(scale(&held, g))))
    }
}
