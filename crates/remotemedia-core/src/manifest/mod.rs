//! Manifest v1: parse ([`parse`]) and check ([`validate`]). Its JSON Schema, which needs the
//! registry's node types, is generated in [`crate::schema`].

mod error;
pub mod limits;
pub(crate) mod parse;
mod types;
mod validate;

pub use error::{ManifestError, ManifestIssue, ParamIssue};
pub use parse::{from_value, parse};
pub use types::{
    BatchSpec, CircuitBreakerSpec, Connection, Isolation, Manifest, Metadata, NodeSpec, RetrySpec,
    MANIFEST_VERSION,
};
pub use validate::{validate, NodeCatalog};

impl std::str::FromStr for Manifest {
    type Err = ManifestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}
