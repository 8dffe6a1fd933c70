//! The Silero model file: reading its weights (the graph's initializers, with `prost`), the
//! bundled copy (Silero VAD v6's weights, MIT, built into the crate and checked against its
//! SHA-256 when first read), where another file may come from (`model_path`, the environment),
//! and a fake one for tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use super::{BINS, GATES, HIDDEN, N_FFT, STFT_LANES};

/// The file of the `silero-vad` package whose weights are read.
pub const MODEL_FILE: &str = "silero_vad_op18_ifless.onnx";
/// The bundled weights: the tensors this engine reads from [`MODEL_FILE`] of silero-vad 6.2.3
/// (MIT, Silero Team; `models/silero-vad/LICENSE` in this crate), re-written by
/// [`bundle_model`] (`cargo run -p remotemedia-nodes --example bundle_silero`).
static BUNDLED: &[u8] = include_bytes!("../../../models/silero-vad/silero_vad_v6_16k.onnx");
/// SHA-256 of [`BUNDLED`], checked when it is first read (a damaged build fails loudly).
pub const BUNDLED_SHA256: &str = "6c3bf4599ff9d63f0456781c4ceb07d095f8dcbf8b673c687bbcb901299b178f";
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
///
/// [`conv_relu`]: super::conv_relu
pub(super) struct Conv {
    pub(super) cin: usize,
    pub(super) cout: usize,
    pub(super) stride: usize,
    pub(super) w: Vec<f32>,
    pub(super) b: Vec<f32>,
}

/// The network's weights, shared (read-only) by every node using the same file.
pub struct SileroWeights {
    /// `[tap][lane]`: 256 x [`STFT_LANES`], the real parts of bins 0..128 then their
    /// imaginary parts.
    pub(super) stft: Vec<f32>,
    /// The Nyquist bin's real and imaginary basis rows, `[tap]` each.
    pub(super) stft_nyquist: [Vec<f32>; 2],
    pub(super) convs: [Conv; 4],
    /// `[input][gate]`: the 128 rows of `weight_ih` then the 128 of `weight_hh`, transposed,
    /// for the input `[x; h]`.
    pub(super) w_lstm: Vec<f32>,
    /// `bias_ih + bias_hh`.
    pub(super) bias: Vec<f32>,
    pub(super) out_w: Vec<f32>,
    pub(super) out_b: f32,
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

/// The tensors the engine reads, with their shapes (the file's own layout).
fn tensor_shapes() -> Vec<(String, Vec<usize>)> {
    let mut t = vec![(
        "model.stft.forward_basis_buffer".to_string(),
        vec![2 * BINS, 1, N_FFT],
    )];
    for (i, (cin, cout)) in [(BINS, 128), (128, 64), (64, 64), (64, HIDDEN)]
        .into_iter()
        .enumerate()
    {
        let p = format!("model.encoder.{i}.reparam_conv");
        t.push((format!("{p}.weight"), vec![cout, cin, 3]));
        t.push((format!("{p}.bias"), vec![cout]));
    }
    for n in ["weight_ih", "weight_hh"] {
        t.push((format!("model.decoder.rnn.{n}"), vec![GATES, HIDDEN]));
    }
    for n in ["bias_ih", "bias_hh"] {
        t.push((format!("model.decoder.rnn.{n}"), vec![GATES]));
    }
    t.push(("model.decoder.decoder.2.weight".into(), vec![1, HIDDEN, 1]));
    t.push(("model.decoder.decoder.2.bias".into(), vec![1]));
    t
}

/// The bytes of a model file reduced to the tensors the engine reads (what is bundled): the
/// same ONNX layout, so [`SileroWeights::from_onnx`] reads it as it reads the whole file.
pub fn bundle_model(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use prost::Message;
    SileroWeights::from_onnx(bytes)?;
    let model = onnx::ModelProto::decode(bytes).map_err(|e| e.to_string())?;
    let keep: Vec<String> = tensor_shapes().into_iter().map(|(n, _)| n).collect();
    let initializer = model
        .graph
        .map(|g| g.initializer)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| keep.contains(&t.name))
        .collect();
    Ok(onnx::ModelProto {
        graph: Some(onnx::GraphProto { initializer }),
    }
    .encode_to_vec())
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bundled weights, checked and decoded once per process.
pub fn bundled() -> Result<Arc<SileroWeights>, String> {
    static WEIGHTS: OnceLock<Result<Arc<SileroWeights>, String>> = OnceLock::new();
    WEIGHTS
        .get_or_init(|| check_bundled(BUNDLED, BUNDLED_SHA256).map(Arc::new))
        .clone()
}

fn check_bundled(bytes: &[u8], sha256: &str) -> Result<SileroWeights, String> {
    let got = sha256_hex(bytes);
    if got != sha256 {
        return Err(format!(
            "the bundled Silero model is damaged (SHA-256 {got}, expected {sha256}); \
             reinstall remotemedia, or set model_path to silero-vad's {MODEL_FILE}"
        ));
    }
    SileroWeights::from_onnx(bytes).map_err(|e| format!("the bundled Silero model: {e}"))
}

/// The weights to run: `model_path`'s file if given, else the file named by [`MODEL_ENV`],
/// else the bundled ones. An error says what is wrong and, for the environment variable,
/// that the path came from there.
pub fn load_model(model_path: Option<&str>) -> Result<Arc<SileroWeights>, String> {
    match resolve_model(model_path) {
        None => bundled(),
        Some((path, from)) => SileroWeights::load(&path).map_err(|e| match from {
            Some(from) => format!("{e} ({from})"),
            None => e,
        }),
    }
}

/// The model file to read instead of the bundled weights: `model_path` if given, else the file
/// named by [`MODEL_ENV`] (with where the path came from); `None`: the bundled weights.
pub fn resolve_model(model_path: Option<&str>) -> Option<(PathBuf, Option<String>)> {
    if let Some(p) = model_path {
        return Some((PathBuf::from(p), None));
    }
    std::env::var_os(MODEL_ENV)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let from = format!("the file named by the {MODEL_ENV} environment variable");
            (PathBuf::from(p), Some(from))
        })
}

/// A model file of the layout [`SileroWeights::from_onnx`] reads, with small deterministic
/// weights (for tests of the node around the network; the real weights come from the
/// silero-vad package): `skip` leaves a tensor out, `bad_shape` gives one a wrong first
/// dimension.
#[cfg(any(test, feature = "test-nodes"))]
pub fn fake_model(skip: Option<&str>, bad_shape: Option<&str>) -> Vec<u8> {
    use prost::Message;
    let mut init = Vec::new();
    for (name, dims) in tensor_shapes() {
        if skip == Some(name.as_str()) {
            continue;
        }
        let n: usize = dims.iter().product();
        let mut dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
        if bad_shape == Some(name.as_str()) {
            dims[0] += 1;
        }
        let vals: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 101) as f32 / 1000.0 - 0.05)
            .collect();
        init.push(onnx::TensorProto {
            dims,
            data_type: onnx::FLOAT,
            float_data: Vec::new(),
            name,
            raw_data: vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
    }
    onnx::ModelProto {
        graph: Some(onnx::GraphProto { initializer: init }),
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_model_file_is_the_argument_then_the_environment_then_the_bundled_one() {
        assert_eq!(
            resolve_model(Some("/a/b.onnx")).unwrap(),
            (PathBuf::from("/a/b.onnx"), None)
        );
        // (The environment variable is not touched here: tests run in parallel threads.)
        if std::env::var_os(MODEL_ENV).is_none() {
            assert_eq!(resolve_model(None), None);
            assert!(Arc::ptr_eq(&load_model(None).unwrap(), &bundled().unwrap()));
        }
    }

    #[test]
    fn the_bundled_weights_are_checked_against_their_checksum() {
        assert_eq!(sha256_hex(BUNDLED), BUNDLED_SHA256);
        assert!(bundled().is_ok());
        // Bundling a bundle changes nothing: only the engine's tensors are kept.
        assert_eq!(bundle_model(BUNDLED).unwrap(), BUNDLED);
        let mut damaged = BUNDLED.to_vec();
        let mid = damaged.len() / 2;
        damaged[mid] ^= 1;
        let e = check_bundled(&damaged, BUNDLED_SHA256).unwrap_err();
        assert!(
            e.starts_with("the bundled Silero model is damaged (SHA-256 "),
            "{e}"
        );
        assert!(e.contains(&format!("expected {BUNDLED_SHA256}")), "{e}");
        let e = check_bundled(b"junk", &sha256_hex(b"junk")).unwrap_err();
        assert!(e.contains("not an ONNX model"), "{e}");
    }
}
