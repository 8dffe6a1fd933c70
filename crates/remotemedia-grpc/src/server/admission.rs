//! Admission: where the server is in its life ([`Phase`]) and the concurrency permits; a
//! call is refused at once while draining or when every permit is taken.

use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;
use tonic::Status;

use super::Service;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Taking calls.
    Serving,
    /// Shutting down: new calls are refused; open streams may finish.
    Draining,
    /// Open streams are being closed.
    Closing,
}

impl Service {
    pub(super) fn admit(&self, rpc: &'static str) -> Result<OwnedSemaphorePermit, Status> {
        let t = &self.shared.telemetry;
        t.requests.with_label_values(&[rpc]).inc();
        if *self.shared.phase.borrow() != Phase::Serving {
            t.rejected.with_label_values(&["draining"]).inc();
            return Err(Status::unavailable(
                "the server is shutting down; retry on another replica",
            ));
        }
        Arc::clone(&self.shared.permits)
            .try_acquire_owned()
            .map_err(|_| {
                t.rejected.with_label_values(&["overloaded"]).inc();
                Status::resource_exhausted(format!(
                    "the server is running its limit of {} calls; retry later",
                    self.shared.config.limits.max_concurrent
                ))
            })
    }
}
