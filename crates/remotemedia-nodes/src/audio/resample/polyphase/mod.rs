//! Polyphase FIR resampler: Kaiser-windowed sinc, one stage, any rate pair, bounded latency.
//!
//! Output frame `j` sits at input time `t = j * rate_in / rate_out = n + p / L` (`L` =
//! `rate_out / gcd`); it is the dot product of the `taps` input frames around `n` with the
//! kernel sampled at phase `p / L`. The kernel is centred on `t`, so there is no group delay
//! to compensate: the stream only has to wait for `taps / 2` frames of look-ahead (the
//! latency). When `L` is small enough, every phase has its own row of coefficients; otherwise
//! (pairs with no large common factor, 48000 -> 44101) a table of [`INTERP_PHASES`] rows is
//! interpolated linearly between neighbouring rows, which keeps the table small and the
//! latency the same as for any other pair.
//!
//! Coefficients are designed once per (rate pair, quality, precision) in f64 and kept in a
//! process-wide cache. The f32 inner loop is an f32 dot product (AVX2/FMA when the CPU has it,
//! chosen once per process, so a stream's output never depends on chunking).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

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

/// Sample types the polyphase engine runs in.
pub trait PolySample: Copy + Default + PartialEq + Send + Sync + 'static {
    /// From the f64 design.
    fn from_f64(v: f64) -> Self;
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
    fn from_f64(v: f64) -> Self {
        v as f32
    }
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

/// `B` vectors of 8 outputs of the decimation kernel, starting at `d` (already offset to the
/// first output); same arithmetic per lane whatever `B`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn decim_avx2<const B: usize>(
    h: &[f32],
    at: &[(u32, u32)],
    d: *const f32,
    stride: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); B];
    // SAFETY: plane r, offset q + 8 * b + 7 < stride (checked by the caller).
    for (c, &(r, q)) in h.iter().zip(at) {
        let c = _mm256_broadcast_ss(c);
        let p = d.add(r as usize * stride + q as usize);
        for (b, a) in acc.iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(c, _mm256_loadu_ps(p.add(8 * b)), *a);
        }
    }
    for (b, a) in acc.iter().enumerate() {
        _mm256_storeu_ps(out.as_mut_ptr().add(8 * b), *a);
    }
}

/// The interpolation kernel over `n` outputs per phase: blocks of `B` vectors, then single
/// vectors (same arithmetic per lane).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn interp_blocks<const L: usize, const B: usize>(
    h: &[f32],
    x: &[f32],
    taps: usize,
    n: usize,
    out: &mut [f32],
) {
    let mut t = 0;
    while t + 8 * B <= n {
        interp_avx2::<L, B>(h, x.as_ptr().add(t), taps, n, out.as_mut_ptr().add(t));
        t += 8 * B;
    }
    // The rest (up to B - 1 vectors: seven at 1:2 with a 20 ms push) in smaller blocks
    // before single vectors, each of which is L chains of dependent multiply-adds.
    if B > 4 && t + 32 <= n {
        interp_avx2::<L, 4>(h, x.as_ptr().add(t), taps, n, out.as_mut_ptr().add(t));
        t += 32;
    }
    if B > 2 && t + 16 <= n {
        interp_avx2::<L, 2>(h, x.as_ptr().add(t), taps, n, out.as_mut_ptr().add(t));
        t += 16;
    }
    while t < n {
        interp_avx2::<L, 1>(h, x.as_ptr().add(t), taps, n, out.as_mut_ptr().add(t));
        t += 8;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
// Register-blocked: `acc[p][b]` reads best with plain indices.
#[allow(clippy::needless_range_loop)]
unsafe fn interp_avx2<const L: usize, const B: usize>(
    h: &[f32],
    x: *const f32,
    taps: usize,
    n: usize,
    out: *mut f32,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); B]; L];
    let hp = h.as_ptr();
    // SAFETY: k < taps; x holds 8 * B + taps - 1 values from here, h holds L * taps, out
    // L planes of n (checked by the caller).
    for k in 0..taps {
        let c: [__m256; L] = std::array::from_fn(|p| _mm256_broadcast_ss(&*hp.add(p * taps + k)));
        for b in 0..B {
            let v = _mm256_loadu_ps(x.add(8 * b + k));
            for p in 0..L {
                acc[p][b] = _mm256_fmadd_ps(c[p], v, acc[p][b]);
            }
        }
    }
    for p in 0..L {
        for b in 0..B {
            _mm256_storeu_ps(out.add(p * n + 8 * b), acc[p][b]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn group_shared_avx2<const D: usize, const N: usize>(
    coefs: [&[f32]; D],
    xs: [&[f32]; N],
    width: usize,
    out: &mut [f32],
) {
    use std::arch::x86_64::*;
    let c: [*const f32; D] = std::array::from_fn(|g| coefs[g].as_ptr());
    let x: [*const f32; N] = std::array::from_fn(|g| xs[g].as_ptr());
    let mut a = [_mm256_setzero_ps(); N];
    // SAFETY: k < width; coefs hold width * 8 and xs width values, out 8 * N (checked by the
    // caller).
    for k in 0..width {
        for (d, cd) in c.iter().enumerate() {
            let cv = _mm256_loadu_ps(cd.add(8 * k));
            let mut g = d;
            while g < N {
                a[g] = _mm256_fmadd_ps(cv, _mm256_broadcast_ss(&*x[g].add(k)), a[g]);
                g += D;
            }
        }
    }
    for (g, v) in a.iter().enumerate() {
        _mm256_storeu_ps(out.as_mut_ptr().add(8 * g), *v);
    }
}

impl PolySample for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline]
    fn dot(a: &[f64], b: &[f64]) -> f64 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0.0f64; 4];
        let mut ca = a.chunks_exact(4);
        let mut cb = b.chunks_exact(4);
        for (x, y) in (&mut ca).zip(&mut cb) {
            for k in 0..4 {
                acc[k] += x[k] * y[k];
            }
        }
        let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
        for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
            s += x * y;
        }
        s
    }
    #[inline]
    fn lerp(a: f64, b: f64, t: f64) -> f64 {
        a + (b - a) * t
    }
}

/// Which f32 dot kernel this process uses (the CPU's features do not change mid-run).
fn use_avx2() -> bool {
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

/// The portable kernel: eight independent accumulators, the same association as the AVX2
/// kernel's lanes.
fn dot_f32_scalar(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_f32_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut acc2 = _mm256_setzero_ps();
    let mut acc3 = _mm256_setzero_ps();
    let mut i = 0;
    // SAFETY (all loads): i + 8 * k + 8 <= n for every load below.
    while i + 32 <= n {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
        acc1 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 8)),
            _mm256_loadu_ps(pb.add(i + 8)),
            acc1,
        );
        acc2 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 16)),
            _mm256_loadu_ps(pb.add(i + 16)),
            acc2,
        );
        acc3 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 24)),
            _mm256_loadu_ps(pb.add(i + 24)),
            acc3,
        );
        i += 32;
    }
    while i + 8 <= n {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
        i += 8;
    }
    let acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
    let hi = _mm256_extractf128_ps(acc, 1);
    let lo = _mm256_castps256_ps128(acc);
    let s4 = _mm_add_ps(lo, hi);
    let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    let s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    let mut s = _mm_cvtss_f32(s1);
    while i < n {
        s += *pa.add(i) * *pb.add(i);
        i += 1;
    }
    s
}

/// [`PolySample::rows`] on AVX2/FMA: each vector of the row is loaded once for the `B`
/// outputs.
///
/// # Safety
/// AVX2 and FMA present; `row.len()` a multiple of 8; `x` valid for `(B - 1) * stride +
/// row.len()` reads and `out` for writes at `i * out_stride`, `i < B`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)] // lanes of two arrays and a pointer, unrolled
unsafe fn rows_avx2<const B: usize>(
    row: &[f32],
    x: *const f32,
    stride: usize,
    out: *mut f32,
    out_stride: usize,
) {
    use std::arch::x86_64::*;
    let taps = row.len();
    let pr = row.as_ptr();
    let mut even = [_mm256_setzero_ps(); B];
    let mut odd = [_mm256_setzero_ps(); B];
    let mut k = 0;
    // SAFETY (all loads): k + 16 <= taps (k + 8 <= taps for the tail) below.
    while k + 16 <= taps {
        let c0 = _mm256_loadu_ps(pr.add(k));
        let c1 = _mm256_loadu_ps(pr.add(k + 8));
        for i in 0..B {
            let xi = x.add(i * stride + k);
            even[i] = _mm256_fmadd_ps(c0, _mm256_loadu_ps(xi), even[i]);
            odd[i] = _mm256_fmadd_ps(c1, _mm256_loadu_ps(xi.add(8)), odd[i]);
        }
        k += 16;
    }
    if k < taps {
        let c0 = _mm256_loadu_ps(pr.add(k));
        for i in 0..B {
            even[i] = _mm256_fmadd_ps(c0, _mm256_loadu_ps(x.add(i * stride + k)), even[i]);
        }
    }
    for i in 0..B {
        let acc = _mm256_add_ps(even[i], odd[i]);
        let s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        let s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
        *out.add(i * out_stride) = _mm_cvtss_f32(s1);
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
    /// [`MAX_GROUP_PATTERNS`] patterns).
    pub groups: Option<Groups<T>>,
    /// The rows placed for the row kernel (f32, pairs where [`rows_apply`] holds).
    pub rows: Option<RowTable<T>>,
}

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
fn rows_apply(rate_in: u32, rate_out: u32) -> bool {
    let g = gcd(rate_in, rate_out);
    let (m, l) = ((rate_in / g) as u64, (rate_out / g) as u64);
    let per_push = rate_out as u64 / 50;
    m % 8 == 0 && l >= 2 && l * 3 <= per_push && l / gcd(l as u32, 8) as u64 * 16 > per_push
}

fn build_rows<T: PolySample>(rows: &[T], taps: usize, l: u64, m: u64) -> RowTable<T> {
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

/// A table whose first value sits on a 64-byte boundary. A vector load that straddles two
/// cache lines costs about two loads; with `Vec`'s 16-byte alignment half the grouped
/// kernel's coefficient loads did (`docs/resampling.md`).
pub struct Aligned<T> {
    buf: Vec<T>,
    off: usize,
    len: usize,
}

impl<T: Copy + Default> Aligned<T> {
    fn new(values: &[T]) -> Self {
        let pad = 64 / std::mem::size_of::<T>().max(1);
        let mut buf = vec![T::default(); values.len() + pad];
        let off = buf.as_ptr().align_offset(64).min(pad);
        buf[off..off + values.len()].copy_from_slice(values);
        Self {
            buf,
            off,
            len: values.len(),
        }
    }
}

impl<T> std::ops::Deref for Aligned<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[self.off..self.off + self.len]
    }
}

fn build_groups<T: PolySample>(rows: &[T], taps: usize, l: u64, m: u64) -> Option<Groups<T>> {
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

type CacheKey = (u32, u32, u64, u64, u64, &'static str);

type AnyBank = Arc<dyn std::any::Any + Send + Sync>;

fn cache() -> &'static Mutex<HashMap<CacheKey, AnyBank>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, AnyBank>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Taps per output for `spec` at this rate pair: Kaiser's length estimate in input samples,
/// rounded up to a multiple of 8.
pub fn taps_for(rate_in: u32, rate_out: u32, spec: FilterSpec) -> usize {
    let nyq = rate_in.min(rate_out) as f64 / 2.0;
    let width = (spec.stop - spec.pass) * nyq / rate_in as f64; // normalised to rate_in
    let n = ((spec.atten_db - 7.95) / (14.36 * width)).ceil() as usize + 1;
    n.div_ceil(8).max(1) * 8
}

/// The coefficient bank for this rate pair and spec, designed on first use and cached.
pub fn bank<T: PolySample>(rate_in: u32, rate_out: u32, spec: FilterSpec) -> Arc<Bank<T>> {
    let key: CacheKey = (
        rate_in,
        rate_out,
        spec.atten_db.to_bits(),
        spec.pass.to_bits(),
        spec.stop.to_bits(),
        std::any::type_name::<T>(),
    );
    let c = cache();
    if let Some(b) = c.lock().expect("cache lock").get(&key) {
        if let Ok(b) = Arc::clone(b).downcast::<Bank<T>>() {
            return b;
        }
    }
    let b = Arc::new(design::<T>(rate_in, rate_out, spec));
    c.lock()
        .expect("cache lock")
        .insert(key, Arc::clone(&b) as AnyBank);
    b
}

fn design<T: PolySample>(rate_in: u32, rate_out: u32, spec: FilterSpec) -> Bank<T> {
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

pub(crate) fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Eight history frames on a 32-byte boundary.
#[derive(Clone, Copy, Default)]
#[repr(C, align(32))]
struct Block<T>([T; 8]);

/// A channel's history: a growable run of frames whose absolute index 8k starts a 32-byte
/// boundary (with `PolyphaseStream::base` a multiple of 8), and whose last block is zero past
/// the end. The row kernel's vector loads are then aligned and may read to the end of the
/// last block. (A `Vec` of aligned blocks is all this needs; the aligned-vector crates add an
/// allocator-level type for the same thing.)
#[derive(Clone, Default)]
struct Hist<T> {
    blocks: Vec<Block<T>>,
    len: usize,
}

impl<T: Copy + Default> Hist<T> {
    /// Frames up to the end of the last block (zeros past `len`).
    fn padded(&self) -> &[T] {
        const { assert!(std::mem::size_of::<Block<T>>() == 8 * std::mem::size_of::<T>()) };
        // SAFETY: `Block<T>` is `repr(C)` over `[T; 8]` with no padding (asserted above), so
        // the blocks are `8 * blocks.len()` contiguous, initialised `T`s.
        unsafe { std::slice::from_raw_parts(self.blocks.as_ptr().cast(), self.blocks.len() * 8) }
    }

    fn padded_mut(&mut self) -> &mut [T] {
        const { assert!(std::mem::size_of::<Block<T>>() == 8 * std::mem::size_of::<T>()) };
        // SAFETY: as in `padded`, and `&mut self` is the only borrow.
        unsafe {
            std::slice::from_raw_parts_mut(self.blocks.as_mut_ptr().cast(), self.blocks.len() * 8)
        }
    }

    fn clear(&mut self) {
        self.blocks.clear();
        self.len = 0;
    }

    /// Grows by `n` frames, zeros, and returns them to be written.
    fn grow(&mut self, n: usize) -> &mut [T] {
        let (start, len) = (self.len, self.len + n);
        self.blocks.resize(len.div_ceil(8), Block::default());
        self.len = len;
        &mut self.padded_mut()[start..len]
    }

    fn extend_from_slice(&mut self, xs: &[T]) {
        // Fill the last block, then whole blocks straight from `xs` (no zeroing first).
        let fill = (8 - self.len % 8) % 8;
        let (head, rest) = xs.split_at(fill.min(xs.len()));
        if !head.is_empty() {
            let len = self.len;
            self.padded_mut()[len..len + head.len()].copy_from_slice(head);
            self.len += head.len();
        }
        let whole = rest.chunks_exact(8);
        let tail = whole.remainder();
        self.blocks.reserve(rest.len().div_ceil(8));
        self.blocks
            .extend(whole.map(|c| Block(c.try_into().expect("8 frames"))));
        self.len += rest.len() - tail.len();
        self.grow(tail.len()).copy_from_slice(tail);
    }

    /// Zeros up to `len` frames.
    fn resize_zeros(&mut self, len: usize) {
        if len > self.len {
            self.grow(len - self.len);
        }
    }

    /// Drops the first `n` frames, a multiple of 8.
    fn drop_front(&mut self, n: usize) {
        debug_assert!(n % 8 == 0 && n <= self.len);
        self.blocks.drain(..n / 8);
        self.len -= n;
    }
}

impl<T: Copy + Default> std::ops::Deref for Hist<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.padded()[..self.len]
    }
}

/// `src` (whole frames of `M`) deinterleaved into the first `src.len() / M` values of `M`
/// planes `stride` apart: `planes[r * stride + u] = src[u * M + r]`. With `M` known at
/// compile time this vectorises (the runtime-`M` loop took a quarter of 48k -> 16k's time).
fn deinterleave<T: Copy, const M: usize>(planes: &mut [T], stride: usize, src: &[T]) {
    let u_end = src.len() / M;
    let mut rows = planes.chunks_exact_mut(stride);
    let planes: [&mut [T]; M] = std::array::from_fn(|_| {
        let row = rows.next().expect("M planes");
        &mut row[..u_end]
    });
    for (u, f) in src.chunks_exact(M).enumerate() {
        for r in 0..M {
            planes[r][u] = f[r];
        }
    }
}

/// Output frames `t < full` of the interpolation body, `L` phases of `CH` channels:
/// `body[(t * L + p) * CH + c] = planes[(c * L + p) * n + 1 + t]`.
fn interleave<T: Copy, const L: usize, const CH: usize>(
    body: &mut [T],
    planes: &[T],
    n: usize,
    full: usize,
) {
    let cols: [[&[T]; L]; CH] =
        std::array::from_fn(|c| std::array::from_fn(|p| &planes[(c * L + p) * n + 1..][..full]));
    for (t, frame) in body[..full * L * CH].chunks_exact_mut(L * CH).enumerate() {
        for p in 0..L {
            for c in 0..CH {
                frame[p * CH + c] = cols[c][p][t];
            }
        }
    }
}

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

/// Streaming polyphase resampler over interleaved frames; any chunking gives the same output.
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

    /// One dot product per output (interpolated tables, f64, CPUs without AVX2).
    fn produce_dot(&mut self, end: u64, dst: &mut [T]) {
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
    /// 147 phases). Loads are aligned (see [`RowTable`]).
    fn produce_rows(&mut self, end: u64, dst: &mut [T]) {
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
    fn produce_decimate(&mut self, end: u64, dst: &mut [T]) {
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
    fn produce_interpolate(&mut self, end: u64, dst: &mut [T]) {
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
    fn produce_grouped(&mut self, end: u64, dst: &mut [T]) {
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
mod tests {
    use super::*;

    const SPEC: FilterSpec = FilterSpec {
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

    #[test]
    fn every_phase_has_unity_dc_gain_and_banks_are_cached() {
        let b = bank::<f64>(44_100, 16_000, SPEC);
        for row in b.coefs.chunks(b.taps) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
        assert!(Arc::ptr_eq(&b, &bank::<f64>(44_100, 16_000, SPEC)));
        assert_eq!(b.taps % 8, 0);
        // Coprime: interpolated rows, bounded table.
        let c = bank::<f32>(48_000, 44_101, SPEC);
        assert!(c.interpolated && c.groups.is_none());
        assert_eq!(c.coefs.len(), (INTERP_PHASES + 1) * c.taps);
    }

    #[test]
    fn dot_kernels_agree() {
        let a: Vec<f32> = (0..216).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..216).map(|i| (i as f32 * 0.11).cos()).collect();
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((dot_f32_scalar(&a, &b) as f64 - exact).abs() < 1e-4);
        assert!((dot_f32(&a, &b) as f64 - exact).abs() < 1e-4);
    }
}
