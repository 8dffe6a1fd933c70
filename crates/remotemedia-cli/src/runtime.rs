//! The commands' async runtime, whose drop waits a bounded grace for node calls still
//! running.

use anyhow::{Context, Result};

/// When a command ends, how long it waits for node calls still running (a Python call being
/// interrupted, or blocked in C) before it returns regardless.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// A multi-thread runtime whose drop waits at most [`SHUTDOWN_GRACE`] for blocking calls.
/// Dropping a plain runtime waits for every one of them for as long as it runs: a Python node
/// call blocked in C (`time.sleep`) after its timeout would hold the command's exit.
pub(crate) struct BoundedRuntime(Option<tokio::runtime::Runtime>);

impl BoundedRuntime {
    pub(crate) fn new(worker_threads: Option<usize>) -> Result<Self> {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = worker_threads {
            b.worker_threads(n);
        }
        let rt = b
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(Self(Some(rt)))
    }
}

impl std::ops::Deref for BoundedRuntime {
    type Target = tokio::runtime::Runtime;
    fn deref(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("live until dropped")
    }
}

impl Drop for BoundedRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_timeout(SHUTDOWN_GRACE);
        }
    }
}
