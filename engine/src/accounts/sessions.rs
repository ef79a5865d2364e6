//! The account's signed-in browsers. Each sign-in opens a row under a random
//! handle that the browser's session carries: where and when it signed in,
//! when and from where it was last seen. A session whose row is gone is
//! signed out at its next request, in every process: that is how one session,
//! or all the others, is ended from the security page. The handle, not the
//! session store's id (which moves at each sign-in), names a session on the
//! bus (`SessionEnded`) and in `Credential::Session`.

use sqlx::Row;

use super::{Accounts, User};
use crate::events::{EventKind, Topic};
use crate::{cut, now_ms, Result, Seen};

/// How often a session's row records that it was seen (at most).
const SEEN_EVERY_MS: i64 = 5 * 60 * 1000;
/// A session unused this long has expired (the session store's idle lifetime).
pub const SESSION_IDLE_MS: i64 = 7 * 24 * 3600 * 1000;

/// One signed-in browser of the account.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub handle: String,
    pub created_at_ms: i64,
    pub seen_at_ms: i64,
    pub address: String,
    pub user_agent: String,
}

impl Accounts {
    /// Opens the row of a sign-in of `user`: the handle its session carries.
    pub async fn open_session(&self, user: &User, seen: &Seen) -> Result<String> {
        let handle = crate::random_hex(16);
        let now = now_ms();
        self.db
            .execute(
                sqlx::query(
                    "INSERT INTO account_sessions \
                     (handle, user_id, auth_version, created_at, seen_at, address, user_agent) \
                     VALUES ($1, $2, $3, $4, $4, $5, $6)",
                )
                .bind(handle.clone())
                .bind(user.id.0.clone())
                .bind(user.auth_version)
                .bind(now)
                .bind(cut(&seen.address, 64).to_string())
                .bind(cut(&seen.user_agent, 256).to_string()),
            )
            .await?;
        Ok(handle)
    }

    /// Whether the session `handle` of `user` still stands (its row is there,
    /// made under the account's current password). Answered from a cache
    /// for a moment (the bus clears it when a session ends); records when and
    /// where the session was seen, at most every few minutes.
    pub async fn session_stands(&self, handle: &str, user: &User, seen: &Seen) -> Result<bool> {
        if handle.is_empty() {
            return Ok(false);
        }
        if self.standing.contains_key(handle) {
            return Ok(true);
        }
        let row = sqlx::query(
            "SELECT user_id, auth_version, seen_at FROM account_sessions WHERE handle = $1",
        )
        .bind(handle)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let owner: String = row.try_get("user_id")?;
        let version: i64 = row.try_get("auth_version")?;
        if owner != user.id.0 || version != user.auth_version {
            return Ok(false);
        }
        let now = now_ms();
        if now - row.try_get::<i64, _>("seen_at")? > SEEN_EVERY_MS {
            self.db
                .execute(
                    sqlx::query(
                        "UPDATE account_sessions SET seen_at = $1, address = $2, user_agent = $3 \
                         WHERE handle = $4",
                    )
                    .bind(now)
                    .bind(cut(&seen.address, 64).to_string())
                    .bind(cut(&seen.user_agent, 256).to_string())
                    .bind(handle.to_string()),
                )
                .await?;
        }
        self.standing.insert(handle.to_string(), ());
        Ok(true)
    }

    /// The account's sessions that stand, the most recently seen first.
    pub async fn sessions(&self, user: &User) -> Result<Vec<SessionRow>> {
        let rows = sqlx::query(
            "SELECT handle, created_at, seen_at, address, user_agent FROM account_sessions \
             WHERE user_id = $1 AND auth_version = $2 AND seen_at > $3 \
             ORDER BY seen_at DESC, created_at DESC",
        )
        .bind(&user.id.0)
        .bind(user.auth_version)
        .bind(now_ms() - SESSION_IDLE_MS)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SessionRow {
                    handle: r.try_get("handle")?,
                    created_at_ms: r.try_get("created_at")?,
                    seen_at_ms: r.try_get("seen_at")?,
                    address: r.try_get("address")?,
                    user_agent: r.try_get("user_agent")?,
                })
            })
            .collect()
    }

    /// Ends the session `handle` of the account `user_id` in every process
    /// (before this answers): false if it has no such session.
    pub async fn end_session(&self, user_id: &str, handle: &str) -> Result<bool> {
        let deleted = self
            .db
            .execute(
                sqlx::query("DELETE FROM account_sessions WHERE handle = $1 AND user_id = $2")
                    .bind(handle.to_string())
                    .bind(user_id.to_string()),
            )
            .await?;
        if deleted > 0 {
            self.session_ended(user_id, handle).await?;
        }
        Ok(deleted > 0)
    }

    /// Ends every session of `user` but `keep`: how many ended.
    pub async fn end_other_sessions(&self, user: &User, keep: &str) -> Result<usize> {
        let (id, keep) = (user.id.0.clone(), keep.to_string());
        let ended = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let rows = sqlx::query(
                        "DELETE FROM account_sessions WHERE user_id = $1 AND handle <> $2 \
                         RETURNING handle",
                    )
                    .bind(&id)
                    .bind(&keep)
                    .fetch_all(&mut *conn)
                    .await?;
                    rows.iter()
                        .map(|r| Ok(r.try_get::<String, _>("handle")?))
                        .collect::<Result<Vec<String>>>()
                })
            })
            .await?;
        for handle in &ended {
            self.session_ended(&user.id.0, handle).await?;
        }
        Ok(ended.len())
    }

    /// Forgets the rows of sessions that expired unused or whose password
    /// changed since (they can never stand again).
    pub async fn forget_dead_sessions(&self) -> Result<u64> {
        self.db
            .execute(
                sqlx::query(
                    "DELETE FROM account_sessions WHERE seen_at < $1 OR auth_version <> \
                     (SELECT auth_version FROM users WHERE users.id = account_sessions.user_id)",
                )
                .bind(now_ms() - SESSION_IDLE_MS),
            )
            .await
    }

    /// Tells every process that a session ended: its caches forget it, its
    /// event streams end.
    async fn session_ended(&self, user_id: &str, handle: &str) -> Result<()> {
        self.standing.invalidate(handle);
        self.bus
            .publish_confirmed(
                Topic::Account(user_id.to_string()),
                EventKind::SessionEnded {
                    session: handle.to_string(),
                },
            )
            .await
    }
}
