//! Who is calling, as server functions see it: the gate (`server/src/gate.rs`)
//! resolved the request's credential into an [`Identity`] before any route ran;
//! this module reads it and says what a route needs (`caller`, `writer`,
//! `payer`). It also starts and ends sessions (server side only).

use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use leptos::prelude::*;
use leptos_axum::ResponseOptions;
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::api::ApiError;
use engine::{Access, Caller, Engine, Seen, User};

/// What the session cookie stands for once signed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionAuth {
    pub user_id: String,
    pub auth_version: i64,
    /// The token cookie-authenticated writes must echo (`_csrf`).
    pub csrf: String,
    /// The sign-in's row among the account's sessions (`accounts::sessions`);
    /// empty in a session signed in before sessions had rows, which then
    /// signs in again.
    #[serde(default)]
    pub handle: String,
}

pub const SESSION_AUTH_KEY: &str = "auth";

/// Who the gate found the request to come from.
#[derive(Debug, Clone)]
pub enum Identity {
    /// No credential.
    Visitor,
    Caller(Caller),
    /// A credential that does not (or no longer) authenticate: never a visitor.
    Rejected,
}

/// The client's address as the gate worked it out (trusted proxies believed).
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

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

/// The identity providers this server signs in with: `(name, label)`, as the
/// operator configured them (`google`, `keycloak`, `github`).
#[derive(Debug, Clone, Default)]
pub struct SignInProviders(pub Vec<(String, String)>);

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

/// The caller, allowed to read the account's data (401 without a credential,
/// 403 for one that may not, such as a scoped desk token on the wallet).
pub async fn caller() -> Result<Caller, ApiError> {
    permitted(Access::Read).await
}

/// The caller, or `None` for a visitor. A credential that no longer
/// authenticates is 401, not a visitor; one that may not read is 403.
pub async fn signed_in() -> Result<Option<Caller>, ApiError> {
    match identity().await? {
        Some(caller) => {
            caller.permits(Access::Read).map_err(engine::Error::from)?;
            Ok(Some(caller))
        }
        None => Ok(None),
    }
}

/// Whoever the credential names, whatever it may do: see [`permitted`].
async fn identity() -> Result<Option<Caller>, ApiError> {
    match parts()?.extensions.get::<Identity>() {
        Some(Identity::Caller(caller)) => Ok(Some(caller.clone())),
        Some(Identity::Rejected) => Err(engine::Error::Unauthenticated.into()),
        Some(Identity::Visitor) | None => Ok(None),
    }
}

/// The caller, allowed to change the account's data: for the session cookie,
/// the request carried the CSRF token (403 otherwise). The gate looked for it in
/// the `X-CSRF-Token` header, the `_csrf` query parameter and the body's
/// `_csrf` (or a form's `csrf`) field, which is why server functions keep those
/// arguments without reading them.
pub async fn writer() -> Result<Caller, ApiError> {
    permitted(Access::Write).await
}

/// The caller, allowed to move the account's money out (`access`: the
/// wallet's payments or the desk's withdrawals) and, for a browser whose
/// account asks for it, with the password again.
pub async fn payer(access: Access, password: Option<&str>) -> Result<Caller, ApiError> {
    let caller = permitted(access).await?;
    if caller.must_recheck_password() {
        recheck(&caller, password).await?;
    }
    Ok(caller)
}

/// The caller, allowed `access`: 401 without a credential, 403 beyond what it
/// may do.
pub async fn permitted(access: Access) -> Result<Caller, ApiError> {
    let caller = identity().await?.ok_or(engine::Error::Unauthenticated)?;
    caller.permits(access).map_err(engine::Error::from)?;
    Ok(caller)
}

/// Checks the password of a browser's caller again (token callers pass: the
/// token is the credential).
pub async fn recheck(caller: &Caller, password: Option<&str>) -> Result<(), ApiError> {
    if !matches!(caller.credential, engine::Credential::Session { .. }) {
        return Ok(());
    }
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Err(engine::Error::invalid("password", "enter your password to confirm").into());
    };
    engine()?
        .accounts
        .recheck(&caller.user, password, &seen())
        .await?;
    Ok(())
}

/// Keeps a used session alive: the store only pushes a session's expiry when the
/// session changes, so a session in use is touched once a day.
pub async fn renew(session: &Session) {
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let now = engine::now_ms();
    let renewed: Option<i64> = session.get(RENEWED_KEY).await.ok().flatten();
    if renewed.is_none_or(|at| now - at > DAY_MS) {
        let _ = session.insert(RENEWED_KEY, now).await;
    }
}

const RENEWED_KEY: &str = "renewed_at";

/// Signs `user` in on this request's session: a fresh session id (so an id fixed
/// before login is worthless) and a fresh CSRF token.
pub async fn start_session(user: &User) -> Result<SessionAuth, ApiError> {
    renew_session(user, engine::random_hex(16)).await
}

/// Like [`start_session`], keeping the CSRF token the page already holds (after
/// a password change: the session id still moves on).
pub async fn renew_session(user: &User, csrf: String) -> Result<SessionAuth, ApiError> {
    let from = seen_of(&parts()?);
    Ok(switch_session(&engine()?, &session().await?, user, csrf, &from).await?)
}

/// Signs `user` in on `session` under a fresh id and the anti-forgery token
/// `csrf`, seen from `from`. The sign-in it replaces, if any, ends now in
/// every process (its streams, every cache), as at a logout, or it would
/// outlive the logout that follows, which names only the new sign-in.
pub async fn switch_session(
    engine: &Engine,
    session: &Session,
    user: &User,
    csrf: String,
    from: &Seen,
) -> Result<SessionAuth, engine::Error> {
    let signed_in: Option<SessionAuth> = session.get(SESSION_AUTH_KEY).await.ok().flatten();
    let auth = sign_in(engine, session, user, csrf, from).await?;
    if let Some(previous) = signed_in {
        engine
            .accounts
            .end_session(&previous.user_id, &previous.handle)
            .await?;
    }
    Ok(auth)
}

/// Signs `user` in on `session` with the anti-forgery token `csrf`, under a
/// fresh session id and a fresh row among the account's sessions.
pub async fn sign_in(
    engine: &Engine,
    session: &Session,
    user: &User,
    csrf: String,
    from: &Seen,
) -> Result<SessionAuth, engine::Error> {
    let internal =
        |e: tower_sessions::session::Error| engine::Error::Internal(format!("session: {e}"));
    session.cycle_id().await.map_err(internal)?;
    let auth = SessionAuth {
        user_id: user.id.0.clone(),
        auth_version: user.auth_version,
        csrf,
        handle: engine.accounts.open_session(user, from).await?,
    };
    session
        .insert(SESSION_AUTH_KEY, &auth)
        .await
        .map_err(internal)?;
    session
        .insert(RENEWED_KEY, engine::now_ms())
        .await
        .map_err(internal)?;
    session
        .remove_value(LNURL_AUTH_KEY)
        .await
        .map_err(internal)?;
    Ok(auth)
}

/// Where the request in `parts` comes from: the client's address (as the
/// gate worked it out) and its `User-Agent`.
pub fn seen_of(parts: &Parts) -> Seen {
    let agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Seen {
        address: client_address_of(&parts.extensions),
        user_agent: agent.to_string(),
    }
}

/// Where this server function's request comes from ("local" when served
/// without a request, as in tests).
pub fn seen() -> Seen {
    parts()
        .map(|p| seen_of(&p))
        .unwrap_or_else(|_| Seen::at("local"))
}

/// [`seen_of`] as an axum extractor, for the API handlers.
pub struct SeenFrom(pub Seen);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for SeenFrom {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(SeenFrom(seen_of(parts)))
    }
}

/// An LNURL-auth this browser session waits on: its `k1`, and the nonce the
/// challenge names the session by (a session id changes; this does not).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwaitedLnurlAuth {
    pub k1: String,
    pub nonce: String,
}

pub const LNURL_AUTH_KEY: &str = "lnurl_auth";

/// Remembers in this browser session that it waits on the LNURL-auth `k1`:
/// the gate signs the session in once a wallet has answered it.
/// The session moves to a fresh id first: a session id planted in the browser
/// beforehand (by a sibling site, say) is not the one that gets signed in.
pub async fn await_lnurl_auth(k1: String, nonce: String) -> Result<(), ApiError> {
    let session = session().await?;
    let internal = |e: tower_sessions::session::Error| {
        ApiError::from(engine::Error::Internal(format!("session: {e}")))
    };
    session.cycle_id().await.map_err(internal)?;
    session
        .insert(LNURL_AUTH_KEY, AwaitedLnurlAuth { k1, nonce })
        .await
        .map_err(internal)
}

/// Ends the session: deleted on the server, cookie cleared, and every process
/// told (its caches forget it, its event streams end) before this answers.
pub async fn end_session() -> Result<(), ApiError> {
    sign_out(&engine()?, &session().await?, &seen()).await?;
    Ok(())
}

/// Signs the browser of `session` out, seen from `from`: its session ends
/// everywhere and the account's activity log says so. Answers whether it
/// was signed in.
pub async fn sign_out(
    engine: &Engine,
    session: &Session,
    from: &Seen,
) -> Result<bool, engine::Error> {
    let auth: Option<SessionAuth> = session.get(SESSION_AUTH_KEY).await.ok().flatten();
    session
        .flush()
        .await
        .map_err(|e| engine::Error::Internal(format!("session: {e}")))?;
    let Some(auth) = auth else {
        return Ok(false);
    };
    engine
        .accounts
        .end_session(&auth.user_id, &auth.handle)
        .await?;
    engine
        .accounts
        .record(
            &auth.user_id,
            engine::accounts::activity::Topic::Session,
            "logout",
            engine::accounts::activity::Outcome::Succeed,
            from,
            serde_json::json!({}),
        )
        .await;
    Ok(true)
}

/// The address the throttles count attempts against.
pub fn client_address() -> String {
    parts()
        .map(|p| client_address_of(&p.extensions))
        .unwrap_or_else(|_| "local".to_string())
}

/// The client's address as the gate worked it out ("local" when served without
/// a socket, as in tests).
pub fn client_address_of(extensions: &axum::http::Extensions) -> String {
    extensions
        .get::<ClientAddress>()
        .map(|a| a.0.clone())
        .unwrap_or_else(|| "local".to_string())
}
