//! rubato 5's FFT resampler behind [`RubatoStream`]: chunks of any size in, rubato's fixed
//! chunks inside, its startup delay dropped and the tail padded so output lines up with input.

use audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler, Sample, WindowFunction};

use super::polyphase::gcd;
use super::ResampleQuality;

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
///
/// rubato resamplers take fixed-size chunks. [`RubatoStream`] accepts any chunk size: it
/// re-cuts the stream into the resampler's chunk size (the last partial chunk is padded at
/// `flush`), drops the resampler's startup delay from the front of the output, and pads the
/// tail so the total output is exactly `ceil(n * out / in)` frames. Because the re-cutting
/// depends only on the stream position, streamed output is bit-identical to whole-input output.
///
/// Real-time rules (rubato README, "Real-time considerations"): after the first chunk no
/// allocation happens inside rubato (`process_into_buffer` into a pre-allocated scratch); the
/// only allocation per call is the output vector handed downstream.
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
