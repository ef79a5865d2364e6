//! Service accounts (the identity API's `resource/service_accounts`):
//! accounts of their own, with a wallet, a trading balance and API keys,
//! that a person owns and reaches only through those keys (no password
//! signs in to one). Making one, and managing its keys, takes the owner's
//! two-factor code: an owner without two-factor on has none (at most ten
//! each). Deleting one follows the funds rule of any account; an owner
//! cannot be deleted while it has any.

use sqlx::Row;

use super::{insert_user, Accounts, User, UserId, Username};
use crate::{now_ms, Error, Result};

/// Most service accounts one person owns.
pub const MAX_SERVICE_ACCOUNTS: i64 = 10;

#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub user: User,
    pub role: String,
    pub created_at_ms: i64,
}

impl Accounts {
    /// The owner's second factor for its service accounts: on, and this code.
    pub async fn service_factor(&self, owner: &User, code: Option<&str>) -> Result<()> {
        if !self.two_factor_on(&owner.id.0).await? {
            return Err(Error::Conflict(
                "service accounts take two-factor authentication: turn it on first".into(),
            ));
        }
        self.second_factor(owner, code).await
    }

    /// A new service account of `owner` (its code asked).
    pub async fn create_service_account(
        &self,
        owner: &User,
        role: &str,
        code: Option<&str>,
    ) -> Result<ServiceAccount> {
        let role = match role.trim() {
            "" => "service".to_string(),
            role => super::profiles::check_name("role", role)?,
        };
        self.service_factor(owner, code).await?;
        let username = Username::parse(&format!("sa-{}", crate::random_hex(6)))?;
        let id = uuid::Uuid::new_v4().to_string();
        let user = User {
            is_admin: false,
            id: UserId(id),
            username: username.as_str().to_string(),
            email: None,
            display_name: None,
            auth_version: 0,
            created_at_ms: now_ms(),
            denomination: crate::Denomination::Sat,
            recheck_password: false,
            account_type: "service".to_string(),
        };
        let (new, key, owner_id, row_role) = (
            user.clone(),
            username.key(),
            owner.id.0.clone(),
            role.clone(),
        );
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let held: i64 = sqlx::query(
                        "SELECT COUNT(*) AS n FROM service_accounts WHERE owner_id = $1",
                    )
                    .bind(&owner_id)
                    .fetch_one(&mut *conn)
                    .await?
                    .try_get("n")?;
                    if held >= MAX_SERVICE_ACCOUNTS {
                        return Err(Error::TooMany(format!(
                            "a person owns at most {MAX_SERVICE_ACCOUNTS} service accounts"
                        )));
                    }
                    insert_user(conn, &new, &key, "").await?;
                    sqlx::query(
                        "INSERT INTO service_accounts (uid, owner_id, role, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(&new.id.0)
                    .bind(&owner_id)
                    .bind(&row_role)
                    .bind(new.created_at_ms)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await?;
        Ok(ServiceAccount {
            created_at_ms: user.created_at_ms,
            user,
            role,
        })
    }

    /// The owner's service accounts, oldest first.
    pub async fn service_accounts(&self, owner: &User) -> Result<Vec<ServiceAccount>> {
        let rows = sqlx::query(
            "SELECT uid, role, created_at FROM service_accounts WHERE owner_id = $1 \
             ORDER BY created_at, uid",
        )
        .bind(&owner.id.0)
        .fetch_all(self.db.pool())
        .await?;
        let mut accounts = Vec::new();
        for row in &rows {
            let uid: String = row.try_get("uid")?;
            if let Some(user) = self.get(&uid).await? {
                accounts.push(ServiceAccount {
                    user,
                    role: row.try_get("role")?,
                    created_at_ms: row.try_get("created_at")?,
                });
            }
        }
        Ok(accounts)
    }

    /// One of the owner's service accounts (404 for anyone else's: another
    /// person's is not told apart from none).
    pub async fn service_account(&self, owner: &User, uid: &str) -> Result<User> {
        let owned =
            sqlx::query("SELECT 1 AS owned FROM service_accounts WHERE uid = $1 AND owner_id = $2")
                .bind(uid)
                .bind(&owner.id.0)
                .fetch_optional(self.db.pool())
                .await?;
        let missing = || Error::NotFound("no service account of yours has this uid".into());
        owned.ok_or_else(missing)?;
        self.get(uid).await?.ok_or_else(missing)
    }
}
