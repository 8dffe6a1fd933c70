//! The core's error types: [`NodeError`] (what a node reports) and [`ExecutorError`] (what a
//! pipeline run reports, always naming the node). Bindings map `ExecutorError` once, at their
//! boundary (Python exceptions, gRPC status codes).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::manifest::ManifestError;

/// What went wrong inside a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeErrorKind {
    /// The node was given data it cannot handle (wrong type, rate, channel count...).
    InvalidInput,
    /// The node's work failed.
    Failed,
    /// The node panicked; the panic was contained.
    Panicked,
    /// The node did not finish within its `timeout_ms`.
    Timeout,
    /// The node raised an exception in a host language (e.g. Python).
    Host {
        /// The host language's name, e.g. `"Python"`.
        host: &'static str,
        /// The exception's type name, e.g. `ValueError`.
        exc_type: String,
        /// The formatted traceback, when the host provides one.
        traceback: Option<String>,
    },
}

/// What is wrong with a node's input: one kind per rule, each with one message template
/// (pydantic-core's idea: an error is a kind plus its context, rendered once). A message never
/// names the node: whoever reports the error (the executor, a standalone node call) names it
/// once, in front.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// A fan-in value where a node takes one input.
    #[error("takes exactly one audio input, got {got}; connect a single upstream node")]
    OneInput {
        /// What arrived (see [`Data::describe`](crate::data::Data::describe)).
        got: String,
    },
    /// A host-language value (a Python list, say) where audio was meant.
    #[error(
        "expected audio, got {got}; give audio as a numpy array (frames, or frames x channels) \
         with its sample rate, or an Audio"
    )]
    HostValueNotAudio {
        /// What arrived.
        got: String,
    },
    /// Some other value where audio was meant.
    #[error("expected audio, got {got}")]
    NotAudio {
        /// What arrived.
        got: String,
    },
    /// A sample rate outside what the runtime supports.
    #[error(
        "input sample rate {rate} Hz is outside the supported {}..={} Hz",
        crate::data::MIN_SAMPLE_RATE,
        crate::data::MAX_SAMPLE_RATE
    )]
    RateOutOfRange {
        /// The input's rate.
        rate: u32,
    },
    /// A stream's rate changed between chunks.
    #[error(
        "sample rate changed mid-stream from {from} Hz to {to} Hz; a stream must keep one rate"
    )]
    RateChanged {
        /// The stream's rate.
        from: u32,
        /// This chunk's rate.
        to: u32,
    },
    /// A stream's channel count changed between chunks.
    #[error("channel count changed mid-stream from {from} to {to}; a stream must keep one layout")]
    ChannelsChanged {
        /// The stream's channel count.
        from: u16,
        /// This chunk's.
        to: u16,
    },
    /// A stream's sample format changed between chunks.
    #[error("sample format changed mid-stream from {from} to {to}")]
    FormatChanged {
        /// The stream's format (`f32`, `i16`, ...).
        from: &'static str,
        /// This chunk's.
        to: &'static str,
    },
    /// A NaN or infinite sample where the node needs finite audio.
    #[error(
        "input sample {index} (interleaved index in this chunk) is {value}; audio must be finite \
         (no NaN or infinity)"
    )]
    NotFinite {
        /// Interleaved index in the chunk.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A frequency parameter at or above the input's Nyquist frequency.
    #[error("params.{field} {hz} Hz must be below Nyquist ({} Hz for {rate} Hz input)", *rate as f64 / 2.0)]
    AboveNyquist {
        /// The parameter.
        field: &'static str,
        /// Its value.
        hz: f64,
        /// The input's rate.
        rate: u32,
    },
    /// A node's own rule (the message says which and what is valid).
    #[error("{0}")]
    Rule(String),
}

impl InputError {
    /// The kind's stable name (`"sample_rate_changed"`, ...), for programs: Python's
    /// `NodeError.kind`, the gRPC status details.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OneInput { .. } => "one_input",
            Self::HostValueNotAudio { .. } | Self::NotAudio { .. } => "not_audio",
            Self::RateOutOfRange { .. } => "sample_rate_out_of_range",
            Self::RateChanged { .. } => "sample_rate_changed",
            Self::ChannelsChanged { .. } => "channels_changed",
            Self::FormatChanged { .. } => "sample_format_changed",
            Self::NotFinite { .. } => "not_finite",
            Self::AboveNyquist { .. } => "above_nyquist",
            Self::Rule(_) => "node_rule",
        }
    }
}

impl From<InputError> for NodeError {
    fn from(e: InputError) -> Self {
        NodeError::input(e)
    }
}

/// An error reported by a node. Cheap to clone (one pointer).
#[derive(Clone)]
pub struct NodeError {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: NodeErrorKind,
    message: String,
    input: Option<InputError>,
    retryable: bool,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    payload: Option<Arc<dyn Any + Send + Sync>>,
}

impl NodeError {
    /// A non-retryable failure.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(NodeErrorKind::Failed, message)
    }

    /// A failure worth retrying (transient: network, timeouts, busy resources).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::new(NodeErrorKind::Failed, message).with_retryable(true)
    }

    /// The node cannot handle what it was given: a node's own rule, in words (prefer
    /// [`input`](Self::input) with a specific [`InputError`] kind).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::input(InputError::Rule(message.into()))
    }

    /// The node cannot handle what it was given, as a kind with its context.
    pub fn input(e: InputError) -> Self {
        Self::new(NodeErrorKind::InvalidInput, e.to_string()).edit(|i| i.input = Some(e))
    }

    /// An error of any kind.
    pub fn new(kind: NodeErrorKind, message: impl Into<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                kind,
                message: message.into(),
                input: None,
                retryable: false,
                source: None,
                payload: None,
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Inner)) -> Self {
        f(Arc::make_mut(&mut self.inner));
        self
    }

    /// Marks the error as retryable (or not).
    pub fn with_retryable(self, retryable: bool) -> Self {
        self.edit(|i| i.retryable = retryable)
    }

    /// Attaches the underlying cause.
    pub fn with_source(self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.edit(|i| i.source = Some(Arc::new(source)))
    }

    /// Attaches a host-specific payload (e.g. the original Python exception object) that a
    /// binding can recover with [`payload`](Self::payload) to re-raise it unchanged.
    pub fn with_payload(self, payload: Arc<dyn Any + Send + Sync>) -> Self {
        self.edit(|i| i.payload = Some(payload))
    }

    /// The kind of failure.
    pub fn kind(&self) -> &NodeErrorKind {
        &self.inner.kind
    }

    /// The input problem, when the node refused its input.
    pub fn input_error(&self) -> Option<&InputError> {
        self.inner.input.as_ref()
    }

    /// A stable name for what went wrong: the [`InputError::kind`] for refused input, else
    /// `"failed"`, `"panicked"`, `"timeout"` or `"host_exception"`.
    pub fn kind_name(&self) -> &'static str {
        match (&self.inner.kind, &self.inner.input) {
            (_, Some(e)) => e.kind(),
            (NodeErrorKind::InvalidInput, None) => "invalid_input",
            (NodeErrorKind::Failed, None) => "failed",
            (NodeErrorKind::Panicked, None) => "panicked",
            (NodeErrorKind::Timeout, None) => "timeout",
            (NodeErrorKind::Host { .. }, None) => "host_exception",
        }
    }

    /// The message (without the node's name; [`ExecutorError`] or the binding adds it).
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// Whether the retry policy may try again.
    pub fn is_retryable(&self) -> bool {
        self.inner.retryable
    }

    /// The host payload, if any.
    pub fn payload(&self) -> Option<&Arc<dyn Any + Send + Sync>> {
        self.inner.payload.as_ref()
    }

    /// For host-language errors, the exception's type name (e.g. `ValueError`).
    pub fn exc_type(&self) -> Option<&str> {
        match &self.inner.kind {
            NodeErrorKind::Host { exc_type, .. } => Some(exc_type),
            _ => None,
        }
    }
}

impl fmt::Debug for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("NodeError")
            .field("kind", &i.kind)
            .field("message", &i.message)
            .field("retryable", &i.retryable)
            .field("source", &i.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        match &i.kind {
            NodeErrorKind::Host { exc_type, .. } => write!(f, "{exc_type}: {}", i.message),
            NodeErrorKind::Panicked => write!(f, "panicked: {}", i.message),
            _ => f.write_str(&i.message),
        }
    }
}

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

fn attempts_suffix(attempts: u32) -> String {
    if attempts > 1 {
        format!(" (after {attempts} attempts)")
    } else {
        String::new()
    }
}

/// An error from building or running a pipeline.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExecutorError {
    /// The manifest is invalid (graph problems included); lists every problem found.
    #[error(transparent)]
    ManifestError(#[from] ManifestError),

    /// A node failed (a native error, a panic, or bad input).
    #[error("node '{node_id}' ({node_type}) failed: {source}{}", attempts_suffix(*attempts))]
    NodeError {
        /// The node's id.
        node_id: String,
        /// The node's type.
        node_type: String,
        /// How many attempts were made.
        attempts: u32,
        /// The node's own error.
        #[source]
        source: NodeError,
    },

    /// A node written in the host language (a Python node, say) raised an exception.
    #[error("{} exception in node '{node_id}' ({node_type}): {}: {message}{}", host_name(source), source.exc_type().unwrap_or("Exception"), attempts_suffix(*attempts))]
    HostError {
        /// The node's id.
        node_id: String,
        /// The node's type.
        node_type: String,
        /// The exception message (its type is `source.exc_type()`).
        message: String,
        /// The formatted traceback, when available.
        traceback: Option<String>,
        /// How many attempts were made.
        attempts: u32,
        /// The node error carrying the original exception as payload.
        #[source]
        source: NodeError,
    },

    /// A retryable error persisted through every attempt the retry policy allows.
    #[error(
        "node '{node_id}' ({node_type}) failed after {attempts}/{max_attempts} attempts: {message}"
    )]
    RetriesExhausted {
        /// The node's id.
        node_id: String,
        /// The node's type.
        node_type: String,
        /// The last error's message.
        message: String,
        /// Attempts made.
        attempts: u32,
        /// Attempts allowed.
        max_attempts: u32,
        /// The last error.
        #[source]
        source: NodeError,
    },

    /// The node's circuit breaker is open: it failed repeatedly and calls are refused for now.
    #[error("circuit breaker open for node '{node_id}' ({node_type}) after {consecutive_failures} consecutive failures; retry in {retry_after_ms} ms")]
    CircuitOpen {
        /// The node's id.
        node_id: String,
        /// The node's type.
        node_type: String,
        /// Failures that opened the breaker.
        consecutive_failures: u32,
        /// Time until the breaker half-opens.
        retry_after_ms: u64,
    },

    /// A node exceeded its `timeout_ms`.
    #[error("node '{node_id}' ({node_type}) timed out after {timeout_ms} ms{}", attempts_suffix(*attempts))]
    Timeout {
        /// The node's id.
        node_id: String,
        /// The node's type.
        node_type: String,
        /// The per-call limit.
        timeout_ms: u64,
        /// How many attempts were made.
        attempts: u32,
    },

    /// A node call, a run or its output would be larger than a
    /// [`ResourceLimits`](crate::executor::ResourceLimits) allows; refused before the node
    /// allocated anything. The message names the node, the limit and what to do.
    #[error("{message}")]
    LimitExceeded {
        /// The node whose call was refused (none for a limit on the run's input).
        node_id: Option<String>,
        /// Its type.
        node_type: Option<String>,
        /// The limit's setting name (`max_call_bytes`, `max_run_bytes`, `max_output_bytes`,
        /// `max_run_input_secs`).
        limit: &'static str,
        /// The limit's value (bytes, or seconds).
        max: u64,
        /// What was asked for (same unit).
        requested: u64,
        /// The full explanation.
        message: String,
    },

    /// Another run or session is using this pipeline instance.
    #[error("pipeline '{pipeline}' is already running a session; finish it first or build another pipeline")]
    Busy {
        /// The pipeline's name.
        pipeline: String,
    },

    /// The session was used after it failed or finished.
    #[error("session is closed: {reason}")]
    SessionClosed {
        /// Why (the first error, or "finished").
        reason: String,
    },

    /// A pipeline running in another process (a remotemedia server) failed or refused the
    /// call. `code` is the remote side's [`ExecutorError::code`] when it sent one, else
    /// `"transport"` (the call never reached a pipeline: connection, auth, load, shutdown).
    #[error("{message}")]
    Remote {
        /// The remote error code ("manifest", "timeout", ..., or "transport").
        code: String,
        /// The transport's own status name (a gRPC code such as "Unavailable").
        status: String,
        /// The remote side's message.
        message: String,
        /// The node concerned, when the remote side named one.
        node_id: Option<String>,
        /// The node error's kind ([`NodeError::kind_name`]), when the remote side sent one.
        kind: Option<String>,
    },

    /// A named input (a key of a [`Data::Map`](crate::data::Data::Map) given to a pipeline with
    /// several source nodes) that is not one of its sources.
    #[error("{message}")]
    UnknownInput {
        /// The name given.
        name: String,
        /// The pipeline's inputs (its source node ids).
        inputs: Vec<String>,
        /// The full explanation, with the closest input's name when one is close.
        message: String,
    },

    /// Something that should not happen did (a node task ended abnormally); a bug to report.
    #[error("internal error: {message}")]
    Internal {
        /// What happened.
        message: String,
    },
}

impl ExecutorError {
    /// [`ExecutorError::UnknownInput`] for `name`, with the pipeline's `inputs` and the closest
    /// of them when one is close.
    pub fn unknown_input(name: &str, inputs: Vec<String>) -> Self {
        let hint = crate::text::closest(name, inputs.iter().map(String::as_str))
            .map(|c| format!("; did you mean '{c}'?"))
            .unwrap_or_default();
        Self::UnknownInput {
            message: format!(
                "unknown input '{name}' (this pipeline's inputs, its source nodes, are: {}){hint}",
                inputs.join(", ")
            ),
            name: name.to_string(),
            inputs,
        }
    }
}

fn host_name(e: &NodeError) -> &str {
    match e.kind() {
        NodeErrorKind::Host { host, .. } => host,
        _ => "host",
    }
}

impl ExecutorError {
    /// The node this error is about, when there is one.
    pub fn node_id(&self) -> Option<&str> {
        match self {
            Self::NodeError { node_id, .. }
            | Self::HostError { node_id, .. }
            | Self::RetriesExhausted { node_id, .. }
            | Self::CircuitOpen { node_id, .. }
            | Self::Timeout { node_id, .. } => Some(node_id),
            Self::Remote { node_id, .. } | Self::LimitExceeded { node_id, .. } => {
                node_id.as_deref()
            }
            Self::ManifestError(m) => m.issues().first().and_then(|i| i.node_id.as_deref()),
            _ => None,
        }
    }

    /// The node's type, when the error is about one node.
    pub fn node_type(&self) -> Option<&str> {
        match self {
            Self::NodeError { node_type, .. }
            | Self::HostError { node_type, .. }
            | Self::RetriesExhausted { node_type, .. }
            | Self::CircuitOpen { node_type, .. }
            | Self::Timeout { node_type, .. } => Some(node_type),
            Self::LimitExceeded { node_type, .. } => node_type.as_deref(),
            _ => None,
        }
    }

    /// A stable machine-readable code: `manifest`, `invalid_input`, `node`, `host`,
    /// `retries_exhausted`, `circuit_open`, `timeout`, `limit`, `busy`, `session_closed`,
    /// `internal`,
    /// or for [`ExecutorError::Remote`] the remote side's code (or `transport`). Bindings pick
    /// their exception class from it, for local and remote errors alike.
    pub fn code(&self) -> &str {
        match self {
            Self::ManifestError(_) => "manifest",
            Self::NodeError { source, .. } if *source.kind() == NodeErrorKind::InvalidInput => {
                "invalid_input"
            }
            Self::NodeError { .. } => "node",
            Self::HostError { .. } => "host",
            Self::RetriesExhausted { .. } => "retries_exhausted",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::Timeout { .. } => "timeout",
            Self::LimitExceeded { .. } => "limit",
            Self::Busy { .. } => "busy",
            Self::SessionClosed { .. } => "session_closed",
            Self::Remote { code, .. } => code,
            Self::UnknownInput { .. } => "unknown_input",
            Self::Internal { .. } => "internal",
        }
    }

    /// What went wrong in the node, as a stable name ([`NodeError::kind_name`]: an
    /// [`InputError`] kind such as `"sample_rate_changed"`, or `"failed"`, ...), local or
    /// remote; `None` for errors that are not a node's.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Self::Remote { kind, .. } => kind.as_deref(),
            _ => self.node_error().map(NodeError::kind_name),
        }
    }

    /// The node error underneath, when there is one.
    pub fn node_error(&self) -> Option<&NodeError> {
        match self {
            Self::NodeError { source, .. }
            | Self::HostError { source, .. }
            | Self::RetriesExhausted { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Extracts the message from a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}
