//! The Python exception hierarchy, defined once here, and the one mapping from the core's
//! errors to it. Exceptions raised by a user's Python node pass through unchanged (same type,
//! message and traceback) with a note naming the node.

use std::sync::Arc;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use remotemedia_core::error::{ExecutorError, NodeErrorKind};

create_exception!(
    remotemedia._native,
    RemoteMediaError,
    PyException,
    "Base class of every error remotemedia raises."
);
create_exception!(
    remotemedia._native,
    ManifestError,
    RemoteMediaError,
    "The manifest or a node's parameters are invalid (the message names node and field)."
);
create_exception!(
    remotemedia._native,
    NodeError,
    RemoteMediaError,
    "A native node failed (bad input, a contained panic, ...); `node_id` names it."
);
create_exception!(
    remotemedia._native,
    NodeTimeoutError,
    NodeError,
    "A node did not finish within its `timeout_ms` on any attempt."
);
create_exception!(
    remotemedia._native,
    CircuitOpenError,
    RemoteMediaError,
    "A node's circuit breaker is open after repeated failures; calls are refused for now."
);
create_exception!(
    remotemedia._native,
    RemoteError,
    RemoteMediaError,
    "A remote call failed in transport or was refused (auth, load, shutdown); `code` is the gRPC status name."
);
create_exception!(
    remotemedia._native,
    RetryableError,
    RemoteMediaError,
    "Raise from a Python node to ask the executor to retry the call."
);

/// Wraps the original Python exception of a user node so it can travel through the core
/// (as a `NodeError` payload) and be re-raised unchanged.
pub struct PyErrPayload(pub PyErr);

/// Sets `node_id`, `node_type` and `code` on an exception object.
fn annotate(py: Python<'_>, err: &PyErr, e: &ExecutorError, node_type: Option<&str>) {
    let value = err.value(py);
    let _ = value.setattr("code", e.code());
    if let Some(id) = e.node_id() {
        let _ = value.setattr("node_id", id);
    }
    if let Some(t) = node_type {
        let _ = value.setattr("node_type", t);
    }
}

/// The single mapping from [`ExecutorError`] to a Python exception.
pub fn to_pyerr(py: Python<'_>, e: ExecutorError) -> PyErr {
    let node_type = match &e {
        ExecutorError::NodeError { node_type, .. }
        | ExecutorError::PythonError { node_type, .. }
        | ExecutorError::RetryableError { node_type, .. }
        | ExecutorError::CircuitOpen { node_type, .. }
        | ExecutorError::Timeout { node_type, .. } => Some(node_type.clone()),
        _ => None,
    };
    // A user's exception: re-raise the original object, plus a note naming the node.
    if let ExecutorError::PythonError {
        node_id,
        node_type,
        attempts,
        source,
        ..
    } = &e
    {
        if let Some(original) = source
            .payload()
            .and_then(|p| Arc::clone(p).downcast::<PyErrPayload>().ok())
        {
            let err = original.0.clone_ref(py);
            let note = if *attempts > 1 {
                format!("raised in remotemedia node '{node_id}' ({node_type}) after {attempts} attempts")
            } else {
                format!("raised in remotemedia node '{node_id}' ({node_type})")
            };
            let value = err.value(py);
            // add_note exists from Python 3.11; the attributes work everywhere.
            if value.hasattr("add_note").unwrap_or(false) {
                let _ = value.call_method1("add_note", (PyString::new(py, &note),));
            }
            let _ = value.setattr("remotemedia_node_id", node_id.as_str());
            let _ = value.setattr("remotemedia_node_type", node_type.as_str());
            return err;
        }
    }
    let message = e.to_string();
    let err = match &e {
        ExecutorError::ManifestError(_)
        | ExecutorError::GraphError { .. }
        | ExecutorError::CycleError { .. } => ManifestError::new_err(message),
        ExecutorError::CircuitOpen { .. } => CircuitOpenError::new_err(message),
        ExecutorError::Timeout { .. } => NodeTimeoutError::new_err(message),
        ExecutorError::NodeError { source, .. }
            if *source.kind() == NodeErrorKind::InvalidInput =>
        {
            NodeError::new_err(message)
        }
        ExecutorError::NodeError { .. }
        | ExecutorError::RetryableError { .. }
        | ExecutorError::PythonError { .. } => NodeError::new_err(message),
        ExecutorError::InputError { .. } => PyValueError::new_err(message),
        ExecutorError::Busy { .. } | ExecutorError::SessionClosed { .. } => {
            RemoteMediaError::new_err(message)
        }
    };
    annotate(py, &err, &e, node_type.as_deref());
    err
}

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("RemoteMediaError", py.get_type::<RemoteMediaError>())?;
    m.add("ManifestError", py.get_type::<ManifestError>())?;
    m.add("NodeError", py.get_type::<NodeError>())?;
    m.add("NodeTimeoutError", py.get_type::<NodeTimeoutError>())?;
    m.add("CircuitOpenError", py.get_type::<CircuitOpenError>())?;
    m.add("RetryableError", py.get_type::<RetryableError>())?;
    m.add("RemoteError", py.get_type::<RemoteError>())?;
    Ok(())
}

/// The one mapping from a remote call's failure to a Python exception: the server's
/// remotemedia error code picks the same class a local run would raise.
pub fn remote_to_pyerr(py: Python<'_>, e: remotemedia_grpc::ClientError) -> PyErr {
    use remotemedia_grpc::ClientError;
    let (err, grpc_code, node_id, error_code) = match &e {
        ClientError::Status {
            code,
            message,
            node_id,
            error_code,
        } => {
            let err = match error_code.as_deref() {
                Some("manifest" | "graph" | "cycle") => ManifestError::new_err(message.clone()),
                Some("circuit_open") => CircuitOpenError::new_err(message.clone()),
                Some("timeout") => NodeTimeoutError::new_err(message.clone()),
                Some("input") => PyValueError::new_err(message.clone()),
                Some(_) if node_id.is_some() => NodeError::new_err(message.clone()),
                _ => RemoteError::new_err(message.clone()),
            };
            (err, Some(*code), node_id.clone(), error_code.clone())
        }
        other => (RemoteError::new_err(other.to_string()), None, None, None),
    };
    let value = err.value(py);
    let code_name = grpc_code
        .map(|c| format!("{c:?}"))
        .unwrap_or_else(|| "Unavailable".to_string());
    let _ = value.setattr("grpc_code", code_name);
    if let Some(id) = node_id {
        let _ = value.setattr("node_id", id);
    }
    let _ = value.setattr("code", error_code.unwrap_or_else(|| "remote".to_string()));
    err
}
