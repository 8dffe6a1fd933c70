//! Audio buffers: interleaved samples with their rate, channel count and sample format.

use std::fmt;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::buffer::SampleBuf;
use super::convert;
use super::Segment;

/// Lowest sample rate any node accepts, in Hz.
pub const MIN_SAMPLE_RATE: u32 = 8_000;
/// Highest sample rate any node accepts, in Hz.
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// Most channels an audio buffer may carry.
pub const MAX_CHANNELS: u16 = 64;

/// How one sample is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SampleFormat {
    /// 32-bit float, full scale is [-1.0, 1.0].
    F32,
    /// 16-bit signed integer, full scale is [-32768, 32767].
    I16,
    /// 32-bit signed integer, full scale is [-2^31, 2^31 - 1].
    I32,
    /// 64-bit float, full scale is [-1.0, 1.0].
    F64,
}

impl SampleFormat {
    /// Every format, in a stable order.
    pub const ALL: [SampleFormat; 4] = [Self::F32, Self::I16, Self::I32, Self::F64];

    /// Lower-case name as used in manifests ("f32", "i16", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::I16 => "i16",
            Self::I32 => "i32",
            Self::F64 => "f64",
        }
    }

    /// Bytes per sample.
    pub fn bytes_per_sample(self) -> usize {
        match self {
            Self::I16 => 2,
            Self::F32 | Self::I32 => 4,
            Self::F64 => 8,
        }
    }

    /// Parses "f32" / "i16" / "i32" / "f64".
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for SampleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Interleaved samples in one of the supported formats.
#[derive(Clone, PartialEq)]
pub enum Samples {
    /// 32-bit float samples.
    F32(SampleBuf<f32>),
    /// 16-bit integer samples.
    I16(SampleBuf<i16>),
    /// 32-bit integer samples.
    I32(SampleBuf<i32>),
    /// 64-bit float samples.
    F64(SampleBuf<f64>),
}

/// Applies an expression to whichever typed buffer a [`Samples`] holds.
#[macro_export]
macro_rules! with_samples {
    ($samples:expr, $buf:ident => $body:expr) => {
        match $samples {
            $crate::data::Samples::F32($buf) => $body,
            $crate::data::Samples::I16($buf) => $body,
            $crate::data::Samples::I32($buf) => $body,
            $crate::data::Samples::F64($buf) => $body,
        }
    };
}

impl Samples {
    /// The sample format.
    pub fn format(&self) -> SampleFormat {
        match self {
            Self::F32(_) => SampleFormat::F32,
            Self::I16(_) => SampleFormat::I16,
            Self::I32(_) => SampleFormat::I32,
            Self::F64(_) => SampleFormat::F64,
        }
    }

    /// Number of samples (frames x channels).
    pub fn len(&self) -> usize {
        with_samples!(self, b => b.len())
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Converts to `format` with the documented scaling (see [`convert`]); O(1) when the
    /// format is already `format`.
    pub fn to_format(&self, format: SampleFormat) -> Samples {
        if self.format() == format {
            return self.clone();
        }
        match format {
            SampleFormat::F32 => Samples::F32(self.to_f32_vec().into()),
            SampleFormat::F64 => Samples::F64(self.to_f64_vec().into()),
            SampleFormat::I16 => Samples::I16(
                match self {
                    Self::F32(b) => convert::f32_to_i16(b),
                    Self::F64(b) => convert::f64_to_i16(b),
                    Self::I32(b) => convert::i32_to_i16(b),
                    Self::I16(b) => b.to_vec(),
                }
                .into(),
            ),
            SampleFormat::I32 => Samples::I32(
                match self {
                    Self::F32(b) => convert::f32_to_i32(b),
                    Self::F64(b) => convert::f64_to_i32(b),
                    Self::I16(b) => convert::i16_to_i32(b),
                    Self::I32(b) => b.to_vec(),
                }
                .into(),
            ),
        }
    }

    /// The samples as `f32` in [-1, 1] full scale (a new vector).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match self {
            Self::F32(b) => b.to_vec(),
            Self::F64(b) => convert::f64_to_f32(b),
            Self::I16(b) => convert::i16_to_f32(b),
            Self::I32(b) => convert::i32_to_f32(b),
        }
    }

    /// The samples as `f64` in [-1, 1] full scale (a new vector).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        match self {
            Self::F32(b) => convert::f32_to_f64(b),
            Self::F64(b) => b.to_vec(),
            Self::I16(b) => convert::i16_to_f64(b),
            Self::I32(b) => convert::i32_to_f64(b),
        }
    }

    /// An empty buffer of the given format.
    pub fn empty(format: SampleFormat) -> Samples {
        match format {
            SampleFormat::F32 => Samples::F32(Vec::new().into()),
            SampleFormat::I16 => Samples::I16(Vec::new().into()),
            SampleFormat::I32 => Samples::I32(Vec::new().into()),
            SampleFormat::F64 => Samples::F64(Vec::new().into()),
        }
    }

    /// Concatenates buffers of one format. Returns `None` when formats differ.
    pub fn concat(parts: &[&Samples]) -> Option<Samples> {
        let first = parts.first()?;
        let format = first.format();
        if parts.iter().any(|p| p.format() != format) {
            return None;
        }
        if parts.len() == 1 {
            return Some((*first).clone());
        }
        fn join<T: Copy + Send + Sync + 'static>(
            parts: &[&Samples],
            get: impl Fn(&Samples) -> &[T],
        ) -> Vec<T> {
            let total = parts.iter().map(|p| p.len()).sum();
            let mut out = Vec::with_capacity(total);
            for p in parts {
                out.extend_from_slice(get(p));
            }
            out
        }
        Some(match format {
            SampleFormat::F32 => Samples::F32(
                join(parts, |s| match s {
                    Samples::F32(b) => b,
                    _ => unreachable!(),
                })
                .into(),
            ),
            SampleFormat::I16 => Samples::I16(
                join(parts, |s| match s {
                    Samples::I16(b) => b,
                    _ => unreachable!(),
                })
                .into(),
            ),
            SampleFormat::I32 => Samples::I32(
                join(parts, |s| match s {
                    Samples::I32(b) => b,
                    _ => unreachable!(),
                })
                .into(),
            ),
            SampleFormat::F64 => Samples::F64(
                join(parts, |s| match s {
                    Samples::F64(b) => b,
                    _ => unreachable!(),
                })
                .into(),
            ),
        })
    }

    /// Samples `[start, end)` (in samples, not frames) as a new buffer.
    pub fn slice(&self, start: usize, end: usize) -> Samples {
        match self {
            Self::F32(b) => Self::F32(b[start..end].to_vec().into()),
            Self::I16(b) => Self::I16(b[start..end].to_vec().into()),
            Self::I32(b) => Self::I32(b[start..end].to_vec().into()),
            Self::F64(b) => Self::F64(b[start..end].to_vec().into()),
        }
    }
}

impl fmt::Debug for Samples {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        with_samples!(self, b => fmt::Debug::fmt(b, f))
    }
}

/// A type [`Samples`] can hold (`f32`, `f64`, `i16`, `i32`): the data model's one sample
/// trait, so code generic over the sample type picks its buffer out of a `Samples` and puts
/// one back without a four-arm match of its own.
pub trait Sample: Copy + Default + PartialEq + Send + Sync + fmt::Debug + 'static {
    /// The format of a buffer of this type.
    const FORMAT: SampleFormat;
    /// `samples`' buffer when it holds this type.
    fn buf(samples: &Samples) -> Option<&SampleBuf<Self>>;
    /// A buffer of this type as [`Samples`].
    fn wrap(buf: SampleBuf<Self>) -> Samples;
    /// The value as f64, unscaled (an `i16` 3 is 3.0).
    fn to_f64(self) -> f64;
    /// An unscaled f64 value as this type: integers rounded half to even (saturating at the
    /// type's range), floats as the nearest value.
    fn from_f64(v: f64) -> Self;
}

macro_rules! sample_types {
    ($($t:ty => $variant:ident, $round:expr);*) => {$(
        impl Sample for $t {
            const FORMAT: SampleFormat = SampleFormat::$variant;
            fn buf(samples: &Samples) -> Option<&SampleBuf<Self>> {
                match samples {
                    Samples::$variant(b) => Some(b),
                    _ => None,
                }
            }
            fn wrap(buf: SampleBuf<Self>) -> Samples {
                Samples::$variant(buf)
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                let round: fn(f64) -> f64 = $round;
                round(v) as $t
            }
        }
    )*};
}
sample_types!(
    f32 => F32, |v| v;
    f64 => F64, |v| v;
    i16 => I16, f64::round_ties_even;
    i32 => I32, f64::round_ties_even
);

impl<T: Sample> From<Vec<T>> for Samples {
    fn from(v: Vec<T>) -> Self {
        T::wrap(v.into())
    }
}

/// Why an [`AudioBuffer`] could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AudioError {
    /// Channel count of 0 or above [`MAX_CHANNELS`].
    #[error("channels must be in 1..={MAX_CHANNELS}, got {0}")]
    Channels(usize),
    /// Sample rate of 0.
    #[error("sample rate must be a positive integer in Hz, got {0}")]
    SampleRate(u32),
    /// Sample count not a multiple of the channel count.
    #[error("{samples} samples cannot be split into {channels} interleaved channels")]
    Ragged {
        /// Samples given.
        samples: usize,
        /// Channels claimed.
        channels: u16,
    },
}

/// Interleaved audio: `samples[frame * channels + channel]`.
#[derive(Clone, PartialEq, Debug)]
pub struct AudioBuffer {
    samples: Samples,
    sample_rate: u32,
    channels: u16,
    /// Where the frames came from in a node's input, when a node that picks audio out of its
    /// input says so (a VAD's `emit="speech"`): see [`AudioBuffer::origin`].
    origin: Option<Arc<[Segment]>>,
}

impl AudioBuffer {
    /// Builds a buffer, checking that the samples divide into whole frames.
    pub fn new(samples: Samples, sample_rate: u32, channels: u16) -> Result<Self, AudioError> {
        if channels == 0 || channels > MAX_CHANNELS {
            return Err(AudioError::Channels(channels as usize));
        }
        if sample_rate == 0 {
            return Err(AudioError::SampleRate(sample_rate));
        }
        if samples.len() % channels as usize != 0 {
            return Err(AudioError::Ragged {
                samples: samples.len(),
                channels,
            });
        }
        Ok(Self {
            samples,
            sample_rate,
            channels,
            origin: None,
        })
    }

    /// The same audio, saying which input ranges its frames are, in order: the spans' lengths
    /// must add up to [`frames`](Self::frames) (an empty list for no frames).
    pub fn with_origin(mut self, spans: Vec<Segment>) -> Self {
        debug_assert_eq!(
            spans
                .iter()
                .map(|s| s.end_sample - s.start_sample)
                .sum::<u64>(),
            self.frames() as u64,
            "origin spans cover the buffer"
        );
        self.origin = Some(coalesce(spans).into());
        self
    }

    /// The input ranges these frames are, in order (adjacent ranges merged), when the node that
    /// made the buffer picked them out of its input: a VAD's `emit="speech"` output says which
    /// stretches of the input each chunk of speech is. `None` for any other audio.
    pub fn origin(&self) -> Option<&[Segment]> {
        self.origin.as_deref()
    }

    /// A mono `f32` buffer (convenience for tests and examples).
    pub fn mono_f32(samples: Vec<f32>, sample_rate: u32) -> Self {
        Self::new(samples.into(), sample_rate, 1).expect("mono buffer is always valid")
    }

    /// An empty buffer with the given shape.
    pub fn empty(
        format: SampleFormat,
        sample_rate: u32,
        channels: u16,
    ) -> Result<Self, AudioError> {
        Self::new(Samples::empty(format), sample_rate, channels)
    }

    /// The interleaved samples.
    pub fn samples(&self) -> &Samples {
        &self.samples
    }

    /// Takes the samples out.
    pub fn into_samples(self) -> Samples {
        self.samples
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Number of interleaved channels.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Sample format.
    pub fn format(&self) -> SampleFormat {
        self.samples.format()
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels as usize
    }

    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.frames() as f64 / self.sample_rate as f64
    }

    /// Size of the sample data in bytes.
    pub fn byte_len(&self) -> usize {
        self.samples.len() * self.format().bytes_per_sample()
    }

    /// The same audio in another sample format (O(1) when already in it).
    pub fn to_format(&self, format: SampleFormat) -> AudioBuffer {
        AudioBuffer {
            samples: self.samples.to_format(format),
            sample_rate: self.sample_rate,
            channels: self.channels,
            origin: self.origin.clone(),
        }
    }

    /// True when `other` has the same rate, channel count and format (so the two can be joined).
    pub fn same_shape(&self, other: &AudioBuffer) -> bool {
        self.sample_rate == other.sample_rate
            && self.channels == other.channels
            && self.format() == other.format()
    }

    /// Frames `[start, end)` as a new buffer.
    pub fn slice_frames(&self, start: usize, end: usize) -> AudioBuffer {
        let c = self.channels as usize;
        AudioBuffer {
            samples: self.samples.slice(start * c, end * c),
            sample_rate: self.sample_rate,
            channels: self.channels,
            origin: self
                .origin
                .as_deref()
                .map(|o| slice_origin(o, start as u64, end as u64).into()),
        }
    }

    /// `self` followed by `tail` (same shape), reusing `self`'s allocation when nothing else
    /// holds it (a whole-clip node call joins a long head and a short flushed tail without
    /// copying the head). `None` if the shapes differ.
    pub fn appended(self, tail: &AudioBuffer) -> Option<AudioBuffer> {
        if !self.same_shape(tail) {
            return None;
        }
        fn cat<T: Copy + Send + Sync + 'static>(a: SampleBuf<T>, b: &[T]) -> SampleBuf<T> {
            let mut v = a.into_vec();
            v.extend_from_slice(b);
            v.into()
        }
        let origin = joined_origin(&[&self.origin_view(), &tail.origin_view()]);
        let samples = match (self.samples, &tail.samples) {
            (Samples::F32(a), Samples::F32(b)) => Samples::F32(cat(a, b)),
            (Samples::I16(a), Samples::I16(b)) => Samples::I16(cat(a, b)),
            (Samples::I32(a), Samples::I32(b)) => Samples::I32(cat(a, b)),
            (Samples::F64(a), Samples::F64(b)) => Samples::F64(cat(a, b)),
            _ => return None,
        };
        Some(AudioBuffer {
            samples,
            sample_rate: self.sample_rate,
            channels: self.channels,
            origin,
        })
    }

    /// Joins buffers of the same shape; `None` if any shape differs or `parts` is empty.
    pub fn concat(parts: &[&AudioBuffer]) -> Option<AudioBuffer> {
        let first = parts.first()?;
        if parts.iter().any(|p| !p.same_shape(first)) {
            return None;
        }
        let samples: Vec<&Samples> = parts.iter().map(|p| &p.samples).collect();
        let origins: Vec<OriginView<'_>> = parts.iter().map(|p| p.origin_view()).collect();
        let origins: Vec<&OriginView<'_>> = origins.iter().collect();
        Some(AudioBuffer {
            samples: Samples::concat(&samples)?,
            sample_rate: first.sample_rate,
            channels: first.channels,
            origin: joined_origin(&origins),
        })
    }

    fn origin_view(&self) -> OriginView<'_> {
        match (&self.origin, self.frames()) {
            (Some(o), _) => OriginView::Spans(o),
            (None, 0) => OriginView::Empty,
            (None, _) => OriginView::Unknown,
        }
    }
}

/// A part's origin when buffers are joined: an empty buffer has nothing to say, audio without
/// an origin makes the whole join's origin unknown.
enum OriginView<'a> {
    Spans(&'a [Segment]),
    Empty,
    Unknown,
}

/// The origin of joined parts: their spans in order, when every non-empty part has them (and
/// at least one part does).
fn joined_origin(parts: &[&OriginView<'_>]) -> Option<Arc<[Segment]>> {
    let mut spans = Vec::new();
    let mut any = false;
    for p in parts {
        match p {
            OriginView::Spans(s) => {
                any = true;
                spans.extend_from_slice(s);
            }
            OriginView::Empty => {}
            OriginView::Unknown => return None,
        }
    }
    any.then(|| coalesce(spans).into())
}

/// Spans with adjacent ones (one's end is the next's start, at one rate) merged and empty ones
/// dropped.
fn coalesce(spans: Vec<Segment>) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::with_capacity(spans.len());
    for s in spans.into_iter().filter(|s| s.end_sample > s.start_sample) {
        match out.last_mut() {
            Some(last)
                if last.end_sample == s.start_sample && last.sample_rate == s.sample_rate =>
            {
                last.end_sample = s.end_sample
            }
            _ => out.push(Segment::new(s.start_sample, s.end_sample, s.sample_rate)),
        }
    }
    out
}

/// The spans of output frames `[start, end)` of a buffer whose frames are `spans`.
fn slice_origin(spans: &[Segment], start: u64, end: u64) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut at = 0u64; // output frame where the current span starts
    for s in spans {
        let len = s.end_sample - s.start_sample;
        let (a, b) = (start.max(at), end.min(at + len));
        if a < b {
            out.push(Segment::new(
                s.start_sample + (a - at),
                s.start_sample + (b - at),
                s.sample_rate,
            ));
        }
        at += len;
    }
    out
}
