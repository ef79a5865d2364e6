//! Scoped tokens (`/lnm/user/jwt`): HS256 JWTs, signed with a key of their own
//! (an account token never passes for one, nor the reverse), limited to the
//! scopes they name, listed and revoked through their row in `desk_tokens`. A
//! token also names the account's `auth_version`: a password change voids it.
//! Revocation reaches every process at once through the bus.

use jsonwebtoken::{decode, encode, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::events::{Bus, EventKind, Topic};
use crate::{now_ms, Database, Error, Result, User};

/// What a scoped token may do on `/lnm` (the LN-Markets scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeskScope {
    Deposit,
    Withdraw,
    Positions,
    User,
}

impl DeskScope {
    pub const ALL: [DeskScope; 4] = [
        DeskScope::Deposit,
        DeskScope::Withdraw,
        DeskScope::Positions,
        DeskScope::User,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeskScope::Deposit => "deposit",
            DeskScope::Withdraw => "withdraw",
            DeskScope::Positions => "positions",
            DeskScope::User => "user",
        }
    }

    pub fn parse(text: &str) -> Result<Self> {
        DeskScope::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                Error::invalid("scopes", "scopes are deposit, withdraw, positions and user")
            })
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// Reads the scopes a client asked for: known names, each once, at least one.
    pub fn parse(names: &[String]) -> Result<Self> {
        let mut scopes = Scopes::default();
        for name in names {
            let scope = DeskScope::parse(name)?;
            if scopes.contains(scope) {
                return Err(Error::invalid("scopes", "each scope may be named once"));
            }
            scopes.0 |= scope.bit();
        }
        if scopes.0 == 0 {
            return Err(Error::invalid("scopes", "name at least one scope"));
        }
        Ok(scopes)
    }

    pub fn contains(self, scope: DeskScope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn names(self) -> Vec<&'static str> {
        DeskScope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(DeskScope::as_str)
            .collect()
    }

    fn stored(self) -> String {
        self.names().join(",")
    }

    fn from_stored(text: &str) -> Self {
        Scopes(
            text.split(',')
                .filter_map(|n| DeskScope::parse(n).ok())
                .fold(0, |bits, s| bits | s.bit()),
        )
    }
}

/// Shortest and longest lifetime of a scoped token, in seconds.
pub const MIN_EXPIRY_SECS: i64 = 60;
pub const MAX_EXPIRY_SECS: i64 = 365 * 24 * 3600;
/// Most live tokens one account may hold.
pub const MAX_TOKENS: i64 = 100;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeskClaims {
    pub sub: String,
    /// The account's `auth_version` at issue.
    pub ver: i64,
    pub jti: String,
    /// The scopes, as the LN-Markets list names them.
    pub aud: Vec<String>,
    pub iat: i64,
    pub exp: i64,
}

impl DeskClaims {
    pub fn scopes(&self) -> Scopes {
        Scopes::from_stored(&self.aud.join(","))
    }
}

/// A token as the list shows it (never the token itself).
#[derive(Debug, Clone, Serialize)]
pub struct TokenView {
    pub jti: String,
    pub scopes: Vec<&'static str>,
    pub issued_at_ms: i64,
    pub expires_at_ms: i64,
    pub revoked: bool,
}

#[derive(Clone)]
pub struct DeskTokens {
    db: Database,
    bus: Bus,
    keys: std::sync::Arc<(EncodingKey, DecodingKey, Validation)>,
    /// Whether a token id is revoked, remembered briefly; a revocation clears it
    /// in every process through the bus.
    revoked: moka::sync::Cache<String, bool>,
}

impl DeskTokens {
    pub async fn load(db: &Database, bus: &Bus) -> Result<Self> {
        let key = db.secret("desk-jwt").await?;
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        // `aud` carries the scopes; they are checked per route, not here.
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub", "jti"]);
        let revoked: moka::sync::Cache<String, bool> = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(std::time::Duration::from_secs(5))
            .build();
        let cache = revoked.clone();
        bus.on_control(Box::new(move |event| match &event.kind {
            EventKind::TokenRevoked { jti } => cache.invalidate(jti),
            EventKind::Resync => cache.invalidate_all(),
            _ => {}
        }));
        Ok(DeskTokens {
            db: db.clone(),
            bus: bus.clone(),
            keys: std::sync::Arc::new((
                EncodingKey::from_secret(&key),
                DecodingKey::from_secret(&key),
                validation,
            )),
            revoked,
        })
    }

    /// Issues a token for `user` limited to `scopes`, valid `expiry_secs`.
    pub async fn create(&self, user: &User, scopes: Scopes, expiry_secs: i64) -> Result<String> {
        if !(MIN_EXPIRY_SECS..=MAX_EXPIRY_SECS).contains(&expiry_secs) {
            return Err(Error::invalid(
                "expiry",
                format!("expiry is {MIN_EXPIRY_SECS} to {MAX_EXPIRY_SECS} seconds"),
            ));
        }
        let now = now_ms();
        let claims = DeskClaims {
            sub: user.id.0.clone(),
            ver: user.auth_version,
            jti: crate::random_hex(16),
            aud: scopes.names().into_iter().map(str::to_string).collect(),
            iat: now / 1000,
            exp: now / 1000 + expiry_secs,
        };
        let token = encode(&Header::default(), &claims, &self.keys.0)
            .map_err(|e| Error::Internal(format!("jwt: {e}")))?;
        let (row, user_id, ver) = (claims.clone(), user.id.0.clone(), user.auth_version);
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let live: i64 = sqlx::query(
                        "SELECT COUNT(*) AS n FROM desk_tokens WHERE user_id = $1 \
                         AND revoked_at IS NULL AND expires_at > $2 AND auth_version = $3",
                    )
                    .bind(&user_id)
                    .bind(now)
                    .bind(ver)
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get("n")?;
                    if live >= MAX_TOKENS {
                        return Err(Error::TooMany(format!(
                            "an account may hold {MAX_TOKENS} live tokens; revoke one first"
                        )));
                    }
                    sqlx::query(
                        "INSERT INTO desk_tokens (jti, user_id, scopes, auth_version, issued_at, \
                         expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&row.jti)
                    .bind(&user_id)
                    .bind(scopes.stored())
                    .bind(ver)
                    .bind(row.iat * 1000)
                    .bind(row.exp * 1000)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok(token)
    }

    /// The claims of a token this server signed, unexpired and not revoked.
    /// Whether its account and version are current is the caller's check
    /// (`Accounts::authenticate`).
    pub async fn verify(&self, token: &str) -> Result<DeskClaims> {
        let claims = decode::<DeskClaims>(token, &self.keys.1, &self.keys.2)
            .map(|data| data.claims)
            .map_err(|_| Error::Unauthenticated)?;
        let revoked = self.is_revoked(&claims.jti).await?;
        if revoked {
            Err(Error::Unauthenticated)
        } else {
            Ok(claims)
        }
    }

    /// Whether the token `jti` was revoked (or its account deleted).
    pub async fn is_revoked(&self, jti: &str) -> Result<bool> {
        if let Some(revoked) = self.revoked.get(jti) {
            return Ok(revoked);
        }
        let row = sqlx::query("SELECT revoked_at FROM desk_tokens WHERE jti = $1")
            .bind(jti)
            .fetch_optional(self.db.pool())
            .await?;
        // A token whose row is gone (its account deleted) is void too.
        let revoked = match row {
            Some(row) => row.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
            None => true,
        };
        self.revoked.insert(jti.to_string(), revoked);
        Ok(revoked)
    }

    /// The account's tokens, newest first; those voided by a password change
    /// show as revoked.
    pub async fn list(&self, user: &User) -> Result<Vec<TokenView>> {
        let rows = sqlx::query(
            "SELECT jti, scopes, auth_version, issued_at, expires_at, revoked_at FROM desk_tokens \
             WHERE user_id = $1 ORDER BY issued_at DESC, jti LIMIT 1000",
        )
        .bind(&user.id.0)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let revoked = r.try_get::<Option<i64>, _>("revoked_at")?.is_some()
                    || r.try_get::<i64, _>("auth_version")? != user.auth_version;
                Ok(TokenView {
                    jti: r.try_get("jti")?,
                    scopes: Scopes::from_stored(&r.try_get::<String, _>("scopes")?).names(),
                    issued_at_ms: r.try_get("issued_at")?,
                    expires_at_ms: r.try_get("expires_at")?,
                    revoked,
                })
            })
            .collect()
    }

    /// Revokes one of the account's tokens, at once in every process. Revoking
    /// a revoked token is fine; a token of another account is not found.
    pub async fn revoke(&self, user: &User, jti: &str) -> Result<()> {
        if jti.len() != 32 || !jti.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid("jti", "jti is a token id of 32 hex digits"));
        }
        let (id, owner) = (jti.to_ascii_lowercase(), user.id.0.clone());
        let found = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE desk_tokens SET revoked_at = $1 \
                         WHERE jti = $2 AND user_id = $3 AND revoked_at IS NULL",
                    )
                    .bind(now_ms())
                    .bind(&id)
                    .bind(&owner)
                    .execute(&mut *conn)
                    .await?;
                    let exists = sqlx::query(
                        "SELECT 1 AS found FROM desk_tokens WHERE jti = $1 AND user_id = $2",
                    )
                    .bind(&id)
                    .bind(&owner)
                    .fetch_optional(&mut *conn)
                    .await?
                    .is_some();
                    Ok(exists)
                })
            })
            .await?;
        if !found {
            return Err(Error::NotFound("no such token".into()));
        }
        self.bus
            .publish_confirmed(
                Topic::Account(user.id.0.clone()),
                EventKind::TokenRevoked {
                    jti: jti.to_ascii_lowercase(),
                },
            )
            .await
    }
}
