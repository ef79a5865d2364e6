//! Where pages are rendered: each page request runs on one thread of a small
//! pool of single-threaded runtimes, with every task its render spawns.
//!
//! Why: Leptos 0.8 renders a page's reactive graph from tasks that a
//! multi-threaded runtime spreads over its workers, and its locks can then be
//! taken in opposite orders by two workers (leptos-rs/leptos#4578, #4673).
//! Under concurrent page loads that deadlocked every worker of this server,
//! and with them every request, health checks included. On one thread the
//! render's tasks take turns, and the locks cannot cross. Requests of the
//! APIs never render and stay on the main runtime.

use std::sync::OnceLock;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio_util::task::{AbortOnDropHandle, LocalPoolHandle};

use crate::gate::ErrorFormat;

/// The render threads: one per core.
fn pool() -> &'static LocalPoolHandle {
    static POOL: OnceLock<LocalPoolHandle> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        LocalPoolHandle::new(cores)
    })
}

/// Runs a page request (any path outside the APIs and the bundle) on a render
/// thread; anything else as it came. A request given up (the client left, the
/// time limit) stops its render too.
pub async fn on_one_thread(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if ErrorFormat::of_api(path).is_some() || path.starts_with("/pkg/") {
        return next.run(request).await;
    }
    let render = pool().spawn_pinned(move || next.run(request));
    match AbortOnDropHandle::new(render).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "a page render failed");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
