//! `RemoteClient`: run pipelines on a remotemedia server from Python (same results as local
//! runs); its streams are `NativeSession`s like local ones.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use remotemedia_grpc::RemoteClient as Client;

use crate::convert::renderer;
use crate::errors::remote_to_pyerr;
use crate::pipeline::{input_data, run_outputs_to_py, NativeSession};
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
        let signals = crate::is_main_thread(py);
        // Ctrl-C on the main thread cancels the call at once (KeyboardInterrupt).
        let result = py.detach(move || {
            crate::block_on_signals(
                async move { client.execute(&manifest, &data, timeout).await },
                signals,
            )
        })?;
        let run = result.map_err(|e| remote_to_pyerr(py, e))?;
        Ok((run_outputs_to_py(py, run.outputs)?, run.metrics_json))
    }

    /// Opens a streaming session (the same session type as a local stream).
    fn stream(&self, py: Python<'_>, manifest: String) -> PyResult<NativeSession> {
        let mut client = self.client.clone();
        let stream = py
            .detach(move || runtime().block_on(async move { client.open_stream(&manifest).await }))
            .map_err(|e| remote_to_pyerr(py, e))?;
        Ok(NativeSession::new(crate::pipeline::Backend::Other(
            Box::new(stream),
        )))
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
