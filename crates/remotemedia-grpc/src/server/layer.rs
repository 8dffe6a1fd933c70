//! A tower layer around the service that counts the calls tonic refuses before a handler
//! runs (a request message over `limits.max_message_bytes`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tonic::Status;

use crate::telemetry::Telemetry;

/// `remotemedia_rejected_total` reason of a message over `limits.max_message_bytes`.
pub(super) const MESSAGE_SIZE: &str = "message_size";

/// Whether `status` is tonic's refusal of a message over the decoding limit.
pub(super) fn is_message_size_refusal(status: &Status) -> bool {
    status.code() == tonic::Code::OutOfRange
        && status.message().contains("message length too large")
}

/// Counts the calls tonic refuses before our handler runs because their request message is
/// over `limits.max_message_bytes` (an `Execute` with too large an input): their status is
/// in the response headers (a trailers-only response). Streams' refusals are counted where
/// the handler reads the message.
#[derive(Clone)]
pub(super) struct CountRefused<S> {
    pub(super) inner: S,
    pub(super) telemetry: Arc<Telemetry>,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for CountRefused<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, R, B> tonic::codegen::Service<R> for CountRefused<S>
where
    S: tonic::codegen::Service<R, Response = tonic::codegen::http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let response = self.inner.call(request);
        let telemetry = Arc::clone(&self.telemetry);
        Box::pin(async move {
            let response = response.await?;
            if Status::from_header_map(response.headers())
                .is_some_and(|s| is_message_size_refusal(&s))
            {
                telemetry.rejected.with_label_values(&[MESSAGE_SIZE]).inc();
            }
            Ok(response)
        })
    }
}
