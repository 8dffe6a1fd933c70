//! The AVX2 kernel of the network's products: blocks of outputs for up to four columns at a
//! time, the same bits as the portable kernel.

use super::product::Product;

/// [`Product`] with AVX2: a block of outputs for up to four columns at a time, the sums in
/// eight registers over the whole of `k` (each weight loaded once for all the columns, eight
/// independent chains of adds to hide the add's latency, no store until the end), each
/// output summed in the same order as [`matmul_any`]. Written with intrinsics: LLVM turned
/// the same loop over a `[f32; 32]` accumulator into scalar code with the sums spilled to the
/// stack.
///
/// [`matmul_any`]: super::product::matmul_any
#[target_feature(enable = "avx2")]
pub(super) unsafe fn matmul_avx2(p: Product<'_>) {
    let (n, k) = p.shape();
    let mut t = 0;
    while t < p.cols {
        // Four columns at a time (a block of 16 outputs), then two (32), then one (64): eight
        // sums in registers in every case.
        let step = match p.cols - t {
            1 => 1,
            2 | 3 => 2,
            _ => 4,
        };
        // SAFETY (every call): `shape` checked that `m` holds `k` rows of `n`, `out` `cols`
        // rows of `n`, and `x` every column read; blocks stay within `n` (a multiple of 32).
        unsafe {
            match step {
                1 => block_cols_avx2::<1, 8>(&p, n, k, t, 64),
                2 => block_cols_avx2::<2, 4>(&p, n, k, t, 32),
                _ => block_cols_avx2::<4, 2>(&p, n, k, t, 16),
            }
        }
        t += step;
    }
}

/// Columns `t0..t0 + T` of [`matmul_avx2`], `8 * R` outputs at a time (`block` of them; a
/// remainder of 32 when 64 does not divide `n`). Safety: the shapes were checked.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn block_cols_avx2<const T: usize, const R: usize>(
    p: &Product<'_>,
    n: usize,
    k: usize,
    t0: usize,
    block: usize,
) {
    debug_assert_eq!(block, 8 * R);
    let mut blk = 0;
    while blk + block <= n {
        // SAFETY: the caller checked the shapes.
        unsafe { block_avx2::<T, R>(p, n, k, t0, blk) };
        blk += block;
    }
    if blk < n {
        // Only with R = 8 and n an odd multiple of 32.
        // SAFETY: the caller checked the shapes; `blk + 32 == n`.
        unsafe { block_avx2::<T, 4>(p, n, k, t0, blk) };
    }
}

/// Outputs `blk..blk + 8 * R` of columns `t0..t0 + T`. Safety: the shapes were checked and
/// the block is within `n`.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn block_avx2<const T: usize, const R: usize>(
    p: &Product<'_>,
    n: usize,
    k: usize,
    t0: usize,
    blk: usize,
) {
    use std::arch::x86_64::*;
    // SAFETY: every access is within the checked shapes (see the callers).
    unsafe {
        let b = p.bias.as_ptr().add(blk);
        let mut a = [[_mm256_setzero_ps(); R]; T];
        for a in a.iter_mut() {
            for (r, a) in a.iter_mut().enumerate() {
                *a = _mm256_loadu_ps(b.add(8 * r));
            }
        }
        let x = p.x.as_ptr().add(t0 * p.stride);
        for j in 0..k {
            let row = p.m.as_ptr().add(j * n + blk);
            let mut w = [_mm256_setzero_ps(); R];
            for (r, w) in w.iter_mut().enumerate() {
                *w = _mm256_loadu_ps(row.add(8 * r));
            }
            for (t, a) in a.iter_mut().enumerate() {
                let v = _mm256_set1_ps(*x.add(t * p.stride + j));
                for (a, &w) in a.iter_mut().zip(&w) {
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(w, v));
                }
            }
        }
        let out = p.out.as_ptr() as *mut f32;
        for (t, a) in a.iter().enumerate() {
            let o = out.add((t0 + t) * n + blk);
            for (r, a) in a.iter().enumerate() {
                _mm256_storeu_ps(o.add(8 * r), *a);
            }
        }
    }
}
