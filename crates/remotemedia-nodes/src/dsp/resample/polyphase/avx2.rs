//! The x86-64 AVX2/FMA kernels (dot product, rows, grouped, decimation, interpolation), in a
//! file of their own as rubato keeps each instruction set's; declared only on x86-64, and
//! called only after `remotemedia_core::cpu::has_avx2_fma()` (see `sample.rs`).

/// `B` vectors of 8 outputs of the decimation kernel, starting at `d` (already offset to the
/// first output); same arithmetic per lane whatever `B`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn decim_avx2<const B: usize>(
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
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn interp_blocks<const L: usize, const B: usize>(
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

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn group_shared_avx2<const D: usize, const N: usize>(
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

#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn dot_f32_avx2(a: &[f32], b: &[f32]) -> f32 {
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

/// [`PolySample::rows`](super::PolySample::rows) on AVX2/FMA: each vector of the row is
/// loaded once for the `B` outputs.
///
/// # Safety
/// AVX2 and FMA present; `row.len()` a multiple of 8; `x` valid for `(B - 1) * stride +
/// row.len()` reads and `out` for writes at `i * out_stride`, `i < B`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)] // lanes of two arrays and a pointer, unrolled
pub(super) unsafe fn rows_avx2<const B: usize>(
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
