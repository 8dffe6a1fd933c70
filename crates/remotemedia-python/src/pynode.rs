//! `PythonNode`: a user's Python node (a `remotemedia.Node` subclass instance) run by the
//! Rust executor. Each call runs on tokio's blocking pool and holds the GIL only while Python
//! code runs; `async def` methods run on a per-thread asyncio event loop.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use remotemedia_core::data::Data;
use remotemedia_core::error::{NodeError, NodeErrorKind};
use remotemedia_core::node::{Node, Runtime};

use crate::convert::{data_from_py, data_to_py};
use crate::errors::{PyErrPayload, RetryableError};

/// A Python node instance.
pub struct PythonNode {
    obj: Arc<Py<PyAny>>,
    node_id: String,
    node_type: String,
    /// The last input sample rate (a numpy array returned from `flush` gets it).
    last_rate: Option<u32>,
    /// Serialises calls into the object: after a timeout the abandoned call may still be
    /// running on its thread, and user code must never run twice at once.
    call_lock: Arc<Mutex<()>>,
}

impl PythonNode {
    /// Wraps `obj` as node `node_id` of type `node_type`.
    pub fn new(obj: Py<PyAny>, node_id: &str, node_type: &str) -> Self {
        Self {
            obj: Arc::new(obj),
            node_id: node_id.to_string(),
            node_type: node_type.to_string(),
            last_rate: None,
            call_lock: Arc::new(Mutex::new(())),
        }
    }

    async fn call(
        &self,
        method: &'static str,
        input: Option<Data>,
        rate: Option<u32>,
    ) -> Result<Option<Data>, NodeError> {
        let obj = Arc::clone(&self.obj);
        let lock = Arc::clone(&self.call_lock);
        let (id, ty) = (self.node_id.clone(), self.node_type.clone());
        let joined = tokio::task::spawn_blocking(move || {
            let _serial = lock.lock().unwrap_or_else(|p| p.into_inner());
            Python::attach(|py| call_in_python(py, &obj, method, input, rate, &id, &ty))
        })
        .await;
        joined.map_err(|e| {
            NodeError::new(
                NodeErrorKind::Failed,
                format!("Python call to {method}() did not complete: {e}"),
            )
        })?
    }
}

static ISCOROUTINE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

thread_local! {
    static EVENT_LOOP: std::cell::OnceCell<Py<PyAny>> = const { std::cell::OnceCell::new() };
}

/// Runs a coroutine to completion on this thread's own event loop (made on first use).
fn run_coroutine<'py>(py: Python<'py>, coro: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let event_loop = EVENT_LOOP.with(|cell| -> PyResult<Py<PyAny>> {
        if let Some(l) = cell.get() {
            return Ok(l.clone_ref(py));
        }
        let l = py
            .import("asyncio")?
            .call_method0("new_event_loop")?
            .unbind();
        let _ = cell.set(l.clone_ref(py));
        Ok(l)
    })?;
    event_loop
        .bind(py)
        .call_method1("run_until_complete", (coro,))
}

fn call_in_python(
    py: Python<'_>,
    obj: &Py<PyAny>,
    method: &str,
    input: Option<Data>,
    rate: Option<u32>,
    node_id: &str,
    node_type: &str,
) -> Result<Option<Data>, NodeError> {
    let o = obj.bind(py);
    if !o.hasattr(method).unwrap_or(false) {
        return Ok(None);
    }
    let result = (|| -> PyResult<Bound<'_, PyAny>> {
        let r = match input {
            Some(d) => {
                let arg = data_to_py(py, d, true)?;
                o.call_method1(method, (arg,))?
            }
            None => o.call_method0(method)?,
        };
        let iscoroutine = ISCOROUTINE
            .get_or_try_init(py, || {
                Ok::<_, PyErr>(py.import("inspect")?.getattr("iscoroutine")?.unbind())
            })?
            .bind(py);
        if iscoroutine.call1((&r,))?.is_truthy()? {
            run_coroutine(py, r)
        } else {
            Ok(r)
        }
    })();
    let value = match result {
        Ok(v) => v,
        Err(err) => return Err(host_error(py, err)),
    };
    if method == "initialize" || method == "cleanup" {
        return Ok(None);
    }
    data_from_py(&value, rate).map_err(|e| {
        let got = value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        NodeError::failed(format!(
            "{method}() of node '{node_id}' ({node_type}) returned an unusable {got}: {}; \
             expected None, remotemedia.Audio, a numpy array (float32/float64/int16/int32, \
             shape (frames,) or (frames, channels)), a list of Segment, or any other object",
            e.value(py)
        ))
    })
}

/// A user's exception as a node error: type, message and formatted traceback, the original
/// exception as payload; retryable for TimeoutError, ConnectionError and RetryableError.
fn host_error(py: Python<'_>, err: PyErr) -> NodeError {
    let exc_type = err
        .get_type(py)
        .qualname()
        .map(|q| q.to_string())
        .unwrap_or_else(|_| "Exception".to_string());
    let message = err
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let traceback = py.import("traceback").ok().and_then(|tb| {
        tb.call_method1(
            "format_exception",
            (err.get_type(py), err.value(py), err.traceback(py)),
        )
        .ok()?
        .extract::<Vec<String>>()
        .ok()
        .map(|lines| lines.concat())
    });
    let retryable = err.is_instance_of::<pyo3::exceptions::PyTimeoutError>(py)
        || err.is_instance_of::<pyo3::exceptions::PyConnectionError>(py)
        || err.is_instance_of::<RetryableError>(py);
    NodeError::new(
        NodeErrorKind::Host {
            host: "Python",
            exc_type,
            traceback,
        },
        message,
    )
    .with_retryable(retryable)
    .with_payload(Arc::new(PyErrPayload(err)))
}

#[async_trait]
impl Node for PythonNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.last_rate = None;
        self.call("initialize", None, None).await.map(|_| ())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        if let Data::Audio(a) = &input {
            self.last_rate = Some(a.sample_rate());
        }
        let rate = self.last_rate;
        self.call("process", Some(input), rate).await
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        self.call("flush", None, self.last_rate).await
    }

    async fn stop(&mut self) {
        let busy = self.call_lock.try_lock().is_err();
        if !busy {
            if let Err(e) = self.call("cleanup", None, None).await {
                warn_cleanup(&self.node_id, &e);
            }
            return;
        }
        // A call abandoned after its timeout is still running: cleanup() runs once it returns
        // (calls into the object never overlap), without holding up the end of this run. A
        // run bounded by `timeout_ms` must not wait for the very call the timeout gave up on.
        let (obj, lock) = (Arc::clone(&self.obj), Arc::clone(&self.call_lock));
        let (id, ty) = (self.node_id.clone(), self.node_type.clone());
        tokio::task::spawn_blocking(move || {
            let _serial = lock.lock().unwrap_or_else(|p| p.into_inner());
            let result =
                Python::attach(|py| call_in_python(py, &obj, "cleanup", None, None, &id, &ty));
            if let Err(e) = result {
                warn_cleanup(&id, &e);
            }
        });
    }

    fn runtime(&self) -> Runtime {
        Runtime::Host("python")
    }
}

/// cleanup() failures cannot fail a finished run: they become a Python `RuntimeWarning`.
fn warn_cleanup(node_id: &str, e: &NodeError) {
    Python::attach(|py| {
        let message = std::ffi::CString::new(format!("cleanup() of node '{node_id}' raised {e}"))
            .unwrap_or_default();
        let category = py.get_type::<pyo3::exceptions::PyRuntimeWarning>();
        if let Err(err) = PyErr::warn(py, &category, &message, 1) {
            err.write_unraisable(py, None);
        }
    });
}
