//! `PythonNode`: a user's Python node (a `remotemedia.Node` subclass instance) run by the
//! Rust executor. Each call runs on tokio's blocking pool and holds the GIL only while Python
//! code runs; `async def` methods run on a per-thread asyncio event loop.
//!
//! A call whose future is dropped before it returns (its `timeout_ms` passed, the run or the
//! stream was cancelled, the server shut down) is *interrupted*: `CallInterrupted` (a
//! `BaseException`, so `except Exception` does not swallow it) is raised asynchronously in the
//! thread running it, keyed by the thread id recorded when the call started. Python checks for
//! it between bytecodes, so Python code stops at once; code blocked in C (`time.sleep`, a C
//! extension's loop) only sees it when the C call returns. Until then the object stays locked:
//! its next call waits [`BUSY_GRACE`] and then fails with an error saying so (never hangs).

use std::ffi::{c_long, c_ulong};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use remotemedia_core::data::Data;
use remotemedia_core::error::{NodeError, NodeErrorKind};
use remotemedia_core::node::{Node, Runtime};

use crate::convert::{data_from_py, data_to_py};
use crate::errors::{CallInterrupted, PyErrPayload, RetryableError};

/// How long a call waits for an interrupted call into the same object to unwind before it
/// fails saying that call is still running.
pub const BUSY_GRACE: Duration = Duration::from_millis(500);

/// Where one call into a Python object stands; shared by the awaiting side and the thread
/// running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Spawned, not started yet.
    Queued,
    /// Running Python code on the thread with this id.
    Running(c_ulong),
    /// Abandoned while running: the interrupt is sent (or being sent) to that thread.
    Interrupting(c_ulong),
    /// Abandoned before it started: it never runs.
    Cancelled,
    /// Returned.
    Finished,
}

/// Calls abandoned while running whose thread has not returned yet, and `cleanup()` calls
/// deferred until such a call returns; process-wide.
struct Abandoned {
    count: Mutex<usize>,
    changed: Condvar,
}

static ABANDONED: Abandoned = Abandoned {
    count: Mutex::new(0),
    changed: Condvar::new(),
};

impl Abandoned {
    fn add(&self, delta: isize) {
        let mut n = self.count.lock().unwrap_or_else(|p| p.into_inner());
        *n = n.saturating_add_signed(delta);
        self.changed.notify_all();
    }
}

/// Waits up to `limit` for every interrupted Python call to return; the number still running
/// (0 when all returned). Call without the GIL.
pub fn wait_for_abandoned_calls(limit: Duration) -> usize {
    let n = ABANDONED.count.lock().unwrap_or_else(|p| p.into_inner());
    let (n, _) = ABANDONED
        .changed
        .wait_timeout_while(n, limit, |n| *n > 0)
        .unwrap_or_else(|p| p.into_inner());
    *n
}

/// Number of interrupted Python calls that have not returned yet.
pub fn abandoned_calls() -> usize {
    *ABANDONED.count.lock().unwrap_or_else(|p| p.into_inner())
}

/// One call's shared state.
struct Ticket {
    phase: Mutex<Phase>,
    /// For an `async def` method: the event loop and the task running it, so that an
    /// interrupt cancels the task (cleanly, at its `await`) before raising in the thread.
    task: Mutex<Option<(Py<PyAny>, Py<PyAny>)>>,
}

impl Ticket {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Held by the awaiting side: dropped before `done()`, it interrupts the call.
struct InterruptOnDrop {
    ticket: Arc<Ticket>,
    done: bool,
}

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut phase = self.ticket.phase();
        match *phase {
            Phase::Queued => *phase = Phase::Cancelled,
            Phase::Running(tid) => {
                *phase = Phase::Interrupting(tid);
                ABANDONED.add(1);
                drop(phase);
                // Setting the exception needs the GIL, which running code may hold for a
                // while: never wait for it on an async worker.
                let ticket = Arc::clone(&self.ticket);
                let spawned = std::thread::Builder::new()
                    .name("remotemedia-interrupt".into())
                    .spawn(move || interrupt(&ticket));
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "cannot start a thread to interrupt a Python call");
                }
            }
            Phase::Interrupting(_) | Phase::Cancelled | Phase::Finished => {}
        }
    }
}

/// How long an interrupted coroutine gets to end after its task is cancelled before the
/// exception is raised in its thread (a coroutine that never awaits ignores the cancel).
const CANCEL_GRACE: Duration = Duration::from_millis(200);

/// Stops the ticket's call: an `async def` call's task is cancelled first; then, while it is
/// still running, `CallInterrupted` is raised in its thread.
fn interrupt(ticket: &Ticket) {
    let task = ticket.task.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some((event_loop, task)) = task {
        let cancelled = Python::attach(|py| {
            let cancel = task.bind(py).getattr("cancel")?;
            event_loop
                .bind(py)
                .call_method1("call_soon_threadsafe", (cancel,))
                .map(|_| ())
        });
        if cancelled.is_ok() {
            let start = std::time::Instant::now();
            while start.elapsed() < CANCEL_GRACE {
                if !matches!(*ticket.phase(), Phase::Interrupting(_)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    Python::attach(|py| {
        // With the GIL held the call's thread cannot change phase (it does so with the GIL),
        // so the exception can only land inside the call, never in later code on that thread.
        let phase = ticket.phase();
        if let Phase::Interrupting(tid) = *phase {
            let exc = py.get_type::<CallInterrupted>();
            // SAFETY: the GIL is held; `exc` is a live exception type.
            unsafe { pyo3::ffi::PyThreadState_SetAsyncExc(tid as c_long, exc.as_ptr()) };
        }
    });
}

thread_local! {
    static THREAD_IDENT: c_ulong = {
        // SAFETY: plain query of the current thread's id.
        unsafe { pyo3::ffi::PyThread_get_thread_ident() }
    };
}

/// Runs `f` (a call into Python) for `ticket` on this blocking thread: skipped when abandoned
/// before it started; any interrupt still pending when it returns is cleared.
fn run_ticketed<T>(
    py: Python<'_>,
    ticket: &Ticket,
    f: impl FnOnce() -> Result<T, NodeError>,
) -> Result<T, NodeError> {
    let tid = THREAD_IDENT.with(|t| *t);
    {
        let mut phase = ticket.phase();
        if *phase == Phase::Cancelled {
            return Err(NodeError::failed(
                "the call was cancelled before it started",
            ));
        }
        *phase = Phase::Running(tid);
    }
    let result = f();
    let mut phase = ticket.phase();
    if let Phase::Interrupting(tid) = *phase {
        // The call may have returned before the exception was seen: drop it.
        // SAFETY: the GIL is held (`py`); NULL clears this thread's pending exception.
        unsafe { pyo3::ffi::PyThreadState_SetAsyncExc(tid as c_long, std::ptr::null_mut()) };
        ABANDONED.add(-1);
    }
    *phase = Phase::Finished;
    let _ = py;
    result
}

/// A Python node instance.
pub struct PythonNode {
    obj: Arc<Py<PyAny>>,
    node_id: String,
    node_type: String,
    /// The last input sample rate (a numpy array returned from `flush` gets it).
    last_rate: Option<u32>,
    /// Serialises calls into the object: after a timeout the interrupted call may still be
    /// running on its thread, and user code must never run twice at once.
    call_lock: Arc<tokio::sync::Mutex<()>>,
    /// The method of the call holding `call_lock` (or of the last one).
    current: Arc<Mutex<&'static str>>,
    /// This run's `process`/`flush` calls that returned, and how many returned a value.
    returned: (u32, u32),
}

impl PythonNode {
    /// Wraps `obj` as node `node_id` of type `node_type`.
    pub fn new(obj: Py<PyAny>, node_id: &str, node_type: &str) -> Self {
        Self {
            obj: Arc::new(obj),
            node_id: node_id.to_string(),
            node_type: node_type.to_string(),
            last_rate: None,
            call_lock: Arc::new(tokio::sync::Mutex::new(())),
            current: Arc::new(Mutex::new("")),
            returned: (0, 0),
        }
    }

    async fn call(
        &self,
        method: &'static str,
        input: Option<Data>,
        rate: Option<u32>,
    ) -> Result<Option<Data>, NodeError> {
        let serial = match Arc::clone(&self.call_lock).try_lock_owned() {
            Ok(g) => g,
            Err(_) => {
                match tokio::time::timeout(BUSY_GRACE, Arc::clone(&self.call_lock).lock_owned())
                    .await
                {
                    Ok(g) => g,
                    Err(_) => return Err(self.still_running(method)),
                }
            }
        };
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = method;
        let obj = Arc::clone(&self.obj);
        let (id, ty) = (self.node_id.clone(), self.node_type.clone());
        let ticket = Arc::new(Ticket {
            phase: Mutex::new(Phase::Queued),
            task: Mutex::new(None),
        });
        let mut guard = InterruptOnDrop {
            ticket: Arc::clone(&ticket),
            done: false,
        };
        let joined = tokio::task::spawn_blocking(move || {
            let _serial = serial;
            Python::attach(|py| {
                run_ticketed(py, &ticket, || {
                    call_in_python(py, &obj, method, input, rate, &id, &ty, Some(&ticket))
                })
            })
        })
        .await;
        guard.done = true;
        joined.map_err(|e| {
            NodeError::new(
                NodeErrorKind::Failed,
                format!("Python call to {method}() did not complete: {e}"),
            )
        })?
    }

    /// The error of a call that found the object still running an interrupted call.
    fn still_running(&self, method: &str) -> NodeError {
        let previous = *self.current.lock().unwrap_or_else(|p| p.into_inner());
        NodeError::failed(format!(
            "node '{}' ({}): cannot call {method}(): the previous call to {previous}() was \
             interrupted (timeout or cancellation) but is still running after {} ms; it is \
             blocked outside Python code (in C: time.sleep, I/O, a C extension) and stops only \
             when that returns",
            self.node_id,
            self.node_type,
            BUSY_GRACE.as_millis()
        ))
    }
}

static ISCOROUTINE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

thread_local! {
    static EVENT_LOOP: std::cell::OnceCell<Py<PyAny>> = const { std::cell::OnceCell::new() };
}

/// Runs a coroutine to completion on this thread's own event loop (made on first use), as a
/// task the ticket can cancel.
fn run_coroutine<'py>(
    py: Python<'py>,
    coro: Bound<'py, PyAny>,
    ticket: Option<&Ticket>,
) -> PyResult<Bound<'py, PyAny>> {
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
    let event_loop = event_loop.bind(py);
    let task = event_loop.call_method1("create_task", (coro,))?;
    if let Some(t) = ticket {
        *t.task.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((event_loop.clone().unbind(), task.clone().unbind()));
    }
    let result = event_loop.call_method1("run_until_complete", (task,));
    if let Some(t) = ticket {
        t.task.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn call_in_python(
    py: Python<'_>,
    obj: &Py<PyAny>,
    method: &str,
    input: Option<Data>,
    rate: Option<u32>,
    node_id: &str,
    node_type: &str,
    ticket: Option<&Ticket>,
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
            run_coroutine(py, r, ticket)
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
        self.returned = (0, 0);
        self.call("initialize", None, None).await.map(|_| ())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        if let Data::Audio(a) = &input {
            self.last_rate = Some(a.sample_rate());
        }
        let rate = self.last_rate;
        let result = self.call("process", Some(input), rate).await;
        self.count(&result);
        result
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let result = self.call("flush", None, self.last_rate).await;
        self.count(&result);
        result
    }

    async fn stop(&mut self) {
        let (calls, values) = std::mem::take(&mut self.returned);
        if calls > 0 && values == 0 {
            warn_no_output(&self.node_id, &self.node_type, calls);
        }
        let busy = self.call_lock.try_lock().is_err();
        if !busy {
            if let Err(e) = self.call("cleanup", None, None).await {
                warn_cleanup(&self.node_id, &e);
            }
            return;
        }
        // An interrupted call has not returned yet: cleanup() runs once it does (calls into
        // the object never overlap), without holding up the end of this run. A run bounded by
        // `timeout_ms` must not wait for the very call the timeout gave up on.
        let (obj, lock) = (Arc::clone(&self.obj), Arc::clone(&self.call_lock));
        let current = Arc::clone(&self.current);
        let (id, ty) = (self.node_id.clone(), self.node_type.clone());
        // Counted with the interrupted calls: interpreter exit waits for it too.
        ABANDONED.add(1);
        tokio::spawn(async move {
            let serial = lock.lock_owned().await;
            *current.lock().unwrap_or_else(|p| p.into_inner()) = "cleanup";
            let _ = tokio::task::spawn_blocking(move || {
                let _serial = serial;
                let result = Python::attach(|py| {
                    call_in_python(py, &obj, "cleanup", None, None, &id, &ty, None)
                });
                if let Err(e) = result {
                    warn_cleanup(&id, &e);
                }
            })
            .await;
            ABANDONED.add(-1);
        });
    }

    fn runtime(&self) -> Runtime {
        Runtime::Host("python")
    }
}

impl PythonNode {
    fn count(&mut self, result: &Result<Option<Data>, NodeError>) {
        if let Ok(value) = result {
            self.returned.0 += 1;
            self.returned.1 += u32::from(value.is_some());
        }
    }
}

/// A node whose every `process`/`flush` call of a run returned `None` passed nothing on: the
/// run's result is empty or lacks its part. Logged once per run at warn (a server's or the
/// CLI's log; a local `Pipeline.run` with no output also gets a Python `RuntimeWarning`
/// naming the sinks, from the Python side).
fn warn_no_output(node_id: &str, node_type: &str, calls: u32) {
    tracing::warn!(
        node_id,
        node_type,
        "node '{node_id}' ({node_type}) returned None from all {calls} of its \
         process()/flush() calls in this run, so it passed nothing on; return the value to \
         pass on (a node kept only for its side effects may ignore this)"
    );
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
