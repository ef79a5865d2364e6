//! The calls behind the security page: the profile, the ACLs and their tokens,
//! the keys that sign in, and deleting the account. Each is the engine's own
//! operation, as the account API (`/api/v1/auth`) runs it; writes carry the
//! session's CSRF token (`_csrf`), and neither an ACL token nor a scoped desk
//! token may call them.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// What the security page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecurityView {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub has_password: bool,
    pub acls: Vec<AclEntry>,
    /// `(pubkey, kind)`: `lnurl`, `joule` or `nostr`.
    pub keys: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AclEntry {
    pub id: String,
    pub name: String,
    pub allowed_endpoints: Vec<String>,
    pub created_at: String,
    /// `(id, created_at)` of its live tokens.
    pub tokens: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAclToken {
    pub id: String,
    /// The token itself, shown once.
    pub token: String,
}

/// Requests a script commonly needs, offered as choices on the page (each is
/// served: `server/tests/api.rs` checks).
pub const COMMON_ENDPOINTS: [&str; 10] = [
    "GET /api/v1/auth",
    "GET /rest/v1/getalldata",
    "GET /rest/v1/history",
    "GET /rest/v1/channels",
    "POST /rest/v1/createinvoice",
    "POST /rest/v1/sendinvoice",
    "GET /lnm/user",
    "GET /lnm/positions",
    "POST /lnm/positions",
    "POST /lnm/user/deposit",
];

/// The caller, if it may manage how the account is reached: the session (its
/// CSRF token with writes) or an account token.
#[cfg(feature = "ssr")]
async fn manager(write: bool) -> Result<engine::Caller, ApiError> {
    use crate::api::auth;
    let caller = auth::caller().await?;
    match (write, &caller.credential) {
        // Reading needs no CSRF token, but never by an ACL token.
        (false, engine::Credential::AclToken { .. }) => {
            Err(engine::Error::from(engine::caller::Denied::AclTokenManaging).into())
        }
        (false, _) => Ok(caller),
        (true, _) => {
            caller
                .permits(engine::Access::ManageAccess)
                .map_err(engine::Error::from)?;
            Ok(caller)
        }
    }
}

#[server(prefix = "/api/ui", endpoint = "security")]
pub async fn security() -> Result<SecurityView, ApiError> {
    let caller = manager(false).await?;
    let engine = crate::api::auth::engine()?;
    let user = &caller.user;
    let acls = engine.acls.list(user).await?;
    Ok(SecurityView {
        display_name: user.display_name.clone(),
        email: user.email.clone(),
        has_password: engine.accounts.has_password(user).await?,
        acls: acls
            .into_iter()
            .map(|acl| AclEntry {
                id: acl.id,
                name: acl.name,
                allowed_endpoints: acl.allowed_endpoints,
                created_at: engine::rfc3339(acl.created_at_ms),
                tokens: acl
                    .tokens
                    .into_iter()
                    .map(|t| (t.id, engine::rfc3339(t.created_at_ms)))
                    .collect(),
            })
            .collect(),
        keys: engine.accounts.linked_keys(user).await?,
    })
}

#[server(prefix = "/api/ui", endpoint = "update_profile")]
pub async fn update_profile(
    display_name: String,
    email: String,
    #[server(default)] password: Option<String>,
    _csrf: String,
) -> Result<(), ApiError> {
    use crate::api::auth;
    let caller = auth::writer().await?;
    auth::engine()?
        .change_profile(
            &caller,
            Some(&display_name),
            Some(&email),
            password.as_deref(),
            &auth::client_address(),
        )
        .await?;
    Ok(())
}

/// Makes an ACL; `endpoints` are the patterns, one per line.
#[server(prefix = "/api/ui", endpoint = "create_acl")]
pub async fn create_acl(name: String, endpoints: String, _csrf: String) -> Result<(), ApiError> {
    let caller = manager(true).await?;
    let endpoints: Vec<String> = endpoints
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    crate::api::auth::engine()?
        .acls
        .create(&caller.user, &name, &endpoints)
        .await?;
    Ok(())
}

#[server(prefix = "/api/ui", endpoint = "delete_acl")]
pub async fn delete_acl(acl_id: String, _csrf: String) -> Result<(), ApiError> {
    let caller = manager(true).await?;
    crate::api::auth::engine()?
        .acls
        .delete(&caller.user, &acl_id)
        .await?;
    Ok(())
}

#[server(prefix = "/api/ui", endpoint = "issue_acl_token")]
pub async fn issue_acl_token(acl_id: String, _csrf: String) -> Result<NewAclToken, ApiError> {
    let caller = manager(true).await?;
    let (token, secret) = crate::api::auth::engine()?
        .acls
        .issue(&caller.user, &acl_id)
        .await?;
    Ok(NewAclToken {
        id: token.id,
        token: secret,
    })
}

#[server(prefix = "/api/ui", endpoint = "revoke_acl_token")]
pub async fn revoke_acl_token(
    acl_id: String,
    token_id: String,
    _csrf: String,
) -> Result<(), ApiError> {
    let caller = manager(true).await?;
    crate::api::auth::engine()?
        .acls
        .revoke(&caller.user, &acl_id, &token_id)
        .await?;
    Ok(())
}

/// Unlinks a key that signs in (refused for the account's last way in).
#[server(prefix = "/api/ui", endpoint = "unlink_key")]
pub async fn unlink_key(pubkey: String, kind: String, _csrf: String) -> Result<(), ApiError> {
    let caller = manager(true).await?;
    let kind = match kind.as_str() {
        "lnurl" => "lnurl",
        "joule" => "joule",
        "nostr" => "nostr",
        _ => return Err(engine::Error::invalid("kind", "kind is lnurl, joule or nostr").into()),
    };
    crate::api::auth::engine()?
        .accounts
        .unlink_key(&caller.user, &pubkey, kind)
        .await?;
    Ok(())
}

/// Deletes the account (refused while it holds funds), then goes to the
/// start page.
#[server(prefix = "/api/ui", endpoint = "delete_account")]
pub async fn delete_account(password: String, _csrf: String) -> Result<(), ApiError> {
    use crate::api::auth;
    let caller = auth::caller().await?;
    auth::engine()?
        .close_account(&caller, Some(&password), &auth::client_address())
        .await?;
    auth::end_session().await?;
    leptos_axum::redirect("/");
    Ok(())
}
