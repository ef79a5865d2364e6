//! The account's activity log: every sign-in attempt (whichever way), session
//! end, password, two-factor and API key change, with when, from where
//! (address and user agent) and how it ended. Its rows hold what was done and
//! never a secret; a write that fails is logged and never fails the request
//! it records.

use sqlx::Row;

use super::Accounts;
use crate::{cut, now_ms, Error, Result, Seen};

/// What an activity was about (the log's `topic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// Signing in (every way) and out.
    Session,
    Password,
    Otp,
    ApiKeys,
}

impl Topic {
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Session => "session",
            Topic::Password => "password",
            Topic::Otp => "otp",
            Topic::ApiKeys => "api_keys",
        }
    }
}

/// How an attempt ended: done, refused for a wrong secret, or refused before
/// any secret was checked (a code missing, a switched-off way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeed,
    Failed,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeed => "succeed",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
        }
    }

    /// `succeed`, `failed` or `denied` as a client names it.
    pub fn parse(text: &str) -> Result<Self> {
        [Outcome::Succeed, Outcome::Failed, Outcome::Denied]
            .into_iter()
            .find(|o| o.as_str() == text)
            .ok_or_else(|| Error::invalid("result", "result must be succeed, failed or denied"))
    }

    /// The outcome of an attempt that ended in `result`.
    pub fn of<T>(result: &Result<T>) -> Self {
        match result {
            Ok(_) => Outcome::Succeed,
            Err(Error::InvalidCredentials | Error::Invalid { .. }) => Outcome::Failed,
            Err(_) => Outcome::Denied,
        }
    }
}

/// One recorded activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub id: i64,
    pub topic: String,
    /// What was done, in the spec's words: `login`, `logout`, `update`, ...
    pub action: String,
    pub result: String,
    pub user_ip: String,
    pub user_agent: String,
    /// A small JSON object naming the way (`{"way":"password"}`), never a secret.
    pub data: String,
    pub created_at_ms: i64,
}

/// Which activities a page lists: a topic (none for all), a time range in Unix
/// milliseconds (both ends included), a result.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub topic: Option<Topic>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub result: Option<Outcome>,
}

impl Accounts {
    /// Records what `user_id` did (or what was tried on it) from `seen`.
    pub async fn record(
        &self,
        user_id: &str,
        topic: Topic,
        action: &str,
        outcome: Outcome,
        seen: &Seen,
        data: serde_json::Value,
    ) {
        let written = self
            .db
            .execute(
                sqlx::query(
                    // An account deleted meanwhile (signing out after
                    // deleting it) has nothing left to record to.
                    "INSERT INTO activities \
                     (user_id, topic, action, result, user_ip, user_agent, data, created_at) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, CAST($8 AS BIGINT) \
                     WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)",
                )
                .bind(user_id.to_string())
                .bind(topic.as_str())
                .bind(action.to_string())
                .bind(outcome.as_str())
                .bind(cut(&seen.address, 64).to_string())
                .bind(cut(&seen.user_agent, 256).to_string())
                .bind(data.to_string())
                .bind(now_ms()),
            )
            .await;
        if let Err(err) = written {
            tracing::error!(error = ?err, topic = topic.as_str(), action, "activity not recorded");
        }
    }

    /// Records a sign-in attempt of `user_id` made `way` (password, nostr,
    /// lnurl, ...), ending in `result`.
    pub async fn record_sign_in<T>(
        &self,
        user_id: &str,
        way: &str,
        seen: &Seen,
        result: &Result<T>,
    ) {
        self.record(
            user_id,
            Topic::Session,
            "login",
            Outcome::of(result),
            seen,
            serde_json::json!({ "way": way }),
        )
        .await
    }

    /// One page of the account's activities, newest first, and how many
    /// match in all.
    pub async fn activities(
        &self,
        user_id: &str,
        filter: &ActivityFilter,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<Activity>, i64)> {
        const WHERE: &str = "WHERE user_id = $1 AND ($2 = '' OR topic = $2) \
             AND created_at >= $3 AND created_at <= $4 AND ($5 = '' OR result = $5)";
        let topic = filter.topic.map_or("", Topic::as_str);
        let result = filter.result.map_or("", Outcome::as_str);
        let (from, to) = (
            filter.from_ms.unwrap_or(i64::MIN),
            filter.to_ms.unwrap_or(i64::MAX),
        );
        let total: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM activities {WHERE}"))
            .bind(user_id)
            .bind(topic)
            .bind(from)
            .bind(to)
            .bind(result)
            .fetch_one(self.db.pool())
            .await?
            .try_get("n")?;
        let offset = i64::from(page.saturating_sub(1)) * i64::from(per_page);
        let rows = sqlx::query(&format!(
            "SELECT id, topic, action, result, user_ip, user_agent, data, created_at \
             FROM activities {WHERE} ORDER BY created_at DESC, id DESC LIMIT $6 OFFSET $7"
        ))
        .bind(user_id)
        .bind(topic)
        .bind(from)
        .bind(to)
        .bind(result)
        .bind(i64::from(per_page))
        .bind(offset)
        .fetch_all(self.db.pool())
        .await?;
        let activities = rows
            .iter()
            .map(|r| {
                Ok(Activity {
                    id: r.try_get("id")?,
                    topic: r.try_get("topic")?,
                    action: r.try_get("action")?,
                    result: r.try_get("result")?,
                    user_ip: r.try_get("user_ip")?,
                    user_agent: r.try_get("user_agent")?,
                    data: r.try_get("data")?,
                    created_at_ms: r.try_get("created_at")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok((activities, total))
    }
}
