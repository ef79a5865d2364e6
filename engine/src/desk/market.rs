//! The BTC/USD price the desk trades at: the index, the bid and offer the
//! exchange quotes around it, their recent history, and where the index comes
//! from (a seeded random walk by default, or an operator's feed).
//!
//! One process at a time makes the price (the one that holds the ticker's lease,
//! see [`super::Desk::spawn_ticker`]); it records each quote and publishes it on
//! the bus's [`Topic::Market`], so every process on the same database quotes the
//! same price. A quote older than [`MarketConfig::stale_after`] is stale: the
//! desk then refuses new positions and closes, and nothing triggers on it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::Row;
use tokio::sync::watch;

use super::contract::Price;
use crate::events::{Bus, EventKind, Topic};
use crate::{now_ms, Database, Error, Result};

/// The exchange's quote at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    pub index: Price,
    /// What a seller gets: a long exits here, a short enters here.
    pub bid: Price,
    /// What a buyer pays: a long enters here, a short exits here.
    pub offer: Price,
    /// When the index was taken, Unix ms.
    pub at_ms: i64,
}

impl Quote {
    /// The quote around `index` with a total spread of `spread_bps` basis
    /// points, half on each side, widened outward to the tick (the bid down,
    /// the offer up), so the exchange never quotes inside its spread.
    pub fn around(index: Price, spread_bps: u32, at_ms: i64) -> Quote {
        let tick = Price::TICK.cents();
        let half = u128::from(index.cents()) * u128::from(spread_bps) / 20_000;
        let half = u64::try_from(half).unwrap_or(u64::MAX);
        let bid = index.cents().saturating_sub(half) / tick * tick;
        let offer = index.cents().saturating_add(half).div_ceil(tick) * tick;
        Quote {
            index,
            bid: Price::from_cents(bid.max(tick)),
            offer: Price::from_cents(offer.max(tick)),
            at_ms,
        }
    }
}

/// The lowest index the desk quotes: one dollar (the walk's floor, and the
/// lowest price an order may name).
pub const INDEX_MIN: Price = Price::from_cents(100);
/// The highest: 10,000,000 USD, up to which the contract maths are exact.
pub const INDEX_MAX: Price = Price::from_cents(1_000_000_000);

/// Refuses an index the desk would not quote (an operator's feed, the
/// simnet's price call): below [`INDEX_MIN`] or above [`INDEX_MAX`].
pub fn check_index(index: Price) -> Result<()> {
    if index < INDEX_MIN || index > INDEX_MAX {
        return Err(Error::invalid(
            "index",
            format!("the index must be between {INDEX_MIN} and {INDEX_MAX} USD"),
        ));
    }
    Ok(())
}

/// Where the index comes from.
pub trait Source: Send {
    /// The next index, given the last one.
    fn next(&mut self, last: Price) -> BoxFuture<'_, Result<Price>>;
}

/// The embedded index: geometric Brownian motion, one step per tick, from a
/// seeded generator, so a run can be replayed.
pub struct Walk {
    rng: rand::rngs::StdRng,
    /// The standard deviation of one step's log return.
    step_sigma: f64,
}

impl Walk {
    /// A walk with `volatility` annualised (0.6 is 60 %), stepping every
    /// `interval`, drawn from `seed`.
    pub fn new(volatility: f64, interval: Duration, seed: u64) -> Walk {
        use rand::SeedableRng;
        const YEAR_S: f64 = 365.25 * 24.0 * 3600.0;
        Walk {
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            step_sigma: volatility.max(0.0) * (interval.as_secs_f64() / YEAR_S).sqrt(),
        }
    }

    /// The next index from `last`: a log-normal step, to the cent, never below
    /// one dollar.
    pub fn step(&mut self, last: Price) -> Price {
        use rand::Rng;
        // Box-Muller: one standard normal from two uniforms in (0, 1].
        let u1: f64 = 1.0 - self.rng.gen::<f64>();
        let u2: f64 = self.rng.gen::<f64>();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let sigma = self.step_sigma;
        let factor = (sigma * z - sigma * sigma / 2.0).exp();
        let next = (last.cents() as f64 * factor).round();
        Price::from_cents((next as u64).max(100))
    }
}

impl Source for Walk {
    fn next(&mut self, last: Price) -> BoxFuture<'_, Result<Price>> {
        let next = self.step(last);
        Box::pin(async move { Ok(next) })
    }
}

#[derive(Debug, Clone)]
pub struct MarketConfig {
    /// The index before the first tick, on a fresh database.
    pub start: Price,
    /// The random walk's annualised volatility (0.6 is 60 %); 0 holds it still.
    pub volatility: f64,
    /// The random walk's seed: the same seed and start replay the same path.
    pub seed: u64,
    /// Bid to offer, in basis points of the index.
    pub spread_bps: u32,
    /// How often the price moves and the positions are checked.
    pub interval: Duration,
    /// A quote older than this is stale.
    pub stale_after: Duration,
}

impl Default for MarketConfig {
    fn default() -> Self {
        MarketConfig {
            start: Price::from_cents(10_000_000),
            volatility: 0.6,
            seed: 21,
            spread_bps: 2,
            interval: Duration::from_secs(1),
            stale_after: Duration::from_secs(10),
        }
    }
}

/// Points older than this keep only one per minute.
const SECOND_POINTS_FOR: i64 = 3600 * 1000;
/// Points older than this are forgotten.
const MINUTE_POINTS_FOR: i64 = 48 * 3600 * 1000;
/// Most points one history answer holds.
pub const HISTORY_POINTS: i64 = 5000;

/// The price as every part of this process sees it. Cheap to clone.
#[derive(Clone)]
pub struct Market {
    db: Database,
    bus: Bus,
    config: Arc<MarketConfig>,
    latest: Arc<watch::Sender<Option<Quote>>>,
    _follower: Arc<AbortOnDrop>,
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Market {
    /// Loads the last recorded quote and follows the ones published from now
    /// on, by this process or another.
    pub(crate) async fn start(db: Database, bus: Bus, config: MarketConfig) -> Result<Market> {
        let latest = Arc::new(watch::channel(None).0);
        // The follower holds neither the market nor the bus alive: it stops
        // with the last clone of the market.
        let weak = Arc::downgrade(&latest);
        let mut ticks = bus.subscribe(&[Topic::Market]);
        let follower = tokio::spawn(async move {
            while let Some(event) = ticks.recv().await {
                let Some(latest) = weak.upgrade() else { break };
                if let Some(quote) = quote_of(&event.kind) {
                    adopt(&latest, quote);
                }
            }
        });
        let market = Market {
            latest,
            db,
            bus,
            config: Arc::new(config),
            _follower: Arc::new(AbortOnDrop(follower)),
        };
        market.reload().await?;
        Ok(market)
    }

    pub fn config(&self) -> &MarketConfig {
        &self.config
    }

    /// The latest quote, fresh or not (`None` before the first).
    pub fn latest(&self) -> Option<Quote> {
        *self.latest.borrow()
    }

    /// Follows the latest quote as it changes in this process.
    pub fn watch(&self) -> watch::Receiver<Option<Quote>> {
        self.latest.subscribe()
    }

    /// The latest quote, unless it is stale (or there is none yet): then the
    /// desk is unavailable, with a message saying why.
    pub fn fresh(&self) -> Result<Quote> {
        let quote = self.latest().ok_or_else(|| {
            Error::Unavailable("the exchange has no BTC/USD price yet; try again shortly".into())
        })?;
        let age = now_ms().saturating_sub(quote.at_ms);
        if age > self.config.stale_after.as_millis() as i64 {
            return Err(Error::Unavailable(format!(
                "the BTC/USD price is stale (last at {}, {} s ago): trading waits for a fresh price",
                crate::rfc3339(quote.at_ms),
                age / 1000
            )));
        }
        Ok(quote)
    }

    /// Reads the last recorded quote, or quotes the configured start on a
    /// fresh database (stamped now: a start is a price, not a stale one).
    async fn reload(&self) -> Result<()> {
        let row = sqlx::query(
            "SELECT at_ms, index_cents, bid_cents, offer_cents FROM desk_prices \
             ORDER BY at_ms DESC LIMIT 1",
        )
        .fetch_optional(self.db.pool())
        .await?;
        let quote = match row {
            Some(row) => quote_from_row(&row)?,
            None => Quote::around(self.config.start, self.config.spread_bps, now_ms()),
        };
        adopt(&self.latest, quote);
        Ok(())
    }

    /// Quotes `index` now: records it, makes it this process's latest, and
    /// publishes it to the others.
    pub async fn publish(&self, index: Price) -> Result<Quote> {
        let previous = self.latest().map(|q| q.at_ms).unwrap_or(0);
        // Strictly after the previous quote, so every point has its own instant.
        let quote = Quote::around(index, self.config.spread_bps, now_ms().max(previous + 1));
        self.record(quote, previous).await?;
        adopt(&self.latest, quote);
        self.bus.publish(
            Topic::Market,
            EventKind::PriceTicked {
                index_cents: quote.index.cents() as i64,
                bid_cents: quote.bid.cents() as i64,
                offer_cents: quote.offer.cents() as i64,
                at_ms: quote.at_ms,
            },
        );
        Ok(quote)
    }

    /// Keeps `quote` for the history: every point for the last hour, the first
    /// of each minute for two days. Forgets older points once a minute.
    async fn record(&self, quote: Quote, previous_ms: i64) -> Result<()> {
        let first_of_minute = quote.at_ms / 60_000 != previous_ms / 60_000;
        self.db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO desk_prices (at_ms, index_cents, bid_cents, offer_cents, minute) \
                         VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (at_ms) DO UPDATE SET index_cents = excluded.index_cents, \
                         bid_cents = excluded.bid_cents, offer_cents = excluded.offer_cents",
                    )
                    .bind(quote.at_ms)
                    .bind(quote.index.cents() as i64)
                    .bind(quote.bid.cents() as i64)
                    .bind(quote.offer.cents() as i64)
                    .bind(i64::from(first_of_minute))
                    .execute(&mut *conn)
                    .await?;
                    if first_of_minute {
                        sqlx::query(
                            "DELETE FROM desk_prices WHERE at_ms < $1 \
                             AND (minute = 0 OR at_ms < $2)",
                        )
                        .bind(quote.at_ms - SECOND_POINTS_FOR)
                        .bind(quote.at_ms - MINUTE_POINTS_FOR)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// The recorded quotes from `from_ms` to `to_ms` (inclusive), oldest first:
    /// every point when the range lies within the last hour, one per minute
    /// otherwise; at most [`HISTORY_POINTS`], the newest kept.
    pub async fn history(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Quote>> {
        if from_ms > to_ms {
            return Err(Error::invalid("from", "from must not be after to"));
        }
        let per_second = from_ms >= now_ms() - SECOND_POINTS_FOR;
        let rows = sqlx::query(
            "SELECT at_ms, index_cents, bid_cents, offer_cents FROM desk_prices \
             WHERE at_ms BETWEEN $1 AND $2 AND (minute = 1 OR $3 = 1) \
             ORDER BY at_ms DESC LIMIT $4",
        )
        .bind(from_ms)
        .bind(to_ms)
        .bind(i64::from(per_second))
        .bind(HISTORY_POINTS)
        .fetch_all(self.db.pool())
        .await?;
        let mut quotes = rows
            .iter()
            .map(quote_from_row)
            .collect::<Result<Vec<_>>>()?;
        quotes.reverse();
        Ok(quotes)
    }
}

/// Takes `quote` as the latest unless a newer one is known (a missed tick
/// is made good by the next: they come every second).
fn adopt(latest: &watch::Sender<Option<Quote>>, quote: Quote) {
    latest.send_if_modified(|known| match known {
        Some(known) if known.at_ms >= quote.at_ms => false,
        _ => {
            *known = Some(quote);
            true
        }
    });
}

/// The quote a [`EventKind::PriceTicked`] carries.
pub fn quote_of(kind: &EventKind) -> Option<Quote> {
    match *kind {
        EventKind::PriceTicked {
            index_cents,
            bid_cents,
            offer_cents,
            at_ms,
        } => Some(Quote {
            index: Price::from_cents(u64::try_from(index_cents).ok()?),
            bid: Price::from_cents(u64::try_from(bid_cents).ok()?),
            offer: Price::from_cents(u64::try_from(offer_cents).ok()?),
            at_ms,
        }),
        _ => None,
    }
}

fn quote_from_row(row: &sqlx::any::AnyRow) -> Result<Quote> {
    let cents = |name: &str| -> Result<Price> {
        let value: i64 = row.try_get(name)?;
        u64::try_from(value)
            .map(Price::from_cents)
            .map_err(|_| Error::Internal(format!("negative price in desk_prices.{name}")))
    };
    Ok(Quote {
        index: cents("index_cents")?,
        bid: cents("bid_cents")?,
        offer: cents("offer_cents")?,
        at_ms: row.try_get("at_ms")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_widens_outward_to_the_tick() {
        let quote = Quote::around(Price::from_cents(10_000_000), 2, 0);
        // 2 bp of 100,000 USD is 20 USD: 10 each side.
        assert_eq!(quote.bid, Price::from_cents(9_999_000));
        assert_eq!(quote.offer, Price::from_cents(10_001_000));
        let odd = Quote::around(Price::from_cents(10_000_020), 0, 0);
        assert_eq!(odd.bid, Price::from_cents(10_000_000));
        assert_eq!(odd.offer, Price::from_cents(10_000_050));
        let flat = Quote::around(Price::from_cents(10_000_050), 0, 0);
        assert_eq!((flat.bid, flat.offer), (flat.index, flat.index));
    }

    #[test]
    fn a_seeded_walk_replays_and_moves_like_its_volatility() {
        let interval = Duration::from_secs(1);
        let path = |seed| {
            let mut walk = Walk::new(0.6, interval, seed);
            let mut price = Price::from_cents(10_000_000);
            (0..3600)
                .map(|_| {
                    price = walk.step(price);
                    price
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(path(7), path(7));
        assert_ne!(path(7), path(8));
        // An hour at 60 % a year: the log return's deviation is about 0.64 %;
        // measured over the steps, within a loose band.
        let steps = path(7);
        let returns: Vec<f64> = steps
            .windows(2)
            .map(|w| (w[1].cents() as f64 / w[0].cents() as f64).ln())
            .collect();
        let mean = returns.iter().sum::<f64>() / returns.len() as f64;
        let variance =
            returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / returns.len() as f64;
        let annualised = (variance * 365.25 * 24.0 * 3600.0).sqrt();
        assert!((0.5..0.7).contains(&annualised), "{annualised}");
        // Volatility zero holds the index still.
        let mut still = Walk::new(0.0, interval, 1);
        assert_eq!(
            still.step(Price::from_cents(10_000_000)),
            Price::from_cents(10_000_000)
        );
    }
}
