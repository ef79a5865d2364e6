//! The calls behind the security page: the profile, two-factor codes, the
//! activity log, the ACLs and their tokens, the keys that sign in, and
//! deleting the account. Each is the engine's own
//! operation, as the account API (`/api/v1/auth`) runs it; writes carry the
//! session's CSRF token (`_csrf`), and neither an ACL token nor a scoped desk
//! token may call them.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// The profile, as the page opens with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileView {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub has_password: bool,
    /// Whether signing in with the password also asks for a two-factor code.
    pub two_factor: bool,
}

/// A two-factor secret waiting to be switched on: what the authenticator app
/// scans (`url`) or has typed in (`secret`, base32).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoFactorSetup {
    pub url: String,
    pub secret: String,
}

/// A signed API key as the page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub kid: String,
    /// `read`, `wallet`, `trade`.
    pub scopes: Vec<String>,
    /// `active` or `disabled`.
    pub state: String,
    pub created_at: String,
}

/// An application the person authorised (Ampere as an OAuth provider).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplicationRow {
    pub id: String,
    pub client_name: String,
    /// What it may do, in words.
    pub scopes: Vec<String>,
    pub authorised_at: String,
    pub last_used_at: String,
}

/// A key just made: its secret is shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewApiKey {
    pub kid: String,
    pub secret: String,
}

/// One entry of the account's activity log, in words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityView {
    /// "Signed in with a password", "Password changed", ...
    pub what: String,
    /// `succeed`, `failed` or `denied`.
    pub result: String,
    pub at: String,
    pub address: String,
    /// The browser and system its `User-Agent` names.
    pub device: String,
}

/// An activity (topic, action and the way named in its data) in words: what
/// was done, or, for an attempt refused (`result` other than `succeed`), what
/// was tried.
pub fn activity_words(topic: &str, action: &str, result: &str, data: &str) -> String {
    let way = serde_json::from_str::<serde_json::Value>(data)
        .ok()
        .and_then(|d| d.get("way").and_then(|w| w.as_str()).map(str::to_string))
        .unwrap_or_default();
    let by = match way.as_str() {
        "password" => "a password",
        "nostr" => "a Nostr key",
        "lnurl" => "a Lightning wallet (LNURL-auth)",
        "joule" => "a browser wallet (Joule)",
        "user_id" => "the account's ID",
        "google" => "Google",
        "keycloak" => "Keycloak",
        "github" => "GitHub",
        _ => "another way",
    };
    let (done, tried) = match (topic, action) {
        ("session", "login") => (format!("Signed in with {by}"), format!("Sign-in with {by}")),
        ("session", "logout") => ("Signed out".into(), "Sign-out".into()),
        ("password", "update") => ("Password changed".into(), "Password change".into()),
        ("password", "reset") => (
            "Password reset by an e-mail link".into(),
            "Password reset by an e-mail link".into(),
        ),
        ("otp", "enable") => (
            "Two-factor authentication turned on".into(),
            "Turning two-factor authentication on".into(),
        ),
        ("otp", "disable") => (
            "Two-factor authentication turned off".into(),
            "Turning two-factor authentication off".into(),
        ),
        ("otp", "verify") => ("Two-factor code checked".into(), "Two-factor code".into()),
        ("api_keys", "create") => ("API key made".into(), "Making an API key".into()),
        ("api_keys", "update") => ("API key changed".into(), "Changing an API key".into()),
        ("api_keys", "delete") => ("API key deleted".into(), "Deleting an API key".into()),
        (topic, action) => (format!("{topic}: {action}"), format!("{topic}: {action}")),
    };
    if result == "succeed" {
        done
    } else {
        tried
    }
}

/// How the account is reached: its ACLs and the keys that sign in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessView {
    pub has_password: bool,
    pub acls: Vec<AclView>,
    /// `(pubkey, kind)`, kinds as `engine::accounts::KEY_KINDS` names them
    /// (a provider's key reads `<provider>:<subject>`).
    pub keys: Vec<(String, String)>,
    /// The identity providers an account may link: `(name, label)`.
    pub providers: Vec<(String, String)>,
}

/// One signed-in browser of the account, as the page lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    pub handle: String,
    /// Whether it is the browser looking at the list.
    pub current: bool,
    /// The browser and system its `User-Agent` names, in a few words.
    pub device: String,
    pub address: String,
    pub signed_in_at: String,
    pub seen_at: String,
}

/// A `User-Agent` in a few words: "Firefox on Linux", "curl".
pub fn device_of(user_agent: &str) -> String {
    let has = |needle: &str| user_agent.contains(needle);
    let browser = if has("Edg/") {
        "Edge"
    } else if has("Firefox/") {
        "Firefox"
    } else if has("Chrome/") || has("Chromium/") {
        "Chrome"
    } else if has("Safari/") {
        "Safari"
    } else if let Some(name) = user_agent
        .split(['/', ' '])
        .next()
        .filter(|n| !n.is_empty())
    {
        return name.chars().take(40).collect();
    } else {
        return "Unknown browser".into();
    };
    let system = if has("Android") {
        "Android"
    } else if has("iPhone") || has("iPad") {
        "iOS"
    } else if has("Windows") {
        "Windows"
    } else if has("Mac OS") {
        "macOS"
    } else if has("Linux") || has("X11") {
        "Linux"
    } else {
        return browser.into();
    };
    format!("{browser} on {system}")
}

/// An ACL as `GET /api/v1/auth/acls` answers it and the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AclView {
    pub id: String,
    pub name: String,
    pub allowed_endpoints: Vec<String>,
    pub created_at: String,
    /// Its live tokens (never the token itself).
    pub tokens: Vec<AclTokenView>,
}

/// A token of an ACL; `token` only in the answer that issues it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AclTokenView {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub acl_id: String,
    pub created_at: String,
}

#[cfg(feature = "ssr")]
impl From<engine::acls::Acl> for AclView {
    fn from(acl: engine::acls::Acl) -> Self {
        AclView {
            id: acl.id,
            name: acl.name,
            allowed_endpoints: acl.allowed_endpoints,
            created_at: engine::rfc3339(acl.created_at_ms),
            tokens: acl
                .tokens
                .into_iter()
                .map(|t| AclTokenView::new(t, None))
                .collect(),
        }
    }
}

#[cfg(feature = "ssr")]
impl AclTokenView {
    pub fn new(token: engine::acls::AclToken, secret: Option<String>) -> Self {
        AclTokenView {
            id: token.id,
            token: secret,
            acl_id: token.acl_id,
            created_at: engine::rfc3339(token.created_at_ms),
        }
    }
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
        (false, engine::Credential::ApiKey { .. }) => {
            Err(engine::Error::from(engine::caller::Denied::ApiKeyManaging).into())
        }
        (false, engine::Credential::OAuthToken { .. }) => {
            Err(engine::Error::from(engine::caller::Denied::OAuthTokenManaging).into())
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

#[server(prefix = "/api/ui", endpoint = "security_profile")]
pub async fn security_profile() -> Result<ProfileView, ApiError> {
    let caller = manager(false).await?;
    let engine = crate::api::auth::engine()?;
    Ok(ProfileView {
        display_name: caller.user.display_name.clone(),
        email: caller.user.email.clone(),
        has_password: engine.accounts.has_password(&caller.user).await?,
        two_factor: engine.accounts.two_factor_on(&caller.user.id.0).await?,
    })
}

/// A new two-factor secret, off until [`enable_two_factor`] gets a code of it.
#[server(prefix = "/api/ui", endpoint = "start_two_factor")]
pub async fn start_two_factor(_csrf: String) -> Result<TwoFactorSetup, ApiError> {
    let caller = manager(true).await?;
    let enrolment = crate::api::auth::engine()?
        .accounts
        .start_two_factor(&caller.user)
        .await?;
    Ok(TwoFactorSetup {
        url: enrolment.url,
        secret: enrolment.secret,
    })
}

/// Turns two-factor codes on with a first code of the waiting secret.
#[server(prefix = "/api/ui", endpoint = "enable_two_factor")]
pub async fn enable_two_factor(otp_code: String, _csrf: String) -> Result<(), ApiError> {
    let caller = manager(true).await?;
    crate::api::auth::engine()?
        .accounts
        .enable_two_factor(&caller.user, &otp_code, &crate::api::auth::seen())
        .await?;
    Ok(())
}

/// Turns two-factor codes off, with a current code.
#[server(prefix = "/api/ui", endpoint = "disable_two_factor")]
pub async fn disable_two_factor(otp_code: String, _csrf: String) -> Result<(), ApiError> {
    let caller = manager(true).await?;
    crate::api::auth::engine()?
        .accounts
        .disable_two_factor(&caller.user, &otp_code, &crate::api::auth::seen())
        .await?;
    Ok(())
}

/// The account's signed API keys, oldest first.
#[server(prefix = "/api/ui", endpoint = "security_api_keys")]
pub async fn security_api_keys() -> Result<Vec<ApiKeyRow>, ApiError> {
    let caller = manager(false).await?;
    let (keys, _) = crate::api::auth::engine()?
        .api_keys
        .list(&caller.user, 1, engine::api_keys::MAX_KEYS as u32)
        .await?;
    Ok(keys
        .into_iter()
        .map(|k| ApiKeyRow {
            kid: k.kid,
            scopes: k.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            state: k.state,
            created_at: engine::rfc3339(k.created_at_ms),
        })
        .collect())
}

/// Makes a signed API key that reads, and writes the wallet or the exchange
/// as asked; the code of an account with two-factor on.
#[server(prefix = "/api/ui", endpoint = "create_api_key")]
pub async fn create_api_key(
    #[server(default)] wallet: Option<String>,
    #[server(default)] trade: Option<String>,
    #[server(default)] otp_code: Option<String>,
    _csrf: String,
) -> Result<NewApiKey, ApiError> {
    use engine::api_keys::KeyScope;
    let caller = manager(true).await?;
    let engine = crate::api::auth::engine()?;
    let mut scopes = vec![KeyScope::Read];
    if wallet.is_some() {
        scopes.push(KeyScope::Wallet);
    }
    if trade.is_some() {
        scopes.push(KeyScope::Trade);
    }
    let (key, secret) = engine
        .create_api_key(
            engine::api_keys::KeyHolder::own(&caller.user),
            "HS256",
            scopes,
            otp_code.as_deref(),
            &crate::api::auth::seen(),
        )
        .await?;
    Ok(NewApiKey {
        kid: key.kid,
        secret,
    })
}

/// Deletes one of the account's API keys (with the code of an account that
/// has two-factor on).
#[server(prefix = "/api/ui", endpoint = "delete_api_key")]
pub async fn delete_api_key(
    kid: String,
    #[server(default)] otp_code: Option<String>,
    _csrf: String,
) -> Result<(), ApiError> {
    let caller = manager(true).await?;
    let engine = crate::api::auth::engine()?;
    engine
        .delete_api_key(
            engine::api_keys::KeyHolder::own(&caller.user),
            &kid,
            otp_code.as_deref(),
            &crate::api::auth::seen(),
        )
        .await?;
    Ok(())
}

/// The applications the person authorised, most recently used first.
#[server(prefix = "/api/ui", endpoint = "security_applications")]
pub async fn security_applications() -> Result<Vec<ApplicationRow>, ApiError> {
    let caller = manager(false).await?;
    let authorised = crate::api::auth::engine()?
        .oauth
        .authorised(&caller.user)
        .await?;
    Ok(authorised
        .into_iter()
        .map(|a| ApplicationRow {
            id: a.id,
            client_name: a.client_name,
            scopes: a
                .scopes
                .iter()
                .map(|s| format!("{}: {}", s.as_str(), s.meaning()))
                .collect(),
            authorised_at: engine::rfc3339(a.created_at_ms),
            last_used_at: engine::rfc3339(a.last_used_ms),
        })
        .collect())
}

/// Revokes an application: its tokens stop at once.
#[server(prefix = "/api/ui", endpoint = "revoke_application")]
pub async fn revoke_application(id: String, _csrf: String) -> Result<(), ApiError> {
    let caller = manager(true).await?;
    crate::api::auth::engine()?
        .oauth
        .revoke(&caller.user, &id)
        .await?;
    Ok(())
}

/// The account's latest activity (20 entries), newest first.
#[server(prefix = "/api/ui", endpoint = "security_activity")]
pub async fn security_activity() -> Result<Vec<ActivityView>, ApiError> {
    let caller = manager(false).await?;
    let (rows, _) = crate::api::auth::engine()?
        .accounts
        .activities(&caller.user.id.0, &Default::default(), 1, 20)
        .await?;
    Ok(rows
        .into_iter()
        .map(|a| ActivityView {
            what: activity_words(&a.topic, &a.action, &a.result, &a.data),
            result: a.result,
            at: engine::rfc3339(a.created_at_ms),
            address: a.user_ip,
            device: device_of(&a.user_agent),
        })
        .collect())
}

#[server(prefix = "/api/ui", endpoint = "security_access")]
pub async fn security_access() -> Result<AccessView, ApiError> {
    let caller = manager(false).await?;
    let engine = crate::api::auth::engine()?;
    let user = &caller.user;
    Ok(AccessView {
        has_password: engine.accounts.has_password(user).await?,
        acls: engine
            .acls
            .list(user)
            .await?
            .into_iter()
            .map(AclView::from)
            .collect(),
        keys: engine.accounts.linked_keys(user).await?,
        providers: use_context::<crate::api::auth::SignInProviders>()
            .unwrap_or_default()
            .0,
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
            &auth::seen(),
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
pub async fn issue_acl_token(acl_id: String, _csrf: String) -> Result<AclTokenView, ApiError> {
    let caller = manager(true).await?;
    let (token, secret) = crate::api::auth::engine()?
        .acls
        .issue(&caller.user, &acl_id)
        .await?;
    Ok(AclTokenView::new(token, Some(secret)))
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

/// The account's signed-in browsers, the most recently seen first.
#[server(prefix = "/api/ui", endpoint = "security_sessions")]
pub async fn security_sessions() -> Result<Vec<SessionView>, ApiError> {
    let caller = manager(false).await?;
    let current = match &caller.credential {
        engine::Credential::Session { id, .. } => id.clone(),
        _ => String::new(),
    };
    Ok(crate::api::auth::engine()?
        .accounts
        .sessions(&caller.user)
        .await?
        .into_iter()
        .map(|row| SessionView {
            current: row.handle == current,
            device: device_of(&row.user_agent),
            address: row.address,
            signed_in_at: engine::rfc3339(row.created_at_ms),
            seen_at: engine::rfc3339(row.seen_at_ms),
            handle: row.handle,
        })
        .collect())
}

/// A writing manager who gave the account's password again (where it has
/// one), and the engine.
#[cfg(feature = "ssr")]
async fn confirmed_manager(
    password: Option<String>,
) -> Result<(engine::Caller, engine::Engine), ApiError> {
    let caller = manager(true).await?;
    let engine = crate::api::auth::engine()?;
    engine
        .accounts
        .confirm(&caller, password.as_deref(), &crate::api::auth::seen())
        .await?;
    Ok((caller, engine))
}

/// Signs one of the account's sessions out, at once, wherever it is.
/// (The account's password first, where it has one: a stolen session must
/// not be able to keep its owner signed out.)
#[server(prefix = "/api/ui", endpoint = "end_session")]
pub async fn end_session(
    handle: String,
    #[server(default)] password: Option<String>,
    _csrf: String,
) -> Result<(), ApiError> {
    let (caller, engine) = confirmed_manager(password).await?;
    let ended = engine
        .accounts
        .end_session(&caller.user.id.0, &handle)
        .await?;
    if !ended {
        return Err(engine::Error::NotFound("no such session of this account".into()).into());
    }
    Ok(())
}

/// Signs out every session of the account but this one (the password
/// first, as for one).
#[server(prefix = "/api/ui", endpoint = "end_other_sessions")]
pub async fn end_other_sessions(
    #[server(default)] password: Option<String>,
    _csrf: String,
) -> Result<usize, ApiError> {
    let (caller, engine) = confirmed_manager(password).await?;
    let engine::Credential::Session { id, .. } = &caller.credential else {
        return Err(engine::Error::from(engine::caller::Denied::SessionOnly).into());
    };
    Ok(engine.accounts.end_other_sessions(&caller.user, id).await?)
}

/// Unlinks a key that signs in (refused for the account's last way in).
#[server(prefix = "/api/ui", endpoint = "unlink_key")]
pub async fn unlink_key(pubkey: String, kind: String, _csrf: String) -> Result<(), ApiError> {
    let caller = manager(true).await?;
    let Some(kind) = engine::accounts::key_kind(&kind) else {
        return Err(engine::Error::invalid("kind", "no such kind of sign-in key").into());
    };
    crate::api::auth::engine()?
        .accounts
        .unlink_key(&caller.user, &pubkey, kind)
        .await?;
    Ok(())
}

/// Links the key of a NIP-98 event the browser's Nostr extension signed for
/// this call's URL at the public address.
#[server(prefix = "/api/ui", endpoint = "link_nostr_key")]
pub async fn link_nostr_key(event: String, _csrf: String) -> Result<(), ApiError> {
    let caller = manager(true).await?;
    let public = use_context::<crate::api::auth::PublicUrl>()
        .ok_or_else(|| ApiError::new("public URL missing from context"))?;
    let url = format!("{}/api/ui/link_nostr_key", public.0);
    crate::api::auth::engine()?
        .link_nostr_key(&caller.user, &event, &url)
        .await?;
    Ok(())
}

/// An LNURL-auth (LUD-04 `action=link`) that links the answering wallet's
/// key to this account.
#[server(prefix = "/api/ui", endpoint = "lnurl_link_create")]
pub async fn lnurl_link_create(_csrf: String) -> Result<crate::api::lnm::Lnurl, ApiError> {
    let caller = manager(true).await?;
    let (_, lnurl) = crate::api::auth::engine()?
        .desk
        .lnurl_link_challenge(&caller.user)
        .await?;
    Ok(crate::api::lnm::Lnurl { lnurl })
}

/// Deletes the account (refused while it holds funds), then goes to the
/// start page.
#[server(prefix = "/api/ui", endpoint = "delete_account")]
pub async fn delete_account(
    password: String,
    #[server(default)] otp_code: Option<String>,
    _csrf: String,
) -> Result<(), ApiError> {
    use crate::api::auth;
    let caller = auth::caller().await?;
    auth::engine()?
        .close_account(
            &caller,
            Some(&password),
            otp_code.as_deref().filter(|c| !c.is_empty()),
            &auth::seen(),
        )
        .await?;
    auth::end_session().await?;
    leptos_axum::redirect("/");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{activity_words, device_of};

    #[test]
    fn an_activity_reads_as_what_was_done_or_tried() {
        let way = r#"{"way":"nostr"}"#;
        assert_eq!(
            activity_words("session", "login", "succeed", way),
            "Signed in with a Nostr key"
        );
        assert_eq!(
            activity_words("session", "login", "denied", way),
            "Sign-in with a Nostr key"
        );
        assert_eq!(
            activity_words("otp", "enable", "failed", "{}"),
            "Turning two-factor authentication on"
        );
        assert_eq!(
            activity_words("api_keys", "delete", "succeed", "{}"),
            "API key deleted"
        );
        assert_eq!(
            activity_words("session", "login", "succeed", "not json"),
            "Signed in with another way"
        );
    }

    #[test]
    fn a_user_agent_reads_as_browser_and_system() {
        let chromium = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36";
        assert_eq!(device_of(chromium), "Chrome on Linux");
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0";
        assert_eq!(device_of(firefox), "Firefox on Windows");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
        assert_eq!(device_of(iphone), "Safari on iOS");
        assert_eq!(device_of("curl/8.5.0"), "curl");
        assert_eq!(device_of(""), "Unknown browser");
    }
}
