//! The power spectrum of the engine's 1024-point real FFT.
//!
//! A real FFT of even length N is an N/2-point complex FFT of the samples taken in pairs
//! followed by a post-processing pass that separates the even and odd samples' spectra. This
//! is `realfft`'s `RealToComplexEven` (the same inner FFT, planned by rustfft's planner as
//! realfft plans it, the same twiddles and the same operations in the same order, so the same
//! bits; a unit test compares them), except that the pass writes `|X[k]|^2 * scale` directly
//! instead of the complex spectrum, eight bins at a time with AVX2. realfft's pass is scalar,
//! one complex value at a time with its shuffles, and took as long as the inner FFT.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

/// Real FFT length.
pub(super) const LEN: usize = 1024;
const HALF: usize = LEN / 2;
/// Bins of the spectrum (DC to Nyquist).
pub(super) const BINS: usize = HALF + 1;
/// Pairs `(k, HALF - k)` the pass combines: `k` in `1..PAIRS + 1` (bin `HALF / 2` pairs with
/// itself and is done on its own).
const PAIRS: usize = HALF / 2 - 1;
/// Bins per AVX2 block.
const BLOCK: usize = 8;
/// Whole blocks of pairs; the rest go one by one.
const BLOCKS: usize = PAIRS / BLOCK;
// Inside a block, deinterleaving two registers of four complex values puts the eight pairs in
// lanes 0, 1, 4, 5, 2, 3, 6, 7 ("ORDER" below).

/// One stream's FFT: the plan, its buffers and the twiddles.
pub(super) struct PowerSpectrum {
    fft: Arc<dyn Fft<f32>>,
    /// The real input as pairs (`re` = even sample, `im` = odd sample).
    input: Vec<Complex<f32>>,
    output: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    /// realfft's twiddles, `e^(-2 pi i k / LEN) / 2` for `k` in `1..=PAIRS`, split into real
    /// and imaginary parts.
    tw_re: [f32; PAIRS],
    tw_im: [f32; PAIRS],
}

impl PowerSpectrum {
    pub(super) fn new() -> Self {
        let fft = FftPlanner::<f32>::new().plan_fft_forward(HALF);
        let scratch = vec![Complex::default(); fft.get_outofplace_scratch_len()];
        let (mut tw_re, mut tw_im) = ([0.0; PAIRS], [0.0; PAIRS]);
        for i in 0..PAIRS {
            let angle = -2f64 * std::f64::consts::PI / LEN as f64 * (i + 1) as f64;
            // As realfft computes them: f64 cos/sin rounded to f32, then halved (exact).
            tw_re[i] = angle.cos() as f32 * 0.5;
            tw_im[i] = angle.sin() as f32 * 0.5;
        }
        Self {
            fft,
            input: vec![Complex::default(); HALF],
            output: vec![Complex::default(); HALF],
            scratch,
            tw_re,
            tw_im,
        }
    }

    /// The input buffer, [`LEN`] real samples.
    pub(super) fn input(&mut self) -> &mut [f32; LEN] {
        let pairs: &mut [Complex<f32>] = &mut self.input;
        // SAFETY: `Complex<f32>` is `#[repr(C)]` with `re` then `im`, so HALF of them are LEN
        // contiguous f32 with sample 2m in `[m].re` and 2m + 1 in `[m].im` (as realfft does).
        unsafe { &mut *(pairs.as_mut_ptr() as *mut [f32; LEN]) }
    }

    /// `|X[k]|^2 * scale` of the real FFT of the input, for `k` in `0..BINS`. The input is
    /// left in an unspecified state.
    #[inline(always)]
    pub(super) fn power<const AVX2: bool>(&mut self, scale: f32, power: &mut [f32; BINS]) {
        self.fft.process_outofplace_with_scratch(
            &mut self.input,
            &mut self.output,
            &mut self.scratch,
        );
        let z: &[Complex<f32>; HALF] = self.output[..].try_into().expect("HALF outputs");
        // The pairs the AVX2 blocks did not cover (all of them in the portable build; on
        // another architecture `AVX2` cannot skip any).
        #[cfg(target_arch = "x86_64")]
        let first = if AVX2 {
            // SAFETY: `AVX2` is set only by callers running with AVX2 enabled.
            unsafe { self.blocks_avx2(z, scale, power) };
            1 + BLOCKS * BLOCK
        } else {
            1
        };
        #[cfg(not(target_arch = "x86_64"))]
        let first = 1;
        for k in first..=PAIRS {
            let (p, q) = pair(
                z[k],
                z[HALF - k],
                self.tw_re[k - 1],
                self.tw_im[k - 1],
                scale,
            );
            power[k] = p;
            power[HALF - k] = q;
        }
        // Bins 0 and HALF: the sum and difference of the first value's parts; bin HALF / 2:
        // the middle value conjugated (same power). As realfft, then `norm_sqr`.
        let z0 = z[0];
        let (dc, nyquist) = (z0.re + z0.im, z0.re - z0.im);
        // (`norm_sqr` of a value with a zero imaginary part: `re * re + 0.0`, the same.)
        power[0] = dc * dc * scale;
        power[HALF] = nyquist * nyquist * scale;
        let m = z[HALF / 2];
        power[HALF / 2] = (m.re * m.re + m.im * m.im) * scale;
    }

    /// [`pair`] for `k` in `1..=BLOCKS * BLOCK`, eight pairs per step.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn blocks_avx2(&self, z: &[Complex<f32>; HALF], scale: f32, power: &mut [f32; BINS]) {
        use std::arch::x86_64::*;
        let zp = z.as_ptr() as *const f32;
        let half = _mm256_set1_ps(0.5);
        let scale = _mm256_set1_ps(scale);
        // Into ORDER and back to 0..8 (ORDER is its own inverse), and to 7..=0 for the
        // mirrored bins.
        let forward = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
        let backward = _mm256_setr_epi32(7, 6, 3, 2, 5, 4, 1, 0);
        // Reverses the four complex values of a register.
        let reverse = |v: __m256| {
            _mm256_castpd_ps(_mm256_permute4x64_pd::<0b00_01_10_11>(_mm256_castps_pd(v)))
        };
        for b in 0..BLOCKS {
            let k = 1 + b * BLOCK;
            let lo = HALF - k - (BLOCK - 1);
            // SAFETY: k + 8 <= HALF and lo + 8 <= HALF: every load is inside `z`, whose
            // complex values are two f32 each.
            let (a0, a1, c0, c1) = (
                _mm256_loadu_ps(zp.add(2 * k)),
                _mm256_loadu_ps(zp.add(2 * k + 8)),
                _mm256_loadu_ps(zp.add(2 * lo)),
                _mm256_loadu_ps(zp.add(2 * lo + 8)),
            );
            // z[HALF - k - j] for j in 0..8.
            let (b0, b1) = (reverse(c1), reverse(c0));
            // Real and imaginary parts, lanes in ORDER.
            let a_re = _mm256_shuffle_ps::<0b10_00_10_00>(a0, a1);
            let a_im = _mm256_shuffle_ps::<0b11_01_11_01>(a0, a1);
            let b_re = _mm256_shuffle_ps::<0b10_00_10_00>(b0, b1);
            let b_im = _mm256_shuffle_ps::<0b11_01_11_01>(b0, b1);
            let tw_re =
                _mm256_permutevar8x32_ps(_mm256_loadu_ps(self.tw_re.as_ptr().add(k - 1)), forward);
            let tw_im =
                _mm256_permutevar8x32_ps(_mm256_loadu_ps(self.tw_im.as_ptr().add(k - 1)), forward);
            // `pair`, lane by lane.
            let sum_re = _mm256_add_ps(a_re, b_re);
            let sum_im = _mm256_add_ps(a_im, b_im);
            let diff_re = _mm256_sub_ps(a_re, b_re);
            let diff_im = _mm256_sub_ps(a_im, b_im);
            let tw_real =
                _mm256_add_ps(_mm256_mul_ps(sum_im, tw_re), _mm256_mul_ps(diff_re, tw_im));
            let tw_imag =
                _mm256_sub_ps(_mm256_mul_ps(sum_im, tw_im), _mm256_mul_ps(diff_re, tw_re));
            let half_sum_re = _mm256_mul_ps(half, sum_re);
            let half_diff_im = _mm256_mul_ps(half, diff_im);
            let out_re = _mm256_add_ps(half_sum_re, tw_real);
            let out_im = _mm256_add_ps(half_diff_im, tw_imag);
            let rev_re = _mm256_sub_ps(half_sum_re, tw_real);
            let rev_im = _mm256_sub_ps(tw_imag, half_diff_im);
            let norm = |re: __m256, im: __m256| {
                _mm256_mul_ps(
                    _mm256_add_ps(_mm256_mul_ps(re, re), _mm256_mul_ps(im, im)),
                    scale,
                )
            };
            let p = _mm256_permutevar8x32_ps(norm(out_re, out_im), forward);
            let q = _mm256_permutevar8x32_ps(norm(rev_re, rev_im), backward);
            // SAFETY: bins k..k + 8 and lo..lo + 8 are inside `power` (BINS > HALF).
            _mm256_storeu_ps(power.as_mut_ptr().add(k), p);
            _mm256_storeu_ps(power.as_mut_ptr().add(lo), q);
        }
    }
}

/// realfft's post-processing of the pair `(z[k], z[HALF - k])` with twiddle `(tw_re, tw_im)`
/// (already halved), then `norm_sqr() * scale` of bins `k` and `HALF - k`.
#[inline(always)]
fn pair(a: Complex<f32>, b: Complex<f32>, tw_re: f32, tw_im: f32, scale: f32) -> (f32, f32) {
    let sum = a + b;
    let diff = a - b;
    let tw_real = sum.im * tw_re + diff.re * tw_im;
    let tw_imag = sum.im * tw_im - diff.re * tw_re;
    let half_sum_re = 0.5 * sum.re;
    let half_diff_im = 0.5 * diff.im;
    let out = Complex::new(half_sum_re + tw_real, half_diff_im + tw_imag);
    let rev = Complex::new(half_sum_re - tw_real, tw_imag - half_diff_im);
    (out.norm_sqr() * scale, rev.norm_sqr() * scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsp::rng::XorShift;
    use realfft::RealFftPlanner;

    fn signal(seed: u64) -> Vec<f32> {
        let mut r = XorShift(seed);
        (0..LEN)
            .map(|i| {
                let u = r.next();
                // Up to i16 scale, as the engine feeds it; a quarter of zero padding.
                if i < 768 {
                    (u * 20_000.0 + (i as f32 * 0.3).sin() * 5_000.0).round()
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn realfft_power(x: &[f32], scale: f32) -> Vec<f32> {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(LEN);
        let mut input = x.to_vec();
        let mut out = fft.make_output_vec();
        fft.process(&mut input, &mut out).unwrap();
        out.iter().map(|c| c.norm_sqr() * scale).collect()
    }

    fn ours<const AVX2: bool>(spec: &mut PowerSpectrum, x: &[f32], scale: f32) -> Vec<f32> {
        spec.input().copy_from_slice(x);
        let mut power = [0.0; BINS];
        spec.power::<AVX2>(scale, &mut power);
        power.to_vec()
    }

    #[test]
    fn the_same_bits_as_realfft() {
        let scale = 1.0 / (32768.0f32 * 32768.0);
        let mut spec = PowerSpectrum::new();
        for seed in 1..50u64 {
            let x = signal(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let want = realfft_power(&x, scale);
            let got = ours::<false>(&mut spec, &x, scale);
            assert_eq!(got, want, "portable, seed {seed}");
            #[cfg(target_arch = "x86_64")]
            if remotemedia_core::cpu::has_avx2() {
                let got = ours::<true>(&mut spec, &x, scale);
                assert_eq!(got, want, "avx2, seed {seed}");
            }
        }
    }

    #[test]
    fn a_tone_lands_in_its_bin() {
        let k = 100;
        let x: Vec<f32> = (0..LEN)
            .map(|i| (2.0 * std::f32::consts::PI * k as f32 * i as f32 / LEN as f32).cos())
            .collect();
        let mut spec = PowerSpectrum::new();
        let p = ours::<false>(&mut spec, &x, 1.0);
        let (peak, _) =
            p.iter().enumerate().fold(
                (0, 0.0f32),
                |best, (i, &v)| if v > best.1 { (i, v) } else { best },
            );
        assert_eq!(peak, k);
        // A full-scale cosine over N samples: |X[k]| = N / 2.
        assert!(
            (p[k] / (LEN as f32 / 2.0).powi(2) - 1.0).abs() < 1e-3,
            "{}",
            p[k]
        );
    }
}
