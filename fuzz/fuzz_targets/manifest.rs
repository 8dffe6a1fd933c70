//! Manifest JSON -> parse -> validate against the built-in registry -> build every node.
//! Any error is fine; a panic, an abort, a hang or a huge allocation is a bug. Every error
//! message must come out escaped and bounded (remotemedia_core::text), whatever the input:
//! no control character, no value of the input longer than the cut.
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

/// An error message as a person or a log would get it: nothing raw, nothing huge.
fn check_message(message: &str) {
    // Multi-issue errors join their issues with "\n  - "; each issue is bounded.
    for line in message.split('\n') {
        assert!(
            !line.chars().any(char::is_control),
            "a control character in: {line:?}"
        );
        assert!(line.chars().count() <= 2300, "a {}-character line", line.len());
    }
}

fuzz_target!(|data: &[u8]| {
    // The helpers on their own, with any text (non-UTF-8 arrives lossily decoded).
    let lossy = String::from_utf8_lossy(data);
    check_message(&remotemedia_core::text::bounded(&lossy));
    check_message(&remotemedia_core::text::shown(&lossy));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let m = match manifest::parse(text) {
        Ok(m) => m,
        Err(e) => return check_message(&e.to_string()),
    };
    if let Err(e) = manifest::validate(&m, registry()) {
        // Error messages are built for people: rendering them must not panic either.
        return check_message(&e.to_string());
    }
    // A manifest that validates builds (nodes are created from their params).
    match Pipeline::new(m, registry()) {
        Ok(p) => {
            let _ = p.sink_ids();
        }
        Err(e) => check_message(&e.to_string()),
    }
});
