//! The mel bands' log energies: the filterbank over the power spectrum, eight bands side by
//! side, and our own vectorisable natural logarithm.

use std::sync::OnceLock;

use super::{filters, N_BINS, N_MELS};

/// The natural logarithm of a positive, finite, normal f32 (a band's energy plus 1e-20), by
/// Cephes' `logf` method: `x = 2^e * m` with `m` in `[sqrt(1/2), sqrt(2))`, then
/// `ln(m) = f - f^2 / 2 + f^3 P(f)` with `f = m - 1` (exact) and `e * ln 2` in two parts.
/// Within 1 ulp of the true value (a test bounds it). Ours rather than libm's `logf`:
/// written with selects instead of branches, the 40 bands' logarithms run as five AVX2
/// vectors (libm's scalar calls were 5% of the engine's instructions), and the result no
/// longer depends on which C library, or which of its variants, the process loaded.
#[inline(always)]
pub(super) fn ln(x: f32) -> f32 {
    debug_assert!(x.is_normal() && x > 0.0, "{x}");
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    let bits = x.to_bits();
    // x = 2^e * m, m in [0.5, 1).
    let e = ((bits >> 23) as i32 - 126) as f32;
    let m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F00_0000);
    let small = m < SQRT_HALF;
    let e = if small { e - 1.0 } else { e };
    let f = if small { (m + m) - 1.0 } else { m - 1.0 };
    let z = f * f;
    let p = ((((((((7.037_683_6e-2 * f - 1.151_461e-1) * f + 1.167_699_9e-1) * f
        - 1.242_014_1e-1)
        * f
        + 1.424_932_3e-1)
        * f
        - 1.666_805_8e-1)
        * f
        + 2.000_071_4e-1)
        * f
        - 2.499_999_4e-1)
        * f
        + 3.333_333e-1)
        * f
        * z;
    // ln 2 = 0.693359375 (exact in a few bits) - 2.12194440e-4.
    let y = (p + -2.121_944_4e-4 * e) + -0.5 * z;
    (f + y) + 0.693_359_4 * e
}

/// Bands per group of the mel filterbank computed side by side.
pub(super) const MEL_LANES: usize = 8;
const _: () = assert!(N_MELS % MEL_LANES == 0);

/// The mel filterbank arranged for [`mel_bands`]: bands in groups of [`MEL_LANES`], each
/// group's coefficients `[k][lane]`, zero-padded to the group's longest band.
pub(super) struct MelTable {
    /// First FFT bin of each band.
    start: [usize; N_MELS],
    /// Per group: `[k][lane]` for k below the group's longest band.
    coefs: Vec<Vec<[f32; MEL_LANES]>>,
}

impl MelTable {
    /// Per group of [`MEL_LANES`] bands: their first bins and their `[k][lane]` coefficients.
    pub(super) fn groups(
        &self,
    ) -> impl Iterator<Item = (&[usize; MEL_LANES], &[[f32; MEL_LANES]])> {
        self.start
            .chunks_exact(MEL_LANES)
            .map(|s| s.try_into().expect("chunks of MEL_LANES"))
            .zip(self.coefs.iter().map(Vec::as_slice))
    }
}

pub(super) fn mel_table() -> &'static MelTable {
    static T: OnceLock<MelTable> = OnceLock::new();
    T.get_or_init(|| {
        let mut start = [0; N_MELS];
        for (s, &(first, _)) in start.iter_mut().zip(&filters::MEL_COEFFS) {
            *s = first;
        }
        let coefs = filters::MEL_COEFFS
            .chunks(MEL_LANES)
            .map(|group| {
                let longest = group.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
                for &(first, _) in group {
                    // Padded lanes read real bins (times zero).
                    assert!(first + longest <= N_BINS, "mel band past the spectrum");
                }
                (0..longest)
                    .map(|k| {
                        let mut row = [0.0; MEL_LANES];
                        for (r, (_, c)) in row.iter_mut().zip(group) {
                            *r = c.get(k).copied().unwrap_or(0.0);
                        }
                        row
                    })
                    .collect()
            })
            .collect();
        MelTable { start, coefs }
    })
}

/// Mel band energies of a power spectrum. Each band sums its bins in order from 0.0, as
/// earshot does (one chain of dependent adds per band, about 1000 in all, was the engine's
/// largest cost); eight bands run side by side instead of one after another. A padded lane
/// adds `power * 0.0 = +0.0` to a non-negative sum, which leaves it unchanged (the power is
/// finite: non-finite input samples are zeroed before the engine), so the result is the
/// same bits as the band-by-band sum.
#[inline(always)]
pub(super) fn mel_bands(power: &[f32; N_BINS]) -> [f32; N_MELS] {
    let t = mel_table();
    let mut out = [0.0f32; N_MELS];
    for ((start, coefs), bands) in t.groups().zip(out.chunks_exact_mut(MEL_LANES)) {
        let mut acc = [0.0f32; MEL_LANES];
        for (k, row) in coefs.iter().enumerate() {
            for l in 0..MEL_LANES {
                acc[l] += power[start[l] + k] * row[l];
            }
        }
        bands.copy_from_slice(&acc);
    }
    out
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "x86_64")]
    use super::super::avx2::mel_bands_avx2;
    use super::*;
    use crate::dsp::rng::xorshift;

    #[test]
    fn ln_is_within_an_ulp() {
        // Every binade from 1e-20 (the engine's floor) to 1e12, many mantissas in each.
        let mut worst = 0.0f64;
        let mut x = 1e-20f32;
        while x < 1e12 {
            for k in 0..97 {
                let v = x * (1.0 + k as f32 / 97.0);
                let want = (v as f64).ln();
                let ulp = (want.abs() as f32).max(f32::MIN_POSITIVE);
                let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
                worst = worst.max((ln(v) as f64 - want).abs() / ulp);
            }
            x *= 2.0;
        }
        // Around 1, where the logarithm is near zero and relative error is hardest.
        for k in -3000..3000 {
            let v = 1.0 + k as f32 * 2f32.powi(-22);
            let want = (v as f64).ln();
            let ulp = (want.abs() as f32).max(f32::MIN_POSITIVE);
            let ulp = (f32::from_bits(ulp.to_bits() + 1) - ulp) as f64;
            worst = worst.max((ln(v) as f64 - want).abs() / ulp);
        }
        assert!(worst <= 1.0, "worst error {worst} ulp");
        assert_eq!(ln(1.0), 0.0);
    }

    #[test]
    fn mel_bands_match_the_band_by_band_sum() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..200 {
            let mut power = [0.0f32; N_BINS];
            for p in power.iter_mut() {
                s = xorshift(s);
                // Wide dynamic range, exact zeros included.
                let u = (s >> 40) as f32 / (1u64 << 24) as f32;
                *p = if round % 7 == 0 && s % 3 == 0 {
                    0.0
                } else {
                    u.powi(8) * 1e6
                };
            }
            let ours = mel_bands(&power);
            #[cfg(target_arch = "x86_64")]
            if remotemedia_core::cpu::has_avx2() {
                // SAFETY: the CPU has AVX2.
                let gathered = unsafe { mel_bands_avx2(&power) };
                assert_eq!(gathered.map(f32::to_bits), ours.map(f32::to_bits));
            }
            for (b, &(start, coeffs)) in filters::MEL_COEFFS.iter().enumerate() {
                let mut band = 0.0f32;
                for (p, c) in power[start..start + coeffs.len()].iter().zip(coeffs) {
                    band += p * c;
                }
                assert_eq!(ours[b].to_bits(), band.to_bits(), "band {b}");
            }
        }
    }
}
