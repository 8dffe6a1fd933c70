//! The node definitions as the registry sees them: names, parameters from the typed structs.

use remotemedia_nodes::builtin_registry;
use serde_json::Value;

#[test]
fn suggestions_catch_typos_only() {
    let r = builtin_registry();
    assert_eq!(r.suggest("AudioResampleNod"), Some("AudioResampleNode"));
    assert_eq!(r.suggest("vadnode"), Some("VADNode"));
    assert_eq!(r.suggest("Whisper"), None);
}

#[test]
fn param_info_comes_from_the_typed_struct() {
    let r = builtin_registry();
    let info = r.get("AudioResampleNode").unwrap().info();
    let rate = info
        .params
        .iter()
        .find(|p| p.name == "target_rate")
        .unwrap();
    assert!(rate.required);
    assert_eq!(rate.minimum, Some(8000.0));
    assert_eq!(rate.maximum, Some(384000.0));
    let q = info.params.iter().find(|p| p.name == "quality").unwrap();
    assert!(!q.required);
    assert_eq!(q.default, Some(Value::from("high")));
    assert_eq!(q.choices, vec!["fast", "medium", "high"]);
}
