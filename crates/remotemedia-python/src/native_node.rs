//! `NativeNode`: one native node called directly from Python, without the executor. This is
//! what `AudioResampleNode(...).process(audio)` uses when a node is used on its own, and what
//! the "per-call overhead" benchmark measures.

use std::sync::Mutex;

use pyo3::prelude::*;
use remotemedia_core::data::Data;
use remotemedia_core::node::Node;
use serde_json::{Map, Value};

use crate::convert::data_to_py;
use crate::errors::{node_to_pyerr, params_to_pyerr, ManifestError};
use crate::input::node_input;
use crate::registry::base_registry;

/// Inputs with fewer samples than this run without releasing the GIL: for them the release
/// costs more than the work.
const DETACH_MIN_SAMPLES: usize = 16_384;

fn parse_params(params_json: &str) -> PyResult<Map<String, Value>> {
    match serde_json::from_str::<Value>(params_json) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ManifestError::new_err("params must be a JSON object")),
    }
}

/// Checks a native node's parameters; raises `ManifestError` with the runtime's message.
#[pyfunction]
pub fn check_params(node_type: &str, params_json: &str) -> PyResult<()> {
    let registry = base_registry();
    let factory = registry
        .get(node_type)
        .ok_or_else(|| ManifestError::new_err(format!("unknown native node type '{node_type}'")))?;
    let params = parse_params(params_json)?;
    let issues = factory.check(&params);
    if issues.is_empty() {
        Ok(())
    } else {
        Err(params_to_pyerr(node_type, &issues))
    }
}

/// Runs a future that does not wait (a native node's call): one poll, no executor set-up.
fn complete<T>(fut: impl std::future::Future<Output = T>) -> T {
    use futures::FutureExt;
    let mut fut = std::pin::pin!(fut);
    match (&mut fut).now_or_never() {
        Some(v) => v,
        None => futures::executor::block_on(fut),
    }
}

struct State {
    node: Box<dyn Node>,
    started: bool,
}

/// A single native node, stateful across `process` calls (a stream), reset by `reset`.
#[pyclass(frozen, module = "remotemedia._native")]
pub struct NativeNode {
    node_type: String,
    state: Mutex<State>,
}

/// Whether an input is worth releasing the GIL for.
fn is_big(input: &Option<Data>) -> bool {
    input
        .as_ref()
        .and_then(Data::as_audio)
        .is_some_and(|a| a.samples().len() >= DETACH_MIN_SAMPLES)
}

/// A whole clip's two outputs (`process`, then `flush`) as one, as `remotemedia.nodes.audio._join`
/// joins them: audio appended (the head's buffer reused, no copy of it), lists concatenated,
/// anything else a list of both.
fn join_outputs(head: Option<Data>, tail: Option<Data>) -> Option<Data> {
    match (head, tail) {
        (h, None) => h,
        (None, t) => t,
        (Some(Data::Audio(h)), Some(Data::Audio(t))) if t.frames() == 0 => Some(Data::Audio(h)),
        (Some(Data::Audio(h)), Some(Data::Audio(t))) if h.same_shape(&t) => {
            h.appended(&t).map(Data::Audio)
        }
        (Some(h), Some(t)) => Data::join(vec![h, t]),
    }
}

impl NativeNode {
    fn call<'py>(
        &self,
        py: Python<'py>,
        input: Option<Data>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.run_with_state(py, is_big(&input), move |state| {
            // Native nodes never wait on anything: one poll completes them.
            if !state.started {
                complete(state.node.start())?;
                state.started = true;
            }
            match input {
                Some(d) => complete(state.node.process(d)),
                None => complete(state.node.flush()),
            }
        })
    }

    /// Runs `work` on the node's state: right here keeping the GIL for a small input
    /// (`!big`) and a free node, otherwise without the GIL.
    fn run_with_state<'py>(
        &self,
        py: Python<'py>,
        big: bool,
        work: impl FnOnce(&mut State) -> Result<Option<Data>, remotemedia_core::NodeError> + Send,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let result = match self.state.try_lock() {
            // Small input and a free node: run right here, keeping the GIL.
            Ok(mut guard) if !big => work(&mut guard),
            Ok(guard) => {
                drop(guard);
                py.detach(|| work(&mut self.state.lock().unwrap_or_else(|p| p.into_inner())))
            }
            // Another thread is using the node: wait for it without holding the GIL.
            Err(_) => py.detach(|| work(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))),
        };
        let out = result.map_err(|e| node_to_pyerr(py, &self.node_type, e))?;
        out.map(|d| data_to_py(py, d, false)).transpose()
    }
}

#[pymethods]
impl NativeNode {
    /// Builds a native node; raises `ManifestError` for bad parameters.
    #[new]
    fn new(node_type: &str, params_json: &str) -> PyResult<Self> {
        let registry = base_registry();
        let factory = registry.get(node_type).ok_or_else(|| {
            ManifestError::new_err(format!("unknown native node type '{node_type}'"))
        })?;
        let params = parse_params(params_json)?;
        let node = factory
            .create(node_type, &params)
            .map_err(|issues| params_to_pyerr(node_type, &issues))?;
        Ok(Self {
            node_type: node_type.to_string(),
            state: Mutex::new(State {
                node,
                started: false,
            }),
        })
    }

    /// Processes one chunk of the node's stream; returns what is ready (or None).
    /// `data` and `sample_rate` as `Node.process` takes them (see [`node_input`]).
    #[pyo3(signature = (data, sample_rate = None))]
    fn process<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        sample_rate: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let input = node_input(data, sample_rate)?;
        match input {
            None => Ok(None),
            Some(d) => self.call(py, Some(d)),
        }
    }

    /// A whole clip: a fresh stream, `process` then `flush`, their outputs joined (audio
    /// appended without copying the head). `data` and `sample_rate` as for `process`.
    #[pyo3(signature = (data, sample_rate = None))]
    fn run<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        sample_rate: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let input = node_input(data, sample_rate)?;
        self.run_with_state(py, is_big(&input), move |state| {
            complete(state.node.start())?;
            state.started = true;
            let head = match input {
                Some(d) => complete(state.node.process(d)),
                None => Ok(None),
            };
            // The next call starts a new stream whatever happened here.
            let tail = head.and_then(|h| Ok((h, complete(state.node.flush())?)));
            state.started = false;
            let (head, tail) = tail?;
            Ok(join_outputs(head, tail))
        })
    }

    /// Ends the stream: returns what is still buffered; the next `process` starts a new one.
    fn flush<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let out = self.call(py, None)?;
        self.state.lock().unwrap_or_else(|p| p.into_inner()).started = false;
        Ok(out)
    }

    /// Drops any stream state.
    fn reset(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).started = false;
    }

    /// The node type.
    #[getter]
    fn node_type(&self) -> &str {
        &self.node_type
    }
}
