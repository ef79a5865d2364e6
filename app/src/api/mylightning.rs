//! The myLightning wallet API (`specs/mylightning-rest-v1.txt`) at `/rest/v1`:
//! JSON bodies named after the spec's fields, the session cookie `session`.

use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, Json, PostUrl};
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginResponse {
    pub username: String,
    /// The token cookie-authenticated writes must send back as `_csrf`.
    #[serde(rename = "_csrf")]
    pub csrf: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Empty {}

/// `POST /rest/v1/login {username, password}`: 200 and a fresh `session` cookie, or
/// 401 (429 with `Retry-After` after repeated failures).
#[server(prefix = "/rest/v1", endpoint = "login", input = Json)]
pub async fn login(username: String, password: String) -> Result<LoginResponse, ApiError> {
    use crate::api::auth;
    let engine = auth::engine()?;
    let user = engine
        .accounts
        .login(&username, &password, &auth::client_address())
        .await?;
    let session = auth::start_session(&user).await?;
    Ok(LoginResponse {
        username: user.username,
        csrf: session.csrf,
    })
}

/// `POST /rest/v1/logout`: ends the session on the server. Answers 200 whether or
/// not a session was open, so a script can always call it.
#[server(prefix = "/rest/v1", endpoint = "logout", input = PostUrl)]
pub async fn logout() -> Result<Empty, ApiError> {
    crate::api::auth::end_session().await?;
    Ok(Empty {})
}

/// `GET /rest/v1/ping`: 200 for a valid session (or bearer token), 401 otherwise.
#[server(prefix = "/rest/v1", endpoint = "ping", input = GetUrl)]
pub async fn ping() -> Result<Empty, ApiError> {
    crate::api::auth::caller().await?;
    Ok(Empty {})
}
