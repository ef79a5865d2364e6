//! Positions on the inverse BTC/USD contract and the tick that keeps them
//! right as the price moves.
//!
//! - Opening one takes its margin from the trading balance in the transaction
//!   that creates it; closing, cancelling and every trigger give back what is
//!   due in the transaction that changes its state. Each change of state is an
//!   `UPDATE` conditioned on the state before, and money moves only when that
//!   row changed: a position settles once, whoever races for it (a tick, a
//!   close, a cancel, another process).
//! - The tick ([`Desk::tick`]) reads ranges of the trigger indexes (liquidation,
//!   take-profit, stop-loss per side, limit prices of pending orders), never the
//!   table: its work grows with the positions that trigger, not with those
//!   open. Liquidations and fills are claimed by one statement per side;
//!   everything one tick settles commits together.
//! - Every write locks a position's row before its account's balance: two
//!   writes (a tick and a close or an add-margin in another process on
//!   PostgreSQL) never wait for each other in a cycle.
//! - The books: the margin of a pending or open position is the trader's no
//!   more; a close pays `max(0, margin + pl)` back and the house keeps the
//!   rest (or pays the profit), so every sat stays in exactly one place. The
//!   house's part is read from the closed positions themselves
//!   ([`super::Desk::audit`]), not kept in one row every close would update:
//!   closes in several processes would queue on that row.

use sqlx::{AnyConnection, Row};

use super::contract::ticket::check_price;
pub use super::contract::ticket::{Order, OrderType, MAX_QUANTITY};
use super::contract::{self, Leverage, Liquidation, Price, Side};
use super::market::Quote;
use super::Desk;
use crate::events::{EventKind, Topic};
use crate::{now_ms, Error, Msat, Result, User};

/// The PostgreSQL advisory lock held by every tick's transaction: one tick at
/// a time across processes.
const TICK_LOCK: i64 = 0x616d_7065_7265_0011;

/// Whether the quote (`$1` the bid, `$2` the offer) reaches any trigger: the
/// nearest trigger of each partial index, per side, against the quote.
///
/// A `MIN` or `MAX` over an index whose leading column is fixed by equality
/// reads one entry on both databases, whatever the planner estimates. The
/// `EXISTS (... WHERE side = 'b' AND liquidation_cents >= $1)` it replaces
/// scanned the whole table on PostgreSQL: the planner takes the side and the
/// price as independent, so the shorts' liquidations above the bid made it
/// expect thousands of longs there, and a scan finds the first of those soonest.
pub const TRIGGER_PROBE: &str = "SELECT CAST(CASE WHEN \
    (SELECT MAX(liquidation_cents) FROM desk_positions WHERE state = 'open' AND side = 'b' AND liquidation_cents IS NOT NULL) >= $1 \
    OR (SELECT MIN(liquidation_cents) FROM desk_positions WHERE state = 'open' AND side = 's' AND liquidation_cents IS NOT NULL) <= $2 \
    OR (SELECT MIN(takeprofit_cents) FROM desk_positions WHERE state = 'open' AND side = 'b' AND takeprofit_cents IS NOT NULL) <= $1 \
    OR (SELECT MAX(takeprofit_cents) FROM desk_positions WHERE state = 'open' AND side = 's' AND takeprofit_cents IS NOT NULL) >= $2 \
    OR (SELECT MAX(stoploss_cents) FROM desk_positions WHERE state = 'open' AND side = 'b' AND stoploss_cents IS NOT NULL) >= $1 \
    OR (SELECT MIN(stoploss_cents) FROM desk_positions WHERE state = 'open' AND side = 's' AND stoploss_cents IS NOT NULL) <= $2 \
    OR (SELECT MAX(price_cents) FROM desk_positions WHERE state = 'pending' AND side = 'b') >= $2 \
    OR (SELECT MIN(price_cents) FROM desk_positions WHERE state = 'pending' AND side = 's') <= $1 \
    THEN 1 ELSE 0 END AS BIGINT)";

/// Most closed positions one list answers (newest first).
pub const CLOSED_LIMIT: i64 = 1000;

/// Where a position is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// A limit order waiting for its price.
    Pending,
    Open,
    Closed,
    Canceled,
}

impl State {
    fn code(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Open => "open",
            State::Closed => "closed",
            State::Canceled => "canceled",
        }
    }

    fn from_code(code: &str) -> Result<State> {
        Ok(match code {
            "pending" => State::Pending,
            "open" => State::Open,
            "closed" => State::Closed,
            "canceled" => State::Canceled,
            other => return Err(Error::Internal(format!("unknown position state {other}"))),
        })
    }
}

/// What closed a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBy {
    Manual,
    Takeprofit,
    Stoploss,
    Liquidation,
}

impl ClosedBy {
    pub fn code(self) -> &'static str {
        match self {
            ClosedBy::Manual => "manual",
            ClosedBy::Takeprofit => "takeprofit",
            ClosedBy::Stoploss => "stoploss",
            ClosedBy::Liquidation => "liquidation",
        }
    }

    fn from_code(code: &str) -> Result<ClosedBy> {
        Ok(match code {
            "manual" => ClosedBy::Manual,
            "takeprofit" => ClosedBy::Takeprofit,
            "stoploss" => ClosedBy::Stoploss,
            "liquidation" => ClosedBy::Liquidation,
            other => return Err(Error::Internal(format!("unknown close reason {other}"))),
        })
    }

    /// The event's name for it.
    fn event(self) -> &'static str {
        match self {
            ClosedBy::Manual => "closed",
            ClosedBy::Takeprofit => "takeprofit",
            ClosedBy::Stoploss => "stoploss",
            ClosedBy::Liquidation => "liquidated",
        }
    }
}

/// What `PUT /positions` changes: one trigger; zero removes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerChange {
    Takeprofit(Price),
    Stoploss(Price),
}

/// Which positions a list answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Open and pending.
    Open,
    /// Closed and canceled, newest first, at most [`CLOSED_LIMIT`].
    Closed,
    All,
}

/// A position as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub id: i64,
    pub pid: String,
    pub user_id: String,
    pub kind: OrderType,
    pub side: Side,
    pub state: State,
    pub quantity: u64,
    /// Sats.
    pub margin: u64,
    pub leverage: Leverage,
    /// The entry price (a pending order's limit).
    pub price: Price,
    pub liquidation: Liquidation,
    pub takeprofit: Option<Price>,
    pub stoploss: Option<Price>,
    pub exit: Option<Price>,
    /// Sats, once closed (never below minus the margin).
    pub pl: Option<i64>,
    pub closed_by: Option<ClosedBy>,
    pub created_at_ms: i64,
    pub filled_at_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
    pub canceled_at_ms: Option<i64>,
}

impl Position {
    /// The price it would close at under `quote`.
    pub fn reference(&self, quote: &Quote) -> Price {
        self.side.reference_quote(quote.bid, quote.offer)
    }

    /// Its P&L in sats: realised once closed; at `quote` while open (what a
    /// close would realise, never below minus the margin); zero otherwise.
    pub fn pl_at(&self, quote: Option<&Quote>) -> i64 {
        match (self.state, self.pl, quote) {
            (State::Closed, Some(pl), _) => pl,
            (State::Open, _, Some(quote)) => realised_pl(
                self.side,
                self.quantity,
                self.price,
                self.margin,
                self.reference(quote),
            )
            .unwrap_or(0),
            _ => 0,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    pub liquidated: usize,
    pub filled: usize,
    pub takeprofit: usize,
    pub stoploss: usize,
}

impl TickReport {
    pub fn settled(&self) -> usize {
        self.liquidated + self.takeprofit + self.stoploss
    }
}

/// The P&L a close at `exit` realises: never a loss beyond the margin.
fn realised_pl(side: Side, quantity: u64, entry: Price, margin: u64, exit: Price) -> Option<i64> {
    let pl = contract::pl(side, quantity, entry, exit)?;
    Some(pl.max(-i64::try_from(margin).ok()?))
}

/// A pid must look like the spec's (a UUID); anything else is refused before
/// any lookup.
pub fn check_pid(pid: &str) -> Result<()> {
    let groups: Vec<&str> = pid.split('-').collect();
    let shape = [8, 4, 4, 4, 12];
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip(shape)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("pid", "pid must be a position id (a UUID)"))
    }
}

/// A trigger's or an order's price: at least one dollar, on the spec's
/// 0.1 USD grid.
/// The columns every read of a position selects.
const COLUMNS: &str = "id, pid, user_id, kind, side, state, quantity, margin, leverage, \
     price_cents, liquidation_cents, takeprofit_cents, stoploss_cents, exit_cents, pl, \
     closed_by, created_at, filled_at, closed_at, canceled_at";

fn position_from_row(row: &sqlx::any::AnyRow) -> Result<Position> {
    let cents = |name: &str| -> Result<Option<Price>> {
        let value: Option<i64> = row.try_get(name)?;
        value
            .map(|v| {
                u64::try_from(v)
                    .map(Price::from_cents)
                    .map_err(|_| Error::Internal(format!("negative {name}")))
            })
            .transpose()
    };
    let unsigned = |name: &str| -> Result<u64> {
        u64::try_from(row.try_get::<i64, _>(name)?)
            .map_err(|_| Error::Internal(format!("negative {name}")))
    };
    let kind: String = row.try_get("kind")?;
    let side: String = row.try_get("side")?;
    let state: String = row.try_get("state")?;
    let closed_by: Option<String> = row.try_get("closed_by")?;
    Ok(Position {
        id: row.try_get("id")?,
        pid: row.try_get("pid")?,
        user_id: row.try_get("user_id")?,
        kind: OrderType::from_code(&kind)
            .ok_or_else(|| Error::Internal(format!("unknown order type {kind}")))?,
        side: Side::from_code(&side)
            .ok_or_else(|| Error::Internal(format!("unknown side {side}")))?,
        state: State::from_code(&state)?,
        quantity: unsigned("quantity")?,
        margin: unsigned("margin")?,
        leverage: Leverage::from_ten_thousandths(unsigned("leverage")?),
        price: cents("price_cents")?.unwrap_or_default(),
        liquidation: match cents("liquidation_cents")? {
            Some(price) => Liquidation::At(price),
            None => Liquidation::Never,
        },
        takeprofit: cents("takeprofit_cents")?,
        stoploss: cents("stoploss_cents")?,
        exit: cents("exit_cents")?,
        pl: row.try_get("pl")?,
        closed_by: closed_by.as_deref().map(ClosedBy::from_code).transpose()?,
        created_at_ms: row.try_get("created_at")?,
        filled_at_ms: row.try_get("filled_at")?,
        closed_at_ms: row.try_get("closed_at")?,
        canceled_at_ms: row.try_get("canceled_at")?,
    })
}

fn liquidation_cents(liquidation: Liquidation) -> Option<i64> {
    match liquidation {
        Liquidation::At(price) => i64::try_from(price.cents()).ok(),
        Liquidation::Never => None,
    }
}

fn cents_of(price: Price) -> i64 {
    i64::try_from(price.cents()).unwrap_or(i64::MAX)
}

fn sats(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Desk {
    /// Opens a position (`POST /positions`): checks the order against the
    /// spec's rules and the current quote, then takes the margin from the
    /// trading balance and records the position in one transaction. A market
    /// order fills at once at the side's entry quote; a limit order waits for
    /// its price, or fills at once at the entry quote when that is already as
    /// good.
    pub async fn open_position(&self, user: &User, order: Order) -> Result<Position> {
        self.require(self.config.switches.newposition, "opening new positions")?;
        let quote = self.market.fresh()?;
        let checked = order.check(quote.bid, quote.offer, self.config.leverage_max)?;
        let user_id = user.id.0.clone();
        let pid = uuid::Uuid::new_v4().to_string();
        let max_open = i64::from(self.config.open_positions_max);
        let now = now_ms();
        let (position, balance) = self
            .db
            .write_whole(move |conn| {
                Box::pin(async move {
                    let margin_msat = sats(checked.margin)
                        .checked_mul(1000)
                        .ok_or_else(|| Error::invalid("margin", "margin is too large"))?;
                    let filled = checked.fills_now.then_some(now);
                    // On SQLite the INSERT and the debit go as one batch: a
                    // round trip fewer, and the writer runs every write of
                    // the process one after another. The debit follows only
                    // a row inserted (`changes()`), and the INSERT only a
                    // balance that holds the margin: all or nothing. On
                    // PostgreSQL the debit comes alone, first: it locks the
                    // account's balance row, so the INSERT's count, a
                    // statement with a snapshot of its own, sees the openings
                    // other processes committed meanwhile.
                    let postgres = conn.backend_name() == "PostgreSQL";
                    let debited = match postgres {
                        true => Some(debit(conn, &user_id, checked.margin, "margin").await?),
                        false => None,
                    };
                    let sql = match postgres {
                        true => open_insert_sql(false),
                        false => format!(
                            "{}; UPDATE desk_balances SET balance_msat = balance_msat - $2 \
                             WHERE user_id = $1 AND changes() = 1 RETURNING balance_msat",
                            open_insert_sql(true)
                        ),
                    };
                    let opened = sqlx::query(&sql)
                        .bind(&user_id)
                        .bind(margin_msat)
                        .bind(&pid)
                        .bind(checked.kind.code())
                        .bind(checked.side.code())
                        .bind(
                            if checked.fills_now {
                                State::Open
                            } else {
                                State::Pending
                            }
                            .code(),
                        )
                        .bind(sats(checked.quantity))
                        .bind(sats(checked.margin))
                        .bind(sats(checked.leverage.ten_thousandths()))
                        .bind(cents_of(checked.price))
                        .bind(liquidation_cents(checked.liquidation))
                        .bind(checked.takeprofit.map(cents_of))
                        .bind(checked.stoploss.map(cents_of))
                        .bind(now)
                        .bind(filled)
                        .bind(max_open)
                        .fetch_all(&mut *conn)
                        .await?;
                    let inserted = match (&debited, opened.first()) {
                        (Some(balance), Some(row)) => Some((position_from_row(row)?, *balance)),
                        (None, _) => row_and_balance(&opened)?,
                        (Some(_), None) => None,
                    };
                    if let Some(inserted) = inserted {
                        return Ok(inserted);
                    }
                    // Refused: a refusal leaves everything as it was (see
                    // `Database::write_whole`).
                    let full = Error::invalid(
                        "positions",
                        format!(
                            "at most {max_open} positions may be open at once; close one first"
                        ),
                    );
                    if postgres {
                        // The cap refused after the debit: the margin goes back.
                        credit(conn, &user_id, checked.margin).await?;
                        return Err(full);
                    }
                    if !opened.is_empty() {
                        return Err(Error::Internal(
                            "an opening was recorded without its margin taken".into(),
                        ));
                    }
                    let balance = balance_in(conn, &user_id).await?;
                    match balance.0 < margin_msat {
                        true => Err(short_balance("margin", balance, checked.margin)),
                        false => Err(full),
                    }
                })
            })
            .await?;
        self.position_changed(&position, "opened", balance);
        Ok(position)
    }

    /// One position of the account, by pid; another account's answers as if it
    /// did not exist.
    pub async fn position(&self, user: &User, pid: &str) -> Result<Position> {
        check_pid(pid)?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM desk_positions WHERE pid = $1 AND user_id = $2"
        ))
        // Pids are made lower case; a UUID read back in upper case (the
        // schema's pattern allows it) names the same position.
        .bind(pid.to_ascii_lowercase())
        .bind(&user.id.0)
        .fetch_optional(self.db.pool())
        .await?;
        match row {
            Some(row) => position_from_row(&row),
            None => Err(no_such_position()),
        }
    }

    /// The account's positions (`GET /positions`): open and pending oldest
    /// first, then closed and canceled newest first.
    pub async fn positions(&self, user: &User, filter: Filter) -> Result<Vec<Position>> {
        let mut positions = Vec::new();
        if matches!(filter, Filter::Open | Filter::All) {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM desk_positions \
                 WHERE user_id = $1 AND state IN ('pending', 'open') ORDER BY id"
            ))
            .bind(&user.id.0)
            .fetch_all(self.db.pool())
            .await?;
            for row in &rows {
                positions.push(position_from_row(row)?);
            }
        }
        if matches!(filter, Filter::Closed | Filter::All) {
            let rows = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM desk_positions \
                 WHERE user_id = $1 AND state IN ('closed', 'canceled') ORDER BY id DESC LIMIT $2"
            ))
            .bind(&user.id.0)
            .bind(CLOSED_LIMIT)
            .fetch_all(self.db.pool())
            .await?;
            for row in &rows {
                positions.push(position_from_row(row)?);
            }
        }
        Ok(positions)
    }

    /// Sets or removes (a zero price) a position's take-profit or stop-loss
    /// (`PUT /positions`), checked as at creation against the current quote.
    pub async fn update_position(
        &self,
        user: &User,
        pid: &str,
        change: TriggerChange,
    ) -> Result<Position> {
        let position = self.position(user, pid).await?;
        if !matches!(position.state, State::Open | State::Pending) {
            return Err(Error::invalid("pid", "this position is closed"));
        }
        let quote = self.market.fresh()?;
        let reference = match position.state {
            State::Pending => position.price,
            _ => position.reference(&quote),
        };
        let (column, value) = match change {
            TriggerChange::Takeprofit(price) if price.cents() == 0 => ("takeprofit_cents", None),
            TriggerChange::Stoploss(price) if price.cents() == 0 => ("stoploss_cents", None),
            TriggerChange::Takeprofit(price) => {
                check_price("takeprofit", price)?;
                contract::check_takeprofit(position.side, price, reference)
                    .map_err(|e| Error::invalid("takeprofit", e.to_string()))?;
                ("takeprofit_cents", Some(cents_of(price)))
            }
            TriggerChange::Stoploss(price) => {
                check_price("stoploss", price)?;
                let covered = contract::last_covered(
                    position.side,
                    position.quantity,
                    position.price,
                    position.margin,
                )
                .ok_or_else(|| Error::Internal("a stored position's maths failed".into()))?;
                contract::check_stoploss(position.side, price, reference, covered)
                    .map_err(|e| Error::invalid("stoploss", e.to_string()))?;
                ("stoploss_cents", Some(cents_of(price)))
            }
        };
        let id = position.id;
        // The margin (hence the liquidation) may have changed since the read:
        // the update holds only if it did not.
        let margin = sats(position.margin);
        let updated = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query(&format!(
                        "UPDATE desk_positions SET {column} = $1 \
                         WHERE id = $2 AND margin = $3 AND state IN ('pending', 'open') \
                         RETURNING {COLUMNS}"
                    ))
                    .bind(value)
                    .bind(id)
                    .bind(margin)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let balance = balance_in(conn, &position.user_id).await?;
                    Ok((row.as_ref().map(position_from_row).transpose()?, balance))
                })
            })
            .await?;
        match updated {
            (Some(position), balance) => {
                self.position_changed(&position, "updated", balance);
                Ok(position)
            }
            (None, _) => Err(Error::invalid(
                "pid",
                "the position changed meanwhile (closed, or margin added): read it and try again",
            )),
        }
    }

    /// Closes an open position at the side's reference quote (`DELETE
    /// /positions`): margin + P&L (never below zero) back to the balance, the
    /// rest to the house, exactly once.
    pub async fn close_position(&self, user: &User, pid: &str) -> Result<Position> {
        let position = self.position(user, pid).await?;
        match position.state {
            State::Open => {}
            State::Pending => return Err(Error::invalid(
                "pid",
                "this limit order is not filled yet: cancel it instead (POST /positions/cancel)",
            )),
            State::Closed | State::Canceled => {
                return Err(Error::invalid("pid", "this position is already closed"))
            }
        }
        let quote = self.market.fresh()?;
        let exit = position.reference(&quote);
        // Before the write: a whole write's internal error fails its group.
        let pl = pl_at(&position, exit)?;
        let settled = self
            .db
            .write_whole(move |conn| {
                Box::pin(async move {
                    settle(conn, &position, exit, pl, ClosedBy::Manual, now_ms()).await
                })
            })
            .await?;
        match settled {
            Some((position, balance)) => {
                self.position_changed(&position, ClosedBy::Manual.event(), balance);
                Ok(position)
            }
            None => Err(Error::invalid("pid", "this position is already closed")),
        }
    }

    /// Cancels a limit order that has not filled (`POST /positions/cancel`):
    /// its margin back to the balance, exactly once (a fill racing it wins or
    /// loses as a whole).
    pub async fn cancel_position(&self, user: &User, pid: &str) -> Result<Position> {
        let position = self.position(user, pid).await?;
        match position.state {
            State::Pending => {}
            State::Open => {
                return Err(Error::invalid(
                    "pid",
                    "this order is filled: close the position instead (DELETE /positions)",
                ))
            }
            State::Closed | State::Canceled => {
                return Err(Error::invalid("pid", "this position is already closed"))
            }
        }
        let id = position.id;
        let canceled = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    let row = sqlx::query(&format!(
                        "UPDATE desk_positions SET state = 'canceled', canceled_at = $1 \
                         WHERE id = $2 AND state = 'pending' RETURNING {COLUMNS}"
                    ))
                    .bind(now_ms())
                    .bind(id)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(row) = row else { return Ok(None) };
                    let position = position_from_row(&row)?;
                    let balance = credit(conn, &position.user_id, position.margin).await?;
                    Ok(Some((position, balance)))
                })
            })
            .await?;
        match canceled {
            Some((position, balance)) => {
                self.position_changed(&position, "canceled", balance);
                Ok(position)
            }
            None => Err(Error::invalid(
                "pid",
                "this order filled or ended meanwhile: read it again",
            )),
        }
    }

    /// Moves `amount` sats from the balance into an open position's margin
    /// (`POST /positions/add-margin`): its leverage falls and its liquidation
    /// moves away.
    pub async fn add_margin(&self, user: &User, pid: &str, amount: u64) -> Result<Position> {
        let position = self.position(user, pid).await?;
        if amount == 0 {
            return Err(Error::invalid("amount", "amount must be at least 1"));
        }
        if position.state != State::Open {
            return Err(Error::invalid(
                "pid",
                "margin can be added to an open position only",
            ));
        }
        let margin = position
            .margin
            .checked_add(amount)
            .filter(|m| *m <= 2_100_000_000_000_000)
            .ok_or_else(|| Error::invalid("amount", "amount is too large"))?;
        let liquidation =
            contract::liquidation(position.side, position.quantity, position.price, margin)
                .ok_or_else(|| Error::Internal("a stored position's maths failed".into()))?;
        let leverage = Leverage::of(position.quantity, position.price, margin)
            .ok_or_else(|| Error::Internal("a stored position's maths failed".into()))?;
        let (id, before) = (position.id, sats(position.margin));
        let user_id = position.user_id.clone();
        let added = self
            .db
            .write(move |conn| {
                Box::pin(async move {
                    // The position's row first, then the balance's (see the
                    // module doc on the order of locks).
                    let row = sqlx::query(&format!(
                        "UPDATE desk_positions SET margin = $1, leverage = $2, liquidation_cents = $3 \
                         WHERE id = $4 AND margin = $5 AND state = 'open' RETURNING {COLUMNS}"
                    ))
                    .bind(sats(margin))
                    .bind(sats(leverage.ten_thousandths().max(1)))
                    .bind(liquidation_cents(liquidation))
                    .bind(id)
                    .bind(before)
                    .fetch_optional(&mut *conn)
                    .await?;
                    let Some(row) = row else {
                        return Err(Error::invalid(
                            "pid",
                            "the position changed meanwhile (closed, or margin added): read it and try again",
                        ));
                    };
                    // A refused debit undoes the update with the rest of the write.
                    let balance = debit(conn, &user_id, amount, "amount").await?;
                    Ok((position_from_row(&row)?, balance))
                })
            })
            .await?;
        self.position_changed(&added.0, "margin_added", added.1);
        Ok(added.0)
    }

    /// Applies `quote` to every position it reaches: liquidations, limit fills,
    /// take-profits and stop-losses, settled in one transaction. A stale quote
    /// triggers nothing. With nothing reached it is one read of the trigger
    /// indexes.
    pub async fn tick(&self, quote: Quote) -> Result<TickReport> {
        let stale = now_ms().saturating_sub(quote.at_ms)
            > self.market.config().stale_after.as_millis() as i64;
        if stale || !self.anything_reached(&quote).await? {
            return Ok(TickReport::default());
        }
        let (report, changes) = self
            .db
            .write(move |conn| Box::pin(async move { apply_tick(conn, &quote).await }))
            .await?;
        for change in changes {
            self.publish_change(change.user_id, change.pid, change.what, change.balance);
        }
        Ok(report)
    }

    /// Whether `quote` reaches any trigger: [`TRIGGER_PROBE`].
    async fn anything_reached(&self, quote: &Quote) -> Result<bool> {
        let hit: i64 = sqlx::query_scalar(TRIGGER_PROBE)
            .bind(cents_of(quote.bid))
            .bind(cents_of(quote.offer))
            .fetch_one(self.db.pool())
            .await?;
        Ok(hit == 1)
    }

    /// Tells the account's live views (the realtime socket) what changed.
    fn position_changed(&self, position: &Position, what: &str, balance: Msat) {
        self.publish_change(
            position.user_id.clone(),
            position.pid.clone(),
            what,
            balance,
        );
    }

    fn publish_change(&self, user_id: String, pid: String, what: &str, balance: Msat) {
        self.bus.publish(
            Topic::Account(user_id),
            EventKind::PositionChanged {
                pid,
                what: what.to_string(),
                balance_msat: balance.0,
            },
        );
    }
}

fn no_such_position() -> Error {
    Error::NotFound("no such position".into())
}

/// Takes `amount` sats from the trading balance, unless it holds less.
/// Answers the balance after.
async fn debit(
    conn: &mut AnyConnection,
    user_id: &str,
    amount: u64,
    field: &'static str,
) -> Result<Msat> {
    let msat = sats(amount)
        .checked_mul(1000)
        .ok_or_else(|| Error::invalid(field, format!("{field} is too large")))?;
    let row = sqlx::query(
        "UPDATE desk_balances SET balance_msat = balance_msat - $1 \
         WHERE user_id = $2 AND balance_msat >= $1 RETURNING balance_msat",
    )
    .bind(msat)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Msat(row.try_get("balance_msat")?)),
        None => Err(short_balance(
            field,
            balance_in(conn, user_id).await?,
            amount,
        )),
    }
}

/// Gives `amount` sats back to the trading balance; answers the balance after.
async fn credit(conn: &mut AnyConnection, user_id: &str, amount: u64) -> Result<Msat> {
    let row = sqlx::query(
        "UPDATE desk_balances SET balance_msat = balance_msat + $1 \
         WHERE user_id = $2 RETURNING balance_msat",
    )
    .bind(sats(amount).saturating_mul(1000))
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(Msat(row.try_get("balance_msat")?)),
        None => Err(Error::Internal(format!(
            "a position of {user_id} settled without a trading balance"
        ))),
    }
}

/// The refusal of a payment of `amount` sats (the field `field`) that the
/// trading balance cannot make.
fn short_balance(field: &'static str, balance: Msat, amount: u64) -> Error {
    Error::invalid(
        field,
        format!(
            "the trading balance ({} sats) is less than the {amount} sats needed",
            balance.sat()
        ),
    )
}

async fn balance_in(conn: &mut AnyConnection, user_id: &str) -> Result<Msat> {
    let balance: Option<i64> =
        sqlx::query_scalar("SELECT balance_msat FROM desk_balances WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(Msat(balance.unwrap_or(0)))
}

/// The claim of an open position at an exit price: `$1` what closed it, `$2`
/// the exit price, `$3` the P&L before the margin's floor, `$4` the time, `$5`
/// the position's id. The floor (a loss never beyond the margin) and the
/// payout use the margin the row holds when this UPDATE claims it, not the one
/// read before: an add-margin committed in between (another request, another
/// process) is then paid back with the rest, instead of going to the house.
fn claim_sql() -> String {
    format!(
        "UPDATE desk_positions SET state = 'closed', closed_by = $1, exit_cents = $2, \
         pl = CASE WHEN $3 < -margin THEN -margin ELSE $3 END, \
         closed_at = $4 WHERE id = $5 AND state = 'open' RETURNING {COLUMNS}"
    )
}

/// The P&L of `position` closed at `exit`, before the margin's floor (it does
/// not depend on the margin).
fn pl_at(position: &Position, exit: Price) -> Result<i64> {
    contract::pl(position.side, position.quantity, position.price, exit)
        .ok_or_else(|| Error::Internal("a stored position's P&L does not fit".into()))
}

/// `sql`, a claim ([`claim_sql`], alone or followed by its credit), with its
/// binds for `position` closed at `exit` with the P&L `pl` ([`pl_at`]).
fn claim_bound<'q>(
    sql: &'q str,
    position: &Position,
    exit: Price,
    pl: i64,
    by: ClosedBy,
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(sql)
        .bind(by.code())
        .bind(cents_of(exit))
        .bind(pl)
        .bind(now)
        .bind(position.id)
}

/// Records an opening (`$1` account, `$3` pid, `$4`..`$15` its fields) when
/// the account has fewer than `$16` positions pending or open (the cap is
/// checked by the INSERT itself: no row, no room) and, with `funded`, a
/// trading balance of at least `$2` msat.
fn open_insert_sql(funded: bool) -> String {
    let funded = match funded {
        true => {
            "AND EXISTS (SELECT 1 FROM desk_balances WHERE user_id = $1 AND balance_msat >= $2)"
        }
        false => "",
    };
    format!(
        "INSERT INTO desk_positions (pid, user_id, kind, side, state, quantity, \
         margin, leverage, price_cents, liquidation_cents, takeprofit_cents, \
         stoploss_cents, created_at, filled_at) \
         SELECT $3, $1, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15 \
         WHERE (SELECT COUNT(*) FROM desk_positions \
                WHERE user_id = $1 AND state IN ('pending', 'open')) < $16 {funded} \
         RETURNING {COLUMNS}"
    )
}

/// Closing a position in one round trip: the claim
/// ([`claim_sql`]), then, when it claimed, margin + P&L (the P&L floored at
/// minus the margin, so never below zero) to the account's balance. The answer
/// is read by [`row_and_balance`]; no row: something else closed it first.
///
/// Every statement is a round trip to the writer's connection, and the writer
/// runs the writes of the whole process one after another: on SQLite the two
/// statements go as one batch, the second changing nothing unless the first
/// claimed (`changes()`); PostgreSQL has no batches with binds, but runs both
/// as one statement.
fn close_sql(postgres: bool) -> String {
    let claim = claim_sql();
    if postgres {
        format!(
            "WITH claimed AS ({claim}), \
             credited AS (UPDATE desk_balances \
                 SET balance_msat = desk_balances.balance_msat + 1000 * (claimed.margin + claimed.pl) \
                 FROM claimed WHERE desk_balances.user_id = claimed.user_id \
                 RETURNING desk_balances.balance_msat) \
             SELECT claimed.*, (SELECT balance_msat FROM credited) AS balance_msat FROM claimed"
        )
    } else {
        format!(
            "{claim}; \
             UPDATE desk_balances \
             SET balance_msat = balance_msat + 1000 * (SELECT margin + pl FROM desk_positions WHERE id = $5) \
             WHERE user_id = (SELECT user_id FROM desk_positions WHERE id = $5) AND changes() = 1 \
             RETURNING balance_msat"
        )
    }
}

/// Reads what an opening or a close answered: the position (the row with a
/// `pid`) and the balance after (the row with a `balance_msat`; on SQLite each
/// statement of the batch answers its own row, on PostgreSQL's one statement a
/// row has both). `None` unless both are there.
fn row_and_balance(rows: &[sqlx::any::AnyRow]) -> Result<Option<(Position, Msat)>> {
    let position = rows.iter().find(|row| row.try_column("pid").is_ok());
    let balance = rows
        .iter()
        .find_map(|row| row.try_get::<Option<i64>, _>("balance_msat").ok().flatten());
    match (position, balance) {
        (Some(position), Some(balance)) => Ok(Some((position_from_row(position)?, Msat(balance)))),
        _ => Ok(None),
    }
}

/// Closes `position` at `exit` (its P&L `pl`) if it is still open: the
/// trader gets margin + P&L (never below zero) back, the house the rest.
/// `None` when something else closed it first.
async fn settle(
    conn: &mut AnyConnection,
    position: &Position,
    exit: Price,
    pl: i64,
    by: ClosedBy,
    now: i64,
) -> Result<Option<(Position, Msat)>> {
    let sql = close_sql(conn.backend_name() == "PostgreSQL");
    let rows = claim_bound(&sql, position, exit, pl, by, now)
        .fetch_all(&mut *conn)
        .await?;
    match (row_and_balance(&rows)?, rows.is_empty()) {
        (Some(settled), _) => Ok(Some(settled)),
        (None, true) => Ok(None),
        (None, false) => Err(Error::Internal(format!(
            "a position of {} settled without a trading balance",
            position.user_id
        ))),
    }
}

/// Marks `position` closed at `exit` if it is still open (see [`claim_sql`]),
/// and answers it with what it pays the trader; moves no money (the caller
/// credits it). `None` when something else closed it first.
async fn claim(
    conn: &mut AnyConnection,
    position: &Position,
    exit: Price,
    by: ClosedBy,
    now: i64,
) -> Result<Option<(Position, u64)>> {
    let (sql, pl) = (claim_sql(), pl_at(position, exit)?);
    let row = claim_bound(&sql, position, exit, pl, by, now)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let closed = position_from_row(&row)?;
    let paid = closed
        .pl
        .and_then(|pl| contract::settlement(closed.margin, pl))
        .ok_or_else(|| Error::Internal("a settlement does not fit".into()))?;
    Ok(Some((closed, paid)))
}

/// What a tick changed in one position, as its event tells it.
struct Change {
    pid: String,
    user_id: String,
    what: &'static str,
    /// The account's balance after the tick.
    balance: Msat,
}

type Changes = Vec<Change>;

/// The tick's transaction (see [`Desk::tick`]).
async fn apply_tick(conn: &mut AnyConnection, quote: &Quote) -> Result<(TickReport, Changes)> {
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(TICK_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    // Two moves of the price at once (the ticker and the simnet's price call,
    // or two processes) may reach here out of order: a quote older than one
    // already recorded is no longer the market, and the newer one's own tick
    // applies the price. Applying it would liquidate, fill or close at a
    // price the positions opened since never saw.
    let newest: Option<i64> = sqlx::query_scalar("SELECT MAX(at_ms) FROM desk_prices")
        .fetch_one(&mut *conn)
        .await?;
    if newest.is_some_and(|newest| newest > quote.at_ms) {
        return Ok((TickReport::default(), Changes::new()));
    }
    let now = now_ms();
    let (bid, offer) = (cents_of(quote.bid), cents_of(quote.offer));
    let mut report = TickReport::default();
    let mut changes = Changes::new();
    // Every position's row is claimed before any balance moves: the order of
    // locks every write keeps (see the module doc), so a close or an
    // add-margin in another process never deadlocks with a tick. What the
    // claims owe each account meanwhile:
    let mut payouts = std::collections::BTreeMap::<String, u64>::new();
    // A claim answers only what its event and the books need: a tick may
    // claim thousands of rows.
    let claimed = |row: &sqlx::any::AnyRow, what| -> Result<Change> {
        Ok(Change {
            pid: row.try_get("pid")?,
            user_id: row.try_get("user_id")?,
            what,
            balance: Msat::ZERO,
        })
    };

    // Limit orders whose price the entry quote reached fill at their price,
    // first: an order filled through a gap beyond its own liquidation is then
    // liquidated by this same tick, not left open past it until the next one.
    for (side, reached) in [("b", "price_cents >= $2"), ("s", "price_cents <= $3")] {
        let rows = sqlx::query(&format!(
            "UPDATE desk_positions SET state = 'open', filled_at = $4 \
             WHERE state = 'pending' AND side = $1 AND {reached} \
             RETURNING pid, user_id"
        ))
        .bind(side)
        .bind(offer)
        .bind(bid)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            changes.push(claimed(row, "filled")?);
        }
        report.filled += rows.len();
    }

    // Then liquidations, before any take-profit or stop-loss: the trader gets
    // nothing, the house the margin. One statement per side claims them all.
    for (side, reached, exit) in [
        ("b", "liquidation_cents >= $2", bid),
        ("s", "liquidation_cents <= $2", offer),
    ] {
        let rows = sqlx::query(&format!(
            "UPDATE desk_positions SET state = 'closed', closed_by = 'liquidation', \
             exit_cents = $2, pl = -margin, closed_at = $3 \
             WHERE state = 'open' AND side = $1 AND {reached} \
             RETURNING pid, user_id"
        ))
        .bind(side)
        .bind(exit)
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            changes.push(claimed(row, "liquidated")?);
        }
        report.liquidated += rows.len();
    }

    // Take-profits and stop-losses close at the reference quote, each with its
    // own P&L.
    let reached = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM desk_positions WHERE state = 'open' AND side = 'b' AND takeprofit_cents <= $1 \
         UNION SELECT {COLUMNS} FROM desk_positions WHERE state = 'open' AND side = 'b' AND stoploss_cents >= $1 \
         UNION SELECT {COLUMNS} FROM desk_positions WHERE state = 'open' AND side = 's' AND takeprofit_cents >= $2 \
         UNION SELECT {COLUMNS} FROM desk_positions WHERE state = 'open' AND side = 's' AND stoploss_cents <= $2"
    ))
    .bind(bid)
    .bind(offer)
    .fetch_all(&mut *conn)
    .await?;
    for row in &reached {
        let position = position_from_row(row)?;
        let exit = position.reference(quote);
        let by = match (position.side, position.takeprofit) {
            (Side::Buy, Some(tp)) if exit >= tp => ClosedBy::Takeprofit,
            (Side::Sell, Some(tp)) if exit <= tp => ClosedBy::Takeprofit,
            _ => ClosedBy::Stoploss,
        };
        if let Some((closed, paid)) = claim(conn, &position, exit, by, now).await? {
            match by {
                ClosedBy::Takeprofit => report.takeprofit += 1,
                _ => report.stoploss += 1,
            }
            let owed = payouts.entry(closed.user_id.clone()).or_default();
            *owed = owed.saturating_add(paid);
            changes.push(Change {
                pid: closed.pid,
                user_id: closed.user_id,
                what: by.event(),
                balance: Msat::ZERO,
            });
        }
    }

    // Then the money: each account's payout in one credit, in the order of
    // their ids.
    let mut balances = std::collections::HashMap::new();
    for (user_id, paid) in payouts {
        let balance = credit(conn, &user_id, paid).await?;
        balances.insert(user_id, balance);
    }
    // Every change says the account's balance after the tick: read once per
    // account the tick touched.
    for change in &mut changes {
        if !balances.contains_key(&change.user_id) {
            let balance = balance_in(conn, &change.user_id).await?;
            balances.insert(change.user_id.clone(), balance);
        }
        change.balance = balances[&change.user_id];
    }
    Ok((report, changes))
}
