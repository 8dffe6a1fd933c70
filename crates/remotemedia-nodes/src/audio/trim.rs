//! `TrimSilenceNode`: removes leading and trailing silence, keeps everything in between.
//!
//! A frame is loud when any channel's absolute sample exceeds `threshold_db` dBFS. Output
//! starts `pad_ms` before the first loud frame and ends `pad_ms` after the last one (clamped
//! to the stream). Samples pass through untouched, in the input format. Streaming: leading
//! silence is dropped as it arrives (the last `pad_ms` of it are held), and quiet audio after
//! a loud frame is held back until the next loud frame (then emitted, since it was an interior
//! pause) or the end of the stream (then cut to `pad_ms`); so memory grows with the longest
//! pause, and output lags by it; what is held counts against the executor's `max_call_bytes`
//! (three times its size, as for the whole-stream nodes), so a pause longer than that bound is
//! refused with an error naming the node and the limit. A stream with no loud frame gives
//! empty audio.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::dsp::samples::{append, db_to_gain, Held};
use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{Node, StreamShape};
use remotemedia_core::registry::{NodeDef, NodeParams, ParamIssue};

fn default_threshold_db() -> f64 {
    -60.0
}

/// Parameters of `TrimSilenceNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrimSilenceParams {
    /// Level above which a sample counts as sound, -120.0..=0.0 dBFS. Default -60.0.
    #[serde(default = "default_threshold_db")]
    #[schemars(range(min = -120.0, max = 0.0), extend("x-unit" = "dBFS"))]
    pub threshold_db: f64,
    /// Silence kept before the first and after the last loud frame, 0..=10000 ms. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 10000), extend("x-unit" = "ms"))]
    pub pad_ms: u32,
}

impl NodeParams for TrimSilenceParams {
    fn check(&self) -> Vec<ParamIssue> {
        // Ranges come from the schema attributes (checked generically by the registry).
        Vec::new()
    }
}

/// Index of the first (or last, when `last`) loud frame in frames `[from, frames)`.
fn find_loud(audio: &AudioBuffer, from: usize, threshold: f64, last: bool) -> Option<usize> {
    let ch = audio.channels() as usize;
    fn scan<T: Copy>(
        s: &[T],
        ch: usize,
        from: usize,
        last: bool,
        loud: impl Fn(T) -> bool,
    ) -> Option<usize> {
        let mut frames = s.chunks_exact(ch).enumerate().skip(from);
        let is_loud = |(_, f): &(usize, &[T])| f.iter().any(|&x| loud(x));
        if last {
            frames.rev().find(is_loud).map(|(i, _)| i)
        } else {
            frames.find(is_loud).map(|(i, _)| i)
        }
    }
    match audio.samples() {
        Samples::F32(b) => scan(b, ch, from, last, |x| (x as f64).abs() > threshold),
        Samples::F64(b) => scan(b, ch, from, last, |x| x.abs() > threshold),
        Samples::I16(b) => scan(b, ch, from, last, |x| {
            (x as f64 / 32768.0).abs() > threshold
        }),
        Samples::I32(b) => scan(b, ch, from, last, |x| {
            (x as f64 / 2_147_483_648.0).abs() > threshold
        }),
    }
}

/// Trims leading and trailing silence (see module docs).
#[derive(Debug)]
pub struct TrimSilenceNode {
    params: TrimSilenceParams,
    shape: StreamShape,
    pad: usize,
    started: bool,
    /// Before the first loud frame: the last `pad` frames of leading silence.
    lead: Option<AudioBuffer>,
    /// After a loud frame: the quiet audio since, not yet known to be interior.
    quiet: Held,
}

impl TrimSilenceNode {
    /// Builds the node.
    pub fn new(params: TrimSilenceParams) -> Self {
        Self {
            params,
            shape: StreamShape::default(),
            pad: 0,
            started: false,
            lead: None,
            quiet: Held::default(),
        }
    }

    fn reset(&mut self) {
        self.shape.reset();
        self.started = false;
        self.lead = None;
        self.quiet = Held::default();
    }

    /// Emits up to the last loud frame of `audio` (after the quiet audio held before it) and
    /// holds the rest.
    fn after_start(
        &mut self,
        audio: AudioBuffer,
        threshold: f64,
    ) -> Result<Option<Data>, NodeError> {
        let frames = audio.frames();
        match find_loud(&audio, 0, threshold, true) {
            Some(last) => {
                self.quiet.push(&audio.slice_frames(0, last + 1))?;
                let out = self.quiet.take().expect("just pushed");
                self.quiet.push(&audio.slice_frames(last + 1, frames))?;
                Ok(Some(Data::Audio(out)))
            }
            None => {
                self.quiet.push(&audio)?;
                Ok(None)
            }
        }
    }
}

impl NodeDef for TrimSilenceNode {
    const NAME: &'static str = "TrimSilenceNode";
    const DESCRIPTION: &'static str =
        "Removes leading and trailing audio quieter than `threshold_db` dBFS, keeping `pad_ms`\n\
     around the sound; trailing quiet audio is held until sound resumes or flush.";
    type Params = TrimSilenceParams;
    fn build(params: TrimSilenceParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for TrimSilenceNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.reset();
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let first = self.shape.get().is_none();
        let audio = self.shape.accept(&input)?;
        if first {
            self.pad =
                (audio.sample_rate() as u64 * self.params.pad_ms as u64).div_ceil(1000) as usize;
        }
        let threshold = db_to_gain(self.params.threshold_db);
        if self.started {
            return self.after_start(audio.clone(), threshold);
        }
        let lead_frames = self.lead.as_ref().map_or(0, AudioBuffer::frames);
        let joined = append(self.lead.take(), audio)?;
        let frames = joined.frames();
        // The lead is known to be quiet: scan only the new frames.
        match find_loud(&joined, lead_frames, threshold, false) {
            Some(first) => {
                self.started = true;
                let begin = first.saturating_sub(self.pad);
                self.after_start(joined.slice_frames(begin, frames), threshold)
            }
            None => {
                self.lead = Some(joined.slice_frames(frames.saturating_sub(self.pad), frames));
                Ok(None)
            }
        }
    }

    fn output_bytes(&self, input: &Data) -> u64 {
        self.quiet.claim(input)
    }

    fn holding_advice(&self) -> Option<String> {
        (self.quiet.bytes() > 0).then(|| {
            "TrimSilenceNode holds the quiet audio after a loud frame until the next loud \
             frame (interior silence is kept) or the end of the stream, and what it holds is \
             counted against this limit; lower threshold_db so less of the stream counts as \
             silence, or raise the limit"
                .to_string()
        })
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let out = if self.started {
            self.quiet
                .take()
                .map(|q| q.slice_frames(0, self.pad.min(q.frames())))
        } else {
            self.lead.take().map(|l| l.slice_frames(0, 0))
        };
        self.reset();
        Ok(out.map(Data::Audio))
    }
}
