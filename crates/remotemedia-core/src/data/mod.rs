//! What flows along a pipeline's edges.

mod audio;
mod buffer;
pub mod convert;

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use audio::{
    AudioBuffer, AudioError, Sample, SampleFormat, Samples, MAX_CHANNELS, MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
};
pub use buffer::{ForeignOwner, SampleBuf};

/// A stretch of detected speech, the one segment type of every VAD node.
///
/// Held as sample positions at the input's rate (exact); milliseconds and seconds are derived
/// from them, so every rendering (Rust, Python, the CLI's JSON, gRPC) agrees to the sample.
/// Serialized as `{start_ms, end_ms, start_s, end_s, start_sample, end_sample, sample_rate}`
/// plus `confidence` and `energy_db` when the detector gives them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(into = "SegmentRecord", try_from = "SegmentRecord")]
pub struct Segment {
    /// First sample (frame) of the segment, at `sample_rate`, from the start of the stream.
    pub start_sample: u64,
    /// One past the last sample (exclusive end), at `sample_rate`.
    pub end_sample: u64,
    /// The input's sample rate in Hz, which the sample positions count in.
    pub sample_rate: u32,
    /// The detector's confidence (0..1) that this is speech, where it gives one
    /// (`SpeechVADNode`: the mean speech probability of the segment's frames, padding excluded).
    pub confidence: Option<f64>,
    /// The segment's level in dBFS (RMS over all its samples, floored at -120), where the
    /// detector measures it (`VADNode`).
    pub energy_db: Option<f64>,
}

impl Segment {
    /// A segment `[start_sample, end_sample)` at `sample_rate`, with neither confidence nor
    /// energy.
    pub fn new(start_sample: u64, end_sample: u64, sample_rate: u32) -> Self {
        Self {
            start_sample,
            end_sample,
            sample_rate,
            confidence: None,
            energy_db: None,
        }
    }

    /// Start in milliseconds.
    pub fn start_ms(&self) -> f64 {
        self.start_sample as f64 * 1000.0 / self.sample_rate as f64
    }

    /// End (exclusive) in milliseconds.
    pub fn end_ms(&self) -> f64 {
        self.end_sample as f64 * 1000.0 / self.sample_rate as f64
    }

    /// Start in seconds.
    pub fn start_s(&self) -> f64 {
        self.start_sample as f64 / self.sample_rate as f64
    }

    /// End (exclusive) in seconds.
    pub fn end_s(&self) -> f64 {
        self.end_sample as f64 / self.sample_rate as f64
    }

    /// Length in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        self.end_ms() - self.start_ms()
    }
}

/// The wire form of [`Segment`]: what JSON, the schema and other hosts see.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentRecord {
    /// Start, in milliseconds from the start of the stream.
    start_ms: f64,
    /// End (exclusive), in milliseconds.
    end_ms: f64,
    /// Start, in seconds.
    start_s: f64,
    /// End (exclusive), in seconds.
    end_s: f64,
    /// First sample, at `sample_rate`.
    start_sample: u64,
    /// One past the last sample, at `sample_rate`.
    end_sample: u64,
    /// The input's sample rate in Hz.
    sample_rate: u32,
    /// The detector's speech confidence (0..1), where it gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confidence: Option<f64>,
    /// The segment's level in dBFS, where the detector measures it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    energy_db: Option<f64>,
}

impl From<Segment> for SegmentRecord {
    fn from(s: Segment) -> Self {
        Self {
            start_ms: s.start_ms(),
            end_ms: s.end_ms(),
            start_s: s.start_s(),
            end_s: s.end_s(),
            start_sample: s.start_sample,
            end_sample: s.end_sample,
            sample_rate: s.sample_rate,
            confidence: s.confidence,
            energy_db: s.energy_db,
        }
    }
}

impl TryFrom<SegmentRecord> for Segment {
    type Error = String;
    /// The sample positions are the truth; the derived times must agree with them.
    fn try_from(r: SegmentRecord) -> Result<Self, String> {
        let s = Segment {
            start_sample: r.start_sample,
            end_sample: r.end_sample,
            sample_rate: r.sample_rate,
            confidence: r.confidence,
            energy_db: r.energy_db,
        };
        s.check()?;
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
        if !(close(r.start_ms, s.start_ms())
            && close(r.end_ms, s.end_ms())
            && close(r.start_s, s.start_s())
            && close(r.end_s, s.end_s()))
        {
            return Err(format!(
                "segment times disagree with its samples: start_ms {} / end_ms {} / start_s {} / \
                 end_s {} but samples {}..{} at {} Hz",
                r.start_ms,
                r.end_ms,
                r.start_s,
                r.end_s,
                r.start_sample,
                r.end_sample,
                r.sample_rate
            ));
        }
        Ok(s)
    }
}

impl Segment {
    /// Checks the invariants: a valid sample rate and `start_sample <= end_sample`.
    pub fn check(&self) -> Result<(), String> {
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&self.sample_rate) {
            return Err(format!(
                "segment sample_rate {} Hz is out of range; valid: {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE}",
                self.sample_rate
            ));
        }
        if self.start_sample > self.end_sample {
            return Err(format!(
                "segment start_sample {} is after end_sample {}",
                self.start_sample, self.end_sample
            ));
        }
        Ok(())
    }
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
    fn sample_trait_picks_wraps_and_rounds_each_type() {
        fn round_trip<T: Sample>(v: Vec<T>) {
            let s: Samples = v.clone().into();
            assert_eq!(s.format(), T::FORMAT);
            assert_eq!(T::buf(&s).unwrap().as_slice(), &v[..]);
        }
        round_trip(vec![0.5f32, -1.0]);
        round_trip(vec![0.25f64]);
        round_trip(vec![1i16, -32768]);
        round_trip(vec![7i32]);
        assert!(f32::buf(&Samples::from(vec![1i16])).is_none());
        // Unscaled values; integers round half to even and saturate.
        assert_eq!(i16::from_f64(2.5), 2);
        assert_eq!(i16::from_f64(-3.5), -4);
        assert_eq!(i16::from_f64(1e9), i16::MAX);
        assert_eq!(i32::from_f64(-1e12), i32::MIN);
        assert_eq!(f32::from_f64(0.1), 0.1f32);
        assert_eq!(i16::to_f64(-3), -3.0);
    }

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

    #[test]
    fn a_segment_serializes_its_times_from_its_samples_and_reads_back() {
        let s = Segment {
            confidence: Some(0.75),
            ..Segment::new(22_050, 66_150, 44_100)
        };
        let v = serde_json::to_value(s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "start_ms": 500.0, "end_ms": 1500.0, "start_s": 0.5, "end_s": 1.5,
                "start_sample": 22_050, "end_sample": 66_150, "sample_rate": 44_100,
                "confidence": 0.75,
            })
        );
        assert_eq!(serde_json::from_value::<Segment>(v).unwrap(), s);
    }

    #[test]
    fn a_segment_whose_times_disagree_with_its_samples_is_refused() {
        let mut v = serde_json::to_value(Segment::new(0, 16_000, 16_000)).unwrap();
        v["end_ms"] = serde_json::json!(2000.0);
        let e = serde_json::from_value::<Segment>(v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("disagree"), "{e}");
        let e = Segment::new(5, 4, 16_000).check().unwrap_err();
        assert!(e.contains("start_sample 5 is after end_sample 4"), "{e}");
        let e = Segment::new(0, 4, 0).check().unwrap_err();
        assert!(e.contains("sample_rate 0 Hz"), "{e}");
    }
}
