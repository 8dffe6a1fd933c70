//! Sink outputs: what a sink emitted in a step, with its place in the sink's audio stream,
//! and [`SinkCollector`], which joins a run's outputs into whole-input results.

use std::collections::BTreeMap;

use super::NodeSlot;
use crate::data::Data;

/// Gathers sink outputs over a run and joins each sink's values (see [`Data::join`]): the one
/// place a stream's outputs become a whole-input result (runs, the CLI, remote nodes).
#[derive(Debug, Default)]
pub struct SinkCollector {
    by_sink: BTreeMap<String, Vec<Data>>,
}

impl SinkCollector {
    /// Adds outputs in the order they were emitted.
    pub fn extend(&mut self, outputs: impl IntoIterator<Item = SinkOutput>) {
        for o in outputs {
            self.by_sink.entry(o.node_id).or_default().push(o.data);
        }
    }

    /// Each sink's joined output; a sink that emitted nothing is absent.
    pub fn finish(self) -> BTreeMap<String, Data> {
        self.by_sink
            .into_iter()
            .filter_map(|(id, values)| Data::join(values).map(|d| (id, d)))
            .collect()
    }
}

/// An output of a sink node during a session.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkOutput {
    /// The sink's node id.
    pub node_id: String,
    /// The value.
    pub data: Data,
    /// For audio: where this chunk sits in the sink's output stream.
    pub position: Option<StreamPosition>,
}

/// Where an audio chunk sits in a sink's output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamPosition {
    /// Index of the chunk's first frame in the sink's output.
    pub start_frame: u64,
    /// Frames in the chunk.
    pub frames: u64,
    /// The output sample rate.
    pub sample_rate: u32,
}

impl StreamPosition {
    /// Start time in milliseconds.
    pub fn start_ms(&self) -> f64 {
        self.start_frame as f64 * 1000.0 / self.sample_rate as f64
    }
}

/// A sink's value as a session output, advancing the sink's audio position in `emitted`
/// (frames emitted so far, per node).
pub(super) fn sink_output(emitted: &mut [u64], slot: &NodeSlot, data: Data) -> SinkOutput {
    let s = slot.index;
    let position = data.as_audio().map(|a| {
        let start = emitted[s];
        emitted[s] += a.frames() as u64;
        StreamPosition {
            start_frame: start,
            frames: a.frames() as u64,
            sample_rate: a.sample_rate(),
        }
    });
    SinkOutput {
        node_id: slot.id.clone(),
        data,
        position,
    }
}
