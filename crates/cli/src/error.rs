//! The CLI's one error type, its exit codes, and the mapping from an HTTP answer of the sked
//! API to both.

use std::fmt;

use reqwest::StatusCode;
use sked_api::ErrorBody;

/// Exit codes scripts can rely on (also listed in `sked --help`).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Any other error.
    pub const FAILURE: u8 = 1;
    /// Usage error (clap's default).
    pub const USAGE: u8 = 2;
    /// No such job.
    pub const NOT_FOUND: u8 = 3;
    /// Rejected by validation (HTTP 400 or 413).
    pub const REJECTED: u8 = 4;
    /// Conflict with the job's state (HTTP 409).
    pub const CONFLICT: u8 = 5;
    /// A destructive command (`dlq replay`, `ops create`) not confirmed.
    pub const NOT_CONFIRMED: u8 = 6;
    /// The job changed since its etag was read (HTTP 412).
    pub const PRECONDITION_FAILED: u8 = 7;
    /// Not authenticated or not allowed (HTTP 401/403).
    pub const DENIED: u8 = 8;
    /// Configuration error: sysexits' EX_CONFIG, as `sked_core::runtime::EXIT_CONFIG` (the
    /// CLI does not link sked-core's runtime).
    pub const CONFIG: u8 = 64;
    /// Service unavailable, overloaded or unreachable (EX_UNAVAILABLE).
    pub const UNAVAILABLE: u8 = 69;
}

/// A failed command: the exit code and a one-line, lowercase message.
///
/// [`Error::line`] is what `sked` prints on stderr.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// Process exit code, one of [`exit`].
    pub code: u8,
    /// What went wrong, on one line.
    pub message: String,
}

/// The name the e2e tests know [`Error`] by.
pub type CliError = Error;

impl Error {
    /// An error with this exit code; line breaks in `message` are folded into spaces.
    pub fn new(code: u8, message: impl fmt::Display) -> Self {
        Self {
            code,
            message: one_line(&message.to_string()),
        }
    }

    /// The stderr line: `sked: <message>`.
    pub fn line(&self) -> String {
        format!("sked: {}", self.message)
    }
}

/// Longest piece of a non-JSON body quoted in an error message, in characters.
const SNIPPET_CHARS: usize = 200;

/// The error for a non-2xx answer, from its status and body (JSON of the sked API or not).
pub fn from_response(status: StatusCode, body: &[u8]) -> Error {
    let parsed = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let code = parsed
        .as_ref()
        .map(|d| d.code.as_str())
        .filter(|c| !c.is_empty());
    let param = parsed
        .as_ref()
        .and_then(|d| d.param.as_deref())
        .filter(|p| !p.is_empty());
    let message = parsed
        .as_ref()
        .map(|d| d.message.as_str())
        .filter(|m| !m.trim().is_empty());
    // "(invalid_time)" when the API said which reason, "(invalid_parameter, limit)" with the
    // parameter at fault; "(HTTP 502)" when it is not sked talking.
    let tag = match (code, param) {
        (Some(code), Some(param)) => format!("{code}, {param}"),
        (Some(code), None) => code.to_owned(),
        (None, _) => format!("HTTP {}", status.as_u16()),
    };
    let detail = match message {
        Some(m) => m.to_owned(),
        None => snippet(body),
    };
    match status {
        StatusCode::NOT_FOUND => match message {
            Some(m) => Error::new(exit::NOT_FOUND, m),
            None => Error::new(exit::NOT_FOUND, format!("not found ({tag}): {detail}")),
        },
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => Error::new(
            exit::REJECTED,
            format!("request rejected ({tag}): {detail}"),
        ),
        StatusCode::CONFLICT => Error::new(exit::CONFLICT, format!("conflict ({tag}): {detail}")),
        StatusCode::UNAUTHORIZED => Error::new(
            exit::DENIED,
            format!("not authenticated ({tag}): {detail}; give a token with --token or SKED_TOKEN"),
        ),
        StatusCode::FORBIDDEN => Error::new(exit::DENIED, format!("not allowed ({tag}): {detail}")),
        StatusCode::TOO_MANY_REQUESTS if code == Some("quota_exceeded") => Error::new(
            exit::UNAVAILABLE,
            format!("refused for now ({tag}): {detail}"),
        ),
        StatusCode::PRECONDITION_FAILED => Error::new(
            exit::PRECONDITION_FAILED,
            format!("precondition failed ({tag}): {detail}"),
        ),
        StatusCode::TOO_MANY_REQUESTS
        | StatusCode::BAD_GATEWAY
        | StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::GATEWAY_TIMEOUT => Error::new(
            exit::UNAVAILABLE,
            format!("the sked API is unavailable ({tag}): {detail}"),
        ),
        _ => {
            let tag = match code {
                Some(_) => format!("HTTP {}, {tag}", status.as_u16()),
                None => tag,
            };
            Error::new(
                exit::FAILURE,
                format!("unexpected answer from the sked API ({tag}): {detail}"),
            )
        }
    }
}

/// The error for a request that got no answer at all.
pub fn from_transport(api: &reqwest::Url, err: &reqwest::Error) -> Error {
    let why = if err.is_timeout() {
        "timed out".to_owned()
    } else {
        io_cause(err).unwrap_or_else(|| innermost(err))
    };
    Error::new(
        exit::UNAVAILABLE,
        format!("cannot reach the sked API at {}: {why}", display_url(api)),
    )
}

/// `http://host:8080/` → `http://host:8080`, as the user most likely typed it.
pub fn display_url(url: &reqwest::Url) -> String {
    url.as_str().trim_end_matches('/').to_owned()
}

/// A readable reason for an IO error, lowercase and without the OS error number.
pub fn io_reason(err: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match err.kind() {
        K::NotFound => "no such file or directory".to_owned(),
        K::PermissionDenied => "permission denied".to_owned(),
        K::ConnectionRefused => "connection refused".to_owned(),
        K::ConnectionReset => "connection reset".to_owned(),
        K::ConnectionAborted => "connection aborted".to_owned(),
        K::TimedOut => "timed out".to_owned(),
        K::AddrNotAvailable => "address not available".to_owned(),
        K::InvalidData => "not valid UTF-8".to_owned(),
        _ => lowercase_first(&err.to_string()),
    }
}

fn io_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io_reason(io));
        }
        source = e.source();
    }
    None
}

fn innermost(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    lowercase_first(&last.to_string())
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        // Keep acronyms ("DNS error") as they are.
        Some(first) if !chars.next().is_some_and(char::is_uppercase) => first
            .to_lowercase()
            .chain(s[first.len_utf8()..].chars())
            .collect(),
        _ => s.to_owned(),
    }
}

/// The start of a body that is not sked's JSON, on one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = one_line(text.trim());
    if text.is_empty() {
        return "empty body".to_owned();
    }
    match text.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Collapses every run of whitespace (line breaks included) into one space.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> Error {
        from_response(StatusCode::from_u16(status).unwrap(), body.as_bytes())
    }

    #[test]
    fn exit_codes_are_distinct() {
        let mut all = [
            exit::OK,
            exit::FAILURE,
            exit::USAGE,
            exit::NOT_FOUND,
            exit::REJECTED,
            exit::CONFLICT,
            exit::NOT_CONFIRMED,
            exit::PRECONDITION_FAILED,
            exit::DENIED,
            exit::CONFIG,
            exit::UNAVAILABLE,
        ];
        all.sort_unstable();
        assert!(all.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn not_found_uses_the_server_message() {
        let e = err(
            404,
            r#"{"error":{"code":"not_found","message":"job foo not found"}}"#,
        );
        assert_eq!(e.code, exit::NOT_FOUND);
        assert_eq!(e.line(), "sked: job foo not found");
    }

    #[test]
    fn validation_errors_exit_4_with_reason() {
        let e = err(
            400,
            r#"{"error":{"code":"invalid_time","message":"field run_at: not a time"}}"#,
        );
        assert_eq!(
            (e.code, e.line().as_str()),
            (
                4,
                "sked: request rejected (invalid_time): field run_at: not a time"
            )
        );
        let e = err(
            413,
            r#"{"error":{"code":"payload_too_large","message":"request is 9 bytes"}}"#,
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                4,
                "request rejected (payload_too_large): request is 9 bytes"
            )
        );
    }

    #[test]
    fn conflict_exits_5() {
        let e = err(
            409,
            r#"{"error":{"code":"already_dispatched","message":"job a has no pending fire left"}}"#,
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                5,
                "conflict (already_dispatched): job a has no pending fire left"
            )
        );
    }

    #[test]
    fn precondition_failed_exits_7_and_names_the_param() {
        let e = err(
            412,
            r#"{"error":{"code":"precondition_failed","message":"job a changed since etag \"3\"","param":"If-Match"}}"#,
        );
        assert_eq!(
            (e.code, e.line().as_str()),
            (
                exit::PRECONDITION_FAILED,
                r#"sked: precondition failed (precondition_failed, If-Match): job a changed since etag "3""#
            )
        );
        let e = err(
            400,
            r#"{"error":{"code":"invalid_parameter","message":"limit: expected 1 to 1000","param":"limit"}}"#,
        );
        assert_eq!(
            e.message,
            "request rejected (invalid_parameter, limit): limit: expected 1 to 1000"
        );
    }

    #[test]
    fn unavailable_exits_69() {
        let e = err(
            503,
            r#"{"error":{"code":"unavailable","message":"the job store is unavailable; retry later"}}"#,
        );
        assert_eq!(e.code, exit::UNAVAILABLE);
        assert_eq!(
            e.message,
            "the sked API is unavailable (unavailable): the job store is unavailable; retry later"
        );
        assert_eq!(err(429, "").code, exit::UNAVAILABLE);
        assert_eq!(err(504, "").code, exit::UNAVAILABLE);
    }

    #[test]
    fn non_json_error_body_is_quoted_on_one_line() {
        let e = err(502, "<html>\n<body>Bad Gateway</body>\n</html>\n");
        assert_eq!(e.code, exit::UNAVAILABLE);
        assert_eq!(
            e.line(),
            "sked: the sked API is unavailable (HTTP 502): <html> <body>Bad Gateway</body> </html>"
        );
        let e = err(404, "404 page not found");
        assert_eq!(
            (e.code, e.message.as_str()),
            (3, "not found (HTTP 404): 404 page not found")
        );
        let e = err(400, "");
        assert_eq!(
            (e.code, e.message.as_str()),
            (4, "request rejected (HTTP 400): empty body")
        );
        let e = err(500, &"x".repeat(1000));
        assert_eq!(e.code, exit::FAILURE);
        assert!(
            e.message
                .starts_with("unexpected answer from the sked API (HTTP 500): xxx"),
            "{}",
            e.message
        );
        assert!(
            e.message.ends_with("x…") && e.message.len() < 300,
            "{}",
            e.message
        );
    }

    #[test]
    fn other_statuses_exit_1() {
        let e = err(
            500,
            r#"{"error":{"code":"internal","message":"internal error"}}"#,
        );
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                1,
                "unexpected answer from the sked API (HTTP 500, internal): internal error"
            )
        );
        // A JSON body of another shape is quoted like any other text.
        let e = err(418, r#"{"oops": true}"#);
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                1,
                r#"unexpected answer from the sked API (HTTP 418): {"oops": true}"#
            )
        );
    }

    #[test]
    fn server_messages_are_folded_onto_one_line() {
        let e = err(
            400,
            "{\"error\":{\"code\":\"invalid_json\",\"message\":\"line 1\\nline 2\"}}",
        );
        assert_eq!(e.message, "request rejected (invalid_json): line 1 line 2");
        assert_eq!(Error::new(1, "a\r\n  b").message, "a b");
    }

    #[test]
    fn io_reasons_are_lowercase() {
        let e = std::io::Error::other("Something Broke");
        assert_eq!(io_reason(&e), "something Broke");
        let e = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_reason(&e), "connection refused");
        assert_eq!(lowercase_first("DNS error"), "DNS error");
    }
}
