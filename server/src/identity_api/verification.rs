//! What a person gives the exchange to be known by (the identity API's
//! `resource/phones`, `documents`, `addresses` and `data_storage`): phone
//! numbers verified by a code sent by SMS, documents uploaded as multipart
//! forms (their files served back to their owner only), small JSON records.

use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::{at, full_info, submask, Params, Refusal, UserWithFullInfo};
use crate::gate::SignedIn;
use crate::sms::Sms;
use crate::AppState;
use engine::accounts::documents::{Document, DocumentInput, MAX_FILES, MAX_FILE_BYTES};
use engine::accounts::phones::Phone;
use engine::{Access, Caller, Engine};

pub fn router() -> Router<AppState> {
    // An upload's files and fields, and room for the form's own bytes.
    let upload_limit = DefaultBodyLimit::max(MAX_FILES * MAX_FILE_BYTES + 64 * 1024);
    Router::new()
        .route(
            "/api/v2/auth/resource/phones",
            get(list_phones).post(add_phone),
        )
        .route("/api/v2/auth/resource/phones/send_code", post(send_code))
        .route("/api/v2/auth/resource/phones/verify", post(verify_phone))
        .route(
            "/api/v2/auth/resource/documents",
            get(list_documents)
                .post(upload_documents)
                .layer(upload_limit),
        )
        .route(
            "/api/v2/auth/resource/documents/{id}/upload",
            get(document_file),
        )
        .route(
            "/api/v2/auth/resource/addresses",
            post(upload_address).layer(upload_limit),
        )
        .route("/api/v2/auth/resource/data_storage", post(add_data_storage))
}

/// A caller that may change the account's data, as a refusal of `area`.
fn writer(caller: &Caller, area: &'static str) -> Result<(), Refusal> {
    caller
        .permits(Access::Write)
        .map_err(|d| at(area)(d.into()))
}

// ---- Phones ----

/// `API_V2_Entities_Phone`: the number submasked (its last four digits).
#[derive(Debug, Serialize)]
pub(super) struct PhoneView {
    country: String,
    number: String,
    validated_at: Option<String>,
}

impl From<Phone> for PhoneView {
    fn from(p: Phone) -> Self {
        let number = submask(&p.number, 0, 4);
        PhoneView {
            country: p.country,
            number,
            validated_at: p.validated_at_ms.map(engine::rfc3339),
        }
    }
}

#[derive(Debug, Deserialize)]
struct PhoneParams {
    phone_number: String,
    /// Only SMS is sent here; a client that names a channel is not refused.
    #[serde(default)]
    #[allow(dead_code)]
    channel: Option<String>,
}

async fn list_phones(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
) -> Result<Json<Vec<PhoneView>>, Refusal> {
    let phones = engine
        .accounts
        .phones(&caller.user)
        .await
        .map_err(at("resource.phone"))?;
    Ok(Json(phones.into_iter().map(PhoneView::from).collect()))
}

/// `POST resource/phones {phone_number}`: 200, the number added and a code
/// sent to it.
async fn add_phone(
    State(engine): State<Engine>,
    State(sms): State<Sms>,
    SignedIn(caller): SignedIn,
    Params(p): Params<PhoneParams>,
) -> Result<Json<serde_json::Value>, Refusal> {
    let area = "resource.phone";
    writer(&caller, area)?;
    let code = engine
        .accounts
        .add_phone(&caller.user, &p.phone_number)
        .await
        .map_err(at(area))?;
    sms.send(code.to, code.text);
    Ok(Json(
        serde_json::json!({ "message": "a code was sent to the number" }),
    ))
}

/// `POST resource/phones/send_code {phone_number}`: 200, a new code sent
/// (404 for a number the account does not have).
async fn send_code(
    State(engine): State<Engine>,
    State(sms): State<Sms>,
    SignedIn(caller): SignedIn,
    Params(p): Params<PhoneParams>,
) -> Result<Json<serde_json::Value>, Refusal> {
    let area = "resource.phone";
    writer(&caller, area)?;
    let code = engine
        .accounts
        .resend_phone_code(&caller.user, &p.phone_number)
        .await
        .map_err(at(area))?;
    sms.send(code.to, code.text);
    Ok(Json(
        serde_json::json!({ "message": "a code was sent to the number" }),
    ))
}

#[derive(Debug, Deserialize)]
struct VerifyParams {
    phone_number: String,
    verification_code: String,
}

/// `POST resource/phones/verify {phone_number, verification_code}`: 201 with
/// the user, the number verified.
async fn verify_phone(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Params(p): Params<VerifyParams>,
) -> Result<(StatusCode, Json<UserWithFullInfo>), Refusal> {
    let area = "resource.phone";
    writer(&caller, area)?;
    engine
        .accounts
        .verify_phone(&caller.user, &p.phone_number, &p.verification_code)
        .await
        .map_err(at(area))?;
    Ok((
        StatusCode::CREATED,
        Json(full_info(&engine, &caller.user, caller.csrf()).await?),
    ))
}

// ---- Documents and addresses ----

/// `API_V2_Entities_Document`: the number submasked (its first two
/// characters), `upload` the file's address (its owner's alone).
#[derive(Debug, Serialize)]
struct DocumentView {
    id: String,
    upload: String,
    doc_type: String,
    doc_number: String,
    doc_expire: Option<String>,
    doc_category: Option<String>,
    identificator: Option<String>,
    metadata: serde_json::Value,
    content_type: String,
    size: i64,
    created_at: String,
    updated_at: String,
}

impl From<Document> for DocumentView {
    fn from(d: Document) -> Self {
        let doc_number = submask(&d.doc_number, 2, 0);
        DocumentView {
            upload: format!("/api/v2/auth/resource/documents/{}/upload", d.id),
            id: d.id,
            doc_type: d.doc_type,
            doc_number,
            doc_expire: d.doc_expire,
            doc_category: d.doc_category,
            identificator: d.identificator,
            metadata: serde_json::from_str(&d.metadata).unwrap_or_default(),
            content_type: d.content_type,
            size: d.size_bytes,
            created_at: engine::rfc3339(d.created_at_ms),
            updated_at: engine::rfc3339(d.created_at_ms),
        }
    }
}

/// A multipart upload's text fields and files (`upload` or `upload[]`),
/// refused in the API's format when it does not read.
async fn read_upload(
    mut form: Multipart,
    area: &'static str,
) -> Result<(std::collections::HashMap<String, String>, Vec<Vec<u8>>), Refusal> {
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        Refusal::new(
            e.status(),
            &format!("{area}.invalid_upload"),
            &format!("the upload does not read: {}", e.body_text()),
        )
    };
    let mut fields = std::collections::HashMap::new();
    let mut files = Vec::new();
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "upload" || name == "upload[]" {
            if files.len() == MAX_FILES {
                return Err(Refusal::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("{area}.invalid_upload"),
                    &format!("upload 1 to {MAX_FILES} files"),
                ));
            }
            files.push(field.bytes().await.map_err(unreadable)?.to_vec());
        } else if fields.len() < 16 {
            let text = field.text().await.map_err(unreadable)?;
            fields.insert(name, engine::cut(&text, 8192).to_string());
        }
    }
    Ok((fields, files))
}

/// A text field an upload must have (400 `<area>.missing_<name>` without).
fn required(
    fields: &std::collections::HashMap<String, String>,
    area: &str,
    name: &str,
) -> Result<String, Refusal> {
    fields
        .get(name)
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                &format!("{area}.missing_{name}"),
                &format!("{name} is required"),
            )
        })
}

/// `POST resource/documents` (multipart: `doc_type`, `doc_number`,
/// `upload` files, `doc_expire`, `doc_category`, `identificator`,
/// `metadata`): 201 with the documents kept.
async fn upload_documents(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    form: Multipart,
) -> Result<(StatusCode, Json<Vec<DocumentView>>), Refusal> {
    let area = "resource.document";
    writer(&caller, area)?;
    let (fields, files) = read_upload(form, area).await?;
    let input = DocumentInput {
        doc_type: required(&fields, area, "doc_type")?,
        doc_number: required(&fields, area, "doc_number")?,
        doc_expire: fields.get("doc_expire").cloned(),
        doc_category: fields.get("doc_category").cloned(),
        identificator: fields.get("identificator").cloned(),
        metadata: fields.get("metadata").cloned(),
    };
    let kept = engine
        .accounts
        .add_documents(&caller.user, &input, files)
        .await
        .map_err(at(area))?;
    Ok((
        StatusCode::CREATED,
        Json(kept.into_iter().map(DocumentView::from).collect()),
    ))
}

/// `POST resource/addresses` (multipart: `country`, `address`, `city`,
/// `postcode`, `upload`): 201, the proof of address kept as a document of
/// type `address` with the address in its metadata.
async fn upload_address(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    form: Multipart,
) -> Result<(StatusCode, Json<Vec<DocumentView>>), Refusal> {
    let area = "resource.address";
    writer(&caller, area)?;
    let (fields, files) = read_upload(form, area).await?;
    let input = DocumentInput::proof_of_address(
        &required(&fields, area, "country")?,
        &required(&fields, area, "address")?,
        &required(&fields, area, "city")?,
        &required(&fields, area, "postcode")?,
    )
    .map_err(at(area))?;
    let kept = engine
        .accounts
        .add_documents(&caller.user, &input, files)
        .await
        .map_err(at(area))?;
    Ok((
        StatusCode::CREATED,
        Json(kept.into_iter().map(DocumentView::from).collect()),
    ))
}

async fn list_documents(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
) -> Result<Json<Vec<DocumentView>>, Refusal> {
    let documents = engine
        .accounts
        .documents(&caller.user)
        .await
        .map_err(at("resource.document"))?;
    Ok(Json(
        documents.into_iter().map(DocumentView::from).collect(),
    ))
}

/// `GET resource/documents/{id}/upload`: the file, to its owner only (404
/// for anyone else's), as an attachment that never runs in the page.
async fn document_file(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Path(id): Path<String>,
) -> Result<Response, Refusal> {
    let (document, bytes) = engine
        .accounts
        .document_file(&caller.user, &id)
        .await
        .map_err(at("resource.document"))?;
    let ending = document
        .content_type
        .rsplit('/')
        .next()
        .unwrap_or("bin")
        .to_string();
    Ok((
        [
            (header::CONTENT_TYPE, document.content_type),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.{ending}\"", document.id),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    )
        .into_response())
}

// ---- Data storage ----

#[derive(Debug, Deserialize)]
struct StorageParams {
    title: String,
    data: String,
}

/// `API_V2_Entities_DataStorage`.
#[derive(Debug, Serialize)]
pub(super) struct DataStorageView {
    title: String,
    data: String,
    created_at: String,
    updated_at: String,
}

impl From<engine::accounts::data_storage::DataStorage> for DataStorageView {
    fn from(d: engine::accounts::data_storage::DataStorage) -> Self {
        DataStorageView {
            title: d.title,
            data: d.data,
            created_at: engine::rfc3339(d.created_at_ms),
            updated_at: engine::rfc3339(d.updated_at_ms),
        }
    }
}

/// `POST resource/data_storage {title, data}`: 201 with the record.
async fn add_data_storage(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Params(p): Params<StorageParams>,
) -> Result<(StatusCode, Json<DataStorageView>), Refusal> {
    let area = "resource.data_storage";
    writer(&caller, area)?;
    let stored = engine
        .accounts
        .add_data_storage(&caller.user, &p.title, &p.data)
        .await
        .map_err(at(area))?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}
