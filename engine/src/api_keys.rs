//! Signed API keys, as OpenDAX/Barong exchanges sign them: a key id (`kid`) and
//! a secret shown once. A request proves the key by three headers:
//! `X-Auth-Apikey` (the kid), `X-Auth-Nonce` (milliseconds since the epoch,
//! within 30 s of the server's clock, never used twice with the key) and
//! `X-Auth-Signature` (hex HMAC-SHA256 of the nonce followed by the kid, keyed
//! by the secret). It owns the keys, their scopes and states, and the nonces
//! seen; what a scope lets a key call is decided with the other credentials
//! (`Caller::admits`).

use bitcoin::hashes::{hmac, sha256, Hash, HashEngine};
use sqlx::Row;

use crate::events::{Bus, EventKind, Topic};
use crate::{now_ms, same_secret, Database, Error, Result, User};

/// How far a request's nonce may be from the server's clock.
pub const NONCE_WINDOW_MS: i64 = 30_000;
/// Most keys one account may hold.
pub const MAX_KEYS: i64 = 50;

/// What a key may call. Every key reads; the others add writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyScope {
    /// `GET` (and `HEAD`) on every API.
    Read,
    /// Writes on the wallet's and account's APIs (`/rest/`, `/api/`):
    /// payments, invoices, channels.
    Wallet,
    /// Writes on the exchange (`/lnm`): orders, deposits, withdrawals.
    Trade,
}

impl KeyScope {
    pub const ALL: [KeyScope; 3] = [KeyScope::Read, KeyScope::Wallet, KeyScope::Trade];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Read => "read",
            KeyScope::Wallet => "wallet",
            KeyScope::Trade => "trade",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Reads a key's scopes as a client gives them: a JSON array of names, or
/// names separated by commas or spaces. `read` is always among them.
pub fn parse_scopes(text: &str) -> Result<Vec<KeyScope>> {
    let invalid = || {
        Error::invalid(
            "scope",
            "scope is a list of read, wallet and trade (e.g. [\"read\",\"trade\"])",
        )
    };
    let names: Vec<String> = match serde_json::from_str::<Vec<String>>(text) {
        Ok(names) => names,
        Err(_) if text.trim_start().starts_with('[') => return Err(invalid()),
        Err(_) => text
            .split([',', ' '])
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect(),
    };
    let mut scopes = vec![KeyScope::Read];
    for name in &names {
        scopes.push(KeyScope::parse(name.trim()).ok_or_else(invalid)?);
    }
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

/// A key as the API lists it (never its secret, but once).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub kid: String,
    pub algorithm: String,
    pub scopes: Vec<KeyScope>,
    /// `active` or `disabled`.
    pub state: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// What a verified key lets its request do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGrant {
    pub kid: String,
    pub scopes: Vec<KeyScope>,
}

#[derive(Clone)]
pub struct ApiKeys {
    db: Database,
    bus: Bus,
}

impl ApiKeys {
    pub fn new(db: Database, bus: Bus) -> Self {
        ApiKeys { db, bus }
    }

    /// A new key of `owner` (HS256 only): answers it and its secret, which is
    /// never shown again.
    pub async fn create(
        &self,
        owner: &User,
        algorithm: &str,
        scopes: Vec<KeyScope>,
    ) -> Result<(ApiKey, String)> {
        if algorithm != "HS256" {
            return Err(Error::invalid("algorithm", "algorithm must be HS256"));
        }
        let kid = crate::random_hex(8);
        let secret = crate::random_hex(32);
        let now = now_ms();
        let (owner_id, row_kid, row_secret, scope) = (
            owner.id.0.clone(),
            kid.clone(),
            secret.clone(),
            scope_text(&scopes),
        );
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let held: i64 =
                        sqlx::query("SELECT COUNT(*) AS n FROM api_keys WHERE user_id = $1")
                            .bind(&owner_id)
                            .fetch_one(&mut *conn)
                            .await?
                            .try_get("n")?;
                    if held >= MAX_KEYS {
                        return Err(Error::TooMany(format!(
                            "an account holds at most {MAX_KEYS} API keys; delete one first"
                        )));
                    }
                    sqlx::query(
                        "INSERT INTO api_keys \
                         (kid, user_id, algorithm, scope, state, secret, created_at, updated_at) \
                         VALUES ($1, $2, 'HS256', $3, 'active', $4, $5, $5)",
                    )
                    .bind(row_kid)
                    .bind(owner_id)
                    .bind(scope)
                    .bind(row_secret)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        let key = ApiKey {
            kid,
            algorithm: "HS256".into(),
            scopes,
            state: "active".into(),
            created_at_ms: now,
            updated_at_ms: now,
        };
        Ok((key, secret))
    }

    /// One page of `owner`'s keys, oldest first, and how many there are.
    pub async fn list(&self, owner: &User, page: u32, per_page: u32) -> Result<(Vec<ApiKey>, i64)> {
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM api_keys WHERE user_id = $1")
            .bind(&owner.id.0)
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?;
        let rows = sqlx::query(
            "SELECT kid, algorithm, scope, state, created_at, updated_at FROM api_keys \
             WHERE user_id = $1 ORDER BY created_at, kid LIMIT $2 OFFSET $3",
        )
        .bind(&owner.id.0)
        .bind(i64::from(per_page))
        .bind(i64::from(page.saturating_sub(1)) * i64::from(per_page))
        .fetch_all(self.db.pool())
        .await?;
        let keys = rows.iter().map(key_from_row).collect::<Result<_>>()?;
        Ok((keys, total))
    }

    /// Changes the scopes or state (`active`, `disabled`) of one of `owner`'s
    /// keys; a key disabled stops working at once, in every process.
    pub async fn update(
        &self,
        owner: &User,
        kid: &str,
        scopes: Option<Vec<KeyScope>>,
        state: Option<&str>,
    ) -> Result<ApiKey> {
        if let Some(state) = state {
            if !["active", "disabled"].contains(&state) {
                return Err(Error::invalid("state", "state must be active or disabled"));
            }
        }
        let changed = self
            .db
            .execute(
                sqlx::query(
                    "UPDATE api_keys SET scope = COALESCE($1, scope), \
                     state = COALESCE($2, state), updated_at = $3 \
                     WHERE kid = $4 AND user_id = $5",
                )
                .bind(scopes.as_deref().map(scope_text))
                .bind(state.map(str::to_string))
                .bind(now_ms())
                .bind(kid.to_string())
                .bind(owner.id.0.clone()),
            )
            .await?;
        if changed == 0 {
            return Err(no_such_key());
        }
        self.ended(owner, kid);
        let row = sqlx::query(
            "SELECT kid, algorithm, scope, state, created_at, updated_at FROM api_keys \
             WHERE kid = $1",
        )
        .bind(kid)
        .fetch_one(self.db.pool())
        .await?;
        key_from_row(&row)
    }

    /// Deletes one of `owner`'s keys: it stops working at once.
    pub async fn delete(&self, owner: &User, kid: &str) -> Result<()> {
        let deleted = self
            .db
            .execute(
                sqlx::query("DELETE FROM api_keys WHERE kid = $1 AND user_id = $2")
                    .bind(kid.to_string())
                    .bind(owner.id.0.clone()),
            )
            .await?;
        if deleted == 0 {
            return Err(no_such_key());
        }
        self.ended(owner, kid);
        Ok(())
    }

    /// The account and grant of a request signed with the key `kid`, if the
    /// key is active, the nonce is near `now_ms` and new for the key, and the
    /// signature is the key's over `nonce + kid`. Anything else is
    /// `Unauthenticated`, whatever the reason (a prober learns nothing).
    pub async fn verify(
        &self,
        kid: &str,
        nonce: &str,
        signature: &str,
        now_ms: i64,
    ) -> Result<(String, KeyGrant)> {
        let refused = || Error::Unauthenticated;
        let well_formed = kid.len() <= 64
            && kid.bytes().all(|b| b.is_ascii_hexdigit())
            && (1..=16).contains(&nonce.len())
            && nonce.bytes().all(|b| b.is_ascii_digit())
            && signature.len() == 64;
        if !well_formed {
            return Err(refused());
        }
        let nonce_ms: i64 = nonce.parse().map_err(|_| refused())?;
        if (now_ms - nonce_ms).abs() > NONCE_WINDOW_MS {
            return Err(refused());
        }
        let row = sqlx::query("SELECT user_id, scope, state, secret FROM api_keys WHERE kid = $1")
            .bind(kid)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(refused)?;
        let secret: String = row.try_get("secret")?;
        let expected = sign(&secret, nonce, kid);
        let signed = same_secret(
            signature.to_ascii_lowercase().as_bytes(),
            expected.as_bytes(),
        );
        if !signed || row.try_get::<String, _>("state")? != "active" {
            return Err(refused());
        }
        // The nonce is used up: of two requests with it, one gets through.
        let (row_kid, row_nonce) = (kid.to_string(), nonce_ms);
        let fresh = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM api_key_nonces WHERE kid = $1 AND expires_at < $2")
                        .bind(&row_kid)
                        .bind(now_ms)
                        .execute(&mut *conn)
                        .await?;
                    let inserted = sqlx::query(
                        "INSERT INTO api_key_nonces (kid, nonce, expires_at) VALUES ($1, $2, $3) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&row_kid)
                    .bind(row_nonce)
                    .bind(row_nonce + 2 * NONCE_WINDOW_MS)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    Ok(inserted == 1)
                })
            })
            .await?;
        if !fresh {
            return Err(refused());
        }
        let scopes = scopes_of(&row.try_get::<String, _>("scope")?);
        Ok((
            row.try_get("user_id")?,
            KeyGrant {
                kid: kid.to_string(),
                scopes,
            },
        ))
    }

    /// Ends the event streams of a key changed or deleted (they reconnect
    /// under what it now allows, or not at all).
    fn ended(&self, owner: &User, kid: &str) {
        self.bus.publish(
            Topic::Account(owner.id.0.clone()),
            EventKind::TokenRevoked {
                jti: kid.to_string(),
            },
        );
    }
}

impl crate::Engine {
    /// Makes a key of `owner`, asking the code of an account with two-factor
    /// on; the activity log records the attempt.
    pub async fn create_api_key(
        &self,
        keys: KeyHolder<'_>,
        algorithm: &str,
        scopes: Vec<KeyScope>,
        code: Option<&str>,
        seen: &crate::Seen,
    ) -> Result<(ApiKey, String)> {
        let made = async {
            self.key_factor(keys, code).await?;
            self.api_keys.create(keys.holder, algorithm, scopes).await
        }
        .await;
        self.record_key_change(keys, "create", seen, &made).await;
        made
    }

    /// [`ApiKeys::update`], as [`crate::Engine::create_api_key`] asks.
    pub async fn update_api_key(
        &self,
        keys: KeyHolder<'_>,
        kid: &str,
        scopes: Option<Vec<KeyScope>>,
        state: Option<&str>,
        code: Option<&str>,
        seen: &crate::Seen,
    ) -> Result<ApiKey> {
        let changed = async {
            self.key_factor(keys, code).await?;
            self.api_keys.update(keys.holder, kid, scopes, state).await
        }
        .await;
        self.record_key_change(keys, "update", seen, &changed).await;
        changed
    }

    /// [`ApiKeys::delete`], as [`crate::Engine::create_api_key`] asks.
    pub async fn delete_api_key(
        &self,
        keys: KeyHolder<'_>,
        kid: &str,
        code: Option<&str>,
        seen: &crate::Seen,
    ) -> Result<()> {
        let deleted = async {
            self.key_factor(keys, code).await?;
            self.api_keys.delete(keys.holder, kid).await
        }
        .await;
        self.record_key_change(keys, "delete", seen, &deleted).await;
        deleted
    }

    /// The owner's code: when two-factor is on for its own keys; always
    /// (and two-factor on) for a service account's.
    async fn key_factor(&self, keys: KeyHolder<'_>, code: Option<&str>) -> Result<()> {
        match keys.holder.id == keys.owner.id {
            true => self.accounts.second_factor(keys.owner, code).await,
            false => self.accounts.service_factor(keys.owner, code).await,
        }
    }

    /// In the owner's activity log (naming the service account, if it was
    /// one's key).
    async fn record_key_change<T>(
        &self,
        keys: KeyHolder<'_>,
        action: &str,
        seen: &crate::Seen,
        result: &Result<T>,
    ) {
        use crate::accounts::activity::{Outcome, Topic};
        let data = match keys.holder.id == keys.owner.id {
            true => serde_json::json!({}),
            false => serde_json::json!({ "service_account": keys.holder.id.0 }),
        };
        self.accounts
            .record(
                &keys.owner.id.0,
                Topic::ApiKeys,
                action,
                Outcome::of(result),
                seen,
                data,
            )
            .await
    }
}

/// Whose keys a change is of: the `holder` (the owner itself, or one of its
/// service accounts) and the `owner`, whose code it takes and whose
/// activity log records it.
#[derive(Debug, Clone, Copy)]
pub struct KeyHolder<'a> {
    pub owner: &'a User,
    pub holder: &'a User,
}

impl<'a> KeyHolder<'a> {
    /// The owner's own keys.
    pub fn own(owner: &'a User) -> Self {
        KeyHolder {
            owner,
            holder: owner,
        }
    }
}

/// hex(HMAC-SHA256(secret, nonce + kid)): what a request's signature must be.
pub fn sign(secret: &str, nonce: &str, kid: &str) -> String {
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(secret.as_bytes());
    engine.input(nonce.as_bytes());
    engine.input(kid.as_bytes());
    hex::encode(hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array())
}

fn no_such_key() -> Error {
    Error::NotFound("no such API key".into())
}

fn scope_text(scopes: &[KeyScope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn scopes_of(text: &str) -> Vec<KeyScope> {
    text.split(',').filter_map(KeyScope::parse).collect()
}

fn key_from_row(row: &sqlx::any::AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        kid: row.try_get("kid")?,
        algorithm: row.try_get("algorithm")?,
        scopes: scopes_of(&row.try_get::<String, _>("scope")?),
        state: row.try_get("state")?,
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_the_hmac_of_nonce_then_kid() {
        // Computed apart: Python's hmac.new(b"secret", b"1700000000000abcdef",
        // "sha256").hexdigest().
        assert_eq!(
            sign("secret", "1700000000000", "abcdef"),
            "6394e6a66986f25ec83bbc5b408f0ed9efb24e55c7c1d97dc97af7c6205dd81d"
        );
    }

    #[test]
    fn scopes_read_as_a_list_and_always_read() {
        assert_eq!(parse_scopes("").unwrap(), [KeyScope::Read]);
        assert_eq!(
            parse_scopes("[\"trade\"]").unwrap(),
            [KeyScope::Read, KeyScope::Trade]
        );
        assert_eq!(
            parse_scopes("wallet, trade,read").unwrap(),
            [KeyScope::Read, KeyScope::Wallet, KeyScope::Trade]
        );
        for bad in ["[\"admin\"]", "everything", "[1]", "[\"read\""] {
            assert_eq!(
                parse_scopes(bad).unwrap_err().field(),
                Some("scope"),
                "{bad}"
            );
        }
    }
}
