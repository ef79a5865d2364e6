//! Sign-in through the identity providers the operator configured: Google and
//! Keycloak by OpenID Connect, GitHub by OAuth 2.0 and its user endpoint, at
//! the paths of `specs/lnbits-users-accounts-api.txt`.
//!
//! - `GET /api/v1/auth/{provider}` sends the browser to the provider with an
//!   authorization-code request: PKCE (S256), a random `state` and, for OpenID
//!   Connect, a `nonce`, all kept in this browser's session. A code and state
//!   carried to another browser (a login forged by someone else) find nothing.
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
//!   client that follows the redirects itself (keeping the session cookie):
//!   it answers a bearer token, refusals as `{"detail": ...}`.
//!
//! A provider's account is stored as a sign-in key `<provider>:<subject>` of
//! kind `<provider>` (see `engine::accounts::KEY_KINDS`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
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
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use crate::accounts_api::{Body, DetailError};
use crate::gate::SignedIn;
use crate::outbound::HttpClient;
use crate::AppState;
use app::api::auth::{client_address_of, SessionAuth, SESSION_AUTH_KEY};
use engine::accounts::sessions::Seen;
use engine::{Engine, User};

/// How long a started sign-in waits for the provider's answer.
const FLOW_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// How long one request to a provider may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from a provider.
const BODY_MAX: usize = 256 * 1024;
/// Where a started sign-in waits in the browser's session.
const PENDING_KEY: &str = "provider_sign_in";

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
    http: ProviderHttp,
    /// Discovery documents (with the keys they name), read again after a
    /// while and whenever an ID token does not verify (the keys rotated).
    discovered: moka::future::Cache<Kind, CoreProviderMetadata>,
}

/// A sign-in started in this browser, waiting for the provider's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    provider: String,
    state: String,
    verifier: String,
    nonce: Option<String>,
    /// The account to link the provider's account to (else: sign in).
    link_to: Option<String>,
    started_at_ms: i64,
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

impl Providers {
    pub fn new(configured: Vec<ProviderSettings>, public_url: &str) -> Result<Self, engine::Error> {
        Ok(Providers {
            configured,
            public_url: public_url.trim_end_matches('/').to_string(),
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

    /// Starts a sign-in (or, with `link_to`, a link) in this browser's
    /// session: the provider's authorization URL to send it to.
    async fn begin(
        &self,
        name: &str,
        link_to: Option<&User>,
        session: &Session,
    ) -> Result<String, Refused> {
        let provider = self.settings(name)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = match provider.kind {
            Kind::Github => {
                let (url, state) = github_client(provider, self.redirect_url(provider.kind)?)?
                    .authorize_url(CsrfToken::new_random)
                    .add_scope(Scope::new("read:user".into()))
                    .set_pkce_challenge(challenge)
                    .url();
                (url, state, None)
            }
            Kind::Google | Kind::Keycloak => {
                let metadata = self.metadata(provider, false).await?;
                let (url, state, nonce) = self
                    .oidc_client(provider, metadata)?
                    .authorize_url(
                        CoreAuthenticationFlow::AuthorizationCode,
                        CsrfToken::new_random,
                        Nonce::new_random,
                    )
                    .add_scope(Scope::new("email".into()))
                    .add_scope(Scope::new("profile".into()))
                    .set_pkce_challenge(challenge)
                    .url();
                (url, state, Some(nonce.secret().clone()))
            }
        };
        let pending = Pending {
            provider: provider.kind.as_str().to_string(),
            state: state.secret().clone(),
            verifier: verifier.secret().clone(),
            nonce,
            link_to: link_to.map(|u| u.id.0.clone()),
            started_at_ms: engine::now_ms(),
        };
        session
            .insert(PENDING_KEY, pending)
            .await
            .map_err(|e| engine::Error::Internal(format!("session: {e}")))?;
        Ok(url.to_string())
    }

    /// Takes the sign-in this session started with `name` and `state` (each
    /// works once), if it is still fresh.
    async fn take_pending(
        &self,
        name: &str,
        state: &str,
        session: &Session,
    ) -> Result<Pending, Refused> {
        let pending: Option<Pending> = session
            .remove(PENDING_KEY)
            .await
            .map_err(|e| engine::Error::Internal(format!("session: {e}")))?;
        let pending = pending.ok_or(Refused::State)?;
        let fresh = engine::now_ms() - pending.started_at_ms < FLOW_LIFETIME_MS;
        if !fresh || pending.state != state || pending.provider != name {
            return Err(Refused::State);
        }
        Ok(pending)
    }

    /// Exchanges the provider's `code` for who signed in.
    async fn identify(&self, pending: &Pending, code: &str) -> Result<Identity, Refused> {
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
        let (mut parts, body) = request.into_parts();
        parts
            .headers
            .entry(hyper::header::USER_AGENT)
            .or_insert(hyper::header::HeaderValue::from_static("ampere"));
        let request = hyper::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.0.request(request))
            .await
            .map_err(|_| Unreachable("timed out".into()))?
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
    State(providers): State<Arc<Providers>>,
    Path(provider): Path<String>,
    session: Session,
) -> Result<Redirect, DetailError> {
    match providers.begin(&provider, None, &session).await {
        Ok(url) => Ok(Redirect::to(&url)),
        Err(refused @ Refused::Unknown(_)) => Err(refused.into()),
        Err(refused) => Ok(back_refused("/signin", &provider, &refused)),
    }
}

/// The browser sent back to `page` with the reason a provider's sign-in
/// did not happen.
fn back_refused(page: &str, provider: &str, refused: &Refused) -> Redirect {
    tracing::info!(provider = %engine::cut(provider, 40), reason = %refused, "sign-in through a provider refused");
    Redirect::to(&format!("{page}?provider_error={}", refused.code()))
}

/// `GET /api/v1/auth/{provider}/link?_csrf=...`: to the provider, to link its
/// account to the signed-in one (a browser's session, with its CSRF token).
async fn start_link(
    State(providers): State<Arc<Providers>>,
    Path(provider): Path<String>,
    SignedIn(caller): SignedIn,
    session: Session,
) -> Result<Redirect, DetailError> {
    if !matches!(caller.credential, engine::Credential::Session { .. }) {
        return Err(engine::Error::from(engine::caller::Denied::SessionOnly).into());
    }
    caller
        .permits(engine::Access::ManageAccess)
        .map_err(engine::Error::from)?;
    match providers
        .begin(&provider, Some(&caller.user), &session)
        .await
    {
        Ok(url) => Ok(Redirect::to(&url)),
        Err(refused @ Refused::Unknown(_)) => Err(refused.into()),
        Err(refused) => Ok(back_refused("/security", &provider, &refused)),
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

/// Completes the flow this session started, with the provider's answer.
async fn finish(
    engine: &Engine,
    providers: &Providers,
    name: &str,
    answer: Answer,
    session: &Session,
    client: &str,
) -> Result<(Finished, Option<String>), (Refused, bool)> {
    let state = answer.state.unwrap_or_default();
    let pending = providers
        .take_pending(name, &state, session)
        .await
        .map_err(|r| (r, false))?;
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
    headers: axum::http::HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let client = client_address_of(&extensions);
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let from = Seen {
        address: &client,
        user_agent,
    };
    match finish(&engine, &providers, &provider, answer, &session, &client).await {
        Ok((Finished::SignedIn(user), _)) => {
            let csrf = engine::random_hex(16);
            match app::api::auth::switch_session(&engine, &session, &user, csrf, from).await {
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
    extensions: axum::http::Extensions,
    Body(request): Body<CodeRequest>,
) -> Result<Json<serde_json::Value>, DetailError> {
    let answer = Answer {
        code: Some(request.code),
        state: Some(request.state),
        error: None,
    };
    let client = client_address_of(&extensions);
    match finish(&engine, &providers, &provider, answer, &session, &client).await {
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
