//! The one way in: every request passes here once, before any route. The gate
//! - works out the client's real address (`X-Forwarded-For` only from
//!   `--trusted-proxies`),
//! - refuses a state-changing request whose `Origin` is not this server (the
//!   public URL's or the listen address's host, never whatever `Host` says),
//!   and a WebSocket handshake from another `Origin` that carries the session
//!   cookie (a GET any page may make: cross-site WebSocket hijacking),
//! - resolves who is calling into one [`Identity`]: a bearer token (account,
//!   ACL or scoped desk token) or the `session` cookie, checked against the
//!   account's current credentials, and refuses what an ACL token's patterns
//!   do not allow (403 on every API, before any route),
//! - notes whether a cookie-authenticated request carried the session's CSRF
//!   token (header, query or body).
//!
//! Routes then say what they need: axum handlers take [`SignedIn`], server
//! functions call `app::api::auth::caller()` / `writer()` / `payer()`, both of
//! which read what the gate left in the request. Nothing else parses credentials.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, request::Parts, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ipnet::IpNet;
use tower_sessions::Session;

use app::api::auth::{
    AwaitedLnurlAuth, ClientAddress, Identity, SessionAuth, LNURL_AUTH_KEY, SESSION_AUTH_KEY,
};
use engine::{Caller, Credential, Engine};

/// What the gate needs to know about this server.
#[derive(Clone)]
pub struct Gate {
    engine: Engine,
    /// `host:port` authorities a browser's `Origin` may name.
    allowed_origins: Arc<Vec<String>>,
    trusted_proxies: Arc<Vec<IpNet>>,
}

/// Largest body the gate reads to find a `_csrf` field (forms and JSON calls
/// are far smaller; a bigger body must send the token in a header).
const CSRF_BODY_MAX: usize = 64 * 1024;

impl Gate {
    pub fn new(
        engine: Engine,
        public_url: &str,
        listen: SocketAddr,
        trusted_proxies: Vec<IpNet>,
    ) -> Self {
        let mut allowed = Vec::new();
        if let Some(public) = origin_authority(public_url) {
            allowed.push(public);
        }
        if !listen.ip().is_unspecified() {
            allowed.push(authority_of(&listen.ip().to_string(), listen.port()));
            if listen.ip().is_loopback() {
                allowed.push(format!("localhost:{}", listen.port()));
            }
        }
        Gate {
            engine,
            allowed_origins: Arc::new(allowed),
            trusted_proxies: Arc::new(trusted_proxies),
        }
    }

    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(origin) = headers.get(header::ORIGIN) else {
            // Not a browser's cross-site request: scripts, same-origin GETs.
            return true;
        };
        origin
            .to_str()
            .ok()
            .and_then(origin_authority)
            .is_some_and(|authority| self.allowed_origins.contains(&authority))
    }
}

/// The client's address: the peer, or for a trusted proxy the last address in
/// `X-Forwarded-For` that is not itself a trusted proxy (what a client wrote
/// further left is its own claim, not the proxy's).
fn client_address(trusted_proxies: &[IpNet], peer: Option<IpAddr>, headers: &HeaderMap) -> String {
    let Some(peer) = peer else {
        return "local".to_string();
    };
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer.to_string();
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted(&ip) {
                    break;
                }
            }
            // Garbage in the chain: believe nothing further left of it.
            Err(_) => break,
        }
    }
    client.to_string()
}

/// The middleware: runs the gate, then the route.
pub async fn admit(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    // The bundle and icons: nobody to identify.
    if request.uri().path().starts_with("/pkg/") {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let format = ErrorFormat::for_path(parts.uri.path());
    let writes = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if writes && !gate.origin_allowed(&parts.headers) {
        return format.error(StatusCode::FORBIDDEN, "cross-origin request refused");
    }
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let address = client_address(&gate.trusted_proxies, peer, &parts.headers);
    parts.extensions.insert(ClientAddress(address));

    let identity = match resolve(&gate.engine, &parts).await {
        Ok(identity) => identity,
        Err(err) => {
            tracing::error!(error = ?err, "resolving the caller failed");
            return format.error(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable");
        }
    };
    if let Identity::Caller(caller) = &identity {
        if let Err(denied) = caller.admits(parts.method.as_str(), parts.uri.path()) {
            return format.error(StatusCode::FORBIDDEN, &denied.to_string());
        }
    }
    if is_websocket_handshake(&parts.headers)
        && matches!(
            &identity,
            Identity::Caller(Caller {
                credential: Credential::Session { .. },
                ..
            })
        )
        && !gate.origin_allowed(&parts.headers)
    {
        return format.error(
            StatusCode::FORBIDDEN,
            "cross-origin WebSocket with the session cookie refused",
        );
    }
    let mut body = body;
    let identity = match identity {
        Identity::Caller(mut caller) => {
            if let Credential::Session {
                csrf,
                csrf_presented,
                ..
            } = &mut caller.credential
            {
                // A read's body is never read for it: only a header or the
                // query carries it there (a link that starts something).
                let (presented, kept) = if writes {
                    csrf_presented_in(&parts, body, csrf).await
                } else {
                    (csrf_outside_body(&parts, csrf).unwrap_or(false), body)
                };
                body = kept;
                *csrf_presented = presented;
            }
            Identity::Caller(caller)
        }
        other => other,
    };
    parts.extensions.insert(identity);
    next.run(Request::from_parts(parts, body)).await
}

/// Who the request's credential names, checked against the account's current
/// `auth_version`. A bearer token wins over the cookie; an invalid one is
/// `Rejected`, not a visitor. A session whose account moved on is deleted.
async fn resolve(engine: &Engine, parts: &Parts) -> Result<Identity, engine::Error> {
    if let Some(kid) = parts.headers.get("x-auth-apikey") {
        return signed_by_key(engine, &parts.headers, kid).await;
    }
    if let Some(token) = bearer_token(&parts.headers) {
        let Some((subject, version, credential)) = bearer_credential(engine, token).await? else {
            return Ok(Identity::Rejected);
        };
        return match engine.accounts.authenticate(&subject, version).await {
            Ok(user) => Ok(Identity::Caller(Caller { user, credential })),
            Err(engine::Error::Unauthenticated) => Ok(Identity::Rejected),
            Err(err) => Err(err),
        };
    }
    let Some(session) = parts.extensions.get::<Session>() else {
        return Ok(Identity::Visitor);
    };
    let session_error =
        |e: tower_sessions::session::Error| engine::Error::Internal(format!("session: {e}"));
    let auth: Option<SessionAuth> = session.get(SESSION_AUTH_KEY).await.map_err(session_error)?;
    let Some(auth) = auth else {
        return lnurl_auth_answered(engine, session, parts).await;
    };
    match engine
        .accounts
        .authenticate(&auth.user_id, auth.auth_version)
        .await
    {
        Ok(user) => {
            let from = app::api::auth::seen_of(parts);
            if !engine
                .accounts
                .session_stands(&auth.handle, &user, &from)
                .await?
            {
                // Ended from another session (or from before sessions had rows).
                let _ = session.flush().await;
                return Ok(Identity::Visitor);
            }
            app::api::auth::renew(session).await;
            Ok(session_caller(user, auth))
        }
        Err(engine::Error::Unauthenticated) => {
            let _ = session.flush().await;
            Ok(Identity::Visitor)
        }
        Err(err) => Err(err),
    }
}

/// The caller of a request signed with an API key (`X-Auth-Apikey`,
/// `X-Auth-Nonce`, `X-Auth-Signature`), or `Rejected` whatever is wrong: a
/// malformed header, a stale or reused nonce, another signature, a disabled
/// or deleted key.
async fn signed_by_key(
    engine: &Engine,
    headers: &HeaderMap,
    kid: &axum::http::HeaderValue,
) -> Result<Identity, engine::Error> {
    let text = |value: Option<&axum::http::HeaderValue>| {
        value
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (kid, nonce, signature) = (
        text(Some(kid)),
        text(headers.get("x-auth-nonce")),
        text(headers.get("x-auth-signature")),
    );
    let (user_id, grant) = match engine
        .api_keys
        .verify(&kid, &nonce, &signature, engine::now_ms())
        .await
    {
        Ok(verified) => verified,
        Err(engine::Error::Unauthenticated) => return Ok(Identity::Rejected),
        Err(err) => return Err(err),
    };
    Ok(match engine.accounts.get(&user_id).await? {
        Some(user) => Identity::Caller(Caller {
            user,
            credential: Credential::ApiKey { grant },
        }),
        None => Identity::Rejected,
    })
}

/// The account, `auth_version` and credential a bearer token names, if this
/// server issued it and it still works: an account token, an ACL token, an
/// application's OAuth token (`oat_…`, looked up in the database) or a scoped
/// desk token (each JWT kind has its own key, so at most one verifies).
async fn bearer_credential(
    engine: &Engine,
    token: &str,
) -> Result<Option<(String, i64, Credential)>, engine::Error> {
    if let Ok(claims) = engine.tokens.verify(token) {
        let credential = Credential::AccountToken {
            expires_at_ms: claims.exp.saturating_mul(1000),
        };
        return Ok(Some((claims.sub, claims.ver, credential)));
    }
    match engine.acls.verify(token).await {
        Ok(acl) => {
            let credential = Credential::AclToken {
                grant: acl.grant.clone(),
            };
            return Ok(Some((acl.user_id.clone(), acl.auth_version, credential)));
        }
        Err(engine::Error::Unauthenticated) => {}
        Err(err) => return Err(err),
    }
    if token.starts_with(engine::oauth::TOKEN_PREFIX) {
        return match engine.oauth.verify(token).await {
            Ok((user_id, version, grant)) => {
                let grant = std::sync::Arc::new(grant);
                Ok(Some((user_id, version, Credential::OAuthToken { grant })))
            }
            Err(engine::Error::Unauthenticated) => Ok(None),
            Err(err) => Err(err),
        };
    }
    match engine.desk.tokens.verify(token).await {
        Ok(claims) => {
            let credential = Credential::DeskToken {
                scopes: claims.scopes(),
                expires_at_ms: claims.exp.saturating_mul(1000),
                jti: claims.jti,
            };
            Ok(Some((claims.sub, claims.ver, credential)))
        }
        Err(engine::Error::Unauthenticated) => Ok(None),
        Err(err) => Err(err),
    }
}

/// A visitor's session waiting on an LNURL-auth: signed in once a wallet has
/// answered the challenge (the answer is handed over once), else a visitor.
async fn lnurl_auth_answered(
    engine: &Engine,
    session: &Session,
    parts: &Parts,
) -> Result<Identity, engine::Error> {
    let session_error =
        |e: tower_sessions::session::Error| engine::Error::Internal(format!("session: {e}"));
    let awaited: Option<AwaitedLnurlAuth> =
        session.get(LNURL_AUTH_KEY).await.map_err(session_error)?;
    let Some(awaited) = awaited else {
        return Ok(Identity::Visitor);
    };
    let Some(user) = engine
        .desk
        .claim_lnurl_auth(&awaited.k1, &awaited.nonce)
        .await?
    else {
        return Ok(Identity::Visitor);
    };
    let from = app::api::auth::seen_of(parts);
    let auth =
        app::api::auth::sign_in(engine, session, &user, engine::random_hex(16), &from).await?;
    Ok(session_caller(user, auth))
}

/// `user`, calling with the session signed in as `auth` (whether this
/// request carried the CSRF token is noted later, for writes).
fn session_caller(user: engine::User, auth: SessionAuth) -> Identity {
    Identity::Caller(Caller {
        user,
        credential: Credential::Session {
            id: auth.handle,
            csrf: auth.csrf,
            csrf_presented: false,
        },
    })
}

/// Whether the request carries `expected`: in `X-CSRF-Token`, the `_csrf` query
/// parameter, or the body's `_csrf` (JSON) / `_csrf` or `csrf` (form) field.
/// Answers the body to run the route with (read, when it had to be).
async fn csrf_presented_in(parts: &Parts, body: Body, expected: &str) -> (bool, Body) {
    let matches = |sent: &str| engine::same_secret(sent.as_bytes(), expected.as_bytes());
    if let Some(presented) = csrf_outside_body(parts, expected) {
        return (presented, body);
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let json = content_type.starts_with("application/json");
    let form = content_type.starts_with("application/x-www-form-urlencoded");
    if !json && !form {
        return (false, body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, CSRF_BODY_MAX).await else {
        // Too big or broken: the route would fail reading it anyway.
        return (false, Body::empty());
    };
    let sent = if json {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("_csrf").and_then(|t| t.as_str()).map(str::to_string))
    } else {
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| form_field(text, &["_csrf", "csrf"]))
    };
    (sent.is_some_and(|s| matches(&s)), Body::from(bytes))
}

/// Whether the `X-CSRF-Token` header, else the `_csrf` query parameter,
/// carries `expected`; `None` when neither is there.
fn csrf_outside_body(parts: &Parts, expected: &str) -> Option<bool> {
    let matches = |sent: &str| engine::same_secret(sent.as_bytes(), expected.as_bytes());
    if let Some(sent) = parts.headers.get("x-csrf-token") {
        return Some(sent.to_str().is_ok_and(matches));
    }
    parts
        .uri
        .query()
        .and_then(|q| form_field(q, &["_csrf"]))
        .map(|sent| matches(&sent))
}

/// The first of `names` in an `application/x-www-form-urlencoded` text.
fn form_field(text: &str, names: &[&str]) -> Option<String> {
    form_urlencoded::parse(text.as_bytes())
        .find(|(key, _)| names.contains(&key.as_ref()))
        .map(|(_, value)| value.into_owned())
}

fn is_websocket_handshake(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The bearer token of `Authorization`, or else of `Authentication` (the
/// header `specs/lime-oauth2.md` names in its prose).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .or_else(|| headers.get("authentication"))?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `host:port` of an origin or URL (`scheme://host[:port][/...]`), lower case,
/// the port filled in from the scheme.
fn origin_authority(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    // `[::1]:3000`, `[::1]`, `host:3000`, `host`.
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, port.parse::<u16>().ok()?),
        _ => (authority, default_port),
    };
    Some(authority_of(host, port))
}

fn authority_of(host: &str, port: u16) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    format!("{}:{port}", host.to_ascii_lowercase())
}

/// The error body each API speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorFormat {
    /// `{"error": {"message": ...}}`: myLightning, the pages' calls, the simnet.
    MyLightning,
    /// `{"detail": ...}`: the LNbits account API.
    Detail,
    /// `{"message": ...}`: the LN-Markets API under `/lnm`.
    Lnm,
    /// `{"status": "ERROR", "reason": ...}`: the LNURL routes wallets call.
    Lnurl,
    /// `{"errors": [code], "message": ...}`: the exchange identity API under
    /// `/api/v2/auth`.
    Errors,
}

impl ErrorFormat {
    /// The format of the route at `path` (the pages' own calls speak
    /// myLightning's).
    pub fn for_path(path: &str) -> Self {
        Self::of_api(path).unwrap_or(ErrorFormat::MyLightning)
    }

    /// The format of the API `path` belongs to, or `None` for a page.
    pub fn of_api(path: &str) -> Option<Self> {
        Some(if path.starts_with("/api/v1/auth") {
            ErrorFormat::Detail
        } else if path.starts_with("/api/v2/auth") {
            ErrorFormat::Errors
        } else if path.starts_with("/lnm/lnurl/") && !path.starts_with("/lnm/lnurl/a/c") {
            ErrorFormat::Lnurl
        } else if path == "/lnm" || path.starts_with("/lnm/") {
            ErrorFormat::Lnm
        } else if path.starts_with("/rest/") || path.starts_with("/api/") {
            ErrorFormat::MyLightning
        } else {
            return None;
        })
    }

    pub fn error(self, status: StatusCode, message: &str) -> Response {
        let body = match self {
            ErrorFormat::MyLightning => serde_json::json!({ "error": { "message": message } }),
            ErrorFormat::Detail => serde_json::json!({ "detail": message }),
            ErrorFormat::Lnm => serde_json::json!({ "message": message }),
            ErrorFormat::Lnurl => serde_json::json!({ "status": "ERROR", "reason": message }),
            ErrorFormat::Errors => {
                let code = match status.as_u16() {
                    400 => "server.bad_request",
                    401 => "authz.invalid_session",
                    403 => "authz.access_denied",
                    404 => "server.not_found",
                    413 => "server.payload_too_large",
                    429 => "authz.too_many_requests",
                    500..=599 => "server.internal_error",
                    _ => "server.refused",
                };
                serde_json::json!({ "errors": [code], "message": message })
            }
        };
        (status, Json(body)).into_response()
    }
}

/// An axum handler's signed-in caller, allowed to read the account (the wallet's
/// and account API's routes: a scoped desk token is 403 here); 401 in the
/// route's own format without a credential. Writes ask `Caller::permits` more.
pub struct SignedIn(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let format = ErrorFormat::for_path(parts.uri.path());
        match parts.extensions.get::<Identity>() {
            Some(Identity::Caller(caller)) => match caller.permits(engine::Access::Read) {
                Ok(()) => Ok(SignedIn(caller.clone())),
                Err(denied) => Err(format.error(StatusCode::FORBIDDEN, &denied.to_string())),
            },
            _ => Err(format.error(StatusCode::UNAUTHORIZED, "authentication required")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_by_scheme_host_and_port() {
        assert_eq!(
            origin_authority("https://Wallet.Example").as_deref(),
            Some("wallet.example:443")
        );
        assert_eq!(
            origin_authority("http://127.0.0.1:3000/path").as_deref(),
            Some("127.0.0.1:3000")
        );
        assert_eq!(
            origin_authority("http://[::1]:8080").as_deref(),
            Some("::1:8080")
        );
        assert_eq!(origin_authority("null"), None);
        assert_eq!(origin_authority("http://user@evil.example"), None);
        assert_eq!(origin_authority("ftp://wallet.example"), None);
    }

    #[test]
    fn forwarded_addresses_are_believed_only_from_trusted_proxies() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.7".parse().unwrap(),
        );
        let client = |peer: &str| client_address(&proxies, peer.parse().ok(), &headers);
        // From the proxy: the last hop that is not a proxy (a client cannot
        // forge what the proxies appended).
        assert_eq!(client("10.0.0.1"), "1.2.3.4");
        // From anyone else: the peer, whatever the header says.
        assert_eq!(client("5.5.5.5"), "5.5.5.5");
        // Garbage stops the walk: the last good hop counts.
        headers.insert(
            "x-forwarded-for",
            "1.2.3.4, junk, 10.0.0.7".parse().unwrap(),
        );
        let client = |peer: &str| client_address(&proxies, peer.parse().ok(), &headers);
        assert_eq!(client("10.0.0.1"), "10.0.0.7");
    }
}
