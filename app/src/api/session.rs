//! The calls behind the sign-up, sign-in and sign-out forms. They take form
//! encoding so the forms also work without JavaScript, and redirect when done.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// The signed-in user as the pages show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedInUser {
    pub username: String,
    pub csrf: String,
}

/// The signed-in user, or `None` for a visitor.
#[server(prefix = "/api/ui", endpoint = "me")]
pub async fn me() -> Result<Option<SignedInUser>, ApiError> {
    use crate::api::auth::{signed_in, Credential};
    Ok(signed_in().await?.map(|caller| SignedInUser {
        username: caller.user.username,
        csrf: match caller.credential {
            Credential::Session { csrf } => csrf,
            Credential::Bearer => String::new(),
        },
    }))
}

#[server(prefix = "/api/ui", endpoint = "sign_up")]
pub async fn sign_up(username: String, password: String) -> Result<(), ApiError> {
    use crate::api::auth;
    let engine = auth::engine()?;
    let user = engine.register(&username, &password, None).await?;
    auth::start_session(&user).await?;
    leptos_axum::redirect("/");
    Ok(())
}

#[server(prefix = "/api/ui", endpoint = "sign_in")]
pub async fn sign_in(username: String, password: String) -> Result<(), ApiError> {
    use crate::api::auth;
    let engine = auth::engine()?;
    let user = engine
        .accounts
        .login(&username, &password, &auth::client_address())
        .await?;
    auth::start_session(&user).await?;
    leptos_axum::redirect("/");
    Ok(())
}

#[server(prefix = "/api/ui", endpoint = "sign_out")]
pub async fn sign_out(csrf: String) -> Result<(), ApiError> {
    use crate::api::auth;
    auth::writer(Some(&csrf)).await?;
    auth::end_session().await?;
    leptos_axum::redirect("/signin");
    Ok(())
}
