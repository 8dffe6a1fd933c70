//! The grouped kernel's output loop: each (channel, group of eight outputs) of a push is a
//! work item, and items are dealt into eight-lane kernel calls whose lanes share coefficient
//! loads wherever their patterns agree.

use super::buffer::Hist;
use super::{PolySample, PolyphaseStream};

/// What the grouped kernel reads for one push: the window of each (channel, group), straight
/// from the history or, for the last groups, from zero-padded copies, and each group's
/// coefficients.
struct Windows<'a, T> {
    hist: &'a [Hist<T>],
    /// `n_pad` windows per channel for the push's groups `pad_from..`.
    scratch: &'a [T],
    coefs: &'a [T],
    /// Window start (in the history) of each group of the push.
    starts: &'a [usize],
    pad_from: usize,
    n_pad: usize,
    width: usize,
}

/// One lane of a grouped kernel call: channel, group (index within the push), pattern.
type Lane = (usize, usize, usize);

impl<'a, T: PolySample> Windows<'a, T> {
    fn x(&self, (c, gi, _): Lane) -> &'a [T] {
        let width = self.width;
        if gi < self.pad_from {
            let s = self.starts[gi];
            &self.hist[c][s..s + width]
        } else {
            let slot = (c * self.n_pad + gi - self.pad_from) * width;
            &self.scratch[slot..slot + width]
        }
    }

    fn table(&self, (_, _, q): Lane) -> &'a [T] {
        &self.coefs[q * self.width * 8..(q + 1) * self.width * 8]
    }

    /// `N` lanes (the first `N` of `lanes`), lane `k` in class `k % D` (the lanes of a class
    /// share their pattern).
    fn call<const D: usize, const N: usize>(&self, lanes: &[Lane; 8], buf: &mut [T; 64]) {
        let xs: [&[T]; N] = std::array::from_fn(|k| self.x(lanes[k]));
        let cs: [&[T]; D] = std::array::from_fn(|d| self.table(lanes[d]));
        T::group_shared::<D, N>(cs, xs, self.width, buf);
    }
}

impl<T: PolySample> PolyphaseStream<T> {
    /// Eight outputs per vector, groups aligned to multiples of 8 output frames (a group cut
    /// by the end of the available input is recomputed whole next time, lane for lane the
    /// same arithmetic, so chunking never changes the output).
    ///
    /// Every (channel, group) of the push is a work item; items of the same pattern (groups
    /// one period apart, and the same group in every channel) share coefficients. Items are
    /// dealt into kernel calls of eight lanes in which `R` = 8, 4, 2 or 1 lanes share each
    /// coefficient load, largest first; what is left (fewer than eight items with their own
    /// patterns) runs four, two or one lanes at a time. A 20 ms stereo push of 22.05k -> 16k
    /// (one period per channel) thus loads each coefficient vector once for both channels.
    pub(super) fn produce_grouped(&mut self, end: u64, dst: &mut [T]) {
        // Borrowed, not cloned: an Arc's count is an atomic add and subtract per push, which
        // cost as much as the rest of the push's bookkeeping on a 2 GHz Xeon.
        let bank = &*self.bank;
        let groups = bank.groups.as_ref().expect("checked by the caller");
        let (width, ch) = (groups.width, self.channels);
        let half = (bank.taps / 2) as i64;
        let first = self.frames_out;
        let g_first = first / 8;
        let g_end = end.div_ceil(8);
        let period = groups.patterns as u64;
        let (m, l, base) = (self.m, self.l, self.base);
        // Window start of each group of the push, without a division per group:
        // n(8g) = floor(8gM / L) steps by 8M / L with a remainder.
        let n_groups = (g_end - g_first) as usize;
        let mut starts = std::mem::take(&mut self.starts);
        starts.clear();
        let (step_q, step_r) = (8 * m / l, 8 * m % l);
        let (mut q, mut r) = (g_first * 8 * m / l, g_first * 8 * m % l);
        for _ in 0..n_groups {
            starts.push((q as i64 - half + 1 - base) as usize);
            q += step_q;
            r += step_r;
            if r >= l {
                r -= l;
                q += 1;
            }
        }
        // Windows reaching past the history read zero-padded copies: the last groups, the same
        // in every channel.
        let len = self.hist[0].len();
        let mut pad_from = n_groups;
        while pad_from > 0 && starts[pad_from - 1] + width > len {
            pad_from -= 1;
        }
        let n_pad = n_groups - pad_from;
        self.scratch.clear();
        self.scratch.resize(ch * n_pad * width, T::default());
        for c in 0..ch {
            for (k, &s) in starts[pad_from..].iter().enumerate() {
                let s = s.min(len);
                let slot = (c * n_pad + k) * width;
                let avail = (len - s).min(width);
                self.scratch[slot..slot + avail].copy_from_slice(&self.hist[c][s..s + avail]);
            }
        }
        let w = Windows {
            hist: &self.hist,
            scratch: &self.scratch,
            coefs: &groups.coefs,
            starts: &starts,
            pad_from,
            n_pad,
            width,
        };
        let mut emit = |(c, gi, _): Lane, vals: &[T]| {
            let g = g_first + gi as u64;
            let j0 = g * 8;
            if j0 >= first && j0 + 8 <= end {
                // A whole group (all but the push's first and last): no per-value checks, and
                // in mono one copy.
                let at = (j0 - first) as usize;
                if ch == 1 {
                    dst[at..at + 8].copy_from_slice(&vals[..8]);
                } else {
                    for (d, &v) in dst[at * ch + c..].iter_mut().step_by(ch).zip(&vals[..8]) {
                        *d = v;
                    }
                }
                return;
            }
            for (i, &v) in vals.iter().enumerate() {
                let j = j0 + i as u64;
                if j >= first && j < end {
                    dst[(j - first) as usize * ch + c] = v;
                }
            }
        };
        // Items per pattern, channel-major within a group.
        // Residue class i (groups g_first + i + t * period, t < count) holds `ch * count`
        // items; item u is channel u % ch of group t = u / ch. Items are taken in order.
        let nc = (period as usize).min(n_groups);
        let q_first = (g_first % period) as usize;
        // (No divisions in here: they cost as much as the scheduling itself.)
        let period = period as usize;
        let (per_class, extra) = (n_groups / period, n_groups % period);
        let n_items = |i: usize| ch * (per_class + usize::from(i < extra));
        let item = |i: usize, u: usize| {
            let (c, t) = match ch {
                1 => (0, u),
                2 => (u & 1, u >> 1),
                _ => (u % ch, u / ch),
            };
            let q = q_first + i;
            (c, i + t * period, if q >= period { q - period } else { q })
        };
        let most = n_items(0);
        let mut taken = std::mem::take(&mut self.taken);
        let mut cands = std::mem::take(&mut self.cands);
        taken.clear();
        taken.resize(nc, 0);
        let mut buf = [T::default(); 64];
        for r in [8usize, 4, 2, 1] {
            if most < r {
                continue;
            }
            // Runs of `r` untaken items of one class; `8 / r` runs per call.
            cands.clear();
            let shift = r.trailing_zeros();
            for (i, &t) in taken.iter().enumerate() {
                let runs = (n_items(i) - t) >> shift;
                cands.extend((0..runs).map(|k| (i as u32, (t + k * r) as u32)));
            }
            let per_call = 8 / r;
            let whole = cands.len() / per_call * per_call;
            for call in cands[..whole].chunks_exact(per_call) {
                // Lane k: run k % D, item k / D of it.
                let lanes: [Lane; 8] = std::array::from_fn(|k| {
                    let (i, u) = call[k % per_call];
                    item(i as usize, u as usize + k / per_call)
                });
                match per_call {
                    1 => w.call::<1, 8>(&lanes, &mut buf),
                    2 => w.call::<2, 8>(&lanes, &mut buf),
                    4 => w.call::<4, 8>(&lanes, &mut buf),
                    _ => w.call::<8, 8>(&lanes, &mut buf),
                }
                for (k, &lane) in lanes.iter().enumerate() {
                    emit(lane, &buf[k * 8..k * 8 + 8]);
                }
            }
            for &(i, _) in &cands[..whole] {
                taken[i as usize] += r;
            }
        }
        // Fewer than eight items left, each with its own pattern: four, two, one at a time.
        let mut rest = &cands[cands.len() / 8 * 8..];
        while !rest.is_empty() {
            let n = match rest.len() {
                1 => 1,
                2 | 3 => 2,
                _ => 4,
            };
            let (now, later) = rest.split_at(n);
            let mut lanes: [Lane; 8] = [(0, 0, 0); 8];
            for (l, &(i, u)) in lanes.iter_mut().zip(now) {
                *l = item(i as usize, u as usize);
            }
            match n {
                4 => w.call::<4, 4>(&lanes, &mut buf),
                2 => w.call::<2, 2>(&lanes, &mut buf),
                _ => w.call::<1, 1>(&lanes, &mut buf),
            }
            for (k, &lane) in lanes[..n].iter().enumerate() {
                emit(lane, &buf[k * 8..k * 8 + 8]);
            }
            rest = later;
        }
        self.taken = taken;
        self.cands = cands;
        self.starts = starts;
    }
}
