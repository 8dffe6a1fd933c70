//! `RemotePipelineNode`: runs a sub-pipeline on a remote server as one node of a local
//! pipeline, streaming chunks through it.
//!
//! Registered for local pipelines (CLI, Python); a server does not offer it to its clients by
//! default, since it would let a manifest make the server connect anywhere.

use std::sync::Arc;

use async_trait::async_trait;
use remotemedia_core::data::Data;
use remotemedia_core::error::NodeError;
use remotemedia_core::executor::{SinkCollector, SinkOutput};
use remotemedia_core::node::{Node, Runtime};
use remotemedia_core::registry::{NodeParams, NodeRegistry, ParamIssue, TypedFactory};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::client::{ClientError, RemoteClient, RemoteStream};

/// Parameters of `RemotePipelineNode`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemotePipelineParams {
    /// The server, `host:port` (or an `http://` / `https://` URI).
    pub address: String,
    /// The sub-pipeline's v1 manifest (an object).
    pub manifest: serde_json::Value,
    /// Name of an environment variable holding the bearer token, if the server needs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
}

impl NodeParams for RemotePipelineParams {
    fn check(&self) -> Vec<ParamIssue> {
        let mut issues = Vec::new();
        if self.address.trim().is_empty() {
            issues.push(ParamIssue::new("address", "is empty; expected host:port"));
        }
        if !self.manifest.is_object() {
            issues.push(ParamIssue::new(
                "manifest",
                "expected a v1 manifest object (with version, nodes, connections)",
            ));
        } else if let Err(e) = remotemedia_core::manifest::from_value(self.manifest.clone()) {
            issues.push(ParamIssue::new("manifest", e.to_string()));
        }
        issues
    }
}

/// Registers `RemotePipelineNode`.
pub fn register(registry: &mut NodeRegistry) {
    registry.register(Arc::new(TypedFactory::new(
        "RemotePipelineNode",
        "Runs a sub-pipeline (`manifest`) on the remotemedia server at `address`, streaming \
         each chunk through it. Emits the sub-pipeline's output (a dict by sink id when it has \
         several sinks).",
        |_, p: RemotePipelineParams| Box::new(RemotePipelineNode::new(p)),
    )));
}

/// A node whose work runs on another server.
pub struct RemotePipelineNode {
    params: RemotePipelineParams,
    manifest: String,
    stream: Option<RemoteStream>,
}

impl RemotePipelineNode {
    /// Builds the node (it connects at the first chunk).
    pub fn new(params: RemotePipelineParams) -> Self {
        let manifest = params.manifest.to_string();
        Self {
            params,
            manifest,
            stream: None,
        }
    }

    fn error(&self, e: ClientError) -> NodeError {
        let retryable = match &e {
            ClientError::Connect { .. } => true,
            ClientError::Status {
                code, error_code, ..
            } => {
                error_code.as_deref() != Some("limit")
                    && matches!(
                        code,
                        tonic::Code::Unavailable
                            | tonic::Code::ResourceExhausted
                            | tonic::Code::DeadlineExceeded
                    )
            }
            ClientError::Protocol(_) => false,
        };
        NodeError::failed(format!("remote pipeline at {}: {e}", self.params.address))
            .with_retryable(retryable)
    }

    async fn stream(&mut self) -> Result<&mut RemoteStream, NodeError> {
        if self.stream.is_none() {
            let token = self
                .params
                .token_env
                .as_deref()
                .and_then(|name| std::env::var(name).ok());
            let mut client = RemoteClient::connect(&self.params.address, token)
                .await
                .map_err(|e| self.error(e))?;
            let stream = client
                .open_stream(&self.manifest)
                .await
                .map_err(|e| self.error(e))?;
            self.stream = Some(stream);
        }
        Ok(self.stream.as_mut().expect("opened above"))
    }

    fn combine(&self, outputs: Vec<SinkOutput>, sinks: &[String]) -> Option<Data> {
        if outputs.is_empty() {
            return None;
        }
        let mut collected = SinkCollector::default();
        collected.extend(outputs);
        let by_sink = collected.finish();
        if sinks.len() <= 1 {
            return by_sink.into_values().next();
        }
        Some(Data::Map(by_sink))
    }
}

#[async_trait]
impl Node for RemotePipelineNode {
    async fn start(&mut self) -> Result<(), NodeError> {
        self.stream = None;
        Ok(())
    }

    async fn process(&mut self, input: Data) -> Result<Option<Data>, NodeError> {
        let stream = self.stream().await?;
        let outputs = stream.push(&input).await;
        let sinks = stream.sink_ids.clone();
        let outputs = outputs.map_err(|e| {
            self.stream = None;
            self.error(e)
        })?;
        Ok(self.combine(outputs, &sinks))
    }

    async fn flush(&mut self) -> Result<Option<Data>, NodeError> {
        let Some(mut stream) = self.stream.take() else {
            return Ok(None);
        };
        let sinks = stream.sink_ids.clone();
        let outputs = stream.finish().await.map_err(|e| self.error(e))?;
        Ok(self.combine(outputs, &sinks))
    }

    async fn stop(&mut self) {
        self.stream = None;
    }

    fn runtime(&self) -> Runtime {
        Runtime::Remote
    }
}
