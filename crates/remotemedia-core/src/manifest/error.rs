//! [`ManifestError`]: every problem found in a manifest, each naming the node and field.

use std::fmt;

use crate::text::bounded;

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestIssue {
    /// The node concerned, when the problem is inside a node.
    pub node_id: Option<String>,
    /// The node's type, when known.
    pub node_type: Option<String>,
    /// Where: relative to the node (`params.target_rate`) when `node_id` is set, else from the
    /// manifest root (`connections[2].to`, `version`).
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl ManifestIssue {
    /// An issue outside any node.
    pub fn root(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            node_id: None,
            node_type: None,
            field: field.into(),
            message: message.into(),
        }
    }

    /// An issue inside node `node_id`.
    pub fn node(
        node_id: impl Into<String>,
        node_type: Option<&str>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            node_id: Some(node_id.into()),
            node_type: node_type.map(str::to_string),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ManifestIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The node id or type a manifest got wrong, the field and the message may all quote
        // what the manifest says: each piece is escaped and bounded, then the whole line.
        let mut line = String::new();
        if let Some(id) = &self.node_id {
            line.push_str(&format!("node '{}'", bounded(id)));
            if let Some(t) = &self.node_type {
                line.push_str(&format!(" ({})", bounded(t)));
            }
            line.push_str(": ");
        }
        if !self.field.is_empty() {
            line.push_str(&format!("{}: ", bounded(&self.field)));
        }
        line.push_str(&bounded(&self.message));
        f.write_str(&bounded(&line))
    }
}

/// A manifest was rejected. Holds every problem found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    issues: Vec<ManifestIssue>,
}

impl ManifestError {
    /// Builds an error from at least one issue.
    pub fn new(issues: Vec<ManifestIssue>) -> Self {
        debug_assert!(!issues.is_empty());
        Self { issues }
    }

    /// A single-issue error.
    pub fn single(issue: ManifestIssue) -> Self {
        Self::new(vec![issue])
    }

    /// The problems, in manifest order.
    pub fn issues(&self) -> &[ManifestIssue] {
        &self.issues
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.issues.as_slice() {
            [one] => write!(f, "invalid manifest: {one}"),
            many => {
                write!(f, "invalid manifest ({} problems):", many.len())?;
                for issue in many {
                    write!(f, "\n  - {issue}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ManifestError {}

/// A problem with one parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamIssue {
    /// The parameter name (or a path inside it).
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl ParamIssue {
    /// Builds an issue.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ParamIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "params.{}: {}",
            bounded(&self.field),
            bounded(&self.message)
        )
    }
}
