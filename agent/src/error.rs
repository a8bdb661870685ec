//! The agent library's one error type.

use std::path::PathBuf;

/// Everything that can go wrong inside the agent library, phrased for the
/// operator who has to act on it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Text from the endpoint (a package database, an OS file, a command's
    /// output) did not have the expected shape.
    #[error("cannot parse {what}{}: {reason}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Parse {
        /// What was being parsed, e.g. "/var/lib/dpkg/status" or "rpm -qa output".
        what: String,
        /// 1-based line where the problem was found, when meaningful.
        line: Option<usize>,
        /// What was wrong.
        reason: String,
    },

    /// A file the agent needed could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A command the agent runs to read inventory failed.
    #[error("running {command}: {reason}")]
    Command { command: String, reason: String },

    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// The agent is not enrolled yet (no certificate or agent id in the state directory).
    #[error("this agent is not enrolled (state directory {0}); run `census-agent enroll` first")]
    NotEnrolled(PathBuf),

    /// The host has no UUID or host name to enroll under.
    #[error("this host cannot be identified: {0}")]
    IdentityUnknown(String),

    /// The collector refused or failed a call.
    #[error("{0}")]
    Collector(String),

    /// Key or certificate handling failed.
    #[error("certificate: {0}")]
    Certificate(String),
}

impl Error {
    /// Shorthand for a parse error.
    pub fn parse(what: impl Into<String>, line: Option<usize>, reason: impl Into<String>) -> Self {
        Error::Parse { what: what.into(), line, reason: reason.into() }
    }

    /// Shorthand for an I/O error with the path it concerns.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
