//! Native audio nodes.

mod channel_mix;
mod format;
mod resample;
mod vad;

pub use channel_mix::{ChannelMixNode, ChannelMixParams};
pub use format::{FormatConverterNode, FormatConverterParams};
pub use resample::{ResampleNode, ResampleParams, ResampleQuality, StreamResampler};
pub use vad::{VadEmit, VadNode, VadParams, DB_FLOOR};
