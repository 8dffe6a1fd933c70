//! Golden invalid manifests (one file per case, expected message beside it), limits, and the
//! checked-in JSON Schema. Regenerate expectations with `REMOTEMEDIA_BLESS=1 cargo test`.

mod common;

use std::path::{Path, PathBuf};

use common::registry;
use remotemedia_core::manifest::{self, limits};
use remotemedia_core::schema;
use remotemedia_core::Pipeline;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bless() -> bool {
    std::env::var_os("REMOTEMEDIA_BLESS").is_some()
}

#[test]
fn golden_invalid_manifests_fail_with_their_expected_message() {
    let dir = repo_root().join("tests/manifests/invalid");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 30,
        "golden cases missing in {}",
        dir.display()
    );
    let mut mismatches = Vec::new();
    for case in cases {
        let text = std::fs::read_to_string(&case).unwrap();
        let got = match Pipeline::from_json(&text, &remotemedia_nodes::builtin_registry()) {
            Ok(_) => "<accepted>".to_string(),
            Err(e) => e.to_string(),
        };
        let expected_path = case.with_extension("expected");
        if bless() {
            std::fs::write(&expected_path, format!("{got}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()));
        if expected.trim_end() != got {
            mismatches.push(format!(
                "{}:\n  expected: {}\n  got:      {got}",
                case.file_name().unwrap().to_string_lossy(),
                expected.trim_end()
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn valid_manifests_in_the_repo_are_accepted() {
    for dir in ["tests/manifests/valid", "examples"] {
        for entry in std::fs::read_dir(repo_root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                if let Err(e) = Pipeline::from_json(&text, &registry()) {
                    panic!("{}: {e}", path.display());
                }
            }
        }
    }
}

#[test]
fn limits_are_enforced() {
    let node = |i: usize| format!(r#"{{"id": "n{i}", "node_type": "PassThroughNode"}}"#);
    let many: Vec<String> = (0..=limits::MAX_NODES as usize).map(node).collect();
    let text = format!(r#"{{"version": "v1", "nodes": [{}]}}"#, many.join(","));
    let err = Pipeline::from_json(&text, &registry())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("257 nodes; the limit is 256"), "{err}");

    let huge = format!(
        r#"{{"version": "v1", "metadata": {{"description": "{}"}}, "nodes": [{}]}}"#,
        "x".repeat(limits::MAX_MANIFEST_BYTES),
        node(0)
    );
    let err = manifest::parse(&huge).unwrap_err().to_string();
    assert!(err.contains("the limit is 1048576 bytes"), "{err}");

    let ids: Vec<String> = (0..50).map(node).collect();
    let mut conns = Vec::new();
    for a in 0..50 {
        for b in (a + 1)..50 {
            conns.push(format!(r#"{{"from": "n{a}", "to": "n{b}"}}"#));
        }
    }
    assert!(conns.len() > limits::MAX_CONNECTIONS as usize);
    let text = format!(
        r#"{{"version": "v1", "nodes": [{}], "connections": [{}]}}"#,
        ids.join(","),
        conns.join(",")
    );
    let err = Pipeline::from_json(&text, &registry())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("1225 connections; the limit is 1024"), "{err}");
}

#[test]
fn manifest_round_trips_through_json() {
    let text =
        std::fs::read_to_string(repo_root().join("examples/resample_to_16k_i16.json")).unwrap();
    let m = manifest::parse(&text).unwrap();
    let again = manifest::parse(&m.to_json_pretty()).unwrap();
    assert_eq!(m, again);
}

#[test]
fn checked_in_json_schema_is_current() {
    let path = repo_root().join("schema/manifest.v1.schema.json");
    let fresh = schema::manifest_schema_pretty(&remotemedia_nodes::builtin_registry());
    if bless() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == fresh,
        "{} is stale: run `REMOTEMEDIA_BLESS=1 cargo test -p remotemedia-core --test manifests` \
         (or `remotemedia schema > {}`)",
        path.display(),
        path.display()
    );
}

#[test]
fn schema_describes_native_params_with_their_ranges() {
    let s = schema::manifest_schema(&remotemedia_nodes::builtin_registry());
    let rules = s["$defs"]["NodeSpec"]["allOf"].as_array().unwrap();
    let resample = rules
        .iter()
        .find(|r| r["if"]["properties"]["node_type"]["const"] == "AudioResampleNode")
        .unwrap();
    let rate = &resample["then"]["properties"]["params"]["properties"]["target_rate"];
    assert_eq!(rate["minimum"], 8000);
    assert_eq!(rate["maximum"], 384000);
    assert_eq!(s["properties"]["version"]["const"], "v1");
}

#[test]
fn isolation_process_is_refused_for_node_types_that_cannot_run_in_a_worker() {
    // Valid by the schema; a native node type (or a runner without Python nodes) says so
    // rather than running the node in-process silently.
    let text = r#"{"version": "v1", "nodes": [
        {"id": "n", "node_type": "PassThroughNode", "isolation": "process"}]}"#;
    let m = manifest::parse(text).unwrap();
    assert_eq!(m.nodes[0].isolation, Some(manifest::Isolation::Process));
    let e = manifest::validate(&m, &registry()).unwrap_err().to_string();
    assert!(
        e.contains("node 'n' (PassThroughNode): isolation: \"process\""),
        "{e}"
    );
    assert!(e.contains("this node type cannot run there"), "{e}");
    // "none" is the default, spelled out.
    let none = text.replace("\"process\"", "\"none\"");
    manifest::validate(&manifest::parse(&none).unwrap(), &registry()).unwrap();
}
