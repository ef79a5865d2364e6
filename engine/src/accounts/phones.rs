//! An account's phone numbers (the identity API's `phones`): added with a
//! six-digit code to verify them, sent by SMS (the server's gateway or its
//! outbox: the caller sends what [`PhoneCode`] says). A code works ten
//! minutes, once; wrong ones are throttled per account, sending per account
//! and per number (nobody floods a phone). A verified number belongs to one
//! account only; an account holds at most five.

use sqlx::Row;

use super::{Accounts, User};
use crate::throttle::Scope;
use crate::{now_ms, Error, Result};

/// How long a code works.
pub const CODE_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// Most numbers one account holds.
pub const MAX_PHONES: i64 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// E.164 digits without the `+`.
    pub number: String,
    /// ISO 3166 alpha-2 of its calling code, where Ampere knows it.
    pub country: String,
    pub validated_at_ms: Option<i64>,
}

/// A code to send: to `number` (with its `+`), the text.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneCode {
    pub to: String,
    pub text: String,
}

impl std::fmt::Debug for PhoneCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhoneCode(..)")
    }
}

/// A number as people write it (`+972 54-123 4567`, `(0)`-less): E.164's 8
/// to 15 digits, without the `+`.
pub fn parse_number(text: &str) -> Result<String> {
    let text = text.trim();
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = digits.strip_prefix('+').unwrap_or(&digits);
    if !(8..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(Error::invalid(
            "phone_number",
            "phone_number is an international number: + and 8 to 15 digits, with its country code",
        ));
    }
    Ok(digits.to_string())
}

/// The country of a number's calling code, for the codes Ampere knows
/// (longest first); empty otherwise.
fn country_of(digits: &str) -> &'static str {
    const CODES: [(&str, &str); 20] = [
        ("972", "IL"),
        ("971", "AE"),
        ("380", "UA"),
        ("353", "IE"),
        ("351", "PT"),
        ("90", "TR"),
        ("86", "CN"),
        ("81", "JP"),
        ("61", "AU"),
        ("55", "BR"),
        ("52", "MX"),
        ("49", "DE"),
        ("44", "GB"),
        ("41", "CH"),
        ("39", "IT"),
        ("34", "ES"),
        ("33", "FR"),
        ("31", "NL"),
        ("7", "RU"),
        ("1", "US"),
    ];
    CODES
        .iter()
        .find(|(code, _)| digits.starts_with(code))
        .map_or("", |(_, country)| country)
}

fn hash_code(number: &str, code: &str) -> String {
    crate::secret_hash(&format!("{number}:{code}"))
}

/// A new six-digit code.
fn new_code() -> String {
    use rand::Rng;
    format!("{:06}", rand::thread_rng().gen_range(0..1_000_000))
}

impl Accounts {
    pub async fn phones(&self, user: &User) -> Result<Vec<Phone>> {
        let rows = sqlx::query(
            "SELECT number, country, validated_at FROM phones WHERE user_id = $1 ORDER BY created_at, number",
        )
        .bind(&user.id.0)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Phone {
                    number: r.try_get("number")?,
                    country: r.try_get("country")?,
                    validated_at_ms: r.try_get("validated_at")?,
                })
            })
            .collect()
    }

    /// Adds a number (or gives one not yet verified a new code): the code to
    /// send. Refused for a number verified already (this account's or
    /// another's).
    pub async fn add_phone(&self, user: &User, number: &str) -> Result<PhoneCode> {
        let number = parse_number(number)?;
        self.check_phone_free(user, &number).await?;
        self.count_code(user, &number).await?;
        let code = new_code();
        let (user_id, row_number, hash, now) = (
            user.id.0.clone(),
            number.clone(),
            hash_code(&number, &code),
            now_ms(),
        );
        let country = country_of(&number).to_string();
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let held: i64 = sqlx::query(
                        "SELECT COUNT(*) AS n FROM phones WHERE user_id = $1 AND number <> $2",
                    )
                    .bind(&user_id)
                    .bind(&row_number)
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get("n")?;
                    if held >= MAX_PHONES {
                        return Err(Error::TooMany(format!(
                            "an account holds at most {MAX_PHONES} phone numbers"
                        )));
                    }
                    sqlx::query(
                        "INSERT INTO phones (user_id, number, country, code_hash, code_expires, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, number) DO UPDATE \
                         SET code_hash = $4, code_expires = $5 WHERE phones.validated_at IS NULL",
                    )
                    .bind(&user_id)
                    .bind(&row_number)
                    .bind(country)
                    .bind(hash)
                    .bind(now + CODE_LIFETIME_MS)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok(PhoneCode {
            to: format!("+{number}"),
            text: format!("Your Ampere code: {code}. It works 10 minutes."),
        })
    }

    /// A new code for one of the account's numbers not yet verified (404
    /// for a number it does not have).
    pub async fn resend_phone_code(&self, user: &User, number: &str) -> Result<PhoneCode> {
        let number = parse_number(number)?;
        let phone = self.phone(user, &number).await?;
        if phone.validated_at_ms.is_some() {
            return Err(Error::invalid(
                "phone_number",
                "this number is verified already",
            ));
        }
        self.add_phone(user, &number).await
    }

    /// Verifies a number with its code (once, within ten minutes).
    pub async fn verify_phone(&self, user: &User, number: &str, code: &str) -> Result<()> {
        let number = parse_number(number)?;
        let phone = self.phone(user, &number).await?;
        if phone.validated_at_ms.is_some() {
            return Err(Error::invalid(
                "phone_number",
                "this number is verified already",
            ));
        }
        let keys = [(Scope::PhoneVerifyAccount, user.id.0.as_str())];
        self.throttle.begin(&keys).await?;
        let code = code.trim();
        let wrong = || {
            Error::invalid(
                "verification_code",
                "the code is not correct or has expired",
            )
        };
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(wrong());
        }
        let verified = self
            .db
            .execute(
                sqlx::query(
                    "UPDATE phones SET validated_at = $4, code_hash = NULL, code_expires = NULL \
                     WHERE user_id = $1 AND number = $2 AND code_hash = $3 AND code_expires > $4 \
                     AND validated_at IS NULL",
                )
                .bind(user.id.0.clone())
                .bind(number.clone())
                .bind(hash_code(&number, code))
                .bind(now_ms()),
            )
            .await
            .map_err(|err| match err {
                // Another account verified the number meanwhile.
                Error::Database(err) => crate::error::on_unique_violation(
                    err,
                    Error::invalid("phone_number", "this number belongs to another account"),
                ),
                other => other,
            })?;
        if verified != 1 {
            return Err(wrong());
        }
        self.throttle.succeeded(&keys).await;
        Ok(())
    }

    /// Whether the account has a verified number.
    pub async fn phone_verified(&self, user: &User) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS verified FROM phones WHERE user_id = $1 AND validated_at IS NOT NULL LIMIT 1",
        )
        .bind(&user.id.0)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.is_some())
    }

    async fn phone(&self, user: &User, number: &str) -> Result<Phone> {
        self.phones(user)
            .await?
            .into_iter()
            .find(|p| p.number == number)
            .ok_or_else(|| Error::NotFound("the account has no such phone number".into()))
    }

    async fn check_phone_free(&self, user: &User, number: &str) -> Result<()> {
        let owner = sqlx::query(
            "SELECT user_id FROM phones WHERE number = $1 AND validated_at IS NOT NULL",
        )
        .bind(number)
        .fetch_optional(self.db.pool())
        .await?;
        match owner {
            Some(row) if row.try_get::<String, _>("user_id")? == user.id.0 => Err(Error::invalid(
                "phone_number",
                "this number is verified already",
            )),
            Some(_) => Err(Error::invalid(
                "phone_number",
                "this number belongs to another account",
            )),
            None => Ok(()),
        }
    }

    async fn count_code(&self, user: &User, number: &str) -> Result<()> {
        self.throttle
            .begin(&[
                (Scope::PhoneCodeAccount, user.id.0.as_str()),
                (Scope::PhoneCodeNumber, number),
            ])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_write_them() {
        assert_eq!(parse_number("+972 54-123 4567").unwrap(), "972541234567");
        assert_eq!(parse_number("+1 (415) 555.0100").unwrap(), "14155550100");
        for bad in [
            "054-1234567",
            "+12",
            "+1234567890123456",
            "+44 20 ABCD 1234",
            "",
        ] {
            assert!(parse_number(bad).is_err(), "{bad}");
        }
        assert_eq!(country_of("972541234567"), "IL");
        assert_eq!(country_of("14155550100"), "US");
        assert_eq!(country_of("99912345678"), "");
    }
}
