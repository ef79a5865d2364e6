//! The error every server function returns, in the myLightning format
//! `{"error":{"message":"..."}}` (plus `field` when one input caused it, so the UI
//! can show the message next to that input).

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{}", error.message)]
pub struct ApiError {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(message: impl Into<String>) -> Self {
        ApiError {
            error: ErrorBody {
                message: message.into(),
                field: None,
            },
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    /// Failures of the server function machinery itself. A request body or query
    /// that does not parse is the client's mistake: 400, not the framework's 500.
    fn from_server_fn_error(err: ServerFnErrorErr) -> Self {
        use ServerFnErrorErr::*;
        let (status, message) = match err {
            Deserialization(m) | Args(m) | MissingArg(m) => (400, format!("invalid request: {m}")),
            UnsupportedRequestMethod(m) => (405, m),
            Registration(m) => (404, m),
            Request(m) => (503, format!("could not reach the server: {m}")),
            Response(m) | Serialization(m) | ServerError(m) | MiddlewareError(m) => (500, m),
        };
        #[cfg(feature = "ssr")]
        crate::api::auth::set_status(status);
        #[cfg(not(feature = "ssr"))]
        let _ = status;
        ApiError::new(message)
    }
}

#[cfg(feature = "ssr")]
impl From<engine::Error> for ApiError {
    /// Answers an engine error: sets the HTTP status it deserves and keeps internal
    /// causes in the log, out of the response.
    fn from(err: engine::Error) -> Self {
        use axum::http::{header, HeaderValue};
        let status = http_status(&err);
        crate::api::auth::set_status(status);
        if let Some(opts) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
            if let Some(retry_after) = err.retry_after() {
                let secs = retry_after.as_secs().max(1).to_string();
                opts.insert_header(
                    header::RETRY_AFTER,
                    HeaderValue::from_str(&secs).expect("digits"),
                );
            }
        }
        if err.is_internal() {
            tracing::error!(error = ?err, "request failed");
            return ApiError::new("internal error");
        }
        ApiError {
            error: ErrorBody {
                message: err.to_string(),
                field: err.field().map(str::to_string),
            },
        }
    }
}

/// The HTTP status an engine error answers with, on every API.
#[cfg(feature = "ssr")]
pub fn http_status(err: &engine::Error) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    use engine::Error::*;
    match err {
        Invalid { .. } => StatusCode::BAD_REQUEST,
        UsernameTaken => StatusCode::CONFLICT,
        InvalidCredentials | Unauthenticated => StatusCode::UNAUTHORIZED,
        Forbidden(_) => StatusCode::FORBIDDEN,
        NotFound(_) => StatusCode::NOT_FOUND,
        Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
        Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
        Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        // Refusals: the myLightning API answers them with 200 and an error body.
        InsufficientFunds
        | InsufficientOnchainFunds
        | NoRoute
        | FeeLimitExceeded { .. }
        | InvoiceExpired
        | AlreadyPaid
        | UnknownAlias
        | ChannelNotFound
        | UnknownNode
        | PendingChannelLimit { .. } => StatusCode::OK,
        Database(_) | Migration(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}
