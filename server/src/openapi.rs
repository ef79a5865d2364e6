//! The OpenAPI 3.1 documents of the REST APIs this server answers:
//! `GET /openapi.json` (`/rest/v1`, `/api/v1/simnet`, `/api/v1/auth`) and
//! `GET /lnm/openapi.json` (the LN-Markets API under `/lnm`). Each is a file
//! kept next to the code it describes (`server/openapi.json`,
//! `server/lnm-openapi.json`); the test suite checks that they name every
//! route, and `scripts/api-fuzz` runs schemathesis against a live server with
//! them. Unknown paths under `/lnm` answer 404 in that API's format.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{any, get};
use axum::Router;

use crate::AppState;

const WALLET: &str = include_str!("../openapi.json");
const LNM: &str = include_str!("../lnm-openapi.json");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(|| document(WALLET)))
        .route("/lnm/openapi.json", get(|| document(LNM)))
        .route("/lnm/{*unknown}", any(unknown))
        .route("/lnm", any(unknown))
}

async fn document(text: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], text)
}

async fn unknown(uri: axum::http::Uri) -> axum::response::Response {
    crate::gate::ErrorFormat::for_path(uri.path())
        .error(axum::http::StatusCode::NOT_FOUND, "no such route")
}
