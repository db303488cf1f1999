//! `ApiError`: every failure of the HTTP API, answered as
//! `application/problem+json` (RFC 9457) with a `detail` a person can read.
//! Internal causes are logged, never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A stable code the app matches on (never the message text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body or query is malformed.
    BadRequest,
    /// Missing, unknown, expired or revoked token, or wrong credentials.
    Unauthenticated,
    /// Logged in, but this user may not do this.
    Forbidden,
    /// No such thing (or not one the caller may know of).
    NotFound,
    /// It was there and is deleted (a recording past the company's retention, say).
    Gone,
    /// The request conflicts with what is stored (a duplicate e-mail, say).
    Conflict,
    /// The body is too large.
    TooLarge,
    /// The values are well-formed but not acceptable.
    Invalid,
    /// A Range header asks for bytes the file does not have.
    RangeNotSatisfiable,
    /// Too many failed log-ins: try again later.
    Locked,
    /// A dependency is down (the database, the recordings' store): try again later.
    Unavailable,
    /// Something went wrong on our side.
    Internal,
}

/// One problem with one field of a request, for 422 answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// Where: a field name or a path into the body.
    pub field: String,
    /// What is wrong, in words.
    pub problem: String,
}

/// An error answer of the API.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {detail}")]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code for the app.
    pub code: ErrorCode,
    /// A sentence for a person.
    pub detail: String,
    /// Field problems, for `Invalid`.
    pub problems: Vec<FieldProblem>,
    /// Seconds to wait, for `Locked`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), problems: Vec::new(), retry_after: None }
    }

    /// 400: the request is malformed.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, detail)
    }

    /// 401: no valid session.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, detail)
    }

    /// 410: it was there and is deleted for good.
    pub fn gone(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, ErrorCode::Gone, detail)
    }

    /// 403: not allowed.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, detail)
    }

    /// 404: no such `what` (or none the caller may know of).
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("There is no such {what}."))
    }

    /// 503: the service does not offer this now.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, detail)
    }

    /// 409: conflicts with stored data.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, detail)
    }

    /// 422: well-formed but unacceptable, with each field's problem.
    pub fn invalid(detail: impl Into<String>, problems: Vec<FieldProblem>) -> Self {
        Self { problems, ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Invalid, detail) }
    }

    /// 422 for one field.
    pub fn invalid_field(field: &str, problem: impl Into<String>) -> Self {
        let problem = problem.into();
        Self::invalid(format!("{field}: {problem}"), vec![FieldProblem { field: field.to_owned(), problem }])
    }

    /// 416: the range is outside the file.
    pub fn range_not_satisfiable(size: u64) -> Self {
        Self::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::RangeNotSatisfiable,
            format!("The requested range is outside the recording, which has {size} bytes."),
        )
    }

    /// 429: locked after failed log-ins.
    pub fn locked(seconds: u64) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::Locked,
                format!("Too many failed log-ins. Try again in {seconds} seconds."),
            )
        }
    }

    /// 413: body too large.
    pub fn too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge, detail)
    }

    /// 500: logs `cause`, shows a generic sentence.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "Something went wrong on the server. It has been logged; please try again.",
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error
            && db.is_unique_violation()
        {
            return Self::conflict("That value is already taken.");
        }
        if database_unreachable(&error) {
            // Not the request's fault, and not for good: say when to try again.
            tracing::warn!(%error, "the database cannot be reached");
            return Self {
                retry_after: Some(5),
                ..Self::unavailable(
                    "The service cannot reach its database just now. Nothing was changed; please try again in a \
                     few seconds.",
                )
            };
        }
        Self::internal(&error)
    }
}

/// Whether `error` means the database could not be reached (rather than
/// that it refused a statement): a 503, not a 500.
#[must_use]
pub fn database_unreachable(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_)
    )
}

impl From<crate::db::StoreError> for ApiError {
    fn from(error: crate::db::StoreError) -> Self {
        use crate::db::StoreError;
        match error {
            StoreError::Database(error) => Self::from(error),
            StoreError::NotFound(what) => Self::not_found(what),
            error @ StoreError::Corrupt(_) => Self::internal(&error),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match error {
            // A recording row without its bytes is our fault: logged, and a 500.
            StoreError::NotFound => {
                Self::internal(&"a recording's file is in neither the spool nor the store")
            }
            StoreError::Sealed(cause) => {
                tracing::error!(%cause, "a sealed recording cannot be opened: check [recordings] keys");
                Self::internal(&cause)
            }
            StoreError::Io(cause) => Self::internal(&cause),
            StoreError::Store(cause) => {
                tracing::warn!(%cause, "the recordings store failed a read");
                Self {
                    retry_after: Some(30),
                    ..Self::unavailable(
                        "The recordings store cannot be reached just now. Nothing is lost; please try again \
                         in a little while.",
                    )
                }
            }
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        Self::internal(&format!("{error:#}"))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(error: std::io::Error) -> Self {
        Self::internal(&error)
    }
}

/// An error answer as the OpenAPI document describes it (`Problem`):
/// RFC 9457's fields, our `code`, and a 422's field `problems`.
#[derive(utoipa::ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// Always `about:blank`.
    #[schema(rename = "type", example = "about:blank")]
    kind: String,
    /// The status's reason phrase.
    title: String,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// What went wrong, as a sentence for a person.
    detail: String,
    /// What went wrong, for a program.
    code: ErrorCode,
    /// Each field that was not acceptable (422 only).
    problems: Option<Vec<FieldProblem>>,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: ErrorCode,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    problems: &'a [FieldProblem],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
            problems: &self.problems,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Results of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
