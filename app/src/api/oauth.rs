//! The consent page's calls (`/connect/authorize`): what an application asks
//! of the signed-in person, and their answer. The engine's `oauth` module
//! decides both; a browser without JavaScript posts the answer to the
//! server's `POST /connect/authorize` instead, to the same decision.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// An authorization request's parameters, as the application sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationQuery {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
}

impl AuthorizationQuery {
    /// The fields a form carries on, by name.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.clone()?)))
        .collect()
    }
}

#[cfg(feature = "ssr")]
impl From<AuthorizationQuery> for engine::oauth::AuthorizationRequest {
    fn from(q: AuthorizationQuery) -> Self {
        engine::oauth::AuthorizationRequest {
            response_type: q.response_type,
            client_id: q.client_id,
            redirect_uri: q.redirect_uri,
            scope: q.scope,
            state: q.state,
            code_challenge: q.code_challenge,
            code_challenge_method: q.code_challenge_method,
        }
    }
}

/// What the consent page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsentView {
    /// Ask: the application's name, what each scope allows, where the
    /// browser goes back to, who is signed in.
    Ask {
        client_name: String,
        scopes: Vec<(String, String)>,
        redirect_origin: String,
        username: String,
        csrf: String,
    },
    /// The request names no registered application or redirect address:
    /// nothing is sent anywhere.
    Unsafe(String),
    /// The browser is being sent on (to the application with an error, or
    /// to sign in first).
    SentOn(String),
}

/// What the application at `/connect/authorize?...` asks. A visitor is sent
/// to sign in first and comes back here.
#[server(prefix = "/api/ui", endpoint = "authorization_request")]
pub async fn authorization_request(query: AuthorizationQuery) -> Result<ConsentView, ApiError> {
    use crate::api::auth;
    use engine::oauth::Checked;
    let engine = auth::engine()?;
    let request = engine::oauth::AuthorizationRequest::from(query.clone());
    let consent = match engine.oauth.check(&request).await? {
        Checked::Unsafe(why) => return Ok(ConsentView::Unsafe(why)),
        Checked::Refused(url) => {
            leptos_axum::redirect(&url);
            return Ok(ConsentView::SentOn(url));
        }
        Checked::Consent(consent) => consent,
    };
    let caller = auth::signed_in()
        .await?
        .filter(|c| matches!(c.credential, engine::Credential::Session { .. }));
    let Some(caller) = caller else {
        let here = query
            .fields()
            .iter()
            .map(|(name, value)| format!("{name}={}", crate::pages::url_encode(value)))
            .collect::<Vec<_>>()
            .join("&");
        let sign_in = format!(
            "/signin?next={}",
            crate::pages::url_encode(&format!("/connect/authorize?{here}"))
        );
        leptos_axum::redirect(&sign_in);
        return Ok(ConsentView::SentOn(sign_in));
    };
    crate::content_security_policy(&[consent.redirect_origin()]);
    Ok(ConsentView::Ask {
        client_name: consent.client.name.clone(),
        scopes: consent
            .scopes
            .iter()
            .map(|s| (s.as_str().to_string(), s.meaning().to_string()))
            .collect(),
        redirect_origin: consent.redirect_origin(),
        username: caller.user.username.clone(),
        csrf: caller.csrf().to_string(),
    })
}

/// The person's answer (`approve` or `deny`): where the browser goes next,
/// the application's redirect address with a code or with `access_denied`.
#[server(prefix = "/api/ui", endpoint = "decide_authorization")]
pub async fn decide_authorization(
    query: AuthorizationQuery,
    decision: String,
    _csrf: String,
) -> Result<String, ApiError> {
    use crate::api::auth;
    let caller = auth::caller().await?;
    let request = engine::oauth::AuthorizationRequest::from(query);
    let engine = auth::engine()?;
    match engine
        .oauth
        .decide(&caller, &request, decision == "approve")
        .await?
    {
        Ok(url) => Ok(url),
        Err(why) => Err(engine::Error::invalid("client_id", why).into()),
    }
}
