//! Who is acting: the account, the credential it showed, and what that credential
//! lets it do. The server resolves one `Caller` per request at its edge
//! (`server/src/gate.rs`); routes only say what they need ([`Access`]) and ask
//! [`Caller::permits`]. A new credential kind (scoped tokens, ACL tokens, signed
//! API keys, OAuth2 tokens) is a new [`Credential`] variant and a new arm here,
//! never an edit to each route.

use crate::acls::Grant;
use crate::api_keys::{KeyGrant, KeyScope};
use crate::desk::{DeskScope, Scopes};
use crate::events::{EventKind, Topic};
use crate::oauth::TokenGrant;
use crate::{Error, User};

#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub credential: Credential,
}

/// Where a request comes from: the client's address (as the server's edge
/// worked it out) and its `User-Agent`. Throttles count by the address; the
/// account's sessions and activity log show both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen {
    pub address: String,
    pub user_agent: String,
}

impl Seen {
    /// A client known by its address alone.
    pub fn at(address: &str) -> Self {
        Seen {
            address: address.to_string(),
            user_agent: String::new(),
        }
    }
}

/// How the caller proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The `session` cookie of a signed-in browser.
    Session {
        /// The session's id in the store (a stream opened with it ends when it ends).
        id: String,
        /// The token cookie-authenticated writes must echo (`_csrf`).
        csrf: String,
        /// Whether this request carried that token (header, query or body).
        csrf_presented: bool,
    },
    /// An account bearer token: the account's full rights until it expires.
    AccountToken {
        /// Unix milliseconds.
        expires_at_ms: i64,
    },
    /// A scoped desk token (`/lnm/user/jwt`): only the desk's routes, only
    /// within its scopes, until it expires or is revoked.
    DeskToken {
        jti: String,
        scopes: Scopes,
        /// Unix milliseconds.
        expires_at_ms: i64,
    },
    /// An ACL token: the account's rights on every API, but only for the
    /// requests its ACL's patterns match (checked by [`Caller::admits`]), and
    /// never managing ACLs or tokens.
    AclToken { grant: std::sync::Arc<Grant> },
    /// A signed API key (`X-Auth-Apikey`): the account's rights on every API
    /// within its scopes (checked by [`Caller::admits`]), never managing keys,
    /// tokens or how the account is reached.
    ApiKey { grant: KeyGrant },
    /// An access token Ampere issued as an OAuth 2.0 provider to an
    /// application the user authorised: `/userinfo` and, within its API
    /// scopes, every API as an API key of those scopes would.
    OAuthToken { grant: std::sync::Arc<TokenGrant> },
}

/// What a route does with the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads the account's data.
    Read,
    /// Changes something of the account's.
    Write,
    /// Moves the account's money (a write; browsers may also have to repeat the
    /// password, see [`Caller::must_recheck_password`]).
    Pay,
    /// A desk route (`/lnm`) of this scope. Cookie writes there need no CSRF
    /// token: the LN-Markets API has none, so scripts work unchanged; the
    /// origin rule and `SameSite=Lax` refuse cross-site writes.
    Desk(DeskScope),
    /// Managing scoped tokens: the session cookie only, so a token cannot
    /// mint tokens.
    ManageTokens,
    /// Managing how the account is reached (ACLs and their tokens, linked
    /// sign-in keys): the session cookie (with its CSRF token) or an account
    /// token; never a scoped or ACL token.
    ManageAccess,
    /// Deleting the account: as [`Access::ManageAccess`], whatever an ACL's
    /// patterns say.
    CloseAccount,
}

/// Why a caller may not do what it asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("missing or invalid CSRF token")]
    CsrfToken,
    #[error("this token's scopes do not include {0}")]
    Scope(&'static str),
    #[error("a scoped token works only on the desk's routes (/lnm)")]
    DeskTokenElsewhere,
    #[error("tokens are managed with the session cookie only")]
    SessionOnly,
    #[error("an ACL token cannot manage ACLs or tokens")]
    AclTokenManaging,
    #[error("an ACL token cannot delete the account")]
    AclTokenClosing,
    #[error("this token's ACL does not allow {0}")]
    OutsideAcl(String),
    #[error("an API key cannot manage keys, tokens or how the account is reached")]
    ApiKeyManaging,
    #[error("an API key calls the APIs only (/rest, /api, /lnm; not the pages' /api/ui)")]
    ApiKeyElsewhere,
    #[error("this API key's scopes do not include {0}")]
    KeyScope(&'static str),
    #[error("an application's token cannot manage keys, tokens or how the account is reached")]
    OAuthTokenManaging,
    #[error("an application's token calls /userinfo and the APIs only")]
    OAuthTokenElsewhere,
    #[error("this application's token does not carry the scope {0}")]
    OAuthScope(&'static str),
}

impl Caller {
    /// Whether this request may do `access` with its credential.
    pub fn permits(&self, access: Access) -> Result<(), Denied> {
        match (&self.credential, access) {
            (Credential::DeskToken { scopes, .. }, Access::Desk(scope)) => {
                if scopes.contains(scope) {
                    Ok(())
                } else {
                    Err(Denied::Scope(scope.as_str()))
                }
            }
            (Credential::DeskToken { .. }, Access::ManageTokens) => Err(Denied::SessionOnly),
            (Credential::DeskToken { .. }, _) => Err(Denied::DeskTokenElsewhere),
            (Credential::AclToken { .. }, Access::ManageTokens | Access::ManageAccess) => {
                Err(Denied::AclTokenManaging)
            }
            (Credential::AclToken { .. }, Access::CloseAccount) => Err(Denied::AclTokenClosing),
            (
                Credential::ApiKey { .. },
                Access::ManageTokens | Access::ManageAccess | Access::CloseAccount,
            ) => Err(Denied::ApiKeyManaging),
            (Credential::ApiKey { .. }, _) => Ok(()),
            (
                Credential::OAuthToken { .. },
                Access::ManageTokens | Access::ManageAccess | Access::CloseAccount,
            ) => Err(Denied::OAuthTokenManaging),
            (Credential::OAuthToken { .. }, _) => Ok(()),
            (Credential::Session { .. }, Access::ManageTokens) => Ok(()),
            (Credential::AccountToken { .. }, Access::ManageTokens) => Err(Denied::SessionOnly),
            (_, Access::Read | Access::Desk(_)) => Ok(()),
            (Credential::AccountToken { .. } | Credential::AclToken { .. }, _) => Ok(()),
            (
                Credential::Session { csrf_presented, .. },
                Access::Write | Access::Pay | Access::ManageAccess | Access::CloseAccount,
            ) => {
                if *csrf_presented {
                    Ok(())
                } else {
                    Err(Denied::CsrfToken)
                }
            }
        }
    }

    /// Whether this credential may send a `method` request to `path` at all
    /// (before any route): only an ACL token is bounded by the request itself.
    pub fn admits(&self, method: &str, path: &str) -> Result<(), Denied> {
        match &self.credential {
            Credential::AclToken { grant } if !grant.allows(method, path) => Err(
                Denied::OutsideAcl(format!("{method} {}", crate::cut(path, 200))),
            ),
            Credential::ApiKey { grant } => match api_scope_needed(method, path) {
                None => Err(Denied::ApiKeyElsewhere),
                Some(needed) if grant.scopes.contains(&needed) => Ok(()),
                Some(needed) => Err(Denied::KeyScope(needed.as_str())),
            },
            // `/userinfo` checks its own scopes (profile, email).
            Credential::OAuthToken { .. } if path == "/userinfo" => Ok(()),
            Credential::OAuthToken { grant } => match api_scope_needed(method, path) {
                None => Err(Denied::OAuthTokenElsewhere),
                Some(needed) if grant.key_scopes().contains(&needed) => Ok(()),
                Some(needed) => Err(Denied::OAuthScope(needed.as_str())),
            },
            _ => Ok(()),
        }
    }

    /// Whether this credential may change the account's password, on any
    /// route (the desk's `PUT /lnm/user` included): the account's own
    /// (session, account token) or a desk token (within its `user` scope, as
    /// the route checks); never an API key, an application's or an ACL's
    /// token.
    pub fn may_change_password(&self) -> Result<(), Denied> {
        match &self.credential {
            Credential::ApiKey { .. } => Err(Denied::ApiKeyManaging),
            Credential::OAuthToken { .. } => Err(Denied::OAuthTokenManaging),
            Credential::AclToken { .. } => Err(Denied::AclTokenManaging),
            Credential::Session { .. }
            | Credential::AccountToken { .. }
            | Credential::DeskToken { .. } => Ok(()),
        }
    }

    /// A browser paying while its account asks for the password at each payment
    /// must give it again; a token is its own proof.
    pub fn must_recheck_password(&self) -> bool {
        matches!(self.credential, Credential::Session { .. }) && self.user.recheck_password
    }

    /// The session's anti-forgery token, for pages to echo (empty for tokens).
    pub fn csrf(&self) -> &str {
        match &self.credential {
            Credential::Session { csrf, .. } => csrf,
            Credential::AccountToken { .. }
            | Credential::DeskToken { .. }
            | Credential::AclToken { .. }
            | Credential::ApiKey { .. }
            | Credential::OAuthToken { .. } => "",
        }
    }

    /// When the credential stops working by itself (unix ms), if it does.
    pub fn expires_at_ms(&self) -> Option<i64> {
        match &self.credential {
            Credential::Session { .. }
            | Credential::AclToken { .. }
            | Credential::ApiKey { .. }
            | Credential::OAuthToken { .. } => None,
            Credential::AccountToken { expires_at_ms }
            | Credential::DeskToken { expires_at_ms, .. } => Some(*expires_at_ms),
        }
    }

    /// The account's topic on the bus (its credentials, sessions; the desk).
    pub fn topic(&self) -> Topic {
        Topic::Account(self.user.id.0.clone())
    }

    /// Whether `event` (on this account's topic) voids this credential: the
    /// password changed, the account went, or this very session ended.
    pub fn is_ended_by(&self, event: &EventKind) -> bool {
        match event {
            EventKind::CredentialsChanged { auth_version } => {
                *auth_version != self.user.auth_version
            }
            EventKind::SessionEnded { session } => {
                matches!(&self.credential, Credential::Session { id, .. } if id == session)
            }
            EventKind::TokenRevoked { jti: revoked } => match &self.credential {
                Credential::DeskToken { jti, .. } => jti == revoked,
                Credential::AclToken { grant } => grant.token_id == *revoked,
                Credential::ApiKey { grant } => grant.kid == *revoked,
                Credential::OAuthToken { grant } => grant.grant_id == *revoked,
                _ => false,
            },
            // A stream of an ACL token ends when its ACL changes: the client
            // reconnects under the ACL as it now reads.
            EventKind::AclChanged { acl_id } => {
                matches!(&self.credential, Credential::AclToken { grant } if grant.acl_id == *acl_id)
            }
            _ => false,
        }
    }
}

/// The scope an API key (or an application's token) needs for a `method`
/// request to `path`: `None` outside the APIs, and for the pages' own calls
/// (`/api/ui`), which are a browser's (some trade or manage the account under
/// a path no scope names).
fn api_scope_needed(method: &str, path: &str) -> Option<KeyScope> {
    if !crate::acls::is_api(path) || path.starts_with("/api/ui/") {
        return None;
    }
    Some(if matches!(method, "GET" | "HEAD") {
        KeyScope::Read
    } else if path == "/lnm" || path.starts_with("/lnm/") {
        KeyScope::Trade
    } else {
        KeyScope::Wallet
    })
}

impl From<Denied> for Error {
    fn from(denied: Denied) -> Self {
        Error::Forbidden(denied.to_string())
    }
}
