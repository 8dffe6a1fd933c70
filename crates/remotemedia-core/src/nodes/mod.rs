//! Built-in native nodes.

pub mod audio;
mod passthrough;
#[cfg(feature = "test-nodes")]
pub mod testing;

use std::sync::Arc;

pub use passthrough::{PassThroughNode, PassThroughParams};

use crate::registry::{NodeRegistry, TypedFactory};

impl NodeRegistry {
    /// The built-in native nodes (defined here so that the registry does not depend on the
    /// nodes: `nodes` -> `registry`, never the other way).
    pub fn with_builtins() -> Self {
        let mut r = Self::empty();
        register_builtins(&mut r);
        r
    }
}

/// Registers every built-in native node type.
pub fn register_builtins(registry: &mut NodeRegistry) {
    registry.register(Arc::new(TypedFactory::new(
        "AudioResampleNode",
        "Converts audio to another sample rate (any rate pair, any channel count) with a \
         band-limited resampler (polyphase FIR or FFT, whichever is faster for the pair; alias \
         rejection per `quality`). Output length is ceil(n * target_rate / source_rate); the \
         filter delay is compensated, so output lines up with input. Keeps the sample format.",
        |_, p| Box::new(audio::ResampleNode::new(p)),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "VADNode",
        "Energy voice-activity detector: frames whose RMS level exceeds `threshold` dBFS are \
         speech (plus `hangover_ms` after the last loud frame). Emits speech segments \
         [{start_ms, end_ms, energy_db}], or with emit=\"speech\" only the speech audio, or \
         with emit=\"events\" speech_start/speech_end events as soon as each is decided.",
        |_, p| Box::new(audio::VadNode::new(p)),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "SpeechVADNode",
        "Neural voice-activity detector (earshot, built in; any rate and channel count, \
         resampled to 16 kHz internally): speech probability per 16 ms frame with hysteresis \
         (`threshold`, `end_threshold`), `min_speech_ms`, `min_silence_ms` and `pad_ms`. Emits \
         [{start_ms, end_ms, confidence}], or with emit=\"speech\" the speech audio, \
         emit=\"events\" speech_start/speech_end as decided, emit=\"probabilities\" per-frame \
         probabilities. Times are in the input's timeline. engine=\"silero\" runs Silero VAD v6 \
         instead (32 ms frames; weights from the installed silero-vad package or `model_path`).",
        |_, p| Box::new(audio::SpeechVadNode::new(p)),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "FormatConverterNode",
        "Converts the sample format (f32, i16, i32, f64). Integer <-> float scales by \
         2^(bits-1); float -> integer rounds half to even and saturates; same format is a \
         no-op without a copy.",
        |_, p| Box::new(audio::FormatConverterNode::new(p)),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "ChannelMixNode",
        "Changes the channel count: downmix to mono (average of the channels) or up-mix mono \
         to N identical channels. Keeps the sample format.",
        |_, p| Box::new(audio::ChannelMixNode::new(p)),
    )));
    register_dsp(registry);
    registry.register(Arc::new(TypedFactory::new(
        "PassThroughNode",
        "Emits its input unchanged (no copy).",
        |_, p| Box::new(PassThroughNode::new(p)),
    )));
}

/// Registers the fault-injection node types (`TestFlakyNode`, `TestPanicNode`, ...) when this
/// build has the `test-nodes` feature (test builds only); returns whether it did. A release
/// build has no such nodes, whatever its environment says.
pub fn register_test_nodes(registry: &mut NodeRegistry) -> bool {
    #[cfg(feature = "test-nodes")]
    {
        testing::register(registry);
        true
    }
    #[cfg(not(feature = "test-nodes"))]
    {
        let _ = registry;
        false
    }
}

/// The everyday level, filter and editing nodes (issue 13).
fn register_dsp(registry: &mut NodeRegistry) {
    registry.register(Arc::new(TypedFactory::new(
        "GainNode",
        "Applies a gain: `db` or `linear`, or `peak_db` to normalise the stream's peak (held \
         until flush). Computed in f64; integer outputs round and saturate.",
        |_, p| Box::new(audio::GainNode::new(p)),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "LoudnessNormalizeNode",
        "EBU R128 / BS.1770 loudness normalisation to `target_lufs` with a `true_peak_db` \
         ceiling. mode=\"whole\" measures the whole stream and emits it at flush (two \
         passes); mode=\"streaming\" follows a gated running estimate with no latency.",
        |_, p| Box::new(audio::LoudnessNormalizeNode::new(p)),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "HighPassNode",
        "Butterworth high-pass of `order` 1..=8 at `cutoff_hz` (cascaded biquads, f64 state); \
         preset=\"dc_removal\" is 20 Hz, order 2.",
        |_, p| Box::new(audio::HighPassNode::new(p)),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "LowPassNode",
        "Butterworth low-pass of `order` 1..=8 at `cutoff_hz` (cascaded biquads, f64 state).",
        |_, p| Box::new(audio::LowPassNode::new(p)),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "BiquadNode",
        "One RBJ cookbook biquad: `filter_type` lowpass, highpass, bandpass, notch, allpass, \
         peaking, lowshelf or highshelf at `freq_hz` with `q` and `gain_db`.",
        |_, p| Box::new(audio::BiquadNode::new(p)),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "MixNode",
        "Sums its inputs (fan-in), aligned by stream position, each scaled by `gains` (dB per \
         upstream id, default 0); shorter inputs are padded with silence at flush; integer \
         outputs saturate. Inputs must share rate and channel count.",
        |_, p| Box::new(audio::MixNode::new(p)),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "TrimSilenceNode",
        "Removes leading and trailing audio quieter than `threshold_db` dBFS, keeping `pad_ms` \
         around the sound; trailing quiet audio is held until sound resumes or flush.",
        |_, p| Box::new(audio::TrimSilenceNode::new(p)),
    )));
    registry.register(Arc::new(TypedFactory::new(
        "FadeNode",
        "Fades in over `fade_in_ms` and out over `fade_out_ms` with a `curve` (linear, sine, \
         quadratic); the fade-out holds back its length of audio and is applied at flush.",
        |_, p| Box::new(audio::FadeNode::new(p)),
    )));
}
