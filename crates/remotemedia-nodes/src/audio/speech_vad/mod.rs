//! `SpeechVADNode`: a neural voice-activity detector (the `earshot` crate: a small
//! convolutional + minGRU network over log-mel features, weights compiled into the binary,
//! pure Rust, no runtime download).
//!
//! Signal path: the input (any rate in 8000..=384000 Hz, any channel count, any sample
//! format) is converted to f32, non-finite samples are replaced by 0, channels are averaged,
//! the mono signal is resampled to the engine's 16 kHz with [`StreamResampler`] (delay
//! compensated, so engine sample `k` sits at input time `k / 16000` s) and clamped to
//! [-1, 1]. Every 256 engine samples (16 ms) the network gives a speech probability, from
//! the frame's features levelled (`max_gain_db`: quiet input analysed louder, loud input
//! quieter, the gain following the loudest frame of the recent past; see [`LEVEL_TARGET`]).
//!
//! `engine="silero"` (opt-in) gives a probability every 512 engine samples (32 ms) from Silero
//! VAD v6 instead (see [`super::silero`]: run here in Rust, its weights read from the installed
//! `silero-vad` package's file); the rules below are the same, counted in its 32 ms frames,
//! and the energy/voicing gate (the last rule) is off: Silero tells speech from loud noise
//! itself, which the gate exists to do for earshot's network.
//!
//! Decisions are causal, frame by frame, so any chunking gives the same output bit for bit:
//! - a segment opens at a frame whose probability is `>= threshold`;
//! - while open, frames `>= end_threshold` (hysteresis) count as speech; it closes after
//!   `min_silence_ms` of frames below `end_threshold`, ending after its last speech frame;
//! - it is reported (`speech_start`) once its speech spans `min_speech_ms`; shorter ones are
//!   dropped;
//! - reported bounds are widened by `pad_ms` on both sides (never before the previous
//!   segment's padded end, never outside the stream);
//! - a frame's probability only counts (else it reads as 0) when its energy above 150 Hz
//!   (48 ms mean) is at least `min_snr_db` above the noise floor, the quietest such energy of
//!   the last 2 s, or when its voicing is at least `min_voicing` above the voicing floor
//!   (the lowest of the last 2 s): the network alone scores loud stationary noise as speech.
//!   Voicing is the peak of the normalised autocorrelation of the 150-1000 Hz band (taken at
//!   4 kHz) over 20 ms, at lags of 2.5-12.5 ms (fundamentals of 80-400 Hz), 48 ms mean: voiced
//!   speech stays periodic in noise that hides its energy, while noise is not periodic, and a
//!   steady periodic noise (mains hum) is periodic all the time, so it raises its own floor.
//!
//! Times are in the input's timeline: an engine frame edge at engine sample `e` maps to input
//! sample `floor(e * rate / 16000)`, and milliseconds are `sample * 1000 / rate`.

use std::collections::VecDeque;
use std::ops::Range;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::biquad::{butterworth, Pass};
use super::resample::{ResampleQuality, StreamResampler};
use super::silero::{self, Silero, SileroWeights};
use super::vad_engine::{Dither, Engine};
use super::vad_gate::{GateFilters, DECIMATE as VOICE_DECIMATE};
use remotemedia_core::data::{AudioBuffer, Data, SampleFormat, Samples};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{check_input_rate, check_stream_shape, expect_audio, Node};
use remotemedia_core::registry::{NodeDef, NodeParams, Output, Outputs, ParamIssue};

const NODE: &str = "SpeechVADNode";
/// The engine's sample rate and frame length (fixed by the earshot model).
pub const ENGINE_RATE: u32 = super::vad_engine::RATE;
/// Engine frame length in samples (16 ms at 16 kHz).
pub const ENGINE_FRAME: usize = super::vad_engine::FRAME;
/// Default `end_threshold` is `threshold` minus this (Silero's `neg_threshold` rule), but at
/// least [`END_THRESHOLD_MIN`].
pub const END_THRESHOLD_GAP: f64 = 0.15;
/// The default `end_threshold`'s floor (Silero's): at 0 no frame would count as silence and a
/// segment, once open, would last to the end of the input.
pub const END_THRESHOLD_MIN: f64 = 0.01;
/// Noise-floor window: the minimum frame energy over the last 2 s (125 frames of 16 ms),
/// longer than a pause-free stretch of speech, short enough to follow a change of noise.
const FLOOR_FRAMES: usize = 125;
/// The energy gate measures energy above this frequency (chosen on the dev and held splits
/// over 100, 150 and 300 Hz; see docs/benchmarks.md).
const GATE_HIGHPASS_HZ: f64 = 150.0;
/// Voicing: the gate's high-passed signal is low-passed at this frequency (4th-order
/// Butterworth) and kept every [`VOICE_DECIMATE`]th sample (4 kHz).
const VOICE_LOWPASS_HZ: f64 = 1000.0;
/// Correlation window: 20 ms at 4 kHz.
const VOICE_WINDOW: usize = 80;
/// Lags of 2.5..=12.5 ms at 4 kHz (voice fundamentals of 80-400 Hz).
const VOICE_MIN_LAG: usize = 10;
const VOICE_MAX_LAG: usize = 50;
/// Decimated samples kept: a window and the longest lag.
const VOICE_HISTORY: usize = VOICE_WINDOW + VOICE_MAX_LAG;
/// Levelling (`max_gain_db`), in the network's feature level (the mean log energy of a
/// frame's lowest 28 mel bands, those 8 kHz audio carries, in dB; see
/// `Engine::predict_levelled`). The network's decisions depend on the level, though its
/// features are normalised per frame (by their RMS, not their mean): 20 dB below the
/// benchmark's level its mean noisy F1 fell from 0.918 to 0.79, 30 dB below to 0.57, and
/// 12 dB above it took loud brown noise for speech (false alarms 0.81 of the time at 0 dB
/// SNR). So the loudest frame of the recent past is brought to [`LEVEL_TARGET`] (within the
/// range of the benchmark's loudest frames at its own level)...
const LEVEL_TARGET: f32 = 2.0;
/// ...only cut when it is above this (loud input)...
const LEVEL_CUT_ABOVE: f32 = 6.0;
/// ...and never boosted so far that the input's mean power of the last ~2 s (an exponential
/// average over 125 frames, dBFS) would exceed this: the network takes brown noise at
/// -20 dBFS RMS for speech, at -25 dBFS not, so a quiet room's rumble alone must not be
/// boosted up to speech level (a cap on the feature level instead held brown noise back
/// but also the boost of quiet speech in white noise, whose mel bands are all full).
/// The values were chosen on the dev and held splits at levels from -30 to +12 dB
/// (docs/benchmarks.md, "Levelling").
const LEVEL_MAX_MEAN_POWER_DB: f32 = -26.0;
/// How fast the gain may rise (dB per 16 ms frame: 15 dB/s), from 0 at the start of a
/// stream: the quiet lead-in of a stream of any level would otherwise be boosted by up to
/// `max_gain_db` at once, which moved the first onset of the bundled clip by 2-3 frames and
/// apart between 8 and 16 kHz copies; quiet audio gets its whole gain within 2 s.
const LEVEL_RISE_DB: f32 = 15.0 * 0.016;
/// How fast the remembered loudest level falls (dB per 16 ms frame: 0.1 dB/s), so the gain
/// follows a talker who moves away over minutes yet stays put through pauses (a 4 s window,
/// whose gain rose in every pause, lost F1 on every split).
const LEVEL_DECAY_DB: f32 = 0.1 * 0.016;
/// Input frames converted and analysed per pass (a whole file goes through in blocks).
const BLOCK_FRAMES: usize = 4096;
/// What `SpeechVADNode` emits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SpeechVadEmit {
    /// `[{start_ms, end_ms, confidence}]`, each as soon as it ends; `confidence` is the mean
    /// speech probability of its frames (padding excluded).
    #[default]
    Segments,
    /// Only the speech audio (padding included), concatenated, in the input's format.
    Speech,
    /// `{"event": "speech_start", "start_ms"}` as soon as a segment is confirmed and
    /// `{"event": "speech_end", "start_ms", "end_ms", "confidence"}` when it ends.
    Events,
    /// `[{start_ms, end_ms, probability}]` for every 16 ms engine frame.
    Probabilities,
}

/// Which network gives the speech probabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SpeechVadEngine {
    /// The built-in engine (earshot's network, 16 ms frames, with the energy and voicing gate
    /// of `min_snr_db` and `min_voicing`): nothing to install.
    #[default]
    Earshot,
    /// Silero VAD v6 (32 ms frames), run in-process in Rust with the weights of the installed
    /// `silero-vad` package (`pip install --no-deps silero-vad`) or of `model_path`. It
    /// separates speech from loud noise itself, so the gate is off.
    Silero,
}

fn default_threshold() -> f64 {
    0.5
}
/// Longer than the network's response to an isolated click (about 6 frames, 96 ms: its
/// features span 3 overlapping 48 ms windows), so clicks alone never make a segment.
fn default_min_speech_ms() -> u32 {
    128
}
fn default_min_silence_ms() -> u32 {
    160
}
fn default_pad_ms() -> u32 {
    32
}
fn default_min_snr_db() -> f64 {
    2.0
}
fn default_max_gain_db() -> f64 {
    30.0
}
/// Chosen on the dev and held splits of benchmarks/vad_data.py (0.2-0.4 compared; see
/// docs/benchmarks.md): the best held F1 with no more false alarms on either split.
fn default_min_voicing() -> Option<f64> {
    Some(0.25)
}

/// Parameters of `SpeechVADNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpeechVadParams {
    /// Speech probability that opens a segment, 0.0..=1.0. Default 0.5.
    #[serde(default = "default_threshold")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub threshold: f64,
    /// Probability below which a frame counts as silence inside a segment, above 0 and at
    /// most threshold. Default (null): `max(threshold - 0.15, 0.01)`, at most threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub end_threshold: Option<f64>,
    /// Shortest speech reported, 0..=10000 ms (speech_start comes this late). Default 128.
    #[serde(default = "default_min_speech_ms")]
    #[schemars(range(min = 0, max = 10000), extend("x-unit" = "ms"))]
    pub min_speech_ms: u32,
    /// Silence that ends a segment, 16..=10000 ms. Default 160.
    #[serde(default = "default_min_silence_ms")]
    #[schemars(range(min = 16, max = 10000), extend("x-unit" = "ms"))]
    pub min_silence_ms: u32,
    /// Audio added before and after each segment, 0..=min_silence_ms. Default 32.
    #[serde(default = "default_pad_ms")]
    #[schemars(range(min = 0, max = 10000), extend("x-unit" = "ms"))]
    pub pad_ms: u32,
    /// How far, in dB, a frame's energy must rise above the noise floor (the quietest frame
    /// of the last 2 s) for its probability to count, 0.0..=40.0 (0 disables). Default 2.0.
    #[serde(default = "default_min_snr_db")]
    #[schemars(range(min = 0.0, max = 40.0), extend("x-unit" = "dB"))]
    pub min_snr_db: f64,
    /// How far a frame's voicing (periodicity of the 150-1000 Hz band, 0..1) must rise above
    /// its lowest value of the last 2 s for its probability to count even when its energy
    /// does not stand out (speech in loud noise), 0.05..=1.0; null: energy alone decides.
    /// Default 0.25.
    #[serde(default = "default_min_voicing")]
    #[schemars(range(min = 0.05, max = 1.0))]
    pub min_voicing: Option<f64>,
    /// "segments" (default), "speech", "events" or "probabilities".
    #[serde(default)]
    pub emit: SpeechVadEmit,
    /// "earshot" (default: built in, 16 ms frames) or "silero" (Silero VAD v6, 32 ms frames;
    /// needs `pip install --no-deps silero-vad` or `model_path`).
    #[serde(default)]
    pub engine: SpeechVadEngine,
    /// engine="silero" only: the Silero model file (the silero-vad package's
    /// `silero_vad_op18_ifless.onnx`). Default (null): the `REMOTEMEDIA_SILERO_MODEL`
    /// environment variable, else the installed silero-vad package's file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "path"))]
    pub model_path: Option<String>,
    /// The network hears the input levelled: quiet speech louder, loud input quieter, by at
    /// most this many dB, 0.0..=60.0 (0: as it is). Only the analysis is levelled; emitted
    /// audio is the input. Default 30.0.
    #[serde(default = "default_max_gain_db")]
    #[schemars(range(min = 0.0, max = 60.0), extend("x-unit" = "dB"))]
    pub max_gain_db: f64,
}

impl Default for SpeechVadParams {
    fn default() -> Self {
        Self {
            threshold: default_threshold(),
            end_threshold: None,
            min_speech_ms: default_min_speech_ms(),
            min_silence_ms: default_min_silence_ms(),
            pad_ms: default_pad_ms(),
            min_snr_db: default_min_snr_db(),
            min_voicing: default_min_voicing(),
            max_gain_db: default_max_gain_db(),
            emit: SpeechVadEmit::Segments,
            engine: SpeechVadEngine::Earshot,
            model_path: None,
        }
    }
}

impl SpeechVadParams {
    /// The effective end threshold.
    pub fn end_threshold(&self) -> f64 {
        self.end_threshold.unwrap_or(
            (self.threshold - END_THRESHOLD_GAP)
                .max(END_THRESHOLD_MIN)
                .min(self.threshold),
        )
    }

    /// Engine samples (at 16 kHz) per probability: 256 (16 ms) or, for Silero, 512 (32 ms).
    pub fn frame_samples(&self) -> usize {
        match self.engine {
            SpeechVadEngine::Earshot => ENGINE_FRAME,
            SpeechVadEngine::Silero => silero::WINDOW,
        }
    }

    /// Silero's weights, read from the model file these parameters name.
    fn silero_weights(&self) -> Result<std::sync::Arc<SileroWeights>, ParamIssue> {
        let field = if self.model_path.is_some() {
            "model_path"
        } else {
            "engine"
        };
        silero::load_model(self.model_path.as_deref()).map_err(|e| ParamIssue::new(field, e))
    }
}

impl NodeParams for SpeechVadParams {
    /// Only the rules that span fields: single-field ranges come from the schema attributes
    /// (checked generically by the registry).
    fn check(&self) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        if let Some(e) = self.end_threshold {
            if e > self.threshold {
                issues.push(ParamIssue::new(
                    "end_threshold",
                    format!(
                        "{e} is out of range; expected a probability above 0.0 and at most \
                         threshold ({})",
                        self.threshold
                    ),
                ));
            } else if e <= 0.0 && self.threshold > 0.0 {
                // Every probability is >= 0: no frame would count as silence.
                issues.push(ParamIssue::new(
                    "end_threshold",
                    format!(
                        "{e} would never end a segment (no probability is below it); expected \
                         a probability above 0.0 and at most threshold ({}), or null for the \
                         default max(threshold - 0.15, 0.01)",
                        self.threshold
                    ),
                ));
            }
        }
        match self.engine {
            SpeechVadEngine::Earshot => {
                if let Some(p) = &self.model_path {
                    issues.push(ParamIssue::new(
                        "model_path",
                        format!(
                            "{p:?} is only read by engine=\"silero\"; the default engine \
                             (\"earshot\") is built in"
                        ),
                    ));
                }
            }
            SpeechVadEngine::Silero => {
                // The gate belongs to the built-in engine: a value other than its default
                // would be ignored, so it is refused instead.
                for (field, changed) in [
                    ("min_snr_db", self.min_snr_db != default_min_snr_db()),
                    ("min_voicing", self.min_voicing != default_min_voicing()),
                    ("max_gain_db", self.max_gain_db != default_max_gain_db()),
                ] {
                    if changed {
                        issues.push(ParamIssue::new(
                            field,
                            "applies to engine=\"earshot\" only (Silero separates speech \
                             from noise itself; its gate is off); leave it at its default"
                                .to_string(),
                        ));
                    }
                }
                if let Err(issue) = self.silero_weights() {
                    issues.push(issue);
                }
            }
        }
        if self.pad_ms > self.min_silence_ms {
            // Most often the default pad_ms meeting a short min_silence_ms the user did set.
            let default = if self.pad_ms == default_pad_ms() {
                " (32 is pad_ms's default: give pad_ms too)"
            } else {
                ""
            };
            issues.push(ParamIssue::new(
                "pad_ms",
                format!(
                    "{} is out of range; expected 0..=min_silence_ms ({} ms), so a segment's \
                     padded end is known when it ends{default}",
                    self.pad_ms, self.min_silence_ms
                ),
            ));
        }
        issues
    }
}

/// The gain the network hears each frame with (`max_gain_db`; see [`LEVEL_TARGET`]).
#[derive(Debug)]
struct Leveller {
    /// The loudest feature level seen, falling by [`LEVEL_DECAY_DB`] a frame.
    peak: f32,
    /// The input's mean power, an exponential average over 125 frames (`None`: no frame yet).
    mean_power: Option<f32>,
    /// The gain given to the last frame (dB).
    last_gain: f32,
}

impl Default for Leveller {
    fn default() -> Self {
        Self {
            peak: f32::NEG_INFINITY,
            mean_power: None,
            last_gain: 0.0,
        }
    }
}

impl Leveller {
    /// The gain (dB) for the next frame, of feature level `level` and samples `frame`.
    fn gain(&mut self, level: f32, frame: &[f32; ENGINE_FRAME], max_gain_db: f32) -> f32 {
        if max_gain_db == 0.0 {
            return 0.0;
        }
        // In eight lanes (the loop vectorises), then across them.
        let mut lanes = [0.0f32; 8];
        for block in frame.chunks_exact(8) {
            for (l, &s) in lanes.iter_mut().zip(block) {
                *l += s * s;
            }
        }
        let power = lanes.iter().sum::<f32>() / ENGINE_FRAME as f32;
        let mean = match self.mean_power {
            None => power,
            Some(m) => m + (power - m) * (1.0 / 125.0),
        };
        self.mean_power = Some(mean);
        let mean_db = 10.0 * (mean + 1e-12).log10();
        // Instant attack, slow release.
        self.peak = level.max(self.peak - LEVEL_DECAY_DB);
        let gain = if self.peak > LEVEL_CUT_ABOVE {
            (LEVEL_CUT_ABOVE - self.peak).max(-max_gain_db)
        } else {
            (LEVEL_TARGET - self.peak)
                .min(LEVEL_MAX_MEAN_POWER_DB - mean_db)
                .clamp(0.0, max_gain_db)
        };
        // The gain falls at once and rises by LEVEL_RISE_DB a frame at most, from 0 at the
        // start.
        let gain = gain.min(self.last_gain.max(0.0) + LEVEL_RISE_DB);
        self.last_gain = gain;
        gain
    }
}

/// The mean of the last 3 values pushed (48 ms of frames). The first value stands for the
/// frames before it: no ramp up from zeros at the start, which would set a floor far too low.
#[derive(Debug, Default)]
struct Mean3 {
    last: Option<[f32; 3]>,
}

impl Mean3 {
    fn push(&mut self, v: f32) -> f32 {
        let last = self.last.get_or_insert([v; 3]);
        last.rotate_left(1);
        last[2] = v;
        last.iter().sum::<f32>() / 3.0
    }
}

/// The minimum of the last [`FLOOR_FRAMES`] values pushed, the current one included: a
/// sliding-window minimum (the candidates in increasing order, each with its index, so a push
/// is amortised O(1) instead of a scan of the window; the minimum is one of the values, so
/// it is exact whichever way it is found).
#[derive(Debug, Default)]
struct Floor {
    candidates: VecDeque<(u64, f32)>,
    pushed: u64,
}

impl Floor {
    fn push(&mut self, v: f32) -> f32 {
        let i = self.pushed;
        self.pushed += 1;
        // A value at least `v` can never be the minimum again while `v` is in the window.
        while self.candidates.back().is_some_and(|&(_, b)| b >= v) {
            self.candidates.pop_back();
        }
        self.candidates.push_back((i, v));
        while self
            .candidates
            .front()
            .is_some_and(|&(j, _)| j + FLOOR_FRAMES as u64 <= i)
        {
            self.candidates.pop_front();
        }
        self.candidates.front().map_or(v, |&(_, m)| m)
    }
}

/// Voicing of the latest window: the largest normalised autocorrelation of the last
/// [`VOICE_WINDOW`] samples of `hist` with the samples `VOICE_MIN_LAG..=VOICE_MAX_LAG` earlier
/// (0 for silence; at most 1).
fn voicing(hist: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if remotemedia_core::cpu::has_avx2() {
        // SAFETY: the CPU has AVX2 (checked at run time).
        return unsafe { voicing_avx2(hist) };
    }
    voicing_any(hist)
}

/// [`voicing`] compiled for AVX2: the correlation's multiply-adds twice as wide, the same
/// operations in the same order (no fused multiply-add), so the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn voicing_avx2(hist: &[f32]) -> f32 {
    voicing_any(hist)
}

#[inline(always)]
fn voicing_any(hist: &[f32]) -> f32 {
    const LAGS: usize = VOICE_MAX_LAG - VOICE_MIN_LAG + 1;
    debug_assert_eq!(hist.len(), VOICE_HISTORY);
    let n = hist.len();
    let a = &hist[n - VOICE_WINDOW..];
    // Every lag at once: `c[k]` is the correlation at lag `VOICE_MAX_LAG - k`, so for each
    // window sample the lagged samples are contiguous and the update is a plain (vectorised)
    // multiply-add over the lags, with no per-lag reduction.
    let base = n - VOICE_WINDOW - VOICE_MAX_LAG;
    let mut c = [0.0f32; LAGS];
    for (i, &ai) in a.iter().enumerate() {
        let lagged = &hist[base + i..base + i + LAGS];
        for (ck, &h) in c.iter_mut().zip(lagged) {
            *ck += ai * h;
        }
    }
    // Energies of every lagged window from one running sum of squares (f64: no cancellation).
    // The running sum in a local: read back from the array, each add also waited for a
    // store to be forwarded.
    let mut prefix = [0.0f64; VOICE_HISTORY + 1];
    let mut run = 0.0f64;
    for (p, &v) in prefix[1..].iter_mut().zip(hist) {
        run += (v as f64) * (v as f64);
        *p = run;
    }
    let ea = prefix[n] - prefix[n - VOICE_WINDOW];
    // Lag `VOICE_MAX_LAG - k` (at `c[k]`) compares with the window ending `lag` samples
    // earlier: the prefix sums ending at `n - lag` and starting `VOICE_WINDOW` before, both
    // contiguous in k, so the square roots and divisions run four at a time (correctly
    // rounded either way: the same bits as one at a time).
    let ends = &prefix[n - VOICE_MAX_LAG..=n - VOICE_MIN_LAG];
    let starts = &prefix[n - VOICE_WINDOW - VOICE_MAX_LAG..=n - VOICE_WINDOW - VOICE_MIN_LAG];
    let mut r = [0.0f32; LAGS];
    for (((r, &ck), &end), &start) in r.iter_mut().zip(&c).zip(ends).zip(starts) {
        *r = (ck as f64 / (ea * (end - start) + 1e-20).sqrt()) as f32;
    }
    r.into_iter()
        .filter(|r| r.is_finite())
        .fold(0.0f32, f32::max)
}

const _: () = assert!(ENGINE_FRAME % VOICE_DECIMATE == 0);

/// A segment being tracked (engine frame indices).
#[derive(Debug, Clone, Copy)]
struct Open {
    start: u64,
    last_speech: u64,
    silence: u32,
    confirmed: bool,
    /// Sum of probabilities from `start` through the current frame, and through `last_speech`.
    prob_sum: f64,
    prob_sum_speech: f64,
    /// Padded start in input samples (fixed when the segment opens).
    padded_start: u64,
}

/// A decision, in input samples.
#[derive(Debug, Clone, Copy)]
enum Event {
    Start {
        start: u64,
    },
    End {
        start: u64,
        end: u64,
        confidence: f64,
    },
    Prob {
        start: u64,
        end: u64,
        p: f32,
    },
}

/// Per-stream state (one session).
struct Stream {
    rate: u32,
    channels: u16,
    format: SampleFormat,
    /// `None` at 16 kHz.
    resampler: Option<StreamResampler<f32>>,
    /// Engine samples not yet making a whole frame (< 256).
    frame_buf: Vec<f32>,
    /// Scratch: the mono input of one call and the resampler's output.
    mono: Vec<f32>,
    resampled: Vec<f32>,
    /// Engine frames analysed so far.
    frames_done: u64,
    dither: Dither,
    /// The energy gate's high-pass and the voicing band's low-pass (see [`GateFilters`]), the
    /// mean power of the last 3 frames, and the floor of that energy in dB.
    gate: GateFilters,
    recent_power: Mean3,
    energy_floor: Floor,
    /// Voicing: the last [`VOICE_HISTORY`] decimated samples of the low-passed band, the mean
    /// voicing of the last 3 frames and its floor.
    voice_hist: VecDeque<f32>,
    recent_voicing: Mean3,
    voice_floor: Floor,
    leveller: Leveller,
    /// Input frames received.
    input_frames: u64,
    open: Option<Open>,
    /// Padded end of the last reported segment (input samples): the next may not start before.
    prev_end: u64,
    /// emit="speech": recent input chunks `(first input frame, chunk)` and how far speech
    /// audio has been emitted.
    history: VecDeque<(u64, AudioBuffer)>,
    emitted_to: u64,
}

/// The network behind the probabilities.
enum Detector {
    Earshot(Box<Engine>),
    Silero(Box<Silero>),
}

/// The neural VAD (see module docs).
pub struct SpeechVadNode {
    params: SpeechVadParams,
    /// The error when engine="silero" found no usable model (refused by the parameter check
    /// before a node is built; kept for a file removed in between).
    detector: Result<Detector, String>,
    stream: Option<Stream>,
}

impl std::fmt::Debug for SpeechVadNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechVadNode")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// Largest magnitude a sample is analysed at: far beyond full scale (1.0), so no real audio
/// is changed, yet small enough that channel sums and the FFT resampler's sums stay finite.
/// (Found by fuzzing: 1e30 at 48 kHz overflowed the resampler's FFT and made rubato panic;
/// +3e38 and -3e38 in two channels summed to NaN, which the model must never see.)
const ANALYSIS_LIMIT: f32 = 1e4;

/// Appends the channel average of `frames` of `samples` (interleaved, `ch` channels) as f32,
/// with non-finite samples read as 0 (one NaN must not poison the network's recurrent state)
/// and the rest bounded to +-[`ANALYSIS_LIMIT`]. Only the analysis sees this; emitted audio
/// is the input, untouched.
fn downmix_into(samples: &Samples, ch: usize, frames: Range<usize>, out: &mut Vec<f32>) {
    let r = frames.start * ch..frames.end * ch;
    fn mix<T: Copy>(s: &[T], ch: usize, out: &mut Vec<f32>, f: impl Fn(T) -> f32) {
        let clean = |x: T| {
            let v = f(x);
            // A float compare and max/min, not `is_finite` (a test of the bits) and `clamp`
            // (which keeps NaN), which kept this loop scalar; the same values for every
            // input: NaN and +-inf fail `<= MAX`, and max/min clamp any finite value.
            #[allow(clippy::manual_clamp)]
            let bounded = v.max(-ANALYSIS_LIMIT).min(ANALYSIS_LIMIT);
            if v.abs() <= f32::MAX {
                bounded
            } else {
                0.0
            }
        };
        if ch == 1 {
            out.extend(s.iter().map(|&x| clean(x)));
        } else if ch == 2 {
            // The common case on its own, in blocks of eight frames that LLVM vectorises (the
            // general loop below ran one frame at a time). `(a + b) * 0.5` is the general
            // loop's `(-0.0 + a + b) * 0.5` bit for bit (`-0.0 + a == a` for every `a`).
            let blocks = s.chunks_exact(16);
            let tail = blocks.remainder();
            for b in blocks {
                let mut c = [0.0f32; 16];
                for (c, &x) in c.iter_mut().zip(b) {
                    *c = clean(x);
                }
                let mut m = [0.0f32; 8];
                for (i, m) in m.iter_mut().enumerate() {
                    *m = (c[2 * i] + c[2 * i + 1]) * 0.5;
                }
                out.extend_from_slice(&m);
            }
            out.extend(
                tail.chunks_exact(2)
                    .map(|fr| (clean(fr[0]) + clean(fr[1])) * 0.5),
            );
        } else {
            let inv = 1.0 / ch as f32;
            out.extend(
                s.chunks_exact(ch)
                    .map(|fr| fr.iter().map(|&x| clean(x)).sum::<f32>() * inv),
            );
        }
    }
    match samples {
        Samples::F32(b) => mix(&b[r], ch, out, |x| x),
        Samples::F64(b) => mix(&b[r], ch, out, |x| x as f32),
        Samples::I16(b) => mix(&b[r], ch, out, |x| x as f32 * (1.0 / 32768.0)),
        Samples::I32(b) => mix(&b[r], ch, out, |x| {
            (x as f64 * (1.0 / 2_147_483_648.0)) as f32
        }),
    }
}

/// Closes segment `o` with its end capped at `end_cap` input samples (the audio known so
/// far); `None` when it never reached `min_speech_ms` (dropped).
fn close(o: &Open, end_cap: u64, pad: u64, to_input: &impl Fn(u64) -> u64) -> Option<(Event, u64)> {
    if !o.confirmed {
        return None;
    }
    let end = to_input(o.last_speech + 1).min(end_cap);
    let padded_end = (end + pad).min(end_cap).max(o.padded_start);
    let frames = (o.last_speech + 1 - o.start) as f64;
    let event = Event::End {
        start: o.padded_start,
        end: padded_end,
        confidence: o.prob_sum_speech / frames,
    };
    Some((event, padded_end))
}

impl SpeechVadNode {
    /// Builds the node.
    pub fn new(params: SpeechVadParams) -> Self {
        let detector = match params.engine {
            SpeechVadEngine::Earshot => Ok(Detector::Earshot(Box::new(Engine::new()))),
            SpeechVadEngine::Silero => params
                .silero_weights()
                .map(|w| Detector::Silero(Box::new(Silero::new(w))))
                .map_err(|i| format!("{NODE}.{}: {}", i.field, i.message)),
        };
        Self {
            params,
            detector,
            stream: None,
        }
    }

    fn detector(&mut self) -> Result<&mut Detector, NodeError> {
        self.detector
            .as_mut()
            .map_err(|e| NodeError::failed(e.clone()))
    }

    fn open_stream(&self, audio: &AudioBuffer) -> Result<Stream, NodeError> {
        let rate = audio.sample_rate();
        // "fast" is plenty for a classifier that sees 40 mel bands up to 8 kHz, and cheapest.
        let resampler = if rate == ENGINE_RATE {
            None
        } else {
            Some(
                StreamResampler::new(ResampleQuality::Fast, rate, ENGINE_RATE, 1)
                    .map_err(|e| NodeError::failed(format!("{NODE}: {e}")))?,
            )
        };
        Ok(Stream {
            rate,
            channels: audio.channels(),
            format: audio.format(),
            resampler,
            frame_buf: Vec::with_capacity(self.params.frame_samples()),
            mono: Vec::new(),
            resampled: Vec::new(),
            frames_done: 0,
            dither: Dither::new(),
            energy_floor: Floor::default(),
            gate: GateFilters::new(
                butterworth(Pass::High, 2, GATE_HIGHPASS_HZ, ENGINE_RATE)[0],
                butterworth(Pass::Low, 4, VOICE_LOWPASS_HZ, ENGINE_RATE)
                    .try_into()
                    .expect("a 4th-order Butterworth is two sections"),
            ),
            recent_power: Mean3::default(),
            voice_hist: VecDeque::from(vec![0.0; VOICE_HISTORY]),
            recent_voicing: Mean3::default(),
            voice_floor: Floor::default(),
            leveller: Leveller::default(),
            input_frames: 0,
            open: None,
            prev_end: 0,
            history: VecDeque::new(),
            emitted_to: 0,
        })
    }

    /// Runs the detector over whole engine frames of `engine` (and the zero-padded partial
    /// frame when `last`), returning decisions and the input ranges of speech audio now known.
    fn analyse(&mut self, last: bool) -> (Vec<Event>, Vec<(u64, u64)>) {
        let p = &self.params;
        let stream = self.stream.as_mut().expect("stream opened");
        let model = self.detector.as_mut().expect("checked by process");
        let rate = stream.rate as u128;
        let fl = p.frame_samples();
        // Engine frame index -> input sample of its first engine sample.
        let to_input = |f: u64| (f as u128 * fl as u128 * rate / ENGINE_RATE as u128) as u64;
        let frame_ms = fl as u32 * 1000 / ENGINE_RATE;
        let min_speech_frames = (p.min_speech_ms.div_ceil(frame_ms) as u64).max(1);
        let min_silence_frames = p.min_silence_ms.div_ceil(frame_ms).max(1);
        let pad = (p.pad_ms as u64 * stream.rate as u64).div_ceil(1000);
        let (threshold, end_threshold) = (p.threshold as f32, p.end_threshold() as f32);
        let min_snr_db = p.min_snr_db as f32;
        let min_voicing = p.min_voicing.map(|v| v as f32);
        let want_probs = p.emit == SpeechVadEmit::Probabilities;
        let want_speech = p.emit == SpeechVadEmit::Speech;
        let total_input = stream.input_frames;

        let mut events = Vec::new();
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let push_range = |ranges: &mut Vec<(u64, u64)>, emitted_to: &mut u64, a: u64, b: u64| {
            let a = a.max(*emitted_to);
            if b > a {
                match ranges.last_mut() {
                    Some(r) if r.1 == a => r.1 = b,
                    _ => ranges.push((a, b)),
                }
                *emitted_to = b;
            }
        };
        // Ends the confirmed segment `o` no later than `end_cap`: its `speech_end` and, for
        // `emit="speech"`, its audio up to the padded end.
        let end_segment = |o: &Open,
                           end_cap: u64,
                           stream: &mut Stream,
                           events: &mut Vec<Event>,
                           ranges: &mut Vec<(u64, u64)>| {
            if let Some((event, padded_end)) = close(o, end_cap, pad, &to_input) {
                events.push(event);
                stream.prev_end = padded_end;
                if want_speech {
                    push_range(ranges, &mut stream.emitted_to, o.padded_start, padded_end);
                }
            }
        };

        let mut offset = 0;
        let engine = std::mem::take(&mut stream.resampled);
        loop {
            // Assemble one frame from the carry-over and this call's engine samples.
            let need = fl - stream.frame_buf.len();
            let take = need.min(engine.len() - offset);
            stream
                .frame_buf
                .extend_from_slice(&engine[offset..offset + take]);
            offset += take;
            let valid = stream.frame_buf.len();
            if valid < fl && !(last && valid > 0) {
                break;
            }
            stream.frame_buf.resize(fl, 0.0);
            let prob = match model {
                Detector::Silero(s) => {
                    // The analysis range of the module docs (the earshot path clamps in its
                    // gate, with the dither).
                    for x in stream.frame_buf.iter_mut() {
                        *x = x.clamp(-1.0, 1.0);
                    }
                    let window = stream.frame_buf[..].try_into().expect("a whole window");
                    // Guard the documented range even if the network ever returned NaN.
                    let prob = s.predict(window);
                    if prob.is_finite() {
                        prob.clamp(0.0, 1.0)
                    } else {
                        0.0
                    }
                }
                Detector::Earshot(net) => {
                    // The network reads loud stationary noise as speech (white noise at
                    // -10 dBFS scores about 0.7); a frame must also stand out from the recent
                    // noise floor. Energy over the last 3 frames (48 ms, the network's own
                    // window): a single 16 ms frame of coloured noise fluctuates by several
                    // dB, which biases a minimum low.
                    let energy_db = {
                        // Energy above 150 Hz (2nd-order Butterworth high-pass): coloured noise
                        // (pink, brown, mains hum) has much of its power in the lowest octaves,
                        // where a 48 ms window holds few degrees of freedom (about 0.1 * f per
                        // octave [f, 2f]: under 10 below 100 Hz), so its broadband energy
                        // fluctuates by several dB and the floor (a minimum) sits far below it.
                        // Above 150 Hz the energy is steadier and speech keeps nearly all of
                        // its power (voice fundamentals from ~100 Hz).
                        let frame: &mut [f32; ENGINE_FRAME] = (&mut stream.frame_buf[..])
                            .try_into()
                            .expect("a whole frame");
                        let mut dec = [0.0f32; ENGINE_FRAME / VOICE_DECIMATE];
                        let acc = stream.gate.frame(frame, &mut stream.dither, &mut dec);
                        if min_voicing.is_some() {
                            stream.voice_hist.drain(..dec.len());
                            stream.voice_hist.extend(dec);
                        }
                        let acc = acc as f32;
                        let mean = stream.recent_power.push(acc / ENGINE_FRAME as f32);
                        10.0 * (mean + 1e-12).log10()
                    };
                    let frame: &[f32; ENGINE_FRAME] =
                        stream.frame_buf[..].try_into().expect("a whole frame");
                    let prob = net.predict_levelled(frame, |level| {
                        stream.leveller.gain(level, frame, p.max_gain_db as f32)
                    });
                    // Guard the documented range even if the network ever returned NaN.
                    let prob = if prob.is_finite() {
                        prob.clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    let floor = stream.energy_floor.push(energy_db);
                    let voiced = match min_voicing {
                        None => false,
                        Some(min) => {
                            let h = voicing(stream.voice_hist.make_contiguous());
                            let mean = stream.recent_voicing.push(h);
                            mean - stream.voice_floor.push(mean) >= min
                        }
                    };
                    if energy_db - floor >= min_snr_db || voiced {
                        prob
                    } else {
                        0.0
                    }
                }
            };
            stream.frame_buf.clear();
            let j = stream.frames_done;
            stream.frames_done += 1;
            // Frame edges in input samples; the last (partial) frame ends at the stream's end.
            let f_start = to_input(j);
            let mut f_end = to_input(j + 1);
            if valid < fl || last {
                f_end = f_end.min(total_input);
            }
            if want_probs {
                events.push(Event::Prob {
                    start: f_start,
                    end: f_end.max(f_start),
                    p: prob,
                });
            }

            let probf = prob as f64;
            let mut ended = None;
            match stream.open.as_mut() {
                None => {
                    if prob >= threshold {
                        let padded_start = f_start
                            .saturating_sub(pad)
                            .max(stream.prev_end)
                            .min(f_start);
                        stream.open = Some(Open {
                            start: j,
                            last_speech: j,
                            silence: 0,
                            confirmed: false,
                            prob_sum: probf,
                            prob_sum_speech: probf,
                            padded_start,
                        });
                    }
                }
                Some(o) => {
                    o.prob_sum += probf;
                    if prob >= end_threshold {
                        o.last_speech = j;
                        o.silence = 0;
                        o.prob_sum_speech = o.prob_sum;
                    } else {
                        o.silence += 1;
                    }
                }
            }
            if let Some(o) = stream.open.as_mut() {
                if !o.confirmed && o.last_speech + 1 - o.start >= min_speech_frames {
                    o.confirmed = true;
                    events.push(Event::Start {
                        start: o.padded_start,
                    });
                }
                if o.silence >= min_silence_frames {
                    ended = stream.open.take();
                }
            }
            if let Some(o) = ended {
                end_segment(&o, f_end, stream, &mut events, &mut ranges);
            } else if let Some(o) = stream.open.filter(|o| o.confirmed) {
                if want_speech {
                    // Audio up to here is speech whatever comes next: the segment ends no
                    // earlier than after its last speech frame plus padding.
                    let safe = (to_input(o.last_speech + 1) + pad).min(f_end);
                    push_range(&mut ranges, &mut stream.emitted_to, o.padded_start, safe);
                }
            }
        }
        stream.resampled = engine;
        stream.resampled.clear();
        if last {
            // End of stream: a confirmed segment still open ends after its last speech frame.
            if let Some(o) = stream.open.take() {
                end_segment(&o, total_input, stream, &mut events, &mut ranges);
            }
        }
        (events, ranges)
    }

    /// Drops history no future output can need.
    fn trim_history(&mut self) {
        let pad = (self.params.pad_ms as u64 * self.stream.as_ref().map_or(0, |s| s.rate as u64))
            .div_ceil(1000);
        let fl = self.params.frame_samples() as u128;
        let stream = self.stream.as_mut().expect("stream opened");
        let rate = stream.rate as u128;
        // Engine frame index -> input sample of its first engine sample.
        let to_input = |f: u64| (f as u128 * fl * rate / ENGINE_RATE as u128) as u64;
        let keep_from = match stream.open {
            Some(o) => o.padded_start.max(stream.emitted_to),
            // The next segment starts at a frame not yet analysed.
            None => to_input(stream.frames_done)
                .saturating_sub(pad)
                .max(stream.prev_end),
        };
        while let Some((first, chunk)) = stream.history.front() {
            if first + chunk.frames() as u64 <= keep_from {
                stream.history.pop_front();
            } else {
                break;
            }
        }
    }

    /// The speech audio of input `ranges`, from the history.
    fn speech_audio(&self, ranges: &[(u64, u64)]) -> AudioBuffer {
        let stream = self.stream.as_ref().expect("stream opened");
        let mut parts = Vec::new();
        for &(a, b) in ranges {
            for (first, chunk) in &stream.history {
                let (c0, c1) = (*first, first + chunk.frames() as u64);
                let (s, e) = (a.max(c0), b.min(c1));
                if s < e {
                    parts.push(chunk.slice_frames((s - c0) as usize, (e - c0) as usize));
                }
            }
        }
        let refs: Vec<&AudioBuffer> = parts.iter().collect();
        AudioBuffer::concat(&refs).unwrap_or_else(|| {
            AudioBuffer::empty(stream.format, stream.rate, stream.channels)
                .expect("shape of a valid stream")
        })
    }

    fn output(&self, events: Vec<Event>, ranges: &[(u64, u64)], last: bool) -> Option<Data> {
        let stream = self.stream.as_ref().expect("stream opened");
        let ms = |s: u64| s as f64 * 1000.0 / stream.rate as f64;
        if self.params.emit == SpeechVadEmit::Speech {
            if ranges.is_empty() && !last {
                return None;
            }
            return Some(Data::Audio(self.speech_audio(ranges)));
        }
        let items: Vec<Value> = events
            .into_iter()
            .filter_map(|e| match (self.params.emit, e) {
                (
                    SpeechVadEmit::Segments,
                    Event::End {
                        start,
                        end,
                        confidence,
                    },
                ) => Some(json!({
                    "start_ms": ms(start), "end_ms": ms(end), "confidence": confidence,
                })),
                (SpeechVadEmit::Events, Event::Start { start }) => Some(json!({
                    "event": "speech_start", "start_ms": ms(start),
                })),
                (
                    SpeechVadEmit::Events,
                    Event::End {
                        start,
                        end,
                        confidence,
                    },
                ) => Some(json!({
                    "event": "speech_end", "start_ms": ms(start), "end_ms": ms(end),
                    "confidence": confidence,
                })),
                (SpeechVadEmit::Probabilities, Event::Prob { start, end, p }) => Some(json!({
                    "start_ms": ms(start), "end_ms": ms(end), "probability": p as f64,
                })),
                _ => None,
            })
            .collect();
        // Quiet calls emit nothing; the end of stream always emits (possibly an empty list),
        // so a whole-input run always has a result.
        (last || !items.is_empty()).then_some(Data::Json(Value::Array(items)))
    }
}

impl NodeDef for SpeechVadNode {
    const NAME: &'static str = "SpeechVADNode";
    const DESCRIPTION: &'static str = "Neural voice-activity detector (the earshot network, built in).\n\
     \n\
     Any sample rate (8000..=384000 Hz) and channel count: the node downmixes, resamples to 16 kHz\n\
     internally and scores each 16 ms frame with a speech probability. A segment opens at a frame\n\
     `>= threshold`, continues while frames stay `>= end_threshold` (default\n\
     `max(threshold - 0.15, 0.01)`, at most `threshold`), closes after `min_silence_ms` below it, is\n\
     reported once its speech spans `min_speech_ms` and is widened by `pad_ms` on both sides. A\n\
     frame's probability counts only when its energy above 150 Hz is `min_snr_db` above the noise\n\
     floor (the quietest such energy of the last 2 s), or its voicing (periodicity of the 150-1000\n\
     Hz band, 0..1) is `min_voicing` above its own lowest value of the last 2 s (speech in noise\n\
     loud enough to hide its energy; null: energy alone decides). The network hears the input\n\
     levelled (its decisions depend on the level): quiet speech louder, loud input quieter, by at\n\
     most `max_gain_db` (0: as it is); a quiet room's noise alone is not boosted. Only the analysis\n\
     is levelled; emitted audio is the input. Times are in the input's timeline, exact to the\n\
     sample. NaN/Inf samples are read as 0.\n\
     \n\
     emit=\"segments\" gives `[{start_ms, end_ms, confidence}]` (confidence: mean speech probability\n\
     of the segment's frames, padding excluded); \"speech\" only the speech audio in the input's\n\
     format; \"events\" speech_start / speech_end events as soon as each is decided;\n\
     \"probabilities\" `{start_ms, end_ms, probability}` per frame.\n\
     \n\
     engine=\"silero\" scores 32 ms frames with Silero VAD v6 instead, run in Rust with the weights\n\
     of the installed silero-vad package (`pip install --no-deps silero-vad`; found automatically)\n\
     or of `model_path` (its silero_vad_op18_ifless.onnx); no ONNX Runtime is needed. Silero\n\
     separates speech from loud noise itself, so the energy and voicing gate and the levelling are\n\
     off and `min_snr_db` / `min_voicing` / `max_gain_db` must keep their defaults. The\n\
     post-processing rules are the same.";
    const OUTPUTS: Outputs = Outputs::ByParam {
        param: "emit",
        values: &[
            ("segments", Output::SegmentObjects),
            ("speech", Output::Audio),
            ("events", Output::Events),
            ("probabilities", Output::Frames),
        ],
    };
    type Params = SpeechVadParams;
    fn build(params: SpeechVadParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for SpeechVadNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.stream = None;
        match self.detector()? {
            Detector::Earshot(e) => e.reset(),
            Detector::Silero(s) => s.reset(),
        }
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        self.detector()?;
        let audio = expect_audio(NODE, &input)?;
        check_input_rate(NODE, audio.sample_rate())?;
        check_stream_shape(
            NODE,
            self.stream.as_ref().map(|s| (s.rate, s.channels)),
            audio,
        )?;
        if let Some(s) = &self.stream {
            if s.format != audio.format() {
                return Err(NodeError::invalid_input(format!(
                    "{NODE}: sample format changed mid-stream from {} to {}",
                    s.format,
                    audio.format()
                )));
            }
        } else {
            self.stream = Some(self.open_stream(audio)?);
            if let Detector::Earshot(e) = self.detector()? {
                e.set_input_rate(audio.sample_rate());
            }
        }
        let want_speech = self.params.emit == SpeechVadEmit::Speech;
        let stream = self.stream.as_mut().expect("opened above");
        if audio.frames() == 0 {
            return Ok(None);
        }
        let first = stream.input_frames;
        stream.input_frames += audio.frames() as u64;
        if want_speech {
            stream.history.push_back((first, audio.clone()));
        }
        // In blocks, so a whole file never needs file-sized scratch buffers (and the work
        // stays in cache); decisions are causal, so this changes no bit of the output.
        let (mut events, mut ranges) = (Vec::new(), Vec::new());
        let frames = audio.frames();
        let ch = audio.channels() as usize;
        for a in (0..frames).step_by(BLOCK_FRAMES) {
            let b = (a + BLOCK_FRAMES).min(frames);
            let stream = self.stream.as_mut().expect("opened above");
            match stream.resampler.as_mut() {
                Some(r) => {
                    stream.mono.clear();
                    downmix_into(audio.samples(), ch, a..b, &mut stream.mono);
                    r.push(&stream.mono, &mut stream.resampled);
                }
                None => downmix_into(audio.samples(), ch, a..b, &mut stream.resampled),
            }
            let (e, r) = self.analyse(false);
            events.extend(e);
            ranges.extend(r);
        }
        let out = self.output(events, &ranges, false);
        if want_speech {
            self.trim_history();
        }
        Ok(out)
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let Some(stream) = self.stream.as_mut() else {
            // Empty stream: no audio, so no format to emit speech in; decisions are empty.
            return Ok(match self.params.emit {
                SpeechVadEmit::Speech => None,
                _ => Some(Data::Json(Value::Array(Vec::new()))),
            });
        };
        if let Some(r) = stream.resampler.as_mut() {
            r.flush(&mut stream.resampled);
        }
        let (events, ranges) = self.analyse(true);
        let out = self.output(events, &ranges, true);
        if let Some(s) = self.stream.as_mut() {
            s.history.clear();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::rng::XorShift;

    #[test]
    fn voicing_builds_agree_and_find_the_period() {
        let mut rng = XorShift(11);
        // A 200 Hz pulse train at 4 kHz (period 20 samples) in a little noise.
        let hist: Vec<f32> = (0..VOICE_HISTORY)
            .map(|i| if i % 20 == 0 { 1.0 } else { 0.0 } + 0.01 * rng.next())
            .collect();
        let v = voicing(&hist);
        assert_eq!(v.to_bits(), voicing_any(&hist).to_bits());
        assert!(v > 0.9, "{v}");
        let noise: Vec<f32> = (0..VOICE_HISTORY).map(|_| rng.next()).collect();
        assert!(voicing(&noise) < 0.5);
        assert_eq!(voicing(&[0.0; VOICE_HISTORY]), 0.0);
    }

    /// The definition, lag by lag: the same sums in the same order as `voicing`.
    fn voicing_lag_by_lag(hist: &[f32]) -> f32 {
        let n = hist.len();
        // Energy of the window ending at `end`, as voicing sums it: squares summed from the
        // start of `hist`, the sum before the window subtracted.
        let sum = |m: usize| {
            hist[..m]
                .iter()
                .fold(0.0f64, |s, &v| s + v as f64 * v as f64)
        };
        let energy = |end: usize| sum(end) - sum(end - VOICE_WINDOW);
        let a = &hist[n - VOICE_WINDOW..];
        let ea = energy(n);
        let mut best = 0.0f32;
        for lag in (VOICE_MIN_LAG..=VOICE_MAX_LAG).rev() {
            let b = &hist[n - VOICE_WINDOW - lag..n - lag];
            let c = a.iter().zip(b).fold(0.0f32, |s, (&x, &y)| s + x * y);
            let r = (c as f64 / (ea * energy(n - lag) + 1e-20).sqrt()) as f32;
            if r.is_finite() {
                best = best.max(r);
            }
        }
        best
    }

    #[test]
    fn voicing_is_its_definition_to_the_bit() {
        let mut rng = XorShift(3);
        for round in 0..300 {
            let period = 10 + round % 45;
            let hist: Vec<f32> = (0..VOICE_HISTORY)
                .map(|i| {
                    let pulse = if i % period == 0 { 0.5 } else { 0.0 };
                    (pulse + 0.05 * (round % 7) as f32 * rng.next()) * (1.0 + round as f32)
                })
                .collect();
            assert_eq!(
                voicing(&hist).to_bits(),
                voicing_lag_by_lag(&hist).to_bits(),
                "round {round}"
            );
        }
    }

    #[test]
    fn floor_is_the_minimum_of_the_window() {
        let mut rng = XorShift(7);
        let mut floor = Floor::default();
        let mut seen = Vec::new();
        for i in 0..2000 {
            // Runs of repeats and long monotone stretches as well as noise.
            let v = match i / 300 % 3 {
                0 => (rng.next() * 8.0).round(),
                1 => -(i as f32),
                _ => i as f32 * 0.5 + rng.next(),
            };
            seen.push(v);
            let window = &seen[seen.len().saturating_sub(FLOOR_FRAMES)..];
            let want = window.iter().copied().fold(f32::INFINITY, f32::min);
            assert_eq!(floor.push(v).to_bits(), want.to_bits(), "push {i}");
        }
    }

    #[test]
    fn the_default_end_threshold_is_silero_s_floored_and_never_above_threshold() {
        let end = |threshold: f64| {
            SpeechVadParams {
                threshold,
                ..Default::default()
            }
            .end_threshold()
        };
        assert!((end(0.5) - 0.35).abs() < 1e-12);
        assert!((end(0.16) - 0.01).abs() < 1e-12);
        // Below 0.16 Silero's floor, 0.01, keeps frames able to count as silence...
        assert_eq!(end(0.1), 0.01);
        // ...but never above threshold itself; at 0 everything is speech anyway.
        assert_eq!(end(0.005), 0.005);
        assert_eq!(end(0.0), 0.0);
        let explicit = |threshold: f64, e: f64| {
            SpeechVadParams {
                threshold,
                end_threshold: Some(e),
                ..Default::default()
            }
            .check()
        };
        let issues = explicit(0.5, 0.0);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].field, "end_threshold");
        assert!(
            issues[0].message.contains("would never end a segment"),
            "{issues:?}"
        );
        assert!(explicit(0.0, 0.0).is_empty());
        assert!(explicit(0.5, 0.001).is_empty());
    }

    #[test]
    fn defaults_pass_their_own_checks() {
        let p = SpeechVadParams::default();
        assert!(p.check().is_empty());
        assert!((p.end_threshold() - 0.35).abs() < 1e-12);
    }

    #[test]
    fn downmix_averages_and_zeroes_non_finite() {
        let mut out = Vec::new();
        let s = Samples::F32(vec![0.5, 0.25, f32::NAN, 1.0, f32::INFINITY, 0.0].into());
        downmix_into(&s, 2, 0..3, &mut out);
        assert_eq!(out, vec![0.375, 0.5, 0.0]);
    }

    #[test]
    fn stereo_downmix_matches_the_general_loop() {
        // Long enough for the blocks of eight frames and a tail, with every special value.
        let mut r = XorShift(5);
        let specials = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            -0.0,
            3e38,
            -2e4,
            1e4,
        ];
        let v: Vec<f32> = (0..2 * 37)
            .map(|i| {
                if i % 5 == 0 {
                    specials[i / 5 % specials.len()]
                } else {
                    r.next()
                }
            })
            .collect();
        let mut stereo = Vec::new();
        downmix_into(&Samples::F32(v.clone().into()), 2, 0..37, &mut stereo);
        // The same frames as two channels of a four-channel input whose other two are
        // silent give the general loop's mean of four, twice the sum's half.
        let four: Vec<f32> = v
            .chunks_exact(2)
            .flat_map(|f| [f[0], f[1], 0.0, 0.0])
            .collect();
        let mut general = Vec::new();
        downmix_into(&Samples::F32(four.into()), 4, 0..37, &mut general);
        for (i, (&a, &b)) in stereo.iter().zip(&general).enumerate() {
            assert!(a.is_finite() && a.abs() <= ANALYSIS_LIMIT, "frame {i}: {a}");
            assert_eq!(a, b * 2.0, "frame {i}");
        }
        assert_eq!(stereo.len(), 37);
    }

    #[test]
    fn downmix_stays_finite_and_bounded_for_huge_samples() {
        // Fuzzing found these: +-3e38 in two channels summed to NaN.
        let mut out = Vec::new();
        let s = Samples::F32(vec![3e38, -3e38, 3e38, 3e38, -1e30, 0.5].into());
        downmix_into(&s, 2, 0..3, &mut out);
        assert_eq!(out, vec![0.0, ANALYSIS_LIMIT, (0.5 - ANALYSIS_LIMIT) / 2.0]);
        out.clear();
        downmix_into(&Samples::F64(vec![1e300, 0.25].into()), 1, 0..2, &mut out);
        assert_eq!(out, vec![0.0, 0.25]);
    }
}
