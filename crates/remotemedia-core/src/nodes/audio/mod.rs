//! Native audio nodes.

mod channel_mix;
mod format;
mod resample;
mod speech_vad;
mod vad;

pub use channel_mix::{ChannelMixNode, ChannelMixParams};
pub use format::{FormatConverterNode, FormatConverterParams};
pub use resample::{ResampleNode, ResampleParams, ResampleQuality, StreamResampler};
pub use speech_vad::{
    SpeechVadEmit, SpeechVadNode, SpeechVadParams, END_THRESHOLD_GAP, ENGINE_FRAME, ENGINE_RATE,
};
pub use vad::{VadEmit, VadNode, VadParams, DB_FLOOR};
