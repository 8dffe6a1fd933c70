//! `SpeechVADNode`'s opt-in second engine, `engine="silero"`: the Silero VAD network (v6,
//! 16 kHz branch) run in pure Rust. Its weights are bundled (`models/silero-vad/`: the tensors
//! this engine reads from the ONNX file the `silero-vad` 6.2.3 package ships,
//! `silero_vad/data/silero_vad_op18_ifless.onnx`; MIT), so nothing is installed or downloaded;
//! `model_path` (or `REMOTEMEDIA_SILERO_MODEL`) reads another such file instead.
//!
//! Why not ONNX Runtime (through the `ort` crate): the network is 5 small layers (an STFT as a
//! convolution, four 3-tap convolutions, one LSTM cell, a 1x1 convolution), about 0.7 M
//! multiply-adds per 32 ms window, so a direct implementation is short, loads no shared
//! library of another project's version into the process, and measured 0.29x the CPU of
//! Silero on ONNX Runtime (one thread) in `benchmarks/vad_bench.py` (docs/benchmarks.md). The
//! ONNX file is read with `prost` (already in the tree through tonic), decoding only the
//! graph's initializers.
//! The Python tests compare this implementation with ONNX Runtime running the package's own
//! `silero_vad.onnx`, window by window.
//!
//! Only the 16 kHz network is read. The file also holds Silero's 8 kHz one (`model_8k.*`), but
//! on 8 kHz copies of the VAD benchmark it scored no better than the 16 kHz network on the
//! same copies resampled (docs/benchmarks.md, "`engine=\"silero\"`"), so the node resamples
//! every rate to 16 kHz. silero-vad before version 6 ships its weights inside the branches of
//! an `If` graph, without this file.
//!
//! The graph, per 512-sample window `x` (with the previous window's last 64 samples in front,
//! zeros at the start, 576 samples): reflect-pad 64 samples on the right; a 256-tap, hop-128
//! convolution with the 258 basis rows (real and imaginary parts of 129 bins) over the 4
//! positions; magnitudes; conv(129->128, stride 1), conv(128->64, 2), conv(64->64, 2),
//! conv(64->128, 1), each 3 taps, padding 1, ReLU; an LSTM cell (gates i, f, g, o) over the
//! one remaining position, its `(h, c)` carried to the next window; ReLU, a 128->1 projection
//! and a sigmoid.
//!
//! Files: [`model`] (the model file and its weights), [`product`] and `avx2` (the products'
//! kernels); this file runs the network.

#[cfg(target_arch = "x86_64")]
mod avx2;
mod model;
mod product;

use std::sync::Arc;

#[cfg(target_arch = "x86_64")]
use avx2::matmul_avx2;
#[cfg(any(test, feature = "test-nodes"))]
pub use model::fake_model;
use model::Conv;
pub use model::{bundle_model, load_model, sha256_hex, SileroWeights, BUNDLED_SHA256, MODEL_ENV};
use product::{matmul_any, Product};

/// Samples per decision (32 ms at 16 kHz).
pub const WINDOW: usize = 512;
/// Samples of the previous window the network also sees.
const CONTEXT: usize = 64;
const INPUT: usize = CONTEXT + WINDOW;
/// The input after the reflect padding on the right.
const PADDED: usize = INPUT + CONTEXT;
const N_FFT: usize = 256;
const HOP: usize = 128;
const BINS: usize = N_FFT / 2 + 1;
const POSITIONS: usize = (PADDED - N_FFT) / HOP + 1;
const HIDDEN: usize = 128;
const GATES: usize = 4 * HIDDEN;
/// STFT basis rows computed as lanes: the real and imaginary parts of bins 0..128 (the two
/// rows of the Nyquist bin, 128, are summed on their own, so the lanes fill whole blocks).
const STFT_LANES: usize = 2 * (BINS - 1);

/// One stream's Silero detector: the shared weights and the recurrent state.
pub struct Silero {
    weights: Arc<SileroWeights>,
    /// The last [`CONTEXT`] samples of the previous window.
    context: [f32; CONTEXT],
    h: [f32; HIDDEN],
    c: [f32; HIDDEN],
}

impl Silero {
    /// A detector at the start of a stream.
    pub fn new(weights: Arc<SileroWeights>) -> Self {
        Self {
            weights,
            context: [0.0; CONTEXT],
            h: [0.0; HIDDEN],
            c: [0.0; HIDDEN],
        }
    }

    /// Back to the start of a stream.
    pub fn reset(&mut self) {
        self.context = [0.0; CONTEXT];
        self.h = [0.0; HIDDEN];
        self.c = [0.0; HIDDEN];
    }

    /// The speech probability of the next 512 samples (16 kHz, nominally within [-1, 1]).
    pub fn predict(&mut self, window: &[f32; WINDOW]) -> f32 {
        let mut x = [0.0f32; PADDED];
        x[..CONTEXT].copy_from_slice(&self.context);
        x[CONTEXT..INPUT].copy_from_slice(window);
        // Reflect padding (the edge sample not repeated).
        for j in 0..CONTEXT {
            x[INPUT + j] = x[INPUT - 2 - j];
        }
        self.context.copy_from_slice(&window[WINDOW - CONTEXT..]);
        #[cfg(target_arch = "x86_64")]
        if remotemedia_core::cpu::has_avx2() {
            // SAFETY: the CPU has AVX2 (checked at run time).
            return unsafe { forward_avx2(&self.weights, &x, &mut self.h, &mut self.c) };
        }
        forward_any(&self.weights, &x, &mut self.h, &mut self.c)
    }
}

/// The forward pass with [`matmul_avx2`] for the products, compiled for AVX2: the same bits
/// as [`forward_any`] (each output summed in the same order, no fused multiply-add).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn forward_avx2(
    w: &SileroWeights,
    x: &[f32; PADDED],
    h: &mut [f32; HIDDEN],
    c: &mut [f32; HIDDEN],
) -> f32 {
    // SAFETY (of the closure): this function only runs on a CPU with AVX2.
    forward(w, x, h, c, |p: Product<'_>| unsafe { matmul_avx2(p) })
}

/// The portable forward pass.
fn forward_any(
    w: &SileroWeights,
    x: &[f32; PADDED],
    h: &mut [f32; HIDDEN],
    c: &mut [f32; HIDDEN],
) -> f32 {
    forward(w, x, h, c, matmul_any)
}

/// One convolution layer with ReLU: `x` is `[cin][t_in]`, the result `[cout][t_out]`. The
/// input columns (per output position, each channel's three taps, 0 past the edges: the
/// padding) go through one product.
#[inline(always)]
fn conv_relu(
    l: &Conv,
    x: &[f32],
    t_in: usize,
    out: &mut [f32],
    matmul: impl Fn(Product<'_>),
) -> usize {
    let t_out = (t_in - 1) / l.stride + 1;
    let k = l.cin * 3;
    let mut cols = [0.0f32; BINS * 3 * POSITIONS];
    let cols = &mut cols[..k * t_out];
    for (t, col) in cols.chunks_exact_mut(k).enumerate() {
        for (i, c) in col.chunks_exact_mut(3).enumerate() {
            for (tap, c) in c.iter_mut().enumerate() {
                // Input position of this tap (padding 1 on both sides).
                *c = match (t * l.stride + tap).checked_sub(1) {
                    Some(p) if p < t_in => x[i * t_in + p],
                    _ => 0.0,
                };
            }
        }
    }
    let mut acc = [0.0f32; 128 * POSITIONS];
    let acc = &mut acc[..l.cout * t_out];
    matmul(Product {
        out: acc,
        bias: &l.b,
        m: &l.w,
        x: cols,
        stride: k,
        cols: t_out,
    });
    for (t, a) in acc.chunks_exact(l.cout).enumerate() {
        for (o, &a) in a.iter().enumerate() {
            out[o * t_out + t] = a.max(0.0);
        }
    }
    t_out
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

#[inline(always)]
fn forward(
    w: &SileroWeights,
    x: &[f32; PADDED],
    h: &mut [f32; HIDDEN],
    c: &mut [f32; HIDDEN],
    matmul: impl Fn(Product<'_>) + Copy,
) -> f32 {
    // The STFT convolution (its four overlapping frames as the columns of one product), then
    // the magnitudes: `mag` is [bin][position].
    let half = BINS - 1;
    let mut spec = [0.0f32; STFT_LANES * POSITIONS];
    matmul(Product {
        out: &mut spec,
        bias: &[0.0; STFT_LANES],
        m: &w.stft,
        x,
        stride: HOP,
        cols: POSITIONS,
    });
    let mut mag = [0.0f32; BINS * POSITIONS];
    for (t, s) in spec.chunks_exact(STFT_LANES).enumerate() {
        for b in 0..half {
            mag[b * POSITIONS + t] = (s[b] * s[b] + s[half + b] * s[half + b]).sqrt();
        }
        // The Nyquist bin: two dot products, summed in the same order as the lanes.
        let frame = &x[t * HOP..t * HOP + N_FFT];
        let [re, im] = w.stft_nyquist.each_ref().map(|r| {
            r.iter()
                .zip(frame)
                .fold(0.0f32, |acc, (&w, &v)| acc + w * v)
        });
        mag[half * POSITIONS + t] = (re * re + im * im).sqrt();
    }
    let (mut a, mut b) = ([0.0f32; 128 * POSITIONS], [0.0f32; 128 * POSITIONS]);
    let mut t = conv_relu(&w.convs[0], &mag, POSITIONS, &mut a, matmul);
    t = conv_relu(&w.convs[1], &a, t, &mut b, matmul);
    t = conv_relu(&w.convs[2], &b, t, &mut a, matmul);
    t = conv_relu(&w.convs[3], &a, t, &mut b, matmul);
    debug_assert_eq!(t, 1);
    // The LSTM cell (PyTorch's gate order: input, forget, cell, output) over `[x; h]`.
    let mut xh = [0.0f32; 2 * HIDDEN];
    xh[..HIDDEN].copy_from_slice(&b[..HIDDEN]);
    xh[HIDDEN..].copy_from_slice(h);
    let mut g = [0.0f32; GATES];
    matmul(Product {
        out: &mut g,
        bias: &w.bias,
        m: &w.w_lstm,
        x: &xh,
        stride: 0,
        cols: 1,
    });
    let mut logit = w.out_b;
    for j in 0..HIDDEN {
        let (gi, gf) = (sigmoid(g[j]), sigmoid(g[HIDDEN + j]));
        let (gg, go) = (g[2 * HIDDEN + j].tanh(), sigmoid(g[3 * HIDDEN + j]));
        c[j] = gf * c[j] + gi * gg;
        h[j] = go * c[j].tanh();
        logit += w.out_w[j] * h[j].max(0.0);
    }
    sigmoid(logit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_of_the_expected_layout_loads_and_gives_probabilities() {
        let w = Arc::new(SileroWeights::from_onnx(&fake_model(None, None)).unwrap());
        let mut s = Silero::new(w.clone());
        let window: [f32; WINDOW] = std::array::from_fn(|i| (i as f32 * 0.05).sin() * 0.3);
        let p1 = s.predict(&window);
        let p2 = s.predict(&window);
        assert!((0.0..=1.0).contains(&p1) && (0.0..=1.0).contains(&p2));
        // The recurrent state and the context carry over; a reset starts again.
        assert_ne!(p1.to_bits(), p2.to_bits());
        s.reset();
        assert_eq!(s.predict(&window).to_bits(), p1.to_bits());
        // The AVX2 build and the portable one agree to the bit.
        let mut x = [0.0f32; PADDED];
        x[CONTEXT..INPUT].copy_from_slice(&window);
        for j in 0..CONTEXT {
            x[INPUT + j] = x[INPUT - 2 - j];
        }
        let (mut h, mut c) = ([0.0; HIDDEN], [0.0; HIDDEN]);
        assert_eq!(forward_any(&w, &x, &mut h, &mut c).to_bits(), p1.to_bits());
    }
}
