//! The network's layers: three convolutions in f32 (earshot's order of operations) and two
//! minGRU layers in fixed point.

#[cfg(target_arch = "x86_64")]
use super::avx2::row_sums_avx2;
use super::weights::Weights;
use super::{N_CONTEXT_FRAMES, N_MELS};

/// Depthwise 3x3 over the 3 context frames, pointwise to 16 channels, max-pool 3/2, ReLU:
/// `[column][channel]` (columns outer, so the next layer reads a column's channels as one
/// vector).
#[inline(always)]
pub(super) fn layer1(
    w: &Weights,
    features: &[f32; N_MELS * N_CONTEXT_FRAMES],
) -> [[f32; 16]; POOLED] {
    // Each column sums its 9 taps in earshot's order (kh, kw); columns are independent
    // lanes, so the loop over them vectorises with bit-identical results.
    let mut row = [0.0f32; DW];
    for kh in 0..3 {
        for kw in 0..3 {
            let k = w.l1_kernel[kh * 3 + kw];
            let src: &[f32; DW] = features[kh * N_MELS + kw..kh * N_MELS + kw + DW]
                .try_into()
                .expect("DW columns");
            for (r, &f) in row.iter_mut().zip(src) {
                *r += f * k;
            }
        }
    }
    // earshot pools each channel's `r * weight + bias` over three columns. Rounded
    // multiplication and addition are monotonic, so that maximum is the channel's affine map
    // of the window's largest `r` (smallest, for a negative weight), to the bit: the window's
    // extremes are taken once for all 16 channels instead of 16 times (the values are finite:
    // non-finite input never reaches the engine).
    let mut hi = [0.0f32; POOLED];
    let mut lo = [0.0f32; POOLED];
    for q in 0..POOLED {
        let win = &row[q * 2..q * 2 + 3];
        hi[q] = win[0].max(win[1]).max(win[2]);
        lo[q] = win[0].min(win[1]).min(win[2]);
    }
    let mut out = [[0.0f32; 16]; POOLED];
    for (o, (&h, &l)) in out.iter_mut().zip(hi.iter().zip(&lo)) {
        for ((v, &wt), &b) in o.iter_mut().zip(&w.l1_weight).zip(&w.l1_bias) {
            let r = if wt >= 0.0 { h } else { l };
            // The ReLU: earshot's pool starts from zero.
            *v = ((r * wt) + b).max(0.0);
        }
    }
    out
}

/// Mel bands less the depthwise kernel's edges: layer 1's columns before pooling.
const DW: usize = N_MELS - 2;
/// Layer 1's columns after its 3/2 max-pool.
const POOLED: usize = (DW - 3) / 2 + 1;

/// Depthwise 1x3 (stride 2, padding 1) then pointwise 16x16 (`pointwise_t[in][out]`) at
/// output column `ox` of the input columns (`[column][channel]`).
#[inline(always)]
fn dw_pw(
    input: &[[f32; 16]],
    kernel_t: &[[f32; 16]; 3],
    pointwise_t: &[[f32; 16]; 16],
    ox: usize,
) -> [f32; 16] {
    // Each channel sums its taps in earshot's order (kw = 0, 1, 2, skipping the padding);
    // channels are independent lanes of one column, so this is a few vector operations.
    let mut dw = [0.0f32; 16];
    for (kw, taps) in kernel_t.iter().enumerate() {
        let Some(col) = (ox * 2 + kw).checked_sub(1).and_then(|ix| input.get(ix)) else {
            continue;
        };
        for ((d, &k), &x) in dw.iter_mut().zip(taps).zip(col) {
            *d += x * k;
        }
    }
    // Each output channel sums over input channels 0..16 in earshot's order; the 16 output
    // channels are independent lanes (weights stored transposed), so this vectorises.
    let mut out = [0.0f32; 16];
    for (&d, col) in dw.iter().zip(pointwise_t) {
        for (o, &wt) in out.iter_mut().zip(col) {
            *o += d * wt;
        }
    }
    out
}

/// `[column][channel]`, with bias and ReLU.
#[inline(always)]
pub(super) fn layer2(w: &Weights, input: &[[f32; 16]; POOLED]) -> [[f32; 16]; 9] {
    let mut out = [[0.0f32; 16]; 9];
    for (ox, o) in out.iter_mut().enumerate() {
        let pw = dw_pw(input, &w.l2_kernel_t, &w.l2_weight_t, ox);
        for ((v, &p), &b) in o.iter_mut().zip(&pw).zip(&w.l2_bias) {
            *v = (p + b).max(0.0);
        }
    }
    out
}

/// `[column * 16 + channel]` in Q15, no bias or ReLU.
#[inline(always)]
pub(super) fn layer3(w: &Weights, input: &[[f32; 16]; 9]) -> [i16; 80] {
    let mut out = [0i16; 80];
    for (ox, o) in out.chunks_exact_mut(16).enumerate() {
        let pw = dw_pw(input, &w.l3_kernel_t, &w.l3_weight_t, ox);
        for (q, &v) in o.iter_mut().zip(&pw) {
            *q = (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        }
    }
    out
}

/// `temp[r] = weight[r] . x` with wrapping i32 arithmetic (Q15 * Q9 = Q24; wrapping like
/// earshot's release build, never reached in practice).
#[inline(always)]
pub(super) fn row_sums<const IN: usize>(
    x: &[i16; IN],
    weight: &[[i16; IN]; 128],
    temp: &mut [i32; 128],
) {
    for (t, row) in temp.iter_mut().zip(weight) {
        *t = row
            .iter()
            .zip(x)
            .fold(0i32, |acc, (&w, &v)| acc.wrapping_add(w as i32 * v as i32));
    }
}

/// One minGRU layer in fixed point (earshot's arithmetic, exactly). `pairs` is `weight`
/// in the AVX2 kernel's layout (`P = IN / 2`).
#[inline(always)]
pub(super) fn mingru<const IN: usize, const P: usize, const AVX2: bool>(
    x: &[i16; IN],
    h: &mut [i16; 64],
    weight: &[[i16; IN]; 128],
    pairs: &[[i32; 128]; P],
) {
    let mut temp = [0i32; 128];
    #[cfg(target_arch = "x86_64")]
    if AVX2 {
        // SAFETY: `AVX2` is set only by `Engine::predict_avx2`, which runs on AVX2 CPUs.
        unsafe { row_sums_avx2(x, pairs, &mut temp) };
    } else {
        row_sums(x, weight, &mut temp);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = pairs;
        row_sums(x, weight, &mut temp);
    }
    for i in 0..64 {
        // The gate is multiplied by 4 then clamped within [0, 1] in Q24.
        let g = (temp[64 + i] << 2).clamp(0, 16_777_215) as i64;
        let y = (16_777_215 - g) * ((h[i] as i64) << 9) + g * temp[i] as i64; // Q48
        h[i] = (y >> 33).clamp(-32768, 32767) as i16; // back to Q15
    }
}
