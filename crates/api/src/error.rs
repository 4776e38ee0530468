//! The one error shape of every sked HTTP API, 4xx and 5xx alike (404, 405, 413 and 429
//! included): `{"error": {"code": "<reason>", "message": "...", "param"?: "..."}}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, machine-readable and for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable reason, snake_case: `invalid_parameter`, `not_found`,
    /// `precondition_failed`, `unavailable`, or a schedule-request reason such as
    /// `invalid_cron`.
    pub code: String,
    /// One lowercase line for people; never internals.
    pub message: String,
    /// The request parameter or field at fault, when there is one (e.g. `limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

impl ErrorDetail {
    /// A detail with `code` and `message` and no parameter.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            param: None,
        }
    }

    /// An `invalid_parameter` detail naming `param`.
    pub fn invalid_parameter(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: "invalid_parameter".to_owned(),
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// The body that carries this detail.
    pub fn into_body(self) -> ErrorBody {
        ErrorBody { error: self }
    }
}

impl std::fmt::Display for ErrorDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.param {
            Some(param) => write!(f, "{} ({param}): {}", self.code, self.message),
            None => write!(f, "{}: {}", self.code, self.message),
        }
    }
}

impl std::error::Error for ErrorDetail {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn param_is_left_out_when_absent() {
        let body = ErrorDetail::new("not_found", "job a not found").into_body();
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"not_found","message":"job a not found"}}"#
        );
        let body = ErrorDetail::invalid_parameter("limit", "must be 1 to 1000").into_body();
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"invalid_parameter","message":"must be 1 to 1000","param":"limit"}}"#
        );
    }
}
