//! The account API of `specs/lnbits-users-accounts-api.txt` at `/api/v1/auth`:
//! register, log in for a bearer token (with a password, or with the account's
//! id where the operator allows it), read and change the current user's
//! profile, change the password or reset a forgotten one by e-mail, and manage the account's access control
//! lists and their tokens (what an ACL token may call is decided by the gate,
//! `Caller::admits`, before any route). Errors answer in that API's own format,
//! `{"detail": "..."}`.

use axum::extract::{FromRequest, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::gate::SignedIn;
use crate::AppState;
use app::api::auth::{PublicUrl, SeenFrom};
use app::api::http_status;
use app::api::security::{AclTokenView, AclView};
use engine::{Engine, User};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth", get(current_user).post(login))
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/usr", post(login_with_id))
        .route(
            "/api/v1/auth/me",
            axum::routing::put(update_profile).delete(delete_account),
        )
        .route(
            "/api/v1/auth/update-password",
            axum::routing::put(update_password),
        )
        .route("/api/v1/auth/reset-password", post(request_password_reset))
        .route("/api/v1/auth/reset", axum::routing::put(reset_password))
        .route("/api/v1/auth/nostr", post(login_with_nostr))
        .route(
            "/api/v1/auth/nostr/keys",
            get(list_nostr_keys).post(link_nostr_key),
        )
        .route(
            "/api/v1/auth/nostr/keys/{pubkey}",
            axum::routing::delete(unlink_nostr_key),
        )
        .route("/api/v1/auth/acls", get(list_acls).post(create_acl))
        .route(
            "/api/v1/auth/acls/{acl_id}",
            axum::routing::put(update_acl).delete(delete_acl),
        )
        .route("/api/v1/auth/acls/{acl_id}/tokens", post(issue_acl_token))
        .route(
            "/api/v1/auth/acls/{acl_id}/tokens/{token_id}",
            axum::routing::delete(revoke_acl_token),
        )
}

#[derive(Debug, Deserialize)]
struct RegisterRequest {
    username: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LoginRequest {
    username: String,
    password: String,
    /// The two-factor code, for an account that has it on (an addition to
    /// the spec).
    #[serde(default)]
    otp_code: Option<String>,
}

#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
}

#[derive(Debug, Serialize)]
struct UserResponse {
    id: String,
    username: String,
    email: Option<String>,
    display_name: Option<String>,
    is_admin: bool,
    created_at: String,
}

impl From<User> for UserResponse {
    fn from(user: User) -> Self {
        UserResponse {
            id: user.id.0,
            username: user.username,
            email: user.email,
            display_name: user.display_name,
            is_admin: user.is_admin,
            created_at: engine::rfc3339(user.created_at_ms),
        }
    }
}

/// `POST /api/v1/auth/register`: 201 with a bearer token.
async fn register(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    Body(req): Body<RegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), DetailError> {
    let user = engine
        .register(
            &req.username,
            &req.password,
            req.email.as_deref(),
            &seen.address,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(bearer(&engine, &user)?)))
}

/// `POST /api/v1/auth`: 200 with a bearer token.
async fn login(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    Body(req): Body<LoginRequest>,
) -> Result<Json<TokenResponse>, DetailError> {
    let user = engine
        .accounts
        .login(&req.username, &req.password, req.otp_code.as_deref(), &seen)
        .await?;
    Ok(Json(bearer(&engine, &user)?))
}

#[derive(Debug, Deserialize)]
struct UserIdLoginRequest {
    usr: String,
}

/// `POST /api/v1/auth/usr`: 200 with a bearer token, when the operator
/// allows signing in with an account id (403 otherwise).
async fn login_with_id(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    Body(req): Body<UserIdLoginRequest>,
) -> Result<Json<TokenResponse>, DetailError> {
    let user = engine.accounts.login_with_id(&req.usr, &seen).await?;
    Ok(Json(bearer(&engine, &user)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileRequest {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    /// Required of a browser's session changing the e-mail address.
    #[serde(default)]
    password: Option<String>,
}

#[derive(Debug, Serialize)]
struct ProfileResponse {
    id: String,
    username: String,
    email: Option<String>,
    display_name: Option<String>,
}

/// `PUT /api/v1/auth/me`: changes the display name and the e-mail address
/// (absent: unchanged; empty: removed). 409 for an address another account
/// has, whatever its case. A new address takes what managing access takes
/// (see `Engine::change_profile`).
async fn update_profile(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    SeenFrom(seen): SeenFrom,
    Body(req): Body<ProfileRequest>,
) -> Result<Json<ProfileResponse>, DetailError> {
    let user = engine
        .change_profile(
            &caller,
            req.display_name.as_deref(),
            req.email.as_deref(),
            req.password.as_deref(),
            &seen,
        )
        .await?;
    Ok(Json(ProfileResponse {
        id: user.id.0,
        username: user.username,
        email: user.email,
        display_name: user.display_name,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseRequest {
    /// A browser's session gives it again; a token needs none.
    #[serde(default)]
    password: Option<String>,
    /// The two-factor code, for an account that has it on.
    #[serde(default)]
    otp_code: Option<String>,
}

/// `DELETE /api/v1/auth/me`: deletes the account and all of it, unless it
/// still holds funds (409 saying what to move first). The body is optional
/// (`{"password": ...}`, required of a browser's session).
async fn delete_account(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    SeenFrom(seen): SeenFrom,
    session: Session,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, DetailError> {
    let req: CloseRequest = match body.is_empty() {
        true => CloseRequest::default(),
        false => {
            object_from(serde_json::from_slice(&body).map_err(|err| bad_request(err.to_string()))?)?
        }
    };
    engine
        .close_account(
            &caller,
            req.password.as_deref(),
            req.otp_code.as_deref(),
            &seen,
        )
        .await?;
    let _ = session.flush().await;
    Ok(Json(serde_json::json!({ "detail": "Account deleted" })))
}

/// `GET /api/v1/auth`: the user of the bearer token (or session cookie).
async fn current_user(SignedIn(caller): SignedIn) -> Json<UserResponse> {
    Json(caller.user.into())
}

#[derive(Debug, Deserialize)]
struct UpdatePasswordRequest {
    old_password: String,
    new_password: String,
    /// The two-factor code, for an account that has it on.
    #[serde(default)]
    otp_code: Option<String>,
}

/// `PUT /api/v1/auth/update-password`: every session and token of the account,
/// this one included, stops working; log in again with the new password.
async fn update_password(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    SeenFrom(seen): SeenFrom,
    session: Session,
    Body(req): Body<UpdatePasswordRequest>,
) -> Result<Json<serde_json::Value>, DetailError> {
    caller
        .permits(engine::Access::ManageAccess)
        .map_err(engine::Error::from)?;
    engine
        .accounts
        .change_password(
            &caller.user,
            &req.old_password,
            &req.new_password,
            req.otp_code.as_deref(),
            &seen,
        )
        .await?;
    let _ = session.flush().await;
    Ok(Json(serde_json::json!({ "detail": "Password updated" })))
}

#[derive(Debug, Deserialize)]
struct NostrRequest {
    /// The signed NIP-98 event: its JSON text (as the spec has it) or the
    /// object itself.
    nostr_event: serde_json::Value,
}

impl NostrRequest {
    fn event(&self) -> String {
        match &self.nostr_event {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        }
    }
}

/// `POST /api/v1/auth/nostr`: 200 with a bearer token for the account of the
/// event's key (made on its first sign-in). The event's `u` tag is this
/// route's URL at the server's public address.
async fn login_with_nostr(
    State(engine): State<Engine>,
    State(public): State<PublicUrl>,
    SeenFrom(seen): SeenFrom,
    Body(req): Body<NostrRequest>,
) -> Result<Json<TokenResponse>, DetailError> {
    let url = format!("{}/api/v1/auth/nostr", public.0);
    let user = engine.nostr_sign_in(&req.event(), &url, &seen).await?;
    Ok(Json(bearer(&engine, &user)?))
}

/// `GET /api/v1/auth/nostr/keys`: the Nostr keys that sign in to the account.
async fn list_nostr_keys(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
) -> Result<Json<serde_json::Value>, DetailError> {
    caller
        .permits(engine::Access::ManageAccess)
        .map_err(engine::Error::from)?;
    let keys: Vec<String> = engine
        .accounts
        .linked_keys(&caller.user)
        .await?
        .into_iter()
        .filter(|(_, kind)| kind == "nostr")
        .map(|(pubkey, _)| pubkey)
        .collect();
    Ok(Json(serde_json::json!({ "keys": keys })))
}

/// `POST /api/v1/auth/nostr/keys`: links the key of a NIP-98 event for this
/// route's URL to the account.
async fn link_nostr_key(
    State(engine): State<Engine>,
    State(public): State<PublicUrl>,
    SignedIn(caller): SignedIn,
    Body(req): Body<NostrRequest>,
) -> Result<(StatusCode, Json<serde_json::Value>), DetailError> {
    caller
        .permits(engine::Access::ManageAccess)
        .map_err(engine::Error::from)?;
    let url = format!("{}/api/v1/auth/nostr/keys", public.0);
    let pubkey = engine
        .link_nostr_key(&caller.user, &req.event(), &url)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "pubkey": pubkey })),
    ))
}

/// `DELETE /api/v1/auth/nostr/keys/{pubkey}`: the key no longer signs in here
/// (refused for the account's last way to sign in).
async fn unlink_nostr_key(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Path(pubkey): Path<String>,
) -> Result<Json<serde_json::Value>, DetailError> {
    caller
        .permits(engine::Access::ManageAccess)
        .map_err(engine::Error::from)?;
    engine
        .accounts
        .unlink_key(&caller.user, &pubkey.to_ascii_lowercase(), "nostr")
        .await?;
    Ok(Json(serde_json::json!({ "detail": "Key unlinked" })))
}

#[derive(Debug, Deserialize)]
struct ResetRequest {
    email: String,
}

/// `POST /api/v1/auth/reset-password`: the same answer whether or not an
/// account has the address; if one does, a single-use link goes to it.
async fn request_password_reset(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    Body(req): Body<ResetRequest>,
) -> Result<Json<serde_json::Value>, DetailError> {
    engine
        .accounts
        .request_password_reset(&req.email, &seen.address, &engine.mail)
        .await?;
    Ok(Json(
        serde_json::json!({ "detail": "Password reset email sent" }),
    ))
}

#[derive(Debug, Deserialize)]
struct NewPasswordRequest {
    reset_key: String,
    password: String,
    password_repeat: String,
}

/// `PUT /api/v1/auth/reset` (as LNbits names it): sets the new password from
/// a reset link's key; every session and token of the account ends.
async fn reset_password(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    Body(req): Body<NewPasswordRequest>,
) -> Result<Json<serde_json::Value>, DetailError> {
    engine
        .accounts
        .reset_password(&req.reset_key, &req.password, &req.password_repeat, &seen)
        .await?;
    Ok(Json(serde_json::json!({ "detail": "Password updated" })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AclRequest {
    name: String,
    allowed_endpoints: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AclUpdateRequest {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    allowed_endpoints: Option<Vec<String>>,
}

/// The caller, if its credential may manage ACLs (a session with its CSRF
/// token, or an account token).
fn acl_manager(caller: &engine::Caller) -> Result<&User, DetailError> {
    caller
        .permits(engine::Access::ManageAccess)
        .map_err(engine::Error::from)?;
    Ok(&caller.user)
}

/// `GET /api/v1/auth/acls`: the account's ACLs, oldest first, with their tokens.
async fn list_acls(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
) -> Result<Json<Vec<AclView>>, DetailError> {
    let user = acl_manager(&caller)?;
    let acls = engine.acls.list(user).await?;
    Ok(Json(acls.into_iter().map(AclView::from).collect()))
}

/// `POST /api/v1/auth/acls`: 201 with the new ACL.
async fn create_acl(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Body(req): Body<AclRequest>,
) -> Result<(StatusCode, Json<AclView>), DetailError> {
    let user = acl_manager(&caller)?;
    let acl = engine
        .acls
        .create(user, &req.name, &req.allowed_endpoints)
        .await?;
    Ok((StatusCode::CREATED, Json(acl.into())))
}

/// `PUT /api/v1/auth/acls/{acl_id}`: its tokens follow the new patterns at once.
async fn update_acl(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Path(acl_id): Path<String>,
    Body(req): Body<AclUpdateRequest>,
) -> Result<Json<AclView>, DetailError> {
    let user = acl_manager(&caller)?;
    let acl = engine
        .acls
        .update(
            user,
            &acl_id,
            req.name.as_deref(),
            req.allowed_endpoints.as_deref(),
        )
        .await?;
    Ok(Json(acl.into()))
}

/// `DELETE /api/v1/auth/acls/{acl_id}`: its tokens stop working at once.
async fn delete_acl(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Path(acl_id): Path<String>,
) -> Result<Json<serde_json::Value>, DetailError> {
    let user = acl_manager(&caller)?;
    engine.acls.delete(user, &acl_id).await?;
    Ok(Json(serde_json::json!({ "detail": "ACL deleted" })))
}

/// `POST /api/v1/auth/acls/{acl_id}/tokens`: 201 with the token, shown once.
async fn issue_acl_token(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Path(acl_id): Path<String>,
) -> Result<(StatusCode, Json<AclTokenView>), DetailError> {
    let user = acl_manager(&caller)?;
    let (token, secret) = engine.acls.issue(user, &acl_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(AclTokenView::new(token, Some(secret))),
    ))
}

/// `DELETE /api/v1/auth/acls/{acl_id}/tokens/{token_id}`.
async fn revoke_acl_token(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Path((acl_id, token_id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, DetailError> {
    let user = acl_manager(&caller)?;
    engine.acls.revoke(user, &acl_id, &token_id).await?;
    Ok(Json(serde_json::json!({ "detail": "Token revoked" })))
}

fn bearer(engine: &Engine, user: &User) -> Result<TokenResponse, DetailError> {
    Ok(TokenResponse {
        access_token: engine.tokens.issue(user)?,
        token_type: "bearer",
    })
}

/// A JSON object body read into `T`; any mistake (malformed JSON, not an
/// object, wrong type, missing or unknown field, wrong content type) answers
/// 400 in this API's format naming what is wrong. Objects only: serde would
/// also read a struct from an array.
pub(crate) struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = DetailError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let raw = match Json::<serde_json::Value>::from_request(req, state).await {
            Ok(Json(raw)) => raw,
            Err(rejection) => return Err(bad_request(rejection.body_text())),
        };
        object_from(raw).map(Body)
    }
}

/// `T` from a JSON object (never an array), naming the field it refuses.
/// A browser's `_csrf` field was the gate's to read; it is no field of `T`.
fn object_from<T: serde::de::DeserializeOwned>(
    mut raw: serde_json::Value,
) -> Result<T, DetailError> {
    let Some(object) = raw.as_object_mut() else {
        return Err(bad_request("the body is a JSON object".into()));
    };
    object.remove("_csrf");
    serde_path_to_error::deserialize(raw).map_err(|err| bad_request(err.to_string()))
}

fn bad_request(detail: String) -> DetailError {
    DetailError::new(StatusCode::BAD_REQUEST, detail)
}

/// An error answered as `{"detail": "..."}` with its status.
#[derive(Debug)]
pub struct DetailError {
    status: StatusCode,
    detail: String,
    retry_after: Option<u64>,
}

impl DetailError {
    pub fn new(status: StatusCode, detail: String) -> Self {
        DetailError {
            status,
            detail,
            retry_after: None,
        }
    }
}

impl From<engine::Error> for DetailError {
    fn from(err: engine::Error) -> Self {
        let status = http_status(&err);
        let retry_after = err.retry_after().map(|wait| wait.as_secs().max(1));
        let detail = if err.is_internal() {
            tracing::error!(error = ?err, "request failed");
            "internal error".to_string()
        } else {
            err.to_string()
        };
        DetailError {
            status,
            detail,
            retry_after,
        }
    }
}

impl IntoResponse for DetailError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({ "detail": self.detail })),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
