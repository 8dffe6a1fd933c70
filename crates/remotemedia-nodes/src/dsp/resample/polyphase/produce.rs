//! The output loops of [`PolyphaseStream`] for the dot-product, row, decimation and
//! interpolation kernels (the grouped kernel's is in `grouped.rs`): where each output's
//! window starts in the history, then the kernel calls.

use super::buffer::{deinterleave, interleave};
use super::design::INTERP_PHASES;
use super::{PolySample, PolyphaseStream};

impl<T: PolySample> PolyphaseStream<T> {
    /// One dot product per output (interpolated tables, f64, CPUs without AVX2).
    pub(super) fn produce_dot(&mut self, end: u64, dst: &mut [T]) {
        let bank = &*self.bank;
        let (taps, ch) = (bank.taps, self.channels);
        let half = (taps / 2) as i64;
        for (c, hist) in self.hist.iter().enumerate() {
            for (o, j) in (self.frames_out..end).enumerate() {
                let n = (j * self.m / self.l) as i64;
                let p = (j * self.m) % self.l;
                let s = (n - half + 1 - self.base) as usize;
                let x = &hist[s..s + taps];
                dst[o * ch + c] = if bank.interpolated {
                    // Fractional position p / l on a grid of INTERP_PHASES rows.
                    let q = p * INTERP_PHASES as u64;
                    let r = (q / self.l) as usize;
                    let t = (q % self.l) as f64 / self.l as f64;
                    let a = T::dot(&bank.coefs[r * taps..(r + 1) * taps], x);
                    let b = T::dot(&bank.coefs[(r + 1) * taps..(r + 2) * taps], x);
                    T::lerp(a, b, t)
                } else {
                    let r = p as usize;
                    T::dot(&bank.coefs[r * taps..(r + 1) * taps], x)
                };
            }
        }
    }

    /// Outputs phase by phase (mono): outputs `j`, `j + L`, `j + 2L` ... of the push share one
    /// phase's coefficients, so up to six of them run in one kernel call that loads each
    /// coefficient vector once (a 20 ms push of 48k -> 44.1k holds six outputs of each of its
    /// 147 phases). Loads are aligned (see [`RowTable`](super::tables::RowTable)).
    pub(super) fn produce_rows(&mut self, end: u64, dst: &mut [T]) {
        const B: usize = 6;
        debug_assert_eq!(self.channels, 1, "the row kernel is chosen for mono only");
        let bank = &*self.bank;
        let table = bank.rows.as_ref().expect("checked by the caller");
        let half = (bank.taps / 2) as i64;
        let first = self.frames_out;
        let (m, l) = (self.m as usize, self.l as usize);
        let total = (end - first) as usize;
        let (step_q, step_r) = ((m / l) as i64, m % l);
        let x = self.hist[0].padded();
        // Window start and phase of output `first`, then stepped one output at a time without
        // a division: n(j + 1) = n(j) + floor((p + M) / L).
        let (mut n, mut p) = (
            (first * self.m / self.l) as i64,
            ((first * self.m) % self.l) as usize,
        );
        for o0 in 0..l.min(total) {
            let (shift, used) = table.shape[p];
            let row = &table.coefs[p * table.width..p * table.width + used];
            let s0 = (n - half + 1 - self.base) as usize - shift;
            // Outputs o0 + t * L of the push, windows M frames apart.
            let count = (total - o0).div_ceil(l);
            let mut t = 0;
            while t + B <= count {
                T::rows::<B>(row, &x[s0 + t * m..], m, &mut dst[o0 + t * l..], l);
                t += B;
            }
            if t < count {
                let (xs, out) = (&x[s0 + t * m..], &mut dst[o0 + t * l..]);
                match count - t {
                    1 => T::rows::<1>(row, xs, m, out, l),
                    2 => T::rows::<2>(row, xs, m, out, l),
                    3 => T::rows::<3>(row, xs, m, out, l),
                    4 => T::rows::<4>(row, xs, m, out, l),
                    _ => T::rows::<5>(row, xs, m, out, l),
                }
            }
            n += step_q;
            p += step_r;
            if p >= l {
                p -= l;
                n += 1;
            }
        }
    }

    /// Decimation by `M`: the window of history the outputs read, deinterleaved into `M`
    /// zero-padded planes, then eight consecutive outputs per vector. Each output's arithmetic
    /// is the same wherever its vector starts, so chunking never changes the output.
    pub(super) fn produce_decimate(&mut self, end: u64, dst: &mut [T]) {
        let (taps, ch, m) = (self.bank.taps, self.channels, self.m as usize);
        let half = (taps / 2) as i64;
        let first = self.frames_out;
        let count = (end - first) as usize;
        let n = count.next_multiple_of(8);
        let stride = n + (taps - 1) / m + 1;
        let s0 = (self.n_of(first) - half + 1 - self.base) as usize;
        self.planes.resize(n, T::default());
        self.scratch.resize(m * stride, T::default());
        for c in 0..ch {
            let hist = &self.hist[c];
            // Plane r holds hist[s0 + u * m + r]; zeros past the history.
            let src = &hist[s0.min(hist.len())..];
            let whole = (src.len() / m).min(stride);
            let planes = &mut self.scratch[..m * stride];
            match m {
                2 => deinterleave::<T, 2>(planes, stride, &src[..whole * 2]),
                3 => deinterleave::<T, 3>(planes, stride, &src[..whole * 3]),
                4 => deinterleave::<T, 4>(planes, stride, &src[..whole * 4]),
                _ => {
                    for (r, plane) in planes.chunks_exact_mut(stride).enumerate() {
                        for (d, f) in plane[..whole].iter_mut().zip(src.chunks_exact(m)) {
                            *d = f[r];
                        }
                    }
                }
            }
            for (r, plane) in planes.chunks_exact_mut(stride).enumerate() {
                plane[whole..].fill(T::default());
                if whole < stride {
                    if let Some(&v) = src.get(whole * m + r) {
                        plane[whole] = v;
                    }
                }
            }
            T::decimate(
                &self.dec_h,
                &self.dec_at,
                &self.scratch,
                stride,
                &mut self.planes[..n],
            );
            if ch == 1 {
                dst[..count].copy_from_slice(&self.planes[..count]);
            } else {
                for (o, &v) in self.planes[..count].iter().enumerate() {
                    dst[o * ch + c] = v;
                }
            }
        }
    }

    /// Interpolation by `L`: all `L` phases of eight consecutive input positions per step,
    /// into one plane per phase, then interleaved. Chunk-invariant like the decimation kernel.
    pub(super) fn produce_interpolate(&mut self, end: u64, dst: &mut [T]) {
        let (taps, ch, l) = (self.bank.taps, self.channels, self.l as usize);
        let half = (taps / 2) as i64;
        let first = self.frames_out;
        let n_first = first / self.l;
        let n_last = (end - 1) / self.l;
        let n = ((n_last - n_first + 1) as usize).next_multiple_of(8);
        let s0 = (n_first as i64 - half + 1 - self.base) as usize;
        let h = &self.bank.coefs[..l * taps];
        // Every channel's planes first (channel c's at `c * l * n`), then one interleaving
        // pass for all of them.
        self.planes.resize(ch * l * n, T::default());
        for c in 0..ch {
            let hist = &self.hist[c];
            let want = n + taps - 1;
            let x: &[T] = if s0 + want <= hist.len() {
                &hist[s0..s0 + want]
            } else {
                self.scratch.clear();
                self.scratch.extend_from_slice(&hist[s0.min(hist.len())..]);
                self.scratch.resize(want, T::default());
                &self.scratch
            };
            let planes = &mut self.planes[c * l * n..(c + 1) * l * n];
            if self.copy_phase0 {
                planes[..n].copy_from_slice(&x[taps / 2 - 1..taps / 2 - 1 + n]);
                T::interpolate(&h[taps..], x, l - 1, n, &mut planes[n..]);
            } else {
                T::interpolate(h, x, l, n, planes);
            }
        }
        // Output first + o is phase (first + o) % L of input position (first + o) / L:
        // the phases p0.. of position 0, then whole positions, then a partial one.
        let total = (end - first) as usize;
        let p0 = (first % self.l) as usize;
        let head = (l - p0).min(total);
        let full = (total - head) / l;
        let planes = &self.planes;
        let at = |c: usize, o: usize| {
            let (t, p) = ((o + p0) / l, (o + p0) % l);
            planes[(c * l + p) * n + t]
        };
        for o in (0..head).chain(head + full * l..total) {
            for c in 0..ch {
                dst[o * ch + c] = at(c, o);
            }
        }
        if full == 0 {
            return;
        }
        let body = &mut dst[head * ch..(head + full * l) * ch];
        // Frame by frame with the phase and channel counts known at compile time, which
        // vectorises into shuffles (8k -> 16k mono 34 -> 27 us per s of audio, 16k -> 48k
        // 102 -> 80: the strided passes below took a third of the kernel's time).
        match (l, ch) {
            (2, 1) => interleave::<T, 2, 1>(body, planes, n, full),
            (3, 1) => interleave::<T, 3, 1>(body, planes, n, full),
            (2, 2) => interleave::<T, 2, 2>(body, planes, n, full),
            (3, 2) => interleave::<T, 3, 2>(body, planes, n, full),
            // One strided pass per phase and channel.
            _ => {
                for (c, p) in (0..ch).flat_map(|c| (0..l).map(move |p| (c, p))) {
                    let col = &planes[(c * l + p) * n + 1..][..full];
                    let outs = body[p * ch + c..].iter_mut().step_by(l * ch);
                    for (d, &v) in outs.zip(col) {
                        *d = v;
                    }
                }
            }
        }
    }
}
