//! Built pipelines, cached by manifest (issue 9): each call forks the cached pipeline (fresh
//! node state, shared circuit breakers), so a node that keeps failing opens its breaker for
//! every call of the same manifest, and the manifest is validated once. Bounded: the least
//! recently used pipeline goes when the cache is full.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use remotemedia_core::executor::{BreakerState, Pipeline, ResourceLimits};
use remotemedia_core::registry::NodeRegistry;
use remotemedia_core::ExecutorError;

struct Entry {
    key: u64,
    manifest: Arc<str>,
    pipeline: Pipeline,
    last_used: u64,
}

/// The cache (see module docs).
pub struct PipelineCache {
    capacity: usize,
    limits: ResourceLimits,
    node_timeout: Option<std::time::Duration>,
    isolation: Option<remotemedia_core::manifest::Isolation>,
    entries: Mutex<(u64, Vec<Entry>)>,
}

/// One node's breaker, for metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSample {
    /// The cached pipeline's key (hex of the manifest's hash).
    pub pipeline: String,
    /// The node's index in its manifest.
    pub node_index: usize,
    /// The node's (registered) type.
    pub node_type: String,
    /// 0 closed, 1 open, 2 half-open.
    pub state: u8,
    /// Consecutive failures counted now.
    pub consecutive_failures: u32,
    /// Times the breaker opened since the pipeline was cached.
    pub times_opened: u64,
}

fn key_of(manifest: &str) -> u64 {
    // A fixed-key hasher: the key is shown in metrics and must be stable within a process;
    // equality is checked on the full text, so a collision only costs a rebuild.
    let mut h = DefaultHasher::new();
    manifest.hash(&mut h);
    h.finish()
}

impl PipelineCache {
    /// A cache of at most `capacity` pipelines (0: no caching), built with `limits`.
    pub fn new(capacity: usize, limits: ResourceLimits) -> Self {
        Self {
            capacity,
            limits,
            node_timeout: None,
            isolation: None,
            entries: Mutex::new((0, Vec::new())),
        }
    }

    /// Gives every node without a `timeout_ms` of its own this one (the server's
    /// `limits.node_timeout_ms`): a node call that never returns, a Python node looping or
    /// blocked, then ends its stream's chunk instead of holding it until the stream's end.
    pub fn with_node_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.node_timeout = timeout;
        self
    }

    /// Gives every node that can run in a worker process (Python nodes) and whose manifest
    /// does not say this `isolation` (the server's `python_isolation`).
    pub fn with_isolation(mut self, isolation: remotemedia_core::manifest::Isolation) -> Self {
        self.isolation = Some(isolation);
        self
    }

    /// A pipeline for `manifest` with its own node state: a fork of the cached one, or a new
    /// one (validated and built) that is cached for the next call.
    pub fn get(&self, manifest: &str, registry: &NodeRegistry) -> Result<Pipeline, ExecutorError> {
        let key = key_of(manifest);
        let cached = {
            let mut guard = self.entries.lock().expect("cache lock");
            let (clock, entries) = &mut *guard;
            *clock += 1;
            let now = *clock;
            entries
                .iter_mut()
                .find(|e| e.key == key && &*e.manifest == manifest)
                .map(|e| {
                    e.last_used = now;
                    e.pipeline.clone()
                })
        };
        if let Some(p) = cached {
            return p.fork();
        }
        let mut parsed = remotemedia_core::manifest::parse(manifest)?;
        if let Some(t) = self.node_timeout {
            for spec in parsed.nodes.iter_mut().filter(|s| s.timeout_ms.is_none()) {
                spec.timeout_ms = Some(t.as_millis() as u64);
            }
        }
        if let Some(isolation) = self.isolation {
            for spec in parsed.nodes.iter_mut().filter(|s| s.isolation.is_none()) {
                if registry
                    .get(&spec.node_type)
                    .is_some_and(|f| f.can_isolate())
                {
                    spec.isolation = Some(isolation);
                }
            }
        }
        let pipeline = Pipeline::new(parsed, registry)?.with_limits(self.limits);
        if self.capacity == 0 {
            return Ok(pipeline);
        }
        let run = pipeline.fork()?;
        let mut guard = self.entries.lock().expect("cache lock");
        let (clock, entries) = &mut *guard;
        *clock += 1;
        let now = *clock;
        if let Some(e) = entries
            .iter_mut()
            .find(|e| e.key == key && &*e.manifest == manifest)
        {
            // Another call built it meanwhile: keep the first (its breakers may have counted).
            e.last_used = now;
            return e.pipeline.fork();
        }
        if entries.len() >= self.capacity {
            if let Some((i, _)) = entries.iter().enumerate().min_by_key(|(_, e)| e.last_used) {
                entries.swap_remove(i);
            }
        }
        entries.push(Entry {
            key,
            manifest: Arc::from(manifest),
            pipeline,
            last_used: now,
        });
        Ok(run)
    }

    /// Pipelines cached now.
    pub fn len(&self) -> usize {
        self.entries.lock().expect("cache lock").1.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The breaker of every node that has one configured, in every cached pipeline.
    pub fn breakers(&self) -> Vec<BreakerSample> {
        let guard = self.entries.lock().expect("cache lock");
        let mut out = Vec::new();
        for e in &guard.1 {
            let pipeline = format!("{:016x}", e.key);
            for b in e.pipeline.breakers() {
                if !b.configured {
                    continue;
                }
                let (state, consecutive_failures) = match b.state {
                    BreakerState::Closed {
                        consecutive_failures,
                    } => (0, consecutive_failures),
                    BreakerState::Open { .. } => (1, b.opened_after),
                    BreakerState::HalfOpen => (2, b.opened_after),
                };
                out.push(BreakerSample {
                    pipeline: pipeline.clone(),
                    node_index: b.node_index,
                    node_type: b.node_type,
                    state,
                    consecutive_failures,
                    times_opened: b.times_opened,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: &str) -> String {
        format!(
            r#"{{"version": "v1", "nodes": [{{"id": "{id}", "node_type": "PassThroughNode",
                "circuit_breaker": {{"failure_threshold": 2}}}}]}}"#
        )
    }

    #[test]
    fn bounded_least_recently_used_first_out_and_forks_share_breakers() {
        let registry = remotemedia_nodes::builtin_registry();
        let cache = PipelineCache::new(2, ResourceLimits::default());
        let (a, b, c) = (manifest("a"), manifest("b"), manifest("c"));
        let first = cache.get(&a, &registry).unwrap();
        cache.get(&b, &registry).unwrap();
        // `a` is used again, so `b` is the least recently used when `c` comes.
        let again = cache.get(&a, &registry).unwrap();
        cache.get(&c, &registry).unwrap();
        assert_eq!(cache.len(), 2);
        let ids: Vec<String> = cache
            .entries
            .lock()
            .unwrap()
            .1
            .iter()
            .map(|e| e.pipeline.sink_ids()[0].to_string())
            .collect();
        assert!(
            ids.contains(&"a".to_string()) && ids.contains(&"c".to_string()),
            "{ids:?}"
        );
        // Two calls of one manifest: separate node state, one breaker, the cache's limits.
        assert!(first.session().is_ok() && again.session().is_ok());
        assert_eq!(first.limits(), ResourceLimits::default());
        let samples = cache.breakers();
        assert_eq!(samples.len(), 2);
        assert!(samples.iter().all(|s| s.state == 0 && s.node_index == 0));
        // Capacity 0: nothing is kept.
        let none = PipelineCache::new(0, ResourceLimits::default());
        none.get(&a, &registry).unwrap();
        assert!(none.is_empty());
    }
}
