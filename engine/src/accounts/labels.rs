//! An account's labels, as the exchange identity API shows them: the
//! person's own (`public`: any key of `[a-z0-9_-]`, a value of
//! `[A-Za-z0-9_-]`, 3 to 255 characters each; at most 50) and the server's
//! (`private`, read from what they describe: `email` verified, `otp`
//! enabled, `phone` verified). The server's keys cannot be taken by a person's label.

use sqlx::Row;

use super::{Accounts, User};
use crate::{now_ms, Error, Result};

/// Most labels of its own an account may hold.
pub const MAX_LABELS: i64 = 50;
/// The keys the server's own labels use.
const SERVER_KEYS: [&str; 4] = ["email", "otp", "phone", "document"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub key: String,
    pub value: String,
    /// `public` (the person's) or `private` (the server's).
    pub scope: &'static str,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

fn check(field: &'static str, text: &str, allowed: fn(char) -> bool) -> Result<()> {
    let good = (3..=255).contains(&text.len()) && text.chars().all(allowed);
    match good {
        true => Ok(()),
        false => Err(Error::invalid(
            field,
            format!(
                "{field} must be 3 to 255 characters of {}",
                match field {
                    "key" => "a-z, 0-9, _ and -",
                    _ => "A-Z, a-z, 0-9, _ and -",
                }
            ),
        )),
    }
}

fn check_key(key: &str) -> Result<()> {
    check("key", key, |c| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
    })
}

fn check_value(value: &str) -> Result<()> {
    check("value", value, |c| {
        c.is_ascii_alphanumeric() || c == '_' || c == '-'
    })
}

fn read_label(row: &sqlx::any::AnyRow) -> Result<Label> {
    Ok(Label {
        key: row.try_get("key")?,
        value: row.try_get("value")?,
        scope: "public",
        created_at_ms: row.try_get("created_at")?,
        updated_at_ms: row.try_get("updated_at")?,
    })
}

/// What the server vouches for of an account: its `private` labels and its
/// level (1 with a confirmed e-mail address, 2 with a verified phone besides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    pub email_confirmed: bool,
    pub two_factor: bool,
    pub phone_verified: bool,
}

impl Standing {
    pub fn level(&self) -> u8 {
        u8::from(self.email_confirmed) + u8::from(self.email_confirmed && self.phone_verified)
    }
}

impl Accounts {
    pub async fn standing(&self, user: &User) -> Result<Standing> {
        let (email_confirmed, two_factor, phone_verified) = tokio::try_join!(
            self.email_confirmed(user),
            self.two_factor_on(&user.id.0),
            self.phone_verified(user),
        )?;
        Ok(Standing {
            email_confirmed,
            two_factor,
            phone_verified,
        })
    }

    /// The server's labels, then the person's, by key.
    pub async fn labels(&self, user: &User) -> Result<Vec<Label>> {
        let standing = self.standing(user).await?;
        self.labels_of(user, &standing).await
    }

    /// [`Accounts::labels`] of an account whose standing is known.
    pub async fn labels_of(&self, user: &User, standing: &Standing) -> Result<Vec<Label>> {
        let server = |key: &str, value: &str| Label {
            key: key.to_string(),
            value: value.to_string(),
            scope: "private",
            created_at_ms: user.created_at_ms,
            updated_at_ms: user.created_at_ms,
        };
        let mut labels = Vec::new();
        if standing.email_confirmed {
            labels.push(server("email", "verified"));
        }
        if standing.two_factor {
            labels.push(server("otp", "enabled"));
        }
        if standing.phone_verified {
            labels.push(server("phone", "verified"));
        }
        let rows = sqlx::query(
            "SELECT key, value, created_at, updated_at FROM labels WHERE user_id = $1 ORDER BY key",
        )
        .bind(&user.id.0)
        .fetch_all(self.db.pool())
        .await?;
        for row in &rows {
            labels.push(read_label(row)?);
        }
        Ok(labels)
    }

    /// One of the account's labels by key (404 without it).
    pub async fn label(&self, user: &User, key: &str) -> Result<Label> {
        self.labels(user)
            .await?
            .into_iter()
            .find(|l| l.key == key)
            .ok_or_else(|| Error::NotFound("the account has no label of this key".into()))
    }

    /// A new public label (409 if the key is taken).
    pub async fn add_label(&self, user: &User, key: &str, value: &str) -> Result<Label> {
        check_key(key)?;
        check_value(value)?;
        if SERVER_KEYS.contains(&key) {
            return Err(Error::invalid("key", "this key is the server's own label"));
        }
        let (user_id, row_key, row_value, now) = (
            user.id.0.clone(),
            key.to_string(),
            value.to_string(),
            now_ms(),
        );
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let held: i64 =
                        sqlx::query("SELECT COUNT(*) AS n FROM labels WHERE user_id = $1")
                            .bind(&user_id)
                            .fetch_one(&mut *conn)
                            .await?
                            .try_get("n")?;
                    if held >= MAX_LABELS {
                        return Err(Error::TooMany(format!(
                            "an account holds at most {MAX_LABELS} labels"
                        )));
                    }
                    let added = sqlx::query(
                        "INSERT INTO labels (user_id, key, value, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, key) DO NOTHING",
                    )
                    .bind(&user_id)
                    .bind(&row_key)
                    .bind(&row_value)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if added == 0 {
                        return Err(Error::Conflict("a label of this key exists".into()));
                    }
                    Ok(())
                })
            })
            .await?;
        self.label(user, key).await
    }

    /// Changes a public label's value (404 without it; the server's labels
    /// are not the person's to change).
    pub async fn update_label(&self, user: &User, key: &str, value: &str) -> Result<Label> {
        check_value(value)?;
        let changed = self
            .db
            .execute(
                sqlx::query(
                    "UPDATE labels SET value = $3, updated_at = $4 WHERE user_id = $1 AND key = $2",
                )
                .bind(user.id.0.clone())
                .bind(key.to_string())
                .bind(value.to_string())
                .bind(now_ms()),
            )
            .await?;
        if changed == 0 {
            return Err(Error::NotFound(
                "the account has no public label of this key".into(),
            ));
        }
        self.label(user, key).await
    }

    /// Removes a public label (404 without it).
    pub async fn remove_label(&self, user: &User, key: &str) -> Result<()> {
        let removed = self
            .db
            .execute(
                sqlx::query("DELETE FROM labels WHERE user_id = $1 AND key = $2")
                    .bind(user.id.0.clone())
                    .bind(key.to_string()),
            )
            .await?;
        match removed {
            0 => Err(Error::NotFound(
                "the account has no public label of this key".into(),
            )),
            _ => Ok(()),
        }
    }
}
