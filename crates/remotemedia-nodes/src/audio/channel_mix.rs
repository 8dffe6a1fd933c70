//! `ChannelMixNode`: downmix to mono (average) or up-mix mono to N channels.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use remotemedia_core::data::{try_vec, AudioBuffer, Data, Sample, Samples, MAX_CHANNELS};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{audio_input, check_finite, Node};
use remotemedia_core::registry::{NodeDef, NodeParams};

/// Parameters of `ChannelMixNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelMixParams {
    /// Output channel count, 1..=64. 1 averages all input channels; N > 1 requires mono input
    /// and copies it to every channel.
    #[schemars(range(min = 1, max = MAX_CHANNELS))]
    pub channels: u16,
}

impl NodeParams for ChannelMixParams {}

/// Changes the channel count.
#[derive(Debug)]
pub struct ChannelMixNode {
    channels: u16,
}

impl ChannelMixNode {
    /// Builds the node.
    pub fn new(p: ChannelMixParams) -> Self {
        Self {
            channels: p.channels,
        }
    }
}

/// The average of each frame's channels (an average of integers is within their range, rounded
/// half to even).
fn downmix<T: Sample>(src: &[T], channels: usize) -> Vec<T> {
    let k = 1.0 / channels as f64;
    src.chunks_exact(channels)
        .map(|frame| T::from_f64(frame.iter().map(|s| s.to_f64()).sum::<f64>() * k))
        .collect()
}

fn upmix<T: Sample>(src: &[T], channels: usize) -> Result<Vec<T>, NodeError> {
    let mut out = try_vec(src.len().saturating_mul(channels), "ChannelMixNode")?;
    for &s in src {
        out.extend(std::iter::repeat_n(s, channels));
    }
    Ok(out)
}

impl NodeDef for ChannelMixNode {
    const NAME: &'static str = "ChannelMixNode";
    const DESCRIPTION: &'static str =
        "Changes the channel count: downmix to mono (`channels=1`, the average of the channels)\n\
     or up-mix mono to `channels` identical channels. Keeps the sample format.";
    type Params = ChannelMixParams;
    fn build(params: ChannelMixParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for ChannelMixNode {
    /// `frames x channels x bytes per sample` of the output (nothing when the count is kept).
    fn output_bytes(&self, input: &Data) -> u64 {
        match input.as_audio() {
            Some(a) if a.channels() != self.channels => (a.frames() as u64)
                .saturating_mul(self.channels as u64)
                .saturating_mul(a.format().bytes_per_sample() as u64),
            _ => 0,
        }
    }

    fn output_size(&self, input: &Data) -> Option<u64> {
        Some(self.output_bytes(input))
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let audio = audio_input(&input)?;
        // NaN or infinity would reach every output channel it is mixed into.
        check_finite(audio)?;
        let from = audio.channels();
        let to = self.channels;
        if from == to {
            return Ok(Some(input));
        }
        let (c_in, c_out) = (from as usize, to as usize);
        let samples = match (c_in, c_out) {
            (_, 1) => match audio.samples() {
                Samples::F32(b) => Samples::F32(downmix(b, c_in).into()),
                Samples::F64(b) => Samples::F64(downmix(b, c_in).into()),
                Samples::I16(b) => Samples::I16(downmix(b, c_in).into()),
                Samples::I32(b) => Samples::I32(downmix(b, c_in).into()),
            },
            (1, _) => match audio.samples() {
                Samples::F32(b) => Samples::F32(upmix(b, c_out)?.into()),
                Samples::F64(b) => Samples::F64(upmix(b, c_out)?.into()),
                Samples::I16(b) => Samples::I16(upmix(b, c_out)?.into()),
                Samples::I32(b) => Samples::I32(upmix(b, c_out)?.into()),
            },
            _ => {
                return Err(NodeError::invalid_input(format!(
                    "mixes to mono or from mono; got {from} -> {to} channels. \
                     Chain two ChannelMixNodes ({from} -> 1 -> {to}) for that"
                )))
            }
        };
        let out = AudioBuffer::new(samples, audio.sample_rate(), to)
            .map_err(|e| NodeError::failed(e.to_string()))?;
        Ok(Some(Data::Audio(out)))
    }
}
