//! `NativePipeline` and `NativeSession`: the Rust executor behind `remotemedia.Pipeline`.
//!
//! A `NativePipeline` owns the instances of one graph: native-only graphs keep a pool of forks
//! (each with its own node state, all sharing circuit breakers), so concurrent runs from
//! threads or `arun` each get one; graphs with Python nodes have a single instance (a Python
//! node object cannot be in two runs at once) and runs take turns. `NativeSession` drives any
//! [`StreamSession`], local or remote, so the Python `Session` has one backend type.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyList, PyTuple, PyType};
use remotemedia_core::data::Data;
use remotemedia_core::error::ExecutorError;
use remotemedia_core::executor::{Pipeline, Session, SinkOutput, StreamSession};
use remotemedia_core::manifest;
use std::future::Future;

use crate::convert::{data_from_py, data_to_py};
use crate::errors::to_pyerr;
use crate::registry::{base_registry, register_instances};
use crate::{block_on_signals, is_main_thread};

/// Idle instances kept for reuse; more concurrent runs than this build throwaway forks.
const MAX_IDLE: usize = 8;

/// Converts the pipeline input: an `Audio`/numpy array (with `sample_rate` for plain arrays)
/// or any Python value (for pipelines that start with Python nodes). Used for local and remote
/// runs and stream chunks alike; `None` is refused.
pub(crate) fn input_data(input: &Bound<'_, PyAny>, sample_rate: Option<u32>) -> PyResult<Data> {
    if let Some(named) = named_inputs(input, |v| input_data(v, sample_rate))? {
        return Ok(named);
    }
    data_from_py(input, sample_rate)?
        .ok_or_else(|| PyValueError::new_err("the pipeline input is None; pass audio or a value"))
}

/// A dict of audio by input name (`{"mic": a, "far": b}`: str keys, every value an array or
/// an `Audio`) as a [`Data::Map`], each value converted by `convert`; the executor gives each
/// source node its own (and names an unknown input). `None` for anything else, which stays
/// one value for every source (a dict of other values goes to Python nodes as it is).
fn named_inputs(
    input: &Bound<'_, PyAny>,
    convert: impl Fn(&Bound<'_, PyAny>) -> PyResult<Data>,
) -> PyResult<Option<Data>> {
    let Ok(dict) = input.cast::<PyDict>() else {
        return Ok(None);
    };
    let audio_like = |v: &Bound<'_, PyAny>| {
        v.cast::<numpy::PyUntypedArray>().is_ok() || v.hasattr("sample_rate").unwrap_or(false)
    };
    if dict.is_empty()
        || !dict
            .iter()
            .all(|(k, v)| k.cast::<pyo3::types::PyString>().is_ok() && audio_like(&v))
    {
        return Ok(None);
    }
    let mut map = std::collections::BTreeMap::new();
    for (k, v) in dict.iter() {
        let name: String = k.extract()?;
        let data = convert(&v).map_err(|e| {
            let py = input.py();
            PyErr::from_type(e.get_type(py), format!("input '{name}': {}", e.value(py)))
        })?;
        map.insert(name, data);
    }
    Ok(Some(Data::Map(map)))
}

/// Values a stream consumer can skip: audio with no frames, empty segment or event lists
/// (a resampler that has not filled a block yet, a VAD chunk without decisions).
fn is_empty_output(d: &Data) -> bool {
    d.is_empty_chunk() || matches!(d, Data::Json(serde_json::Value::Array(a)) if a.is_empty())
}

/// Stream outputs as `[StreamOutput(sink_id, value, start_frame or None)]`, empty chunks left
/// out; the empty tuple (a shared constant, no allocation) when there is none, as for most
/// chunks of a VAD or of a resampler filling its first block.
fn outputs_to_py<'py>(py: Python<'py>, outputs: Vec<SinkOutput>) -> PyResult<Bound<'py, PyAny>> {
    if outputs.iter().all(|o| is_empty_output(&o.data)) {
        return Ok(PyTuple::empty(py).into_any());
    }
    let mut items = Vec::with_capacity(outputs.len());
    each_output(py, outputs, |item| {
        items.push(item);
        Ok(())
    })?;
    Ok(PyList::new(py, items)?.into_any())
}

/// Calls `f` with each output as a `StreamOutput`, empty chunks left out.
fn each_output<'py>(
    py: Python<'py>,
    outputs: Vec<SinkOutput>,
    mut f: impl FnMut(Bound<'py, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    for o in outputs {
        if is_empty_output(&o.data) {
            continue;
        }
        let start = o.position.map(|p| p.start_frame);
        let value = data_to_py(py, o.data, false)?;
        f(stream_output(
            py,
            [
                o.node_id.into_pyobject(py)?.into_any(),
                value,
                start.into_pyobject(py)?.into_any(),
            ],
        )?)?;
    }
    Ok(())
}

static STREAM_OUTPUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// A `remotemedia.StreamOutput` (a named tuple: `(node_id, data, start_frame)`) made here as
/// `tuple.__new__(StreamOutput, items)` makes it, without a plain tuple first.
fn stream_output<'py>(
    py: Python<'py>,
    items: [Bound<'py, PyAny>; 3],
) -> PyResult<Bound<'py, PyAny>> {
    let cls = STREAM_OUTPUT.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let cls = py
            .import("remotemedia.streaming")?
            .getattr("StreamOutput")?
            .cast_into::<PyType>()?;
        if !cls.is_subclass_of::<PyTuple>()? {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "remotemedia.streaming.StreamOutput is not a tuple type",
            ));
        }
        Ok(cls.unbind())
    })?;
    let tp = cls.bind(py).as_type_ptr();
    // SAFETY: StreamOutput is a tuple subclass that adds no fields (a named tuple, checked
    // above to derive from tuple): its `tp_alloc` gives a zeroed 3-item tuple of that type
    // holding the only reference, which `PyTuple_SetItem` fills (each item's reference is
    // moved in), exactly as `tuple.__new__` does for a subclass. Untracking a tracked tuple
    // whose items are all untracked is what CPython's collector itself does.
    unsafe {
        let slot = ffi::PyType_GetSlot(tp, ffi::Py_tp_alloc);
        let alloc: ffi::allocfunc = if slot.is_null() {
            ffi::PyType_GenericAlloc
        } else {
            std::mem::transmute::<*mut std::ffi::c_void, ffi::allocfunc>(slot)
        };
        let raw = alloc(tp, 3);
        if raw.is_null() {
            return Err(PyErr::fetch(py));
        }
        let obj = Bound::from_owned_ptr(py, raw);
        // What CPython's collector does for plain tuples of untracked items (and not for
        // tuple subclasses such as this one): nothing in it can be part of a cycle, so it
        // need not be visited while a caller keeps it (an audio output is untracked, see
        // `convert::audio_to_py`; the id and position never are tracked).
        let atoms = items
            .iter()
            .all(|item| ffi::PyObject_GC_IsTracked(item.as_ptr()) == 0);
        for (i, item) in items.into_iter().enumerate() {
            if ffi::PyTuple_SetItem(raw, i as ffi::Py_ssize_t, item.into_ptr()) != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        if atoms && ffi::PyObject_GC_IsTracked(raw) == 1 {
            ffi::PyObject_GC_UnTrack(raw.cast());
        }
        Ok(obj)
    }
}

/// `{sink_id: output}` of a whole run.
pub(crate) fn run_outputs_to_py<'py>(
    py: Python<'py>,
    outputs: std::collections::BTreeMap<String, Data>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (id, data) in outputs {
        dict.set_item(id, data_to_py(py, data, false)?)?;
    }
    Ok(dict)
}

/// Idle instances of a native-only graph.
#[derive(Default)]
struct Pool {
    idle: Mutex<Vec<Pipeline>>,
}

impl Pool {
    fn take(&self, template: &Pipeline) -> Result<Pipeline, ExecutorError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(p) => Ok(p),
            None => template.fork(),
        }
    }

    fn give_back(&self, p: Pipeline) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(p);
        }
    }
}

/// A local session; a pooled instance goes back to the pool when the session ends.
pub(crate) struct LocalSession {
    session: Option<Session>,
    instance: Option<(Pipeline, Arc<Pool>)>,
}

impl LocalSession {
    fn session(&mut self) -> &mut Session {
        self.session.as_mut().expect("live")
    }
}

impl Drop for LocalSession {
    fn drop(&mut self) {
        // The session first (it releases the instance), then the instance back to the pool.
        self.session.take();
        if let Some((p, pool)) = self.instance.take() {
            pool.give_back(p);
        }
    }
}

/// What a [`NativeSession`] drives: a local session, called directly (its futures are not
/// boxed: a chunk through native nodes makes no allocation here), or any other
/// [`StreamSession`] (a remote one).
pub(crate) enum Backend {
    /// Boxed once per session (the enum stays small); chunks are not boxed.
    Local(Box<LocalSession>),
    Other(Box<dyn StreamSession>),
}

impl Backend {
    async fn push(&mut self, chunk: Data) -> Result<Vec<SinkOutput>, ExecutorError> {
        match self {
            Backend::Local(s) => s.session().push(chunk).await,
            Backend::Other(s) => s.push(chunk).await,
        }
    }

    async fn finish(&mut self) -> Result<Vec<SinkOutput>, ExecutorError> {
        match self {
            Backend::Local(s) => s.session().finish().await,
            Backend::Other(s) => s.finish().await,
        }
    }

    async fn abort(&mut self) {
        match self {
            Backend::Local(s) => s.session().abort().await,
            Backend::Other(s) => s.abort().await,
        }
    }

    fn metrics_json(&self) -> Option<String> {
        match self {
            Backend::Local(s) => s.session.as_ref().map(|s| s.metrics().to_json()),
            Backend::Other(s) => s.metrics_json(),
        }
    }
}

/// A validated pipeline of live nodes (native and Python).
#[pyclass(frozen, module = "remotemedia._native")]
pub struct NativePipeline {
    template: Pipeline,
    /// `None` for graphs with Python nodes: they have the template as their only instance.
    pool: Option<Arc<Pool>>,
    /// Runs of a graph with Python nodes take turns.
    turn: Mutex<()>,
}

#[pymethods]
impl NativePipeline {
    /// Validates `manifest` (JSON text) and builds its nodes; `python_nodes` maps node ids to
    /// the live Python node objects of the manifest's Python nodes.
    #[new]
    #[pyo3(signature = (manifest, python_nodes = None))]
    fn new(
        py: Python<'_>,
        manifest: &str,
        python_nodes: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let m = manifest::parse(manifest).map_err(|e| to_pyerr(py, e.into()))?;
        let mut registry = base_registry().clone();
        let has_python = python_nodes.is_some_and(|d| !d.is_empty());
        if let Some(nodes) = python_nodes {
            register_instances(&m, nodes, &mut registry)?;
        }
        let template = Pipeline::new(m, &registry).map_err(|e| to_pyerr(py, e))?;
        let pool = (!has_python).then(|| {
            let pool = Arc::new(Pool::default());
            pool.give_back(template.clone());
            pool
        });
        Ok(Self {
            template,
            pool,
            turn: Mutex::new(()),
        })
    }

    /// Runs the whole input; returns `{sink_id: output}`. The GIL is released while the
    /// pipeline runs (Python nodes take it only while their own code runs).
    #[pyo3(signature = (input, sample_rate = None))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        input: &Bound<'py, PyAny>,
        sample_rate: Option<u32>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let data = input_data(input, sample_rate)?;
        let signals = is_main_thread(py);
        // Ctrl-C on the main thread ends the wait at once (Err(KeyboardInterrupt)): the run is
        // dropped, which interrupts a Python node's call in progress.
        let result = py.detach(move || match &self.pool {
            Some(pool) => {
                let instance = pool.take(&self.template).map_err(Ok)?;
                let out = block_on_signals(instance.run(data), signals).map_err(Err)?;
                // An interrupted instance is dropped (its nodes stopped mid-call).
                pool.give_back(instance);
                out.map_err(Ok)
            }
            None => {
                let _turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
                block_on_signals(self.template.run(data), signals)
                    .map_err(Err)?
                    .map_err(Ok)
            }
        });
        let out = result.map_err(|e| match e {
            Ok(e) => to_pyerr(py, e),
            Err(interrupted) => interrupted,
        })?;
        run_outputs_to_py(py, out.outputs)
    }

    /// Runs a file (a path, bytes, a file-like object) through the pipeline block by block,
    /// calling `progress(seconds_done, seconds_total)` (total None when the header does not
    /// say) after each block; returns `{sink_id: output}`, the outputs joined as a whole run joins
    /// them. `dtype` converts on reading, as `read` does.
    #[pyo3(signature = (source, dtype = None, progress = None))]
    fn run_file<'py>(
        &self,
        py: Python<'py>,
        source: &Bound<'py, PyAny>,
        dtype: Option<&str>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        use remotemedia_core::executor::SinkCollector;
        let Some(source) = crate::io::Source::of(source)? else {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "progress= reads a file block by block: give a path, bytes or a file-like object",
            ));
        };
        let format = crate::io::parse_dtype(dtype)?;
        let mut reader = source.open().map_err(crate::errors::io_to_pyerr)?;
        let info = reader.info().clone();
        let block = (info.sample_rate as usize / 2).max(1); // half a second
        let signals = is_main_thread(py);
        let report = |done: u64| -> PyResult<()> {
            if let Some(cb) = &progress {
                let rate = info.sample_rate as f64;
                let total = info.frames.map(|f| f as f64 / rate);
                Python::attach(|py| cb.call1(py, (done as f64 / rate, total)).map(|_| ()))?;
            }
            Ok(())
        };
        let mut run = |pipeline: &Pipeline| -> PyResult<Result<_, ExecutorError>> {
            let mut session = match pipeline.session() {
                Ok(s) => s,
                Err(e) => return Ok(Err(e)),
            };
            let mut collected = SinkCollector::default();
            let mut done = 0u64;
            let mut pushed = false;
            loop {
                let b = reader
                    .read_block(block)
                    .map_err(crate::errors::io_to_pyerr)?;
                let Some(b) = b else { break };
                let b = match format {
                    Some(f) => b.to_format(f),
                    None => b,
                };
                done += b.frames() as u64;
                match block_on_signals(session.push(Data::Audio(b)), signals)? {
                    Ok(outs) => collected.extend(outs),
                    Err(e) => return Ok(Err(e)),
                }
                pushed = true;
                report(done)?;
            }
            if !pushed {
                let fmt = format.unwrap_or(info.format);
                let empty = remotemedia_core::data::AudioBuffer::empty(
                    fmt,
                    info.sample_rate,
                    info.channels,
                )
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
                match block_on_signals(session.push(Data::Audio(empty)), signals)? {
                    Ok(outs) => collected.extend(outs),
                    Err(e) => return Ok(Err(e)),
                }
            }
            match block_on_signals(session.finish(), signals)? {
                Ok(outs) => collected.extend(outs),
                Err(e) => return Ok(Err(e)),
            }
            Ok(Ok(collected.finish()))
        };
        let result = py.detach(|| -> PyResult<Result<_, ExecutorError>> {
            match &self.pool {
                Some(pool) => {
                    let instance = match pool.take(&self.template) {
                        Ok(i) => i,
                        Err(e) => return Ok(Err(e)),
                    };
                    let out = run(&instance)?;
                    pool.give_back(instance);
                    Ok(out)
                }
                None => {
                    let _turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
                    run(&self.template)
                }
            }
        })?;
        let outputs = result.map_err(|e| to_pyerr(py, e))?;
        run_outputs_to_py(py, outputs)
    }

    /// Opens a streaming session.
    fn session(&self, py: Python<'_>) -> PyResult<NativeSession> {
        let local = match &self.pool {
            Some(pool) => {
                let instance = pool.take(&self.template).map_err(|e| to_pyerr(py, e))?;
                let session = instance.session().map_err(|e| to_pyerr(py, e))?;
                LocalSession {
                    session: Some(session),
                    instance: Some((instance, Arc::clone(pool))),
                }
            }
            None => LocalSession {
                session: Some(self.template.session().map_err(|e| to_pyerr(py, e))?),
                instance: None,
            },
        };
        let native_only = self.pool.is_some();
        Ok(NativeSession::new(Backend::Local(Box::new(local))).native_only(native_only))
    }

    /// Metrics of the last run or session, as JSON text (None before the first).
    fn metrics_json(&self) -> Option<String> {
        self.template.last_metrics().map(|m| m.to_json())
    }

    /// Chrome trace of the last run or session, as JSON text (None before the first).
    fn trace_json(&self) -> Option<String> {
        self.template
            .last_trace()
            .map(|t| serde_json::to_string(&t).expect("trace serializes"))
    }

    /// Ids of the sink nodes.
    #[getter]
    fn sink_ids(&self) -> Vec<String> {
        self.template
            .sink_ids()
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// `(node_id, runtime)` for every node, in manifest order.
    #[getter]
    fn runtimes(&self) -> Vec<(String, String)> {
        self.template
            .runtimes()
            .into_iter()
            .map(|(id, r)| (id.to_string(), r.name().to_string()))
            .collect()
    }
}

/// Chunks up to this many samples through a local graph of native nodes run with the GIL
/// held: releasing and taking it back costs about a tenth of a 20 ms chunk's work through a
/// light node, and such a chunk holds it for microseconds. Bigger chunks release it, so other
/// Python threads run while the nodes work.
const HOLD_GIL_MAX_SAMPLES: usize = 16_384;

/// A stream through a pipeline, local or on a server: `push`, then `finish` (or `abort`).
#[pyclass(frozen, module = "remotemedia._native")]
pub struct NativeSession {
    backend: Mutex<Option<Backend>>,
    /// Kept when the stream ends, for `metrics_json` afterwards.
    metrics: Mutex<Option<String>>,
    /// Set by `interrupt()`: the chunk in progress is dropped and the stream ends.
    interrupted: AtomicBool,
    interrupt: tokio::sync::Notify,
    /// A local session whose nodes are all native: nothing in a chunk's run needs the GIL.
    native_only: bool,
    /// What `send` needs, set once by `foreground()`.
    foreground: std::sync::OnceLock<Foreground>,
    /// Set by `abort(dropped=True)`: the Python session was garbage-collected, so a later
    /// call came through a method taken from it (`p.stream(...).send(x)`).
    dropped: AtomicBool,
}

/// The foreground `Session.send` in native code: the session's format, where outputs go, and
/// what handles a failed chunk.
struct Foreground {
    sample_rate: u32,
    channels: usize,
    /// `append` of the Python session's output deque.
    append: Py<PyAny>,
    /// A `weakref.WeakMethod` of the Python session's failure handler (weak: the Python
    /// session owns this object, so a strong reference back would be a cycle).
    on_error: Py<PyAny>,
}

impl NativeSession {
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            backend: Mutex::new(Some(backend)),
            metrics: Mutex::new(None),
            interrupted: AtomicBool::new(false),
            interrupt: tokio::sync::Notify::new(),
            native_only: false,
            foreground: std::sync::OnceLock::new(),
            dropped: AtomicBool::new(false),
        }
    }

    /// [`Session::check_input`] on a local session (a remote one checks on the server).
    fn check_input(&self, py: Python<'_>, data: &Data) -> PyResult<()> {
        let guard = self.backend.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Backend::Local(local)) = guard.as_ref() {
            if let Some(session) = local.session.as_ref() {
                return session.check_input(data).map_err(|e| to_pyerr(py, e));
            }
        }
        Ok(())
    }

    pub(crate) fn native_only(mut self, yes: bool) -> Self {
        self.native_only = yes;
        self
    }

    /// Pushes a chunk: with the GIL held when that is safe and cheap (see
    /// [`HOLD_GIL_MAX_SAMPLES`]), otherwise through [`Self::drive`].
    fn push_data(&self, py: Python<'_>, data: Data) -> PyResult<Vec<SinkOutput>> {
        let small = data
            .as_audio()
            .is_some_and(|a| a.samples().len() <= HOLD_GIL_MAX_SAMPLES);
        if self.native_only && small && !self.interrupted.load(Ordering::SeqCst) {
            // Never waits for the lock with the GIL held: another thread holding it may be
            // about to take the GIL (e.g. converting outputs), so contention goes the slow way.
            if let Ok(mut guard) = self.backend.try_lock() {
                if let Some(Backend::Local(local)) = guard.as_mut() {
                    let out = {
                        let signals = is_main_thread(py);
                        let mut call = std::pin::pin!(local.session().push(data));
                        match first_poll(call.as_mut()) {
                            std::task::Poll::Ready(out) => out.map_err(Ok),
                            // A node waits (a retry's delay): release the GIL while it does.
                            std::task::Poll::Pending => py.detach(|| self.wait(call, signals)),
                        }
                    };
                    if out.is_err() {
                        self.end(&mut guard);
                    }
                    return out.map_err(|e| call_error(py, e));
                }
            }
        }
        self.drive(py, false, async move |s| s.push(data).await)
    }

    /// Keeps the final metrics and releases the backend (the stream has ended).
    fn end(&self, backend: &mut Option<Backend>) {
        if let Some(b) = backend.take() {
            *self.metrics.lock().unwrap_or_else(|p| p.into_inner()) = b.metrics_json();
        }
    }

    /// Runs `f` on the backend without the GIL (another thread may hold the lock while it runs
    /// nodes); with `end`, the backend is released afterwards, success or not.
    fn drive<T: Send>(
        &self,
        py: Python<'_>,
        end: bool,
        f: impl AsyncFnOnce(&mut Backend) -> Result<T, ExecutorError> + Send,
    ) -> PyResult<T> {
        let signals = is_main_thread(py);
        let result = py.detach(|| {
            let mut guard = self.backend.lock().unwrap_or_else(|p| p.into_inner());
            let backend = guard.as_mut()?;
            let out = if self.interrupted.load(Ordering::SeqCst) {
                Err(Err(aborted()))
            } else {
                let mut call = std::pin::pin!(f(backend));
                // Only a call that has to wait goes on in the runtime, listening for
                // `interrupt()` and Ctrl-C.
                match first_poll(call.as_mut()) {
                    std::task::Poll::Ready(out) => out.map_err(Ok),
                    std::task::Poll::Pending => self.wait(call, signals),
                }
            };
            if end || out.is_err() {
                self.end(&mut guard);
            }
            Some(out)
        });
        match result {
            None if self.dropped.load(Ordering::SeqCst) => {
                Err(crate::errors::RemoteMediaError::new_err(
                    "the session is closed: nothing kept a reference to it, so it was closed \
                     when the expression that opened it ended; keep it in a variable \
                     (`session = pipeline.stream(...)`, then `session.send(chunk)`) or use \
                     `with pipeline.stream(...) as session:`",
                ))
            }
            None => Err(crate::errors::RemoteMediaError::new_err(
                "the session is closed",
            )),
            Some(r) => r.map_err(|e| call_error(py, e)),
        }
    }

    /// The rest of a call that did not finish on its first poll, on the runtime. Ctrl-C on the
    /// main thread, or `interrupt()` from another thread, ends the wait at once; the stream
    /// ends with it (the chunk is dropped mid-way, interrupting a Python node's call).
    fn wait<T>(
        &self,
        call: std::pin::Pin<&mut impl std::future::Future<Output = Result<T, ExecutorError>>>,
        signals: bool,
    ) -> Result<T, Result<ExecutorError, PyErr>> {
        let work = async {
            let interrupt = self.interrupt.notified();
            let mut interrupt = std::pin::pin!(interrupt);
            interrupt.as_mut().enable();
            // Checked once listening: an `interrupt()` before `enable` is not missed.
            if self.interrupted.load(Ordering::SeqCst) {
                return None;
            }
            tokio::select! {
                out = call => Some(out),
                _ = interrupt => None,
            }
        };
        match block_on_signals(work, signals) {
            Ok(Some(out)) => out.map_err(Ok),
            Ok(None) => Err(Err(aborted())),
            Err(interrupted) => Err(Err(interrupted)),
        }
    }
}

/// Most chunks (native nodes) finish on their first poll: it is made here, in the runtime's
/// context (for timers and tasks) with a waker that does nothing, without setting up a
/// `block_on`. A call that is not ready goes on in [`NativeSession::wait`], whose next poll
/// registers the runtime's waker, so no wake-up is missed.
fn first_poll<F: Future>(call: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
    let _entered = crate::runtime().enter();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    call.poll(&mut cx)
}

/// The Python error of a failed call: the executor's, or the interruption's own.
fn call_error(py: Python<'_>, e: Result<ExecutorError, PyErr>) -> PyErr {
    match e {
        Ok(e) => to_pyerr(py, e),
        Err(interrupted) => interrupted,
    }
}

/// The error of a chunk dropped by `interrupt()`.
fn aborted() -> PyErr {
    crate::errors::RemoteMediaError::new_err(
        "the stream was aborted while a chunk was being processed",
    )
}

#[pymethods]
impl NativeSession {
    /// Pushes one chunk; returns `[(sink_id, output, start_frame or None)]` ready so far.
    /// With `channels`, the chunk is checked as a stream chunk (an audio array at
    /// `sample_rate` with that many channels; others are copied to a layout the runtime
    /// borrows), as `Session.send` needs.
    #[pyo3(signature = (chunk, sample_rate = None, channels = None))]
    fn push<'py>(
        &self,
        py: Python<'py>,
        chunk: &Bound<'py, PyAny>,
        sample_rate: Option<u32>,
        channels: Option<usize>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let data = match (sample_rate, channels) {
            (Some(rate), Some(ch)) => {
                let convert = |c: &Bound<'_, PyAny>| crate::convert::stream_chunk(c, rate, ch);
                match named_inputs(chunk, convert)? {
                    Some(named) => named,
                    None => convert(chunk)?,
                }
            }
            _ => input_data(chunk, sample_rate)?,
        };
        let outputs = self.push_data(py, data)?;
        outputs_to_py(py, outputs)
    }

    /// Sets this session up for [`Self::send`]: chunks are checked against `sample_rate` and
    /// `channels`, outputs go to the deque `queue`, and a failed chunk's error is given to the
    /// method `on_error` (a `weakref.WeakMethod`) refers to, which raises it.
    fn foreground(
        &self,
        sample_rate: u32,
        channels: usize,
        queue: &Bound<'_, PyAny>,
        on_error: Py<PyAny>,
    ) -> PyResult<()> {
        let append = queue.getattr(intern!(queue.py(), "append"))?.unbind();
        self.foreground
            .set(Foreground {
                sample_rate,
                channels,
                append,
                on_error,
            })
            .map_err(|_| PyValueError::new_err("foreground() was already called"))
    }

    /// `Session.send` of a foreground stream, all in native code: checks the chunk (a bad
    /// chunk is refused with `TypeError`/`ValueError` and the stream goes on), runs it, and
    /// appends its outputs. A failure ends the stream: the Python session's handler records
    /// it and raises it. `timeout` is accepted for the signature (a foreground chunk never
    /// waits in a queue).
    #[pyo3(signature = (chunk, timeout = None, *, to = None))]
    fn send(
        &self,
        py: Python<'_>,
        chunk: &Bound<'_, PyAny>,
        timeout: Option<f64>,
        to: Option<&str>,
    ) -> PyResult<()> {
        let _ = timeout;
        let named;
        let chunk = match to {
            Some(name) => {
                let d = PyDict::new(py);
                d.set_item(name, chunk)?;
                named = d.into_any();
                &named
            }
            None => chunk,
        };
        let fg = self.foreground.get().ok_or_else(|| {
            crate::errors::RemoteMediaError::new_err("send() needs foreground() first")
        })?;
        let convert =
            |c: &Bound<'_, PyAny>| crate::convert::stream_chunk(c, fg.sample_rate, fg.channels);
        let data = match named_inputs(chunk, convert)? {
            Some(named) => {
                // An unknown input name is a bad chunk, refused before it runs: the stream
                // goes on (as for a chunk of the wrong rate).
                self.check_input(py, &named)?;
                named
            }
            None => convert(chunk)?,
        };
        match self.push_data(py, data) {
            Ok(outputs) => {
                let append = fg.append.bind(py);
                each_output(py, outputs, |item| append.call1((item,)).map(drop))
            }
            Err(e) => {
                let handler = fg.on_error.bind(py).call0()?;
                if handler.is_none() {
                    return Err(e); // the Python session is gone: nobody else to tell
                }
                handler.call1((e.value(py),))?;
                Err(e)
            }
        }
    }

    /// Ends the stream: flushes every node and returns the tail.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let outputs = self.drive(py, true, async move |s| s.finish().await)?;
        outputs_to_py(py, outputs)
    }

    /// Ends the stream without flushing; `dropped` when the Python session is being
    /// garbage-collected (later calls then say why the session is closed).
    #[pyo3(signature = (dropped = false))]
    fn abort(&self, py: Python<'_>, dropped: bool) -> PyResult<()> {
        if dropped {
            self.dropped.store(true, Ordering::SeqCst);
        }
        let _ = self.drive(py, true, async move |s| {
            s.abort().await;
            Ok(())
        });
        Ok(())
    }

    /// Metrics (JSON text): so far while open, final once ended (`"null"` when unknown).
    fn metrics_json(&self, py: Python<'_>) -> String {
        let live = py.detach(|| {
            self.backend
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .and_then(|b| b.metrics_json())
        });
        live.or_else(|| {
            self.metrics
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        })
        .unwrap_or_else(|| "null".to_string())
    }

    /// Ends the stream from any thread, at once: a `push`/`finish` in progress on another
    /// thread is dropped (a Python node's call is interrupted) and fails; later calls fail.
    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.interrupt.notify_waiters();
    }

    /// Whether more chunks can be pushed.
    fn is_open(&self, py: Python<'_>) -> bool {
        py.detach(|| {
            self.backend
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
        })
    }
}
