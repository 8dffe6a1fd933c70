//! `AutoGainNode`: automatic gain control for speech (in the manner of WebRTC's AGC2 adaptive
//! digital controller): the speech level is measured only where a speech detector says there
//! is speech, the gain moves towards `target_db - level` at a bounded rate, and a peak limiter
//! keeps the output under `limiter_db`.
//!
//! Analysis runs on a 16 kHz mono copy (downmixed, resampled with the band-limited resampler)
//! in 32 ms windows: the bundled Silero network (the `SpeechVADNode` engine) gives each window's
//! speech probability. It sees each window scaled to a fixed level, so quiet speech is found as
//! readily as loud; a window also needs an RMS above -70 dBFS. The speech level is the power
//! mean of the speech windows, exponentially weighted over about `1.5 s` of speech (the first
//! speech window sets it). Between words and in noise-only input the gain holds: noise is never
//! pumped up on its own.
//!
//! The gain for the span of window `k` ramps from the value after window `k - 2` to the value
//! after window `k - 1` (one window behind the audio, which a slow controller does not feel), so
//! the node adds no latency at 16 kHz and only the resampler's look-ahead at other rates, and a
//! stream gives the same samples as the whole input. The limiter acts per frame (all channels
//! alike): instant attack, 50 ms release, applied after the gain.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::silero::{load_model, Silero, SileroWeights, WINDOW};
use crate::dsp::resample::{ResampleQuality, StreamResampler};
use crate::dsp::samples::from_f32;
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{check_finite, Node, StreamShape};
use remotemedia_core::registry::{NodeDef, NodeParams, ParamIssue};

const ANALYSIS_RATE: u32 = 16_000;
/// Speech probability above which a window counts as speech.
const SPEECH: f32 = 0.5;
/// A window quieter than this is never speech (dBFS).
const FLOOR_DB: f64 = -70.0;
/// The level the detector sees every window at (dBFS RMS).
const DETECTOR_DB: f64 = -20.0;
/// Time constant of the speech level, in seconds of speech.
const LEVEL_TAU_S: f64 = 1.5;
/// Lowest gain (dB): loud speech is brought down at most this far.
const MIN_GAIN_DB: f64 = -40.0;
const RELEASE_S: f64 = 0.05;

fn default_target() -> f64 {
    -20.0
}
fn default_max_gain() -> f64 {
    30.0
}
fn default_rate() -> f64 {
    12.0
}
fn default_limiter() -> f64 {
    -1.0
}

/// Parameters of `AutoGainNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoGainParams {
    /// The speech level to reach, RMS over speech, -50.0..=-3.0 dBFS. Default -20.
    #[serde(default = "default_target")]
    #[schemars(range(min = -50.0, max = -3.0), extend("x-unit" = "dBFS"))]
    pub target_db: f64,
    /// Most gain applied, 0.0..=60.0 dB. Default 30.
    #[serde(default = "default_max_gain")]
    #[schemars(range(min = 0.0, max = 60.0), extend("x-unit" = "dB"))]
    pub max_gain_db: f64,
    /// Fastest gain change, 1.0..=100.0 dB per second. Default 12.
    #[serde(default = "default_rate")]
    #[schemars(range(min = 1.0, max = 100.0), extend("x-unit" = "dB/s"))]
    pub max_gain_change_db_per_s: f64,
    /// Peak ceiling of the limiter, -20.0..=0.0 dBFS. Default -1.
    #[serde(default = "default_limiter")]
    #[schemars(range(min = -20.0, max = 0.0), extend("x-unit" = "dBFS"))]
    pub limiter_db: f64,
}

impl Default for AutoGainParams {
    fn default() -> Self {
        Self {
            target_db: default_target(),
            max_gain_db: default_max_gain(),
            max_gain_change_db_per_s: default_rate(),
            limiter_db: default_limiter(),
        }
    }
}

impl NodeParams for AutoGainParams {
    fn check(&self) -> Vec<ParamIssue> {
        Vec::new() // ranges are in the schema
    }
}

struct Stream {
    rate: u32,
    channels: usize,
    format: SampleFormat,
    to16k: Option<StreamResampler<f32>>,
    detector: Silero,
    /// 16 kHz mono samples waiting for a whole window.
    analysis: Vec<f32>,
    windows: u64,
    /// Gain (dB) after each window still needed, the first being after window `first_gain`.
    gains: VecDeque<f64>,
    first_gain: i64,
    gain_db: f64,
    /// Power mean of speech so far (linear), `None` before the first speech window.
    level: Option<f64>,
    /// Interleaved input frames not yet given out; the first is frame `emitted`.
    held: Vec<f32>,
    emitted: u64,
    envelope: f32,
}

/// Brings speech to a target level (see module docs).
pub struct AutoGainNode {
    params: AutoGainParams,
    shape: StreamShape,
    stream: Option<Stream>,
    weights: Option<Arc<SileroWeights>>,
}

impl std::fmt::Debug for AutoGainNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AutoGainNode")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl AutoGainNode {
    /// Builds the node.
    pub fn new(params: AutoGainParams) -> Self {
        Self {
            params,
            shape: StreamShape::default(),
            stream: None,
            weights: None,
        }
    }

    fn open(&mut self, audio: &AudioBuffer) -> Result<Stream, NodeError> {
        let weights = match &self.weights {
            Some(w) => w.clone(),
            None => {
                let w = load_model(None).map_err(NodeError::failed)?;
                self.weights = Some(w.clone());
                w
            }
        };
        let rate = audio.sample_rate();
        let to16k = if rate == ANALYSIS_RATE {
            None
        } else {
            Some(
                StreamResampler::<f32>::new(ResampleQuality::Medium, rate, ANALYSIS_RATE, 1)
                    .map_err(NodeError::failed)?,
            )
        };
        Ok(Stream {
            rate,
            channels: audio.channels() as usize,
            format: audio.format(),
            to16k,
            detector: Silero::new(weights),
            analysis: Vec::new(),
            windows: 0,
            gains: VecDeque::from([0.0, 0.0]),
            first_gain: -2,
            gain_db: 0.0,
            level: None,
            held: Vec::new(),
            emitted: 0,
            envelope: 0.0,
        })
    }
}

impl Stream {
    /// Analyses whole windows of `analysis`, appending the gain after each.
    fn analyse(&mut self, p: &AutoGainParams) {
        let window_s = WINDOW as f64 / ANALYSIS_RATE as f64;
        let alpha = 1.0 - (-window_s / LEVEL_TAU_S).exp();
        let step = p.max_gain_change_db_per_s * window_s;
        let whole = self.analysis.len() / WINDOW * WINDOW;
        for w in self.analysis[..whole].chunks_exact(WINDOW) {
            let power = w.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / WINDOW as f64;
            let db = 10.0 * power.max(1e-20).log10();
            let mut scaled = [0.0f32; WINDOW];
            if db > FLOOR_DB {
                let k = 10f64.powf((DETECTOR_DB - db) / 20.0) as f32;
                scaled.iter_mut().zip(w).for_each(|(s, x)| *s = x * k);
            }
            let prob = self.detector.predict(&scaled);
            if prob > SPEECH && db > FLOOR_DB {
                let level = match self.level {
                    None => power,
                    Some(l) => l + alpha * (power - l),
                };
                self.level = Some(level);
            }
            if let Some(level) = self.level {
                let want = (p.target_db - 10.0 * level.log10()).clamp(MIN_GAIN_DB, p.max_gain_db);
                // Moves only on speech windows: between words and in noise the gain holds.
                if prob > SPEECH && db > FLOOR_DB {
                    self.gain_db += (want - self.gain_db).clamp(-step, step);
                }
            }
            self.gains.push_back(self.gain_db);
            self.windows += 1;
        }
        self.analysis.drain(..whole);
    }

    /// Gives out the held frames whose gains are known (all of them at the end).
    fn emit(&mut self, p: &AutoGainParams, end: bool) -> Vec<f32> {
        let ch = self.channels;
        let ratio = ANALYSIS_RATE as f64 / self.rate as f64;
        let ceiling = 10f32.powf(p.limiter_db as f32 / 20.0);
        let release = (-1.0 / (RELEASE_S * self.rate as f64)).exp() as f32;
        let frames = self.held.len() / ch;
        let mut out = Vec::with_capacity(self.held.len());
        let mut n = 0;
        while n < frames {
            let i = self.emitted + n as u64;
            let t = i as f64 * ratio;
            let k = (t / WINDOW as f64) as i64;
            // Gains after windows k-2 and k-1 (k-1 must be analysed, unless the stream ended).
            if !end && k > self.windows as i64 {
                break;
            }
            let at = |j: i64, gains: &VecDeque<f64>, first: i64| -> f64 {
                let idx = (j - first).clamp(0, gains.len() as i64 - 1) as usize;
                gains[idx]
            };
            let a = at(k - 2, &self.gains, self.first_gain);
            let b = at(k - 1, &self.gains, self.first_gain);
            let frac = (t - k as f64 * WINDOW as f64) / WINDOW as f64;
            let g = 10f64.powf((a + (b - a) * frac) / 20.0) as f32;
            let frame = &self.held[n * ch..(n + 1) * ch];
            let peak = frame.iter().fold(0f32, |m, x| m.max((x * g).abs()));
            self.envelope = peak.max(self.envelope * release);
            let limit = if self.envelope > ceiling {
                ceiling / self.envelope
            } else {
                1.0
            };
            out.extend(frame.iter().map(|x| x * g * limit));
            n += 1;
        }
        self.held.drain(..n * ch);
        self.emitted += n as u64;
        // Forget gains no frame will need again.
        let t = self.emitted as f64 * ratio;
        let keep_from = (t / WINDOW as f64) as i64 - 2;
        while self.first_gain < keep_from && self.gains.len() > 2 {
            self.gains.pop_front();
            self.first_gain += 1;
        }
        out
    }

    fn push(&mut self, x: &[f32], p: &AutoGainParams, end: bool) -> Vec<f32> {
        let ch = self.channels;
        self.held.extend_from_slice(x);
        let mono: Vec<f32> = if ch == 1 {
            x.to_vec()
        } else {
            x.chunks_exact(ch)
                .map(|f| f.iter().sum::<f32>() / ch as f32)
                .collect()
        };
        match &mut self.to16k {
            None => self.analysis.extend_from_slice(&mono),
            Some(r) => {
                r.push(&mono, &mut self.analysis);
                if end {
                    r.flush(&mut self.analysis);
                }
            }
        }
        if end && self.analysis.len() % WINDOW != 0 {
            let whole = self.analysis.len().div_ceil(WINDOW) * WINDOW;
            self.analysis.resize(whole, 0.0);
        }
        self.analyse(p);
        self.emit(p, end)
    }

    fn wrap(&self, y: Vec<f32>) -> Data {
        Data::Audio(from_f32(y, self.rate, self.channels as u16, self.format))
    }
}

impl NodeDef for AutoGainNode {
    const NAME: &'static str = "AutoGainNode";
    const DESCRIPTION: &'static str = "Automatic gain control for speech: brings speech to `target_db` (RMS over speech) and keeps peaks under `limiter_db`.\n\
     \n\
     The level is measured only where the bundled Silero detector finds speech, so noise and\n\
     pauses do not pump the gain; the gain moves at most `max_gain_change_db_per_s` and never\n\
     above `max_gain_db`. Any rate and channel count (one gain for all channels), the format kept;\n\
     no added latency at 16 kHz (the resampler's look-ahead at other rates).";
    type Params = AutoGainParams;
    fn build(params: AutoGainParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for AutoGainNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.shape.reset();
        self.stream = None;
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let audio = self.shape.accept(&input)?;
        check_finite(audio)?;
        if self.stream.is_none() {
            let s = self.open(audio)?;
            self.stream = Some(s);
        }
        let x = audio.samples().to_f32_vec();
        let p = self.params.clone();
        let stream = self.stream.as_mut().expect("opened");
        let y = stream.push(&x, &p, false);
        Ok(Some(stream.wrap(y)))
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let p = self.params.clone();
        let Some(mut stream) = self.stream.take() else {
            return Ok(None);
        };
        let y = stream.push(&[], &p, true);
        self.shape.reset();
        Ok(Some(stream.wrap(y)))
    }
}
