//! `SpeechVADNode`'s opt-in second engine, `engine="silero"`: the Silero VAD network (v6,
//! 16 kHz branch) run in pure Rust, with its weights read at run time from the ONNX file the
//! `silero-vad` Python package ships (`silero_vad/data/silero_vad_op18_ifless.onnx`). Nothing
//! is bundled and nothing is downloaded: the user installs the package
//! (`pip install --no-deps silero-vad`) or points `model_path` at the file.
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
//! an `If` graph, without this file; the Python SDK names the installed version in the error.
//!
//! The graph, per 512-sample window `x` (with the previous window's last 64 samples in front,
//! zeros at the start, 576 samples): reflect-pad 64 samples on the right; a 256-tap, hop-128
//! convolution with the 258 basis rows (real and imaginary parts of 129 bins) over the 4
//! positions; magnitudes; conv(129->128, stride 1), conv(128->64, 2), conv(64->64, 2),
//! conv(64->128, 1), each 3 taps, padding 1, ReLU; an LSTM cell (gates i, f, g, o) over the
//! one remaining position, its `(h, c)` carried to the next window; ReLU, a 128->1 projection
//! and a sigmoid.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

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

/// The file of the `silero-vad` package whose weights are read.
pub const MODEL_FILE: &str = "silero_vad_op18_ifless.onnx";
/// Environment variable naming the model file when `model_path` is not given.
pub const MODEL_ENV: &str = "REMOTEMEDIA_SILERO_MODEL";

/// The part of ONNX's protobuf schema (onnx.proto) this reader needs; every other field is
/// skipped by the decoder.
mod onnx {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ModelProto {
        #[prost(message, optional, tag = "7")]
        pub graph: Option<GraphProto>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GraphProto {
        #[prost(message, repeated, tag = "5")]
        pub initializer: Vec<TensorProto>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TensorProto {
        #[prost(int64, repeated, tag = "1")]
        pub dims: Vec<i64>,
        #[prost(int32, tag = "2")]
        pub data_type: i32,
        #[prost(float, repeated, tag = "4")]
        pub float_data: Vec<f32>,
        #[prost(string, tag = "8")]
        pub name: String,
        #[prost(bytes = "vec", tag = "9")]
        pub raw_data: Vec<u8>,
    }
    /// `TensorProto.DataType.FLOAT`.
    pub const FLOAT: i32 = 1;
}

/// A 3-tap, padding-1 convolution, weights stored `[input channel][tap][output channel]`:
/// one row per entry of the input column (see [`conv_relu`]), output channels as lanes.
struct Conv {
    cin: usize,
    cout: usize,
    stride: usize,
    w: Vec<f32>,
    b: Vec<f32>,
}

/// Output counts of every product are multiples of this (the AVX2 kernel's smallest block).
const LANES: usize = 32;
/// STFT basis rows computed as lanes: the real and imaginary parts of bins 0..128 (the two
/// rows of the Nyquist bin, 128, are summed on their own, so the lanes fill whole blocks).
const STFT_LANES: usize = 2 * (BINS - 1);

/// The network's weights, shared (read-only) by every node using the same file.
pub struct SileroWeights {
    /// `[tap][lane]`: 256 x [`STFT_LANES`], the real parts of bins 0..128 then their
    /// imaginary parts.
    stft: Vec<f32>,
    /// The Nyquist bin's real and imaginary basis rows, `[tap]` each.
    stft_nyquist: [Vec<f32>; 2],
    convs: [Conv; 4],
    /// `[input][gate]`: the 128 rows of `weight_ih` then the 128 of `weight_hh`, transposed,
    /// for the input `[x; h]`.
    w_lstm: Vec<f32>,
    /// `bias_ih + bias_hh`.
    bias: Vec<f32>,
    out_w: Vec<f32>,
    out_b: f32,
}

impl std::fmt::Debug for SileroWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SileroWeights").finish_non_exhaustive()
    }
}

fn tensor(
    init: &HashMap<&str, &onnx::TensorProto>,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, String> {
    let t = init
        .get(name)
        .ok_or_else(|| format!("it has no tensor {name:?}"))?;
    let dims: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
    if t.data_type != onnx::FLOAT || dims != shape {
        return Err(format!(
            "tensor {name:?} is {dims:?} of ONNX type {}, expected {shape:?} float32",
            t.data_type
        ));
    }
    let n: usize = shape.iter().product();
    let v: Vec<f32> = if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    if v.len() != n {
        return Err(format!(
            "tensor {name:?} holds {} values, expected {n}",
            v.len()
        ));
    }
    if let Some(bad) = v.iter().find(|x| !x.is_finite()) {
        return Err(format!("tensor {name:?} holds a non-finite value ({bad})"));
    }
    Ok(v)
}

/// `[rows][cols]` -> `[cols][rows]`.
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c];
        }
    }
    t
}

impl SileroWeights {
    /// Decodes the weights from the bytes of the `silero-vad` package's [`MODEL_FILE`].
    pub fn from_onnx(bytes: &[u8]) -> Result<Self, String> {
        use prost::Message;
        let model = onnx::ModelProto::decode(bytes)
            .map_err(|e| format!("it is not an ONNX model ({e})"))?;
        let graph = model.graph.ok_or("it is not an ONNX model (no graph)")?;
        let init: HashMap<&str, &onnx::TensorProto> = graph
            .initializer
            .iter()
            .map(|t| (t.name.as_str(), t))
            .collect();
        let stft = tensor(
            &init,
            "model.stft.forward_basis_buffer",
            &[2 * BINS, 1, N_FFT],
        )?;
        let layer = |i: usize, cin: usize, cout: usize, stride: usize| -> Result<Conv, String> {
            let p = format!("model.encoder.{i}.reparam_conv");
            let w = tensor(&init, &format!("{p}.weight"), &[cout, cin, 3])?;
            // [out][in][tap] -> [in][tap][out]
            let w = transpose(&w, cout, cin * 3);
            Ok(Conv {
                cin,
                cout,
                stride,
                w,
                b: tensor(&init, &format!("{p}.bias"), &[cout])?,
            })
        };
        let convs = [
            layer(0, BINS, 128, 1)?,
            layer(1, 128, 64, 2)?,
            layer(2, 64, 64, 2)?,
            layer(3, 64, HIDDEN, 1)?,
        ];
        let rnn = "model.decoder.rnn";
        let w_ih = tensor(&init, &format!("{rnn}.weight_ih"), &[GATES, HIDDEN])?;
        let w_hh = tensor(&init, &format!("{rnn}.weight_hh"), &[GATES, HIDDEN])?;
        let b_ih = tensor(&init, &format!("{rnn}.bias_ih"), &[GATES])?;
        let b_hh = tensor(&init, &format!("{rnn}.bias_hh"), &[GATES])?;
        let out_w = tensor(&init, "model.decoder.decoder.2.weight", &[1, HIDDEN, 1])?;
        let out_b = tensor(&init, "model.decoder.decoder.2.bias", &[1])?;
        // Rows 0..129 are the real parts of bins 0..=128, rows 129..258 the imaginary parts.
        let row = |r: usize| &stft[r * N_FFT..(r + 1) * N_FFT];
        let lanes: Vec<f32> = (0..BINS - 1)
            .chain(BINS..2 * BINS - 1)
            .flat_map(|r| row(r).iter().copied())
            .collect();
        let stft_nyquist = [row(BINS - 1).to_vec(), row(2 * BINS - 1).to_vec()];
        let mut w_lstm = transpose(&w_ih, GATES, HIDDEN);
        w_lstm.extend(transpose(&w_hh, GATES, HIDDEN));
        Ok(Self {
            stft: transpose(&lanes, STFT_LANES, N_FFT),
            stft_nyquist,
            convs,
            w_lstm,
            bias: b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect(),
            out_w,
            out_b: out_b[0],
        })
    }

    /// The weights of the model file at `path`, read once per process and shared.
    pub fn load(path: &Path) -> Result<Arc<Self>, String> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<SileroWeights>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Some(w) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(w.clone());
        }
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read the Silero model {}: {e}", path.display()))?;
        let w = Arc::new(Self::from_onnx(&bytes).map_err(|e| {
            format!(
                "{} is not the Silero VAD model this engine reads (the silero-vad \
                 package's {MODEL_FILE}, version 6 or later): {e}",
                path.display()
            )
        })?);
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, w.clone());
        Ok(w)
    }
}

/// What the Python SDK found of the installed `silero-vad` package: its model file, or why
/// the installed package gives none (a version before 6).
struct Installed {
    model: Option<PathBuf>,
    problem: Option<String>,
}

static INSTALLED: Mutex<Installed> = Mutex::new(Installed {
    model: None,
    problem: None,
});

/// Records where the installed `silero-vad` package's model file is (the Python SDK calls this
/// on import), the last place [`resolve_model`] looks; or, as `problem`, why the installed
/// package has none (said instead of "install it" when no model file is found).
pub fn set_default_model(path: Option<PathBuf>, problem: Option<String>) {
    *INSTALLED.lock().unwrap_or_else(|e| e.into_inner()) = Installed {
        model: path,
        problem,
    };
}

/// The weights of the model file [`resolve_model`] names; a file that cannot be read or is
/// not the model gives an error that also says where its path came from.
pub fn load_model(model_path: Option<&str>) -> Result<Arc<SileroWeights>, String> {
    let (path, from) = resolve_model(model_path)?;
    SileroWeights::load(&path).map_err(|e| match from {
        Some(from) => format!("{e} ({from})"),
        None => e,
    })
}

/// The model file to read: `model_path` if given, else the file named by [`MODEL_ENV`], else
/// the installed `silero-vad` package's (found by the Python SDK), with where the path came
/// from when it was not `model_path`; an error saying what to install when there is none.
pub fn resolve_model(model_path: Option<&str>) -> Result<(PathBuf, Option<String>), String> {
    if let Some(p) = model_path {
        return Ok((PathBuf::from(p), None));
    }
    if let Some(p) = std::env::var_os(MODEL_ENV).filter(|p| !p.is_empty()) {
        let from = format!("the file named by the {MODEL_ENV} environment variable");
        return Ok((PathBuf::from(p), Some(from)));
    }
    let installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = &installed.model {
        let from = "the installed silero-vad package's file".to_string();
        return Ok((p.clone(), Some(from)));
    }
    let what = match &installed.problem {
        Some(problem) => format!("\"silero\" needs the Silero VAD model, and {problem}"),
        None => format!(
            "\"silero\" needs the Silero VAD model, which is not bundled: install it with \
             `pip install --no-deps silero-vad` (version 6 or later; the Python SDK then finds \
             its {MODEL_FILE})"
        ),
    };
    Err(format!(
        "{what}, or set model_path or the {MODEL_ENV} environment variable to that file"
    ))
}

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

/// A product of a matrix and `cols` columns: `out[t][o] = bias[o] + sum over j of m[j][o] *
/// x[t * stride + j]` for `o < n`, `j < k`, `t < cols`, with `m` stored `[k][n]` and `out`
/// `[cols][n]`; each output is summed in the order of `j`, from its bias. Columns may
/// overlap (`stride < k`: the STFT's frames).
struct Product<'a> {
    out: &'a mut [f32],
    bias: &'a [f32],
    m: &'a [f32],
    x: &'a [f32],
    stride: usize,
    cols: usize,
}

impl Product<'_> {
    /// `(n, k)`, after checking every shape (so the AVX2 kernel's loads are in bounds).
    fn shape(&self) -> (usize, usize) {
        let n = self.bias.len();
        let k = self.m.len() / n.max(1);
        assert!(
            n % LANES == 0
                && self.m.len() == k * n
                && self.out.len() == self.cols * n
                && self.cols >= 1
                && (self.cols - 1) * self.stride + k <= self.x.len(),
            "product shapes"
        );
        (n, k)
    }
}

/// [`Product`], column by column and row by row: a multiply-add over the outputs per input
/// (vectorised by LLVM).
fn matmul_any(p: Product<'_>) {
    let (n, k) = p.shape();
    for (t, out) in p.out.chunks_exact_mut(n).enumerate() {
        out.copy_from_slice(p.bias);
        let x = &p.x[t * p.stride..t * p.stride + k];
        for (row, &v) in p.m.chunks_exact(n).zip(x) {
            for (o, &w) in out.iter_mut().zip(row) {
                *o += w * v;
            }
        }
    }
}

/// [`Product`] with AVX2: a block of outputs for up to four columns at a time, the sums in
/// eight registers over the whole of `k` (each weight loaded once for all the columns, eight
/// independent chains of adds to hide the add's latency, no store until the end), each
/// output summed in the same order as [`matmul_any`]. Written with intrinsics: LLVM turned
/// the same loop over a `[f32; 32]` accumulator into scalar code with the sums spilled to the
/// stack.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn matmul_avx2(p: Product<'_>) {
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
#[cfg(target_arch = "x86_64")]
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
#[cfg(target_arch = "x86_64")]
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

/// A model file of the layout [`SileroWeights::from_onnx`] reads, with small deterministic
/// weights (for tests of the node around the network; the real weights come from the
/// silero-vad package): `skip` leaves a tensor out, `bad_shape` gives one a wrong first
/// dimension.
#[cfg(any(test, feature = "test-nodes"))]
pub fn fake_model(skip: Option<&str>, bad_shape: Option<&str>) -> Vec<u8> {
    use prost::Message;
    let mut init = Vec::new();
    let mut add = |name: &str, dims: &[usize]| {
        if skip == Some(name) {
            return;
        }
        let n: usize = dims.iter().product();
        let mut dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        if bad_shape == Some(name) {
            dims[0] += 1;
        }
        let vals: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 101) as f32 / 1000.0 - 0.05)
            .collect();
        init.push(onnx::TensorProto {
            dims,
            data_type: onnx::FLOAT,
            float_data: Vec::new(),
            name: name.to_string(),
            raw_data: vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
    };
    add("model.stft.forward_basis_buffer", &[258, 1, 256]);
    for (i, (cin, cout)) in [(129, 128), (128, 64), (64, 64), (64, 128)]
        .iter()
        .enumerate()
    {
        add(
            &format!("model.encoder.{i}.reparam_conv.weight"),
            &[*cout, *cin, 3],
        );
        add(&format!("model.encoder.{i}.reparam_conv.bias"), &[*cout]);
    }
    for n in ["weight_ih", "weight_hh"] {
        add(&format!("model.decoder.rnn.{n}"), &[512, 128]);
    }
    for n in ["bias_ih", "bias_hh"] {
        add(&format!("model.decoder.rnn.{n}"), &[512]);
    }
    add("model.decoder.decoder.2.weight", &[1, 128, 1]);
    add("model.decoder.decoder.2.bias", &[1]);
    onnx::ModelProto {
        graph: Some(onnx::GraphProto { initializer: init }),
    }
    .encode_to_vec()
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

    #[test]
    fn a_wrong_file_is_refused_naming_what_is_wrong() {
        let e = SileroWeights::from_onnx(b"not a model at all").unwrap_err();
        assert!(e.contains("not an ONNX model"), "{e}");
        let e = SileroWeights::from_onnx(&fake_model(Some("model.decoder.rnn.bias_hh"), None))
            .unwrap_err();
        assert!(e.contains("no tensor \"model.decoder.rnn.bias_hh\""), "{e}");
        let e = SileroWeights::from_onnx(&fake_model(
            None,
            Some("model.encoder.2.reparam_conv.weight"),
        ))
        .unwrap_err();
        assert!(e.contains("expected [64, 64, 3]"), "{e}");
        let e = SileroWeights::load(Path::new("/nonexistent/silero.onnx")).unwrap_err();
        assert!(
            e.contains("cannot read the Silero model /nonexistent/silero.onnx"),
            "{e}"
        );
    }

    #[test]
    fn the_model_file_is_the_argument_then_the_environment_then_the_sdk_s() {
        assert_eq!(
            resolve_model(Some("/a/b.onnx")).unwrap(),
            (PathBuf::from("/a/b.onnx"), None)
        );
        // (The environment variable is not touched here: tests run in parallel threads.)
        if std::env::var_os(MODEL_ENV).is_none() {
            set_default_model(None, None);
            let e = resolve_model(None).unwrap_err();
            assert!(e.contains("pip install --no-deps silero-vad"), "{e}");
            assert!(e.contains(MODEL_ENV), "{e}");
            // An installed package without the file: its problem, not "install it".
            set_default_model(None, Some("silero-vad 5.1.2 is too old".into()));
            let e = resolve_model(None).unwrap_err();
            let want = "model, and silero-vad 5.1.2 is too old, or set model_path or";
            assert!(e.contains(want), "{e}");
            set_default_model(Some(PathBuf::from("/site/silero_vad/data/x.onnx")), None);
            let (path, from) = resolve_model(None).unwrap();
            assert_eq!(path, PathBuf::from("/site/silero_vad/data/x.onnx"));
            assert_eq!(from.unwrap(), "the installed silero-vad package's file");
            let e = load_model(None).unwrap_err();
            assert!(
                e.starts_with("cannot read the Silero model /site/silero_vad/data/x.onnx")
                    && e.ends_with("(the installed silero-vad package's file)"),
                "{e}"
            );
            set_default_model(None, None);
        }
    }
}
