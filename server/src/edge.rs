//! What every response passes through on its way out: a time limit, a net for
//! panics, the security headers, and a log line that never holds a secret.
//! Pages set their own Content-Security-Policy (with the nonce of their
//! hydration script, see `app::shell`); everything else gets a policy that
//! allows nothing.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::gate::ErrorFormat;

/// Longest a request may take to produce its response (an event stream's body
/// may then flow for as long as it lives).
pub const REQUEST_TIME_LIMIT: Duration = Duration::from_secs(30);

/// Answers 503 in the route's error format when the route takes too long.
pub async fn time_limit(request: Request, next: Next) -> Response {
    let format = ErrorFormat::for_path(request.uri().path());
    match tokio::time::timeout(REQUEST_TIME_LIMIT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("a request ran out of time");
            format.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server took too long to answer; try again",
            )
        }
    }
}

/// A 405 from the router (a path served under other methods) carries no body:
/// on the APIs it gets one in the route's error format.
pub async fn method_not_allowed(request: Request, next: Next) -> Response {
    let api = ErrorFormat::of_api(request.uri().path());
    let response = next.run(request).await;
    if let (Some(format), StatusCode::METHOD_NOT_ALLOWED) = (api, response.status()) {
        let allow = response.headers().get(header::ALLOW).cloned();
        let mut answer = format.error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here");
        if let Some(allow) = allow {
            answer.headers_mut().insert(header::ALLOW, allow);
        }
        return answer;
    }
    response
}

/// Headers every response carries.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut axum::http::HeaderMap, name, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    // Same-origin form posts keep their Referer (the pages' no-JavaScript
    // forms rely on it); other sites learn nothing of our URLs.
    set(headers, header::REFERRER_POLICY, "same-origin");
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    );
    response
}

/// The last resort: a panic in a route answers a JSON 500 in the route's error
/// format and is logged, instead of dropping the connection.
pub async fn catch_panic(request: Request, next: Next) -> Response {
    use futures_util::FutureExt;
    let format = ErrorFormat::for_path(request.uri().path());
    match std::panic::AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            tracing::error!(panic = message, "a request panicked");
            format.error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// The span of a request in the log: method and path, never the query (it may
/// carry `_csrf` or an `inputcode` invoice) nor any header.
pub fn request_span(request: &Request) -> tracing::Span {
    tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
    )
}
