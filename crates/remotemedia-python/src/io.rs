//! `remotemedia.read` / `write` / `blocks` and the batch runner, on the streaming reader and
//! writer of `remotemedia-io` (the same code as the CLI).

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use remotemedia_core::data::SampleFormat;
use remotemedia_io::{AudioReader, Subtype};

use crate::convert;
use crate::errors::io_to_pyerr;

/// numpy's names of the sample formats (`dtype=` of `read`, `info()["dtype"]`).
const DTYPES: [(&str, SampleFormat); 4] = [
    ("float32", SampleFormat::F32),
    ("float64", SampleFormat::F64),
    ("int16", SampleFormat::I16),
    ("int32", SampleFormat::I32),
];

pub(crate) fn parse_dtype(dtype: Option<&str>) -> PyResult<Option<SampleFormat>> {
    dtype
        .map(|d| {
            DTYPES
                .iter()
                .find(|(n, _)| *n == d)
                .map(|(_, f)| *f)
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "dtype={d:?} is not supported; use 'float32', 'float64', 'int16', 'int32' \
                     or None (the file's own format)"
                    ))
                })
        })
        .transpose()
}

fn dtype_name(format: SampleFormat) -> &'static str {
    DTYPES
        .iter()
        .find(|(_, f)| *f == format)
        .map_or("float32", |(n, _)| n)
}

/// Where encoded audio comes from: a file, or bytes in memory (`bytes`, a `BytesIO`'s
/// contents, what a file-like object's `read()` gave).
pub(crate) enum Source {
    Path(PathBuf),
    Bytes(Vec<u8>, PathBuf),
}

impl Source {
    /// `obj` as a source of encoded audio: a path (`str`, `os.PathLike`), `bytes`/`bytearray`/
    /// `memoryview`, or an object with a `read()` method (read to its end here); `None` for
    /// anything else (an array, a list, ...).
    pub(crate) fn of(obj: &Bound<'_, PyAny>) -> PyResult<Option<Source>> {
        use pyo3::types::{PyByteArray, PyBytes, PyMemoryView, PyString};
        if obj.is_instance_of::<PyString>() || obj.hasattr("__fspath__")? {
            return Ok(Some(Source::Path(obj.extract()?)));
        }
        if obj.is_instance_of::<PyBytes>() || obj.is_instance_of::<PyByteArray>() {
            return Ok(Some(Source::Bytes(obj.extract()?, "<bytes>".into())));
        }
        if obj.is_instance_of::<PyMemoryView>() {
            let bytes = obj.call_method0("tobytes")?;
            return Ok(Some(Source::Bytes(bytes.extract()?, "<memoryview>".into())));
        }
        if obj.cast::<numpy::PyUntypedArray>().is_err() && obj.hasattr("read")? {
            let name = obj
                .getattr("name")
                .ok()
                .and_then(|n| n.extract::<String>().ok())
                .unwrap_or_else(|| {
                    format!(
                        "<{}>",
                        obj.get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    )
                });
            let data = obj.call_method0("read")?;
            let bytes: Vec<u8> = data.extract().map_err(|_| {
                PyTypeError::new_err(format!(
                    "{name}.read() returned {}, not bytes: open the file in binary mode ('rb')",
                    data.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            })?;
            return Ok(Some(Source::Bytes(bytes, name.into())));
        }
        Ok(None)
    }

    /// What errors call it.
    pub(crate) fn name(&self) -> &std::path::Path {
        match self {
            Source::Path(p) | Source::Bytes(_, p) => p,
        }
    }

    pub(crate) fn open(self) -> Result<AudioReader, remotemedia_io::IoError> {
        match self {
            Source::Path(p) => remotemedia_io::open(&p),
            Source::Bytes(data, name) => remotemedia_io::open_bytes(data, &name),
        }
    }
}

/// Reads a whole file (a path, bytes, or a file-like object) as a `remotemedia.Audio` in the
/// file's format, or in `dtype`.
#[pyfunction]
#[pyo3(signature = (source, dtype=None))]
pub fn read_file<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    dtype: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let Some(source) = Source::of(source)? else {
        return Err(PyTypeError::new_err(format!(
            "read() takes a path, bytes or a binary file-like object, got {}",
            source.get_type().name()?
        )));
    };
    read_source(py, source, dtype)
}

pub(crate) fn read_source<'py>(
    py: Python<'py>,
    source: Source,
    dtype: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    let format = parse_dtype(dtype)?;
    let audio = py
        .detach(|| {
            let mut r = source.open()?;
            match format {
                Some(f) => r.read_all_as(f),
                None => r.read_all(),
            }
        })
        .map_err(io_to_pyerr)?;
    convert::audio_to_py(py, audio, false)
}

/// What a file holds, without decoding it: `{sample_rate, channels, frames, duration,
/// container, subtype, dtype}` (`frames`/`duration` None when the header does not say).
#[pyfunction]
pub fn audio_info<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let Some(source) = Source::of(source)? else {
        return Err(PyTypeError::new_err(format!(
            "info() takes a path, bytes or a binary file-like object, got {}",
            source.get_type().name()?
        )));
    };
    let info = py
        .detach(|| source.open().map(|r| r.info().clone()))
        .map_err(io_to_pyerr)?;
    let d = PyDict::new(py);
    d.set_item("sample_rate", info.sample_rate)?;
    d.set_item("channels", info.channels)?;
    d.set_item("frames", info.frames)?;
    d.set_item("duration", info.duration_secs())?;
    d.set_item("container", info.container)?;
    d.set_item("subtype", info.subtype)?;
    d.set_item("dtype", dtype_name(info.format))?;
    Ok(d)
}

/// EBU R128 figures of audio (an array with `sample_rate`, an `Audio`) or of a file (a path,
/// bytes, a file-like object; read block by block, in constant memory): `{integrated_lufs,
/// true_peak_dbtp, loudness_range_lu}`, with `LoudnessNormalizeNode`'s own meter.
#[pyfunction]
#[pyo3(signature = (source, sample_rate=None))]
pub fn loudness<'py>(
    py: Python<'py>,
    source: &Bound<'py, PyAny>,
    sample_rate: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    use remotemedia_nodes::audio::LoudnessMeter;
    let node_err = |e: remotemedia_core::NodeError| PyValueError::new_err(format!("loudness: {e}"));
    let is_array = source.cast::<numpy::PyUntypedArray>().is_ok();
    let report = match (is_array, Source::of(source)?) {
        (false, Some(src)) => {
            if sample_rate.is_some() {
                return Err(PyValueError::new_err(
                    "loudness(): sample_rate is for arrays; a file has its own",
                ));
            }
            let mut reader = src.open().map_err(io_to_pyerr)?;
            let info = reader.info().clone();
            py.detach(|| -> PyResult<_> {
                let mut meter =
                    LoudnessMeter::new(info.sample_rate, info.channels).map_err(node_err)?;
                while let Some(block) = reader.read_block(1 << 16).map_err(io_to_pyerr)? {
                    meter.add(&block).map_err(node_err)?;
                }
                meter.finish().map_err(node_err)
            })?
        }
        _ => {
            let (array, rate) = match crate::input::prepare_input(source, sample_rate, None)? {
                crate::input::Prepared::Audio(a, r) => (a, r),
                crate::input::Prepared::Other(v, _) => {
                    return Err(PyTypeError::new_err(format!(
                        "loudness() takes audio (an array with sample_rate, an Audio) or a file \
                         (a path, bytes, a binary file-like object), got {}",
                        v.get_type().name()?
                    )))
                }
            };
            let audio = convert::audio_from_array(&array, rate)?;
            py.detach(|| {
                let mut meter =
                    LoudnessMeter::new(audio.sample_rate(), audio.channels()).map_err(node_err)?;
                meter.add(&audio).map_err(node_err)?;
                meter.finish().map_err(node_err)
            })?
        }
    };
    let d = PyDict::new(py);
    d.set_item("integrated_lufs", report.integrated_lufs)?;
    d.set_item("true_peak_dbtp", report.true_peak_dbtp)?;
    d.set_item("loudness_range_lu", report.loudness_range_lu)?;
    Ok(d)
}

/// `'a', 'b' or 'c'`.
fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match q.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => q.join(""),
    }
}

fn parse_subtype(subtype: Option<&str>) -> PyResult<Option<Subtype>> {
    subtype
        .map(|s| {
            Subtype::parse(s).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "subtype={s:?} is not supported; use 'PCM_16', 'PCM_24', 'PCM_32', 'FLOAT', \
                     'DOUBLE', 'VORBIS', 'OPUS', 'MPEG_LAYER_III' or None (the one that keeps \
                     the data's format; a lossy container's own coding)"
                ))
            })
        })
        .transpose()
}

/// Writes segment `i` of `source` to `outputs[i]` (`remotemedia.write_segments`): a path is
/// read once, block by block; an array (`(frames,)` or `(frames, channels)`) is audio at
/// `sample_rate`. Returns the frames written per file.
#[pyfunction]
#[pyo3(signature = (source, sample_rate, segments, outputs, subtype=None))]
pub fn write_segments(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    sample_rate: Option<u32>,
    segments: Vec<SegmentTuple>,
    outputs: Vec<PathBuf>,
    subtype: Option<&str>,
) -> PyResult<Vec<u64>> {
    let subtype = parse_subtype(subtype)?;
    let segments = segments_from(segments, outputs.len())?;
    if let Ok(path) = source.extract::<PathBuf>() {
        return py
            .detach(|| remotemedia_io::write_segments(&path, &segments, &outputs, subtype))
            .map_err(io_to_pyerr);
    }
    let rate = sample_rate.ok_or_else(|| {
        PyValueError::new_err("pass sample_rate=... with a numpy array (an Audio carries its own)")
    })?;
    let buffer = convert::audio_from_array(source, rate)?;
    py.detach(|| remotemedia_io::write_segments_audio(&buffer, &segments, &outputs, subtype))
        .map_err(io_to_pyerr)
}

/// `(start_sample, end_sample, sample_rate, confidence, energy_db)`, as Python passes a
/// segment.
type SegmentTuple = (u64, u64, u32, Option<f64>, Option<f64>);

/// Checked segments, one per output.
fn segments_from(
    segments: Vec<SegmentTuple>,
    outputs: usize,
) -> PyResult<Vec<remotemedia_core::data::Segment>> {
    if segments.len() != outputs {
        return Err(PyValueError::new_err("one output per segment"));
    }
    segments
        .into_iter()
        .enumerate()
        .map(|(i, (a, b, rate, confidence, energy_db))| {
            let mut seg = remotemedia_core::data::Segment::new(a, b, rate);
            seg.confidence = confidence;
            seg.energy_db = energy_db;
            seg.check()
                .map(|()| seg)
                .map_err(|e| PyValueError::new_err(format!("segments[{i}]: {e}")))
        })
        .collect()
}

/// Writes the `segments.jsonl` index: one line per file name with its segment's fields.
#[pyfunction]
pub fn write_segment_index(
    path: PathBuf,
    names: Vec<String>,
    segments: Vec<SegmentTuple>,
) -> PyResult<()> {
    let segments = segments_from(segments, names.len())?;
    remotemedia_io::write_segment_index(&path, &names, &segments).map_err(io_to_pyerr)
}

/// Writes an array (`(frames,)` or `(frames, channels)`) to an audio file (the container by
/// extension); returns the frames written.
#[pyfunction]
#[pyo3(signature = (path, audio, sample_rate, subtype=None, compression_level=None))]
pub fn write_file(
    py: Python<'_>,
    path: PathBuf,
    audio: &Bound<'_, PyAny>,
    sample_rate: u32,
    subtype: Option<&str>,
    compression_level: Option<f32>,
) -> PyResult<u64> {
    let subtype = parse_subtype(subtype)?;
    let buffer = convert::audio_from_array(audio, sample_rate)?;
    py.detach(|| {
        let mut w = remotemedia_io::AudioWriter::create_with(
            &path,
            buffer.sample_rate(),
            buffer.channels(),
            buffer.format(),
            subtype,
            compression_level,
        )?;
        w.write(&buffer)?;
        w.finish()
    })
    .map_err(io_to_pyerr)
}

/// An open file read block by block (`remotemedia.blocks`).
#[pyclass(module = "remotemedia._native")]
pub struct BlockReader {
    reader: Mutex<Option<AudioReader>>,
    blocksize: usize,
    dtype: Option<SampleFormat>,
    #[pyo3(get)]
    sample_rate: u32,
    #[pyo3(get)]
    channels: u16,
    /// Frames the header announces (None for streams of unknown length).
    #[pyo3(get)]
    frames: Option<u64>,
}

#[pymethods]
impl BlockReader {
    #[new]
    #[pyo3(signature = (path, blocksize, dtype=None))]
    fn new(py: Python<'_>, path: PathBuf, blocksize: usize, dtype: Option<&str>) -> PyResult<Self> {
        if blocksize == 0 {
            return Err(PyValueError::new_err("blocksize must be at least 1 frame"));
        }
        let dtype = parse_dtype(dtype)?;
        let reader = py
            .detach(|| remotemedia_io::open(&path))
            .map_err(io_to_pyerr)?;
        let info = reader.info().clone();
        Ok(Self {
            reader: Mutex::new(Some(reader)),
            blocksize,
            dtype,
            sample_rate: info.sample_rate,
            channels: info.channels,
            frames: info.frames,
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let block = py.detach(|| {
            let mut guard = self.reader.lock().expect("not poisoned");
            let Some(reader) = guard.as_mut() else {
                return Ok(None);
            };
            let r = reader.read_block(self.blocksize);
            if !matches!(r, Ok(Some(_))) {
                *guard = None; // closed after the end or an error
            }
            r
        });
        match block.map_err(io_to_pyerr)? {
            None => Ok(None),
            Some(b) => {
                let b = match self.dtype {
                    Some(f) if f != b.format() => b.to_format(f),
                    _ => b,
                };
                convert::audio_to_py(py, b, false).map(Some)
            }
        }
    }
}

/// Runs a manifest over files, directories or glob patterns into `out_dir` on `jobs` threads
/// (the CLI's batch runner); writes `summary.jsonl` there and returns its records as a JSON
/// array, in input order. A failing file is a record with `status: "error"`, not an
/// exception; errors of the batch as a whole (no input found, unwritable `out_dir`) raise.
#[pyfunction]
#[pyo3(signature = (manifest_json, inputs, out_dir, jobs=None, skip_existing=false, audio_format="wav", subtype=None, chunk_ms=1000, progress=false, compression_level=None))]
#[allow(clippy::too_many_arguments)]
pub fn run_files(
    py: Python<'_>,
    manifest_json: &str,
    inputs: Vec<PathBuf>,
    out_dir: PathBuf,
    jobs: Option<usize>,
    skip_existing: bool,
    audio_format: &str,
    subtype: Option<&str>,
    chunk_ms: u32,
    progress: bool,
    compression_level: Option<f32>,
) -> PyResult<String> {
    use remotemedia_cli::Host;
    if jobs == Some(0) {
        return Err(PyValueError::new_err(
            "jobs=0: use 1 or more (None: one per core)",
        ));
    }
    if chunk_ms == 0 {
        return Err(PyValueError::new_err(
            "chunk_ms=0: use 1 or more milliseconds",
        ));
    }
    if !remotemedia_io::AUDIO_FORMATS.contains(&audio_format) {
        return Err(PyValueError::new_err(format!(
            "audio_format={audio_format:?}: use one of {}",
            quoted(&remotemedia_io::AUDIO_FORMATS)
        )));
    }
    let subtype = parse_subtype(subtype)?;
    let manifest = remotemedia_core::manifest::parse(manifest_json)
        .map_err(|e| crate::errors::to_pyerr(py, e.into()))?;
    let host = crate::host::PyHost;
    let mut registry = host.registry();
    host.prepare(&manifest, &mut registry)
        .map_err(|e| PyValueError::new_err(remotemedia_cli::error_text(&e)))?;
    let pipeline = remotemedia_core::executor::Pipeline::new(manifest, &registry)
        .map_err(|e| crate::errors::to_pyerr(py, e))?;
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let outcome = py
        .detach(|| {
            remotemedia_cli::batch::run_corpus(
                &pipeline,
                &remotemedia_cli::batch::BatchArgs {
                    inputs: &inputs,
                    out_dir: &out_dir,
                    jobs,
                    skip_existing,
                    summary: None,
                    chunk_ms,
                    subtype,
                    compression_level,
                    audio_ext: audio_format,
                    quiet: !progress,
                    segments_dir: None,
                },
            )
        })
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(remotemedia_cli::error_text(&e)))?;
    Ok(serde_json::Value::from(outcome.records).to_string())
}
