//! Filter design: the Kaiser-windowed sinc for a [`FilterSpec`], its length ([`taps_for`]),
//! and the coefficient [`Bank`] of one rate pair, designed in f64 (a row per phase, or an
//! interpolated table), with the kernels' regrouped tables.

use super::gcd;
use super::sample::PolySample;
use super::tables::{build_groups, build_rows, rows_apply, Groups, RowTable};

/// Rows of the interpolated phase table for rate pairs with more than [`MAX_EXACT_PHASES`]
/// phases. Linear interpolation between rows `1/4096` of an input sample apart leaves an
/// error far below the f32 noise floor (see `docs/resampling.md`).
pub const INTERP_PHASES: usize = 4096;
/// Largest number of exact phases (one coefficient row each) before the table is
/// interpolated instead. 44.1k <-> 48k has 147 or 160, 22.05k -> 16k has 320.
pub const MAX_EXACT_PHASES: u64 = 4096;

/// Filter specification: stopband attenuation (dB) and the transition band as fractions of
/// the lower Nyquist frequency.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterSpec {
    /// Kaiser design attenuation in dB.
    pub atten_db: f64,
    /// End of the passband, as a fraction of the lower Nyquist frequency.
    pub pass: f64,
    /// Start of the stopband, as a fraction of the lower Nyquist frequency.
    pub stop: f64,
}

/// Designed coefficients for one (rate pair, spec).
pub struct Bank<T> {
    /// Taps per output (even, a multiple of 8).
    pub taps: usize,
    /// Whether rows are interpolated (`L` too large for a row each).
    pub interpolated: bool,
    /// `rows * taps` coefficients; row `r` holds the kernel at fractional delay `r / rows`
    /// (exact) or `r / INTERP_PHASES` (interpolated), tap `k` at input offset `k - taps/2 + 1`.
    pub coefs: Vec<T>,
    /// The same coefficients regrouped for the grouped kernel (f32, exact phases, at most
    /// [`MAX_GROUP_PATTERNS`](super::tables::MAX_GROUP_PATTERNS) patterns).
    pub groups: Option<Groups<T>>,
    /// The rows placed for the row kernel (f32, pairs where [`rows_apply`] holds).
    pub rows: Option<RowTable<T>>,
}

/// Taps per output for `spec` at this rate pair: Kaiser's length estimate in input samples,
/// rounded up to a multiple of 8.
pub fn taps_for(rate_in: u32, rate_out: u32, spec: FilterSpec) -> usize {
    let nyq = rate_in.min(rate_out) as f64 / 2.0;
    let width = (spec.stop - spec.pass) * nyq / rate_in as f64; // normalised to rate_in
    let n = ((spec.atten_db - 7.95) / (14.36 * width)).ceil() as usize + 1;
    n.div_ceil(8).max(1) * 8
}

/// The bank for this rate pair and spec, designed anew ([`bank`](super::cache::bank) caches it).
pub(super) fn design<T: PolySample>(rate_in: u32, rate_out: u32, spec: FilterSpec) -> Bank<T> {
    let g = gcd(rate_in, rate_out) as u64;
    let l = rate_out as u64 / g;
    let taps = taps_for(rate_in, rate_out, spec);
    let interpolated = l > MAX_EXACT_PHASES;
    let (rows, step) = if interpolated {
        (INTERP_PHASES + 1, 1.0 / INTERP_PHASES as f64)
    } else {
        (l as usize, 1.0 / l as f64)
    };
    let nyq = rate_in.min(rate_out) as f64 / 2.0;
    // Cutoff in the middle of the transition band, in cycles per input sample.
    let fc = (spec.pass + spec.stop) / 2.0 * nyq / rate_in as f64;
    let beta = kaiser_beta(spec.atten_db);
    let i0b = bessel_i0(beta);
    let half = taps as f64 / 2.0;
    let mut coefs = Vec::with_capacity(rows * taps);
    let mut row = vec![0.0f64; taps];
    for r in 0..rows {
        let frac = r as f64 * step;
        for (k, c) in row.iter_mut().enumerate() {
            // Distance from the output instant to input frame k.
            let tau = frac - (k as f64 - half + 1.0);
            let u = tau / half;
            let w = if u.abs() >= 1.0 {
                0.0
            } else {
                bessel_i0(beta * (1.0 - u * u).sqrt()) / i0b
            };
            let x = 2.0 * fc * tau;
            let sinc = if x == 0.0 {
                1.0
            } else if (x - x.round()).abs() < 1e-9 {
                // A zero of the sinc: exactly zero, so the kernels can skip it (every M-th tap
                // of a decimation by M with the cutoff at the output Nyquist frequency; every
                // tap but one of phase 0 of an interpolation by L with the cutoff at the input
                // Nyquist frequency).
                0.0
            } else {
                (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
            };
            *c = 2.0 * fc * sinc * w;
        }
        // Unity gain at DC for every phase (no ripple from phase to phase).
        let sum: f64 = row.iter().sum();
        coefs.extend(row.iter().map(|&c| T::from_f64(c / sum)));
    }
    let m = rate_in as u64 / g;
    let groups = if !interpolated && std::mem::size_of::<T>() == 4 {
        build_groups(&coefs, taps, l, m)
    } else {
        None
    };
    let rows = (!interpolated && std::mem::size_of::<T>() == 4 && rows_apply(rate_in, rate_out))
        .then(|| build_rows(&coefs, taps, l, m));
    Bank {
        taps,
        interpolated,
        coefs,
        groups,
        rows,
    }
}

fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0f64, 1.0f64, 1.0f64);
    let q = x * x / 4.0;
    loop {
        term *= q / (k * k);
        sum += term;
        if term < sum * 1e-17 {
            return sum;
        }
        k += 1.0;
    }
}

fn kaiser_beta(atten_db: f64) -> f64 {
    if atten_db > 50.0 {
        0.1102 * (atten_db - 8.7)
    } else if atten_db >= 21.0 {
        0.5842 * (atten_db - 21.0).powf(0.4) + 0.07886 * (atten_db - 21.0)
    } else {
        0.0
    }
}
