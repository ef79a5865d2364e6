//! Idempotency keys: the first outcome of a request, kept per account and key,
//! so that a client retrying after a lost answer gets that outcome again and
//! never moves money twice. A key is claimed before the work starts (a retry
//! arriving meanwhile is told the first one still runs) and completed with the
//! outcome; an outcome that changed nothing (malformed input, a failure before
//! any money moved) releases the key, so a corrected retry may run.
//!
//! Known gap, said plainly: a process that dies between a payment's commit and
//! the key's completion leaves the key claimed; retries then keep hearing "still
//! running" until the key ages out (a day), which is safe (no double payment).

use sqlx::Row;

use crate::{now_ms, Database, Error, Result};

/// How long keys are remembered.
const KEEP_MS: i64 = 24 * 3600 * 1000;
/// Longest key a client may send (Stripe's limit).
pub const MAX_KEY_LEN: usize = 255;

#[derive(Clone)]
pub struct Idempotency {
    db: Database,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: do the work, then [`Idempotency::complete`] or
    /// [`Idempotency::release`].
    Fresh,
    /// The work was done before: its HTTP status and JSON body.
    Done { status: u16, response: String },
    /// The first request with this key is still running.
    Running,
}

impl Idempotency {
    pub fn new(db: Database) -> Self {
        Idempotency { db }
    }

    /// A request's fingerprint: a hash of the operation and its inputs.
    pub fn fingerprint(operation: &str, inputs: &str) -> String {
        use bitcoin::hashes::{sha256, Hash};
        sha256::Hash::hash(format!("{operation}\n{inputs}").as_bytes()).to_string()
    }

    /// Checks a key as a client sent it: 1 to 255 visible ASCII characters.
    pub fn check_key(key: &str) -> Result<()> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::invalid(
                "Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(())
    }

    /// Claims `key` for a request of `user_id` whose content hashes to
    /// `fingerprint`. The database's primary key decides a race between two
    /// retries: one gets `Fresh`, the other `Running`. The same key with another
    /// request is refused.
    pub async fn claim(&self, user_id: &str, key: &str, fingerprint: &str) -> Result<Claim> {
        Self::check_key(key)?;
        let (user, k, print) = (
            user_id.to_string(),
            key.to_string(),
            fingerprint.to_string(),
        );
        let now = now_ms();
        let inserted = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at < $3")
                        .bind(&user)
                        .bind(&k)
                        .bind(now - KEEP_MS)
                        .execute(&mut *conn)
                        .await?;
                    let done = sqlx::query(
                        "INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, key) DO NOTHING",
                    )
                    .bind(&user)
                    .bind(&k)
                    .bind(&print)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await?;
        if inserted {
            return Ok(Claim::Fresh);
        }
        let row = sqlx::query(
            "SELECT fingerprint, status, response FROM idempotency_keys \
             WHERE user_id = $1 AND key = $2",
        )
        .bind(user_id)
        .bind(key)
        .fetch_optional(self.db.pool())
        .await?
        // Released between our insert and this read: let the client retry.
        .ok_or(Error::TooMany(
            "a request with this Idempotency-Key just finished; retry".into(),
        ))?;
        if row.try_get::<String, _>("fingerprint")? != fingerprint {
            return Err(Error::invalid(
                "Idempotency-Key",
                "this Idempotency-Key was used for a different request",
            ));
        }
        match row.try_get::<Option<i64>, _>("status")? {
            None => Ok(Claim::Running),
            Some(status) => Ok(Claim::Done {
                status: u16::try_from(status).unwrap_or(500),
                response: row
                    .try_get::<Option<String>, _>("response")?
                    .unwrap_or_default(),
            }),
        }
    }

    /// Records the outcome of the work done under a `Fresh` claim.
    pub async fn complete(
        &self,
        user_id: &str,
        key: &str,
        status: u16,
        response: &str,
    ) -> Result<()> {
        self.db
            .execute(
                sqlx::query(
                    "UPDATE idempotency_keys SET status = $1, response = $2 \
                     WHERE user_id = $3 AND key = $4",
                )
                .bind(i64::from(status))
                .bind(response.to_string())
                .bind(user_id.to_string())
                .bind(key.to_string()),
            )
            .await?;
        Ok(())
    }

    /// Gives a `Fresh` claim back: the work changed nothing.
    pub async fn release(&self, user_id: &str, key: &str) -> Result<()> {
        self.db
            .execute(
                sqlx::query(
                    "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 \
                     AND status IS NULL",
                )
                .bind(user_id.to_string())
                .bind(key.to_string()),
            )
            .await?;
        Ok(())
    }

    /// Forgets keys older than a day (run now and then).
    pub async fn sweep(&self) -> Result<u64> {
        self.db
            .execute(
                sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(now_ms() - KEEP_MS),
            )
            .await
    }
}
