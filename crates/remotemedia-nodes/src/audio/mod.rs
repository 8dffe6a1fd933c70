//! Native audio nodes.

mod auto_gain;
mod biquad;
mod channel_mix;
mod denoise;
mod echo_cancel;
mod fade;
mod format;
mod gain;
mod loudness;
mod mix;
mod resample;
mod silero;
mod speech_vad;
mod trim;
mod vad;
mod vad_engine;
mod vad_gate;

pub use crate::dsp::biquad::{butterworth, rbj, Pass, Section};
pub use auto_gain::{AutoGainNode, AutoGainParams};
pub use biquad::{
    BiquadNode, BiquadParams, BiquadType, HighPassNode, HighPassParams, HighPassPreset,
    LowPassNode, LowPassParams,
};
pub use channel_mix::{ChannelMixNode, ChannelMixParams};
pub use denoise::{DenoiseEmit, DenoiseNode, DenoiseParams};
pub use echo_cancel::{EchoCancelNode, EchoCancelParams};
pub use fade::{FadeCurve, FadeNode, FadeParams};
pub use format::{Dither, FormatConverterNode, FormatConverterParams};
pub use gain::{GainNode, GainParams};
pub use loudness::{
    measure as measure_loudness, LoudnessMeter, LoudnessMode, LoudnessNormalizeNode,
    LoudnessParams, LoudnessReport,
};
pub use mix::{MixNode, MixParams};
pub use resample::{
    polyphase_taps, ResampleEngine, ResampleNode, ResampleParams, ResampleQuality, StreamResampler,
};
#[cfg(feature = "test-nodes")]
pub use silero::fake_model as fake_silero_model;
pub use silero::{
    bundle_model as bundle_silero_model, sha256_hex, BUNDLED_SHA256 as SILERO_BUNDLED_SHA256,
    MODEL_ENV as SILERO_MODEL_ENV,
};
pub use speech_vad::{
    SpeechVadEmit, SpeechVadEngine, SpeechVadNode, SpeechVadParams, END_THRESHOLD_GAP,
    ENGINE_FRAME, ENGINE_RATE,
};
pub use trim::{TrimSilenceNode, TrimSilenceParams};
pub use vad::{VadEmit, VadNode, VadParams, DB_FLOOR};
