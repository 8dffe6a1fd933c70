//! Polyphase FIR resampler: Kaiser-windowed sinc, one stage, any rate pair, bounded latency.
//! [`PolyphaseStream`] keeps each channel's history and runs the inner loop ([`Kernel`]) picked
//! for its rate pair; the filter design, tables, cache and kernels are in the files beside it.

use std::sync::Arc;

#[cfg(target_arch = "x86_64")]
mod avx2;
mod buffer;
mod cache;
mod design;
mod grouped;
mod produce;
mod sample;
mod scalar;
mod tables;

use buffer::Hist;
use cache::bank;
use design::{Bank, MAX_EXACT_PHASES};
use tables::{rows_apply, MAX_GROUP_PATTERNS};

pub use design::{taps_for, FilterSpec};
pub use sample::PolySample;

/// Whether `T` streams from `rate_in` to `rate_out` run a phase-major kernel
/// ([`Kernel::Decimate`] or [`Kernel::Interpolate`]) on this CPU.
pub fn has_phase_major_kernel<T: PolySample>(rate_in: u32, rate_out: u32) -> bool {
    let g = gcd(rate_in, rate_out);
    let (m, l) = (rate_in / g, rate_out / g);
    T::grouped() && (l == 1 || (m == 1 && l as u64 <= MAX_PHASE_MAJOR_L))
}

/// Whether `T` streams from `rate_in` to `rate_out` run the grouped kernel
/// ([`Kernel::Grouped`]) on this CPU.
pub fn has_grouped_kernel<T: PolySample>(rate_in: u32, rate_out: u32) -> bool {
    let g = gcd(rate_in, rate_out);
    let l = (rate_out / g) as u64;
    T::grouped()
        && std::mem::size_of::<T>() == 4
        && l <= MAX_EXACT_PHASES
        && l / gcd(l as u32, 8) as u64 <= MAX_GROUP_PATTERNS as u64
        && !has_phase_major_kernel::<T>(rate_in, rate_out)
}

/// Whether mono `T` streams from `rate_in` to `rate_out` run the row kernel
/// ([`Kernel::Rows`]) on this CPU: pairs with few enough phases that a 20 ms push holds at
/// least three outputs of each, and so many group patterns that it holds less than two
/// periods of them (where the grouped kernel's lanes could not share coefficient loads), with
/// `M` a multiple of 8: 48k -> 44.1k and 48k -> 22.05k (147 phases; also 96k -> 88.2k).
pub fn has_row_kernel<T: PolySample>(rate_in: u32, rate_out: u32) -> bool {
    let g = gcd(rate_in, rate_out);
    T::grouped()
        && std::mem::size_of::<T>() == 4
        && (rate_out / g) as u64 <= MAX_EXACT_PHASES
        && !has_phase_major_kernel::<T>(rate_in, rate_out)
        && rows_apply(rate_in, rate_out)
}

/// Input frames [`PolyphaseStream::push`] takes at a time.
const PUSH_PIECE_FRAMES: usize = 4096;
/// Longest piece the grouped kernel's whole periods may make.
const MAX_PIECE_FRAMES: usize = 32_768;

/// Largest interpolation factor the phase-major interpolation kernel takes.
pub const MAX_PHASE_MAJOR_L: u64 = 6;

pub(crate) fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Streaming polyphase resampler over interleaved frames; any chunking gives the same output.
///
/// Output frame `j` sits at input time `t = j * rate_in / rate_out = n + p / L` (`L` =
/// `rate_out / gcd`); it is the dot product of the `taps` input frames around `n` with the
/// kernel sampled at phase `p / L`. The kernel is centred on `t`, so there is no group delay
/// to compensate: the stream only has to wait for `taps / 2` frames of look-ahead (the
/// latency). When `L` is small enough, every phase has its own row of coefficients; otherwise
/// (pairs with no large common factor, 48000 -> 44101) a table of
/// [`INTERP_PHASES`](design::INTERP_PHASES) rows is interpolated linearly between
/// neighbouring rows, which keeps the table small and the latency the same as for any other
/// pair.
///
/// Coefficients are designed once per (rate pair, quality, precision) in f64 and kept in a
/// process-wide cache. The f32 inner loop is an f32 dot product (AVX2/FMA when the CPU has it,
/// chosen once per process, so a stream's output never depends on chunking).
pub struct PolyphaseStream<T: PolySample> {
    bank: Arc<Bank<T>>,
    channels: usize,
    /// `rate_in / gcd` and `rate_out / gcd`.
    m: u64,
    l: u64,
    /// Planar history per channel: `hist[c]` holds input frames from absolute index `base`
    /// (frames before 0 are zeros).
    hist: Vec<Hist<T>>,
    base: i64,
    frames_in: u64,
    frames_out: u64,
    /// Zero-padded windows for groups that reach past the history.
    scratch: Vec<T>,
    /// Grouped kernel's schedule (kept to avoid allocating per push): items taken per
    /// residue class, and candidate runs (class, first item).
    taken: Vec<usize>,
    cands: Vec<(u32, u32)>,
    /// Window start of each group of a push.
    starts: Vec<usize>,
    /// Which inner loop this stream runs.
    kernel: Kernel,
    /// Input frames [`Self::push`] takes at a time.
    piece: usize,
    /// Output planes of the phase-major kernels.
    planes: Vec<T>,
    /// Decimation: the non-zero taps, coefficient and (plane, offset) in the deinterleaved
    /// input.
    dec_h: Vec<T>,
    dec_at: Vec<(u32, u32)>,
    /// Interpolation: phase 0 is a plain copy of input frame `n` (its row is a unit impulse,
    /// as it is whenever the cutoff sits at the input Nyquist frequency).
    copy_phase0: bool,
}

/// The inner loops of [`PolyphaseStream`], picked per rate pair (see `docs/resampling.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// One dot product per output (f64, interpolated tables, CPUs without AVX2/FMA).
    Dot,
    /// Eight outputs of different phases per vector (f32, any exact-phase pair).
    Grouped,
    /// One output per dot product, the outputs of a phase (`L` outputs apart) sharing each
    /// load of its coefficients (f32; pairs where [`has_row_kernel`] holds).
    Rows,
    /// Phase-major decimation by an integer (`L` = 1): eight consecutive outputs per vector,
    /// one contiguous load per multiply-add from the input deinterleaved by `M`.
    Decimate,
    /// Phase-major interpolation by an integer `L` <= [`MAX_PHASE_MAJOR_L`] (`M` = 1): every
    /// phase of eight consecutive input positions at once, each input vector loaded once.
    Interpolate,
}

impl<T: PolySample> PolyphaseStream<T> {
    /// A stream from `rate_in` to `rate_out` for `channels` interleaved channels.
    pub fn new(rate_in: u32, rate_out: u32, channels: usize, spec: FilterSpec) -> Self {
        let bank = bank::<T>(rate_in, rate_out, spec);
        let g = gcd(rate_in, rate_out) as u64;
        let (m, l) = (rate_in as u64 / g, rate_out as u64 / g);
        let kernel = if !T::grouped() || bank.interpolated {
            Kernel::Dot
        } else if l == 1 {
            Kernel::Decimate
        } else if m == 1 && l <= MAX_PHASE_MAJOR_L {
            Kernel::Interpolate
        } else if bank.rows.is_some() && T::grouped() && channels == 1 {
            // Mono: the row kernel. With two or more channels the grouped kernel shares each
            // coefficient load across the channels, which is as fast or faster (48k -> 44.1k
            // stereo about even, 48k -> 22.05k stereo 10-15% faster; docs/resampling.md).
            Kernel::Rows
        } else if bank.groups.is_some() {
            Kernel::Grouped
        } else {
            Kernel::Dot
        };
        let mut s = Self {
            bank,
            channels,
            m,
            l,
            hist: vec![Hist::default(); channels],
            base: 0,
            frames_in: 0,
            frames_out: 0,
            scratch: Vec::new(),
            taken: Vec::new(),
            cands: Vec::new(),
            starts: Vec::new(),
            kernel,
            piece: PUSH_PIECE_FRAMES,
            planes: Vec::new(),
            dec_h: Vec::new(),
            dec_at: Vec::new(),
            copy_phase0: false,
        };
        if let (Kernel::Grouped, Some(groups)) = (kernel, s.bank.groups.as_ref()) {
            // Pieces of whole multiples of eight pattern periods, so that long inputs share
            // each coefficient load among eight groups (48k -> 22.05k: a period is 2560 input
            // frames, and a 4096-frame piece held one and a half), unless eight periods are
            // too long to stay in cache (pairs with many patterns and a large ratio).
            let eight = (groups.patterns as u64 * 8 * m / l) as usize * 8;
            if eight <= MAX_PIECE_FRAMES {
                s.piece = eight * PUSH_PIECE_FRAMES.div_ceil(eight);
            }
        }
        let taps = s.bank.taps;
        if kernel == Kernel::Decimate {
            for (k, &c) in s.bank.coefs[..taps].iter().enumerate() {
                if c != T::default() {
                    s.dec_h.push(c);
                    s.dec_at
                        .push(((k as u64 % m) as u32, (k as u64 / m) as u32));
                }
            }
        }
        if kernel == Kernel::Interpolate {
            let row0 = &s.bank.coefs[..taps];
            let one = T::from_f64(1.0);
            s.copy_phase0 = row0
                .iter()
                .enumerate()
                .all(|(k, &c)| c == if k == taps / 2 - 1 { one } else { T::default() });
        }
        s.reset();
        s
    }

    /// The inner loop this stream runs.
    #[cfg(test)]
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Look-ahead in input frames: an output is ready once this many frames after its
    /// instant have arrived. This is the stream's latency.
    pub fn lookahead_frames(&self) -> usize {
        self.bank.taps / 2
    }

    /// Back to the initial state (the history starts with zeros before frame 0).
    pub fn reset(&mut self) {
        // Zeros from a multiple of 8 frames before the first window (the row kernel's
        // alignment; the other kernels take any base).
        let pre = (self.bank.taps / 2 - 1).next_multiple_of(8);
        for h in &mut self.hist {
            h.clear();
            h.resize_zeros(pre);
        }
        self.base = -(pre as i64);
        self.frames_in = 0;
        self.frames_out = 0;
    }

    /// Appends interleaved `input` and writes every output now computable to `out`.
    pub fn push(&mut self, input: &[T], out: &mut Vec<T>) {
        // Long inputs in pieces, so the history and the kernels' scratch stay in cache (the
        // output does not depend on the chunking).
        for piece in input.chunks(self.piece * self.channels) {
            self.push_piece(piece, out);
        }
    }

    fn push_piece(&mut self, input: &[T], out: &mut Vec<T>) {
        let ch = self.channels;
        let frames = input.len() / ch;
        if ch == 1 {
            self.hist[0].extend_from_slice(input);
        } else {
            for (c, h) in self.hist.iter_mut().enumerate() {
                for (d, f) in h.grow(frames).iter_mut().zip(input.chunks_exact(ch)) {
                    *d = f[c];
                }
            }
        }
        self.frames_in += frames as u64;
        self.produce(None, out);
    }

    /// Ends the stream: pads with zeros and writes the rest, so the total output is exactly
    /// `ceil(frames_in * rate_out / rate_in)` frames.
    pub fn flush(&mut self, out: &mut Vec<T>) {
        let expected = (self.frames_in * self.l).div_ceil(self.m);
        let pad = self.bank.taps / 2 + 1;
        for h in &mut self.hist {
            h.resize_zeros(h.len() + pad);
        }
        self.produce(Some(expected), out);
    }

    /// Input frame at or before output `j`'s instant.
    fn n_of(&self, j: u64) -> i64 {
        (j * self.m / self.l) as i64
    }

    fn produce(&mut self, limit: Option<u64>, out: &mut Vec<T>) {
        let half = (self.bank.taps / 2) as i64;
        let avail_end = self.base + self.hist[0].len() as i64; // exclusive absolute index
                                                               // Output j is ready when n(j) + half < avail_end, i.e. j < ceil(a * L / M).
        let a = avail_end - half;
        let mut end = if a <= 0 {
            0
        } else {
            (a as u64 * self.l).div_ceil(self.m)
        };
        if let Some(lim) = limit {
            end = end.min(lim);
        }
        if end > self.frames_out {
            let count = (end - self.frames_out) as usize;
            let start = out.len();
            out.resize(start + count * self.channels, T::default());
            match self.kernel {
                Kernel::Grouped => self.produce_grouped(end, &mut out[start..]),
                Kernel::Decimate => self.produce_decimate(end, &mut out[start..]),
                Kernel::Interpolate => self.produce_interpolate(end, &mut out[start..]),
                Kernel::Dot => self.produce_dot(end, &mut out[start..]),
                Kernel::Rows => self.produce_rows(end, &mut out[start..]),
            }
            self.frames_out = end;
        }
        self.compact();
    }

    /// Drops history no future output needs (the next group starts at output
    /// `8 * floor(frames_out / 8)`).
    fn compact(&mut self) {
        let keep_from = self.n_of(self.frames_out / 8 * 8) - (self.bank.taps / 2) as i64 + 1;
        // A multiple of 8, so that `base` stays one.
        let dead = (keep_from - self.base).max(0) as usize / 8 * 8;
        if dead >= 4096 && dead * 2 >= self.hist[0].len() {
            for h in &mut self.hist {
                h.drop_front(dead);
            }
            self.base += dead as i64;
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::sample::use_avx2;
    use super::*;

    /// The filter spec the engine's unit tests (here and in `cache.rs`) design with.
    pub(super) const SPEC: FilterSpec = FilterSpec {
        atten_db: 130.0,
        pass: 0.88,
        stop: 1.12,
    };

    /// Output `j` straight from the definition, in f64: the kernel centred on `j * in / out`.
    fn reference(x: &[f32], rin: u32, rout: u32, j: u64, bank: &Bank<f64>) -> f64 {
        let g = gcd(rin, rout) as u64;
        let (m, l) = (rin as u64 / g, rout as u64 / g);
        let n = (j * m / l) as i64;
        let p = ((j * m) % l) as usize;
        let taps = bank.taps;
        (0..taps)
            .map(|k| {
                let i = n - (taps / 2) as i64 + 1 + k as i64;
                let v = if i >= 0 && (i as usize) < x.len() {
                    x[i as usize] as f64
                } else {
                    0.0
                };
                v * bank.coefs[p * taps + k]
            })
            .sum()
    }

    #[test]
    fn every_kernel_matches_the_definition() {
        for (rin, rout) in [
            (48_000, 16_000),
            (16_000, 48_000),
            (44_100, 16_000),
            (48_000, 44_100),
            (8_000, 16_000),
            (32_000, 16_000),
            (8_000, 48_000),
            (11_025, 44_100),
            (40_000, 8_000),
            (48_000, 22_050),
        ] {
            let x: Vec<f32> = (0..5000)
                .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
                .collect();
            let mut s = PolyphaseStream::<f32>::new(rin, rout, 1, SPEC);
            if use_avx2() {
                let (m, l) = (rin / gcd(rin, rout), rout / gcd(rin, rout));
                let want = match (m, l) {
                    (_, 1) => Kernel::Decimate,
                    (1, _) => Kernel::Interpolate,
                    (160 | 320, 147) => Kernel::Rows,
                    _ => Kernel::Grouped,
                };
                assert_eq!(s.kernel(), want, "{rin}->{rout}");
            }
            let mut out = Vec::new();
            for c in x.chunks(333) {
                s.push(c, &mut out);
            }
            s.flush(&mut out);
            assert_matches_reference(&x, &out, rin, rout, 37);
        }
    }

    /// Every `step`-th output of `out` (from `x`) is within 1e-5 of the f64 definition.
    fn assert_matches_reference(x: &[f32], out: &[f32], rin: u32, rout: u32, step: usize) {
        let b64 = bank::<f64>(rin, rout, SPEC);
        for j in (0..out.len() as u64).step_by(step) {
            let r = reference(x, rin, rout, j, &b64);
            assert!(
                (out[j as usize] as f64 - r).abs() < 1e-5,
                "{rin}->{rout} output {j}: {} vs {r}",
                out[j as usize]
            );
        }
    }

    #[test]
    fn shared_groups_match_the_definition_and_any_chunking() {
        // Pairs whose group patterns repeat every 20 or 40 groups, 1-3 channels: long pushes
        // share each coefficient load among up to eight (channel, group) lanes one period
        // apart, 20 ms pushes among the channels only, short pushes run lanes with their own
        // coefficients, four, two or one at a time; the output must not depend on which.
        for (rin, rout) in [
            (44_100, 16_000),
            (22_050, 16_000),
            (44_100, 48_000),
            // The row kernel in mono (six outputs of a phase per call, fewer in short
            // pushes), the grouped kernel with more channels.
            (48_000, 44_100),
            (96_000, 88_200),
            (48_000, 22_050),
        ] {
            for ch in 1..=3usize {
                if use_avx2() && (rin, rout) == (48_000, 44_100) {
                    let s = PolyphaseStream::<f32>::new(rin, rout, ch, SPEC);
                    let want = if ch == 1 {
                        Kernel::Rows
                    } else {
                        Kernel::Grouped
                    };
                    assert_eq!(s.kernel(), want, "x{ch}");
                }
                let frames = 60_000;
                let chan = |c: usize| -> Vec<f32> {
                    (0..frames)
                        .map(|i| ((i * (7919 + 104 * c)) % 1000) as f32 / 1000.0 - 0.5)
                        .collect()
                };
                let planes: Vec<Vec<f32>> = (0..ch).map(chan).collect();
                let x: Vec<f32> = (0..frames * ch).map(|k| planes[k % ch][k / ch]).collect();
                let run = |chunks: &[usize]| {
                    let mut s = PolyphaseStream::<f32>::new(rin, rout, ch, SPEC);
                    let (mut out, mut pos, mut k) = (Vec::new(), 0, 0);
                    while pos < frames {
                        let n = chunks[k % chunks.len()].min(frames - pos);
                        s.push(&x[pos * ch..(pos + n) * ch], &mut out);
                        pos += n;
                        k += 1;
                    }
                    s.flush(&mut out);
                    out
                };
                let whole = run(&[frames]);
                let what = format!("{rin}->{rout} x{ch}");
                assert_eq!(whole, run(&[rin as usize / 50]), "{what} 20 ms");
                assert_eq!(whole, run(&[441]), "{what}");
                assert_eq!(whole, run(&[20_000, 7, 3000, 1, 130]), "{what}");
                for (c, plane) in planes.iter().enumerate() {
                    let mine: Vec<f32> = whole.iter().skip(c).step_by(ch).copied().collect();
                    assert_matches_reference(plane, &mine, rin, rout, 11);
                }
            }
        }
    }

    #[test]
    fn phase_major_kernels_skip_zero_taps_and_copy_phase_zero() {
        if !use_avx2() {
            return;
        }
        // Decimation by 3 with the cutoff at the output Nyquist: every third tap (but the
        // centre) is exactly zero and skipped.
        let s = PolyphaseStream::<f32>::new(48_000, 16_000, 1, SPEC);
        let taps = s.bank.taps;
        let zeros = s.bank.coefs[..taps].iter().filter(|&&c| c == 0.0).count();
        assert!(zeros >= taps / 3 - 1, "{zeros} zero taps of {taps}");
        assert_eq!(s.dec_h.len(), taps - zeros);
        // 2:1 is a half-band filter: about half the taps are zero.
        let s = PolyphaseStream::<f32>::new(32_000, 16_000, 1, SPEC);
        assert!(s.dec_h.len() <= s.bank.taps / 2 + 1);
        // Interpolation with the band centred on the input Nyquist: phase 0 is a copy.
        let up = FilterSpec {
            atten_db: 130.0,
            pass: 0.905,
            stop: 1.095,
        };
        for (rin, rout) in [(8_000, 16_000), (16_000, 48_000)] {
            let s = PolyphaseStream::<f32>::new(rin, rout, 1, up);
            assert!(s.copy_phase0, "{rin}->{rout}");
        }
        // Not when the band is off-centre.
        assert!(
            !PolyphaseStream::<f32>::new(8_000, 16_000, 1, SPEC).copy_phase0 || {
                let b = bank::<f32>(8_000, 16_000, SPEC);
                b.coefs[..b.taps].iter().filter(|&&c| c != 0.0).count() == 1
            }
        );
    }
}
