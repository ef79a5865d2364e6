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

    fn from_server_fn_error(err: ServerFnErrorErr) -> Self {
        ApiError::new(machinery_error(err))
    }
}

/// Answers a failure of the server function machinery itself: sets its status
/// and gives its message. A request body or query that does not parse is the
/// client's mistake: 400, not the framework's 500.
pub(crate) fn machinery_error(err: ServerFnErrorErr) -> String {
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
    message
}

#[cfg(feature = "ssr")]
impl From<engine::Error> for ApiError {
    fn from(err: engine::Error) -> Self {
        let field = err.field().map(str::to_string);
        let status = http_status(&err);
        let message = answer(err, status);
        ApiError {
            error: ErrorBody {
                // Internal causes stay in the log: no field is named for them.
                field: if status.is_server_error() {
                    None
                } else {
                    field
                },
                message,
            },
        }
    }
}

/// Answers an engine error with `status`: sets it (and `Retry-After` for the
/// errors that say when to retry) and gives the message the client may read;
/// internal causes go to the log, never into the response.
#[cfg(feature = "ssr")]
pub(crate) fn answer(err: engine::Error, status: axum::http::StatusCode) -> String {
    use axum::http::{header, HeaderValue};
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
        "internal error".into()
    } else {
        err.to_string()
    }
}

/// The HTTP status an engine error answers with, on every API.
#[cfg(feature = "ssr")]
pub fn http_status(err: &engine::Error) -> axum::http::StatusCode {
    use axum::http::StatusCode;
    use engine::Error::*;
    match err {
        Invalid { .. } => StatusCode::BAD_REQUEST,
        UsernameTaken | EmailTaken | Conflict(_) => StatusCode::CONFLICT,
        InvalidCredentials | Unauthenticated | CodeRequired => StatusCode::UNAUTHORIZED,
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
