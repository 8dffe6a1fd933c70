//! One error type for reading and writing, always naming the file.

use std::path::PathBuf;

/// A read or write failure; the message names the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The OS refused (missing file, permissions, disk full...).
    #[error("{path}: {what}: {source}")]
    Os {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The file is not what it claims to be or is damaged.
    #[error("{path}: {message}")]
    Malformed { path: PathBuf, message: String },
    /// A valid file in a format or variant we do not read or write.
    #[error("{path}: {message}")]
    Unsupported { path: PathBuf, message: String },
}

impl IoError {
    pub(crate) fn os(path: &std::path::Path, what: &'static str, source: std::io::Error) -> Self {
        Self::Os {
            path: path.to_path_buf(),
            what,
            source,
        }
    }
    pub(crate) fn malformed(path: &std::path::Path, message: impl Into<String>) -> Self {
        Self::Malformed {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
    pub(crate) fn unsupported(path: &std::path::Path, message: impl Into<String>) -> Self {
        Self::Unsupported {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }
}
