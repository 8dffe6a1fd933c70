//! The one mapping from core errors to gRPC statuses, and back (for the client).

use remotemedia_core::error::{ExecutorError, NodeErrorKind};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// Metadata key naming the node an error is about.
pub const NODE_ID_KEY: &str = "remotemedia-node-id";
/// Metadata key with `ExecutorError::code()` (e.g. "manifest", "circuit_open").
pub const ERROR_CODE_KEY: &str = "remotemedia-error-code";
/// Metadata key with `ExecutorError::kind()` (e.g. "sample_rate_changed", "failed").
pub const ERROR_KIND_KEY: &str = "remotemedia-error-kind";

/// The gRPC code for an executor error.
pub fn code_of(e: &ExecutorError) -> Code {
    match e {
        ExecutorError::ManifestError(_) | ExecutorError::UnknownInput { .. } => {
            Code::InvalidArgument
        }
        ExecutorError::NodeError { source, .. }
            if *source.kind() == NodeErrorKind::InvalidInput =>
        {
            Code::InvalidArgument
        }
        ExecutorError::NodeError { .. }
        | ExecutorError::HostError { .. }
        | ExecutorError::Internal { .. } => Code::Internal,
        ExecutorError::RetriesExhausted { .. } | ExecutorError::CircuitOpen { .. } => {
            Code::Unavailable
        }
        // A sub-pipeline on another server failed: pass its code on where it is one of ours.
        ExecutorError::Remote { code, .. } => match code.as_str() {
            "manifest" | "invalid_input" | "input" | "unknown_input" => Code::InvalidArgument,
            "timeout" => Code::DeadlineExceeded,
            "limit" => Code::ResourceExhausted,
            "transport" | "circuit_open" | "retries_exhausted" => Code::Unavailable,
            _ => Code::Internal,
        },
        ExecutorError::Timeout { .. } => Code::DeadlineExceeded,
        ExecutorError::Busy { .. } | ExecutorError::LimitExceeded { .. } => Code::ResourceExhausted,
        ExecutorError::SessionClosed { .. } => Code::FailedPrecondition,
    }
}

/// An executor error as a status: its message, code, and the node id and error code as
/// metadata.
pub fn to_status(e: &ExecutorError) -> Status {
    let message = match e {
        // Name the server's setting too: the core's names are those of `ResourceLimits`.
        ExecutorError::LimitExceeded { limit, .. } => {
            let setting = match *limit {
                "max_output_bytes" => {
                    "max_message_bytes; sink outputs get it less 1/64 (at most 64 KiB) kept for \
                     ids and metrics"
                }
                other => other,
            };
            format!("{e} (server setting: [limits] {setting})")
        }
        _ => e.to_string(),
    };
    let mut status = Status::new(code_of(e), message);
    let md = status.metadata_mut();
    if let Ok(v) = MetadataValue::try_from(e.code()) {
        md.insert(ERROR_CODE_KEY, v);
    }
    if let Some(id) = e.node_id() {
        if let Ok(v) = MetadataValue::try_from(id) {
            md.insert(NODE_ID_KEY, v);
        }
    }
    if let Some(kind) = e.kind() {
        if let Ok(v) = MetadataValue::try_from(kind) {
            md.insert(ERROR_KIND_KEY, v);
        }
    }
    status
}

/// A malformed request field.
pub fn invalid(message: impl Into<String>) -> Status {
    let mut s = Status::invalid_argument(message);
    s.metadata_mut()
        .insert(ERROR_CODE_KEY, MetadataValue::from_static("input"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use remotemedia_core::{NodeError, Pipeline};

    #[test]
    fn manifest_errors_are_invalid_argument_with_node_metadata() {
        let err = Pipeline::from_json(
            r#"{"version": "v1", "nodes": [{"id": "r", "node_type": "AudioResampleNode", "params": {"target_rate": 1}}]}"#,
            &remotemedia_nodes::builtin_registry(),
        )
        .err()
        .unwrap();
        let s = to_status(&err);
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(s
            .message()
            .contains("node 'r' (AudioResampleNode): params.target_rate"));
        assert_eq!(s.metadata().get(NODE_ID_KEY).unwrap(), "r");
        assert_eq!(s.metadata().get(ERROR_CODE_KEY).unwrap(), "manifest");
    }

    #[test]
    fn node_failures_breaker_and_timeouts() {
        let node = |source: NodeError| ExecutorError::NodeError {
            node_id: "n".into(),
            node_type: "T".into(),
            attempts: 1,
            source,
        };
        assert_eq!(code_of(&node(NodeError::failed("x"))), Code::Internal);
        assert_eq!(
            code_of(&node(NodeError::invalid_input("x"))),
            Code::InvalidArgument
        );
        let open = ExecutorError::CircuitOpen {
            node_id: "n".into(),
            node_type: "T".into(),
            consecutive_failures: 5,
            retry_after_ms: 10,
        };
        assert_eq!(code_of(&open), Code::Unavailable);
        let t = ExecutorError::Timeout {
            node_id: "n".into(),
            node_type: "T".into(),
            timeout_ms: 5,
            attempts: 1,
        };
        assert_eq!(code_of(&t), Code::DeadlineExceeded);
    }
}
