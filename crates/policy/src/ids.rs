//! Identifiers of the model's records, and the one notion of time `policy` knows.
//!
//! Ids are plain 64-bit integers (what SQLite and PostgreSQL hand out), wrapped
//! so that a user id can never be passed where a number id is meant.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "ts", derive(ts_rs::TS))]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A company: one tenant of the service (D8).
    CompanyId
);
id_type!(
    /// A user of a company.
    UserId
);
id_type!(
    /// A group of users (ring groups, teams).
    GroupId
);
id_type!(
    /// A company phone number.
    NumberId
);
id_type!(
    /// A call in the history.
    CallId
);
id_type!(
    /// A recording or voicemail of a call.
    RecordingId
);
id_type!(
    /// A contact: an external party the company knows by name.
    ContactId
);

/// A point in time, in milliseconds since the Unix epoch.
///
/// `policy` never reads a clock: every function that needs the time takes it
/// as an argument, so the same inputs always give the same answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The time `millis` milliseconds after `self`.
    #[must_use]
    pub const fn plus_millis(self, millis: i64) -> Self {
        Self(self.0.saturating_add(millis))
    }

    /// Milliseconds from `earlier` to `self` (negative when `earlier` is later).
    #[must_use]
    pub const fn millis_since(self, earlier: Self) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}
