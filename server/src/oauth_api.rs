//! Ampere as an OAuth 2.0 provider, at the paths of `specs/lime-oauth2.md`:
//!
//! - `POST /connect/token` (form): the `password` and `authorization_code`
//!   grants, the client authenticated by `client_id` and `client_secret` in
//!   the form or by HTTP Basic; refusals as RFC 6749 §5.2 writes them,
//!   `{"error", "error_description"}`.
//! - `POST /connect/authorize`: the consent page's answer without
//!   JavaScript (the page itself, `GET /connect/authorize`, is the app's),
//!   302 back to the client's redirect URI with a `code` and the `state`.
//! - `POST /api/register`: an application signs a person up (its client
//!   authenticated by Basic, or the spec's `auth` field).
//! - `GET /userinfo`: the person behind an access token.
//!
//! The engine's `oauth` module owns the clients, codes and tokens.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::gate::SignedIn;
use crate::AppState;
use app::api::auth::SeenFrom;
use engine::oauth::{AuthorizationRequest, Client, Issued, OAuthScope, Refusal};
use engine::{Credential, Engine};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/connect/token", post(token))
        .route("/connect/authorize", post(decide))
        .route("/api/register", post(register))
        .route("/userinfo", get(userinfo))
}

// ---- The token endpoint ----

/// A refusal of the token endpoint (or of `/api/register`'s client).
struct TokenRefusal {
    refusal: Refusal,
    /// The client authenticated by HTTP Basic: a wrong one hears 401 and a
    /// `WWW-Authenticate` challenge (RFC 6749 §5.2).
    basic: bool,
}

impl From<Refusal> for TokenRefusal {
    fn from(refusal: Refusal) -> Self {
        TokenRefusal {
            refusal,
            basic: false,
        }
    }
}

impl From<engine::Error> for TokenRefusal {
    fn from(err: engine::Error) -> Self {
        Refusal::Engine(err).into()
    }
}

impl IntoResponse for TokenRefusal {
    fn into_response(self) -> Response {
        let (status, code, description, retry_after) = match &self.refusal {
            Refusal::InvalidClient if self.basic => (
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                self.refusal.to_string(),
                None,
            ),
            Refusal::Engine(engine::Error::Throttled { retry_after }) => (
                StatusCode::TOO_MANY_REQUESTS,
                "temporarily_unavailable",
                self.refusal.to_string(),
                Some(retry_after.as_secs().max(1)),
            ),
            Refusal::Engine(err) if err.is_internal() => {
                tracing::error!(error = %err, "token endpoint");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "internal error".to_string(),
                    None,
                )
            }
            Refusal::Engine(err) => (
                app::api::http_status(err),
                "invalid_request",
                err.to_string(),
                None,
            ),
            other => (
                StatusCode::BAD_REQUEST,
                other.code(),
                other.to_string(),
                None,
            ),
        };
        let mut response = (
            status,
            no_store(),
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ampere\""),
            );
        }
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Token answers are never cached (RFC 6749 §5.1).
fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

/// The form of a token request: each parameter at most once (RFC 6749 §3.2).
fn form_params(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, Refusal> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Err(Refusal::InvalidRequest(
            "send the parameters as application/x-www-form-urlencoded".into(),
        ));
    }
    let mut params = HashMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        if params.insert(name.to_string(), value.to_string()).is_some() {
            return Err(Refusal::InvalidRequest(format!(
                "the parameter {} is given more than once",
                engine::cut(&name, 40)
            )));
        }
    }
    Ok(params)
}

/// The client's id and secret from HTTP Basic (each form-urlencoded, RFC
/// 6749 §2.3.1), if the request carries that header.
fn basic_credentials(headers: &HeaderMap) -> Option<Result<(String, String), Refusal>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    Some(decode_basic(encoded.trim()).ok_or(Refusal::InvalidClient))
}

/// `base64(client_id:client_secret)`.
fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.to_string())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// The client of a token request, authenticated one way only.
async fn token_client(
    engine: &Engine,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
) -> Result<Client, TokenRefusal> {
    let in_form = (params.get("client_id"), params.get("client_secret"));
    match (basic_credentials(headers), in_form) {
        (Some(_), (_, Some(_))) => Err(Refusal::InvalidRequest(
            "authenticate the client one way: HTTP Basic or client_secret, not both".into(),
        )
        .into()),
        (Some(basic), (form_id, None)) => {
            let refused = |refusal| TokenRefusal {
                refusal,
                basic: true,
            };
            let (id, secret) = basic.map_err(refused)?;
            if form_id.is_some_and(|f| *f != id) {
                return Err(refused(Refusal::InvalidClient));
            }
            engine
                .oauth
                .authenticate_client(&id, &secret)
                .await
                .map_err(refused)
        }
        (None, (Some(id), Some(secret))) => {
            Ok(engine.oauth.authenticate_client(id, secret).await?)
        }
        (None, _) => Err(Refusal::InvalidClient.into()),
    }
}

#[derive(Serialize)]
struct TokenAnswer {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    scope: String,
}

impl From<Issued> for TokenAnswer {
    fn from(issued: Issued) -> Self {
        TokenAnswer {
            access_token: issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in_s,
            scope: engine::oauth::scope_text(&issued.scopes),
        }
    }
}

/// `POST /connect/token`.
async fn token(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TokenRefusal> {
    let params = form_params(&headers, &body)?;
    let client = token_client(&engine, &headers, &params).await?;
    let param = |name: &str| {
        params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let required = |name: &str| {
        param(name).ok_or_else(|| Refusal::InvalidRequest(format!("{name} is required")))
    };
    let issued = match param("grant_type") {
        Some("password") => {
            let scopes = client.scopes_for(param("scope"))?;
            let (username, password) = (required("username")?, required("password")?);
            let user = engine
                .accounts
                .login(username, password, param("otp_code"), &seen)
                .await
                .map_err(|err| match err {
                    engine::Error::InvalidCredentials => {
                        Refusal::InvalidGrant("invalid username or password".into())
                    }
                    engine::Error::CodeRequired | engine::Error::Invalid { .. } => {
                        Refusal::InvalidGrant(err.to_string())
                    }
                    other => Refusal::Engine(other),
                })?;
            engine
                .oauth
                .issue_for_password(&user, &client, &scopes)
                .await?
        }
        Some("authorization_code") => {
            let (code, redirect_uri) = (required("code")?, required("redirect_uri")?);
            let (_, issued) = engine
                .oauth
                .redeem_code(&client, code, redirect_uri, param("code_verifier"))
                .await?;
            issued
        }
        None => return Err(Refusal::InvalidRequest("grant_type is required".into()).into()),
        Some(_) => return Err(Refusal::UnsupportedGrantType.into()),
    };
    Ok((no_store(), Json(TokenAnswer::from(issued))).into_response())
}

// ---- The consent page's answer ----

#[derive(Deserialize)]
struct Decision {
    #[serde(flatten)]
    request: AuthorizationRequest,
    /// `approve` or `deny`.
    decision: String,
}

/// `POST /connect/authorize`: the consent form sent without JavaScript
/// (the page's script asks `app::api::oauth::decide_authorization`, the
/// same decision). The session cookie, and its CSRF token (`_csrf`, which
/// the gate checked).
async fn decide(
    State(engine): State<Engine>,
    SignedIn(caller): SignedIn,
    axum::Form(form): axum::Form<Decision>,
) -> Response {
    let approve = form.decision == "approve";
    match engine.oauth.decide(&caller, &form.request, approve).await {
        // 302 Found, as the spec shows it.
        Ok(Ok(url)) => (StatusCode::FOUND, [(header::LOCATION, url)]).into_response(),
        Ok(Err(why)) => (StatusCode::BAD_REQUEST, why).into_response(),
        Err(engine::Error::Forbidden(why)) => (StatusCode::FORBIDDEN, why).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "authorization decision");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

// ---- An application signs a person up ----

#[derive(Deserialize)]
struct RegisterParams {
    /// The spec's alternative to the Basic header: `base64(id:secret)`.
    #[serde(default)]
    auth: Option<String>,
    email: String,
    first_name: String,
    last_name: String,
    username: String,
    password: String,
}

/// `POST /api/register`: 200 with the new identity; 400 with the reason in
/// words (`message`, and the `field` at fault) when it is refused.
async fn register(
    State(engine): State<Engine>,
    SeenFrom(seen): SeenFrom,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bad = |status: StatusCode, message: &str, field: Option<&str>| {
        (status, Json(json!({"message": message, "field": field}))).into_response()
    };
    let params: RegisterParams = match serde_json::from_slice(&body) {
        Ok(params) => params,
        Err(err) => return bad(StatusCode::BAD_REQUEST, &err.to_string(), None),
    };
    let credentials = match basic_credentials(&headers) {
        Some(basic) => basic.ok(),
        None => params.auth.as_deref().and_then(decode_basic),
    };
    let authenticated = match credentials {
        Some((id, secret)) => engine.oauth.authenticate_client(&id, &secret).await,
        None => Err(Refusal::InvalidClient),
    };
    match authenticated {
        Ok(_) => {}
        Err(Refusal::Engine(err)) => {
            tracing::error!(error = %err, "register: client");
            return bad(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None);
        }
        Err(refusal) => {
            // The spec's words (`message`) beside RFC 6749's (`error`).
            let body = json!({"message": refusal.to_string(), "error": refusal.code()});
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"ampere\"")],
                Json(body),
            )
                .into_response();
        }
    }
    match engine
        .sign_up_named(
            &params.username,
            &params.password,
            &params.email,
            &params.first_name,
            &params.last_name,
            &seen.address,
        )
        .await
    {
        Ok(user) => Json(json!({
            "id": user.id.0,
            "login": user.username,
            "email": user.email,
            "first_name": params.first_name.trim(),
            "last_name": params.last_name.trim(),
        }))
        .into_response(),
        Err(err) if err.is_internal() => {
            tracing::error!(error = %err, "register");
            bad(StatusCode::INTERNAL_SERVER_ERROR, "internal error", None)
        }
        Err(err @ (engine::Error::Throttled { .. } | engine::Error::Forbidden(_))) => {
            let mut response = bad(app::api::http_status(&err), &err.to_string(), None);
            if let Some(wait) = err.retry_after() {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(wait.as_secs().max(1)),
                );
            }
            response
        }
        Err(err) => bad(StatusCode::BAD_REQUEST, &err.to_string(), err.field()),
    }
}

// ---- The person behind a token ----

#[derive(Serialize)]
struct AccountView {
    account_number: String,
    account_name: String,
    trade_platform: &'static str,
}

/// `GET /userinfo`: with the `profile` scope, the id, login, names and the
/// account's wallet and trading account; `email` with that scope.
async fn userinfo(State(engine): State<Engine>, SignedIn(caller): SignedIn) -> Response {
    let refuse = |status: StatusCode, code: &str, description: &str| {
        (
            status,
            Json(json!({"error": code, "error_description": description})),
        )
            .into_response()
    };
    let (profile_scope, email_scope) = match &caller.credential {
        Credential::OAuthToken { grant } => {
            (grant.has(OAuthScope::Profile), grant.has(OAuthScope::Email))
        }
        // The account's own credentials see everything of it.
        _ => (true, true),
    };
    if !profile_scope {
        return refuse(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "this token does not carry the profile scope",
        );
    }
    let user = &caller.user;
    let (profile, node) = match tokio::try_join!(
        engine.accounts.profile(&user.id.0),
        engine.wallet.node_id(user)
    ) {
        Ok(found) => found,
        Err(err) => {
            tracing::error!(error = %err, "userinfo");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal error",
            );
        }
    };
    let profile = profile.unwrap_or_default();
    Json(json!({
        "id": user.id.0,
        "login": user.username,
        "first_name": profile.first_name,
        "last_name": profile.last_name,
        "email": if email_scope { user.email.clone() } else { None },
        "accounts": [
            AccountView {
                account_number: format!("{node}@wallet"),
                account_name: format!("{} Lightning wallet", user.username),
                trade_platform: "Ampere wallet",
            },
            AccountView {
                account_number: format!("{}@desk", user.id.0),
                account_name: format!("{} BTC/USD futures", user.username),
                trade_platform: "Ampere desk",
            },
        ],
        "applications": [],
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_read_as_rfc_6749_writes_them() {
        // `app:my_secret`, the spec's example.
        assert_eq!(
            decode_basic("YXBwOm15X3NlY3JldA=="),
            Some(("app".into(), "my_secret".into()))
        );
        // Each part form-urlencoded: `a%3Ab:c+d` is `a:b` and `c d`.
        let encoded = base64::engine::general_purpose::STANDARD.encode("a%3Ab:c+d");
        assert_eq!(decode_basic(&encoded), Some(("a:b".into(), "c d".into())));
        assert_eq!(decode_basic("not base64!"), None);
        let colonless = base64::engine::general_purpose::STANDARD.encode("nocolon");
        assert_eq!(decode_basic(&colonless), None);
    }
}
