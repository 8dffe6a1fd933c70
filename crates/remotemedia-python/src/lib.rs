//! `remotemedia._native`: the Rust executor, native nodes and CLI for the Python package.
//!
//! Layout: `errors` (the exception hierarchy and the single mapping from core errors),
//! `input` (input preparation: files, rates, dtypes, layouts, stream chunks, one set of
//! messages), `convert` (numpy <-> core data, zero-copy), `pynode` (user Python nodes run by the
//! executor), `registry` (registering Python node types), `pipeline` (NativePipeline,
//! NativeSession), `native_node` (one native node called directly), `host` (the CLI).

mod convert;
mod errors;
mod host;
mod input;
mod io;
mod native_node;
mod pipeline;
mod pynode;
mod registry;
mod remote;

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Mutex;

use pyo3::prelude::*;
use remotemedia_core::schema;

/// Forks of this process so far, as seen by the process itself: 0 in the process that loaded
/// the module, bumped in a child by the `pthread_atfork` handler [`watch_forks`] installs.
static FORKS: AtomicU64 = AtomicU64::new(0);
/// The runtime for the current process, and the value of [`FORKS`] it was built under.
static RUNTIME: AtomicPtr<tokio::runtime::Runtime> = AtomicPtr::new(std::ptr::null_mut());
static RUNTIME_FORKS: AtomicU64 = AtomicU64::new(u64::MAX);

/// The process-wide tokio runtime the executor runs on. A child made by `fork()` (Python's
/// `multiprocessing` does this by default on Linux) inherits the runtime's memory but none of
/// its threads, so anything that waited on it would wait forever: the child gets a runtime of
/// its own on first use (the parent's copy is left alone; its threads do not exist here).
pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    let forks = FORKS.load(Ordering::Acquire);
    if RUNTIME_FORKS.load(Ordering::Acquire) == forks {
        // SAFETY: set below from a leaked Box, never freed.
        return unsafe { &*RUNTIME.load(Ordering::Acquire) };
    }
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one = BUILDING.lock().unwrap_or_else(|p| p.into_inner());
    if RUNTIME_FORKS.load(Ordering::Acquire) != forks {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name("remotemedia-worker")
            .enable_all()
            .build()
            .expect("cannot start the remotemedia runtime");
        RUNTIME.store(Box::into_raw(Box::new(rt)), Ordering::Release);
        RUNTIME_FORKS.store(forks, Ordering::Release);
    }
    // SAFETY: as above.
    unsafe { &*RUNTIME.load(Ordering::Acquire) }
}

/// Installs the fork handler once (at module load).
fn watch_forks() {
    #[cfg(unix)]
    {
        extern "C" fn in_child() {
            // Async-signal-safe: one atomic add.
            FORKS.fetch_add(1, Ordering::AcqRel);
        }
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: registers a handler that only touches an atomic.
        ONCE.call_once(|| unsafe {
            libc::pthread_atfork(None, None, Some(in_child));
        });
    }
}

/// How often a wait on the main thread checks for Ctrl-C (and other signals).
const SIGNAL_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// Whether the calling thread is Python's main thread (the only one that handles signals).
/// The main thread's id is looked up once; each call then compares two integers.
pub(crate) fn is_main_thread(py: Python<'_>) -> bool {
    static MAIN: pyo3::sync::PyOnceLock<std::ffi::c_ulong> = pyo3::sync::PyOnceLock::new();
    let main = MAIN.get_or_try_init(py, || -> PyResult<std::ffi::c_ulong> {
        py.import("threading")?
            .call_method0("main_thread")?
            .getattr("ident")?
            .extract()
    });
    // SAFETY: plain query of the current thread's id (the same id `threading` reports).
    let this = unsafe { pyo3::ffi::PyThread_get_thread_ident() };
    main.is_ok_and(|m| *m == this)
}

/// Runs `fut` to completion on the runtime, called *without* the GIL. With `signals` (the
/// caller is the main thread) it checks for signals every [`SIGNAL_POLL`]: a pending Ctrl-C
/// makes it drop `fut` (cancelling the run; a Python node's call in progress is interrupted
/// with `CallInterrupted`) and return the `KeyboardInterrupt` at once, instead of waiting for
/// the run to finish.
pub(crate) fn block_on_signals<F>(fut: F, signals: bool) -> PyResult<F::Output>
where
    F: std::future::Future,
{
    if !signals {
        return Ok(runtime().block_on(fut));
    }
    runtime().block_on(async {
        let mut fut = std::pin::pin!(fut);
        // Most calls (a chunk through native nodes) finish on their first poll: no timer.
        if let std::task::Poll::Ready(out) = poll_once(fut.as_mut()).await {
            return Ok(out);
        }
        loop {
            match tokio::time::timeout(SIGNAL_POLL, fut.as_mut()).await {
                Ok(out) => return Ok(out),
                Err(_) => Python::attach(|py| py.check_signals())?,
            }
        }
    })
}

/// Polls `fut` once: `Ready` with its output, or `Pending` (it may be polled again later).
pub(crate) async fn poll_once<F: std::future::Future>(
    mut fut: std::pin::Pin<&mut F>,
) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await
}

/// JSON list of every native node type with its description and parameters.
/// The candidate closest to `name`, when close enough to be the name meant (the runtime's
/// one "did you mean" rule); `None` otherwise.
#[pyfunction]
fn closest(name: &str, candidates: Vec<String>) -> Option<String> {
    remotemedia_core::text::closest(name, candidates.iter().map(String::as_str)).map(String::from)
}

#[pyfunction]
fn node_types_json() -> String {
    let registry = registry::base_registry();
    let infos: Vec<_> = registry.infos().collect();
    serde_json::to_string(&infos).expect("infos serialize")
}

/// The manifest JSON Schema (text).
#[pyfunction]
fn manifest_schema_json() -> String {
    schema::manifest_schema_pretty(&remotemedia_nodes::builtin_registry())
}

/// Draws a manifest (JSON text) as "mermaid", "dot" or "svg" (the CLI's `graph` code);
/// `notes` adds a line to nodes' boxes (`{node_id: text}`).
#[pyfunction]
#[pyo3(signature = (manifest_json, format, notes=None))]
fn render_graph(
    py: Python<'_>,
    manifest_json: &str,
    format: &str,
    notes: Option<std::collections::HashMap<String, String>>,
) -> PyResult<String> {
    let format = remotemedia_cli::graph::GraphFormat::parse(format).ok_or_else(|| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "format {format:?} is not one of 'mermaid', 'dot', 'svg'"
        ))
    })?;
    let manifest = remotemedia_core::manifest::parse(manifest_json)
        .map_err(|e| errors::to_pyerr(py, e.into()))?;
    let registry = registry::base_registry();
    Ok(remotemedia_cli::graph::render(
        &manifest,
        format,
        &|t| {
            registry
                .get(t)
                .is_some_and(|f| f.info().runtime == remotemedia_core::node::Runtime::Rust)
        },
        &|id| notes.as_ref().and_then(|n| n.get(id).cloned()),
    ))
}

/// Runs the `remotemedia` command line with `argv` (including the program name); returns the
/// exit code.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> u8 {
    let code = py.detach(|| remotemedia_cli::main_code(argv, &host::PyHost));
    if code >= 128 {
        // Interrupted by a signal the CLI handled (it stopped and cleaned up); Python's own
        // handler saw it too: drop the KeyboardInterrupt it left pending, the exit code says it.
        let _ = py.check_signals();
    }
    code
}

/// Waits (without the GIL) up to `timeout_s` seconds for Python node calls that were
/// interrupted (timeout, cancellation) to return; returns how many are still running. Runs at
/// interpreter exit, so a process never finalizes while such a call is unwinding.
#[pyfunction]
#[pyo3(signature = (timeout_s = 2.0))]
fn _wait_for_interrupted_calls(py: Python<'_>, timeout_s: f64) -> usize {
    let limit = std::time::Duration::from_secs_f64(timeout_s.clamp(0.0, 3600.0));
    py.detach(|| pynode::wait_for_abandoned_calls(limit))
}

/// Number of interrupted Python node calls that have not returned yet.
#[pyfunction]
fn _interrupted_calls() -> usize {
    pynode::abandoned_calls()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    watch_forks();
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The runtime's input bounds, for Python code that checks before it calls.
    m.add("MAX_CHANNELS", remotemedia_core::data::MAX_CHANNELS)?;
    m.add("AUDIO_FORMATS", remotemedia_io::AUDIO_FORMATS.to_vec())?;
    m.add(
        "MAX_MANIFEST_BYTES",
        remotemedia_core::manifest::limits::MAX_MANIFEST_BYTES,
    )?;
    m.add_class::<pipeline::NativePipeline>()?;
    m.add_class::<pipeline::NativeSession>()?;
    m.add_class::<native_node::NativeNode>()?;
    m.add_class::<remote::RemoteClient>()?;
    m.add_function(wrap_pyfunction!(native_node::check_params, m)?)?;
    m.add_function(wrap_pyfunction!(node_types_json, m)?)?;
    m.add_function(wrap_pyfunction!(closest, m)?)?;
    m.add_function(wrap_pyfunction!(manifest_schema_json, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(render_graph, m)?)?;
    m.add_function(wrap_pyfunction!(input::prepare, m)?)?;
    m.add_function(wrap_pyfunction!(input::prepare_chunk, m)?)?;
    m.add_function(wrap_pyfunction!(input::sample_rate_of, m)?)?;
    m.add_function(wrap_pyfunction!(io::read_file, m)?)?;
    m.add_function(wrap_pyfunction!(io::audio_info, m)?)?;
    m.add_function(wrap_pyfunction!(io::loudness, m)?)?;
    m.add_function(wrap_pyfunction!(io::write_file, m)?)?;
    m.add_function(wrap_pyfunction!(io::write_segments, m)?)?;
    m.add_function(wrap_pyfunction!(io::write_segment_index, m)?)?;
    m.add_function(wrap_pyfunction!(io::run_files, m)?)?;
    m.add_class::<io::BlockReader>()?;
    m.add_function(wrap_pyfunction!(convert::audio_finalizer, m)?)?;
    m.add_function(wrap_pyfunction!(convert::_set_crossing_log, m)?)?;
    m.add_function(wrap_pyfunction!(convert::_take_crossing_log, m)?)?;
    m.add_function(wrap_pyfunction!(_wait_for_interrupted_calls, m)?)?;
    m.add_function(wrap_pyfunction!(_interrupted_calls, m)?)?;
    let wait = m.getattr("_wait_for_interrupted_calls")?;
    m.py().import("atexit")?.call_method1("register", (wait,))?;
    Ok(())
}
