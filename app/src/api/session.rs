//! The calls behind the sign-up, sign-in, sign-out and password reset forms. They take form
//! encoding so the forms also work without JavaScript, and redirect when done.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// The signed-in account as the pages need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub username: String,
    pub csrf: String,
    /// The unit amounts are read and written in: `sat`, `btc`, `mbtc`, `bits`,
    /// `usd`.
    pub denomination: String,
    /// Whether payments ask for the password again.
    pub recheck_password: bool,
    /// Whether the server offers the simnet faucet and miner (`--simnet-dev`).
    pub simnet_dev: bool,
}

/// The signed-in account, or `None` for a visitor.
#[server(prefix = "/api/ui", endpoint = "me")]
pub async fn me() -> Result<Option<Account>, ApiError> {
    use crate::api::auth::signed_in;
    use crate::api::simnet::SimnetDev;
    let simnet_dev = use_context::<SimnetDev>().is_some_and(|dev| dev.0);
    Ok(signed_in().await?.map(|caller| Account {
        csrf: caller.csrf().to_string(),
        username: caller.user.username,
        denomination: caller.user.denomination.as_str().to_string(),
        recheck_password: caller.user.recheck_password,
        simnet_dev,
    }))
}

#[server(prefix = "/api/ui", endpoint = "sign_up")]
pub async fn sign_up(username: String, password: String) -> Result<(), ApiError> {
    use crate::api::auth;
    let engine = auth::engine()?;
    let user = engine
        .register(&username, &password, None, &auth::client_address())
        .await?;
    auth::start_session(&user).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Signs in with the password (and code); then goes home, or back to `next`
/// when that is an application's authorization request (nowhere else: a
/// link cannot make the sign-in send its visitor off-site).
#[server(prefix = "/api/ui", endpoint = "sign_in")]
pub async fn sign_in(
    username: String,
    password: String,
    #[server(default)] otp_code: Option<String>,
    #[server(default)] next: Option<String>,
) -> Result<(), ApiError> {
    use crate::api::auth;
    let engine = auth::engine()?;
    let user = engine
        .accounts
        .login(&username, &password, otp_code.as_deref(), &auth::seen())
        .await?;
    auth::start_session(&user).await?;
    let next = next.filter(|n| n.starts_with("/connect/authorize?"));
    leptos_axum::redirect(next.as_deref().unwrap_or("/"));
    Ok(())
}

#[server(prefix = "/api/ui", endpoint = "sign_out")]
pub async fn sign_out(csrf: String) -> Result<(), ApiError> {
    use crate::api::auth;
    // The gate checked `csrf` (the form's field) before this ran.
    let _ = csrf;
    auth::writer().await?;
    auth::end_session().await?;
    leptos_axum::redirect("/signin");
    Ok(())
}

/// The identity providers this server signs in with: `(name, label)`.
#[server(prefix = "/api/ui", endpoint = "sign_in_providers")]
pub async fn sign_in_providers() -> Result<Vec<(String, String)>, ApiError> {
    Ok(use_context::<crate::api::auth::SignInProviders>()
        .unwrap_or_default()
        .0)
}

/// What the sign-in and security pages say when a provider's sign-in came
/// back refused (`?provider_error=<reason>`, see `server/src/oidc.rs`).
pub fn provider_error_message(reason: &str) -> &'static str {
    match reason {
        "state" => "That sign-in was started in another browser, or took too long. Try again.",
        "refused" => "The provider did not let you sign in.",
        "unreachable" => "The provider could not be reached. Try again later.",
        "taken" => "That account at the provider already signs in to another Ampere account.",
        "closed" => "This server does not take new accounts.",
        "throttled" => "Too many sign-ins from here. Wait a little and try again.",
        "unknown" => "That provider is not set up on this server.",
        _ => "The provider's answer could not be verified. Try again.",
    }
}

/// Signs this browser in with a NIP-98 event its Nostr extension (NIP-07)
/// signed for this call's URL at the public address: the account of the
/// event's key, made on its first sign-in.
#[server(prefix = "/api/ui", endpoint = "nostr_sign_in")]
pub async fn nostr_sign_in(event: String) -> Result<(), ApiError> {
    use crate::api::auth;
    let engine = auth::engine()?;
    let public = use_context::<auth::PublicUrl>()
        .ok_or_else(|| ApiError::new("public URL missing from context"))?;
    let url = format!("{}/api/ui/nostr_sign_in", public.0);
    let user = engine.nostr_sign_in(&event, &url, &auth::seen()).await?;
    auth::start_session(&user).await?;
    Ok(())
}

/// Sends a reset link to `email` if an account has it; the same answer
/// either way (see `Accounts::request_password_reset`).
#[server(prefix = "/api/ui", endpoint = "request_password_reset")]
pub async fn request_password_reset(email: String) -> Result<(), ApiError> {
    use crate::api::auth;
    let engine = auth::engine()?;
    engine
        .accounts
        .request_password_reset(&email, &auth::client_address(), &engine.mail)
        .await?;
    Ok(())
}

/// Sets a new password from a reset link's key: every session and token of
/// the account ends; the person then signs in with it.
#[server(prefix = "/api/ui", endpoint = "reset_password")]
pub async fn reset_password(
    reset_key: String,
    password: String,
    password_repeat: String,
) -> Result<(), ApiError> {
    use crate::api::auth;
    auth::engine()?
        .accounts
        .reset_password(&reset_key, &password, &password_repeat, &auth::seen())
        .await?;
    Ok(())
}

/// Replaces the password. Every other session and token of the account stops
/// working; this browser gets a fresh session id and stays signed in, with the
/// CSRF token its pages hold.
#[server(prefix = "/api/ui", endpoint = "change_password")]
pub async fn change_password(
    old_password: String,
    new_password: String,
    #[server(default)] otp_code: Option<String>,
    csrf: String,
) -> Result<(), ApiError> {
    use crate::api::auth;
    let caller = auth::permitted(engine::Access::ManageAccess).await?;
    let engine = auth::engine()?;
    let user = engine
        .accounts
        .change_password(
            &caller.user,
            &old_password,
            &new_password,
            otp_code.as_deref(),
            &auth::seen(),
        )
        .await?;
    auth::renew_session(&user, csrf).await?;
    Ok(())
}
