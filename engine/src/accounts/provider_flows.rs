//! Sign-ins through identity providers under way (`server/src/oidc.rs` speaks
//! the protocol): what a start must remember until the provider sends the
//! browser back (the PKCE verifier, the nonce, the account to link to),
//! named by the SHA-256 of its `state` and bound to the browser that started
//! it by the SHA-256 of a cookie of its own. Kept apart from the browser's
//! session, which other requests of the same page may rewrite meanwhile.

use sqlx::Row;

use super::Accounts;
use crate::{now_ms, Result};

/// How long a started sign-in waits for the provider's answer.
pub const FLOW_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// What a started sign-in remembers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFlow {
    pub provider: String,
    pub verifier: String,
    pub nonce: Option<String>,
    /// The account to link the provider's account to (else: sign in).
    pub link_to: Option<String>,
}

impl Accounts {
    /// Remembers a started sign-in under `state`, for the browser holding
    /// `browser` (its cookie's value).
    pub async fn begin_provider_flow(
        &self,
        state: &str,
        browser: &str,
        flow: &ProviderFlow,
    ) -> Result<()> {
        let now = now_ms();
        let (state, browser, flow) = (
            crate::secret_hash(state),
            crate::secret_hash(browser),
            flow.clone(),
        );
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    // Abandoned starts go as new ones come: the table stays small.
                    sqlx::query("DELETE FROM provider_flows WHERE created_at < $1")
                        .bind(now - FLOW_LIFETIME_MS)
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query(
                        "INSERT INTO provider_flows \
                         (state_hash, browser_hash, provider, verifier, nonce, link_to, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind(&state)
                    .bind(&browser)
                    .bind(&flow.provider)
                    .bind(&flow.verifier)
                    .bind(&flow.nonce)
                    .bind(&flow.link_to)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Takes the sign-in started under `state` by the browser holding
    /// `browser`, if it is still fresh: once (of two answers at once, one
    /// gets it).
    pub async fn take_provider_flow(
        &self,
        state: &str,
        browser: &str,
    ) -> Result<Option<ProviderFlow>> {
        let (state, browser) = (crate::secret_hash(state), crate::secret_hash(browser));
        let since = now_ms() - FLOW_LIFETIME_MS;
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "DELETE FROM provider_flows \
                         WHERE state_hash = $1 AND browser_hash = $2 AND created_at > $3 \
                         RETURNING provider, verifier, nonce, link_to",
                    )
                    .bind(&state)
                    .bind(&browser)
                    .bind(since)
                    .fetch_optional(&mut *conn)
                    .await?;
                    row.map(|r| {
                        Ok(ProviderFlow {
                            provider: r.try_get("provider")?,
                            verifier: r.try_get("verifier")?,
                            nonce: r.try_get("nonce")?,
                            link_to: r.try_get("link_to")?,
                        })
                    })
                    .transpose()
                })
            })
            .await
    }
}
