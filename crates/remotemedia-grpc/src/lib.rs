//! remotemedia over gRPC: a tonic server that runs v1 manifests (`Execute`, `Stream`,
//! `ListNodes`, `GetVersion`, health, optional reflection), a Rust client, and
//! `RemotePipelineNode` (a sub-pipeline on another server as one local node).
//!
//! The protocol is `proto/remotemedia/v1/remotemedia.proto` (package `remotemedia.v1`).
#![warn(missing_docs)]

pub mod cache;
pub mod client;
pub mod config;
pub mod convert;
pub mod remote_node;
pub mod retry;
pub mod server;
pub mod status;
pub mod telemetry;

/// Generated protobuf and gRPC code for `remotemedia.v1`.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("remotemedia.v1");

    /// The encoded file descriptor set of the proto (for server reflection).
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/remotemedia_descriptor.bin"));
}

pub use client::{ClientError, RemoteClient, RemoteRun, RemoteStream};
pub use config::ServerConfig;
pub use server::{serve, termination_signal, ServeError, ServerParts};
pub use telemetry::Telemetry;
