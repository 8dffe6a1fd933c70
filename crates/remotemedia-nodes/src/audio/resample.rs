//! `AudioResampleNode`: sample-rate conversion, streaming and delay-compensated, on a
//! [`StreamResampler`] in the precision of the input's sample format.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use remotemedia_core::data::{
    convert, try_vec, AudioBuffer, Data, SampleFormat, Samples, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE,
};
use remotemedia_core::error::{InputError, NodeError};
use remotemedia_core::node::{audio_input, check_stream_format, check_stream_shape, Node};
use remotemedia_core::registry::{NodeDef, NodeParams};

pub use crate::dsp::resample::{polyphase_taps, ResampleEngine, ResampleQuality, StreamResampler};

/// Parameters of `AudioResampleNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResampleParams {
    /// Output sample rate in Hz, an integer in 8000..=384000.
    #[schemars(range(min = MIN_SAMPLE_RATE, max = MAX_SAMPLE_RATE), extend("x-unit" = "Hz"))]
    pub target_rate: u32,
    /// "fast", "medium" or "high" (default).
    #[serde(default)]
    pub quality: ResampleQuality,
}

impl NodeParams for ResampleParams {}

/// The engine for one stream, in the precision the input format needs: f32 for f32/i16
/// input, f64 for f64/i32 input (i32 has more precision than f32's 24-bit mantissa).
enum Engine {
    F32(StreamResampler<f32>),
    F64(StreamResampler<f64>),
}

struct Stream {
    rate_in: u32,
    channels: u16,
    format: SampleFormat,
    /// `None` when the input is already at the target rate.
    engine: Option<Engine>,
}

/// Largest magnitude an f32 sample may have. realfft refuses (and rubato then panics on) a
/// spectrum whose DC bin has a non-zero imaginary part, which is what an FFT that overflowed
/// to Inf (Inf - Inf = NaN) produces. The forward FFT sums up to ~2e5 samples (the longest
/// block, 48000 -> 44101) and the inverse as many again, so 1e25 keeps every intermediate
/// below 1e36, under f32::MAX (3.4e38). Larger values are refused, never clamped; f64 audio
/// takes them (its bound is 1e290).
const MAX_ABS_F32: f32 = 1e25;
/// The same bound for the f64 engine (f64::MAX is 1.8e308).
const MAX_ABS_F64: f64 = 1e290;

/// Refuses samples the FFT resampler cannot take: NaN and infinities (they would spread to
/// the whole block and make rubato panic) and finite values too large for its FFT. Integer
/// samples are always in range.
fn check_resampleable(samples: &Samples) -> Result<(), NodeError> {
    // A branch-free pass first (it vectorises; NaN fails `<=`), the position only on failure.
    fn all_within<T: Copy + PartialOrd>(b: &[T], abs: impl Fn(T) -> T, limit: T) -> bool {
        b.chunks(256)
            .all(|c| c.iter().fold(true, |ok, &x| ok & (abs(x) <= limit)))
    }
    let bad = match samples {
        Samples::F32(b) if all_within(b, f32::abs, MAX_ABS_F32) => None,
        Samples::F64(b) if all_within(b, f64::abs, MAX_ABS_F64) => None,
        Samples::F32(b) => b
            .iter()
            .position(|x| !x.is_finite() || x.abs() > MAX_ABS_F32)
            .map(|i| (i, b[i] as f64, MAX_ABS_F32 as f64)),
        Samples::F64(b) => b
            .iter()
            .position(|x| !x.is_finite() || x.abs() > MAX_ABS_F64)
            .map(|i| (i, b[i], MAX_ABS_F64)),
        Samples::I16(_) | Samples::I32(_) => None,
    };
    match bad {
        None => Ok(()),
        Some((index, value, _)) if !value.is_finite() => {
            Err(InputError::NotFinite { index, value }.into())
        }
        Some((i, v, limit)) => Err(NodeError::invalid_input(format!(
            "input sample {i} (interleaved index in this chunk) is {v:e}, \
             beyond the resampler's +-{limit:e} for this sample format; scale the audio down \
             or send it as f64"
        ))),
    }
}

/// Resamples audio to `target_rate` (see module docs).
pub struct ResampleNode {
    params: ResampleParams,
    /// Kept across sessions (planning an FFT is expensive); reset at `start`.
    stream: Option<Stream>,
    /// Whether the current session has seen audio (and so fixed its shape).
    active: bool,
}

impl ResampleNode {
    /// Builds the node.
    pub fn new(params: ResampleParams) -> Self {
        Self {
            params,
            stream: None,
            active: false,
        }
    }

    fn open(&self, audio: &AudioBuffer) -> Result<Stream, NodeError> {
        let (rate_in, ch) = (audio.sample_rate(), audio.channels() as usize);
        let q = self.params.quality;
        let to = self.params.target_rate;
        let err = NodeError::failed;
        let engine = match audio.format() {
            _ if rate_in == to => None,
            SampleFormat::F32 | SampleFormat::I16 => Some(Engine::F32(
                StreamResampler::new(q, rate_in, to, ch).map_err(err)?,
            )),
            SampleFormat::F64 | SampleFormat::I32 => Some(Engine::F64(
                StreamResampler::new(q, rate_in, to, ch).map_err(err)?,
            )),
        };
        Ok(Stream {
            rate_in,
            channels: audio.channels(),
            format: audio.format(),
            engine,
        })
    }

    fn wrap(&self, stream: &Stream, out32: Vec<f32>, out64: Vec<f64>) -> Data {
        let samples = match stream.format {
            SampleFormat::F32 => Samples::F32(out32.into()),
            SampleFormat::I16 => Samples::I16(convert::f32_to_i16(&out32).into()),
            SampleFormat::F64 => Samples::F64(out64.into()),
            SampleFormat::I32 => Samples::I32(convert::f64_to_i32(&out64).into()),
        };
        Data::Audio(
            AudioBuffer::new(samples, self.params.target_rate, stream.channels)
                .expect("resampler output is whole frames"),
        )
    }
}

impl NodeDef for ResampleNode {
    const NAME: &'static str = "AudioResampleNode";
    const DESCRIPTION: &'static str = "Converts audio to `target_rate` Hz (any rate pair, any channel count) with a band-limited\n\
     resampler (polyphase FIR or FFT, whichever is faster for the pair).\n\
     \n\
     Output length is `ceil(n * target_rate / source_rate)`; the filter delay is compensated, so\n\
     output lines up with input; the sample format is kept. `quality` \"fast\", \"medium\" or \"high\"\n\
     (all band-limited) trade latency for passband width and alias rejection (docs/resampling.md).";
    type Params = ResampleParams;
    fn build(params: ResampleParams) -> Self {
        Self::new(params)
    }
}

#[async_trait]
impl Node for ResampleNode {
    /// Output frames `ceil(n * target / rate)` plus one engine block of slack (at most 20 ms
    /// of pending input, rounded up to 50 ms), in the engine's precision (f32 for f32/i16,
    /// f64 for f64/i32) plus the integer output and the converted input for integer formats.
    fn output_bytes(&self, input: &Data) -> u64 {
        let Some(audio) = input.as_audio() else {
            return 0;
        };
        let rate_in = audio.sample_rate() as u64;
        let to = self.params.target_rate as u64;
        if rate_in == to || rate_in == 0 {
            return 0;
        }
        let ch = audio.channels() as u64;
        let frames = audio.frames() as u64;
        let out_frames = (frames.saturating_mul(to)).div_ceil(rate_in) + to.div_ceil(20);
        let (engine, integer) = match audio.format() {
            SampleFormat::F32 => (4, 0),
            SampleFormat::I16 => (4, 2),
            SampleFormat::F64 => (8, 0),
            SampleFormat::I32 => (8, 4),
        };
        let out = out_frames
            .saturating_mul(ch)
            .saturating_mul(engine + integer);
        let converted_in = if integer > 0 { frames * ch * engine } else { 0 };
        out.saturating_add(converted_in)
    }

    fn output_size(&self, input: &Data) -> Option<u64> {
        let audio = input.as_audio()?;
        let rate_in = audio.sample_rate() as u64;
        let to = self.params.target_rate as u64;
        if rate_in == to || rate_in == 0 {
            return None;
        }
        let out_frames = (audio.frames() as u64).saturating_mul(to).div_ceil(rate_in);
        Some(
            out_frames
                .saturating_mul(audio.channels() as u64)
                .saturating_mul(audio.format().bytes_per_sample() as u64),
        )
    }

    async fn start(&mut self) -> Result<(), NodeError> {
        match self.stream.as_mut().and_then(|s| s.engine.as_mut()) {
            Some(Engine::F32(r)) => r.reset(),
            Some(Engine::F64(r)) => r.reset(),
            None => {}
        }
        self.active = false;
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let audio = audio_input(&input)?;
        if audio.sample_rate() != self.params.target_rate {
            // Before any state changes, so a refused chunk leaves the stream as it was.
            check_resampleable(audio.samples())?;
        }
        let shape = self.stream.as_ref().map(|s| (s.rate_in, s.channels));
        if self.active {
            check_stream_shape(shape, audio)?;
            check_stream_format(self.stream.as_ref().map(|s| s.format), audio)?;
        } else {
            let same = self.stream.as_ref().is_some_and(|s| {
                (s.rate_in, s.channels, s.format)
                    == (audio.sample_rate(), audio.channels(), audio.format())
            });
            if !same {
                self.stream = Some(self.open(audio)?);
            }
            self.active = true;
        }
        let stream = self.stream.as_mut().expect("opened above");
        let Some(engine) = stream.engine.as_mut() else {
            // Same rate: nothing to do, and no copy.
            return Ok(Some(input));
        };
        // Reserved up front, fallibly: the output of a large upsample must fail the call, not
        // abort the process, when memory runs out.
        let want = (audio.frames() as u64 * self.params.target_rate as u64)
            .div_ceil(stream.rate_in as u64)
            .saturating_add(self.params.target_rate.div_ceil(20) as u64)
            .saturating_mul(stream.channels as u64) as usize;
        let (mut o32, mut o64) = match engine {
            Engine::F32(_) => (try_vec(want, "AudioResampleNode")?, Vec::new()),
            Engine::F64(_) => (Vec::new(), try_vec(want, "AudioResampleNode")?),
        };
        match (engine, audio.samples()) {
            (Engine::F32(r), Samples::F32(b)) => r.push(b, &mut o32),
            (Engine::F32(r), Samples::I16(b)) => r.push(&convert::i16_to_f32(b), &mut o32),
            (Engine::F64(r), Samples::F64(b)) => r.push(b, &mut o64),
            (Engine::F64(r), Samples::I32(b)) => r.push(&convert::i32_to_f64(b), &mut o64),
            _ => unreachable!("engine precision follows the stream format"),
        }
        let stream = self.stream.as_ref().expect("opened above");
        Ok(Some(self.wrap(stream, o32, o64)))
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let Some(stream) = self.stream.as_mut().filter(|_| self.active) else {
            return Ok(None);
        };
        let Some(engine) = stream.engine.as_mut() else {
            return Ok(None);
        };
        let (mut o32, mut o64) = (Vec::new(), Vec::new());
        match engine {
            Engine::F32(r) => r.flush(&mut o32),
            Engine::F64(r) => r.flush(&mut o64),
        }
        let stream = self.stream.as_ref().expect("checked above");
        Ok(Some(self.wrap(stream, o32, o64)))
    }
}
