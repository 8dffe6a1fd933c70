//! `SpeechVADNode`'s parameters: what it emits, which engine it runs, the segment rules and
//! the gate's settings, with the checks that span fields.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ENGINE_FRAME;
use crate::audio::silero::{self, SileroWeights};
use remotemedia_core::registry::{NodeParams, ParamIssue};

/// Default `end_threshold` is `threshold` minus this (Silero's `neg_threshold` rule), but at
/// least [`END_THRESHOLD_MIN`].
pub const END_THRESHOLD_GAP: f64 = 0.15;
/// The default `end_threshold`'s floor (Silero's): at 0 no frame would count as silence and a
/// segment, once open, would last to the end of the input.
pub const END_THRESHOLD_MIN: f64 = 0.01;
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
    /// `[{start_ms, end_ms, probability}]` for every engine frame (32 ms; 16 ms with engine="earshot").
    Probabilities,
}

/// Which network gives the speech probabilities.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SpeechVadEngine {
    /// The light engine (earshot's network, 16 ms frames, with the energy and voicing gate
    /// of `min_snr_db` and `min_voicing`): about a fifth of Silero's CPU, but it takes music
    /// and steady tones for speech far more often.
    Earshot,
    /// The default: Silero VAD v6 (32 ms frames), run in-process in Rust with its weights
    /// bundled (MIT; nothing to install) or those of `model_path`. It separates speech from
    /// noise, music and tones itself, so the gate is off.
    #[default]
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
    /// engine="earshot" only: how far, in dB, a frame's energy must rise above the noise floor (the quietest frame
    /// of the last 2 s) for its probability to count, 0.0..=40.0 (0 disables). Default 2.0.
    #[serde(default = "default_min_snr_db")]
    #[schemars(range(min = 0.0, max = 40.0), extend("x-unit" = "dB"))]
    pub min_snr_db: f64,
    /// engine="earshot" only: how far a frame's voicing (periodicity of the 150-1000 Hz band,
    /// 0..1) must rise above
    /// its lowest value of the last 2 s for its probability to count even when its energy
    /// does not stand out (speech in loud noise), 0.05..=1.0; null: energy alone decides.
    /// Default 0.25.
    #[serde(default = "default_min_voicing")]
    #[schemars(range(min = 0.05, max = 1.0))]
    pub min_voicing: Option<f64>,
    /// "segments" (default), "speech", "events" or "probabilities".
    #[serde(default)]
    pub emit: SpeechVadEmit,
    /// "silero" (default: Silero VAD v6, 32 ms frames) or "earshot" (the light engine, 16 ms
    /// frames, with the energy/voicing gate); both are built in.
    #[serde(default)]
    pub engine: SpeechVadEngine,
    /// engine="silero" only: a Silero model file to read instead of the bundled weights (the
    /// silero-vad package's `silero_vad_op18_ifless.onnx`, version 6 or later). Default
    /// (null): the `REMOTEMEDIA_SILERO_MODEL` environment variable, else the bundled weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "path"))]
    pub model_path: Option<String>,
    /// engine="earshot" only: the network hears the input levelled: quiet speech louder, loud input quieter, by at
    /// most this many dB, 0.0..=60.0 (0: as it is). Only the analysis is levelled; emitted
    /// audio is the input. Default 30.0.
    #[serde(default = "default_max_gain_db")]
    #[schemars(range(min = 0.0, max = 60.0), extend("x-unit" = "dB"))]
    pub max_gain_db: f64,
    /// Longest segment, 100..=3600000 ms, at least 2 x min_speech_ms; null (default): no
    /// limit. A segment that reaches it is split at its least speech-like frame after
    /// min_speech_ms (a pause, where there is one), and the rest goes on as a new segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 3_600_000), extend("x-unit" = "ms"))]
    pub max_speech_ms: Option<u32>,
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
            engine: SpeechVadEngine::Silero,
            model_path: None,
            max_speech_ms: None,
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
    pub(super) fn silero_weights(&self) -> Result<std::sync::Arc<SileroWeights>, ParamIssue> {
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
                            "{p:?} is only read by engine=\"silero\"; engine=\"earshot\" \
                             has its own weights"
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
        if let Some(max) = self.max_speech_ms {
            if max < self.min_speech_ms.saturating_mul(2) {
                issues.push(ParamIssue::new(
                    "max_speech_ms",
                    format!(
                        "{max} is out of range; expected at least 2 x min_speech_ms ({} ms), \
                         so both parts of a split segment can be speech, or null for no limit",
                        self.min_speech_ms.saturating_mul(2)
                    ),
                ));
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
