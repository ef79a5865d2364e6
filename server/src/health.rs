//! `GET /healthz`: whether this process can still write. The probe goes through
//! the database writer like every write, so a stuck or dead writer (or database)
//! answers 503 and a load balancer stops sending traffic here.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use engine::Engine;

/// How long the writer may take to run the probe before the process counts as
/// unhealthy. A probe abandoned in the queue is never run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: 200 `{"status":"ok"}` when a trivial write (`SELECT 1` run by
/// the writer) completes within [`PROBE_TIMEOUT`], else 503
/// `{"status":"unavailable"}`.
pub async fn healthz(State(engine): State<Engine>) -> Response {
    let probe =
        tokio::time::timeout(PROBE_TIMEOUT, engine.db.execute(sqlx::query("SELECT 1"))).await;
    match probe {
        Ok(Ok(_)) => Json(serde_json::json!({ "status": "ok" })).into_response(),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "health probe: the writer failed");
            unavailable()
        }
        Err(_) => {
            tracing::warn!(timeout = ?PROBE_TIMEOUT, "health probe: the writer did not answer");
            unavailable()
        }
    }
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({ "status": "unavailable" })),
    )
        .into_response()
}
