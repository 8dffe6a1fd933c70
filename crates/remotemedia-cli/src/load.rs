//! The pipeline argument of `run` and `graph`: a manifest file or a one-line description,
//! read into a manifest and built with the host's node types.

use std::path::Path;

use anyhow::{Context, Result};
use remotemedia_core::executor::Pipeline;
use remotemedia_core::manifest::{self, Manifest};

use crate::{describe, Host};

/// Reads the `run`/`graph` argument: a manifest file, or a one-line description when no
/// such file exists and the text looks like one. Returns the manifest and a name for errors.
/// The text of a manifest file, read up to the manifest size limit: a larger file (or a device
/// that never ends, such as /dev/zero) is refused after reading one byte more than the limit.
pub(crate) fn read_manifest_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let limit = remotemedia_core::manifest::limits::MAX_MANIFEST_BYTES;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("over the manifest size limit of {limit} bytes (1 MiB)"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

pub(crate) fn load_manifest(arg: &str) -> Result<(Manifest, String)> {
    let path = Path::new(arg);
    if !path.exists() && describe::looks_like_description(arg) {
        // One word may have been meant as a file name (`Pipeline`, `README`): its errors (an
        // unknown node type is found when the pipeline is built) say both readings.
        let origin = if arg.split_whitespace().count() == 1 {
            format!("cannot read {arg}: no such file; as a pipeline description")
        } else {
            "pipeline description".to_string()
        };
        let value = describe::parse_description(arg).with_context(|| origin.clone())?;
        let manifest = manifest::from_value(value).with_context(|| origin.clone())?;
        return Ok((manifest, origin));
    }
    let text = read_manifest_file(path).with_context(|| {
        if path.exists() {
            format!("cannot read {}", path.display())
        } else {
            format!(
                "cannot read {}: no such file (a pipeline description names node types, \
                 joined with ' ! ', e.g. \"AudioResampleNode target_rate=16000 ! VADNode\")",
                path.display()
            )
        }
    })?;
    let manifest = manifest::parse(&text).with_context(|| path.display().to_string())?;
    Ok((manifest, path.display().to_string()))
}

pub(crate) fn load_pipeline(manifest: Manifest, origin: &str, host: &dyn Host) -> Result<Pipeline> {
    let mut registry = host.registry();
    host.prepare(&manifest, &mut registry)
        .with_context(|| origin.to_string())?;
    Pipeline::new(manifest, &registry).with_context(|| origin.to_string())
}
