//! Ampere as an OAuth 2.0 provider (`specs/lime-oauth2.md`): the clients the
//! operator registers, the codes users grant them on the consent page, the
//! applications each user authorised, and the access tokens issued by the
//! `password` and `authorization_code` grants. It owns those four tables;
//! the HTTP side (`/connect/...`, `/api/register`, `/userinfo`) is the
//! server's, and what a token's scopes let it call is decided with the other
//! credentials (`Caller::admits`).
//!
//! - Client secrets, codes and tokens are 256 random bits, kept only as
//!   SHA-256 hashes: at that entropy a slow hash adds nothing but a way to
//!   burn the server's CPU.
//! - A code lives five minutes and works once; a code presented again also
//!   revokes the tokens it issued (RFC 6749 §4.1.2).
//! - A token lives 24 hours from its last use (prolonged at most once a
//!   minute), and ends with the account's password, the application's
//!   revocation or the client's removal.

use bitcoin::hashes::{sha256, Hash};
use sqlx::Row;

use crate::api_keys::KeyScope;
use crate::events::{Bus, EventKind, Topic};
use crate::{now_ms, random_hex, Database, Error, Result, User};

/// How long a code may wait for its exchange.
pub const CODE_LIFETIME_MS: i64 = 5 * 60 * 1000;
/// How long a token works after its last use.
pub const TOKEN_LIFETIME_MS: i64 = 24 * 3600 * 1000;
/// A token's expiry is pushed forward at most this often.
const PROLONG_EVERY_MS: i64 = 60_000;
/// What a token looks like (so the gate asks the database only for these).
pub const TOKEN_PREFIX: &str = "oat_";
/// Most redirect URLs one client may register.
const MAX_REDIRECT_URLS: usize = 10;

/// What a client may ask for, and a token carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OAuthScope {
    /// `/userinfo`: the id, login, names and accounts.
    Profile,
    /// `/userinfo`'s `email`.
    Email,
    /// The APIs as an API key of the same scope ([`KeyScope`]).
    Read,
    Wallet,
    Trade,
}

impl OAuthScope {
    pub const ALL: [OAuthScope; 5] = [
        OAuthScope::Profile,
        OAuthScope::Email,
        OAuthScope::Read,
        OAuthScope::Wallet,
        OAuthScope::Trade,
    ];
    /// A client registered without scopes gets these.
    pub const DEFAULT: [OAuthScope; 3] = [OAuthScope::Profile, OAuthScope::Email, OAuthScope::Read];

    pub fn as_str(self) -> &'static str {
        match self {
            OAuthScope::Profile => "profile",
            OAuthScope::Email => "email",
            OAuthScope::Read => "read",
            OAuthScope::Wallet => "wallet",
            OAuthScope::Trade => "trade",
        }
    }

    /// What the consent page says the scope allows.
    pub fn meaning(self) -> &'static str {
        match self {
            OAuthScope::Profile => "see your username, name and account numbers",
            OAuthScope::Email => "see your e-mail address",
            OAuthScope::Read => "read your balances, payments, channels and positions",
            OAuthScope::Wallet => "make invoices and payments from your wallet",
            OAuthScope::Trade => "trade, deposit to and withdraw from your trading account",
        }
    }

    fn key_scope(self) -> Option<KeyScope> {
        match self {
            OAuthScope::Read => Some(KeyScope::Read),
            OAuthScope::Wallet => Some(KeyScope::Wallet),
            OAuthScope::Trade => Some(KeyScope::Trade),
            OAuthScope::Profile | OAuthScope::Email => None,
        }
    }
}

/// Reads a scope list as OAuth writes it (names separated by spaces, RFC 6749
/// §3.3): `None` for a name Ampere does not know.
pub fn parse_scopes(text: &str) -> Option<Vec<OAuthScope>> {
    let mut scopes = text
        .split(' ')
        .filter(|n| !n.is_empty())
        .map(|name| OAuthScope::ALL.into_iter().find(|s| s.as_str() == name))
        .collect::<Option<Vec<_>>>()?;
    scopes.sort();
    scopes.dedup();
    Some(scopes)
}

pub fn scope_text(scopes: &[OAuthScope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a token or authorization request is refused, as RFC 6749 §5.2 names it.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the client is unknown or its secret is wrong")]
    InvalidClient,
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("grant_type must be password or authorization_code")]
    UnsupportedGrantType,
    #[error(transparent)]
    Engine(#[from] Error),
}

impl Refusal {
    /// The `error` code of RFC 6749 (engine errors keep their own answer).
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::InvalidRequest(_) => "invalid_request",
            Refusal::InvalidClient => "invalid_client",
            Refusal::InvalidGrant(_) => "invalid_grant",
            Refusal::InvalidScope(_) => "invalid_scope",
            Refusal::UnsupportedGrantType => "unsupported_grant_type",
            Refusal::Engine(_) => "server_error",
        }
    }
}

/// A registered client (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub redirect_urls: Vec<String>,
    pub scopes: Vec<OAuthScope>,
    pub created_at_ms: i64,
}

impl Client {
    /// The scopes a request asks for: all the client's when it names none;
    /// refused beyond them.
    pub fn scopes_for(&self, asked: Option<&str>) -> std::result::Result<Vec<OAuthScope>, Refusal> {
        let Some(asked) = asked.filter(|a| !a.trim().is_empty()) else {
            return Ok(self.scopes.clone());
        };
        let scopes = parse_scopes(asked).ok_or_else(|| {
            Refusal::InvalidScope(format!(
                "scope is a space-separated list of {}",
                scope_text(&OAuthScope::ALL)
            ))
        })?;
        if let Some(beyond) = scopes.iter().find(|s| !self.scopes.contains(s)) {
            return Err(Refusal::InvalidScope(format!(
                "this client may not ask for the scope {}",
                beyond.as_str()
            )));
        }
        Ok(scopes)
    }

    /// Whether `url` is one of the client's redirect URLs, exactly.
    pub fn redirects_to(&self, url: &str) -> bool {
        self.redirect_urls.iter().any(|u| u == url)
    }
}

/// An application a user authorised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorised {
    pub id: String,
    pub client_name: String,
    pub scopes: Vec<OAuthScope>,
    pub created_at_ms: i64,
    pub last_used_ms: i64,
}

/// What a verified token lets its request do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// The authorisation it belongs to (revoking it ends the token).
    pub grant_id: String,
    pub scopes: Vec<OAuthScope>,
}

impl TokenGrant {
    pub fn has(&self, scope: OAuthScope) -> bool {
        self.scopes.contains(&scope)
    }

    /// The API scopes it carries, as an API key's.
    pub fn key_scopes(&self) -> Vec<KeyScope> {
        self.scopes.iter().filter_map(|s| s.key_scope()).collect()
    }
}

/// A token as the token endpoint answers it.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub scopes: Vec<OAuthScope>,
    pub expires_in_s: i64,
}

/// An authorization request as `/connect/authorize` receives it (a query on
/// `GET`, the consent form's fields on `POST`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthorizationRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

/// A request worth asking the user about.
#[derive(Debug, Clone)]
pub struct Consent {
    pub client: Client,
    pub redirect_uri: String,
    pub scopes: Vec<OAuthScope>,
    state: Option<String>,
    challenge: Option<Challenge>,
}

impl Consent {
    /// The origin the browser goes back to (`scheme://host[:port]`): the
    /// consent page's forms may post there (its `form-action`).
    pub fn redirect_origin(&self) -> String {
        url::Url::parse(&self.redirect_uri)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }
}

/// What to do with an authorization request.
#[derive(Debug, Clone)]
pub enum Checked {
    /// Ask the user on the consent page.
    Consent(Consent),
    /// The client or its redirect URI is wrong: told to the user, never
    /// redirected to (RFC 6749 §4.1.2.1).
    Unsafe(String),
    /// Sent back to the client's redirect URI with an `error`.
    Refused(String),
}

/// `redirect_uri` with `pairs` added to its query (and the request's
/// `state`, as it came).
fn back_to(redirect_uri: &str, pairs: &[(&str, &str)], state: Option<&str>) -> String {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return redirect_uri.to_string();
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            query.append_pair(name, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    url.to_string()
}

/// A PKCE challenge (RFC 7636) an authorization request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub challenge: String,
    /// `S256` or `plain`.
    pub method: String,
}

impl Challenge {
    /// Reads `code_challenge` and `code_challenge_method` (`plain` when the
    /// method is left out, as RFC 7636 says).
    pub fn parse(
        challenge: Option<&str>,
        method: Option<&str>,
    ) -> std::result::Result<Option<Challenge>, Refusal> {
        let Some(challenge) = challenge.filter(|c| !c.is_empty()) else {
            return match method.filter(|m| !m.is_empty()) {
                Some(_) => Err(Refusal::InvalidRequest(
                    "code_challenge_method without a code_challenge".into(),
                )),
                None => Ok(None),
            };
        };
        let method = method.filter(|m| !m.is_empty()).unwrap_or("plain");
        if !matches!(method, "S256" | "plain") {
            return Err(Refusal::InvalidRequest(
                "code_challenge_method must be S256 or plain".into(),
            ));
        }
        if !(43..=128).contains(&challenge.len())
            || !challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        {
            return Err(Refusal::InvalidRequest(
                "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]".into(),
            ));
        }
        Ok(Some(Challenge {
            challenge: challenge.to_string(),
            method: method.to_string(),
        }))
    }

    fn admits(&self, verifier: &str) -> bool {
        let expected = match self.method.as_str() {
            "S256" => {
                use base64::Engine as _;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha256::Hash::hash(verifier.as_bytes()).to_byte_array())
            }
            _ => verifier.to_string(),
        };
        crate::same_secret(expected.as_bytes(), self.challenge.as_bytes())
    }
}

/// A new access token.
fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_hex(32))
}

impl Issued {
    fn new(access_token: String, scopes: Vec<OAuthScope>) -> Self {
        Issued {
            access_token,
            scopes,
            expires_in_s: TOKEN_LIFETIME_MS / 1000,
        }
    }
}

/// A redirect URL a client may register: absolute, without a fragment, and
/// `https` unless it points at this machine (RFC 8252's native apps).
fn check_redirect_url(url: &str) -> Result<()> {
    let invalid = |why: &str| Error::invalid("redirect-url", format!("{url}: {why}"));
    let parsed = url::Url::parse(url).map_err(|_| invalid("not an absolute URL"))?;
    if parsed.fragment().is_some() {
        return Err(invalid("a redirect URL has no #fragment"));
    }
    let loopback = matches!(
        parsed.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(invalid("use https (http only to localhost)")),
    }
}

fn read_client(row: &sqlx::any::AnyRow) -> Result<Client> {
    let urls: String = row.try_get("redirect_urls")?;
    let scopes: String = row.try_get("scopes")?;
    Ok(Client {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        redirect_urls: serde_json::from_str(&urls)
            .map_err(|e| Error::Internal(format!("stored redirect URLs: {e}")))?,
        scopes: parse_scopes(&scopes).unwrap_or_default(),
        created_at_ms: row.try_get("created_at")?,
    })
}

/// What a code's exchange came to, inside its transaction.
enum Redeemed {
    Issued {
        user_id: String,
        scopes: Vec<OAuthScope>,
    },
    Refused(&'static str),
    /// Used before: the tokens it issued were deleted (their grants told).
    Replayed {
        user_id: String,
        grants: Vec<String>,
    },
}

/// A token about to be stored (its hash only).
struct NewToken {
    token_hash: String,
    user_id: String,
    client_id: String,
    scopes: Vec<OAuthScope>,
    /// The code it is issued for, if any (a replay of it revokes the token).
    code_hash: Option<String>,
    auth_version: i64,
}

/// Stores a token under the application's authorisation of the user (made
/// at its first token; its scopes are all it was ever granted), dropping
/// that authorisation's expired tokens.
async fn insert_token(conn: &mut sqlx::AnyConnection, token: NewToken) -> Result<()> {
    let now = now_ms();
    let scope = scope_text(&token.scopes);
    sqlx::query(
        "INSERT INTO oauth_grants (id, client_id, user_id, scopes, created_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (client_id, user_id) DO NOTHING",
    )
    .bind(random_hex(16))
    .bind(&token.client_id)
    .bind(&token.user_id)
    .bind(&scope)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let row =
        sqlx::query("SELECT id, scopes FROM oauth_grants WHERE client_id = $1 AND user_id = $2")
            .bind(&token.client_id)
            .bind(&token.user_id)
            .fetch_one(&mut *conn)
            .await?;
    let (grant_id, held): (String, String) = (row.try_get("id")?, row.try_get("scopes")?);
    let mut all = parse_scopes(&held).unwrap_or_default();
    all.extend(token.scopes.iter().copied());
    all.sort();
    all.dedup();
    sqlx::query("UPDATE oauth_grants SET scopes = $2, last_used_at = $3 WHERE id = $1")
        .bind(&grant_id)
        .bind(scope_text(&all))
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM oauth_tokens WHERE grant_id = $1 AND expires_at < $2")
        .bind(&grant_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO oauth_tokens (token_hash, grant_id, user_id, scopes, code_hash, \
         auth_version, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&token.token_hash)
    .bind(&grant_id)
    .bind(&token.user_id)
    .bind(&scope)
    .bind(token.code_hash)
    .bind(token.auth_version)
    .bind(now)
    .bind(now + TOKEN_LIFETIME_MS)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Clone)]
pub struct OAuth {
    db: Database,
    bus: Bus,
}

impl OAuth {
    pub fn new(db: Database, bus: Bus) -> Self {
        OAuth { db, bus }
    }

    /// Registers a client: answers it and its secret, which is never shown
    /// again. Scopes default to [`OAuthScope::DEFAULT`].
    pub async fn add_client(
        &self,
        name: &str,
        redirect_urls: &[String],
        scopes: &[String],
    ) -> Result<(Client, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 64 {
            return Err(Error::invalid(
                "name",
                "a client's name is 1 to 64 characters",
            ));
        }
        if redirect_urls.is_empty() || redirect_urls.len() > MAX_REDIRECT_URLS {
            return Err(Error::invalid(
                "redirect-url",
                format!("give 1 to {MAX_REDIRECT_URLS} redirect URLs"),
            ));
        }
        for url in redirect_urls {
            check_redirect_url(url)?;
        }
        let scopes = match scopes.is_empty() {
            true => OAuthScope::DEFAULT.to_vec(),
            false => parse_scopes(&scopes.join(" ")).ok_or_else(|| {
                Error::invalid(
                    "scope",
                    format!("scopes are {}", scope_text(&OAuthScope::ALL)),
                )
            })?,
        };
        let client = Client {
            id: random_hex(16),
            name: name.to_string(),
            redirect_urls: redirect_urls.to_vec(),
            scopes,
            created_at_ms: now_ms(),
        };
        let secret = random_hex(32);
        self.db
            .execute(
                sqlx::query(
                    "INSERT INTO oauth_clients (id, name, secret_hash, redirect_urls, scopes, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(client.id.clone())
                .bind(client.name.clone())
                .bind(crate::secret_hash(&secret))
                .bind(serde_json::to_string(&client.redirect_urls).unwrap_or_default())
                .bind(scope_text(&client.scopes))
                .bind(client.created_at_ms),
            )
            .await?;
        Ok((client, secret))
    }

    pub async fn clients(&self) -> Result<Vec<Client>> {
        let rows = sqlx::query(
            "SELECT id, name, redirect_urls, scopes, created_at FROM oauth_clients \
             ORDER BY created_at, id",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(read_client).collect()
    }

    pub async fn client(&self, id: &str) -> Result<Option<Client>> {
        let row = sqlx::query(
            "SELECT id, name, redirect_urls, scopes, created_at FROM oauth_clients WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(read_client).transpose()
    }

    /// Removes a client: every code and token it holds stops working.
    pub async fn remove_client(&self, id: &str) -> Result<()> {
        let grants = sqlx::query("SELECT id, user_id FROM oauth_grants WHERE client_id = $1")
            .bind(id)
            .fetch_all(self.db.pool())
            .await?;
        let removed = self
            .db
            .execute(sqlx::query("DELETE FROM oauth_clients WHERE id = $1").bind(id.to_string()))
            .await?;
        if removed == 0 {
            return Err(Error::NotFound(format!("no OAuth client has the id {id}")));
        }
        for row in &grants {
            let (user_id, grant_id): (String, String) =
                (row.try_get("user_id")?, row.try_get("id")?);
            self.tell_revoked(&user_id, &grant_id);
        }
        Ok(())
    }

    /// The client `id` whose secret is `secret` ([`Refusal::InvalidClient`]
    /// otherwise, whichever is wrong).
    pub async fn authenticate_client(
        &self,
        id: &str,
        secret: &str,
    ) -> std::result::Result<Client, Refusal> {
        let row = sqlx::query(
            "SELECT id, name, redirect_urls, scopes, created_at, secret_hash FROM oauth_clients \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.pool())
        .await
        .map_err(Error::from)?;
        let Some(row) = row else {
            return Err(Refusal::InvalidClient);
        };
        let stored: String = row.try_get("secret_hash").map_err(Error::from)?;
        if !crate::same_secret(crate::secret_hash(secret).as_bytes(), stored.as_bytes()) {
            return Err(Refusal::InvalidClient);
        }
        Ok(read_client(&row)?)
    }

    /// Reads an authorization request: the client and its exact redirect
    /// URI first (else nothing may be redirected to), then the rest.
    pub async fn check(&self, request: &AuthorizationRequest) -> Result<Checked> {
        let client = match request.client_id.as_deref().filter(|c| !c.is_empty()) {
            Some(id) if id.len() <= 64 => self.client(id).await?,
            _ => None,
        };
        let Some(client) = client else {
            return Ok(Checked::Unsafe(
                "This application is not registered here (client_id).".into(),
            ));
        };
        let Some(redirect_uri) = request
            .redirect_uri
            .as_deref()
            .filter(|u| client.redirects_to(u))
        else {
            return Ok(Checked::Unsafe(format!(
                "{} asked to send you back to an address it did not register (redirect_uri).",
                client.name
            )));
        };
        let state = request.state.as_deref().filter(|s| !s.is_empty());
        let refused = |code: &str, description: &str| {
            Checked::Refused(back_to(
                redirect_uri,
                &[("error", code), ("error_description", description)],
                state,
            ))
        };
        if request.response_type.as_deref() != Some("code") {
            return Ok(refused(
                "unsupported_response_type",
                "response_type must be code",
            ));
        }
        let scopes = match client.scopes_for(request.scope.as_deref()) {
            Ok(scopes) => scopes,
            Err(refusal) => return Ok(refused(refusal.code(), &refusal.to_string())),
        };
        let challenge = match Challenge::parse(
            request.code_challenge.as_deref(),
            request.code_challenge_method.as_deref(),
        ) {
            Ok(challenge) => challenge,
            Err(refusal) => return Ok(refused(refusal.code(), &refusal.to_string())),
        };
        Ok(Checked::Consent(Consent {
            redirect_uri: redirect_uri.to_string(),
            client,
            scopes,
            state: state.map(str::to_string),
            challenge,
        }))
    }

    /// The user's answer on the consent page: where to send the browser (the
    /// client's redirect URI with a code, or with `access_denied`), or, for a
    /// request that may not be redirected, why (`Err`).
    /// Authorising is a person's act in a browser: the session cookie with
    /// its CSRF token, never a token (403).
    pub async fn decide(
        &self,
        caller: &crate::Caller,
        request: &AuthorizationRequest,
        approve: bool,
    ) -> Result<std::result::Result<String, String>> {
        if !matches!(caller.credential, crate::Credential::Session { .. }) {
            return Err(Error::Forbidden(
                "only a signed-in browser authorises applications".into(),
            ));
        }
        caller.permits(crate::Access::ManageAccess)?;
        let user = &caller.user;
        let consent = match self.check(request).await? {
            Checked::Consent(consent) => consent,
            Checked::Unsafe(why) => return Ok(Err(why)),
            Checked::Refused(url) => return Ok(Ok(url)),
        };
        let state = consent.state.as_deref();
        if !approve {
            return Ok(Ok(back_to(
                &consent.redirect_uri,
                &[
                    ("error", "access_denied"),
                    (
                        "error_description",
                        "the user did not authorise the application",
                    ),
                ],
                state,
            )));
        }
        let code = self
            .issue_code(
                user,
                &consent.client,
                &consent.redirect_uri,
                &consent.scopes,
                consent.challenge.as_ref(),
            )
            .await?;
        Ok(Ok(back_to(
            &consent.redirect_uri,
            &[("code", &code)],
            state,
        )))
    }

    /// A code for `client` to exchange for a token of `user`, after the user
    /// approved the request on the consent page.
    async fn issue_code(
        &self,
        user: &User,
        client: &Client,
        redirect_uri: &str,
        scopes: &[OAuthScope],
        challenge: Option<&Challenge>,
    ) -> Result<String> {
        let code = random_hex(32);
        let now = now_ms();
        let (code_hash, client_id, user_id, redirect, scope, auth_version) = (
            crate::secret_hash(&code),
            client.id.clone(),
            user.id.0.clone(),
            redirect_uri.to_string(),
            scope_text(scopes),
            user.auth_version,
        );
        let (challenge, method) = match challenge {
            Some(c) => (Some(c.challenge.clone()), Some(c.method.clone())),
            None => (None, None),
        };
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    // Codes long past their exchange (used or not) go.
                    sqlx::query("DELETE FROM oauth_codes WHERE expires_at < $1")
                        .bind(now - 3600 * 1000)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(
                        "INSERT INTO oauth_codes (code_hash, client_id, user_id, redirect_uri, \
                         scopes, challenge, challenge_method, expires_at, auth_version) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(code_hash)
                    .bind(client_id)
                    .bind(user_id)
                    .bind(redirect)
                    .bind(scope)
                    .bind(challenge)
                    .bind(method)
                    .bind(now + CODE_LIFETIME_MS)
                    .bind(auth_version)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok(code)
    }

    /// Exchanges a code (grant `authorization_code`): it must be this
    /// client's, for this redirect URI, unused, within five minutes, and
    /// match its PKCE challenge. Any attempt spends the code, and the token
    /// is issued in the same transaction; a code presented again revokes the
    /// tokens it issued (even a twin exchange's, which has committed by then).
    /// Answers the account's id and the token.
    pub async fn redeem_code(
        &self,
        client: &Client,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> std::result::Result<(String, Issued), Refusal> {
        let token = new_token();
        let (code_hash, token_hash) = (crate::secret_hash(code), crate::secret_hash(&token));
        let (client_id, redirect_uri, verifier) = (
            client.id.clone(),
            redirect_uri.to_string(),
            verifier.map(str::to_string),
        );
        let redeemed = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "SELECT c.client_id, c.user_id, c.redirect_uri, c.scopes, c.challenge, \
                         c.challenge_method, c.expires_at, c.auth_version AS granted_under, \
                         u.auth_version FROM oauth_codes c JOIN users u ON u.id = c.user_id \
                         WHERE c.code_hash = $1",
                    )
                    .bind(&code_hash)
                    .fetch_optional(&mut *conn)
                    .await?;
                    // Another client's code is not this client's to spend.
                    let Some(row) = row.filter(|r| {
                        r.try_get::<String, _>("client_id").is_ok_and(|c| c == client_id)
                    }) else {
                        return Ok(Redeemed::Refused("the code is not valid"));
                    };
                    let user_id: String = row.try_get("user_id")?;
                    let now = now_ms();
                    let spent = sqlx::query(
                        "UPDATE oauth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL",
                    )
                    .bind(&code_hash)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if spent != 1 {
                        let grants = sqlx::query(
                            "SELECT DISTINCT grant_id FROM oauth_tokens WHERE code_hash = $1",
                        )
                        .bind(&code_hash)
                        .fetch_all(&mut *conn)
                        .await?
                        .iter()
                        .map(|r| r.try_get("grant_id"))
                        .collect::<std::result::Result<Vec<String>, _>>()?;
                        sqlx::query("DELETE FROM oauth_tokens WHERE code_hash = $1")
                            .bind(&code_hash)
                            .execute(&mut *conn)
                            .await?;
                        return Ok(Redeemed::Replayed { user_id, grants });
                    }
                    // A new password since voids what the old one granted.
                    if row.try_get::<i64, _>("granted_under")?
                        != row.try_get::<i64, _>("auth_version")?
                    {
                        return Ok(Redeemed::Refused(
                            "the code was granted under a password changed since",
                        ));
                    }
                    if row.try_get::<i64, _>("expires_at")? <= now {
                        return Ok(Redeemed::Refused("the code has expired (5 minutes)"));
                    }
                    if row.try_get::<String, _>("redirect_uri")? != redirect_uri {
                        return Ok(Redeemed::Refused(
                            "redirect_uri is not the one the code was issued for",
                        ));
                    }
                    if let Some(challenge) = row.try_get::<Option<String>, _>("challenge")? {
                        let challenge = Challenge {
                            challenge,
                            method: row
                                .try_get::<Option<String>, _>("challenge_method")?
                                .unwrap_or_default(),
                        };
                        if !verifier.as_deref().is_some_and(|v| challenge.admits(v)) {
                            return Ok(Redeemed::Refused(
                                "code_verifier does not match the code_challenge",
                            ));
                        }
                    }
                    let scopes =
                        parse_scopes(&row.try_get::<String, _>("scopes")?).unwrap_or_default();
                    let issue = NewToken {
                        token_hash,
                        user_id: user_id.clone(),
                        client_id,
                        scopes: scopes.clone(),
                        code_hash: Some(code_hash),
                        auth_version: row.try_get("auth_version")?,
                    };
                    insert_token(conn, issue).await?;
                    Ok(Redeemed::Issued { user_id, scopes })
                })
            })
            .await?;
        match redeemed {
            Redeemed::Issued { user_id, scopes } => Ok((user_id, Issued::new(token, scopes))),
            Redeemed::Refused(why) => Err(Refusal::InvalidGrant(why.into())),
            Redeemed::Replayed { user_id, grants } => {
                for grant_id in grants {
                    self.tell_revoked(&user_id, &grant_id);
                }
                Err(Refusal::InvalidGrant(
                    "the code was used already: the tokens it issued are revoked".into(),
                ))
            }
        }
    }

    /// A token for `user` (grant `password`, the password already checked).
    pub async fn issue_for_password(
        &self,
        user: &User,
        client: &Client,
        scopes: &[OAuthScope],
    ) -> Result<Issued> {
        let token = new_token();
        let issue = NewToken {
            token_hash: crate::secret_hash(&token),
            user_id: user.id.0.clone(),
            client_id: client.id.clone(),
            scopes: scopes.to_vec(),
            code_hash: None,
            auth_version: user.auth_version,
        };
        self.db
            .write(move |conn| Box::pin(async move { insert_token(conn, issue).await }))
            .await?;
        Ok(Issued::new(token, scopes.to_vec()))
    }

    /// The account, `auth_version` and grant of a token that still works;
    /// its life is pushed 24 hours past this use.
    pub async fn verify(&self, token: &str) -> Result<(String, i64, TokenGrant)> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
            return Err(Error::Unauthenticated);
        }
        let token_hash = crate::secret_hash(token);
        let row = sqlx::query(
            "SELECT user_id, auth_version, scopes, expires_at, grant_id FROM oauth_tokens \
             WHERE token_hash = $1",
        )
        .bind(&token_hash)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or(Error::Unauthenticated)?;
        let now = now_ms();
        let expires_at: i64 = row.try_get("expires_at")?;
        if expires_at <= now {
            return Err(Error::Unauthenticated);
        }
        let grant = TokenGrant {
            grant_id: row.try_get("grant_id")?,
            scopes: parse_scopes(&row.try_get::<String, _>("scopes")?).unwrap_or_default(),
        };
        if expires_at - now < TOKEN_LIFETIME_MS - PROLONG_EVERY_MS {
            let (grant_id, prolonged) = (grant.grant_id.clone(), self.db.clone());
            prolonged
                .write(move |conn| {
                    Box::pin(async move {
                        sqlx::query(
                            "UPDATE oauth_tokens SET expires_at = $2 WHERE token_hash = $1",
                        )
                        .bind(&token_hash)
                        .bind(now + TOKEN_LIFETIME_MS)
                        .execute(&mut *conn)
                        .await?;
                        sqlx::query("UPDATE oauth_grants SET last_used_at = $2 WHERE id = $1")
                            .bind(&grant_id)
                            .bind(now)
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                })
                .await?;
        }
        Ok((row.try_get("user_id")?, row.try_get("auth_version")?, grant))
    }

    /// The applications `user` authorised, most recently used first.
    pub async fn authorised(&self, user: &User) -> Result<Vec<Authorised>> {
        let rows = sqlx::query(
            "SELECT g.id, c.name, g.scopes, g.created_at, g.last_used_at FROM oauth_grants g \
             JOIN oauth_clients c ON c.id = g.client_id WHERE g.user_id = $1 \
             ORDER BY g.last_used_at DESC, g.id",
        )
        .bind(&user.id.0)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Authorised {
                    id: row.try_get("id")?,
                    client_name: row.try_get("name")?,
                    scopes: parse_scopes(&row.try_get::<String, _>("scopes")?).unwrap_or_default(),
                    created_at_ms: row.try_get("created_at")?,
                    last_used_ms: row.try_get("last_used_at")?,
                })
            })
            .collect()
    }

    /// Revokes an application `user` authorised: its tokens stop at once,
    /// and the codes it holds unspent will buy none.
    pub async fn revoke(&self, user: &User, grant_id: &str) -> Result<()> {
        let (grant, user_id) = (grant_id.to_string(), user.id.0.clone());
        let removed = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "DELETE FROM oauth_codes WHERE user_id = $2 AND client_id = \
                         (SELECT client_id FROM oauth_grants WHERE id = $1 AND user_id = $2)",
                    )
                    .bind(&grant)
                    .bind(&user_id)
                    .execute(&mut *conn)
                    .await?;
                    Ok(
                        sqlx::query("DELETE FROM oauth_grants WHERE id = $1 AND user_id = $2")
                            .bind(&grant)
                            .bind(&user_id)
                            .execute(&mut *conn)
                            .await?
                            .rows_affected(),
                    )
                })
            })
            .await?;
        if removed == 0 {
            return Err(Error::NotFound(
                "no authorised application has this id".into(),
            ));
        }
        self.tell_revoked(&user.id.0, grant_id);
        Ok(())
    }

    /// Streams opened with the grant's tokens end.
    fn tell_revoked(&self, user_id: &str, grant_id: &str) {
        self.bus.publish(
            Topic::Account(user_id.to_string()),
            EventKind::TokenRevoked {
                jti: grant_id.to_string(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_as_oauth_writes_them() {
        assert_eq!(
            parse_scopes("read  profile read"),
            Some(vec![OAuthScope::Profile, OAuthScope::Read])
        );
        assert_eq!(parse_scopes(""), Some(vec![]));
        assert_eq!(parse_scopes("profile,email"), None);
        assert_eq!(parse_scopes("admin"), None);
    }

    #[test]
    fn a_pkce_challenge_admits_only_its_verifier() {
        // The challenge computed apart, by Python's hashlib and base64:
        // urlsafe_b64encode(sha256(verifier)) without its padding.
        let challenge = Challenge::parse(
            Some("uhGcDcVlOr0q-TBDxIVXAuDp4LxbJbess6sXTH3ka38"),
            Some("S256"),
        )
        .unwrap()
        .unwrap();
        assert!(challenge.admits("dBjftJeZ4CVP-1mB5t-9H8fTq6wJ-SDw2ou1XpGdwTk"));
        assert!(!challenge.admits("dBjftJeZ4CVP-1mB5t-9H8fTq6wJ-SDw2ou1XpGdwTq"));
        let plain = Challenge::parse(Some(&"p".repeat(43)), None)
            .unwrap()
            .unwrap();
        assert!(plain.admits(&"p".repeat(43)) && !plain.admits(&"q".repeat(43)));
        assert!(Challenge::parse(Some("short"), Some("S256")).is_err());
        assert!(Challenge::parse(Some(&"a".repeat(43)), Some("S512")).is_err());
        assert!(Challenge::parse(None, Some("S256")).is_err());
        assert_eq!(Challenge::parse(None, None).unwrap(), None);
    }

    #[test]
    fn redirect_urls_are_https_but_on_this_machine() {
        assert!(check_redirect_url("https://app.example/cb").is_ok());
        assert!(check_redirect_url("http://127.0.0.1:8765/cb").is_ok());
        assert!(check_redirect_url("http://localhost/cb").is_ok());
        assert!(check_redirect_url("http://app.example/cb").is_err());
        assert!(check_redirect_url("https://app.example/cb#x").is_err());
        assert!(check_redirect_url("/cb").is_err());
        assert!(check_redirect_url("javascript:alert(1)").is_err());
    }
}
