//! Server configuration (`server.toml`). Every limit has a documented default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Environment variable holding bearer tokens (comma-separated), added to the config's.
pub const TOKENS_ENV: &str = "REMOTEMEDIA_TOKENS";

/// The server configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to serve gRPC on.
    pub listen: SocketAddr,
    /// Address to serve Prometheus metrics on (`GET /metrics`); none by default.
    pub metrics_listen: Option<SocketAddr>,
    /// Serve gRPC server reflection (off by default).
    pub reflection: bool,
    /// Authentication.
    pub auth: AuthConfig,
    /// Limits.
    pub limits: Limits,
    /// Python node types a manifest may name: `name = "package.module:Class"`. Only the
    /// Python package's `remotemedia serve` can load them; a manifest can never make the
    /// server import anything else.
    pub python_nodes: BTreeMap<String, String>,
    /// Where `python_nodes` run when a manifest does not say (`"isolation"`): "process"
    /// (default: each in a worker process, so a crash in one, a segfault in a C extension,
    /// fails that call only and the server goes on) or "none" (in the server's process).
    pub python_isolation: remotemedia_core::manifest::Isolation,
}

/// Bearer-token authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Accepted tokens. With none (and no `REMOTEMEDIA_TOKENS`), calls need no token.
    pub tokens: Vec<String>,
}

/// Limits that keep one client from taking the server down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request or response message, in bytes. Default 4 MiB.
    pub max_message_bytes: usize,
    /// Longest `Execute` call, in ms (a shorter client deadline wins). Default 30000.
    pub deadline_ms: u64,
    /// Calls (executions plus open streams) at once; more get RESOURCE_EXHAUSTED. Default 64.
    pub max_concurrent: usize,
    /// Responses a stream may buffer before it stops reading input (HTTP/2 flow control does
    /// the rest). Default 16.
    pub stream_buffer: usize,
    /// A stream that sends no message, or takes no response while its buffer is full, for
    /// this long is closed, in ms. Default 30000.
    pub stream_idle_timeout_ms: u64,
    /// On shutdown, how long open streams may finish before they are closed, in ms. Default 5000.
    pub drain_ms: u64,
    /// On shutdown, how long the server goes on taking new calls while its health already
    /// reports NOT_SERVING, in ms, before `drain_ms` starts: a load balancer's health check
    /// needs this long to take the replica out, and calls it sends meanwhile still succeed.
    /// Default 0 (refuse new calls at once).
    pub shutdown_grace_ms: u64,
    /// Most bytes one node call may allocate (its output and working buffers, stated by the
    /// node before it runs); a bigger call fails with RESOURCE_EXHAUSTED naming the node.
    /// Default 268435456 (256 MiB).
    pub max_call_bytes: u64,
    /// Most bytes all node calls of one `Execute` (or one streamed chunk) may allocate
    /// together. Default 1073741824 (1 GiB).
    pub max_run_bytes: u64,
    /// Longest `Execute` input, in seconds of audio; longer input must be streamed.
    /// Default 600.
    pub max_run_input_secs: f64,
    /// Longest `Stream` call, in ms from `open`; then it ends with DEADLINE_EXCEEDED saying
    /// how many chunks were processed. Default 3600000 (one hour).
    pub max_stream_duration_ms: u64,
    /// Built pipelines kept (least recently used go first), so a manifest is validated once
    /// and its nodes' circuit breakers see every call. 0 turns caching off. Default 64.
    pub pipeline_cache_size: usize,
    /// A node call that runs longer than this many ms fails with DEADLINE_EXCEEDED (and a
    /// Python node's call is interrupted), for nodes whose manifest gives no `timeout_ms` of
    /// its own; 0 turns the default off. Execute calls also have `deadline_ms`; this bounds
    /// each chunk of a stream. Default 30000.
    pub node_timeout_ms: u64,
    /// Client connections open at once; a connection over it is closed at once and logged.
    /// Lowered at start to the fd limit (`ulimit -n`) less 64 if that is smaller.
    /// Default 1000.
    pub max_connections: usize,
    /// A new connection must send the HTTP/2 preface within this many ms, else it is closed
    /// (a socket that sends nothing holds no fd for longer). Default 10000.
    pub handshake_timeout_ms: u64,
    /// A connection with no call in progress for this many ms is closed (clients reconnect
    /// on their next call). Default 300000 (5 minutes).
    pub connection_idle_timeout_ms: u64,
    /// The server pings each connection (HTTP/2 PING) after this many ms without traffic, and
    /// closes it if the answer takes over `keepalive_timeout_ms`: a client that vanished
    /// without closing its socket frees its streams. 0 turns pings off. Default 30000.
    pub keepalive_interval_ms: u64,
    /// See `keepalive_interval_ms`. Default 20000.
    pub keepalive_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 4 << 20,
            deadline_ms: 30_000,
            max_concurrent: 64,
            stream_buffer: 16,
            stream_idle_timeout_ms: 30_000,
            drain_ms: 5_000,
            shutdown_grace_ms: 0,
            max_call_bytes: 256 << 20,
            max_run_bytes: 1 << 30,
            max_run_input_secs: 600.0,
            max_stream_duration_ms: 3_600_000,
            pipeline_cache_size: 64,
            node_timeout_ms: 30_000,
            max_connections: 1000,
            handshake_timeout_ms: 10_000,
            connection_idle_timeout_ms: 300_000,
            keepalive_interval_ms: 30_000,
            keepalive_timeout_ms: 20_000,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:50051".parse().expect("valid address"),
            metrics_listen: None,
            reflection: false,
            auth: AuthConfig::default(),
            limits: Limits::default(),
            python_nodes: BTreeMap::new(),
            python_isolation: remotemedia_core::manifest::Isolation::Process,
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The TOML is invalid.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl ServerConfig {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: ServerConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "config".into(),
            message: e.to_string(),
        })?;
        config.check()?;
        Ok(config)
    }

    /// Range checks.
    pub fn check(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !(1024..=256 << 20).contains(&l.max_message_bytes) {
            return bad(format!(
                "limits.max_message_bytes is {}; expected 1024..=268435456",
                l.max_message_bytes
            ));
        }
        if l.max_concurrent == 0 || l.stream_buffer == 0 {
            return bad("limits.max_concurrent and limits.stream_buffer must be >= 1".into());
        }
        if l.deadline_ms == 0 || l.stream_idle_timeout_ms == 0 {
            return bad("limits.deadline_ms and limits.stream_idle_timeout_ms must be >= 1".into());
        }
        if l.max_call_bytes == 0 || l.max_run_bytes < l.max_call_bytes {
            return bad(format!(
                "limits.max_call_bytes is {} and limits.max_run_bytes {}; expected \
                 1 <= max_call_bytes <= max_run_bytes",
                l.max_call_bytes, l.max_run_bytes
            ));
        }
        if !(l.max_run_input_secs.is_finite() && l.max_run_input_secs > 0.0) {
            return bad(format!(
                "limits.max_run_input_secs is {}; expected a number of seconds > 0",
                l.max_run_input_secs
            ));
        }
        if l.max_connections == 0
            || l.handshake_timeout_ms == 0
            || l.connection_idle_timeout_ms == 0
            || l.keepalive_timeout_ms == 0
        {
            return bad("limits.max_connections, limits.handshake_timeout_ms, \
                 limits.connection_idle_timeout_ms and limits.keepalive_timeout_ms must be >= 1"
                .into());
        }
        if l.max_stream_duration_ms == 0 {
            return bad("limits.max_stream_duration_ms must be >= 1".into());
        }
        for (name, target) in &self.python_nodes {
            if !target.contains(':') {
                return bad(format!(
                    "python_nodes.{name} = {target:?}; expected \"package.module:Class\""
                ));
            }
        }
        Ok(())
    }

    /// The accepted tokens: the config's plus `REMOTEMEDIA_TOKENS`.
    pub fn tokens(&self) -> Vec<String> {
        let mut t = self.auth.tokens.clone();
        if let Ok(env) = std::env::var(TOKENS_ENV) {
            t.extend(
                env.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from),
            );
        }
        t
    }

    /// The executor limits every pipeline of this server runs with: the memory limits, the
    /// `Execute` input duration, and responses no larger than a message.
    pub fn resource_limits(&self) -> remotemedia_core::executor::ResourceLimits {
        let l = &self.limits;
        remotemedia_core::executor::ResourceLimits {
            max_call_bytes: l.max_call_bytes,
            max_run_bytes: l.max_run_bytes,
            max_output_bytes: (l.max_message_bytes - response_headroom(l.max_message_bytes)) as u64,
            max_run_input_secs: Some(l.max_run_input_secs),
            // The server never reads traces; a long stream kept up to 8 MB of them (soak).
            max_trace_events: 0,
        }
    }

    /// `deadline_ms` as a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.limits.deadline_ms)
    }
}

/// The part of a response message kept for what is not sink data (sink ids, field tags,
/// positions, the metrics JSON): 1/64 of the message limit, 256 bytes to 64 KiB. Without it a
/// response whose sink data just fitted failed only after the work, with tonic's "encoded
/// message length too large".
pub fn response_headroom(max_message_bytes: usize) -> usize {
    (max_message_bytes / 64).clamp(256, 64 << 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = ServerConfig::from_toml("").unwrap();
        assert_eq!(c.limits.max_message_bytes, 4 << 20);
        let c = ServerConfig::from_toml(
            "listen = \"0.0.0.0:6000\"\n[limits]\nmax_concurrent = 2\n[python_nodes]\nGain = \"mynodes:Gain\"\n",
        )
        .unwrap();
        assert_eq!(c.limits.max_concurrent, 2);
        assert_eq!(c.python_nodes["Gain"], "mynodes:Gain");
        let e = ServerConfig::from_toml("[limits]\nmax_concurent = 2\n").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let e = ServerConfig::from_toml("[limits]\nmax_call_bytes = 0\n").unwrap_err();
        assert!(e.to_string().contains("limits.max_call_bytes is 0"), "{e}");
        let c = ServerConfig::from_toml("[limits]\nmax_call_bytes = 1000\nmax_run_bytes = 2000\n")
            .unwrap();
        let r = c.resource_limits();
        assert_eq!((r.max_call_bytes, r.max_run_bytes), (1000, 2000));
        assert_eq!(r.max_output_bytes, (4 << 20) - (64 << 10));
        assert_eq!(r.max_run_input_secs, Some(600.0));
        let e = ServerConfig::from_toml("[python_nodes]\nX = \"nocolon\"\n").unwrap_err();
        assert!(e.to_string().contains("package.module:Class"), "{e}");
    }

    #[test]
    fn the_documented_server_toml_parses_and_lists_every_limit() {
        let doc = include_str!("../../../docs/server.md");
        let block = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("a toml block in docs/server.md");
        let c = ServerConfig::from_toml(block).unwrap();
        assert_eq!(
            c.python_isolation,
            remotemedia_core::manifest::Isolation::Process
        );
        // Every limit is documented with its default.
        let defaults = toml::to_string(&Limits::default()).unwrap();
        for line in defaults.lines() {
            let key = line.split(" = ").next().unwrap();
            assert!(
                block.contains(&format!("\n{key} = ")),
                "{key} is not in docs/server.md"
            );
        }
    }
}
