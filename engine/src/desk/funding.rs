//! Moving sats in and out of trading balances over Lightning.
//!
//! - A deposit is an invoice of the exchange's node. The payment that settles it
//!   credits the balance in its own transaction ([`deposit_hook`]), so it is
//!   credited exactly once, whoever pays it; a payment to an exchange invoice
//!   that is no deposit is refused, so no sat arrives unaccounted for.
//! - A withdrawal debits the balance first, the amount and a reserve for the
//!   routing fee (a row in state `pending`), then the exchange's node pays. The
//!   payment's transaction turns the row `paid` and gives back what the fee did
//!   not use; a definite failure turns it `failed` and refunds both. Both
//!   require `pending`, so exactly one happens: a payment in flight is never
//!   refunded, and a withdrawal ended by the sweep can no longer be paid. The
//!   trader pays the fee, so routing a withdrawal through one's own nodes
//!   earns nothing from the exchange.
//! - An LNURL-withdraw link (LUD-03) pays its amount at most once.

use std::sync::Arc;

use serde::Serialize;
use sqlx::{AnyConnection, Row};

use super::{link_mac, Desk};
use crate::events::{Event, EventKind, Topic};
use crate::simnet::invoice::{self, Decoded};
use crate::simnet::{default_fee_limit, Hook, PayRequest, Payment};
use crate::{now_ms, random_hex, Error, Msat, Result};

/// A withdrawal that was paid (`POST /lnm/user/withdraw`).
#[derive(Debug, Clone, Serialize)]
pub struct Withdrawal {
    pub id: String,
    pub amount: Msat,
    /// The routing fee the trading balance paid besides `amount`.
    pub fee: Msat,
    pub payment_hash: String,
    pub preimage: String,
}

/// A deposit as the history shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DepositView {
    pub id: String,
    pub user_id: String,
    pub amount: Msat,
    pub payment_hash: String,
    pub created_at_ms: i64,
    pub settled_at_ms: Option<i64>,
    /// Unpaid past its expiry: it can no longer be paid.
    pub expired_at_ms: Option<i64>,
}

/// A withdrawal as the history shows it.
#[derive(Debug, Clone, Serialize)]
pub struct WithdrawalView {
    pub id: String,
    pub user_id: String,
    pub amount: Msat,
    pub fee: Msat,
    pub payment_hash: String,
    pub state: String,
    pub fail_reason: Option<String>,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
}

/// Most history entries one call answers (newest first).
pub const HISTORY_LIMIT: i64 = 1000;

/// An LNURL-withdraw request (LUD-03) as the wallet reads it.
#[derive(Debug, Clone, Serialize)]
pub struct WithdrawRequest {
    pub k1: String,
    pub callback: String,
    pub amount: Msat,
}

/// Credits deposits inside the payment that settles them (see the module doc).
pub(crate) fn deposit_hook() -> Hook {
    Hook(Arc::new(|conn, payment| {
        Box::pin(credit_deposit(conn, payment))
    }))
}

async fn credit_deposit(conn: &mut AnyConnection, payment: &Payment) -> Result<Vec<Event>> {
    let row = sqlx::query(
        "UPDATE desk_deposits SET settled_at = $1 \
         WHERE payment_hash = $2 AND settled_at IS NULL AND amount_msat = $3 \
         RETURNING id, user_id, purpose",
    )
    .bind(now_ms())
    .bind(&payment.payment_hash)
    .bind(payment.amount.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        // Not a deposit of the desk's: the exchange takes no money it cannot book.
        return Err(Error::NoRoute);
    };
    let id: String = row.try_get("id")?;
    let purpose: String = row.try_get("purpose")?;
    let user: Option<String> = row.try_get("user_id")?;
    match (purpose.as_str(), user) {
        ("deposit", Some(user)) => {
            credit(conn, &user, payment.amount).await?;
            Ok(vec![Event {
                topic: Topic::Account(user),
                kind: EventKind::DepositCredited {
                    id,
                    amount_msat: payment.amount.0,
                },
            }])
        }
        // An account-creation deposit waits for its account.
        _ => Ok(Vec::new()),
    }
}

/// Adds `amount` to the account's trading balance (making it on first use).
pub(crate) async fn credit(conn: &mut AnyConnection, user: &str, amount: Msat) -> Result<()> {
    sqlx::query(
        "INSERT INTO desk_balances (user_id, balance_msat) VALUES ($1, $2) \
         ON CONFLICT (user_id) DO UPDATE SET balance_msat = desk_balances.balance_msat + $2",
    )
    .bind(user)
    .bind(amount.0)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes `amount` from the account's trading balance, refused (changing
/// nothing) when it is short: the condition is in the SQL.
async fn debit(conn: &mut AnyConnection, user: &str, amount: Msat) -> Result<()> {
    let taken = sqlx::query(
        "UPDATE desk_balances SET balance_msat = balance_msat - $1 \
         WHERE user_id = $2 AND balance_msat >= $1",
    )
    .bind(amount.0)
    .bind(user)
    .execute(&mut *conn)
    .await?;
    if taken.rows_affected() == 1 {
        Ok(())
    } else {
        Err(Error::InsufficientFunds)
    }
}

/// The credential that made a withdraw link: the link dies with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadeWith<'a> {
    /// A session or an account token: the account's password stands for it.
    Account,
    /// A scoped desk token (its `jti`).
    DeskToken(&'a str),
    /// An ACL token (its id).
    AclToken(&'a str),
    /// A signed API key (its kid): the link dies when it is disabled or
    /// deleted.
    ApiKey(&'a str),
    /// An application's OAuth token (its authorisation's id): the link dies
    /// when the application is revoked or removed.
    OAuthGrant(&'a str),
}

impl<'a> From<&'a crate::Credential> for MadeWith<'a> {
    fn from(credential: &'a crate::Credential) -> Self {
        match credential {
            crate::Credential::DeskToken { jti, .. } => MadeWith::DeskToken(jti),
            crate::Credential::AclToken { grant } => MadeWith::AclToken(&grant.token_id),
            crate::Credential::ApiKey { grant } => MadeWith::ApiKey(&grant.kid),
            crate::Credential::OAuthToken { grant } => MadeWith::OAuthGrant(&grant.grant_id),
            crate::Credential::Session { .. } | crate::Credential::AccountToken { .. } => {
                MadeWith::Account
            }
        }
    }
}

impl Desk {
    /// Checks a deposit or withdrawal amount given in `unit` (`sat` or `msat`)
    /// and answers it in msat.
    pub fn amount_in(&self, amount: i64, unit: Option<&str>) -> Result<Msat> {
        let amount = match unit.unwrap_or("sat") {
            "sat" => Msat::checked_from_sat(amount),
            "msat" => Some(Msat(amount)),
            other => {
                return Err(Error::invalid(
                    "unit",
                    format!("unit must be sat or msat, not {:?}", crate::cut(other, 16)),
                ))
            }
        };
        match amount {
            Some(amount) if amount.0 > 0 && amount.is_within_supply() => Ok(amount),
            _ => Err(Error::invalid("amount", "amount must be positive")),
        }
    }

    /// Issues a deposit invoice of `amount` for the account; its payment credits
    /// the trading balance. Answers the invoice.
    pub async fn deposit(&self, user_id: &str, amount: Msat) -> Result<invoice::Issued> {
        let (min, max) = (self.config.deposit_min, self.config.deposit_max);
        if amount < min || amount > max || !amount.is_whole_sat() {
            return Err(Error::invalid(
                "amount",
                format!(
                    "a deposit is a whole number of sats from {} to {}",
                    min.sat(),
                    max.sat()
                ),
            ));
        }
        self.issue_deposit(Some(user_id), "deposit", amount, "Ampere exchange deposit")
            .await
    }

    /// An invoice of the exchange's node booked as a deposit (`purpose`
    /// `deposit` for an account, `account` for a new account's first deposit).
    pub(crate) async fn issue_deposit(
        &self,
        user_id: Option<&str>,
        purpose: &'static str,
        amount: Msat,
        memo: &str,
    ) -> Result<invoice::Issued> {
        let issued = self
            .simnet
            .create_invoice_with_expiry(
                &self.node.pubkey,
                Some(amount),
                memo,
                self.config.deposit_expiry,
            )
            .await?;
        // Until this row exists the invoice is refused by the hook; it is not
        // handed out before.
        self.db
            .execute(
                sqlx::query(
                    "INSERT INTO desk_deposits (id, user_id, purpose, payment_hash, amount_msat, \
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(user_id.map(str::to_string))
                .bind(purpose)
                .bind(issued.payment_hash.clone())
                .bind(amount.0)
                .bind(issued.created_at_ms)
                .bind(issued.expires_at_ms),
            )
            .await?;
        Ok(issued)
    }

    /// Withdraws to `invoice_text`: `amount` must be the invoice's amount (an
    /// amountless invoice is paid `amount`).
    pub async fn withdraw(
        &self,
        user_id: &str,
        amount: Msat,
        invoice_text: &str,
    ) -> Result<Withdrawal> {
        self.require(self.config.switches.withdraw, "withdrawing")?;
        let decoded = self.payable(amount, invoice_text)?;
        self.withdraw_decoded(user_id, amount, &decoded, None).await
    }

    /// Checks an invoice a withdrawal would pay.
    fn payable(&self, amount: Msat, invoice_text: &str) -> Result<Decoded> {
        let min = self.config.withdraw_min;
        if amount < min {
            return Err(Error::invalid(
                "amount",
                format!("a withdrawal is at least {} sats", min.sat()),
            ));
        }
        let decoded = invoice::decode(invoice_text).map_err(|err| match err {
            Error::Invalid { message, .. } => Error::invalid("invoice", message),
            other => other,
        })?;
        if decoded.payee == self.node.pubkey {
            return Err(Error::invalid(
                "invoice",
                "this invoice is the exchange's own: withdraw to your wallet's invoice",
            ));
        }
        if let Some(fixed) = decoded.amount {
            if fixed != amount {
                return Err(Error::invalid(
                    "amount",
                    format!(
                        "the invoice asks {} msat, not the {} msat to withdraw",
                        fixed.0, amount.0
                    ),
                ));
            }
        }
        if decoded.expires_at_ms <= now_ms() {
            return Err(Error::invalid("invoice", "the invoice has expired"));
        }
        Ok(decoded)
    }

    /// Debits, pays, and settles the withdrawal's fate (see the module doc).
    /// `link` is the LNURL-withdraw `k1` it uses up, in the debit's transaction.
    async fn withdraw_decoded(
        &self,
        user_id: &str,
        amount: Msat,
        decoded: &Decoded,
        link: Option<&str>,
    ) -> Result<Withdrawal> {
        let id = uuid::Uuid::new_v4().to_string();
        let (row_id, user, hash, k1) = (
            id.clone(),
            user_id.to_string(),
            decoded.payment_hash.clone(),
            link.map(str::to_string),
        );
        let reserve = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    if let Some(k1) = &k1 {
                        let used = sqlx::query(
                            "UPDATE desk_lnurl_withdrawals SET withdrawal_id = $1 \
                             WHERE k1 = $2 AND user_id = $3 AND withdrawal_id IS NULL \
                             AND expires_at > $4",
                        )
                        .bind(&row_id)
                        .bind(k1)
                        .bind(&user)
                        .bind(now_ms())
                        .execute(&mut *conn)
                        .await?;
                        if used.rows_affected() != 1 {
                            return Err(Error::invalid(
                                "k1",
                                "this withdraw link was used already or has expired",
                            ));
                        }
                    }
                    // The fee's reserve: the usual limit, or what the balance
                    // holds beyond the amount. `debit` checks again: a balance
                    // that moved meanwhile refuses rather than overdraws.
                    let held =
                        sqlx::query("SELECT balance_msat FROM desk_balances WHERE user_id = $1")
                            .bind(&user)
                            .fetch_optional(&mut *conn)
                            .await?
                            .map(|row| row.try_get::<i64, _>("balance_msat"))
                            .transpose()?
                            .unwrap_or(0);
                    if held < amount.0 {
                        return Err(Error::InsufficientFunds);
                    }
                    let reserve = Msat(default_fee_limit(amount).0.min(held - amount.0));
                    let total = amount
                        .checked_add(reserve)
                        .ok_or(Error::InsufficientFunds)?;
                    debit(conn, &user, total).await?;
                    sqlx::query(
                        "INSERT INTO desk_withdrawals (id, user_id, via, payment_hash, \
                         amount_msat, fee_msat, state, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)",
                    )
                    .bind(&row_id)
                    .bind(&user)
                    .bind(if k1.is_some() { "lnurl" } else { "invoice" })
                    .bind(&hash)
                    .bind(amount.0)
                    .bind(reserve.0)
                    .bind(now_ms())
                    .execute(&mut *conn)
                    .await?;
                    Ok(reserve)
                })
            })
            .await?;

        let request = PayRequest {
            amount: decoded.amount.is_none().then_some(amount),
            fee_limit: Some(reserve),
            within: Some(claim_hook(&id, user_id, reserve)),
            ..PayRequest::new(&self.node.pubkey, &decoded.bolt11, None)
        };
        match self.simnet.pay_decoded(&request, decoded).await {
            Ok(payment) => Ok(Withdrawal {
                id,
                amount,
                fee: payment.fee,
                payment_hash: payment.payment_hash,
                preimage: payment.preimage,
            }),
            // The outcome is unknown (a commit failed, the writer is stuck): the
            // withdrawal stays pending; the sweep ends it, and then no payment
            // can claim it any more.
            Err(err) if err.is_internal() => Err(err),
            Err(err) => {
                let err = match err {
                    Error::FeeLimitExceeded { fee_msat, .. } => Error::invalid(
                        "amount",
                        format!(
                            "the route's fee is {fee_msat} msat and the balance keeps {} msat \
                             for it beyond the amount: withdraw less",
                            reserve.0
                        ),
                    ),
                    other => other,
                };
                self.fail_withdrawal(&id, &err.to_string()).await?;
                Err(err)
            }
        }
    }

    /// Ends a pending withdrawal as failed and refunds it, once: answers whether
    /// this call did it.
    async fn fail_withdrawal(&self, id: &str, reason: &str) -> Result<bool> {
        let (row_id, reason) = (id.to_string(), crate::cut(reason, 200).to_string());
        let refunded = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query(
                        "UPDATE desk_withdrawals SET state = 'failed', fail_reason = $1, \
                         finished_at = $2 WHERE id = $3 AND state = 'pending' \
                         RETURNING user_id, amount_msat, fee_msat",
                    )
                    .bind(&reason)
                    .bind(now_ms())
                    .bind(&row_id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(row) = row else {
                        return Ok(None);
                    };
                    let user: String = row.try_get("user_id")?;
                    let amount = Msat(row.try_get("amount_msat")?);
                    let reserve = Msat(row.try_get("fee_msat")?);
                    // No fee was paid: the reserve goes back with the amount.
                    sqlx::query("UPDATE desk_withdrawals SET fee_msat = 0 WHERE id = $1")
                        .bind(&row_id)
                        .execute(&mut *conn)
                        .await?;
                    let refund = amount
                        .checked_add(reserve)
                        .ok_or_else(|| Error::Internal("withdrawal refund overflows".into()))?;
                    credit(conn, &user, refund).await?;
                    Ok(Some((user, amount)))
                })
            })
            .await?;
        if let Some((user, amount)) = &refunded {
            self.bus.publish(
                Topic::Account(user.clone()),
                EventKind::WithdrawalFinished {
                    id: id.to_string(),
                    state: "failed".into(),
                    amount_msat: amount.0,
                },
            );
        }
        Ok(refunded.is_some())
    }

    /// Ends the withdrawals pending for longer than the grace period (their
    /// payment never committed: it claims the row first), refunding each once.
    /// Answers how many it ended.
    pub async fn sweep_pending(&self) -> Result<usize> {
        let cutoff = now_ms() - self.config.pending_grace.as_millis() as i64;
        let stale = sqlx::query(
            "SELECT id FROM desk_withdrawals WHERE state = 'pending' AND created_at < $1 \
             ORDER BY created_at LIMIT 100",
        )
        .bind(cutoff)
        .fetch_all(self.db.pool())
        .await?;
        let mut ended = 0;
        for row in stale {
            let id: String = row.try_get("id")?;
            if self
                .fail_withdrawal(&id, "the payment did not complete")
                .await?
            {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Runs [`Desk::sweep_pending`] every `every` until the returned task is
    /// aborted.
    pub fn spawn_sweeper(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let desk = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                match desk.sweep_pending().await {
                    Ok(0) => {}
                    Ok(n) => tracing::warn!(ended = n, "stale withdrawals failed and refunded"),
                    Err(err) => tracing::warn!(error = %err, "sweeping withdrawals failed"),
                }
            }
        })
    }

    /// Makes an LNURL-withdraw link (LUD-03) for exactly `amount`, answered as
    /// the bech32 LNURL (upper case, for QR codes). It works only while what
    /// made it stands: the account's password (its `auth_version`) and, when a
    /// scoped or ACL token made it, that token.
    pub async fn withdraw_link(
        &self,
        user: &crate::User,
        amount: Msat,
        made_with: MadeWith<'_>,
    ) -> Result<String> {
        let user_id = user.id.0.as_str();
        self.require(self.config.switches.withdraw, "withdrawing")?;
        if amount < self.config.withdraw_min {
            return Err(Error::invalid(
                "amount",
                format!(
                    "a withdrawal is at least {} sats",
                    self.config.withdraw_min.sat()
                ),
            ));
        }
        if self.balance(user_id).await? < amount {
            return Err(Error::InsufficientFunds);
        }
        let k1 = random_hex(32);
        let expires_at = now_ms() + self.config.link_expiry.as_millis() as i64;
        self.db
            .execute(
                sqlx::query(
                    "INSERT INTO desk_lnurl_withdrawals (k1, user_id, auth_version, token_jti, \
                     acl_token_id, amount_msat, created_at, expires_at, api_key_kid, \
                     oauth_grant_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(k1.clone())
                .bind(user_id.to_string())
                .bind(user.auth_version)
                .bind(match made_with {
                    MadeWith::DeskToken(jti) => Some(jti.to_string()),
                    _ => None,
                })
                .bind(match made_with {
                    MadeWith::AclToken(id) => Some(id.to_string()),
                    _ => None,
                })
                .bind(amount.0)
                .bind(now_ms())
                .bind(expires_at)
                .bind(match made_with {
                    MadeWith::ApiKey(kid) => Some(kid.to_string()),
                    _ => None,
                })
                .bind(match made_with {
                    MadeWith::OAuthGrant(id) => Some(id.to_string()),
                    _ => None,
                }),
            )
            .await?;
        let expiry = (expires_at / 1000).to_string();
        let signature = link_mac(&self.link_key, &["w", &k1, &expiry]);
        let url = format!(
            "{}/lnm/lnurl/w/r?n={k1}&expiry={expiry}&signature={signature}",
            self.config.public_url
        );
        Ok(crate::lnurl::encode(&url))
    }

    /// The withdraw request behind a link (`GET /lnm/lnurl/w/r`): checks its
    /// signature and expiry, and that it is unused.
    pub async fn withdraw_request(
        &self,
        signature: &str,
        n: &str,
        expiry: i64,
    ) -> Result<WithdrawRequest> {
        let expected = link_mac(&self.link_key, &["w", n, &expiry.to_string()]);
        if !crate::same_secret(signature.as_bytes(), expected.as_bytes()) {
            return Err(Error::invalid(
                "signature",
                "this withdraw link is not valid",
            ));
        }
        if expiry.saturating_mul(1000) <= now_ms() {
            return Err(Error::invalid("expiry", "this withdraw link has expired"));
        }
        let row = sqlx::query(
            "SELECT amount_msat, withdrawal_id FROM desk_lnurl_withdrawals WHERE k1 = $1",
        )
        .bind(n)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| Error::invalid("n", "this withdraw link is not valid"))?;
        if row.try_get::<Option<String>, _>("withdrawal_id")?.is_some() {
            return Err(Error::invalid("n", "this withdraw link was used already"));
        }
        Ok(WithdrawRequest {
            k1: n.to_string(),
            callback: format!("{}/lnm/lnurl/w", self.config.public_url),
            amount: Msat(row.try_get("amount_msat")?),
        })
    }

    /// The wallet's answer to a withdraw link (`GET /lnm/lnurl/w?k1&pr`): pays
    /// `pr` the link's amount, at most once.
    pub async fn withdraw_by_link(&self, k1: &str, pr: &str) -> Result<Withdrawal> {
        self.require(self.config.switches.withdraw, "withdrawing")?;
        if k1.len() != 64 || !k1.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid("k1", "k1 must be 32 bytes of hex"));
        }
        let row = sqlx::query(
            "SELECT user_id, auth_version, token_jti, acl_token_id, api_key_kid, oauth_grant_id, \
             amount_msat, expires_at, withdrawal_id FROM desk_lnurl_withdrawals WHERE k1 = $1",
        )
        .bind(k1)
        .fetch_optional(self.db.pool())
        .await?
        .ok_or_else(|| Error::invalid("k1", "unknown withdraw link"))?;
        if row.try_get::<Option<String>, _>("withdrawal_id")?.is_some()
            || row.try_get::<i64, _>("expires_at")? <= now_ms()
        {
            return Err(Error::invalid(
                "k1",
                "this withdraw link was used already or has expired",
            ));
        }
        let user: String = row.try_get("user_id")?;
        let amount = Msat(row.try_get("amount_msat")?);
        let voided = || {
            Error::invalid(
                "k1",
                "this withdraw link was voided with the credential that made it",
            )
        };
        let current = self.accounts.get(&user).await?.ok_or_else(voided)?;
        if current.auth_version != row.try_get::<i64, _>("auth_version")? {
            return Err(voided());
        }
        if let Some(jti) = row.try_get::<Option<String>, _>("token_jti")? {
            if self.tokens.is_revoked(&jti).await? {
                return Err(voided());
            }
        }
        // Revoking an ACL token (or deleting its ACL), deleting an API key,
        // revoking an application: each deletes the row named; a disabled key
        // stands no more either.
        for (column, standing) in [
            (
                "acl_token_id",
                "SELECT 1 AS live FROM acl_tokens WHERE id = $1",
            ),
            (
                "api_key_kid",
                "SELECT 1 AS live FROM api_keys WHERE kid = $1 AND state = 'active'",
            ),
            (
                "oauth_grant_id",
                "SELECT 1 AS live FROM oauth_grants WHERE id = $1",
            ),
        ] {
            if let Some(id) = row.try_get::<Option<String>, _>(column)? {
                let live = sqlx::query(standing)
                    .bind(id)
                    .fetch_optional(self.db.pool())
                    .await?;
                if live.is_none() {
                    return Err(voided());
                }
            }
        }
        let decoded = self.payable(amount, pr)?;
        // The debit's transaction takes the link; of two answers at once, one
        // wins and the other is refused there.
        self.withdraw_decoded(&user, amount, &decoded, Some(k1))
            .await
    }

    /// The invoice of one of the account's deposits (`bolt11`, and whether it
    /// was paid), or `None` when the account issued no deposit of that hash:
    /// a page shows an invoice only after asking here, never from its link.
    pub async fn deposit_invoice(
        &self,
        user_id: &str,
        payment_hash: &str,
    ) -> Result<Option<(String, bool)>> {
        let row = sqlx::query(
            "SELECT i.bolt11, d.settled_at FROM desk_deposits d \
             JOIN invoices i ON i.payment_hash = d.payment_hash \
             WHERE d.user_id = $1 AND d.payment_hash = $2",
        )
        .bind(user_id)
        .bind(payment_hash)
        .fetch_optional(self.db.pool())
        .await?;
        row.map(|r| {
            let settled: Option<i64> = r.try_get("settled_at")?;
            Ok((r.try_get("bolt11")?, settled.is_some()))
        })
        .transpose()
    }

    /// The account's deposits, newest first.
    pub async fn deposits(&self, user_id: &str) -> Result<Vec<DepositView>> {
        let rows = sqlx::query(
            "SELECT id, user_id, amount_msat, payment_hash, created_at, expires_at, settled_at \
             FROM desk_deposits WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(user_id)
        .bind(HISTORY_LIMIT)
        .fetch_all(self.db.pool())
        .await?;
        let now = now_ms();
        rows.iter()
            .map(|r| {
                let settled: Option<i64> = r.try_get("settled_at")?;
                let expires: i64 = r.try_get("expires_at")?;
                Ok(DepositView {
                    id: r.try_get("id")?,
                    user_id: r
                        .try_get::<Option<String>, _>("user_id")?
                        .unwrap_or_default(),
                    amount: Msat(r.try_get("amount_msat")?),
                    payment_hash: r.try_get("payment_hash")?,
                    created_at_ms: r.try_get("created_at")?,
                    settled_at_ms: settled,
                    expired_at_ms: (settled.is_none() && expires <= now).then_some(expires),
                })
            })
            .collect()
    }

    /// The account's withdrawals, newest first.
    pub async fn withdrawals(&self, user_id: &str) -> Result<Vec<WithdrawalView>> {
        let rows = sqlx::query(
            "SELECT id, user_id, amount_msat, fee_msat, payment_hash, state, fail_reason, \
             created_at, finished_at FROM desk_withdrawals WHERE user_id = $1 \
             ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(user_id)
        .bind(HISTORY_LIMIT)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WithdrawalView {
                    id: r.try_get("id")?,
                    user_id: r.try_get("user_id")?,
                    amount: Msat(r.try_get("amount_msat")?),
                    fee: Msat(r.try_get("fee_msat")?),
                    payment_hash: r.try_get("payment_hash")?,
                    state: r.try_get("state")?,
                    fail_reason: r.try_get("fail_reason")?,
                    created_at_ms: r.try_get("created_at")?,
                    finished_at_ms: r.try_get("finished_at")?,
                })
            })
            .collect()
    }
}

/// Turns the withdrawal `paid` inside its payment's transaction with the fee
/// paid, giving back what of the `reserve` the fee did not use; refuses the
/// payment if the withdrawal is no longer pending.
fn claim_hook(id: &str, user_id: &str, reserve: Msat) -> Hook {
    let (id, user) = (id.to_string(), user_id.to_string());
    Hook(Arc::new(move |conn, payment| {
        let (id, user) = (id.clone(), user.clone());
        Box::pin(async move {
            let claimed = sqlx::query(
                "UPDATE desk_withdrawals SET state = 'paid', fee_msat = $1, finished_at = $2 \
                 WHERE id = $3 AND state = 'pending' AND fee_msat = $4",
            )
            .bind(payment.fee.0)
            .bind(now_ms())
            .bind(&id)
            .bind(reserve.0)
            .execute(&mut *conn)
            .await?;
            if claimed.rows_affected() != 1 {
                return Err(Error::invalid(
                    "invoice",
                    "this withdrawal was ended before it could be paid",
                ));
            }
            let unused = Msat(reserve.0 - payment.fee.0);
            if unused.0 < 0 {
                return Err(Error::Internal("a route's fee exceeded its limit".into()));
            }
            if unused.0 > 0 {
                credit(conn, &user, unused).await?;
            }
            Ok(vec![Event {
                topic: Topic::Account(user),
                kind: EventKind::WithdrawalFinished {
                    id,
                    state: "paid".into(),
                    amount_msat: payment.amount.0,
                },
            }])
        })
    }))
}
