//! numpy / Python objects <-> the core's `Data`, without copying audio:
//! - numpy -> Rust borrows a C-contiguous array of a native dtype (the array is kept alive by
//!   the buffer; nothing is copied);
//! - Rust -> numpy hands over the allocation when the buffer is uniquely owned (`from_vec`),
//!   returns the original array when the buffer borrows one, and otherwise exposes the shared
//!   buffer as a read-only array whose base keeps it alive. None of the three copies.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use numpy::ndarray::{ArrayViewD, IxDyn};
use numpy::prelude::*;
use numpy::{Element, PyArray1, PyArrayDyn, PyUntypedArray};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyCapsule, PyDict, PyList, PyTuple, PyType};
use remotemedia_core::data::{
    AudioBuffer, Data, HostObject, SampleBuf, SampleFormat, Samples, Segment, MAX_CHANNELS,
};

use crate::input::sample_format;

/// Keeps a Python object (a numpy array, or any value) alive from Rust.
pub struct PyOwner(pub Py<PyAny>);

/// The numpy base object of an array over a Rust buffer: a capsule owning it (freed with the
/// capsule). A capsule, not a class of ours: it is not tracked by Python's cycle collector,
/// which otherwise visits one more object per stream output in every collection.
fn buffer_owner<V: Send + 'static>(py: Python<'_>, buffer: V) -> PyResult<Bound<'_, PyAny>> {
    Ok(PyCapsule::new_with_value(py, buffer, c"remotemedia.samples")?.into_any())
}

static AUDIO_CLS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static SEGMENT_CLS: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static EVENTS_FN: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static JSON_DEFAULT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static JSON: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn types_attr<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyAny>>,
    name: &str,
) -> PyResult<&'py Bound<'py, PyAny>> {
    cell.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("remotemedia._types")?.getattr(name)?.unbind())
    })
    .map(|o| o.bind(py))
}

fn json_module(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    JSON.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("json")?.into_any().unbind())
    })
    .map(|o| o.bind(py))
}

// ----------------------------------------------------------------------------- zero-copy log

/// How an audio buffer crossed the boundary (recorded only while logging is on, for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// numpy -> Rust: borrowed.
    Borrowed,
    /// Rust -> numpy: allocation handed over.
    Moved,
    /// Rust -> numpy: the original numpy array returned.
    Original,
    /// Rust -> numpy: read-only view of a shared Rust buffer.
    SharedView,
}

impl Crossing {
    fn as_str(self) -> &'static str {
        match self {
            Crossing::Borrowed => "borrowed",
            Crossing::Moved => "moved",
            Crossing::Original => "original",
            Crossing::SharedView => "shared_view",
        }
    }
}

static LOG_ON: AtomicBool = AtomicBool::new(false);
static LOG: Mutex<Vec<(usize, Crossing)>> = Mutex::new(Vec::new());

fn log(ptr: *const u8, how: Crossing) {
    if LOG_ON.load(Ordering::Relaxed) {
        LOG.lock().expect("log lock").push((ptr as usize, how));
    }
}

/// Turns the crossing log on or off (clearing it).
#[pyfunction]
pub fn _set_crossing_log(on: bool) {
    LOG.lock().expect("log lock").clear();
    LOG_ON.store(on, Ordering::Relaxed);
}

/// Takes the crossing log: `(rust data pointer, how)` for each audio buffer converted.
#[pyfunction]
pub fn _take_crossing_log() -> Vec<(usize, &'static str)> {
    std::mem::take(&mut *LOG.lock().expect("log lock"))
        .into_iter()
        .map(|(p, c)| (p, c.as_str()))
        .collect()
}

// ----------------------------------------------------------------------------- numpy -> Rust

fn borrow_typed<T: Element + Copy + Send + Sync + 'static>(
    arr: &Bound<'_, PyArrayDyn<T>>,
    len: usize,
) -> SampleBuf<T> {
    // The caller checked C-contiguity, so the data is `len` consecutive `T`s. No borrow flag is
    // taken (numpy's flags do not stop Python code from writing anyway): the array is kept
    // alive by the owner and only read.
    let ptr = arr.data() as *const T;
    log(ptr as *const u8, Crossing::Borrowed);
    let owner = PyOwner(arr.clone().into_any().unbind());
    // SAFETY: `owner` keeps the array (and so its data) alive for as long as the buffer lives;
    // numpy does not move the data of an array that has other references. Callers must not
    // write to the array while a run uses it (documented on Pipeline.run).
    unsafe { SampleBuf::from_foreign(ptr, len, Box::new(owner)) }
}

/// Borrows a numpy array as interleaved audio: shape `(frames,)` or `(frames, channels)`,
/// C-contiguous, dtype float32, float64, int16 or int32 in native byte order.
pub fn audio_from_array(obj: &Bound<'_, PyAny>, sample_rate: u32) -> PyResult<AudioBuffer> {
    let untyped = obj.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a numpy array, got {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    let shape = untyped.shape();
    let channels = match shape {
        [_] => 1usize,
        [frames, ch] => {
            if *ch > MAX_CHANNELS as usize && *frames <= MAX_CHANNELS as usize {
                return Err(PyValueError::new_err(format!(
                    "audio has shape {shape:?}: arrays are (frames, channels) like soundfile and soxr; \
                     this looks like (channels, frames), pass `audio.T`"
                )));
            }
            if *ch == 0 || *ch > MAX_CHANNELS as usize {
                return Err(PyValueError::new_err(format!(
                    "audio has {ch} channels; expected 1..={MAX_CHANNELS}"
                )));
            }
            *ch
        }
        _ => {
            return Err(PyValueError::new_err(format!(
                "audio must be 1-D (frames,) or 2-D (frames, channels), got shape {shape:?}"
            )))
        }
    };
    if !untyped.is_c_contiguous() {
        return Err(PyValueError::new_err(
            "audio array must be C-contiguous (use numpy.ascontiguousarray)",
        ));
    }
    let len = untyped.len();
    // One look at the dtype (kind, size, byte order) instead of trying each typed cast: a
    // failed cast costs about 0.4 us, which was most of a small call's overhead.
    let dtype = untyped.dtype();
    // SAFETY (each arm): `sample_format` says the dtype is exactly `T` in native byte order.
    let samples = match sample_format(&dtype) {
        Some(SampleFormat::F32) => Samples::F32(borrow_typed(unsafe { obj.cast_unchecked() }, len)),
        Some(SampleFormat::F64) => Samples::F64(borrow_typed(unsafe { obj.cast_unchecked() }, len)),
        Some(SampleFormat::I16) => Samples::I16(borrow_typed(unsafe { obj.cast_unchecked() }, len)),
        Some(SampleFormat::I32) => Samples::I32(borrow_typed(unsafe { obj.cast_unchecked() }, len)),
        None => {
            return Err(PyTypeError::new_err(format!(
                "audio dtype {dtype} is not supported; use float32, float64, int16 or int32 (native byte order)"
            )))
        }
    };
    AudioBuffer::new(samples, sample_rate, channels as u16)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The sample rate of an `Audio` object (a numpy array subclass with `sample_rate`).
pub(crate) fn audio_rate(obj: &Bound<'_, PyAny>) -> PyResult<Option<u32>> {
    let py = obj.py();
    let cls = types_attr(py, &AUDIO_CLS, "Audio")?;
    if obj.is_instance(cls)? {
        let rate = obj.getattr(intern!(py, "sample_rate"))?;
        if rate.is_none() {
            return Ok(None);
        }
        return Ok(Some(rate.extract()?));
    }
    Ok(None)
}

/// Converts a Python value to `Data`. `None` -> no value; `Audio` -> audio at its rate; a
/// numpy array -> audio at `default_rate` (error without one); a non-empty list of `Segment`
/// -> segments; anything else is carried as an opaque host object.
pub fn data_from_py(obj: &Bound<'_, PyAny>, default_rate: Option<u32>) -> PyResult<Option<Data>> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(None);
    }
    if obj.cast::<PyUntypedArray>().is_ok() {
        let rate = audio_rate(obj)?.or(default_rate).ok_or_else(|| {
            PyValueError::new_err(
                "a numpy array has no sample rate here; pass sample_rate=... or return remotemedia.Audio(array, sample_rate)",
            )
        })?;
        return Ok(Some(Data::Audio(audio_from_array(obj, rate)?)));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        let seg_cls = types_attr(py, &SEGMENT_CLS, "Segment")?;
        if !list.is_empty() && list.iter().all(|i| i.is_instance(seg_cls).unwrap_or(false)) {
            let segs = list
                .iter()
                .map(|s| {
                    let seg = Segment {
                        confidence: s.getattr(intern!(py, "confidence"))?.extract()?,
                        energy_db: s.getattr(intern!(py, "energy_db"))?.extract()?,
                        ..Segment::new(
                            s.getattr(intern!(py, "start_sample"))?.extract()?,
                            s.getattr(intern!(py, "end_sample"))?.extract()?,
                            s.getattr(intern!(py, "sample_rate"))?.extract()?,
                        )
                    };
                    seg.check().map_err(PyValueError::new_err)?;
                    Ok(seg)
                })
                .collect::<PyResult<Vec<_>>>()?;
            return Ok(Some(Data::Segments(segs)));
        }
    }
    let type_name = obj
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_string());
    Ok(Some(Data::Object(HostObject::new(
        Arc::new(PyOwner(obj.clone().unbind())),
        type_name,
    ))))
}

/// One chunk of a stream as `Data` (prepared by [`crate::input`], which has every input rule).
pub use crate::input::stream_chunk;

// ----------------------------------------------------------------------------- Rust -> numpy

fn typed_to_array<'py, T: Element + Copy + Send + Sync + 'static>(
    py: Python<'py>,
    buf: SampleBuf<T>,
    channels: usize,
    read_only: bool,
    subtype: Option<&Bound<'py, PyType>>,
) -> PyResult<(Bound<'py, PyAny>, bool)> {
    let frames = buf.len() / channels.max(1);
    let shape: Vec<usize> = if channels == 1 {
        vec![frames]
    } else {
        vec![frames, channels]
    };
    // 1. The buffer borrows a numpy array: give that array back.
    if let Some(owner) = buf
        .foreign_owner()
        .and_then(|o| o.downcast_ref::<PyOwner>())
    {
        let arr = owner.0.bind(py);
        if let Ok(untyped) = arr.cast::<PyUntypedArray>() {
            if untyped.len() == buf.len() && untyped.shape() == shape.as_slice() {
                log(buf.as_ptr() as *const u8, Crossing::Original);
                if read_only {
                    // Not `arr.view()` with the flag off: a view of a writeable array can be
                    // made writeable again, and a Python node would change the caller's
                    // array. An array over the buffer with a capsule base cannot.
                    return Ok((shared_view(py, buf, &shape)?, false));
                }
                return Ok((arr.clone(), false));
            }
        }
    }
    // 2. Uniquely owned: hand the allocation to numpy.
    let buf = match buf.try_into_vec() {
        Ok(v) => {
            log(v.as_ptr() as *const u8, Crossing::Moved);
            if let Some(cls) = subtype {
                return Ok((vec_to_subtype(py, v, &shape, cls)?, true));
            }
            let arr = PyArray1::from_vec(py, v);
            return if channels == 1 {
                Ok((arr.into_any(), false))
            } else {
                Ok((arr.reshape(shape)?.into_any(), false))
            };
        }
        Err(buf) => buf,
    };
    // 3. Shared: a read-only view whose base keeps the Rust buffer alive.
    log(buf.as_ptr() as *const u8, Crossing::SharedView);
    Ok((shared_view(py, buf, &shape)?, false))
}

/// A read-only array over `buf` whose base (a capsule owning `buf`) keeps it alive; numpy
/// refuses to make it writeable again.
fn shared_view<'py, T: Element + Copy + Send + Sync + 'static>(
    py: Python<'py>,
    buf: SampleBuf<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyAny>> {
    let ptr = buf.as_ptr();
    let owner = buffer_owner(py, buf)?;
    // SAFETY: `ptr` points at `frames * channels` initialised `T`s kept alive (and never
    // written) by the buffer inside `owner`, which becomes the array's base object.
    let view = unsafe { ArrayViewD::from_shape_ptr(IxDyn(shape), ptr) };
    let arr = unsafe { PyArrayDyn::<T>::borrow_from_array(&view, owner.into_any()) };
    arr.readwrite().make_nonwriteable();
    Ok(arr.into_any())
}

/// A writeable C-contiguous array of type `cls` (an ndarray subclass) over `v`'s allocation,
/// made in one step (not an ndarray and then a view of it); its base keeps `v` alive.
fn vec_to_subtype<'py, T: Element + Copy + Send + Sync + 'static>(
    py: Python<'py>,
    mut v: Vec<T>,
    shape: &[usize],
    cls: &Bound<'py, PyType>,
) -> PyResult<Bound<'py, PyAny>> {
    use numpy::npyffi::{npy_intp, PyArrayObject, NPY_ARRAY_WRITEABLE, PY_ARRAY_API};
    let data = v.as_mut_ptr();
    // The owner first: if making the array fails, dropping it frees the samples.
    let owner = buffer_owner(py, v)?;
    let mut dims: Vec<npy_intp> = shape.iter().map(|&d| d as npy_intp).collect();
    // SAFETY: `data` points at `shape.iter().product()` initialised `T`s owned by the Vec in
    // `owner` (moving the Vec does not move its heap buffer), which becomes the array's base
    // (the reference is moved in), so the samples live as long as the array. NULL strides
    // with data make numpy use C-contiguous strides; `cls` is an ndarray subclass (the
    // `Audio` type), whose `__array_finalize__` numpy calls as for any new array of it.
    unsafe {
        let raw = PY_ARRAY_API.PyArray_NewFromDescr(
            py,
            cls.as_type_ptr(),
            T::get_dtype(py).into_dtype_ptr(),
            dims.len() as std::ffi::c_int,
            dims.as_mut_ptr(),
            std::ptr::null_mut(),
            data as *mut std::ffi::c_void,
            NPY_ARRAY_WRITEABLE,
            std::ptr::null_mut(),
        );
        if raw.is_null() {
            return Err(PyErr::fetch(py));
        }
        let arr = Bound::from_owned_ptr(py, raw);
        if PY_ARRAY_API.PyArray_SetBaseObject(py, raw as *mut PyArrayObject, owner.into_ptr()) != 0
        {
            return Err(PyErr::fetch(py));
        }
        Ok(arr)
    }
}

/// Audio as a numpy array (1-D for mono, `(frames, channels)` otherwise), without copying;
/// with `subtype`, a buffer handed over becomes an array of that type at once (`true` then:
/// a new object of `subtype`).
fn audio_to_array_as<'py>(
    py: Python<'py>,
    audio: AudioBuffer,
    read_only: bool,
    subtype: Option<&Bound<'py, PyType>>,
) -> PyResult<(Bound<'py, PyAny>, bool)> {
    let channels = audio.channels() as usize;
    match audio.into_samples() {
        Samples::F32(b) => typed_to_array(py, b, channels, read_only, subtype),
        Samples::F64(b) => typed_to_array(py, b, channels, read_only, subtype),
        Samples::I16(b) => typed_to_array(py, b, channels, read_only, subtype),
        Samples::I32(b) => typed_to_array(py, b, channels, read_only, subtype),
    }
}

/// The `Audio` class the finalizer checks `obj` against (set by [`audio_finalizer`]).
static FINALIZE_CLS: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `Audio.__array_finalize__` as a C finalizer, which numpy calls directly (a `PyCapsule`
/// holding a `PyArray_FinalizeFunc`, numpy's documented alternative to a Python method):
/// every new `Audio` array (a runtime output, a slice, a view, a ufunc result) gets its rate
/// from `obj` when that is an `Audio`, else `None`, as the Python method did, without a
/// Python call (about a thousand instructions per stream output).
#[pyfunction]
pub fn audio_finalizer(py: Python<'_>, cls: Bound<'_, PyType>) -> PyResult<Py<PyAny>> {
    let _ = FINALIZE_CLS.set(py, cls.unbind());
    // SAFETY: a capsule over a function pointer with numpy's finalizer signature and no name
    // (numpy reads it with `PyCapsule_GetPointer(func, NULL)`); no destructor needed.
    unsafe {
        let cap = pyo3::ffi::PyCapsule_New(
            audio_finalize as *const () as *mut std::ffi::c_void,
            std::ptr::null(),
            None,
        );
        Bound::from_owned_ptr_or_err(py, cap).map(Bound::unbind)
    }
}

/// numpy's `PyArray_FinalizeFunc` for `Audio`: `self.sample_rate = obj.sample_rate if
/// isinstance(obj, Audio) else None`; 0 on success, -1 with an exception set.
unsafe extern "C" fn audio_finalize(
    arr: *mut numpy::npyffi::PyArrayObject,
    obj: *mut pyo3::ffi::PyObject,
) -> std::ffi::c_int {
    // SAFETY: numpy calls this while creating an array, with the GIL held; `arr` is the new
    // array and `obj` a borrowed reference or null.
    let py = unsafe { Python::assume_attached() };
    let work = || -> PyResult<()> {
        let this = unsafe { Bound::from_borrowed_ptr(py, arr.cast()) };
        let name = intern!(py, "sample_rate");
        let from = match (obj.is_null(), FINALIZE_CLS.get(py)) {
            (false, Some(cls)) => {
                let o = unsafe { Bound::from_borrowed_ptr(py, obj) };
                o.is_instance(cls.bind(py))?.then_some(o)
            }
            _ => None,
        };
        match from {
            Some(o) => this.setattr(name, o.getattr(name)?),
            None => this.setattr(name, py.None()),
        }
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            e.restore(py);
            -1
        }
        Err(_) => {
            pyo3::exceptions::PyRuntimeError::new_err("Audio finalizer panicked").restore(py);
            -1
        }
    }
}

/// Audio as a `remotemedia.Audio` (numpy array subclass carrying `sample_rate`).
pub fn audio_to_py<'py>(
    py: Python<'py>,
    audio: AudioBuffer,
    read_only: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let rate = audio.sample_rate();
    let cls = types_attr(py, &AUDIO_CLS, "Audio")?;
    let sample_rate = intern!(py, "sample_rate");
    // Which input ranges the frames are, where the node said so (`Audio.origin`).
    let origin = audio
        .origin()
        .map(|spans| PyTuple::new(py, segments_to_py(py, spans)?))
        .transpose()?;
    let (arr, fresh) = audio_to_array_as(py, audio, read_only, cls.cast::<PyType>().ok())?;
    if fresh {
        // A new Audio over a buffer handed over: only its rate is missing.
        arr.setattr(sample_rate, rate)?;
        if let Some(spans) = origin {
            arr.setattr(intern!(py, "_origin"), spans)?;
        }
        // Its only references are an int (the rate slot; `Audio` has no instance dict), a
        // tuple of `Segment`s of numbers (the origin slot) and its base (a capsule, or
        // nothing), so it can be in no reference cycle: take it off
        // the cycle collector's lists, as CPython does for tuples of atoms. Otherwise a
        // caller keeping a stream's outputs has the collector visit each of them again and
        // again (a tenth of a 20 ms resampling chunk's time in a profile); its `StreamOutput`
        // tuple is untracked when made, for the same reason (`pipeline::stream_output`).
        // SAFETY: `arr` is a live object; untracking an untracked object is a no-op, and
        // `subtype_dealloc` untracks before freeing either way.
        unsafe {
            if pyo3::ffi::PyObject_GC_IsTracked(arr.as_ptr()) == 1 {
                pyo3::ffi::PyObject_GC_UnTrack(arr.as_ptr().cast());
            }
        }
        return Ok(arr);
    }
    // The caller's own Audio object coming back (a pass-through): return it as it is.
    if origin.is_none()
        && arr.is_instance(cls)?
        && arr.getattr(sample_rate)?.extract::<Option<u32>>()? == Some(rate)
    {
        return Ok(arr);
    }
    let out = arr.call_method1(intern!(py, "view"), (cls,))?;
    out.setattr(sample_rate, rate)?;
    if let Some(spans) = origin {
        out.setattr(intern!(py, "_origin"), spans)?;
    }
    Ok(out)
}

/// Segments as `remotemedia.Segment` objects.
fn segments_to_py<'py>(py: Python<'py>, segs: &[Segment]) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let cls = types_attr(py, &SEGMENT_CLS, "Segment")?;
    segs.iter()
        .map(|s| {
            cls.call1((
                s.start_sample,
                s.end_sample,
                s.sample_rate,
                s.confidence,
                s.energy_db,
            ))
        })
        .collect()
}

/// Converts `Data` to Python. With `read_only`, audio that is shared (or is the caller's own
/// input) is given as a read-only view, so a node cannot change data another node also sees.
pub fn data_to_py<'py>(
    py: Python<'py>,
    data: Data,
    read_only: bool,
) -> PyResult<Bound<'py, PyAny>> {
    match data {
        Data::Audio(a) => audio_to_py(py, a, read_only),
        Data::Segments(segs) => Ok(PyList::new(py, segments_to_py(py, &segs)?)?.into_any()),
        Data::Json(v) => {
            let text = serde_json::to_string(&v).expect("JSON values serialize");
            let loaded = json_module(py)?.call_method1("loads", (text,))?;
            if is_event_list(&v) {
                // VAD events become `SpeechStart` / `SpeechEnd` objects (indexable as before).
                return types_attr(py, &EVENTS_FN, "_events_from_json")?.call1((loaded,));
            }
            Ok(loaded)
        }
        Data::Object(o) => match o.value().downcast_ref::<PyOwner>() {
            Some(owner) => Ok(owner.0.bind(py).clone()),
            None => Err(PyTypeError::new_err(format!(
                "a {} value from another host cannot be given to Python",
                o.type_name()
            ))),
        },
        Data::List(items) => {
            let items = items
                .into_iter()
                .map(|d| data_to_py(py, d, read_only))
                .collect::<PyResult<Vec<_>>>()?;
            Ok(PyList::new(py, items)?.into_any())
        }
        Data::Map(m) => {
            let d = PyDict::new(py);
            for (k, v) in m {
                d.set_item(k, data_to_py(py, v, read_only)?)?;
            }
            Ok(d.into_any())
        }
    }
}

/// Whether `v` is a non-empty list of VAD events (`{"event": "speech_start" | "speech_end",
/// ...}`), as the VAD nodes emit with `emit="events"`.
fn is_event_list(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Array(items) if !items.is_empty() => items.iter().all(|i| {
            matches!(
                i.get("event").and_then(|e| e.as_str()),
                Some("speech_start" | "speech_end")
            )
        }),
        _ => false,
    }
}

/// A JSON rendering of `data`, using Python's `json` for Python objects (for the CLI).
pub fn data_to_json(py: Python<'_>, data: &Data) -> Option<serde_json::Value> {
    match data {
        Data::Object(o) => {
            let owner = o.value().downcast_ref::<PyOwner>()?;
            // remotemedia's own value types (events, segments) render through `to_dict()`.
            let kwargs = PyDict::new(py);
            kwargs
                .set_item(
                    "default",
                    types_attr(py, &JSON_DEFAULT, "_json_default").ok()?,
                )
                .ok()?;
            let text: String = json_module(py)
                .ok()?
                .call_method("dumps", (owner.0.bind(py),), Some(&kwargs))
                .ok()?
                .extract()
                .ok()?;
            serde_json::from_str(&text).ok()
        }
        Data::List(items) => items
            .iter()
            .map(|d| data_to_json(py, d))
            .collect::<Option<Vec<_>>>()
            .map(serde_json::Value::Array),
        Data::Map(m) => m
            .iter()
            .map(|(k, v)| data_to_json(py, v).map(|j| (k.clone(), j)))
            .collect::<Option<serde_json::Map<_, _>>>()
            .map(serde_json::Value::Object),
        other => other.to_json(),
    }
}

/// A wire renderer that also renders Python values (as `json.dumps` does).
pub fn renderer() -> remotemedia_grpc::convert::JsonRenderer {
    std::sync::Arc::new(|d: &Data| match d {
        Data::Audio(_) => None,
        Data::Segments(_) | Data::Json(_) => d.to_json(),
        other => Python::attach(|py| data_to_json(py, other)),
    })
}
