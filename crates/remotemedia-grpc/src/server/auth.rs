//! Bearer-token authentication, checked by an interceptor before a request body is read.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::telemetry::Telemetry;

/// Checks `authorization: Bearer <token>` before a request body is read.
#[derive(Clone)]
pub struct Auth {
    pub(super) tokens: Arc<Vec<String>>,
    pub(super) telemetry: Arc<Telemetry>,
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Interceptor for Auth {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        if self.tokens.is_empty() {
            return Ok(req);
        }
        let presented = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match presented {
            Some(p)
                if self
                    .tokens
                    .iter()
                    .any(|t| constant_time_eq(t.as_bytes(), p.as_bytes())) =>
            {
                Ok(req)
            }
            _ => {
                self.telemetry
                    .rejected
                    .with_label_values(&["unauthenticated"])
                    .inc();
                Err(Status::unauthenticated(
                    "missing or invalid bearer token; send the metadata `authorization: Bearer <token>`",
                ))
            }
        }
    }
}
