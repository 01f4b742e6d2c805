//! Replies: a status, a body and headers, before tiny_http writes them; and the one place where
//! an error becomes an HTTP status, a `code` and a message.

use crate::error::Error;
use serde::Serialize;
use std::borrow::Cow;

/// A response before it is written.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body bytes: borrowed for what the binary holds (the web UI's files, the OpenAPI
    /// document), so that an answer a slow client holds open costs no copy of it.
    pub body: Cow<'static, [u8]>,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// What an idempotent replay answers instead of `body`, when `body` holds a secret that is
    /// shown once (a new token).
    pub replay_body: Option<Vec<u8>>,
}

impl Reply {
    /// A reply with this body and content type.
    pub fn bytes(
        status: u16,
        content_type: &'static str,
        body: impl Into<Cow<'static, [u8]>>,
    ) -> Reply {
        Reply {
            status,
            body: body.into(),
            content_type,
            headers: Vec::new(),
            replay_body: None,
        }
    }

    /// A JSON reply.
    pub fn json<T: Serialize + ?Sized>(status: u16, value: &T) -> Reply {
        match serde_json::to_vec(value) {
            Ok(body) => Reply::bytes(status, "application/json", body),
            Err(e) => error_reply(&Error::internal(format!("serialising a reply: {e}")), "-"),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// The HTTP status of an error.
pub fn status_of(error: &Error) -> u16 {
    match error {
        Error::Validation { .. }
        | Error::MissingField { .. }
        | Error::MissingFieldWhen { .. }
        | Error::UnknownField { .. }
        | Error::UnknownQuery { .. }
        | Error::InvalidJson { .. }
        | Error::RepeatedHeader { .. }
        | Error::MalformedChunks => 400,
        Error::Unauthenticated | Error::AuthScheme | Error::BadSignature => 401,
        Error::Forbidden | Error::ForbiddenHere(_) => 403,
        Error::NotFound { .. } | Error::NotFoundAmong { .. } => 404,
        Error::MethodNotAllowed => 405,
        Error::InsufficientBalance { .. }
        | Error::InsufficientCategoryBalance { .. }
        | Error::DailyLimitExceeded { .. }
        | Error::InvalidState { .. }
        | Error::NotNow(_)
        | Error::RequestExpired => 409,
        Error::BodyTimedOut => 408,
        Error::BodyTooLarge => 413,
        Error::UnsupportedMediaType => 415,
        Error::IdempotencyKeyReused => 422,
        Error::Busy | Error::SlowBodies | Error::Occupied(_) => 503,
        Error::WrongKey | Error::Full | Error::Damaged(_) | Error::Internal(_) => 500,
    }
}

/// The error body of the API: `{"error", "code"}`, and `"field"` for validation errors.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

/// The one place where an error becomes an HTTP status, a `code` and a message. A 500 says
/// only `internal` and the request id; its detail goes to the log.
pub fn error_reply(error: &Error, request_id: &str) -> Reply {
    let status = status_of(error);
    let body = if status == 500 {
        let logged = super::request::loggable_request_id(request_id);
        // A full or failing disk fails every write alike: said once every 10 s with a count,
        // not once a request (117 lines in 1.7 s under a client's loop).
        static STORAGE: crate::error::Throttle =
            crate::error::Throttle::new(std::time::Duration::from_secs(10));
        if error.is_storage_failure() {
            STORAGE.log(
                module_path!(),
                log::Level::Error,
                format_args!("request {logged} failed: {}", error.logged()),
            );
        } else {
            log::error!("request {logged} failed: {}", error.logged());
        }
        ErrorBody {
            error: format!("internal error (request id {request_id})"),
            code: "internal",
            field: None,
            request_id: Some(request_id),
        }
    } else {
        let field = match error {
            Error::Validation { field, .. }
            | Error::MissingField { field }
            | Error::UnknownField { field, .. }
            | Error::UnknownQuery { name: field, .. } => Some(field.as_str()),
            Error::RepeatedHeader { name } | Error::MissingFieldWhen { field: name, .. } => {
                Some(*name)
            }
            Error::MalformedChunks => Some("Transfer-Encoding"),
            _ => None,
        };
        ErrorBody {
            error: error.to_string(),
            code: error.code(),
            field,
            request_id: None,
        }
    };
    let reply = match serde_json::to_vec(&body) {
        Ok(bytes) => Reply::bytes(status, "application/json", bytes),
        Err(_) => Reply::bytes(
            500,
            "application/json",
            br#"{"error":"internal error","code":"internal"}"#.to_vec(),
        ),
    };
    match status {
        401 => reply.with_header("WWW-Authenticate", "Bearer"),
        503 => reply.with_header("Retry-After", "1"),
        _ => reply,
    }
}
