//! What flows along a pipeline's edges.

mod audio;
mod buffer;
pub mod convert;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use audio::{
    AudioBuffer, AudioError, SampleFormat, Samples, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE,
};
pub use buffer::{ForeignOwner, SampleBuf};

/// A stretch of detected speech.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Start, in milliseconds from the start of the stream.
    pub start_ms: f64,
    /// End (exclusive), in milliseconds from the start of the stream.
    pub end_ms: f64,
    /// Energy of the whole segment in dBFS (RMS over all its samples), floored at -120.
    pub energy_db: f64,
}

/// A value owned by the host language (a Python object, say), passed between that host's
/// nodes untouched. Native nodes reject it with a clear error.
#[derive(Clone)]
pub struct HostObject {
    value: Arc<dyn Any + Send + Sync>,
    type_name: Arc<str>,
}

impl HostObject {
    /// Wraps a host value; `type_name` is what error messages call it (e.g. `"dict"`).
    pub fn new(value: Arc<dyn Any + Send + Sync>, type_name: impl Into<Arc<str>>) -> Self {
        Self {
            value,
            type_name: type_name.into(),
        }
    }

    /// The wrapped value.
    pub fn value(&self) -> &Arc<dyn Any + Send + Sync> {
        &self.value
    }

    /// The host's name for the value's type.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }
}

impl fmt::Debug for HostObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostObject({})", self.type_name)
    }
}

impl PartialEq for HostObject {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.value, &other.value)
    }
}

/// One value on an edge.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Audio samples.
    Audio(AudioBuffer),
    /// Voice-activity segments.
    Segments(Vec<Segment>),
    /// Any JSON value.
    Json(serde_json::Value),
    /// A host-language object (see [`HostObject`]).
    Object(HostObject),
    /// Several values: what a sink produced over a run when they cannot be joined.
    List(Vec<Data>),
    /// The inputs of a fan-in node, keyed by upstream node id.
    Map(BTreeMap<String, Data>),
}

impl Data {
    /// Short name of the variant, for error messages ("audio", "segments", ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Data::Audio(_) => "audio",
            Data::Segments(_) => "segments",
            Data::Json(_) => "json",
            Data::Object(_) => "object",
            Data::List(_) => "list",
            Data::Map(_) => "map",
        }
    }

    /// A longer description for error messages, e.g. "audio (f32, 48000 Hz, 2 ch)".
    pub fn describe(&self) -> String {
        match self {
            Data::Audio(a) => format!(
                "audio ({}, {} Hz, {} ch, {} frames)",
                a.format(),
                a.sample_rate(),
                a.channels(),
                a.frames()
            ),
            Data::Object(o) => format!("object of type {}", o.type_name()),
            Data::Map(m) => format!(
                "{} inputs (from {})",
                m.len(),
                m.keys()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => other.kind().to_string(),
        }
    }

    /// The audio, if this is audio.
    pub fn as_audio(&self) -> Option<&AudioBuffer> {
        match self {
            Data::Audio(a) => Some(a),
            _ => None,
        }
    }

    /// True for audio with no frames and for empty segment lists: values a streaming consumer
    /// can skip without losing anything.
    pub fn is_empty_chunk(&self) -> bool {
        match self {
            Data::Audio(a) => a.frames() == 0,
            Data::Segments(s) => s.is_empty(),
            _ => false,
        }
    }

    /// Joins the values a node emitted over a run into the run's result: audio chunks of one
    /// shape are concatenated, segment lists and JSON arrays (event lists) are concatenated, a
    /// single value is returned as is, and anything else becomes a [`Data::List`] in emission
    /// order. `None` when empty.
    pub fn join(values: Vec<Data>) -> Option<Data> {
        if values.len() <= 1 {
            return values.into_iter().next();
        }
        if values.iter().all(|v| matches!(v, Data::Audio(_))) {
            let audio: Vec<&AudioBuffer> = values.iter().filter_map(Data::as_audio).collect();
            if let Some(joined) = AudioBuffer::concat(&audio) {
                return Some(Data::Audio(joined));
            }
        }
        if values
            .iter()
            .all(|v| matches!(v, Data::Json(serde_json::Value::Array(_))))
        {
            let mut all = Vec::new();
            for v in values {
                if let Data::Json(serde_json::Value::Array(items)) = v {
                    all.extend(items);
                }
            }
            return Some(Data::Json(serde_json::Value::Array(all)));
        }
        if values.iter().all(|v| matches!(v, Data::Segments(_))) {
            let mut all = Vec::new();
            for v in values {
                if let Data::Segments(s) = v {
                    all.extend(s);
                }
            }
            return Some(Data::Segments(all));
        }
        Some(Data::List(values))
    }

    /// A JSON rendering for outputs that are not audio; `None` for audio and host objects.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        match self {
            Data::Audio(_) | Data::Object(_) => None,
            Data::Segments(s) => serde_json::to_value(s).ok(),
            Data::Json(v) => Some(v.clone()),
            Data::List(items) => items
                .iter()
                .map(Data::to_json)
                .collect::<Option<Vec<_>>>()
                .map(serde_json::Value::Array),
            Data::Map(m) => m
                .iter()
                .map(|(k, v)| v.to_json().map(|j| (k.clone(), j)))
                .collect::<Option<serde_json::Map<_, _>>>()
                .map(serde_json::Value::Object),
        }
    }
}

impl From<AudioBuffer> for Data {
    fn from(a: AudioBuffer) -> Self {
        Data::Audio(a)
    }
}

/// An empty vector with room for `len` values, or an error naming `who` when the memory
/// cannot be had: large allocations go through here so that running out of memory fails the
/// call instead of aborting the process.
pub fn try_vec<T>(len: usize, who: &str) -> Result<Vec<T>, crate::error::NodeError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|e| {
        crate::error::NodeError::failed(format!(
            "{who}: cannot allocate {len} samples ({} bytes): {e}",
            len.saturating_mul(std::mem::size_of::<T>())
        ))
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_concatenates_audio_of_one_shape_and_lists_the_rest() {
        let a = AudioBuffer::mono_f32(vec![1.0, 2.0], 16000);
        let b = AudioBuffer::mono_f32(vec![3.0], 16000);
        let joined = Data::join(vec![a.clone().into(), b.into()]).unwrap();
        assert_eq!(joined.as_audio().unwrap().frames(), 3);

        let c = AudioBuffer::mono_f32(vec![3.0], 8000);
        let mixed = Data::join(vec![a.into(), c.into()]).unwrap();
        assert!(matches!(mixed, Data::List(ref v) if v.len() == 2));
        assert_eq!(Data::join(vec![]), None);
    }
}
