//! Manifest JSON -> parse -> validate against the built-in registry -> build every node.
//! Any error is fine; a panic, an abort, a hang or a huge allocation is a bug.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use remotemedia_core::executor::Pipeline;
use remotemedia_core::manifest;
use remotemedia_core::registry::NodeRegistry;

fn registry() -> &'static NodeRegistry {
    static R: OnceLock<NodeRegistry> = OnceLock::new();
    R.get_or_init(remotemedia_nodes::builtin_registry)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(m) = manifest::parse(text) else {
        return;
    };
    if let Err(e) = manifest::validate(&m, registry()) {
        // Error messages are built for people: rendering them must not panic either.
        let _ = e.to_string();
        return;
    }
    // A manifest that validates builds (nodes are created from their params).
    match Pipeline::new(m, registry()) {
        Ok(p) => {
            let _ = p.sink_ids();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
