//! The parts of the wallet API that are not JSON calls: `GET /rest/v1/getqrimage`
//! (a PNG), `GET /rest/v1/events` (server-sent events), and the simnet's
//! developer endpoints `POST /api/v1/simnet/mine|faucet` (404 unless enabled).

use std::convert::Infallible;
use std::io::Cursor;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::BroadcastStream;
use tower_sessions::Session;

use crate::accounts_api::{Body, DetailError};
use crate::AppState;
use app::api::auth::{csrf_ok, identify, Caller};
use app::qr::for_qr;
use engine::{Engine, Msat};

/// Longest text `getqrimage` encodes (a QR code holds at most 4,296 characters).
const QR_MAX_CHARS: usize = 2000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rest/v1/getqrimage", get(qr_image))
        .route("/rest/v1/events", get(events))
        .route("/api/v1/simnet/mine", post(mine))
        .route("/api/v1/simnet/faucet", post(faucet))
}

/// The caller of an axum handler, or 401 in the myLightning error format.
async fn caller(engine: &Engine, parts: &Parts, session: &Session) -> Result<Caller, Response> {
    match identify(engine, &parts.headers, session).await {
        Ok(Some(caller)) => Ok(caller),
        Ok(None) | Err(engine::Error::Unauthenticated) => Err(my_error(
            StatusCode::UNAUTHORIZED,
            "authentication required",
        )),
        Err(err) => {
            tracing::error!(error = ?err, "identifying the caller failed");
            Err(my_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            ))
        }
    }
}

fn my_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({ "error": { "message": message } })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct QrQuery {
    inputcode: Option<String>,
}

/// `GET /rest/v1/getqrimage?inputcode=...`: a PNG QR code of the text. BOLT11
/// invoices and LNURLs are encoded upper case: the alphanumeric mode makes the
/// symbol smaller and easier to scan.
async fn qr_image(
    State(engine): State<Engine>,
    parts: Parts,
    session: Session,
    query: Result<Query<QrQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(response) = caller(&engine, &parts, &session).await {
        return response;
    }
    let text = query.ok().and_then(|q| q.0.inputcode).unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        return my_error(StatusCode::BAD_REQUEST, "inputcode is required");
    }
    if text.chars().count() > QR_MAX_CHARS {
        return my_error(
            StatusCode::BAD_REQUEST,
            "inputcode is too long for a QR code",
        );
    }
    match qr_png(&for_qr(text)) {
        Ok(png) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, "private, max-age=3600"),
            ],
            png,
        )
            .into_response(),
        Err(message) => my_error(StatusCode::BAD_REQUEST, &message),
    }
}

fn qr_png(text: &str) -> Result<Vec<u8>, String> {
    use qrcode::{EcLevel, QrCode};
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| format!("cannot encode as a QR code: {e}"))?;
    let image = code
        .render::<image::Luma<u8>>()
        .min_dimensions(320, 320)
        .quiet_zone(true)
        .build();
    let mut png = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| format!("PNG: {e}"))?;
    Ok(png)
}

/// `GET /rest/v1/events`: the caller's live updates as server-sent events
/// (`invoice_settled`, `payment_sent`, `payment_failed`, `channel_changed`,
/// `block_mined`, `onchain_received`), each a JSON object with a `type`.
async fn events(State(engine): State<Engine>, parts: Parts, session: Session) -> Response {
    let caller = match caller(&engine, &parts, &session).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let node = match engine.wallet.node(&caller.user).await {
        Ok(node) => node.pubkey,
        Err(_) => return my_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
    };
    Sse::new(event_stream(engine.simnet.subscribe(), node))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn event_stream(
    events: tokio::sync::broadcast::Receiver<engine::simnet::Event>,
    node: String,
) -> impl Stream<Item = Result<Event, Infallible>> {
    BroadcastStream::new(events).filter_map(move |event| {
        let node = node.clone();
        async move {
            let event = match event {
                Ok(event) => event,
                // A slow reader missed some: tell it to refresh.
                Err(_) => {
                    return Some(Ok(Event::default().data(r#"{"type":"lagged"}"#)));
                }
            };
            if !event.nodes.is_empty() && !event.nodes.contains(&node) {
                return None;
            }
            serde_json::to_string(&event)
                .ok()
                .map(|json| Ok(Event::default().data(json)))
        }
    })
}

#[derive(Deserialize)]
struct MineRequest {
    blocks: i64,
}

#[derive(Deserialize)]
struct FaucetRequest {
    address: String,
    sats: i64,
}

/// A signed-in developer on a server started with `--simnet-dev`; 404 otherwise.
async fn developer(
    state: &AppState,
    parts: &Parts,
    session: &Session,
) -> Result<Caller, DetailError> {
    if !state.simnet_dev {
        return Err(DetailError::new(StatusCode::NOT_FOUND, "not found"));
    }
    let caller = match identify(&state.engine, &parts.headers, session).await? {
        Some(caller) => caller,
        None => return Err(engine::Error::Unauthenticated.into()),
    };
    if !csrf_ok(&caller, parts, None) {
        return Err(DetailError::new(
            StatusCode::FORBIDDEN,
            "missing or invalid CSRF token",
        ));
    }
    Ok(caller)
}

/// `POST /api/v1/simnet/mine {"blocks": N}` → `{"height": H}`.
async fn mine(
    State(state): State<AppState>,
    parts: Parts,
    session: Session,
    Body(request): Body<MineRequest>,
) -> Result<Json<serde_json::Value>, DetailError> {
    developer(&state, &parts, &session).await?;
    let height = state.engine.simnet.mine(request.blocks).await?;
    Ok(Json(serde_json::json!({ "height": height })))
}

/// `POST /api/v1/simnet/faucet {"address": "...", "sats": N}` → `{"txid": ...}`,
/// confirmed in the next block.
async fn faucet(
    State(state): State<AppState>,
    parts: Parts,
    session: Session,
    Body(request): Body<FaucetRequest>,
) -> Result<Json<serde_json::Value>, DetailError> {
    developer(&state, &parts, &session).await?;
    let amount = request
        .sats
        .checked_mul(1000)
        .map(Msat)
        .ok_or_else(|| engine::Error::invalid("sats", "sats is too large"))?;
    let txid = state.engine.simnet.faucet(&request.address, amount).await?;
    Ok(Json(serde_json::json!({ "txid": txid })))
}
