//! `GET /openapi.json`: the OpenAPI 3.1 document of the REST APIs this server
//! answers (`/rest/v1`, `/api/v1/simnet`, `/api/v1/auth`). The document is a
//! file kept next to the code it describes (`server/openapi.json`); the test
//! suite checks that it names every route, and `scripts/api-fuzz` runs
//! schemathesis against a live server with it.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::AppState;

const DOCUMENT: &str = include_str!("../openapi.json");

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(document))
}

async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
