//! A person's profile (table `profiles`, one per account): names, date of
//! birth, address and its state (`drafted`; `submitted` once the person
//! confirms it; a change drafts it again). The OAuth provider's `/userinfo`
//! reads the names; an application's sign-up (`/api/register`) writes them in
//! the account's own transaction; the identity API's `profiles` makes and
//! changes it. Nobody here reviews profiles: none becomes `verified`.

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

/// What a person gives of a profile (`None`: left as it is).
#[derive(Debug, Clone, Default)]
pub struct ProfileFields {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub dob: Option<String>,
    pub address: Option<String>,
    pub postcode: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub metadata: Option<String>,
    /// The person confirms it: `submitted`.
    pub confirm: bool,
}

/// Free text of at most `max` characters, without control characters.
pub(crate) fn check_text(field: &'static str, text: &str, max: usize) -> Result<String> {
    let text = text.trim();
    if text.chars().count() > max || text.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("{field} is at most {max} characters, without control characters"),
        ));
    }
    Ok(text.to_string())
}

impl ProfileFields {
    /// `profile` with these fields applied, each checked.
    fn apply(&self, mut profile: Profile) -> Result<Profile> {
        if let Some(name) = &self.first_name {
            profile.first_name = check_name("first_name", name)?;
        }
        if let Some(name) = &self.last_name {
            profile.last_name = check_name("last_name", name)?;
        }
        if let Some(dob) = self.dob.as_deref().map(str::trim) {
            crate::wallet::day_start_ms(dob)
                .filter(|&ms| ms < now_ms())
                .ok_or_else(|| Error::invalid("dob", "dob is a past date, YYYY-MM-DD"))?;
            profile.dob = Some(dob.to_string());
        }
        for (field, value, max, slot) in [
            ("address", &self.address, 255, &mut profile.address),
            ("postcode", &self.postcode, 20, &mut profile.postcode),
            ("city", &self.city, 100, &mut profile.city),
            ("country", &self.country, 100, &mut profile.country),
        ] {
            if let Some(value) = value {
                *slot = check_text(field, value, max)?;
            }
        }
        if let Some(metadata) = &self.metadata {
            profile.metadata = super::user_data::parse_json_object("metadata", metadata)?;
        }
        profile.state = if self.confirm { "submitted" } else { "drafted" }.to_string();
        Ok(profile)
    }
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

/// A profile statement with the account's id as `$1` and the profile's
/// fields as `$2` to `$10` (first name to metadata, as the table has them).
fn with_fields(
    statement: crate::storage::Statement,
    user: &User,
    p: &Profile,
) -> crate::storage::Statement {
    statement
        .bind(user.id.0.clone())
        .bind(p.first_name.clone())
        .bind(p.last_name.clone())
        .bind(p.dob.clone())
        .bind(p.address.clone())
        .bind(p.postcode.clone())
        .bind(p.city.clone())
        .bind(p.country.clone())
        .bind(p.state.clone())
        .bind(p.metadata.clone())
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
        self.fund_demo_account(&user, client).await;
        Ok(user)
    }
}

impl Accounts {
    /// Makes the account's profile (409 when it has one).
    pub async fn create_profile(&self, user: &User, fields: &ProfileFields) -> Result<Profile> {
        let now = now_ms();
        let profile = fields.apply(Profile {
            state: "drafted".into(),
            metadata: "{}".into(),
            created_at_ms: now,
            updated_at_ms: now,
            ..Default::default()
        })?;
        let added = self
            .db
            .execute(
                with_fields(
                    sqlx::query(
                        "INSERT INTO profiles (user_id, first_name, last_name, dob, address, \
                         postcode, city, country, state, metadata, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11) \
                         ON CONFLICT (user_id) DO NOTHING",
                    ),
                    user,
                    &profile,
                )
                .bind(now),
            )
            .await?;
        if added == 0 {
            return Err(Error::Conflict("the account has a profile already".into()));
        }
        Ok(profile)
    }

    /// Changes the account's profile (404 without one); only while it
    /// stands as read, so two changes at once do not lose one another's
    /// fields silently (the second is told to try again).
    pub async fn update_profile_fields(
        &self,
        user: &User,
        fields: &ProfileFields,
    ) -> Result<Profile> {
        let before = self
            .profile(&user.id.0)
            .await?
            .ok_or_else(|| Error::NotFound("the account has no profile yet".into()))?;
        let mut profile = fields.apply(before.clone())?;
        profile.updated_at_ms = now_ms().max(before.updated_at_ms + 1);
        let changed = self
            .db
            .execute(
                with_fields(
                    sqlx::query(
                        "UPDATE profiles SET first_name = $2, last_name = $3, dob = $4, \
                         address = $5, postcode = $6, city = $7, country = $8, state = $9, \
                         metadata = $10, updated_at = $11 WHERE user_id = $1 AND updated_at = $12",
                    ),
                    user,
                    &profile,
                )
                .bind(profile.updated_at_ms)
                .bind(before.updated_at_ms),
            )
            .await?;
        if changed == 0 {
            return Err(Error::Conflict(
                "the profile changed meanwhile; try again".into(),
            ));
        }
        Ok(profile)
    }

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
