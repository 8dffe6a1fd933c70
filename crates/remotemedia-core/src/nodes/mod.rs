//! Built-in native nodes.

pub mod audio;
mod passthrough;
pub mod testing;

use std::sync::Arc;

pub use passthrough::{PassThroughNode, PassThroughParams};

use crate::registry::{NodeRegistry, TypedFactory};

/// Registers every built-in native node type.
pub fn register_builtins(registry: &mut NodeRegistry) {
    registry.register(Arc::new(TypedFactory::new(
        "AudioResampleNode",
        "Converts audio to another sample rate (any rate pair, any channel count) with a \
         band-limited FFT resampler. Output length is ceil(n * target_rate / source_rate); the \
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
         probabilities. Times are in the input's timeline.",
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
    registry.register(Arc::new(TypedFactory::new(
        "PassThroughNode",
        "Emits its input unchanged (no copy).",
        |_, p| Box::new(PassThroughNode::new(p)),
    )));
}
