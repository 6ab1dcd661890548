//! Docker Engine API models (miniserde), tolerant of unknown fields, missing
//! fields and `null` where a map or array is expected.

use crate::http::response::excerpt;
use core::fmt;

/// A Docker reply that could not be turned into the values the agent needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// The body is not UTF-8 JSON of the expected shape.
    Malformed { what: &'static str, excerpt: String },
    /// A required field is missing or has an unusable value.
    BadField {
        what: &'static str,
        field: &'static str,
        excerpt: String,
    },
    /// A streamed line exceeded the line cap; it was skipped.
    LineTooLong { len: usize },
}

impl ApiError {
    pub(crate) fn malformed(what: &'static str, body: &[u8]) -> ApiError {
        ApiError::Malformed {
            what,
            excerpt: excerpt(body),
        }
    }

    pub(crate) fn field(what: &'static str, field: &'static str, value: &[u8]) -> ApiError {
        ApiError::BadField {
            what,
            field,
            excerpt: excerpt(value),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Malformed { what, excerpt } => {
                write!(f, "malformed {what} reply (starts \"{excerpt}\")")
            }
            ApiError::BadField {
                what,
                field,
                excerpt,
            } => {
                write!(
                    f,
                    "{what} reply: missing or bad field {field} (\"{excerpt}\")"
                )
            }
            ApiError::LineTooLong { len } => {
                write!(
                    f,
                    "event line longer than the cap ({len} bytes so far), skipped"
                )
            }
        }
    }
}

impl std::error::Error for ApiError {}

/// UTF-8 check + miniserde, mapping every failure to [`ApiError::Malformed`].
pub(crate) fn parse_json<T: miniserde::Deserialize>(
    what: &'static str,
    body: &[u8],
) -> Result<T, ApiError> {
    let text = core::str::from_utf8(body).map_err(|_| ApiError::malformed(what, body))?;
    miniserde::json::from_str(text).map_err(|_| ApiError::malformed(what, body))
}
