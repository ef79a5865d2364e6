//! The second factor of money leaving: an account with two-factor codes on may
//! withdraw (pay invoices from its wallet, withdraw from the desk, make a
//! withdraw link; never counting money moved between its own balances, see
//! `Engine::leaving`) up to the operator's allowance a day without a code; past
//! it, each withdrawal asks for one. The allowance is counted per account over
//! a day that starts with its first code-free withdrawal, so splitting a large
//! withdrawal into small ones does not escape the code. Spending it is one
//! conditional write, so racing withdrawals cannot overdraw it.

use super::{Accounts, User};
use crate::{now_ms, Error, Msat, Result};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// How a withdrawal got past the second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// The account has no second factor, or a code was given.
    Open,
    /// Within the day's allowance: given back if the withdrawal fails.
    Allowance(Msat),
}

impl Accounts {
    /// Runs `withdrawal` of what `leaving` says leaves once the second factor
    /// lets it: nothing when the account has it off (and `leaving` is then
    /// never worked out: a payment of an account without two-factor pays for
    /// no lookups); within the day's allowance without a code; else with a
    /// correct code ([`Error::CodeRequired`] without one). A withdrawal that
    /// fails gives back what it took of the allowance.
    pub async fn withdrawing<T>(
        &self,
        user: &User,
        leaving: impl std::future::Future<Output = Result<Msat>>,
        code: Option<&str>,
        withdrawal: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let pass = self.pass_withdrawal(user, leaving, code).await?;
        let outcome = withdrawal.await;
        if let (Err(_), Pass::Allowance(taken)) = (&outcome, pass) {
            self.give_back(user, taken).await;
        }
        outcome
    }

    async fn pass_withdrawal(
        &self,
        user: &User,
        leaving: impl std::future::Future<Output = Result<Msat>>,
        code: Option<&str>,
    ) -> Result<Pass> {
        if !self.two_factor_on(&user.id.0).await? {
            return Ok(Pass::Open);
        }
        let amount = leaving.await?;
        // Nothing moves without a positive amount: the withdrawal refuses it.
        if amount.0 <= 0 {
            return Ok(Pass::Open);
        }
        if code.is_some_and(|c| !c.is_empty()) {
            self.second_factor(user, code).await?;
            return Ok(Pass::Open);
        }
        let allowance = self.policy.code_free_withdrawals;
        if amount > allowance || !self.take_allowance(user, amount, allowance).await? {
            return Err(Error::CodeRequired);
        }
        Ok(Pass::Allowance(amount))
    }

    /// Takes `amount` from the account's allowance for the day, if it is
    /// still there: one conditional write (a window older than a day starts
    /// over at this withdrawal).
    async fn take_allowance(&self, user: &User, amount: Msat, allowance: Msat) -> Result<bool> {
        let now = now_ms();
        self.db
            .execute(
                sqlx::query(
                    "INSERT INTO withdrawal_allowance (user_id, window_start, spent_msat) \
                     VALUES ($1, $2, 0) ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user.id.0.clone())
                .bind(now),
            )
            .await?;
        let taken = self
            .db
            .execute(
                sqlx::query(
                    "UPDATE withdrawal_allowance SET \
                     spent_msat = CASE WHEN window_start <= $2 THEN $3 ELSE spent_msat + $3 END, \
                     window_start = CASE WHEN window_start <= $2 THEN $4 ELSE window_start END \
                     WHERE user_id = $1 \
                     AND CASE WHEN window_start <= $2 THEN $3 ELSE spent_msat + $3 END <= $5",
                )
                .bind(user.id.0.clone())
                .bind(now - DAY_MS)
                .bind(amount.0)
                .bind(now)
                .bind(allowance.0),
            )
            .await?;
        Ok(taken == 1)
    }

    /// Gives back what a failed withdrawal took (never below nothing).
    async fn give_back(&self, user: &User, amount: Msat) {
        let given = self
            .db
            .execute(
                sqlx::query(
                    "UPDATE withdrawal_allowance SET spent_msat = \
                     CASE WHEN spent_msat > $2 THEN spent_msat - $2 ELSE 0 END \
                     WHERE user_id = $1",
                )
                .bind(user.id.0.clone())
                .bind(amount.0),
            )
            .await;
        if let Err(err) = given {
            tracing::warn!("giving back a failed withdrawal's allowance failed: {err}");
        }
    }
}
