//! `AudioResampleNode`: sample-rate conversion, streaming and delay-compensated.
//!
//! [`StreamResampler`] runs one of two engines, picked per rate pair by [`default_engine`]:
//! the polyphase FIR in `polyphase.rs` or rubato 5's FFT resampler ([`RubatoStream`]).
//!
//! rubato resamplers take fixed-size chunks. [`RubatoStream`] accepts any chunk size: it
//! re-cuts the stream into the resampler's chunk size (the last partial chunk is padded at
//! `flush`), drops the resampler's startup delay from the front of the output, and pads the
//! tail so the total output is exactly `ceil(n * out / in)` frames. Because the re-cutting
//! depends only on the stream position, streamed output is bit-identical to whole-input output.
//!
//! Real-time rules (rubato README, "Real-time considerations"): after the first chunk no
//! allocation happens inside rubato (`process_into_buffer` into a pre-allocated scratch); the
//! only allocation per call is the output vector handed downstream.

use async_trait::async_trait;
use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler, Sample, WindowFunction};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use remotemedia_core::data::{
    convert, try_vec, AudioBuffer, Data, SampleFormat, Samples, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE,
};
use remotemedia_core::error::NodeError;
use remotemedia_core::node::{check_input_rate, check_stream_shape, expect_audio, Node};
use remotemedia_core::registry::{NodeDef, NodeParams};

mod polyphase;

/// Speed/quality trade-off. Each pair runs on the faster of two engines (a polyphase FIR, or
/// rubato's FFT resampler where that is faster); figures per pair,
/// including the streaming latency (1-6 ms on the FIR, up to about 30 ms on rubato at
/// `high`), are in `docs/resampling.md`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResampleQuality {
    /// Shortest filters: lowest latency and CPU; at least 100 dB alias rejection, but the
    /// passband rolls off near Nyquist (flat to 0.75 x the lower Nyquist frequency).
    Fast,
    /// At least 100 dB alias rejection, passband flat to 0.875 x the lower Nyquist frequency.
    Medium,
    /// At least 120 dB alias rejection (131-145 dB measured) and a passband flat within
    /// 0.1 dB to 0.875 x the lower Nyquist frequency.
    #[default]
    High,
}

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

/// Input frames per resampler call: about `target_ms` of input, as `k` times the rate pair's
/// smallest block (`rate_in / gcd`), so the FFT blocks tile it exactly. `k` is even, so both
/// FFT sizes are even (with an odd size the filter's centre falls between samples and the
/// output shifts by half an input sample), and 5-smooth, so the FFT lengths factor into 2, 3
/// and 5 only (an FFT of length 2052 = 2^2 * 3^3 * 19 is twice as slow as one of 1920).
fn chunk_frames(rate_in: u32, rate_out: u32, target_ms: u32) -> usize {
    let block = (rate_in / gcd(rate_in, rate_out)) as usize;
    let target = (rate_in as usize * target_ms as usize / 1000).max(1);
    let mut k = target.div_ceil(block).max(2);
    while k % 2 == 1 || !is_5_smooth(k) {
        k += 1;
    }
    k * block
}

fn is_5_smooth(mut n: usize) -> bool {
    for p in [2, 3, 5] {
        while n % p == 0 {
            n /= p;
        }
    }
    n == 1
}

use polyphase::gcd;

/// The rubato configuration for each quality level, chosen by measurement (see
/// `docs/resampling.md`): all three are rubato's synchronous FFT resampler with one FFT block
/// per chunk (`sub_chunks = 1`; rubato's `Fft::new` splits chunks into ~256-frame blocks,
/// which at 3:1 puts the cutoff below 7 kHz). Longer blocks mean a sharper filter and more
/// latency; CPU cost is nearly the same for all three.
fn build_engine<T: Sample>(
    quality: ResampleQuality,
    rate_in: u32,
    rate_out: u32,
    channels: usize,
) -> Result<Box<dyn Resampler<T>>, String> {
    let (target_ms, window) = match quality {
        ResampleQuality::High => (20, WindowFunction::BlackmanHarris2),
        ResampleQuality::Medium => (10, WindowFunction::BlackmanHarris),
        ResampleQuality::Fast => (5, WindowFunction::BlackmanHarris),
    };
    let chunk = chunk_frames(rate_in, rate_out, target_ms);
    let engine = Fft::<T>::new_custom(
        rate_in as usize,
        rate_out as usize,
        chunk,
        1,
        channels,
        window,
        FixedSync::Input,
    )
    .map_err(|e| e.to_string())?;
    Ok(Box::new(engine))
}

/// A rubato resampler that takes chunks of any size and keeps output aligned with input.
pub struct RubatoStream<T: Sample> {
    engine: Box<dyn Resampler<T>>,
    channels: usize,
    rate_in: u64,
    rate_out: u64,
    /// Interleaved input not yet given to the engine (fewer frames than one engine chunk).
    pending: Vec<T>,
    /// Output scratch for one engine call.
    scratch: Vec<T>,
    /// Startup-delay frames still to drop from the output.
    to_trim: usize,
    frames_in: u64,
    frames_out: u64,
}

impl<T: Sample + Default> RubatoStream<T> {
    /// A resampler from `rate_in` to `rate_out` Hz for interleaved `channels`.
    pub fn new(
        quality: ResampleQuality,
        rate_in: u32,
        rate_out: u32,
        channels: usize,
    ) -> Result<Self, String> {
        let engine = build_engine::<T>(quality, rate_in, rate_out, channels)?;
        let scratch = vec![T::default(); engine.output_frames_max() * channels];
        let to_trim = engine.output_delay();
        Ok(Self {
            engine,
            channels,
            rate_in: rate_in as u64,
            rate_out: rate_out as u64,
            pending: Vec::new(),
            scratch,
            to_trim,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// The resampler's delay in output frames (compensated; reported for information).
    pub fn delay_frames(&self) -> usize {
        self.engine.output_delay()
    }

    /// Worst-case streaming lag in output frames: the delay plus one block of input waiting
    /// for the FFT.
    pub fn max_lag_frames(&self) -> usize {
        self.delay_frames()
            + (self.engine.input_frames_max() as u64 * self.rate_out).div_ceil(self.rate_in)
                as usize
    }

    /// Back to the initial state.
    pub fn reset(&mut self) {
        self.engine.reset();
        self.pending.clear();
        self.to_trim = self.engine.output_delay();
        self.frames_in = 0;
        self.frames_out = 0;
    }

    /// Resamples interleaved `input` (any number of frames), appending ready output to `out`.
    pub fn push(&mut self, input: &[T], out: &mut Vec<T>) {
        let ch = self.channels;
        debug_assert_eq!(input.len() % ch, 0);
        let frames = input.len() / ch;
        self.frames_in += frames as u64;
        let mut offset = 0;
        if !self.pending.is_empty() {
            let need = self.engine.input_frames_next() - self.pending.len() / ch;
            let take = need.min(frames);
            self.pending.extend_from_slice(&input[..take * ch]);
            offset = take;
            if self.pending.len() / ch == self.engine.input_frames_next() {
                let pending = std::mem::take(&mut self.pending);
                self.run(&pending, 0, None, out);
                self.pending = pending;
                self.pending.clear();
            }
        }
        while frames - offset >= self.engine.input_frames_next() {
            let n = self.engine.input_frames_next();
            self.run(input, offset, None, out);
            offset += n;
        }
        self.pending.extend_from_slice(&input[offset * ch..]);
    }

    /// Ends the stream: resamples what is pending and pads so the total output is exactly
    /// `ceil(frames_in * rate_out / rate_in)` frames.
    pub fn flush(&mut self, out: &mut Vec<T>) {
        let ch = self.channels;
        let expected = (self.frames_in * self.rate_out).div_ceil(self.rate_in);
        let start_len = out.len();
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            let frames = pending.len() / ch;
            self.run(&pending, 0, Some(frames), out);
        }
        let zeros = vec![T::default(); self.engine.input_frames_max() * ch];
        while self.frames_out < expected {
            self.run(&zeros, 0, Some(0), out);
        }
        let extra = (self.frames_out - expected) as usize;
        out.truncate(out.len() - (extra * ch).min(out.len() - start_len));
        self.frames_out = expected;
    }

    /// One engine call on `input[offset..]` (`partial` frames valid, or a full chunk).
    fn run(&mut self, input: &[T], offset: usize, partial: Option<usize>, out: &mut Vec<T>) {
        let ch = self.channels;
        let frames_avail = input.len() / ch;
        let adapter_in =
            InterleavedSlice::new(input, ch, frames_avail).expect("input length is whole frames");
        let cap = self.scratch.len() / ch;
        let mut adapter_out =
            InterleavedSlice::new_mut(&mut self.scratch, ch, cap).expect("scratch sized by rubato");
        let indexing = Indexing {
            input_offset: offset,
            partial_len: partial,
            ..Indexing::default()
        };
        let (_, written) = self
            .engine
            .process_into_buffer(&adapter_in, &mut adapter_out, Some(&indexing))
            .expect("buffers are sized from the resampler's own limits");
        let skip = self.to_trim.min(written);
        self.to_trim -= skip;
        out.extend_from_slice(&self.scratch[skip * ch..written * ch]);
        self.frames_out += (written - skip) as u64;
    }
}

/// The two engines behind [`StreamResampler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResampleEngine {
    /// One-stage polyphase FIR (Kaiser-windowed sinc, cached coefficients, AVX2/FMA dot
    /// products): latency of half the filter, whatever the rate pair.
    Polyphase,
    /// rubato's synchronous FFT resampler (the engine before issue 14).
    RubatoFft,
}

/// Filter spec of each quality level for the polyphase engine (see `docs/resampling.md`).
/// The transition band is centred near the lower Nyquist frequency: tones above 1.12 x
/// Nyquist (downsampling) or images above 1.095 x Nyquist (upsampling; the image of a tone
/// at 0.45 x the input rate lands at 1.1 x) are in the stopband.
fn poly_spec(quality: ResampleQuality, rate_in: u32, rate_out: u32) -> polyphase::FilterSpec {
    // For close rates (48k -> 44.1k) the stopband must start below the halfway point between
    // the two Nyquist frequencies, where the alias test tone sits.
    let ratio = rate_in as f64 / rate_out as f64;
    let stop = if rate_out < rate_in {
        1.12f64.min(1.0 + (ratio - 1.0) * 0.45)
    } else {
        1.095
    };
    let (atten_db, mut pass): (f64, f64) = match quality {
        ResampleQuality::High => (130.0, 0.88),
        ResampleQuality::Medium => (115.0, 0.88),
        ResampleQuality::Fast => (105.0, 0.75),
    };
    // Interpolation by a small integer: a band centred on the input Nyquist frequency (pass
    // = 2 - stop, a wider passband) makes phase 0 a unit impulse, which the phase-major
    // kernel copies instead of computing (half the work at 1:2, a third at 1:3).
    // Not at `fast`, whose narrow passband keeps the filter (and the latency) short.
    if quality != ResampleQuality::Fast
        && rate_out % rate_in == 0
        && rate_out / rate_in <= polyphase::MAX_PHASE_MAJOR_L as u32
    {
        pass = pass.max(2.0 - stop);
    }
    polyphase::FilterSpec {
        atten_db,
        pass,
        stop,
    }
}

/// Taps per output of the polyphase engine at this quality and rate pair (reported by the
/// `resample_quality` example).
pub fn polyphase_taps(quality: ResampleQuality, rate_in: u32, rate_out: u32) -> usize {
    polyphase::taps_for(rate_in, rate_out, poly_spec(quality, rate_in, rate_out))
}

/// The engine [`StreamResampler::new`] picks for a rate pair, by measurement (see
/// `docs/resampling.md`): rubato's FFT engine for integer ratios between rates of 16 kHz and
/// up (48k <-> 16k, 22.05k <-> 44.1k: the FFT takes 0.7-0.8x the time of an 88-216 tap FIR
/// there, with a 30 ms worst-case lag); the polyphase FIR everywhere else (44.1k <-> 48k,
/// 44.1k -> 16k, 22.05k -> 16k: 0.8-1.2x rubato's time, 1-2.5 ms instead of 30-60 ms lag;
/// 8k <-> 16k: rubato's 160-frame block leaves the passband 0.2 dB low at 3.5 kHz; pairs with
/// no large common factor: rubato needs blocks of up to 2 s, the FIR keeps 1-3 ms).
///
/// In f32 on a CPU with AVX2/FMA, [`StreamResampler::new`] first takes the FIR's phase-major
/// kernels wherever they apply (integer decimation, interpolation by up to 6: 0.6-0.7x
/// rubato's time); this function decides the rest, and every pair in f64. Close-rate
/// downsampling with short FFT blocks (48k -> 44.1k: 160-frame blocks, 30 ms worst-case lag
/// at `high`) stays on rubato for mono at `medium`/`high`, where it takes about 0.85-1.0x the
/// FIR's time; [`StreamResampler::new`] takes the FIR for it in f32 stereo and at `fast`.
pub fn default_engine(_quality: ResampleQuality, rate_in: u32, rate_out: u32) -> ResampleEngine {
    let (lo, hi) = (rate_in.min(rate_out), rate_in.max(rate_out));
    let block = rate_in / gcd(rate_in, rate_out);
    if (lo >= 16_000 && hi % lo == 0) || (close_down(rate_in, rate_out) && block <= 160) {
        ResampleEngine::RubatoFft
    } else {
        ResampleEngine::Polyphase
    }
}

/// Downsampling between close rates (less than 5:4, such as 48k -> 44.1k).
fn close_down(rate_in: u32, rate_out: u32) -> bool {
    rate_out < rate_in && (rate_in as u64) * 4 < (rate_out as u64) * 5
}

enum Inner<T: Sample + polyphase::PolySample> {
    Poly(polyphase::PolyphaseStream<T>),
    Rubato(RubatoStream<T>),
}

/// A streaming resampler that takes chunks of any size, compensates its delay, and gives
/// exactly `ceil(n * rate_out / rate_in)` frames for `n` input frames; streamed output is
/// bit-identical to whole-input output.
pub struct StreamResampler<T: Sample + polyphase::PolySample> {
    inner: Inner<T>,
    rate_in: u32,
    rate_out: u32,
}

impl<T: Sample + Default + polyphase::PolySample> StreamResampler<T> {
    /// A resampler from `rate_in` to `rate_out` Hz for interleaved `channels`, on the engine
    /// that is faster for this pair.
    pub fn new(
        quality: ResampleQuality,
        rate_in: u32,
        rate_out: u32,
        channels: usize,
    ) -> Result<Self, String> {
        let engine = if polyphase::has_phase_major_kernel::<T>(rate_in, rate_out)
            || polyphase::has_row_kernel::<T>(rate_in, rate_out)
        {
            // The row kernel (48k -> 44.1k in f32 with AVX2/FMA; mono, the grouped kernel
            // with more channels): 0.6-0.75x rubato's time whole and in 20 ms pushes
            // (docs/resampling.md).
            ResampleEngine::Polyphase
        } else if close_down(rate_in, rate_out)
            && polyphase::has_grouped_kernel::<T>(rate_in, rate_out)
            && (channels >= 2 || quality == ResampleQuality::Fast)
        {
            // 48k -> 44.1k in f32 with AVX2/FMA: the grouped FIR shares each coefficient
            // load across channels, 0.55-0.85x rubato's time in stereo (and at `fast` in
            // mono); rubato stays faster for mono at `medium`/`high` (docs/resampling.md).
            ResampleEngine::Polyphase
        } else {
            default_engine(quality, rate_in, rate_out)
        };
        Self::with_engine(engine, quality, rate_in, rate_out, channels)
    }

    /// The same on a chosen engine (benchmarks and tests compare them).
    pub fn with_engine(
        engine: ResampleEngine,
        quality: ResampleQuality,
        rate_in: u32,
        rate_out: u32,
        channels: usize,
    ) -> Result<Self, String> {
        if channels == 0 || rate_in == 0 || rate_out == 0 {
            return Err(format!(
                "invalid resampler shape: {rate_in} -> {rate_out} Hz, {channels} channels"
            ));
        }
        let inner = match engine {
            ResampleEngine::Polyphase => Inner::Poly(polyphase::PolyphaseStream::new(
                rate_in,
                rate_out,
                channels,
                poly_spec(quality, rate_in, rate_out),
            )),
            ResampleEngine::RubatoFft => {
                Inner::Rubato(RubatoStream::new(quality, rate_in, rate_out, channels)?)
            }
        };
        Ok(Self {
            inner,
            rate_in,
            rate_out,
        })
    }

    /// Which engine this stream runs on.
    pub fn engine(&self) -> ResampleEngine {
        match self.inner {
            Inner::Poly(_) => ResampleEngine::Polyphase,
            Inner::Rubato(_) => ResampleEngine::RubatoFft,
        }
    }

    /// Worst-case streaming latency in output frames: how far a stream's output can lag its
    /// input (the filter delay itself is compensated in the output's timing). Polyphase: the
    /// filter's look-ahead; rubato: its delay plus one FFT block of input.
    pub fn delay_frames(&self) -> usize {
        match &self.inner {
            Inner::Poly(p) => (p.lookahead_frames() as u64 * self.rate_out as u64)
                .div_ceil(self.rate_in as u64) as usize,
            Inner::Rubato(r) => r.max_lag_frames(),
        }
    }

    /// Back to the initial state.
    pub fn reset(&mut self) {
        match &mut self.inner {
            Inner::Poly(p) => p.reset(),
            Inner::Rubato(r) => r.reset(),
        }
    }

    /// Resamples interleaved `input` (any number of frames), appending ready output to `out`.
    pub fn push(&mut self, input: &[T], out: &mut Vec<T>) {
        match &mut self.inner {
            Inner::Poly(p) => p.push(input, out),
            Inner::Rubato(r) => r.push(input, out),
        }
    }

    /// Ends the stream: writes the rest, so the total output is exactly
    /// `ceil(frames_in * rate_out / rate_in)` frames.
    pub fn flush(&mut self, out: &mut Vec<T>) {
        match &mut self.inner {
            Inner::Poly(p) => p.flush(out),
            Inner::Rubato(r) => r.flush(out),
        }
    }
}

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
        Some((i, v, _)) if !v.is_finite() => Err(NodeError::invalid_input(format!(
            "AudioResampleNode: input sample {i} (interleaved index in this chunk) is {v}; \
             audio must be finite (no NaN or infinity)"
        ))),
        Some((i, v, limit)) => Err(NodeError::invalid_input(format!(
            "AudioResampleNode: input sample {i} (interleaved index in this chunk) is {v:e}, \
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
        let err = |e: String| NodeError::failed(format!("AudioResampleNode: {e}"));
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
        let audio = expect_audio("AudioResampleNode", &input)?;
        check_input_rate("AudioResampleNode", audio.sample_rate())?;
        if audio.sample_rate() != self.params.target_rate {
            // Before any state changes, so a refused chunk leaves the stream as it was.
            check_resampleable(audio.samples())?;
        }
        let shape = self.stream.as_ref().map(|s| (s.rate_in, s.channels));
        if self.active {
            check_stream_shape("AudioResampleNode", shape, audio)?;
            let format = self.stream.as_ref().map(|s| s.format);
            if format != Some(audio.format()) {
                return Err(NodeError::invalid_input(format!(
                    "AudioResampleNode: sample format changed mid-stream from {} to {}",
                    format.map_or("?", SampleFormat::as_str),
                    audio.format()
                )));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_is_about_the_target_and_tiles_even_smooth_blocks() {
        assert_eq!(chunk_frames(48_000, 16_000, 20), 960);
        assert_eq!(chunk_frames(48_000, 16_000, 10), 480);
        assert_eq!(chunk_frames(44_100, 16_000, 20), 882);
        assert_eq!(chunk_frames(44_100, 16_000, 5), 882);
        assert_eq!(chunk_frames(16_000, 48_000, 20), 320);
        assert_eq!(chunk_frames(22_050, 44_100, 20), 450);
        assert_eq!(chunk_frames(44_100, 48_000, 20), 882);
        assert_eq!(chunk_frames(48_000, 44_100, 20), 960);
        assert!(is_5_smooth(960) && !is_5_smooth(442));
    }
}
