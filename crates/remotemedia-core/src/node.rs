//! The [`Node`] trait: stateful, chunk-aware processing units.

use async_trait::async_trait;

use crate::data::{AudioBuffer, Data, SampleFormat, Samples};
use crate::error::{InputError, NodeError};

/// Where a node runs; reported in metrics so a silent fallback is visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Native Rust code.
    Rust,
    /// Code of the embedding host language, named by the binding (e.g. `"python"`).
    Host(&'static str),
    /// Another process, reached over the network.
    Remote,
}

impl Runtime {
    /// The name reported in metrics and listings: "rust", "remote", or the host's name.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Rust => "rust",
            Runtime::Host(name) => name,
            Runtime::Remote => "remote",
        }
    }
}

impl serde::Serialize for Runtime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A processing step. Nodes are stateful and see a stream as a sequence of chunks:
/// `start`, then `process` once per chunk, then `flush` at end of stream. A whole-input run is
/// one chunk plus `flush`, so for a correct node the concatenated streamed output equals the
/// whole-input output whatever the chunk sizes.
///
/// A node with several upstream connections receives a [`Data::Map`] keyed by upstream id.
#[async_trait]
pub trait Node: Send {
    /// Prepares for a new stream, dropping any state left by a previous one.
    async fn start(&mut self) -> Result<(), NodeError> {
        Ok(())
    }

    /// Handles one chunk; may emit nothing yet (e.g. while filling an analysis window).
    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError>;

    /// Emits whatever is still buffered at end of stream.
    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        Ok(None)
    }

    /// Called after the stream ends, whether it succeeded or not.
    async fn stop(&mut self) {}

    /// Told once, when the pipeline is built, the ids of the nodes feeding this one. A fan-in
    /// node uses it to know which inputs to wait for (an upstream that has not emitted yet is
    /// absent from the [`Data::Map`] it receives).
    fn connect_inputs(&mut self, _upstream: &[String]) {}

    /// Where this node's work runs.
    fn runtime(&self) -> Runtime {
        Runtime::Rust
    }

    /// An upper bound, in bytes, on what `process(input)` will allocate: its output plus any
    /// working buffers that scale with the input. The executor asks before the call and
    /// refuses a call (or a run) whose bound is over its [limits](crate::executor::ResourceLimits),
    /// so a request too large for the process fails with an error instead of aborting it.
    ///
    /// The default, the size of the input (see [`data_bytes`]) plus an f64 working copy of
    /// its samples, fits nodes whose output is the same shape as their input (gain, filters,
    /// fades) and nodes whose output is smaller (analysis). A node whose output can be larger
    /// than its input (resampling up, channel up-mix, a wider sample format) overrides it.
    /// `flush` is not asked: what it emits is what the node already holds.
    fn output_bytes(&self, input: &Data) -> u64 {
        data_bytes(input).saturating_add(data_samples(input).saturating_mul(8))
    }

    /// The size, in bytes, of what `process(input)` will return, for nodes whose output can
    /// be larger than their input (resampling up, channel up-mix, a wider sample format): the
    /// executor checks a sink's announced output against `max_output_bytes` before the call.
    /// `None` (the default) means "no larger than the input"; such output is counted when it
    /// arrives, so an analysis node (VAD events) is never refused for its input's size.
    fn output_size(&self, _input: &Data) -> Option<u64> {
        None
    }

    /// For a node that holds the stream back until `flush` (a whole-stream mode: peak
    /// normalisation, two-pass loudness): its `output_bytes` counts everything it holds plus
    /// what `flush` will allocate, so the limits bound what it holds, and this is the advice
    /// the limit error gives instead of "send smaller chunks" (which does not help such a
    /// node). `None` (the default) for nodes that do not hold.
    fn holding_advice(&self) -> Option<String> {
        None
    }
}

/// The size of a value's samples, in bytes (audio: samples x bytes per sample; a map or list:
/// the sum of its values; anything else: 0, as JSON and segment lists are small next to audio).
pub fn data_bytes(data: &Data) -> u64 {
    match data {
        Data::Audio(a) => a.byte_len() as u64,
        Data::Map(m) => m.values().map(data_bytes).sum(),
        Data::List(l) => l.iter().map(data_bytes).sum(),
        _ => 0,
    }
}

/// The number of audio samples (frames x channels) in a value, counted like [`data_bytes`].
pub fn data_samples(data: &Data) -> u64 {
    match data {
        Data::Audio(a) => a.samples().len() as u64,
        Data::Map(m) => m.values().map(data_samples).sum(),
        Data::List(l) => l.iter().map(data_samples).sum(),
        _ => 0,
    }
}

/// The prologue of an audio node that keeps stream state, written once: the chunk is one audio
/// input ([`expect_audio`]), at a supported rate ([`check_input_rate`]), with the rate and
/// channel count of the stream's first chunk ([`check_stream_shape`]). A node holds one,
/// calls [`accept`](Self::accept) on every chunk and [`reset`](Self::reset) when its stream
/// ends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamShape(Option<(u32, u16)>);

impl StreamShape {
    /// Runs the checks on `input` and returns its audio; the first chunk sets the shape.
    pub fn accept<'a>(&mut self, input: &'a Data) -> Result<&'a AudioBuffer, NodeError> {
        let audio = audio_input(input)?;
        check_stream_shape(self.0, audio)?;
        self.0
            .get_or_insert((audio.sample_rate(), audio.channels()));
        Ok(audio)
    }

    /// The stream's (rate, channels), once its first chunk arrived.
    pub fn get(&self) -> Option<(u32, u16)> {
        self.0
    }

    /// Forgets the stream (the next chunk starts a new one).
    pub fn reset(&mut self) {
        self.0 = None;
    }
}

/// The prologue of an audio node without stream state: one audio input at a supported rate.
pub fn audio_input(input: &Data) -> Result<&AudioBuffer, NodeError> {
    let audio = expect_audio(input)?;
    check_input_rate(audio.sample_rate())?;
    Ok(audio)
}

/// Takes the single audio input of a native node, or explains what it got instead.
pub fn expect_audio(input: &Data) -> Result<&AudioBuffer, NodeError> {
    let got = || input.describe();
    Err(match input {
        Data::Audio(a) => return Ok(a),
        Data::Map(_) => InputError::OneInput { got: got() },
        // A host object (a Python list, say) given where audio was meant: say what audio is.
        Data::Object(_) => InputError::HostValueNotAudio { got: got() },
        _ => InputError::NotAudio { got: got() },
    }
    .into())
}

/// Checks that a chunk matches the stream's first chunk in rate and channel count (a stream
/// cannot change shape midway: resampler and analysis state would be meaningless).
pub fn check_stream_shape(first: Option<(u32, u16)>, audio: &AudioBuffer) -> Result<(), NodeError> {
    if let Some((rate, channels)) = first {
        if rate != audio.sample_rate() {
            return Err(InputError::RateChanged {
                from: rate,
                to: audio.sample_rate(),
            }
            .into());
        }
        if channels != audio.channels() {
            return Err(InputError::ChannelsChanged {
                from: channels,
                to: audio.channels(),
            }
            .into());
        }
    }
    Ok(())
}

/// Checks that a stream keeps its sample format (`first`: the stream's, once known).
pub fn check_stream_format(
    first: Option<SampleFormat>,
    audio: &AudioBuffer,
) -> Result<(), NodeError> {
    match first {
        Some(f) if f != audio.format() => Err(InputError::FormatChanged {
            from: f.as_str(),
            to: audio.format().as_str(),
        }
        .into()),
        _ => Ok(()),
    }
}

/// Checks that float audio holds no NaN or infinity (integer audio cannot).
pub fn check_finite(audio: &AudioBuffer) -> Result<(), NodeError> {
    // A branch-free pass first (it vectorises), the position only on failure.
    fn first_bad<T: Copy + Into<f64>>(b: &[T], finite: impl Fn(T) -> bool) -> Option<(usize, f64)> {
        if b.chunks(256)
            .all(|c| c.iter().fold(true, |ok, &x| ok & finite(x)))
        {
            return None;
        }
        b.iter().position(|&x| !finite(x)).map(|i| (i, b[i].into()))
    }
    let bad = match audio.samples() {
        Samples::F32(b) => first_bad(b, f32::is_finite),
        Samples::F64(b) => first_bad(b, f64::is_finite),
        Samples::I16(_) | Samples::I32(_) => None,
    };
    match bad {
        Some((index, value)) => Err(InputError::NotFinite { index, value }.into()),
        None => Ok(()),
    }
}

/// Checks that an input rate is in the supported range.
pub fn check_input_rate(rate: u32) -> Result<(), NodeError> {
    use crate::data::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        return Err(InputError::RateOutOfRange { rate }.into());
    }
    Ok(())
}
