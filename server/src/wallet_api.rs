//! The parts of the wallet API that are not JSON calls: `GET /rest/v1/getqrimage`
//! (a PNG), `GET /rest/v1/events` (server-sent events), `GET
//! /rest/v1/history.csv` (a download) and `POST /rest/v1/scanqr` (a photo in,
//! the text of its QR code out).

use std::convert::Infallible;
use std::io::Cursor;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tower_sessions::Session;

use crate::{photo, AppState};
use app::api::auth::{identify, Caller};
use app::qr::for_qr;
use engine::wallet::HistoryFilter;
use engine::Engine;

/// Most rows a CSV export holds.
const CSV_MAX_ROWS: usize = 100_000;

/// Longest text `getqrimage` encodes (a QR code holds at most 4,296 characters).
const QR_MAX_CHARS: usize = 2000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rest/v1/getqrimage", get(qr_image))
        .route("/rest/v1/events", get(events))
        .route("/rest/v1/history.csv", get(history_csv))
        .route(
            "/rest/v1/scanqr",
            post(scan_qr).layer(DefaultBodyLimit::max(photo::PHOTO_MAX_BYTES)),
        )
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
    let events = engine.simnet.subscribe();
    Sse::new(event_stream(engine, caller, events, node))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn event_stream(
    engine: Engine,
    caller: Caller,
    events: tokio::sync::broadcast::Receiver<engine::simnet::Event>,
    node: String,
) -> impl Stream<Item = Result<Event, Infallible>> {
    BroadcastStream::new(events)
        .then(move |event| {
            let (engine, caller, node) = (engine.clone(), caller.clone(), node.clone());
            async move {
                // A password change (or a deleted account) ends the stream: the
                // events are the account's, and its old credentials are not.
                let still_valid = engine
                    .accounts
                    .authenticate(&caller.user.id.0, caller.user.auth_version)
                    .await
                    .is_ok();
                still_valid.then(|| sse_event(event, &node))
            }
        })
        .take_while(|item| futures_util::future::ready(item.is_some()))
        .filter_map(|item| futures_util::future::ready(item.flatten()))
}

/// The SSE event for `event` if it concerns `node`.
fn sse_event(
    event: Result<engine::simnet::Event, BroadcastStreamRecvError>,
    node: &str,
) -> Option<Result<Event, Infallible>> {
    let event = match event {
        Ok(event) => event,
        // A slow reader missed some: tell it to refresh.
        Err(_) => return Some(Ok(Event::default().data(r#"{"type":"lagged"}"#))),
    };
    if !event.nodes.is_empty() && !event.nodes.iter().any(|n| n == node) {
        return None;
    }
    serde_json::to_string(&event)
        .ok()
        .map(|json| Ok(Event::default().data(json)))
}

#[derive(Deserialize)]
struct HistoryQuery {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    q: String,
}

/// `GET /rest/v1/history.csv?type=&from=&to=&q=`: the caller's transactions that
/// pass the filter (the history page's), newest first, as a CSV download with
/// amounts in the account's denomination.
async fn history_csv(
    State(engine): State<Engine>,
    parts: Parts,
    session: Session,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let caller = match caller(&engine, &parts, &session).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let Ok(Query(query)) = query else {
        return my_error(StatusCode::BAD_REQUEST, "invalid query");
    };
    let filter = match HistoryFilter::parse(&query.kind, &query.from, &query.to, &query.q) {
        Ok(filter) => filter,
        Err(err) => return my_error(StatusCode::BAD_REQUEST, &err.to_string()),
    };
    let transactions = match engine
        .wallet
        .history(&caller.user, &filter, CSV_MAX_ROWS)
        .await
    {
        Ok(transactions) => transactions,
        Err(err) => {
            tracing::error!(error = ?err, "history export failed");
            return my_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let unit = caller.user.denomination;
    let mut csv = String::from("time,type,amount,fee,unit,memo,status,id\r\n");
    for t in &transactions {
        let row = [
            utc_timestamp(t.time_ms),
            t.kind.to_string(),
            unit.format(t.amount),
            unit.format(t.fee),
            unit.as_str().to_string(),
            t.memo.clone(),
            t.status.to_string(),
            t.reference.clone(),
        ];
        let cells: Vec<String> = row.iter().map(|cell| csv_cell(cell)).collect();
        csv.push_str(&cells.join(","));
        csv.push_str("\r\n");
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"ampere-history.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        csv,
    )
        .into_response()
}

/// One CSV field (RFC 4180 quoting). A memo that a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@`, tab, CR) gets a leading `'`, so it reads as text.
fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `2026-11-22T03:25:11Z` for a Unix time in milliseconds.
fn utc_timestamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                t.month() as u8,
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_default()
}

/// `POST /rest/v1/scanqr` with a photo (PNG, JPEG or WebP) as the body:
/// `{"text": "..."}`, the content of the QR code in it. For browsers that cannot
/// read QR codes themselves (no `BarcodeDetector`).
async fn scan_qr(
    State(engine): State<Engine>,
    parts: Parts,
    session: Session,
    photo: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(response) = caller(&engine, &parts, &session).await {
        return response;
    }
    let read = match photo {
        Ok(photo) => photo::read_qr_code(photo).await,
        Err(_too_long_or_cut) => Err(photo::PhotoError::TooManyBytes),
    };
    match read {
        Ok(text) => Json(serde_json::json!({ "text": text })).into_response(),
        Err(err) => {
            let mut response = my_error(err.status(), &err.to_string());
            if let Some(seconds) = err.retry_after() {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, seconds.into());
            }
            response
        }
    }
}
