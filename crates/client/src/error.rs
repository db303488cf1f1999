//! What can go wrong in the app, each with a stable [`code`](ClientError::code)
//! the ui matches on (STYLE.md: never a message string) and a sentence for
//! the user.

use std::path::PathBuf;

/// An error the app shows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached; the app works read-only from its cache.
    #[error("The server at {server} cannot be reached ({reason}).")]
    Offline {
        /// The server's address.
        server: String,
        /// What failed, for the curious.
        reason: String,
    },
    /// Wrong e-mail or password, a disabled account, or one locked after failed log-ins.
    #[error("{detail}")]
    LogInRefused {
        /// The service's explanation.
        detail: String,
    },
    /// The session expired or was revoked (or there is none): log in again.
    #[error("{detail}")]
    SessionEnded {
        /// The service's explanation.
        detail: String,
    },
    /// The user has no right to this (checked locally, or refused by the service).
    #[error("{detail}")]
    Forbidden {
        /// What is not allowed.
        detail: String,
    },
    /// It does not exist, or the user may not see it.
    #[error("{detail}")]
    NotFound {
        /// What was not found.
        detail: String,
    },
    /// Any other refusal of the service, with its problem+json `detail`.
    #[error("{detail}")]
    Service {
        /// HTTP status.
        status: u16,
        /// The service's explanation.
        detail: String,
    },
    /// The OS keyring could not keep or give the token.
    #[error("The system keyring failed: {0}")]
    Keyring(String),
    /// A file could not be written or read.
    #[error("{path}: {source}")]
    File {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The ui asked for something malformed (a filter value that does not exist).
    #[error("{detail}")]
    Invalid {
        /// What is wrong.
        detail: String,
    },
    /// The service answered something this app does not understand.
    #[error("The server's answer was not understood: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The stable code the ui matches on.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Offline { .. } => "offline",
            Self::LogInRefused { .. } => "log_in_refused",
            Self::SessionEnded { .. } => "session_ended",
            Self::Forbidden { .. } => "forbidden",
            Self::NotFound { .. } => "not_found",
            Self::Service { .. } => "service",
            Self::Keyring(_) => "keyring",
            Self::File { .. } => "file",
            Self::Invalid { .. } => "invalid",
            Self::Protocol(_) => "protocol",
        }
    }
}

impl From<keyring::Error> for ClientError {
    fn from(error: keyring::Error) -> Self {
        Self::Keyring(error.to_string())
    }
}

/// Results of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
