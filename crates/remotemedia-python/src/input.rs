//! Input preparation, in one place for node calls, `Pipeline.run` (local and remote) and
//! streams, with one set of messages: files are read with the extension's own reader, sample
//! rates checked, arrays brought to a layout the runtime borrows without copying (odd layouts
//! and byte orders are copied once), stream chunks checked against the session's rate and
//! channel count. Python reaches it as `_native.prepare`, `_native.prepare_chunk` and
//! `_native.sample_rate_of`; node calls and the native `send` call it directly.

use std::path::{Component, Path, PathBuf};

use numpy::npyffi::{self, NPY_ORDER, PY_ARRAY_API};
use numpy::prelude::*;
use numpy::{PyArrayDescr, PyUntypedArray};
use pyo3::exceptions::{PyFileNotFoundError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};
use remotemedia_core::data::{Data, SampleFormat, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};

use crate::convert::{audio_from_array, audio_rate, data_from_py};

// ----------------------------------------------------------------------------- the rules

/// The sample format of a numpy dtype the runtime takes: float32, float64, int16 or int32 in
/// native byte order; `None` for any other dtype. The one statement of the supported dtypes.
pub(crate) fn sample_format(dtype: &Bound<'_, PyArrayDescr>) -> Option<SampleFormat> {
    if dtype.is_native_byteorder() == Some(false) {
        return None;
    }
    match (dtype.kind(), dtype.itemsize()) {
        (b'f', 4) => Some(SampleFormat::F32),
        (b'f', 8) => Some(SampleFormat::F64),
        (b'i', 2) => Some(SampleFormat::I16),
        (b'i', 4) => Some(SampleFormat::I32),
        _ => None,
    }
}

/// Whether the runtime can borrow the array as it is: a supported dtype, C-contiguous and
/// aligned (the samples are read in place as a slice of their type).
fn borrowable(array: &Bound<'_, PyUntypedArray>) -> bool {
    sample_format(&array.dtype()).is_some() && array.is_c_contiguous() && array.is_aligned()
}

fn unsupported_dtype(dtype: &Bound<'_, PyArrayDescr>) -> PyErr {
    PyTypeError::new_err(format!(
        "audio dtype {dtype} is not supported; use float32, float64, int16 or int32 \
         (e.g. audio.astype(np.float32))"
    ))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default()
}

static NP_INTEGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static NP_FLOATING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static PATH_LIKE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    module: &str,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import(module)?.getattr(name)?.unbind())
    })
    .map(|o| o.bind(py))
}

/// An integer sample rate in Hz from an int, a numpy integer or an integral float.
///
/// Rates the runtime cannot even hold (below 1 or beyond u32) are refused here: they would
/// otherwise fail converting to u32 with an OverflowError naming nothing. Other rates outside
/// the range reach the nodes, whose NodeError names the node.
pub(crate) fn rate_of(value: &Bound<'_, PyAny>, what: &str) -> PyResult<u32> {
    let py = value.py();
    let not_an_integer = || -> PyResult<u32> {
        Err(PyTypeError::new_err(format!(
            "{what} must be an integer in Hz, got {}",
            value.repr()?
        )))
    };
    let out_of_range = || -> PyResult<u32> {
        Err(PyValueError::new_err(format!(
            "{what} must be in {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz, got {}",
            value.repr()?
        )))
    };
    let in_range = |rate: i64| u32::try_from(rate).ok().filter(|&r| r >= 1);
    if value.is_instance_of::<PyBool>() {
        return not_an_integer();
    }
    if value.is_instance_of::<PyInt>()
        || value.is_instance(class(py, &NP_INTEGER, "numpy", "integer")?)?
    {
        // Beyond i64 (either way) is beyond u32 too.
        return match value.extract::<i64>().ok().and_then(in_range) {
            Some(rate) => Ok(rate),
            None => out_of_range(),
        };
    }
    if value.is_instance_of::<PyFloat>()
        || value.is_instance(class(py, &NP_FLOATING, "numpy", "floating")?)?
    {
        let f: f64 = value.extract()?;
        if !(f.is_finite() && f.fract() == 0.0) {
            return not_an_integer();
        }
        return match (f >= 1.0 && f <= f64::from(u32::MAX)).then_some(f as u32) {
            Some(rate) => Ok(rate),
            None => out_of_range(),
        };
    }
    not_an_integer()
}

/// `pathlib.Path(p)`, which is what files are read as and named by in messages: repeated
/// and trailing separators and `.` components dropped, `.` for an empty path.
fn pathlib(raw: &Path) -> PathBuf {
    // POSIX keeps exactly two leading slashes (they may mean something else than one).
    let text = raw.to_string_lossy();
    let double = cfg!(unix) && text.starts_with("//") && !text.starts_with("///");
    let mut out = PathBuf::from(if double { "//" } else { "" });
    for c in raw.components() {
        match c {
            Component::CurDir => {}
            Component::RootDir if double => {}
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

// ----------------------------------------------------------------------------- arrays

/// A copy of `array` in C order, aligned, as a base-class ndarray (`np.ascontiguousarray`).
fn contiguous_copy<'py>(array: &Bound<'py, PyUntypedArray>) -> PyResult<Bound<'py, PyAny>> {
    let py = array.py();
    let flags =
        npyffi::NPY_ARRAY_C_CONTIGUOUS | npyffi::NPY_ARRAY_ALIGNED | npyffi::NPY_ARRAY_ENSUREARRAY;
    // SAFETY: `array` is a live ndarray; a null descriptor keeps its dtype; the result is a
    // new reference or null with an exception set.
    unsafe {
        let raw =
            PY_ARRAY_API.PyArray_FromArray(py, array.as_array_ptr(), std::ptr::null_mut(), flags);
        Bound::from_owned_ptr_or_err(py, raw)
    }
}

/// `array.copy()`: a C-order copy of the same type (an `Audio` keeps its rate).
fn own_copy<'py>(array: &Bound<'py, PyUntypedArray>) -> PyResult<Bound<'py, PyAny>> {
    let py = array.py();
    // SAFETY: as for `contiguous_copy`.
    unsafe {
        let raw = PY_ARRAY_API.PyArray_NewCopy(py, array.as_array_ptr(), NPY_ORDER::NPY_CORDER);
        Bound::from_owned_ptr_or_err(py, raw)
    }
}

/// The array in a layout the runtime borrows: itself when it is one already, else a copy
/// (once); `true` with a copy. Unsupported dtypes are refused.
fn layout<'py>(array: &Bound<'py, PyUntypedArray>) -> PyResult<(Bound<'py, PyAny>, bool)> {
    let dtype = array.dtype();
    if sample_format(&dtype).is_none() {
        return Err(unsupported_dtype(&dtype));
    }
    if array.is_c_contiguous() && array.is_aligned() {
        Ok((array.clone().into_any(), false))
    } else {
        Ok((contiguous_copy(array)?, true))
    }
}

// ----------------------------------------------------------------------------- whole inputs

/// A prepared input.
pub(crate) enum Prepared<'py> {
    /// An array the runtime borrows as it is, at this rate.
    Audio(Bound<'py, PyAny>, u32),
    /// Any other value (for pipelines of Python nodes), with the rate given, if any.
    Other(Bound<'py, PyAny>, Option<u32>),
}

/// Normalises a run input: reads files (in their own sample format, or `dtype` as soundfile
/// names it), checks rates, makes arrays contiguous.
pub(crate) fn prepare_input<'py>(
    data: &Bound<'py, PyAny>,
    sample_rate: Option<&Bound<'py, PyAny>>,
    dtype: Option<&Bound<'py, PyAny>>,
) -> PyResult<Prepared<'py>> {
    let py = data.py();
    let array = data.cast::<PyUntypedArray>().ok();
    if array.is_none()
        && (data.is_instance_of::<PyString>()
            || data.is_instance(class(py, &PATH_LIKE, "os", "PathLike")?)?)
    {
        return read(data, sample_rate, dtype);
    }
    if array.is_none() && is_encoded_audio(data)? {
        let source = crate::io::Source::of(data)?.expect("checked");
        return read_encoded(py, source, sample_rate, dtype);
    }
    if dtype.is_some() {
        return Err(PyValueError::new_err(
            "dtype= applies to files; convert arrays with numpy (a.astype(...))",
        ));
    }
    let given = sample_rate.map(|r| rate_of(r, "sample_rate")).transpose()?;
    let Some(array) = array else {
        // With a sample rate, an array-like is audio: a torch/jax/cupy tensor (on the CPU)
        // through DLPack or `__array__` (numpy shares its memory where the layout allows), a
        // typed memoryview. Without one it stays a value for Python nodes.
        if given.is_some() {
            if let Some(converted) = as_numpy(data)? {
                return prepare_input(&converted, sample_rate, None);
            }
        }
        return Ok(Prepared::Other(data.clone(), given));
    };
    let own = audio_rate(data)?;
    if let (Some(own), Some(given)) = (own, given) {
        if own != given {
            return Err(PyValueError::new_err(format!(
                "the Audio is {own} Hz but sample_rate={given} was given"
            )));
        }
    }
    let rate = own.filter(|&r| r != 0).or(given).ok_or_else(|| {
        PyValueError::new_err(
            "pass sample_rate=... with a numpy array (or a remotemedia.Audio, which has one)",
        )
    })?;
    Ok(Prepared::Audio(layout(array)?.0, rate))
}

/// An array-like as a numpy array: `__dlpack__` (zero-copy; a tensor on a GPU is refused with
/// the fix), `__array__`, or a memoryview of typed items. Raw bytes are refused: their sample
/// format is unknown. `None` for anything else.
fn as_numpy<'py>(data: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    use pyo3::types::{PyByteArray, PyBytes, PyMemoryView};
    let py = data.py();
    let np = py.import("numpy")?;
    let raw_bytes = data.is_instance_of::<PyBytes>()
        || data.is_instance_of::<PyByteArray>()
        || (data.is_instance_of::<PyMemoryView>()
            && data.getattr("format")?.extract::<String>()? == "B");
    if raw_bytes {
        return Err(PyTypeError::new_err(format!(
            "{} with sample_rate: raw bytes have no sample format; give \
             np.frombuffer(data, dtype=np.int16).reshape(-1, channels) for raw PCM (or the \
             dtype it is), or the bytes alone for an encoded file (WAV, FLAC, Ogg, MP3)",
            type_name(data)
        )));
    }
    if data.is_instance_of::<PyMemoryView>() {
        return Ok(Some(np.call_method1("asarray", (data,))?));
    }
    let (dlpack, array) = (data.hasattr("__dlpack__")?, data.hasattr("__array__")?);
    if !dlpack && !array {
        return Ok(None);
    }
    // DLPack shares the memory; where it cannot (a GPU tensor) `__array__` copies, or fails.
    let first = if dlpack {
        np.call_method1("from_dlpack", (data,))
    } else {
        np.call_method1("asarray", (data,))
    };
    match first {
        Ok(a) => Ok(Some(a)),
        Err(_) if dlpack && array => np.call_method1("asarray", (data,)).map(Some),
        Err(e) => Err(e),
    }
    .map_err(|e| {
        let hint = if dlpack {
            "; move it to the CPU first (tensor.cpu())"
        } else {
            ""
        };
        PyTypeError::new_err(format!(
            "a {} numpy cannot read ({}){hint}",
            type_name(data),
            e.value(py)
        ))
    })
}

/// Whether a run's input is an encoded audio file in memory: a binary file-like object
/// (`BytesIO`, `open(p, "rb")`), or `bytes`/`bytearray` that start like a WAV, FLAC, Ogg or
/// ID3-tagged MP3 file (other bytes stay a value for Python nodes).
fn is_encoded_audio(data: &Bound<'_, PyAny>) -> PyResult<bool> {
    use pyo3::types::{PyByteArray, PyBytes};
    if data.is_instance_of::<PyBytes>() || data.is_instance_of::<PyByteArray>() {
        let head: Vec<u8> = data
            .get_item(pyo3::types::PySlice::new(data.py(), 0, 12, 1))?
            .extract()?;
        // A bare MPEG frame sync (two bytes) is too weak a sign for a Python node's bytes.
        return Ok(match remotemedia_io::detect(&head) {
            Some("mp3") => head.starts_with(b"ID3"),
            found => found.is_some(),
        });
    }
    Ok(data.hasattr("read")? && data.hasattr("seek")?)
}

/// `dtype=` of a file read, as text.
fn dtype_arg(
    py: Python<'_>,
    dtype: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<pyo3::pybacked::PyBackedStr>> {
    dtype
        .map(|d| {
            d.extract::<pyo3::pybacked::PyBackedStr>()
                .map_err(|e| PyTypeError::new_err(format!("argument 'dtype': {}", e.value(py))))
        })
        .transpose()
}

/// Encoded audio in memory, read whole; a rate given must be the file's.
fn read_encoded<'py>(
    py: Python<'py>,
    source: crate::io::Source,
    sample_rate: Option<&Bound<'py, PyAny>>,
    dtype: Option<&Bound<'py, PyAny>>,
) -> PyResult<Prepared<'py>> {
    let name = source.name().display().to_string();
    let dtype = dtype_arg(py, dtype)?;
    let audio = crate::io::read_source(py, source, dtype.as_deref())?;
    checked_rate(audio, sample_rate, &name)
}

/// A file's audio with its rate, which a rate given must equal.
fn checked_rate<'py>(
    audio: Bound<'py, PyAny>,
    sample_rate: Option<&Bound<'py, PyAny>>,
    name: &str,
) -> PyResult<Prepared<'py>> {
    let rate = audio_rate(&audio)?.ok_or_else(|| PyValueError::new_err("a file without a rate"))?;
    if let Some(given) = sample_rate {
        if rate_of(given, "sample_rate")? != rate {
            return Err(PyValueError::new_err(format!(
                "{name} is {rate} Hz but sample_rate={} was given",
                given.str()?
            )));
        }
    }
    Ok(Prepared::Audio(audio, rate))
}

/// A file input: read whole with the extension's reader; a rate given must be the file's.
fn read<'py>(
    data: &Bound<'py, PyAny>,
    sample_rate: Option<&Bound<'py, PyAny>>,
    dtype: Option<&Bound<'py, PyAny>>,
) -> PyResult<Prepared<'py>> {
    let py = data.py();
    let path = pathlib(&data.extract::<PathBuf>()?);
    // Missing is said here (as `Path.exists()` would); other failures (permissions, a
    // damaged file) are the reader's, which names the file.
    if matches!(std::fs::metadata(&path), Err(e) if e.kind() != std::io::ErrorKind::PermissionDenied)
    {
        return Err(PyFileNotFoundError::new_err(format!(
            "no such audio file: {}",
            path.display()
        )));
    }
    let dtype = dtype_arg(py, dtype)?;
    let name = path.display().to_string();
    let audio = crate::io::read_source(py, crate::io::Source::Path(path), dtype.as_deref())?;
    checked_rate(audio, sample_rate, &name)
}

/// The rate of a direct node call's input when it takes the fast path of [`node_input`]:
/// an array the runtime can borrow as it is whose rate is known once (carried by the
/// `Audio`, or given as an exact `int`, or both and equal); `None` otherwise.
fn borrowable_rate(
    data: &Bound<'_, PyAny>,
    sample_rate: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<u32>> {
    let Ok(array) = data.cast::<PyUntypedArray>() else {
        return Ok(None);
    };
    if !borrowable(array) {
        return Ok(None);
    }
    // Only an exact `int` (not a bool, a float or a numpy integer) that fits.
    let given = match sample_rate {
        None => None,
        Some(r) if r.is_exact_instance_of::<PyInt>() => match r.extract::<u32>() {
            Ok(v) if v >= 1 => Some(v),
            _ => return Ok(None),
        },
        Some(_) => return Ok(None),
    };
    Ok(match (audio_rate(data)?, given) {
        (Some(own), None) if own != 0 => Some(own),
        (None, Some(given)) => Some(given),
        (Some(own), Some(given)) if own == given => Some(own),
        _ => None,
    })
}

/// The input of a direct node call (`NativeNode.process` / `run`), as `Pipeline.run` takes
/// it. The common case, an array borrowed as it is with its rate known once, is converted
/// with no further look; anything else goes through [`prepare_input`].
pub(crate) fn node_input(
    data: &Bound<'_, PyAny>,
    sample_rate: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Data>> {
    if let Some(rate) = borrowable_rate(data, sample_rate)? {
        return Ok(Some(Data::Audio(audio_from_array(data, rate)?)));
    }
    match prepare_input(data, sample_rate, None)? {
        Prepared::Audio(array, rate) => Ok(Some(Data::Audio(audio_from_array(&array, rate)?))),
        Prepared::Other(value, rate) => data_from_py(&value, rate),
    }
}

// ----------------------------------------------------------------------------- stream chunks

/// One chunk of a stream opened at `sample_rate` with `channels`, checked and in a layout the
/// runtime borrows. With `own` (the chunk is queued and processed after `send` returns) the
/// result never shares memory with the caller's array, so a caller that refills one buffer
/// cannot change queued chunks.
pub(crate) fn chunk_array<'py>(
    chunk: &Bound<'py, PyAny>,
    sample_rate: u32,
    channels: usize,
    own: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let Ok(array) = chunk.cast::<PyUntypedArray>() else {
        return Err(PyTypeError::new_err(format!(
            "send() takes a numpy array of audio, got {}",
            type_name(chunk)
        )));
    };
    if let Some(rate) = audio_rate(chunk)? {
        if rate != sample_rate {
            return Err(PyValueError::new_err(format!(
                "chunk is {rate} Hz but the session was opened at {sample_rate} Hz"
            )));
        }
    }
    let shape = array.shape();
    let have = match shape {
        [_] => 1,
        [_, ch] => *ch,
        _ => usize::MAX,
    };
    if have != channels {
        return Err(PyValueError::new_err(format!(
            "chunk has shape {} but the session has {channels} channel(s); \
             chunks are (frames,) for mono or (frames, channels)",
            shape_repr(shape)
        )));
    }
    let (out, copied) = layout(array)?;
    // An empty array shares no memory with anything (as `np.may_share_memory` says).
    if own && !copied && array.len() > 0 {
        return own_copy(array);
    }
    Ok(out)
}

/// A shape as Python writes the tuple: `(160,)`, `(480, 2)`.
fn shape_repr(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    }
}

/// One chunk of a stream as `Data` (the native `send` and `push`): [`chunk_array`] borrowed.
pub fn stream_chunk(obj: &Bound<'_, PyAny>, sample_rate: u32, channels: usize) -> PyResult<Data> {
    let array = chunk_array(obj, sample_rate, channels, false)?;
    Ok(Data::Audio(audio_from_array(&array, sample_rate)?))
}

// ----------------------------------------------------------------------------- Python

/// `(data, rate)` ready for the runtime: files read (`dtype` as soundfile names a sample
/// format, else the file's own), rates checked, arrays contiguous; `rate` is `None` for
/// values that are not audio given without one.
#[pyfunction]
#[pyo3(signature = (data, sample_rate = None, dtype = None))]
pub fn prepare<'py>(
    data: &Bound<'py, PyAny>,
    sample_rate: Option<&Bound<'py, PyAny>>,
    dtype: Option<&Bound<'py, PyAny>>,
) -> PyResult<(Bound<'py, PyAny>, Option<u32>)> {
    Ok(match prepare_input(data, sample_rate, dtype)? {
        Prepared::Audio(array, rate) => (array, Some(rate)),
        Prepared::Other(value, rate) => (value, rate),
    })
}

/// One stream chunk checked against the session's rate and channel count, in a layout the
/// runtime borrows; with `own`, never sharing memory with `chunk`.
#[pyfunction]
#[pyo3(signature = (chunk, sample_rate, channels, own))]
pub fn prepare_chunk<'py>(
    chunk: &Bound<'py, PyAny>,
    sample_rate: u32,
    channels: usize,
    own: bool,
) -> PyResult<Bound<'py, PyAny>> {
    chunk_array(chunk, sample_rate, channels, own)
}

/// An integer sample rate in Hz from an int, a numpy integer or an integral float; `what`
/// names the value in messages.
#[pyfunction]
#[pyo3(signature = (value, what = "sample_rate"))]
pub fn sample_rate_of(value: &Bound<'_, PyAny>, what: &str) -> PyResult<u32> {
    rate_of(value, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_named_as_pathlib_names_them() {
        for (raw, shown) in [
            ("a/b.wav", "a/b.wav"),
            ("./a//b/./c.wav", "a/b/c.wav"),
            ("a/", "a"),
            (".", "."),
            ("", "."),
            ("/x/../y", "/x/../y"),
            ("//x", "//x"),
            ("///x", "/x"),
        ] {
            assert_eq!(pathlib(Path::new(raw)).to_str(), Some(shown), "{raw}");
        }
    }

    #[test]
    fn shapes_are_written_as_python_tuples() {
        assert_eq!(shape_repr(&[160]), "(160,)");
        assert_eq!(shape_repr(&[480, 2]), "(480, 2)");
        assert_eq!(shape_repr(&[]), "()");
        assert_eq!(shape_repr(&[2, 2, 2]), "(2, 2, 2)");
    }
}
