//! The engine's AVX2 kernels (each the same bits as its portable counterpart): the mel
//! filterbank's gathers and the minGRU layers' row sums.

use super::mel::{mel_table, MEL_LANES};
use super::{N_BINS, N_MELS};

/// [`mel_bands`] with each group's eight bins gathered into one register per step (the
/// portable code loads, bounds-checks and accumulates lane by lane): the same operations per
/// lane in the same order, so the same bits.
///
/// [`mel_bands`]: super::mel::mel_bands
#[target_feature(enable = "avx2")]
pub(super) unsafe fn mel_bands_avx2(power: &[f32; N_BINS]) -> [f32; N_MELS] {
    use std::arch::x86_64::*;
    let t = mel_table();
    let mut out = [0.0f32; N_MELS];
    for ((start, coefs), bands) in t.groups().zip(out.chunks_exact_mut(MEL_LANES)) {
        let mut idx = _mm256_setr_epi32(
            start[0] as i32,
            start[1] as i32,
            start[2] as i32,
            start[3] as i32,
            start[4] as i32,
            start[5] as i32,
            start[6] as i32,
            start[7] as i32,
        );
        let one = _mm256_set1_epi32(1);
        let mut acc = _mm256_setzero_ps();
        for row in coefs {
            // SAFETY: `start[l] + k < N_BINS` for every k below the group's longest band
            // (asserted when the table is built), so every gathered index is inside `power`.
            let p = _mm256_i32gather_ps::<4>(power.as_ptr(), idx);
            acc = _mm256_add_ps(acc, _mm256_mul_ps(p, _mm256_loadu_ps(row.as_ptr())));
            idx = _mm256_add_epi32(idx, one);
        }
        _mm256_storeu_ps(bands.as_mut_ptr(), acc);
    }
    out
}

/// [`row_sums`] with rows as lanes: for each input pair, one `vpmaddwd` per eight rows
/// (`w[r][2p] * x[2p] + w[r][2p + 1] * x[2p + 1]`, wrapping) added to the rows' sums, so no
/// row needs a horizontal reduction (those were most of the layer's time). Sums mod 2^32 in
/// any order are the same, so the result equals [`row_sums`] exactly.
///
/// [`row_sums`]: super::layers::row_sums
#[target_feature(enable = "avx2")]
pub(super) unsafe fn row_sums_avx2<const IN: usize, const P: usize>(
    x: &[i16; IN],
    pairs: &[[i32; 128]; P],
    temp: &mut [i32; 128],
) {
    use std::arch::x86_64::*;
    debug_assert_eq!(IN, 2 * P);
    // Two halves of 64 rows: eight accumulators each stay in registers.
    for half in 0..2 {
        let mut acc = [_mm256_setzero_si256(); 8];
        for (p, col) in pairs.iter().enumerate() {
            let xv = _mm256_set1_epi32((x[2 * p] as u16 as i32) | ((x[2 * p + 1] as i32) << 16));
            let col = &col[half * 64..half * 64 + 64];
            for (j, a) in acc.iter_mut().enumerate() {
                // SAFETY: `col` holds 64 i32, so `8 * j + 8 <= 64`; unaligned loads.
                let w = _mm256_loadu_si256(col.as_ptr().add(8 * j) as *const __m256i);
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(w, xv));
            }
        }
        for (j, a) in acc.iter().enumerate() {
            // SAFETY: `temp` holds 128 i32 and `half * 64 + 8 * j + 8 <= 128`.
            _mm256_storeu_si256(temp.as_mut_ptr().add(half * 64 + 8 * j) as *mut __m256i, *a);
        }
    }
}
