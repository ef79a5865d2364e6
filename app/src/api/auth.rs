//! Who is calling (server side only): a `session` cookie or an `Authorization:
//! Bearer` token, each checked against the account's current `auth_version`, and
//! the CSRF rule for cookie-authenticated writes.

use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::api::ApiError;
use engine::{Engine, User};

/// What the session cookie stands for once signed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionAuth {
    pub user_id: String,
    pub auth_version: i64,
    /// The token cookie-authenticated writes must echo (`_csrf`).
    pub csrf: String,
}

pub const SESSION_AUTH_KEY: &str = "auth";

/// How the caller proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    Session { csrf: String },
    Bearer,
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub credential: Credential,
}

/// The URL people and wallets reach this server at (`--public-url`).
#[derive(Debug, Clone)]
pub struct PublicUrl(pub String);

impl PublicUrl {
    /// `host:port` of the URL, the port filled in from the scheme when absent.
    pub fn host_port(&self) -> String {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("http", &self.0));
        let authority = rest.split('/').next().unwrap_or_default();
        if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            let port = if scheme == "https" { 443 } else { 80 };
            format!("{authority}:{port}")
        }
    }

    pub fn port(&self) -> u16 {
        self.host_port()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(80)
    }
}

pub fn public_host_port() -> String {
    use_context::<PublicUrl>()
        .map(|u| u.host_port())
        .unwrap_or_else(|| "127.0.0.1:3000".into())
}

pub fn public_port() -> u16 {
    use_context::<PublicUrl>().map_or(3000, |u| u.port())
}

pub fn engine() -> Result<Engine, ApiError> {
    use_context::<Engine>().ok_or_else(|| ApiError::new("engine missing from context"))
}

/// Sets the response status of the running server function. A plain HTML form
/// post (JavaScript off) keeps the framework's redirect back to the form, which
/// carries the error in its URL; a status here would replace that redirect.
pub fn set_status(status: impl TryInto<StatusCode>) {
    let form_post = use_context::<Parts>().is_some_and(|parts| {
        let header_has = |name, text: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains(text))
        };
        // What the framework redirects: a browser's form post, which has a Referer.
        header_has(header::ACCEPT, "text/html")
            && header_has(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            && parts.headers.contains_key(header::REFERER)
    });
    if let (false, Some(opts), Ok(status)) = (
        form_post,
        use_context::<ResponseOptions>(),
        status.try_into(),
    ) {
        opts.set_status(status);
    }
}

fn parts() -> Result<Parts, ApiError> {
    use_context::<Parts>().ok_or_else(|| ApiError::new("request missing from context"))
}

async fn session() -> Result<Session, ApiError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| ApiError::new(format!("session layer missing: {e}")))
}

/// The caller, or 401.
pub async fn caller() -> Result<Caller, ApiError> {
    signed_in()
        .await?
        .ok_or_else(|| engine::Error::Unauthenticated.into())
}

/// The caller, or `None` for a visitor (or a stale credential).
pub async fn signed_in() -> Result<Option<Caller>, ApiError> {
    let engine = engine()?;
    let parts = parts()?;
    let session = session().await?;
    Ok(identify(&engine, &parts.headers, &session).await?)
}

/// Resolves the credential a request carries. A bearer token wins over the cookie
/// when both are sent, and an invalid one is an error rather than a visitor. A
/// session whose account moved on (password changed, account deleted) is deleted.
pub async fn identify(
    engine: &Engine,
    headers: &HeaderMap,
    session: &Session,
) -> Result<Option<Caller>, engine::Error> {
    if let Some(token) = bearer_token(headers) {
        let claims = engine.tokens.verify(token)?;
        let user = engine
            .accounts
            .authenticate(&claims.sub, claims.ver)
            .await?;
        return Ok(Some(Caller {
            user,
            credential: Credential::Bearer,
        }));
    }
    let auth: Option<SessionAuth> = session
        .get(SESSION_AUTH_KEY)
        .await
        .map_err(|e| engine::Error::Internal(format!("session: {e}")))?;
    let Some(auth) = auth else {
        return Ok(None);
    };
    match engine
        .accounts
        .authenticate(&auth.user_id, auth.auth_version)
        .await
    {
        Ok(user) => {
            renew(session).await;
            Ok(Some(Caller {
                user,
                credential: Credential::Session { csrf: auth.csrf },
            }))
        }
        Err(engine::Error::Unauthenticated) => {
            let _ = session.flush().await;
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// Keeps a used session alive: the store only pushes a session's expiry when the
/// session changes, so a session in use is touched once a day.
async fn renew(session: &Session) {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let now = engine::now_ms();
    let renewed: Option<i64> = session.get(RENEWED_KEY).await.ok().flatten();
    if renewed.is_none_or(|at| now - at > DAY_MS) {
        let _ = session.insert(RENEWED_KEY, now).await;
    }
}

const RENEWED_KEY: &str = "renewed_at";

/// The caller, checked for a write: a cookie-authenticated caller must present
/// the session's CSRF token, in the `_csrf` query parameter, the `X-CSRF-Token`
/// header or (for HTML forms) the `csrf` argument; else 403.
pub async fn writer(form_csrf: Option<&str>) -> Result<Caller, ApiError> {
    let caller = caller().await?;
    if !csrf_ok(&caller, &parts()?, form_csrf) {
        set_status(403);
        return Err(ApiError::new("missing or invalid CSRF token"));
    }
    Ok(caller)
}

/// Whether a write may go ahead: always for a bearer token; for the session
/// cookie, only with the session's CSRF token (form field, `X-CSRF-Token` header
/// or `_csrf` query parameter).
pub fn csrf_ok(caller: &Caller, parts: &Parts, form_csrf: Option<&str>) -> bool {
    match &caller.credential {
        Credential::Bearer => true,
        Credential::Session { csrf } => form_csrf
            .map(str::to_string)
            .or_else(|| csrf_from_request(parts))
            .is_some_and(|sent| constant_time_eq(sent.as_bytes(), csrf.as_bytes())),
    }
}

/// The caller, checked for a money movement: a write (CSRF for cookies) and, for
/// a cookie-authenticated caller whose account asks for it, the password again.
/// A bearer token is its own credential and skips the re-check.
pub async fn payer(password: Option<&str>, form_csrf: Option<&str>) -> Result<Caller, ApiError> {
    let caller = writer(form_csrf).await?;
    if caller.user.recheck_password {
        recheck(&caller, password).await?;
    }
    Ok(caller)
}

/// Checks the password of a cookie-authenticated caller again (bearer callers
/// pass: the token is the credential).
pub async fn recheck(caller: &Caller, password: Option<&str>) -> Result<(), ApiError> {
    if matches!(caller.credential, Credential::Bearer) {
        return Ok(());
    }
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Err(engine::Error::invalid("password", "enter your password to confirm").into());
    };
    engine()?
        .accounts
        .recheck(&caller.user, password, &client_address())
        .await?;
    Ok(())
}

/// Signs `user` in on this request's session: a fresh session id (so an id fixed
/// before login is worthless) and a fresh CSRF token.
pub async fn start_session(user: &User) -> Result<SessionAuth, ApiError> {
    renew_session(user, engine::random_hex(16)).await
}

/// Like [`start_session`], keeping the CSRF token the page already holds (after
/// a password change: the session id still moves on).
pub async fn renew_session(user: &User, csrf: String) -> Result<SessionAuth, ApiError> {
    let session = session().await?;
    let internal = |e: tower_sessions::session::Error| {
        ApiError::from(engine::Error::Internal(format!("session: {e}")))
    };
    session.cycle_id().await.map_err(internal)?;
    let auth = SessionAuth {
        user_id: user.id.0.clone(),
        auth_version: user.auth_version,
        csrf,
    };
    session
        .insert(SESSION_AUTH_KEY, &auth)
        .await
        .map_err(internal)?;
    session
        .insert(RENEWED_KEY, engine::now_ms())
        .await
        .map_err(internal)?;
    Ok(auth)
}

/// Ends the session: deleted on the server, cookie cleared.
pub async fn end_session() -> Result<(), ApiError> {
    session()
        .await?
        .flush()
        .await
        .map_err(|e| ApiError::from(engine::Error::Internal(format!("session: {e}"))))
}

/// The address the login throttle counts failures against.
pub fn client_address() -> String {
    parts()
        .map(|p| client_address_of(&p.extensions))
        .unwrap_or_else(|_| "local".to_string())
}

/// The peer's IP address as the server saw it ("local" when served without a
/// socket, as in tests).
pub fn client_address_of(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip().to_string())
        .unwrap_or_else(|| "local".to_string())
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn csrf_from_request(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get("x-csrf-token") {
        return value.to_str().ok().map(str::to_string);
    }
    let query = parts.uri.query()?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "_csrf").then(|| value.to_string())
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
