//! Small titled JSON records a person keeps on the account (the identity
//! API's `data_storage`): a title of 1 to 64 characters, once per account,
//! data a JSON object of at most 4 KiB; at most 20 per account.

use sqlx::Row;

use super::{Accounts, User};
use crate::{now_ms, Error, Result};

/// Most records one account keeps.
pub const MAX_STORAGES: i64 = 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataStorage {
    pub title: String,
    /// A JSON object.
    pub data: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

impl Accounts {
    pub async fn data_storages(&self, user: &User) -> Result<Vec<DataStorage>> {
        let rows = sqlx::query(
            "SELECT title, data, created_at, updated_at FROM data_storages WHERE user_id = $1 \
             ORDER BY created_at, title",
        )
        .bind(&user.id.0)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DataStorage {
                    title: r.try_get("title")?,
                    data: r.try_get("data")?,
                    created_at_ms: r.try_get("created_at")?,
                    updated_at_ms: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Keeps a new record (a title the account used already is refused).
    pub async fn add_data_storage(
        &self,
        user: &User,
        title: &str,
        data: &str,
    ) -> Result<DataStorage> {
        let title = super::profiles::check_name("title", title)?;
        let data = super::user_data::parse_json_object("data", data)?;
        let now = now_ms();
        let stored = DataStorage {
            title,
            data,
            created_at_ms: now,
            updated_at_ms: now,
        };
        let (user_id, row) = (user.id.0.clone(), stored.clone());
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    let held: i64 =
                        sqlx::query("SELECT COUNT(*) AS n FROM data_storages WHERE user_id = $1")
                            .bind(&user_id)
                            .fetch_one(&mut *conn)
                            .await?
                            .try_get("n")?;
                    if held >= MAX_STORAGES {
                        return Err(Error::TooMany(format!(
                            "an account keeps at most {MAX_STORAGES} data storages"
                        )));
                    }
                    let added = sqlx::query(
                        "INSERT INTO data_storages (user_id, title, data, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, title) DO NOTHING",
                    )
                    .bind(&user_id)
                    .bind(&row.title)
                    .bind(&row.data)
                    .bind(now)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                    if added == 0 {
                        return Err(Error::invalid(
                            "title",
                            "a data storage has this title already",
                        ));
                    }
                    Ok(())
                })
            })
            .await?;
        Ok(stored)
    }
}
