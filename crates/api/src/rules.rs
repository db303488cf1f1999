//! The syntax every written field must have: one pattern or bound per rule,
//! read by the service's checks and written into the OpenAPI document, so
//! the document and the service cannot disagree about what a valid value is.
//!
//! Patterns use only what JSON Schema's (ECMA-262), Rust's `regex` and
//! Python's `re` read alike: explicit character classes, no `\s` or `\d`
//! (whose Unicode readings differ between them). "Blank" characters are the
//! ASCII controls and the space (`\x00`–`\x20`, `\x7f`), the ones trimmed.
//!
//! Rules that name other records (a group that must exist, a unique e-mail)
//! or join several fields (a flow's reachability) are not syntax: the
//! service checks them and answers `422` or `409` with the problem named.

/// A number in E.164 form: `+`, a first digit from 1, then 1 to 14 digits.
pub const E164: &str = r"^\+[1-9][0-9]{1,14}$";

/// A SIP extension: 2 to 8 digits.
pub const EXTENSION: &str = r"^[0-9]{2,8}$";

/// An e-mail address: no blank, one `@`, a dotted domain that neither
/// starts nor ends with a dot.
pub const EMAIL: &str =
    r"^[^\x00-\x20\x7f@]+@[^\x00-\x20\x7f@.][^\x00-\x20\x7f@]*\.[^\x00-\x20\x7f@]*[^\x00-\x20\x7f@.]$";

/// Longest e-mail address, in characters (RFC 5321's path limit).
pub const MAX_EMAIL: usize = 254;

/// A name (of a user, group, number or contact): at least one character
/// that is not blank. Blanks around it are trimmed when it is stored.
pub const NAME: &str = r"[^\x00-\x20\x7f]";

/// Longest name, in characters.
pub const MAX_NAME: usize = 200;

/// Longest device name, in characters.
pub const MAX_DEVICE_NAME: usize = 100;

/// Shortest password (log-in or SIP), in characters.
pub const MIN_PASSWORD: usize = 8;

/// Longest password, in characters (argon2 hashes any length; the bound keeps it cheap).
pub const MAX_PASSWORD: usize = 1_024;

/// Whether `c` is blank: trimmed from names, never part of an e-mail address.
#[must_use]
pub const fn is_blank(c: char) -> bool {
    c <= ' ' || c == '\x7f'
}

/// `name` with its blanks around it trimmed.
#[must_use]
pub fn trim_name(name: &str) -> &str {
    name.trim_matches(is_blank)
}

/// The schemas of those rules, for fields whose type alone does not say them.
#[cfg(feature = "openapi")]
pub mod schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
    use utoipa::openapi::{RefOr, schema::SchemaType};

    fn string(pattern: &str, min: Option<usize>, max: Option<usize>) -> ObjectBuilder {
        ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).min_length(min).max_length(max)
    }

    fn nullable(builder: ObjectBuilder) -> ObjectBuilder {
        builder.schema_type(SchemaType::from_iter([Type::String, Type::Null]))
    }

    /// An E.164 number.
    #[must_use]
    pub fn e164() -> Schema {
        string(super::E164, None, None).into()
    }

    /// An E.164 number, or `null`.
    #[must_use]
    pub fn e164_or_null() -> Schema {
        nullable(string(super::E164, None, None)).into()
    }

    /// A list of E.164 numbers.
    #[must_use]
    pub fn e164_list() -> Schema {
        ArrayBuilder::new().items(RefOr::T(e164())).into()
    }

    /// An extension, or `null`.
    #[must_use]
    pub fn extension_or_null() -> Schema {
        nullable(string(super::EXTENSION, None, None)).into()
    }

    /// An e-mail address.
    #[must_use]
    pub fn email() -> Schema {
        string(super::EMAIL, None, Some(super::MAX_EMAIL)).into()
    }

    /// A list of e-mail addresses.
    #[must_use]
    pub fn email_list() -> Schema {
        ArrayBuilder::new().items(RefOr::T(email())).into()
    }

    /// A name.
    #[must_use]
    pub fn name() -> Schema {
        string(super::NAME, Some(1), Some(super::MAX_NAME)).into()
    }

    /// A device's name.
    #[must_use]
    pub fn device_name() -> Schema {
        string(super::NAME, Some(1), Some(super::MAX_DEVICE_NAME)).into()
    }

    /// A password, or `null` (kept).
    #[must_use]
    pub fn password_or_null() -> Schema {
        nullable(
            ObjectBuilder::new().min_length(Some(super::MIN_PASSWORD)).max_length(Some(super::MAX_PASSWORD)),
        )
        .into()
    }
}
