//! The collector library's one error type, and its mapping to gRPC status
//! codes (the only place a `tonic::Status` is built from an internal error).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("storage: {0}")]
    Store(String),

    #[error(
        "data directory {path} holds schema version {found}, newer than this collector understands ({supported}); upgrade the collector"
    )]
    SchemaTooNew { path: PathBuf, found: u32, supported: u32 },

    #[error("data directory {0} is not initialised; run `census-collector init --data-dir {0}` first")]
    NotInitialised(PathBuf),

    #[error("data directory {0} is already initialised; refusing to overwrite its CA and secrets")]
    AlreadyInitialised(PathBuf),

    #[error("certificate: {0}")]
    Certificate(String),

    #[error("alert rules: {0}")]
    Rules(#[from] crate::alert::rules::RulesError),

    // --- caller errors, mapped to precise gRPC codes
    #[error("{0}")]
    InvalidArgument(String),

    #[error("{0}")]
    Unauthenticated(String),

    #[error("{0}")]
    PermissionDenied(String),

    #[error("{0}")]
    NotFound(String),

    #[error("{0}")]
    FailedPrecondition(String),

    #[error("{0}")]
    ResourceExhausted(String),

    /// A bug or a crashed task, not the caller's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }
}

impl From<crate::alert::book::AlertError> for Error {
    fn from(e: crate::alert::book::AlertError) -> Self {
        use crate::alert::book::AlertError;
        match e {
            AlertError::UnknownAlert(_) | AlertError::UnknownSilence(_) => Error::NotFound(e.to_string()),
            AlertError::AlreadyResolved(_) => Error::FailedPrecondition(e.to_string()),
            AlertError::InvalidSilence(_) => Error::InvalidArgument(e.to_string()),
        }
    }
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Store(e.to_string())
    }
}

impl From<sled::transaction::TransactionError<Error>> for Error {
    fn from(e: sled::transaction::TransactionError<Error>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(inner) => inner,
            sled::transaction::TransactionError::Storage(s) => Error::Store(s.to_string()),
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        use tonic::Status;
        match e {
            Error::InvalidArgument(m) => Status::invalid_argument(m),
            Error::Unauthenticated(m) => Status::unauthenticated(m),
            Error::PermissionDenied(m) => Status::permission_denied(m),
            Error::NotFound(m) => Status::not_found(m),
            Error::FailedPrecondition(m) => Status::failed_precondition(m),
            Error::ResourceExhausted(m) => Status::resource_exhausted(m),
            e @ Error::Rules(_) => Status::invalid_argument(e.to_string()),
            // Internal details are logged by the caller; the peer gets a
            // retryable status without our file paths.
            other @ (Error::Store(_) | Error::Io { .. }) => {
                tracing::error!(error = %other, "storage failure while serving a request");
                Status::unavailable("the collector could not store the request durably; retry later")
            }
            other => Status::internal(other.to_string()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
