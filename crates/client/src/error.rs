//! What can go wrong in the app, each with a stable [`code`](ClientError::code)
//! the ui matches on (STYLE.md: never a message string; [`ErrorCode`] is
//! generated into the ui's types, so a misspelt code fails its type check)
//! and a sentence for the user.

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
    /// A microphone or speaker could not be found or used.
    #[error("{detail}")]
    Audio {
        /// Which.
        code: AudioProblem,
        /// For the user.
        detail: String,
    },
    /// The phone cannot do this now (not registered, no such call, …).
    #[error("{detail}")]
    Phone {
        /// What the user should know.
        detail: String,
    },
}

/// Which sound device failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioProblem {
    /// There is no microphone.
    NoMicrophone,
    /// There is no speaker.
    NoSpeaker,
    /// The microphone is there but cannot be opened.
    MicrophoneFailed,
    /// The speaker is there but cannot be opened.
    SpeakerFailed,
}

/// The stable codes of [`ClientError`], as the ui gets them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The server cannot be reached.
    Offline,
    /// Wrong credentials, disabled, or locked.
    LogInRefused,
    /// Sign in again.
    SessionEnded,
    /// Not allowed.
    Forbidden,
    /// Not there.
    NotFound,
    /// Another refusal of the service.
    Service,
    /// The OS keyring failed.
    Keyring,
    /// A file failed.
    File,
    /// The ui asked for something malformed.
    Invalid,
    /// The service's answer was not understood.
    Protocol,
    /// No microphone.
    NoMicrophone,
    /// No speaker.
    NoSpeaker,
    /// The microphone cannot be opened.
    MicrophoneFailed,
    /// The speaker cannot be opened.
    SpeakerFailed,
    /// The phone cannot do this now.
    Phone,
}

impl ErrorCode {
    /// The code as the ui spells it.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Offline => "offline",
            Self::LogInRefused => "log_in_refused",
            Self::SessionEnded => "session_ended",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Service => "service",
            Self::Keyring => "keyring",
            Self::File => "file",
            Self::Invalid => "invalid",
            Self::Protocol => "protocol",
            Self::NoMicrophone => "no_microphone",
            Self::NoSpeaker => "no_speaker",
            Self::MicrophoneFailed => "microphone_failed",
            Self::SpeakerFailed => "speaker_failed",
            Self::Phone => "phone",
        }
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl ClientError {
    /// The stable code the ui matches on.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::Offline { .. } => ErrorCode::Offline,
            Self::LogInRefused { .. } => ErrorCode::LogInRefused,
            Self::SessionEnded { .. } => ErrorCode::SessionEnded,
            Self::Forbidden { .. } => ErrorCode::Forbidden,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Service { .. } => ErrorCode::Service,
            Self::Keyring(_) => ErrorCode::Keyring,
            Self::File { .. } => ErrorCode::File,
            Self::Invalid { .. } => ErrorCode::Invalid,
            Self::Protocol(_) => ErrorCode::Protocol,
            Self::Audio { code, .. } => match code {
                AudioProblem::NoMicrophone => ErrorCode::NoMicrophone,
                AudioProblem::NoSpeaker => ErrorCode::NoSpeaker,
                AudioProblem::MicrophoneFailed => ErrorCode::MicrophoneFailed,
                AudioProblem::SpeakerFailed => ErrorCode::SpeakerFailed,
            },
            Self::Phone { .. } => ErrorCode::Phone,
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
