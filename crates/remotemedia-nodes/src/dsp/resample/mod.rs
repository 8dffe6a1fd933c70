//! Resampling, shared by `AudioResampleNode`, the VAD (to 16 kHz) and the loudness meter (its
//! true-peak upsampler): [`StreamResampler`], the streaming interface over two engines, and
//! the choice between them per rate pair ([`default_engine`]): the polyphase FIR in
//! `polyphase/` or rubato 5's FFT resampler ([`RubatoStream`], `fft.rs`), with each quality's
//! filter spec for the FIR.

use rubato::Sample;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod fft;
mod polyphase;

use fft::RubatoStream;
use polyphase::gcd;

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
