//! A person's profile (table `profiles`, one per account): names, date of
//! birth, address and how far it was reviewed. The OAuth provider's
//! `/userinfo` reads the names; an application's sign-up (`/api/register`)
//! writes them in the account's own transaction.

use sqlx::Row;

use super::{Accounts, Within};
use crate::{now_ms, Engine, Error, Result, User};

/// Longest name part kept.
const MAX_NAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    pub first_name: String,
    pub last_name: String,
    /// `YYYY-MM-DD`.
    pub dob: Option<String>,
    pub address: String,
    pub postcode: String,
    pub city: String,
    pub country: String,
    /// `drafted`, `submitted`, `verified` or `rejected`.
    pub state: String,
    /// A JSON object.
    pub metadata: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A name part as a person types it: 1 to 64 characters, no control
/// characters, blanks around it dropped.
pub fn check_name(field: &'static str, text: &str) -> Result<String> {
    let text = text.trim();
    let count = text.chars().count();
    if count == 0 || count > MAX_NAME_CHARS {
        return Err(Error::invalid(
            field,
            format!("{field} must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{field} has a control character"),
        ));
    }
    Ok(text.to_string())
}

impl Engine {
    /// Signs up an account with its e-mail address and names (an
    /// application's `/api/register`): the account and its profile in one
    /// transaction, then as [`Engine::register`] does.
    pub async fn sign_up_named(
        &self,
        username: &str,
        password: &str,
        email: &str,
        first_name: &str,
        last_name: &str,
        client: &str,
    ) -> Result<User> {
        let first = check_name("first_name", first_name)?;
        let last = check_name("last_name", last_name)?;
        if email.trim().is_empty() {
            return Err(Error::invalid("email", "email address is required"));
        }
        let within: Within = Box::new(move |conn, user_id| {
            let user_id = user_id.to_string();
            Box::pin(async move {
                let now = now_ms();
                sqlx::query(
                    "INSERT INTO profiles (user_id, first_name, last_name, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(user_id)
                .bind(first)
                .bind(last)
                .bind(now)
                .execute(&mut *conn)
                .await?;
                Ok(())
            })
        });
        let user = self
            .accounts
            .register_with(username, password, Some(email), client, within)
            .await?;
        if self.simnet.config().demo {
            self.fund_demo_account(&user, client).await;
        }
        Ok(user)
    }
}

impl Accounts {
    /// The account's profile, if it has one.
    pub async fn profile(&self, user_id: &str) -> Result<Option<Profile>> {
        let row = sqlx::query(
            "SELECT first_name, last_name, dob, address, postcode, city, country, state, \
             metadata, created_at, updated_at FROM profiles WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(Profile {
            first_name: row.try_get("first_name")?,
            last_name: row.try_get("last_name")?,
            dob: row.try_get("dob")?,
            address: row.try_get("address")?,
            postcode: row.try_get("postcode")?,
            city: row.try_get("city")?,
            country: row.try_get("country")?,
            state: row.try_get("state")?,
            metadata: row.try_get("metadata")?,
            created_at_ms: row.try_get("created_at")?,
            updated_at_ms: row.try_get("updated_at")?,
        }))
    }
}
