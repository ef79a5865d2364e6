//! The parts of the wallet API that are not JSON calls: `GET /rest/v1/getqrimage`
//! (a PNG), `GET /rest/v1/history.csv` (a download, in `history_export`) and `POST
//! /rest/v1/scanqr` (a photo in, the text of its QR code out). The event stream
//! is `live.rs`.

use std::io::Cursor;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use crate::gate::{ErrorFormat, SignedIn};
use crate::{photo, AppState};
use app::qr::for_qr;

/// Longest text `getqrimage` encodes (a QR code holds at most 4,296 characters).
const QR_MAX_CHARS: usize = 2000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rest/v1/getqrimage", get(qr_image))
        .route("/rest/v1/events", get(crate::live::events))
        .route("/lnm/lnurl/a/events", get(crate::live::lnurl_auth_events))
        .route(
            "/rest/v1/history.csv",
            get(crate::history_export::history_csv),
        )
        .route(
            "/rest/v1/scanqr",
            post(scan_qr).layer(DefaultBodyLimit::max(photo::PHOTO_MAX_BYTES)),
        )
}

#[derive(Deserialize)]
struct QrQuery {
    inputcode: Option<String>,
}

/// `GET /rest/v1/getqrimage?inputcode=...`: a PNG QR code of the text. BOLT11
/// invoices and LNURLs are encoded upper case: the alphanumeric mode makes the
/// symbol smaller and easier to scan.
async fn qr_image(
    _: SignedIn,
    query: Result<Query<QrQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let text = query.ok().and_then(|q| q.0.inputcode).unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        return ErrorFormat::MyLightning.error(StatusCode::BAD_REQUEST, "inputcode is required");
    }
    if text.chars().count() > QR_MAX_CHARS {
        return ErrorFormat::MyLightning.error(
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
        Err(message) => ErrorFormat::MyLightning.error(StatusCode::BAD_REQUEST, &message),
    }
}

pub(crate) fn qr_png(text: &str) -> Result<Vec<u8>, String> {
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

/// `POST /rest/v1/scanqr` with a photo (PNG, JPEG or WebP) as the body:
/// `{"text": "..."}`, the content of the QR code in it. For browsers that cannot
/// read QR codes themselves (no `BarcodeDetector`). The caller is checked
/// before the body is read.
async fn scan_qr(_: SignedIn, photo: Result<Bytes, BytesRejection>) -> Response {
    let read = match photo {
        Ok(photo) => photo::read_qr_code(photo).await,
        Err(_too_long_or_cut) => Err(photo::PhotoError::TooManyBytes),
    };
    match read {
        Ok(text) => Json(serde_json::json!({ "text": text })).into_response(),
        Err(err) => {
            let mut response = ErrorFormat::MyLightning.error(err.status(), &err.to_string());
            if let Some(seconds) = err.retry_after() {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, seconds.into());
            }
            response
        }
    }
}
