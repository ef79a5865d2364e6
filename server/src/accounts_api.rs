//! The account API of `specs/lnbits-users-accounts-api.txt` at `/api/v1/auth`:
//! register, log in for a bearer token (with a password, or with the account's
//! id where the operator allows it), read and change the current user's
//! profile, change the password. Errors answer in that API's own format,
//! `{"detail": "..."}`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::gate::SignedIn;
use crate::AppState;
use app::api::auth::client_address_of;
use app::api::http_status;
use engine::{Engine, User};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth", get(current_user).post(login))
        .route("/api/v1/auth/register", post(register))
        .route("/api/v1/auth/usr", post(login_with_id))
        .route("/api/v1/auth/me", axum::routing::put(update_profile))
        .route(
            "/api/v1/auth/update-password",
            axum::routing::put(update_password),
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
    extensions: axum::http::Extensions,
    Body(req): Body<RegisterRequest>,
) -> Result<(StatusCode, Json<TokenResponse>), DetailError> {
    let user = engine
        .register(
            &req.username,
            &req.password,
            req.email.as_deref(),
            &client_address_of(&extensions),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(bearer(&engine, &user)?)))
}

/// `POST /api/v1/auth`: 200 with a bearer token.
async fn login(
    State(engine): State<Engine>,
    extensions: axum::http::Extensions,
    Body(req): Body<LoginRequest>,
) -> Result<Json<TokenResponse>, DetailError> {
    let user = engine
        .accounts
        .login(
            &req.username,
            &req.password,
            &client_address_of(&extensions),
        )
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
    extensions: axum::http::Extensions,
    Body(req): Body<UserIdLoginRequest>,
) -> Result<Json<TokenResponse>, DetailError> {
    let user = engine
        .accounts
        .login_with_id(&req.usr, &client_address_of(&extensions))
        .await?;
    Ok(Json(bearer(&engine, &user)?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileRequest {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
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
/// has, whatever its case.
async fn update_profile(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    Body(raw): Body<serde_json::Value>,
) -> Result<Json<ProfileResponse>, DetailError> {
    caller
        .permits(engine::Access::Write)
        .map_err(engine::Error::from)?;
    // An object only: serde would also read a struct from an array.
    let req: ProfileRequest = match raw.is_object() {
        true => {
            serde_path_to_error::deserialize(raw).map_err(|err| bad_request(err.to_string()))?
        }
        false => return Err(bad_request("the body is a JSON object".into())),
    };
    let user = engine
        .accounts
        .update_profile(
            &caller.user,
            req.display_name.as_deref(),
            req.email.as_deref(),
        )
        .await?;
    Ok(Json(ProfileResponse {
        id: user.id.0,
        username: user.username,
        email: user.email,
        display_name: user.display_name,
    }))
}

/// `GET /api/v1/auth`: the user of the bearer token (or session cookie).
async fn current_user(SignedIn(caller): SignedIn) -> Json<UserResponse> {
    Json(caller.user.into())
}

#[derive(Debug, Deserialize)]
struct UpdatePasswordRequest {
    old_password: String,
    new_password: String,
}

/// `PUT /api/v1/auth/update-password`: every session and token of the account,
/// this one included, stops working; log in again with the new password.
async fn update_password(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    extensions: axum::http::Extensions,
    session: Session,
    Body(req): Body<UpdatePasswordRequest>,
) -> Result<Json<serde_json::Value>, DetailError> {
    caller
        .permits(engine::Access::Write)
        .map_err(engine::Error::from)?;
    engine
        .accounts
        .change_password(
            &caller.user,
            &req.old_password,
            &req.new_password,
            &client_address_of(&extensions),
        )
        .await?;
    let _ = session.flush().await;
    Ok(Json(serde_json::json!({ "detail": "Password updated" })))
}

fn bearer(engine: &Engine, user: &User) -> Result<TokenResponse, DetailError> {
    Ok(TokenResponse {
        access_token: engine.tokens.issue(user)?,
        token_type: "bearer",
    })
}

/// A JSON body whose rejection (malformed JSON, wrong type, missing field, wrong
/// content type) answers 400 in this API's format instead of axum's plain text.
pub(crate) struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = DetailError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(bad_request(rejection.body_text())),
        }
    }
}

fn bad_request(detail: String) -> DetailError {
    DetailError {
        status: StatusCode::BAD_REQUEST,
        detail,
        retry_after: None,
    }
}

/// An error answered as `{"detail": "..."}` with its status.
#[derive(Debug)]
pub struct DetailError {
    status: StatusCode,
    detail: String,
    retry_after: Option<u64>,
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
