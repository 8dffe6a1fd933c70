//! The f32 kernels' own layouts of a bank's rows: [`RowTable`] (rows placed for aligned loads,
//! the row kernel) and [`Groups`] (eight phases per vector, the grouped kernel).

use super::buffer::Aligned;
use super::gcd;
use super::sample::PolySample;

/// Rows for aligned loads. Every output of phase `p` starts its window at an absolute input
/// frame `n - taps/2 + 1` with the same remainder `shift[p]` modulo 8 (`M` is a multiple of
/// 8), so row `p` is stored `shift[p]` zeros to the right and read from the multiple of 8
/// before the window: each vector load of input and coefficients then sits on a 32-byte
/// boundary (with the history aligned by absolute frame), and each output's lanes sum the
/// taps of its absolute frames modulo 8, whichever push computes it.
pub struct RowTable<T> {
    /// Distance between rows: `taps + 8`.
    pub width: usize,
    /// Per phase: `(shift, used length)`, the length `taps + shift` rounded up to 8.
    pub shape: Vec<(usize, usize)>,
    /// `phases * width` values, starting on a 64-byte boundary.
    pub coefs: Aligned<T>,
}

/// Whether a rate pair gets a [`RowTable`]: `M` a multiple of 8, at least three outputs of
/// each phase in a 20 ms push, and fewer than two periods of group patterns in one.
pub(super) fn rows_apply(rate_in: u32, rate_out: u32) -> bool {
    let g = gcd(rate_in, rate_out);
    let (m, l) = ((rate_in / g) as u64, (rate_out / g) as u64);
    let per_push = rate_out as u64 / 50;
    m % 8 == 0 && l >= 2 && l * 3 <= per_push && l / gcd(l as u32, 8) as u64 * 16 > per_push
}

/// The [`RowTable`] of a bank's exact `rows` (`l` phases of `taps`; `m` = `rate_in / gcd`).
pub(super) fn build_rows<T: PolySample>(rows: &[T], taps: usize, l: u64, m: u64) -> RowTable<T> {
    let width = taps + 8;
    let half = (taps / 2) as i64;
    let mut shape = vec![(0, 0); l as usize];
    let mut coefs = vec![T::default(); l as usize * width];
    for j in 0..l {
        let (n, p) = ((j * m / l) as i64, ((j * m) % l) as usize);
        let shift = (n - half + 1).rem_euclid(8) as usize;
        shape[p] = (shift, (taps + shift).next_multiple_of(8));
        coefs[p * width + shift..p * width + shift + taps]
            .copy_from_slice(&rows[p * taps..(p + 1) * taps]);
    }
    RowTable {
        width,
        shape,
        coefs: Aligned::new(&coefs),
    }
}

/// Largest number of group patterns kept (the table is `patterns * width * 8` values).
pub const MAX_GROUP_PATTERNS: usize = 1024;

/// Coefficients for eight consecutive outputs at a time. Outputs `8g .. 8g + 8` start their
/// windows at input frames `n(8g) + d_i` (`d_i` = 0 for lane 0); the group reads `width`
/// frames from `n(8g) - taps/2 + 1`, and lane `i` holds its own phase's coefficients
/// shifted by `d_i` (zeros elsewhere). The pattern repeats every `patterns` groups.
pub struct Groups<T> {
    /// Number of distinct patterns: `L / gcd(L, 8)`.
    pub patterns: usize,
    /// Input frames one group reads.
    pub width: usize,
    /// `patterns * width * 8` values: `[pattern][k][lane]`, starting on a 64-byte boundary
    /// (each coefficient vector then sits in one cache line).
    pub coefs: Aligned<T>,
}

/// The [`Groups`] of a bank's exact `rows`, or `None` past [`MAX_GROUP_PATTERNS`] patterns.
pub(super) fn build_groups<T: PolySample>(
    rows: &[T],
    taps: usize,
    l: u64,
    m: u64,
) -> Option<Groups<T>> {
    let patterns = (l / gcd(l as u32, 8) as u64) as usize;
    if patterns > MAX_GROUP_PATTERNS {
        return None;
    }
    let n_of = |j: u64| j * m / l;
    let width = (0..patterns as u64)
        .map(|q| taps + (n_of(8 * q + 7) - n_of(8 * q)) as usize)
        .max()
        .unwrap_or(taps);
    let mut coefs = vec![T::default(); patterns * width * 8];
    for q in 0..patterns {
        let j0 = 8 * q as u64;
        for i in 0..8u64 {
            let j = j0 + i;
            let d = (n_of(j) - n_of(j0)) as usize;
            let r = ((j * m) % l) as usize;
            for k in 0..taps {
                coefs[(q * width + d + k) * 8 + i as usize] = rows[r * taps + k];
            }
        }
    }
    Some(Groups {
        patterns,
        width,
        coefs: Aligned::new(&coefs),
    })
}
