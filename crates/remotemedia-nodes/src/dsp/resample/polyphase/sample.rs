//! [`PolySample`], the sample types the engine runs in (f32, f64), with each kernel's safe
//! entry point: bounds checks, then the AVX2/FMA kernel (f32, when the CPU has it) or the
//! portable one.

#[cfg(target_arch = "x86_64")]
use super::avx2::{decim_avx2, dot_f32_avx2, group_shared_avx2, interp_blocks, rows_avx2};
use super::scalar::{dot_f32_scalar, dot_f64};
use super::MAX_PHASE_MAJOR_L;
use remotemedia_core::data::Sample;

/// Sample types the polyphase engine runs in: the data model's [`Sample`] with the engine's
/// kernels.
pub trait PolySample: Sample {
    /// `sum(a[i] * b[i])`, in a fixed order for a given length.
    fn dot(a: &[Self], b: &[Self]) -> Self;
    /// `a * (1 - t) + b * t`.
    fn lerp(a: Self, b: Self, t: f64) -> Self;
    /// Whether this type has the grouped (8 outputs per vector) kernel on this CPU.
    fn grouped() -> bool {
        false
    }
    /// `N` groups (1, 2, 4 or 8): `out[8 * g + i] = sum_k coefs[g % D][8 * k + i] * xs[g][k]`
    /// for `g < N`, each lane summed in order of `k` with fused multiply-adds from zero,
    /// whatever `D` and `N` (so a group's output never depends on which call computed it).
    /// `D` (dividing `N`) classes of coefficients: the `N / D` groups of a class share a
    /// pattern (one period apart, or the same group in other channels), and each coefficient
    /// vector is loaded once for all of them.
    fn group_shared<const D: usize, const N: usize>(
        _coefs: [&[Self]; D],
        _xs: [&[Self]; N],
        _width: usize,
        _out: &mut [Self],
    ) {
        unreachable!("grouped kernel only where grouped() is true")
    }
    /// `B` (1..=6) outputs of one phase: `out[i * out_stride] = sum_k row[k] * x[i * stride +
    /// k]`, each output's products summed by fused multiply-adds into two vector
    /// accumulators (even and odd vectors of `row`), added, then summed across the eight lanes
    /// in a fixed order: the same arithmetic for an output whatever `B` and whichever outputs
    /// share the call. `row.len()` is a multiple of 8.
    fn rows<const B: usize>(
        _row: &[Self],
        _x: &[Self],
        _stride: usize,
        _out: &mut [Self],
        _out_stride: usize,
    ) {
        unreachable!("row kernel only where grouped() is true")
    }
    /// Decimation (one phase) over the taps listed in `h` (coefficient) and `at` (plane,
    /// offset): `out[t] = sum_i h[i] * d[at[i].0 * stride + at[i].1 + t]` for every
    /// `t < out.len()` (a multiple of 8), each output summed in order of `i` with fused
    /// multiply-adds. `d` holds the input deinterleaved by `M` (`M` planes of `stride`).
    fn decimate(_h: &[Self], _at: &[(u32, u32)], _d: &[Self], _stride: usize, _out: &mut [Self]) {
        unreachable!("phase-major kernels only where grouped() is true")
    }
    /// Interpolation, `l` phases (1..=6): `out[p * n + t] = sum_k h[p * taps + k] * x[t + k]`
    /// for every phase `p < l` and `t < n` (`n` a multiple of 8), summed in order of `k` with
    /// fused multiply-adds.
    fn interpolate(_h: &[Self], _x: &[Self], _l: usize, _n: usize, _out: &mut [Self]) {
        unreachable!("phase-major kernels only where grouped() is true")
    }
}

impl PolySample for f32 {
    #[inline]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        dot_f32(a, b)
    }
    #[inline]
    fn lerp(a: f32, b: f32, t: f64) -> f32 {
        let t = t as f32;
        a + (b - a) * t
    }
    fn grouped() -> bool {
        use_avx2()
    }
    #[inline]
    fn group_shared<const D: usize, const N: usize>(
        coefs: [&[f32]; D],
        xs: [&[f32]; N],
        width: usize,
        out: &mut [f32],
    ) {
        assert!(D > 0 && N <= 8 && N % D == 0 && out.len() >= 8 * N);
        for g in 0..N {
            assert!(coefs[g % D].len() >= width * 8 && xs[g].len() >= width);
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2/FMA present (grouped() is true only then); lengths checked above.
        unsafe {
            group_shared_avx2(coefs, xs, width, out)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!()
    }
    #[inline]
    fn rows<const B: usize>(
        row: &[f32],
        x: &[f32],
        stride: usize,
        out: &mut [f32],
        out_stride: usize,
    ) {
        assert!((1..=6).contains(&B) && row.len() % 8 == 0);
        assert!(x.len() >= (B - 1) * stride + row.len() && out.len() > (B - 1) * out_stride);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2/FMA present (grouped() is true only then); bounds checked above.
        unsafe {
            rows_avx2::<B>(row, x.as_ptr(), stride, out.as_mut_ptr(), out_stride)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!()
    }
    fn decimate(h: &[f32], at: &[(u32, u32)], d: &[f32], stride: usize, out: &mut [f32]) {
        let n = out.len();
        assert!(n % 8 == 0 && h.len() == at.len());
        for &(r, q) in at {
            assert!((q as usize) + n <= stride && (r as usize + 1) * stride <= d.len());
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX2/FMA present (grouped() is true only then); bounds checked above.
        unsafe {
            let mut t = 0;
            while t + 64 <= n {
                decim_avx2::<8>(h, at, d.as_ptr().add(t), stride, &mut out[t..t + 64]);
                t += 64;
            }
            // The rest (a 20 ms push leaves up to seven vectors) four and two vectors at a
            // time: a single vector is one chain of dependent multiply-adds.
            if t + 32 <= n {
                decim_avx2::<4>(h, at, d.as_ptr().add(t), stride, &mut out[t..t + 32]);
                t += 32;
            }
            if t + 16 <= n {
                decim_avx2::<2>(h, at, d.as_ptr().add(t), stride, &mut out[t..t + 16]);
                t += 16;
            }
            while t < n {
                decim_avx2::<1>(h, at, d.as_ptr().add(t), stride, &mut out[t..t + 8]);
                t += 8;
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!()
    }
    fn interpolate(h: &[f32], x: &[f32], l: usize, n: usize, out: &mut [f32]) {
        assert!(n % 8 == 0 && (1..=MAX_PHASE_MAJOR_L).contains(&(l as u64)));
        let taps = h.len() / l;
        assert!(h.len() == taps * l && x.len() >= n + taps - 1 && out.len() >= l * n);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in decimate; bounds checked above.
        unsafe {
            match l {
                1 => interp_blocks::<1, 8>(h, x, taps, n, out),
                2 => interp_blocks::<2, 4>(h, x, taps, n, out),
                3 => interp_blocks::<3, 3>(h, x, taps, n, out),
                4 => interp_blocks::<4, 2>(h, x, taps, n, out),
                5 => interp_blocks::<5, 2>(h, x, taps, n, out),
                _ => interp_blocks::<6, 1>(h, x, taps, n, out),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!()
    }
}

impl PolySample for f64 {
    #[inline]
    fn dot(a: &[f64], b: &[f64]) -> f64 {
        dot_f64(a, b)
    }
    #[inline]
    fn lerp(a: f64, b: f64, t: f64) -> f64 {
        a + (b - a) * t
    }
}

/// Which f32 dot kernel this process uses (the CPU's features do not change mid-run).
pub(super) fn use_avx2() -> bool {
    remotemedia_core::cpu::has_avx2_fma()
}

/// f32 dot product; both slices have the same length, a multiple of 8 (the tap count is
/// rounded up to 8).
#[inline]
fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        // SAFETY: AVX2 and FMA are present (checked above).
        return unsafe { dot_f32_avx2(a, b) };
    }
    dot_f32_scalar(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_kernels_agree() {
        let a: Vec<f32> = (0..216).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..216).map(|i| (i as f32 * 0.11).cos()).collect();
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot_f32_scalar(&a, &b) as f64 - exact).abs() < 1e-4);
        assert!((dot_f32(&a, &b) as f64 - exact).abs() < 1e-4);
    }
}
