//! Hard limits on what a manifest may ask for. They bound the work a manifest from an
//! untrusted client (the gRPC server) can cause before anything runs.

/// Largest manifest accepted, in bytes (1 MiB).
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;
/// Most nodes in one pipeline.
pub const MAX_NODES: u32 = 256;
/// Most connections in one pipeline.
pub const MAX_CONNECTIONS: u32 = 1024;
/// Longest node id.
pub const MAX_ID_LEN: u32 = 64;
/// Longest node type name.
pub const MAX_NODE_TYPE_LEN: u32 = 128;
/// Most attempts a retry policy may ask for.
pub const MAX_ATTEMPTS: u32 = 10;
/// Longest retry delay, in ms.
pub const MAX_RETRY_DELAY_MS: u64 = 60_000;
/// Longest per-call timeout and breaker cool-down, in ms (one hour).
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;
/// Most consecutive failures a circuit breaker may be set to wait for.
pub const MAX_BREAKER_THRESHOLD: u32 = 1000;
/// Most calls one `process_batch` call may take (`batch.max_size`).
pub const MAX_BATCH_SIZE: u32 = 4096;
/// Longest a batch's first call may wait for others, in ms (`batch.max_delay_ms`).
pub const MAX_BATCH_DELAY_MS: f64 = 10_000.0;

/// Default retry policy: total attempts (the seed's 3).
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 3;
/// Default retry policy: delay before the first retry, in ms.
pub const DEFAULT_RETRY_INITIAL_DELAY_MS: u64 = 100;
/// Default retry policy: cap on any delay, in ms.
pub const DEFAULT_RETRY_MAX_DELAY_MS: u64 = 1600;
/// A configured circuit breaker's default: consecutive failures that open it (a node
/// without `circuit_breaker` in its manifest has no breaker).
pub const DEFAULT_BREAKER_THRESHOLD: u32 = 5;
/// Default circuit breaker: time spent open before a trial call, in ms.
pub const DEFAULT_BREAKER_COOLDOWN_MS: u64 = 30_000;

/// Default [`ResourceLimits::max_call_bytes`](crate::executor::ResourceLimits): what one node
/// call may allocate for its output and working buffers (4 GiB for a local pipeline).
pub const DEFAULT_MAX_CALL_BYTES: u64 = 4 << 30;
/// Default [`ResourceLimits::max_run_bytes`](crate::executor::ResourceLimits): what all the
/// node calls of one run (or one streamed chunk) may allocate together (8 GiB locally).
pub const DEFAULT_MAX_RUN_BYTES: u64 = 8 << 30;
