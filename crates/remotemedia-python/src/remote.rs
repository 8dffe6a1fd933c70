//! `RemoteClient`: run pipelines on a remotemedia server from Python (same results as local
//! runs), and `RemoteSession`, the streaming backend of `Pipeline.stream(remote=...)`.

use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use remotemedia_grpc::{RemoteClient as Client, RemoteStream};

use crate::convert::{data_to_py, renderer};
use crate::errors::{remote_to_pyerr, RemoteMediaError};
use crate::pipeline::{input_data, outputs_to_py};
use crate::runtime;

/// A connection to a remotemedia server.
#[pyclass(frozen, module = "remotemedia._native")]
pub struct RemoteClient {
    client: Client,
    address: String,
}

#[pymethods]
impl RemoteClient {
    /// Connects to `address` (`host:port`); `token` is sent as `authorization: Bearer`.
    #[new]
    #[pyo3(signature = (address, token = None))]
    fn new(py: Python<'_>, address: String, token: Option<String>) -> PyResult<Self> {
        let a = address.clone();
        let client = py
            .detach(move || runtime().block_on(Client::connect(&a, token)))
            .map_err(|e| remote_to_pyerr(py, e))?
            .with_renderer(renderer());
        Ok(Self { client, address })
    }

    /// Runs a whole input remotely; returns `{sink_id: output}` and the server's metrics JSON.
    #[pyo3(signature = (manifest, input, sample_rate = None, timeout = None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        manifest: String,
        input: &Bound<'py, PyAny>,
        sample_rate: Option<u32>,
        timeout: Option<f64>,
    ) -> PyResult<(Bound<'py, PyDict>, String)> {
        let data = input_data(input, sample_rate)?;
        let mut client = self.client.clone();
        let timeout = timeout.map(std::time::Duration::from_secs_f64);
        let result = py.detach(move || {
            runtime().block_on(async move { client.execute(&manifest, &data, timeout).await })
        });
        let run = result.map_err(|e| remote_to_pyerr(py, e))?;
        let dict = PyDict::new(py);
        for (id, data) in run.outputs {
            dict.set_item(id, data_to_py(py, data, false)?)?;
        }
        Ok((dict, run.metrics_json))
    }

    /// Opens a streaming session.
    fn stream(&self, py: Python<'_>, manifest: String) -> PyResult<RemoteSession> {
        let mut client = self.client.clone();
        let stream = py
            .detach(move || runtime().block_on(async move { client.open_stream(&manifest).await }))
            .map_err(|e| remote_to_pyerr(py, e))?;
        Ok(RemoteSession {
            stream: Mutex::new(Some(stream)),
            metrics: Mutex::new(None),
        })
    }

    /// The server's node types: `[{"node_type", "description", "runtime"}]`.
    fn list_nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut client = self.client.clone();
        let nodes = py
            .detach(move || runtime().block_on(async move { client.list_nodes().await }))
            .map_err(|e| remote_to_pyerr(py, e))?;
        let items = nodes
            .into_iter()
            .map(|n| {
                let d = PyDict::new(py);
                d.set_item("node_type", n.node_type)?;
                d.set_item("description", n.description)?;
                d.set_item("runtime", n.runtime)?;
                Ok(d)
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, items)
    }

    /// `{"server_version", "manifest_version", "api_version"}`.
    fn version<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut client = self.client.clone();
        let v = py
            .detach(move || runtime().block_on(async move { client.get_version().await }))
            .map_err(|e| remote_to_pyerr(py, e))?;
        let d = PyDict::new(py);
        d.set_item("server_version", v.server_version)?;
        d.set_item("manifest_version", v.manifest_version)?;
        d.set_item("api_version", v.api_version)?;
        Ok(d)
    }

    /// The server address.
    #[getter]
    fn address(&self) -> &str {
        &self.address
    }
}

/// A streaming session on a server (the backend of `Pipeline.stream(remote=...)`).
#[pyclass(frozen, module = "remotemedia._native")]
pub struct RemoteSession {
    stream: Mutex<Option<RemoteStream>>,
    metrics: Mutex<Option<String>>,
}

type Outputs = Vec<remotemedia_core::executor::SinkOutput>;

impl RemoteSession {
    fn with_stream(
        &self,
        py: Python<'_>,
        f: impl AsyncFnOnce(&mut RemoteStream) -> Result<Outputs, remotemedia_grpc::ClientError> + Send,
    ) -> PyResult<Outputs> {
        let result = py.detach(|| {
            let mut guard = self.stream.lock().unwrap_or_else(|p| p.into_inner());
            let stream = guard.as_mut()?;
            Some(runtime().block_on(f(stream)))
        });
        match result {
            None => Err(RemoteMediaError::new_err("the remote session is closed")),
            Some(r) => r.map_err(|e| {
                self.stream.lock().unwrap_or_else(|p| p.into_inner()).take();
                remote_to_pyerr(py, e)
            }),
        }
    }
}

#[pymethods]
impl RemoteSession {
    /// Sends one chunk; returns its outputs `[(sink_id, output, start_frame or None)]`.
    #[pyo3(signature = (chunk, sample_rate = None))]
    fn push<'py>(
        &self,
        py: Python<'py>,
        chunk: &Bound<'py, PyAny>,
        sample_rate: Option<u32>,
    ) -> PyResult<Bound<'py, PyList>> {
        let data = input_data(chunk, sample_rate)?;
        let outputs = self.with_stream(py, async move |s| s.push(&data).await)?;
        outputs_to_py(py, outputs)
    }

    /// Ends the stream: the server flushes every node; returns the tail.
    fn finish<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let outputs = self.with_stream(py, async move |s| s.finish().await)?;
        let taken = self.stream.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(s) = taken {
            *self.metrics.lock().unwrap_or_else(|p| p.into_inner()) =
                s.metrics_json().map(String::from);
        }
        outputs_to_py(py, outputs)
    }

    /// Ends the stream without flushing.
    fn abort(&self) {
        if let Some(s) = self.stream.lock().unwrap_or_else(|p| p.into_inner()).take() {
            s.abort();
        }
    }

    /// The server's metrics (after `finish`), as JSON text.
    fn metrics_json(&self) -> String {
        self.metrics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "null".to_string())
    }
}
