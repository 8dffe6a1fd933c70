//! The Python exception hierarchy, defined once here, and the one mapping to it from every
//! error the runtime reports: a run's (local or remote) [`to_pyerr`], a standalone node
//! call's [`node_to_pyerr`], parameters' [`params_to_pyerr`], files' [`io_to_pyerr`]. The class
//! comes from one table keyed by the error's code; exceptions raised by a user's Python node
//! pass through unchanged (same type, message and traceback) with a note naming the node.
//! Node errors carry `kind` (the [`InputError`] kind, e.g. `"sample_rate_changed"`) for
//! programs, as pydantic's errors carry `type`.

use std::sync::Arc;

use pyo3::create_exception;
use pyo3::exceptions::{
    PyBaseException, PyException, PyFileNotFoundError, PyOSError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyString;
#[cfg(doc)]
use remotemedia_core::error::InputError;
use remotemedia_core::error::{ExecutorError, NodeErrorKind};
use remotemedia_core::registry::ParamIssue;
use remotemedia_io::IoError;

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

create_exception!(
    remotemedia._native,
    CallInterrupted,
    PyBaseException,
    "Raised inside a Python node's call that the runtime gave up on (its timeout_ms passed, or \
     the run was cancelled). A BaseException, so `except Exception` does not swallow it; let it \
     propagate."
);

/// Wraps the original Python exception of a user node so it can travel through the core
/// (as a `NodeError` payload) and be re-raised unchanged.
pub struct PyErrPayload(pub PyErr);

/// The one exception table, keyed by `ExecutorError::code()`: local errors and remote ones
/// (which carry the server's code) raise the same class.
fn class_for<'py>(
    py: Python<'py>,
    code: &str,
    names_a_node: bool,
) -> Bound<'py, pyo3::types::PyType> {
    match code {
        "manifest" => py.get_type::<ManifestError>(),
        "circuit_open" => py.get_type::<CircuitOpenError>(),
        "timeout" => py.get_type::<NodeTimeoutError>(),
        "invalid_input" | "node" | "host" | "python" | "retries_exhausted" => {
            py.get_type::<NodeError>()
        }
        "input" | "unknown_input" => py.get_type::<PyValueError>(),
        "transport" => py.get_type::<RemoteError>(),
        "busy" | "session_closed" | "internal" => py.get_type::<RemoteMediaError>(),
        _ if names_a_node => py.get_type::<NodeError>(),
        _ => py.get_type::<RemoteMediaError>(),
    }
}

/// `ManifestError.issues`: `[{"node_id", "node_type", "field", "message"}]`, like pydantic's
/// `errors()`, for programs; the message lists the same for people.
fn issues_list<'py>(
    py: Python<'py>,
    issues: &[remotemedia_core::manifest::ManifestIssue],
) -> PyResult<Bound<'py, pyo3::types::PyList>> {
    let items = issues
        .iter()
        .map(|i| {
            let d = pyo3::types::PyDict::new(py);
            d.set_item("node_id", i.node_id.as_deref())?;
            d.set_item("node_type", i.node_type.as_deref())?;
            d.set_item("field", &i.field)?;
            d.set_item("message", &i.message)?;
            Ok(d)
        })
        .collect::<PyResult<Vec<_>>>()?;
    pyo3::types::PyList::new(py, items)
}

/// Sets `issues` on a `ManifestError`.
pub fn set_issues(
    py: Python<'_>,
    err: &PyErr,
    issues: &[remotemedia_core::manifest::ManifestIssue],
) {
    if let Ok(list) = issues_list(py, issues) {
        let _ = err.value(py).setattr("issues", list);
    }
}

/// The single mapping from [`ExecutorError`] (local or remote) to a Python exception.
pub fn to_pyerr(py: Python<'_>, e: ExecutorError) -> PyErr {
    // A user's exception: re-raise the original object, plus a note naming the node.
    if let ExecutorError::HostError {
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
    let class = class_for(py, e.code(), e.node_id().is_some());
    let err = PyErr::from_type(class, e.to_string());
    let value = err.value(py);
    let _ = value.setattr("code", e.code());
    if let Some(id) = e.node_id() {
        let _ = value.setattr("node_id", id);
    }
    if let Some(t) = e.node_type() {
        let _ = value.setattr("node_type", t);
    }
    if let Some(kind) = e.kind() {
        let _ = value.setattr("kind", kind);
    }
    match &e {
        ExecutorError::ManifestError(m) => set_issues(py, &err, m.issues()),
        ExecutorError::Remote { status, .. } => {
            let _ = value.setattr("grpc_code", status.as_str());
        }
        _ => {}
    }
    err
}

/// A native node's error from a standalone call (`node.process(...)`, no pipeline): the same
/// class table as a run's errors, the message prefixed once by the node's type (node messages
/// never name their node), and `code`, `kind`, `node_type` set.
pub fn node_to_pyerr(py: Python<'_>, node_type: &str, e: remotemedia_core::NodeError) -> PyErr {
    let code = match e.kind() {
        NodeErrorKind::InvalidInput => "invalid_input",
        NodeErrorKind::Timeout => "timeout",
        NodeErrorKind::Host { .. } => "host",
        NodeErrorKind::Failed | NodeErrorKind::Panicked => "node",
    };
    let err = PyErr::from_type(class_for(py, code, true), format!("{node_type}: {e}"));
    let value = err.value(py);
    let _ = value.setattr("code", code);
    let _ = value.setattr("kind", e.kind_name());
    let _ = value.setattr("node_type", node_type);
    let _ = value.setattr("node_id", py.None());
    err
}

/// Parameter problems of one node type (no pipeline, so no node id): a `ManifestError` whose
/// message has one line per problem, `"{node_type}: params.{field}: {message}"`, and whose
/// `issues` list them as a manifest's do.
pub fn params_to_pyerr(node_type: &str, issues: &[ParamIssue]) -> PyErr {
    let lines: Vec<String> = issues.iter().map(|i| format!("{node_type}: {i}")).collect();
    let err = ManifestError::new_err(lines.join("\n"));
    Python::attach(|py| {
        let structured: Vec<_> = issues
            .iter()
            .map(|i| {
                let field = if i.field.is_empty() {
                    "params".to_string()
                } else {
                    format!("params.{}", i.field)
                };
                let mut issue =
                    remotemedia_core::manifest::ManifestIssue::root(field, i.message.clone());
                issue.node_type = Some(node_type.to_string());
                issue
            })
            .collect();
        set_issues(py, &err, &structured);
        let _ = err.value(py).setattr("code", "manifest");
    });
    err
}

/// A file's error: missing files are `FileNotFoundError`, other OS failures `OSError`, damaged
/// or unsupported files `ValueError` (as Python's own I/O raises); every message names the file.
pub fn io_to_pyerr(e: IoError) -> PyErr {
    match &e {
        IoError::Os { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(e.to_string())
        }
        IoError::Os { .. } => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
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
    // Set on each raised error that has a gRPC status; `None` for the others (a closed
    // client), so `e.grpc_code` can always be read.
    py.get_type::<RemoteError>()
        .setattr("grpc_code", py.None())?;
    // What went wrong, as a stable name (`"sample_rate_changed"`, `"not_audio"`, `"failed"`,
    // ...); `None` on errors raised before a node ran.
    py.get_type::<NodeError>().setattr("kind", py.None())?;
    m.add("CallInterrupted", py.get_type::<CallInterrupted>())?;
    Ok(())
}

/// A remote call's failure: the same table as local errors (see [`to_pyerr`]).
pub fn remote_to_pyerr(py: Python<'_>, e: remotemedia_grpc::ClientError) -> PyErr {
    to_pyerr(py, e.into())
}
