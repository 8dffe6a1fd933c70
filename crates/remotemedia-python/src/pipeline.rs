//! `NativePipeline` and `NativeSession`: the Rust executor behind `remotemedia.Pipeline`.

use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use remotemedia_core::data::Data;
use remotemedia_core::executor::{Pipeline, Session, SinkOutput};
use remotemedia_core::manifest;

use crate::convert::{data_from_py, data_to_py};
use crate::errors::to_pyerr;
use crate::registry::{base_registry, register_instances};
use crate::runtime;

/// A validated pipeline of live nodes (native and Python).
#[pyclass(frozen, module = "remotemedia._native")]
pub struct NativePipeline {
    pipeline: Pipeline,
}

/// Converts the pipeline input: an `Audio`/numpy array (with `sample_rate` for plain arrays)
/// or any Python value (for pipelines that start with Python nodes). Used for local and remote
/// runs and stream chunks alike; `None` is refused.
pub(crate) fn input_data(input: &Bound<'_, PyAny>, sample_rate: Option<u32>) -> PyResult<Data> {
    data_from_py(input, sample_rate)?
        .ok_or_else(|| PyValueError::new_err("the pipeline input is None; pass audio or a value"))
}

/// Sink outputs as `[(sink_id, value, start_frame or None)]` (local and remote sessions).
pub(crate) fn outputs_to_py<'py>(
    py: Python<'py>,
    outputs: Vec<SinkOutput>,
) -> PyResult<Bound<'py, PyList>> {
    let items = outputs
        .into_iter()
        .map(|o| {
            let start = o.position.map(|p| p.start_frame);
            let value = data_to_py(py, o.data, false)?;
            PyTuple::new(
                py,
                [
                    o.node_id.into_pyobject(py)?.into_any(),
                    value,
                    start.into_pyobject(py)?.into_any(),
                ],
            )
        })
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
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
        let mut registry = base_registry();
        if let Some(nodes) = python_nodes {
            register_instances(&m, nodes, &mut registry)?;
        }
        let pipeline = Pipeline::new(m, &registry).map_err(|e| to_pyerr(py, e))?;
        Ok(Self { pipeline })
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
        let pipeline = self.pipeline.clone();
        let result = py.detach(move || runtime().block_on(pipeline.run(data)));
        let out = result.map_err(|e| to_pyerr(py, e))?;
        let dict = PyDict::new(py);
        for (id, data) in out.outputs {
            dict.set_item(id, data_to_py(py, data, false)?)?;
        }
        Ok(dict)
    }

    /// Opens a streaming session.
    fn session(&self, py: Python<'_>) -> PyResult<NativeSession> {
        let session = self.pipeline.session().map_err(|e| to_pyerr(py, e))?;
        Ok(NativeSession {
            session: Mutex::new(Some(session)),
        })
    }

    /// Metrics of the last run or session, as JSON text (None before the first).
    fn metrics_json(&self) -> Option<String> {
        self.pipeline.last_metrics().map(|m| m.to_json())
    }

    /// Chrome trace of the last run or session, as JSON text (None before the first).
    fn trace_json(&self) -> Option<String> {
        self.pipeline
            .last_trace()
            .map(|t| serde_json::to_string(&t).expect("trace serializes"))
    }

    /// Ids of the sink nodes.
    #[getter]
    fn sink_ids(&self) -> Vec<String> {
        self.pipeline
            .sink_ids()
            .into_iter()
            .map(String::from)
            .collect()
    }

    /// `(node_id, runtime)` for every node, in manifest order.
    #[getter]
    fn runtimes(&self) -> Vec<(String, String)> {
        self.pipeline
            .runtimes()
            .into_iter()
            .map(|(id, r)| {
                let name = serde_json::to_value(r)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                (id.to_string(), name)
            })
            .collect()
    }
}

/// A streaming session over a `NativePipeline`.
#[pyclass(module = "remotemedia._native")]
pub struct NativeSession {
    session: Mutex<Option<Session>>,
}

impl NativeSession {
    fn with_session<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Session) -> T + Send,
    ) -> PyResult<T> {
        // Lock and work without the GIL: another thread may hold the lock while it runs nodes.
        py.detach(|| {
            let mut guard = self.session.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_mut().map(f)
        })
        .ok_or_else(|| crate::errors::RemoteMediaError::new_err("the session is closed"))
    }
}

#[pymethods]
impl NativeSession {
    /// Pushes one chunk; returns `[(sink_id, output, start_frame or None)]` ready so far.
    #[pyo3(signature = (chunk, sample_rate = None))]
    fn push<'py>(
        &self,
        py: Python<'py>,
        chunk: &Bound<'py, PyAny>,
        sample_rate: Option<u32>,
    ) -> PyResult<Bound<'py, PyList>> {
        let data = input_data(chunk, sample_rate)?;
        let result = self.with_session(py, |s| runtime().block_on(s.push(data)))?;
        outputs_to_py(py, result.map_err(|e| to_pyerr(py, e))?)
    }

    /// Ends the stream: flushes every node and returns the tail.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let result = self.with_session(py, |s| runtime().block_on(s.finish()))?;
        outputs_to_py(py, result.map_err(|e| to_pyerr(py, e))?)
    }

    /// Ends the stream without flushing.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        let taken = py.detach(|| {
            self.session
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
        });
        if let Some(mut s) = taken {
            py.detach(|| runtime().block_on(s.abort()));
        }
        Ok(())
    }

    /// Metrics so far, as JSON text.
    fn metrics_json(&self, py: Python<'_>) -> PyResult<String> {
        self.with_session(py, |s| s.metrics().to_json())
    }

    /// Whether more chunks can be pushed.
    fn is_open(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.with_session(py, |s| s.is_open()).unwrap_or(false))
    }
}
