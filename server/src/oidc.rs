//! Sign-in through the identity providers the operator configured: Google and
//! Keycloak by OpenID Connect, GitHub by OAuth 2.0 and its user endpoint, at
//! the paths of `specs/lnbits-users-accounts-api.txt`.
//!
//! - `GET /api/v1/auth/{provider}` sends the browser to the provider with an
//!   authorization-code request: PKCE (S256), a random `state` and, for OpenID
//!   Connect, a `nonce`, remembered in the database for 10 minutes under the
//!   state and bound to this browser by a cookie of its own (`provider_flow`,
//!   see `engine::accounts::provider_flows`). A code and state carried to
//!   another browser (a login forged by someone else) find nothing.
//! - `GET /api/v1/auth/{provider}/link?_csrf=...` does the same from the
//!   security page (the session, and its CSRF token: a link, since a form's
//!   redirect to another origin is blocked by the pages' `form-action 'self'`)
//!   to link the provider's account to this one.
//! - `GET /api/v1/auth/{provider}/token?code&state` is where the provider
//!   sends the browser back: the code is exchanged with the client's secret
//!   and the PKCE verifier, the ID token verified against the provider's
//!   published keys (signature, issuer, audience, expiry, nonce), and the
//!   browser signed in under a fresh session to the account the provider's
//!   subject signs in to (made at its first sign-in), or the subject linked.
//!   A refusal goes back to the sign-in (or security) page with its reason.
//! - `POST /api/v1/auth/{provider}/token {code, state}` is the same for a
//!   client that follows the redirects itself (keeping that cookie):
//!   it answers a bearer token, refusals as `{"detail": ...}`.
//!
//! A provider's account is stored as a sign-in key `<provider>:<subject>` of
//! kind `<provider>` (see `engine::accounts::KEY_KINDS`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AsyncHttpClient, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest,
    HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;
use tower_sessions::Session;

use crate::accounts_api::{Body, DetailError};
use crate::gate::SignedIn;
use crate::outbound::HttpClient;
use crate::AppState;
use app::api::auth::{SeenFrom, SessionAuth, SESSION_AUTH_KEY};
use engine::accounts::provider_flows::ProviderFlow;
use engine::Seen;
use engine::{Engine, User};

/// How long one request to a provider may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from a provider.
const BODY_MAX: usize = 256 * 1024;
/// The cookie binding a started sign-in to its browser.
const FLOW_COOKIE: &str = "provider_flow";

/// The providers Ampere knows how to sign in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Google,
    Keycloak,
    Github,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Google, Kind::Keycloak, Kind::Github];

    /// The name in the routes, and the kind of its sign-in keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Google => "google",
            Kind::Keycloak => "keycloak",
            Kind::Github => "github",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Google => "Google",
            Kind::Keycloak => "Keycloak",
            Kind::Github => "GitHub",
        }
    }

    fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One provider as the operator configured it.
#[derive(Clone)]
pub struct ProviderSettings {
    pub kind: Kind,
    pub client_id: String,
    pub client_secret: String,
    /// OpenID Connect: the issuer (its discovery document is read from
    /// `<issuer>/.well-known/openid-configuration`). GitHub: the web address
    /// (`https://github.com`, or a GitHub Enterprise server's).
    pub issuer: String,
    /// GitHub only: its REST API's address (`https://api.github.com`).
    pub api: String,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("client_secret", &"(hidden)")
            .field("issuer", &self.issuer)
            .field("api", &self.api)
            .finish()
    }
}

/// The configured providers and what signing in with them needs.
pub struct Providers {
    configured: Vec<ProviderSettings>,
    public_url: String,
    /// Whether cookies are marked `Secure`.
    secure_cookies: bool,
    http: ProviderHttp,
    /// Discovery documents (with the keys they name), read again after a
    /// while and whenever an ID token does not verify (the keys rotated).
    discovered: moka::future::Cache<Kind, CoreProviderMetadata>,
}

/// What the provider said about the person who came back.
struct Identity {
    subject: String,
    /// A username to offer a new account.
    alias: Option<String>,
}

/// Why a sign-in through a provider did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("no sign-in provider named {0:?} is configured here")]
    Unknown(String),
    #[error(
        "this sign-in was not started in this browser, or took longer than 10 minutes: start again"
    )]
    State,
    #[error("the provider refused the sign-in: {0}")]
    Provider(String),
    #[error("the provider did not accept the code: {0}")]
    Code(String),
    #[error("the provider's ID token did not verify: {0}")]
    Token(String),
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

impl Refused {
    /// The reason's short name, for the page the browser is sent back to.
    fn code(&self) -> &'static str {
        match self {
            Refused::Unknown(_) => "unknown",
            Refused::State => "state",
            Refused::Provider(_) => "refused",
            Refused::Code(_) | Refused::Token(_) => "failed",
            Refused::Unreachable(_) => "unreachable",
            Refused::Engine(engine::Error::Conflict(_)) => "taken",
            Refused::Engine(engine::Error::Forbidden(_)) => "closed",
            Refused::Engine(engine::Error::Throttled { .. }) => "throttled",
            Refused::Engine(_) => "failed",
        }
    }
}

impl From<Refused> for DetailError {
    fn from(refused: Refused) -> Self {
        let status = match &refused {
            Refused::Engine(_) => return DetailError::from(refused.into_engine_error()),
            Refused::Unknown(_) => StatusCode::NOT_FOUND,
            Refused::State | Refused::Provider(_) => StatusCode::BAD_REQUEST,
            Refused::Code(_) | Refused::Token(_) => StatusCode::UNAUTHORIZED,
            Refused::Unreachable(_) => StatusCode::BAD_GATEWAY,
        };
        DetailError::new(status, refused.to_string())
    }
}

impl Refused {
    fn into_engine_error(self) -> engine::Error {
        match self {
            Refused::Engine(err) => err,
            other => engine::Error::Internal(other.to_string()),
        }
    }
}

/// A provider's HTTP answer could not be had.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Unreachable(String);

impl ProviderSettings {
    /// Refuses a provider reached over plain HTTP beyond this machine: the
    /// client secret, and GitHub's unsigned answer of who signed in, would
    /// cross the network in the clear.
    pub fn check(&self) -> Result<(), String> {
        for url in [&self.issuer, &self.api]
            .into_iter()
            .filter(|u| !u.is_empty())
        {
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|l| {
                    url.strip_prefix(l)
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
                });
            if !url.starts_with("https://") && !loopback {
                return Err(format!(
                    "{} sign-in: {url} is not an https:// address",
                    self.kind.label()
                ));
            }
        }
        Ok(())
    }
}

impl Providers {
    pub fn new(
        configured: Vec<ProviderSettings>,
        public_url: &str,
        secure_cookies: bool,
    ) -> Result<Self, engine::Error> {
        Ok(Providers {
            configured,
            public_url: public_url.trim_end_matches('/').to_string(),
            secure_cookies,
            http: ProviderHttp(crate::outbound::client()?),
            discovered: moka::future::Cache::builder()
                .time_to_live(Duration::from_secs(3600))
                .build(),
        })
    }

    /// The configured providers, in the order the sign-in page offers them.
    pub fn kinds(&self) -> Vec<Kind> {
        self.configured.iter().map(|p| p.kind).collect()
    }

    fn settings(&self, name: &str) -> Result<&ProviderSettings, Refused> {
        Kind::parse(name)
            .and_then(|kind| self.configured.iter().find(|p| p.kind == kind))
            .ok_or_else(|| Refused::Unknown(engine::cut(name, 40).to_string()))
    }

    /// Where the provider sends the browser back (registered with it).
    fn redirect_url(&self, kind: Kind) -> Result<RedirectUrl, Refused> {
        RedirectUrl::new(format!(
            "{}/api/v1/auth/{}/token",
            self.public_url,
            kind.as_str()
        ))
        .map_err(|e| Refused::Engine(engine::Error::Internal(format!("public URL: {e}"))))
    }

    /// Starts a sign-in (or, with `link_to`, a link) for the browser holding
    /// the flow cookie `browser`: the provider's authorization URL to send it
    /// to.
    async fn begin(
        &self,
        accounts: &engine::accounts::Accounts,
        name: &str,
        link_to: Option<&User>,
        browser: &str,
    ) -> Result<String, Refused> {
        let provider = self.settings(name)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = match provider.kind {
            Kind::Github => {
                let client = github_client(provider, self.redirect_url(provider.kind)?)?;
                let mut request = client
                    .authorize_url(CsrfToken::new_random)
                    .add_scope(Scope::new("read:user".into()))
                    .set_pkce_challenge(challenge);
                if link_to.is_some() {
                    // Which GitHub account to link is the person's choice,
                    // not whichever this browser is signed in to.
                    request = request.add_extra_param("prompt", "select_account");
                }
                let (url, state) = request.url();
                (url, state, None)
            }
            Kind::Google | Kind::Keycloak => {
                let metadata = self.metadata(provider, false).await?;
                let client = self.oidc_client(provider, metadata)?;
                let mut request = client
                    .authorize_url(
                        CoreAuthenticationFlow::AuthorizationCode,
                        CsrfToken::new_random,
                        Nonce::new_random,
                    )
                    .add_scope(Scope::new("email".into()))
                    .add_scope(Scope::new("profile".into()))
                    .set_pkce_challenge(challenge);
                if link_to.is_some() {
                    // The person signs in at the provider again: linking
                    // never takes whoever this browser is signed in as there.
                    request = request.add_prompt(openidconnect::core::CoreAuthPrompt::Login);
                }
                let (url, state, nonce) = request.url();
                (url, state, Some(nonce.secret().clone()))
            }
        };
        let flow = ProviderFlow {
            provider: provider.kind.as_str().to_string(),
            verifier: verifier.secret().clone(),
            nonce,
            link_to: link_to.map(|u| u.id.0.clone()),
        };
        accounts
            .begin_provider_flow(state.secret(), browser, &flow)
            .await?;
        Ok(url.to_string())
    }

    /// A `Set-Cookie` value binding started sign-ins to this browser.
    fn flow_cookie(&self, browser: &str) -> String {
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        format!(
            "{FLOW_COOKIE}={browser}; Path=/api/v1/auth; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
            engine::accounts::provider_flows::FLOW_LIFETIME_MS / 1000
        )
    }

    /// Exchanges the provider's `code` for who signed in.
    async fn identify(&self, pending: &ProviderFlow, code: &str) -> Result<Identity, Refused> {
        let provider = self.settings(&pending.provider)?;
        let code = AuthorizationCode::new(code.to_string());
        let verifier = PkceCodeVerifier::new(pending.verifier.clone());
        match provider.kind {
            Kind::Github => {
                let client = github_client(provider, self.redirect_url(provider.kind)?)?;
                let token = client
                    .exchange_code(code)
                    .set_pkce_verifier(verifier)
                    .request_async(&self.http)
                    .await
                    .map_err(token_refusal)?;
                self.github_user(provider, token.access_token().secret())
                    .await
            }
            Kind::Google | Kind::Keycloak => {
                let metadata = self.metadata(provider, false).await?;
                let client = self.oidc_client(provider, metadata)?;
                let token = client
                    .exchange_code(code)
                    .map_err(|e| Refused::Code(e.to_string()))?
                    .set_pkce_verifier(verifier)
                    .request_async(&self.http)
                    .await
                    .map_err(token_refusal)?;
                let id_token = token
                    .id_token()
                    .ok_or_else(|| Refused::Token("the answer carries no ID token".into()))?;
                let nonce = Nonce::new(pending.nonce.clone().unwrap_or_default());
                let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
                    Ok(claims) => claims.clone(),
                    Err(first) => {
                        // The keys may have rotated since discovery: read
                        // them again once before refusing.
                        let metadata = self.metadata(provider, true).await?;
                        let client = self.oidc_client(provider, metadata)?;
                        let verified = id_token
                            .claims(&client.id_token_verifier(), &nonce)
                            .map_err(|_| Refused::Token(first.to_string()))?
                            .clone();
                        verified
                    }
                };
                let alias = claims
                    .preferred_username()
                    .map(|u| u.as_str().to_string())
                    .or_else(|| {
                        claims
                            .email()
                            .and_then(|e| e.as_str().split('@').next().map(str::to_string))
                    });
                Ok(Identity {
                    subject: claims.subject().as_str().to_string(),
                    alias,
                })
            }
        }
    }

    /// GitHub's user endpoint: the account's numeric id and login.
    async fn github_user(
        &self,
        provider: &ProviderSettings,
        access_token: &str,
    ) -> Result<Identity, Refused> {
        #[derive(Deserialize)]
        struct GithubUser {
            id: u64,
            login: Option<String>,
        }
        let request = openidconnect::http::Request::get(format!("{}/user", provider.api))
            .header("accept", "application/vnd.github+json")
            .header("authorization", format!("Bearer {access_token}"))
            .body(Vec::new())
            .map_err(|e| Refused::Unreachable(e.to_string()))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|e| Refused::Unreachable(e.0))?;
        if !response.status().is_success() {
            return Err(Refused::Token(format!(
                "the user endpoint answered {}",
                response.status()
            )));
        }
        let user: GithubUser = serde_json::from_slice(response.body())
            .map_err(|_| Refused::Token("the user endpoint's answer could not be read".into()))?;
        Ok(Identity {
            subject: user.id.to_string(),
            alias: user.login,
        })
    }

    /// The provider's discovery document and keys (`fresh`: read again).
    async fn metadata(
        &self,
        provider: &ProviderSettings,
        fresh: bool,
    ) -> Result<CoreProviderMetadata, Refused> {
        if !fresh {
            if let Some(metadata) = self.discovered.get(&provider.kind).await {
                return Ok(metadata);
            }
        }
        let issuer = IssuerUrl::new(provider.issuer.clone())
            .map_err(|e| Refused::Unreachable(format!("issuer: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| Refused::Unreachable(format!("discovery: {e}")))?;
        self.discovered
            .insert(provider.kind, metadata.clone())
            .await;
        Ok(metadata)
    }

    fn oidc_client(
        &self,
        provider: &ProviderSettings,
        metadata: CoreProviderMetadata,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        Refused,
    > {
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.client_id.clone()),
            Some(ClientSecret::new(provider.client_secret.clone())),
        )
        .set_redirect_uri(self.redirect_url(provider.kind)?))
    }
}

/// The HTTP client the OAuth 2.0 and OpenID Connect requests go through.
struct ProviderHttp(HttpClient<Full<Bytes>>);

impl ProviderHttp {
    /// One request to a provider: bounded in time and size, never redirected.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, Unreachable> {
        // The answer's body too: a provider trickling it cannot hold a sign-in.
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(request))
            .await
            .map_err(|_| Unreachable("timed out".into()))?
    }

    async fn exchange(&self, request: HttpRequest) -> Result<HttpResponse, Unreachable> {
        let (mut parts, body) = request.into_parts();
        parts
            .headers
            .entry(hyper::header::USER_AGENT)
            .or_insert(hyper::header::HeaderValue::from_static("ampere"));
        let request = hyper::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let response = self
            .0
            .request(request)
            .await
            .map_err(|e| Unreachable(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, BODY_MAX)
            .collect()
            .await
            .map_err(|e| Unreachable(e.to_string()))?
            .to_bytes();
        Ok(HttpResponse::from_parts(parts, body.to_vec()))
    }
}

impl<'c> AsyncHttpClient<'c> for ProviderHttp {
    type Error = Unreachable;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, Unreachable>> + Send + 'c>,
    >;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

type GithubClient = oauth2::basic::BasicClient<
    oauth2::EndpointSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

/// GitHub's OAuth 2.0 endpoints (no discovery, no ID token).
fn github_client(
    provider: &ProviderSettings,
    redirect: RedirectUrl,
) -> Result<GithubClient, Refused> {
    let web = provider.issuer.trim_end_matches('/');
    let bad = |e: oauth2::url::ParseError| Refused::Unreachable(format!("GitHub address: {e}"));
    Ok(
        oauth2::basic::BasicClient::new(oauth2::ClientId::new(provider.client_id.clone()))
            .set_client_secret(oauth2::ClientSecret::new(provider.client_secret.clone()))
            .set_auth_uri(AuthUrl::new(format!("{web}/login/oauth/authorize")).map_err(bad)?)
            .set_token_uri(TokenUrl::new(format!("{web}/login/oauth/access_token")).map_err(bad)?)
            .set_redirect_uri(redirect),
    )
}

/// A token endpoint's refusal, as the sign-in's.
fn token_refusal<RE, T>(err: RequestTokenError<RE, T>) -> Refused
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + 'static,
{
    match err {
        RequestTokenError::ServerResponse(response) => Refused::Code(response.to_string()),
        RequestTokenError::Request(e) => Refused::Unreachable(e.to_string()),
        RequestTokenError::Parse(..) => Refused::Code("the answer could not be read".into()),
        RequestTokenError::Other(e) => Refused::Code(e),
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/{provider}", get(start))
        .route("/api/v1/auth/{provider}/link", get(start_link))
        .route(
            "/api/v1/auth/{provider}/token",
            get(finish_in_browser).post(finish_for_token),
        )
}

/// `GET /api/v1/auth/{provider}`: to the provider, to sign in (404 for a
/// provider not configured; a provider that cannot be asked sends the
/// browser back to the sign-in page saying so).
async fn start(
    State(engine): State<Engine>,
    State(providers): State<Arc<Providers>>,
    Path(provider): Path<String>,
    headers: HeaderMap,
) -> Result<Response, DetailError> {
    let browser = browser_of(&headers);
    match providers
        .begin(&engine.accounts, &provider, None, &browser)
        .await
    {
        Ok(url) => Ok(to_provider(&providers, &browser, &url)),
        Err(refused @ Refused::Unknown(_)) => Err(refused.into()),
        Err(refused) => Ok(back_refused("/signin", &provider, &refused).into_response()),
    }
}

/// The flow cookie's value this browser holds, or a new one.
fn browser_of(headers: &HeaderMap) -> String {
    flow_cookie_of(headers)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| engine::random_hex(32))
}

fn flow_cookie_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == FLOW_COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The browser sent on to the provider, holding its flow cookie.
fn to_provider(providers: &Providers, browser: &str, url: &str) -> Response {
    let mut response = Redirect::to(url).into_response();
    if let Ok(cookie) = providers.flow_cookie(browser).parse() {
        response
            .headers_mut()
            .append(axum::http::header::SET_COOKIE, cookie);
    }
    response
}

/// The browser sent back to `page` with the reason a provider's sign-in
/// did not happen.
fn back_refused(page: &str, provider: &str, refused: &Refused) -> Redirect {
    // `?`: the path's text is escaped, never a line of its own in the log.
    tracing::info!(provider = ?engine::cut(provider, 40), reason = %refused, "sign-in through a provider refused");
    Redirect::to(&format!("{page}?provider_error={}", refused.code()))
}

/// `GET /api/v1/auth/{provider}/link?_csrf=...`: to the provider, to link its
/// account to the signed-in one (a browser's session, with its CSRF token).
async fn start_link(
    State(engine): State<Engine>,
    State(providers): State<Arc<Providers>>,
    Path(provider): Path<String>,
    SignedIn(caller): SignedIn,
    headers: HeaderMap,
) -> Result<Response, DetailError> {
    if !matches!(caller.credential, engine::Credential::Session { .. }) {
        return Err(engine::Error::from(engine::caller::Denied::SessionOnly).into());
    }
    caller
        .permits(engine::Access::ManageAccess)
        .map_err(engine::Error::from)?;
    let browser = browser_of(&headers);
    match providers
        .begin(&engine.accounts, &provider, Some(&caller.user), &browser)
        .await
    {
        Ok(url) => Ok(to_provider(&providers, &browser, &url)),
        Err(refused @ Refused::Unknown(_)) => Err(refused.into()),
        Err(refused) => Ok(back_refused("/security", &provider, &refused).into_response()),
    }
}

/// The provider's answer in the redirect back.
#[derive(Debug, Deserialize)]
struct Answer {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// What a completed flow did.
enum Finished {
    SignedIn(User),
    Linked,
}

/// Completes the flow this browser (its flow cookie in `headers`) started,
/// with the provider's answer.
async fn finish(
    engine: &Engine,
    providers: &Providers,
    name: &str,
    answer: Answer,
    headers: &HeaderMap,
    session: &Session,
    client: &Seen,
) -> Result<(Finished, Option<String>), (Refused, bool)> {
    let state = answer.state.unwrap_or_default();
    let browser = flow_cookie_of(headers).unwrap_or_default();
    let pending = match engine.accounts.take_provider_flow(&state, &browser).await {
        Ok(Some(flow)) if flow.provider == name && !state.is_empty() => flow,
        Ok(_) => return Err((Refused::State, false)),
        Err(err) => return Err((err.into(), false)),
    };
    let linking = pending.link_to.is_some();
    let fail = |r: Refused| (r, linking);
    if let Some(error) = answer.error {
        return Err(fail(Refused::Provider(engine::cut(&error, 80).to_string())));
    }
    let code = answer
        .code
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or_else(|| fail(Refused::Code("no code".into())))?;
    let identity = providers.identify(&pending, &code).await.map_err(fail)?;
    let kind = engine::accounts::key_kind(&pending.provider)
        .ok_or_else(|| fail(Refused::Unknown(pending.provider.clone())))?;
    let key = format!("{kind}:{}", identity.subject);
    match pending.link_to {
        Some(user_id) => {
            // Still the account that asked: the session may have changed hands.
            let signed_in: Option<SessionAuth> = session.get(SESSION_AUTH_KEY).await.ok().flatten();
            if signed_in.is_none_or(|auth| auth.user_id != user_id) {
                return Err(fail(Refused::State));
            }
            let user = engine
                .accounts
                .get(&user_id)
                .await
                .map_err(|e| fail(e.into()))?
                .ok_or_else(|| fail(Refused::State))?;
            engine
                .accounts
                .link_key(&user, &key, kind)
                .await
                .map_err(|e| fail(e.into()))?;
            Ok((Finished::Linked, Some(pending.provider)))
        }
        None => {
            let user = engine
                .accounts
                .sign_in_with_key(&key, kind, identity.alias.as_deref(), client)
                .await
                .map_err(|e| fail(e.into()))?;
            Ok((Finished::SignedIn(user), None))
        }
    }
}

/// `GET /api/v1/auth/{provider}/token`: the browser back from the provider,
/// signed in (to `/`) or linked (to `/security`); a refusal goes to the page
/// it came from with `?provider_error=<reason>`.
async fn finish_in_browser(
    State(engine): State<Engine>,
    State(providers): State<Arc<Providers>>,
    Path(provider): Path<String>,
    Query(answer): Query<Answer>,
    session: Session,
    headers: HeaderMap,
    SeenFrom(from): SeenFrom,
) -> Response {
    match finish(
        &engine, &providers, &provider, answer, &headers, &session, &from,
    )
    .await
    {
        Ok((Finished::SignedIn(user), _)) => {
            let csrf = engine::random_hex(16);
            match app::api::auth::switch_session(&engine, &session, &user, csrf, &from).await {
                Ok(_) => Redirect::to("/").into_response(),
                Err(err) => {
                    tracing::error!(error = ?err, "session after a provider's sign-in");
                    Redirect::to("/signin?provider_error=failed").into_response()
                }
            }
        }
        Ok((Finished::Linked, provider)) => Redirect::to(&format!(
            "/security?linked={}",
            provider.unwrap_or_default()
        ))
        .into_response(),
        Err((refused, linking)) => {
            let page = if linking { "/security" } else { "/signin" };
            back_refused(page, &provider, &refused).into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
struct CodeRequest {
    code: String,
    state: String,
}

/// `POST /api/v1/auth/{provider}/token {code, state}`: a bearer token for the
/// account the provider's subject signs in to (`{access_token, token_type}`),
/// or, for a flow started to link, `{"detail": "Provider account linked"}`.
async fn finish_for_token(
    State(engine): State<Engine>,
    State(providers): State<Arc<Providers>>,
    Path(provider): Path<String>,
    session: Session,
    headers: HeaderMap,
    SeenFrom(from): SeenFrom,
    Body(request): Body<CodeRequest>,
) -> Result<Json<serde_json::Value>, DetailError> {
    let answer = Answer {
        code: Some(request.code),
        state: Some(request.state),
        error: None,
    };
    match finish(
        &engine, &providers, &provider, answer, &headers, &session, &from,
    )
    .await
    {
        Ok((Finished::SignedIn(user), _)) => Ok(Json(serde_json::json!({
            "access_token": engine.tokens.issue(&user)?,
            "token_type": "bearer",
        }))),
        Ok((Finished::Linked, _)) => Ok(Json(
            serde_json::json!({ "detail": "Provider account linked" }),
        )),
        Err((refused, _)) => Err(refused.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::{Kind, ProviderSettings};

    fn at(issuer: &str) -> ProviderSettings {
        ProviderSettings {
            kind: Kind::Keycloak,
            client_id: "ampere".into(),
            client_secret: "secret".into(),
            issuer: issuer.into(),
            api: String::new(),
        }
    }

    #[test]
    fn providers_are_reached_over_https_or_on_this_machine_only() {
        for fine in [
            "https://id.example.com/realms/main",
            "http://127.0.0.1:8080",
            "http://localhost/realms/x",
            "http://[::1]:9000",
        ] {
            assert!(at(fine).check().is_ok(), "{fine}");
        }
        for refused in [
            "http://id.example.com",
            "http://localhost.example.com",
            "http://127.0.0.1.example.com/",
            "ftp://id.example.com",
        ] {
            assert!(at(refused).check().is_err(), "{refused}");
        }
        let secret = format!("{:?}", at("https://id.example.com"));
        assert!(!secret.contains("secret\""), "{secret}");
    }
}
