//! Deleting an account (`DELETE /api/v1/auth/me`, or a service account by
//! its owner): everything of it goes (its
//! wallet node and history, contacts, sessions' standing, tokens, ACLs, desk
//! records), but never money. An account whose wallet, channels or trading
//! balance still hold funds, or with money on its way, is refused with what to
//! move first. The check and the deletion are one transaction that locks the
//! account's rows, so no payment can slip in between.

use sqlx::{AnyConnection, Row};

use crate::events::{EventKind, Topic};
use crate::{Access, Caller, Engine, Error, Result};

impl Engine {
    /// Deletes the caller's account. A browser gives its password again
    /// (see [`crate::Accounts::confirm`]).
    pub async fn close_account(
        &self,
        caller: &Caller,
        password: Option<&str>,
        code: Option<&str>,
        client: &crate::Seen,
    ) -> Result<()> {
        caller.permits(Access::CloseAccount)?;
        self.accounts.confirm(caller, password, client).await?;
        self.accounts.second_factor(&caller.user, code).await?;
        let user_id = caller.user.id.0.clone();
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    lock_account(conn, &user_id).await?;
                    let holds = funds_held(conn, &user_id).await?;
                    if !holds.is_empty() {
                        return Err(Error::Conflict(format!(
                            "this account still holds funds; first {}",
                            holds.join("; ")
                        )));
                    }
                    retire(conn, &user_id).await
                })
            })
            .await?;
        self.bus
            .publish_confirmed(
                Topic::Account(caller.user.id.0.clone()),
                EventKind::CredentialsChanged {
                    auth_version: caller.user.auth_version + 1,
                },
            )
            .await
    }
}

impl Engine {
    /// Deletes one of `owner`'s service accounts (with the owner's code),
    /// under the funds rule of any account.
    pub async fn close_service_account(
        &self,
        owner: &crate::User,
        uid: &str,
        code: Option<&str>,
    ) -> Result<()> {
        let account = self.accounts.service_account(owner, uid).await?;
        self.accounts.service_factor(owner, code).await?;
        let user_id = account.id.0.clone();
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    lock_account(conn, &user_id).await?;
                    let holds = funds_held(conn, &user_id).await?;
                    if !holds.is_empty() {
                        return Err(Error::Conflict(format!(
                            "this service account still holds funds; first {}",
                            holds.join("; ")
                        )));
                    }
                    retire(conn, &user_id).await
                })
            })
            .await?;
        self.bus
            .publish_confirmed(
                Topic::Account(account.id.0.clone()),
                EventKind::CredentialsChanged {
                    auth_version: account.auth_version + 1,
                },
            )
            .await
    }
}

/// On PostgreSQL, locks the rows a payment to the account would change or
/// reference (its deposit invoices, the account, its node, its trading
/// balance): a concurrent credit waits, then finds them gone and fails whole.
/// SQLite has one writer.
async fn lock_account(conn: &mut AnyConnection, user_id: &str) -> Result<()> {
    if conn.backend_name() != "PostgreSQL" {
        return Ok(());
    }
    for sql in [
        // The exchange's unpaid deposit invoices first: a deposit's payment
        // locks its invoice before the trading balance, and so does this,
        // so the two wait for each other instead of deadlocking.
        "SELECT payment_hash FROM invoices WHERE payment_hash IN (SELECT payment_hash \
         FROM desk_deposits WHERE user_id = $1 AND settled_at IS NULL) \
         ORDER BY payment_hash FOR UPDATE",
        "SELECT id FROM users WHERE id = $1 FOR UPDATE",
        "SELECT pubkey FROM nodes WHERE user_id = $1 FOR UPDATE",
        "SELECT user_id FROM desk_balances WHERE user_id = $1 FOR UPDATE",
    ] {
        sqlx::query(sql).bind(user_id).fetch_all(&mut *conn).await?;
    }
    Ok(())
}

/// What the account must move or finish before it can go, as instructions.
async fn funds_held(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<String>> {
    let mut holds = Vec::new();
    if scalar(
        conn,
        "SELECT onchain_msat FROM nodes WHERE user_id = $1",
        user_id,
    )
    .await?
        > 0
    {
        holds.push("send the wallet's on-chain balance elsewhere".to_string());
    }
    let confirming = scalar(
        conn,
        "SELECT COUNT(*) FROM chain_txs WHERE height IS NULL AND amount_msat > 0 \
         AND node IN (SELECT pubkey FROM nodes WHERE user_id = $1)",
        user_id,
    )
    .await?;
    if confirming > 0 {
        holds.push("wait until the on-chain payment to the wallet confirms".to_string());
    }
    let channels = scalar(
        conn,
        "SELECT COUNT(*) FROM channels WHERE state <> 'closed' AND (opener IN \
         (SELECT pubkey FROM nodes WHERE user_id = $1) OR peer IN \
         (SELECT pubkey FROM nodes WHERE user_id = $1))",
        user_id,
    )
    .await?;
    if channels > 0 {
        holds.push(format!(
            "close the wallet's {channels} channel{} and wait until {} closed, then send the on-chain balance elsewhere",
            if channels == 1 { "" } else { "s" },
            if channels == 1 { "it is" } else { "they are" },
        ));
    }
    let balance = "SELECT balance_msat FROM desk_balances WHERE user_id = $1";
    if scalar(conn, balance, user_id).await? > 0 {
        holds.push("withdraw the trading balance".to_string());
    }
    let positions = scalar(
        conn,
        "SELECT COUNT(*) FROM desk_positions WHERE user_id = $1 AND state IN ('pending', 'open')",
        user_id,
    )
    .await?;
    if positions > 0 {
        holds.push(format!(
            "close or cancel the {positions} running or open position{}",
            if positions == 1 { "" } else { "s" }
        ));
    }
    let withdrawing = scalar(
        conn,
        "SELECT COUNT(*) FROM desk_withdrawals WHERE user_id = $1 AND state = 'pending'",
        user_id,
    )
    .await?;
    if withdrawing > 0 {
        holds.push("wait until the withdrawal in flight is paid".to_string());
    }
    let service_accounts = scalar(
        conn,
        "SELECT COUNT(*) FROM service_accounts WHERE owner_id = $1",
        user_id,
    )
    .await?;
    if service_accounts > 0 {
        holds.push(format!(
            "delete the {service_accounts} service account{} it owns",
            if service_accounts == 1 { "" } else { "s" }
        ));
    }
    Ok(holds)
}

/// The one number `sql` answers about `user_id` (0 for no row or NULL).
async fn scalar(conn: &mut AnyConnection, sql: &str, user_id: &str) -> Result<i64> {
    let row = sqlx::query(sql)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match row {
        Some(row) => row.try_get::<Option<i64>, _>(0)?.unwrap_or(0),
        None => 0,
    })
}

/// Deletes the account and all of it (the rows cascade). The minted coins its
/// wallet's history counted move to `money_supply.retired_msat`, its desk
/// history's sums to `desk_house`; its unpaid
/// deposit invoices expire now, so nobody can pay money to an account that is
/// gone.
async fn retire(conn: &mut AnyConnection, user_id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE money_supply SET retired_msat = retired_msat + COALESCE((SELECT \
         CAST(SUM(amount_msat) AS BIGINT) FROM chain_txs WHERE kind IN ('genesis', 'faucet') \
         AND node IN (SELECT pubkey FROM nodes WHERE user_id = $1)), 0) WHERE id = 1",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    // The desk's figures: what the trader paid in and took out, and the
    // house's result against its closed positions, stay counted.
    sqlx::query(
        "UPDATE desk_house SET \
         retired_received_msat = retired_received_msat + (SELECT CAST(COALESCE(SUM(amount_msat), \
           0) AS BIGINT) FROM desk_deposits WHERE user_id = $1 AND settled_at IS NOT NULL), \
         retired_withdrawn_msat = retired_withdrawn_msat + (SELECT CAST(COALESCE(SUM(amount_msat \
           + fee_msat), 0) AS BIGINT) FROM desk_withdrawals WHERE user_id = $1 AND state = 'paid'), \
         result_msat = result_msat + (SELECT CAST(COALESCE(SUM(margin - CASE WHEN margin + pl > 0 \
           THEN margin + pl ELSE 0 END), 0) * 1000 AS BIGINT) FROM desk_positions \
           WHERE user_id = $1 AND state = 'closed') \
         WHERE id = 1",
    )
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE invoices SET expires_at = $1 WHERE settled_at IS NULL AND expires_at > $1 \
         AND payment_hash IN (SELECT payment_hash FROM desk_deposits \
         WHERE user_id = $2 AND settled_at IS NULL)",
    )
    .bind(crate::now_ms())
    .bind(user_id)
    .execute(&mut *conn)
    .await?;
    let deleted = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if deleted != 1 {
        return Err(Error::Unauthenticated);
    }
    Ok(())
}
