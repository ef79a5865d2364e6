//! `tick`: the desk's tick alone, on a large book. Opens the engine on a fresh
//! SQLite database (or `--database-url`), fills it with `--positions` open
//! positions (inserted in bulk, each one's margin, leverage and liquidation
//! computed by the contract's maths, their margins deposited so the books
//! balance), then measures:
//! - ticks that reach nothing, at the current price: p50, p99, max;
//! - one tick that liquidates `--liquidations` positions, its durable commit
//!   included, and that the books still balance after it;
//! - the database's bytes per open position, and the process's memory before
//!   and after the book was loaded.
//!
//! `scripts/bench` runs it; by hand: `cargo run --release -p bench --bin tick`.

use std::time::{Duration, Instant};

use clap::Parser;
use engine::desk::contract::{self, Leverage, Liquidation, Price, Side};
use engine::{Engine, Settings};

#[derive(Parser, Debug)]
struct Args {
    /// Open positions on the book.
    #[arg(long, default_value_t = 1_000_000)]
    positions: u64,
    /// Positions the liquidating tick reaches.
    #[arg(long, default_value_t = 10_000)]
    liquidations: u64,
    /// Ticks that reach nothing, measured.
    #[arg(long, default_value_t = 2_000)]
    idle_ticks: usize,
    /// A database to use instead of a fresh SQLite file.
    #[arg(long)]
    database_url: Option<String>,
}

/// Accounts the positions are spread over.
const ACCOUNTS: u64 = 16;
/// Rows per INSERT.
const BATCH: u64 = 500;
/// INSERTs per transaction.
const BATCHES_PER_WRITE: u64 = 20;

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("ampere-tick-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let file = dir.join("bench.db");
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", file.display()));
    let mut settings = Settings::default();
    settings.desk.market.spread_bps = 0;
    let engine = Engine::open(&url, settings)
        .await
        .expect("the engine opens");
    let rss_before = rss_bytes();

    let index = Price::from_usd(100_000).unwrap();
    let started = Instant::now();
    let accounts = load_book(&engine, &args, index).await;
    println!(
        "book: {} open positions over {} accounts, loaded in {:.1} s",
        args.positions,
        accounts.len(),
        started.elapsed().as_secs_f64()
    );
    let books = engine.desk.audit().await.expect("the books");
    assert!(books.balanced(), "{books:?}");

    // Ticks that reach nothing.
    let quote = engine.desk.market.publish(index).await.expect("a quote");
    let mut idle = Vec::with_capacity(args.idle_ticks);
    for i in 0..args.idle_ticks {
        // A fresh quote every so often: a quote goes stale after seconds.
        let quote = if i % 500 == 0 {
            engine.desk.market.publish(index).await.expect("a quote")
        } else {
            quote
        };
        let start = Instant::now();
        let report = engine.desk.tick(quote).await.expect("a tick");
        idle.push(start.elapsed());
        assert_eq!(report.settled() + report.filled, 0, "nothing is reached");
    }
    idle.sort_unstable();
    println!(
        "tick reaching nothing ({} ticks): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        idle.len(),
        ms(percentile(&idle, 50)),
        ms(percentile(&idle, 99)),
        ms(*idle.last().unwrap())
    );

    // One tick through the band of liquidations just below the index.
    let low = Price::from_cents(index.cents() - 60_000);
    let quote = engine.desk.market.publish(low).await.expect("a quote");
    let start = Instant::now();
    let report = engine.desk.tick(quote).await.expect("a tick");
    let took = start.elapsed();
    assert_eq!(report.liquidated as u64, args.liquidations);
    println!(
        "tick liquidating {} positions, committed: {:.1} ms",
        report.liquidated,
        ms(took)
    );
    let books = engine.desk.audit().await.expect("the books");
    assert!(books.balanced(), "{books:?}");
    println!(
        "books balanced after the tick (house {} sats)",
        books.house.sat()
    );

    let rss_after = rss_bytes();
    if args.database_url.is_none() {
        let bytes: u64 = std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        println!(
            "memory per open position: {} bytes on disk (rows and trigger indexes), {} bytes of process memory ({} MB before the book, {} MB after)",
            bytes / args.positions.max(1),
            rss_after.saturating_sub(rss_before) / args.positions.max(1),
            rss_before / 1_000_000,
            rss_after / 1_000_000
        );
    }
    engine.db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Inserts the book: accounts with balances and deposits; long positions
/// liquidated between 80,000 and 99,000 USD, except `liquidations` of them
/// between 99,450 and 99,500 (the band the measured tick crosses); shorts
/// liquidated above 101,000. Every fifth has a take-profit and a stop-loss
/// out of reach.
async fn load_book(engine: &Engine, args: &Args, index: Price) -> Vec<String> {
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        let user = engine
            .accounts
            .register(
                &format!("ticker{i}"),
                "Bench-password-1",
                None,
                // One address each: sign-ups are limited per address.
                &format!("10.0.0.{i}"),
            )
            .await
            .expect("an account");
        accounts.push(user.id.0);
    }
    let now = engine::now_ms();
    let mut margins = vec![0i64; accounts.len()];
    let mut id = 0u64;
    while id < args.positions {
        let rows: Vec<(u64, Row)> = (id..(id + BATCH * BATCHES_PER_WRITE).min(args.positions))
            .map(|n| (n, row(n, args, index)))
            .collect();
        id += rows.len() as u64;
        for (n, row) in &rows {
            margins[(*n % ACCOUNTS) as usize] += row.margin as i64;
        }
        let accounts = accounts.clone();
        engine
            .db
            .write(move |conn| {
                Box::pin(async move {
                    for rows in rows.chunks(BATCH as usize) {
                    let mut sql = String::from(
                        "INSERT INTO desk_positions (pid, user_id, kind, side, state, quantity, \
                         margin, leverage, price_cents, liquidation_cents, takeprofit_cents, \
                         stoploss_cents, created_at, filled_at) VALUES ",
                    );
                    for (i, _) in rows.iter().enumerate() {
                        let b = i * 12;
                        if i > 0 {
                            sql.push(',');
                        }
                        sql.push_str(&format!(
                            "(${}, ${}, 'm', ${}, 'open', ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                            b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10,
                            b + 11, b + 12
                        ));
                    }
                    let mut query = sqlx::query(&sql);
                    for (n, row) in rows {
                        query = query
                            .bind(format!("{:08x}-0000-4000-8000-{:012x}", n >> 16, n))
                            .bind(accounts[(*n % ACCOUNTS) as usize].clone())
                            .bind(row.side.code())
                            .bind(row.quantity as i64)
                            .bind(row.margin as i64)
                            .bind(row.leverage.ten_thousandths() as i64)
                            .bind(row.entry.cents() as i64)
                            .bind(row.liquidation.map(|p| p.cents() as i64))
                            .bind(row.takeprofit.map(|p| p.cents() as i64))
                            .bind(row.stoploss.map(|p| p.cents() as i64))
                            .bind(now)
                            .bind(now);
                    }
                    query.execute(&mut *conn).await?;
                    }
                    Ok(())
                })
            })
            .await
            .expect("a batch of positions");
    }
    // The margins arrived as deposits, so the books balance.
    for (user, margin) in accounts.iter().zip(&margins) {
        let (user, msat) = (user.clone(), margin * 1000);
        engine
            .db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO desk_deposits (id, user_id, purpose, payment_hash, amount_msat, \
                         created_at, expires_at, settled_at) VALUES ($1, $2, 'deposit', $3, $4, 0, 0, 0)",
                    )
                    .bind(engine::random_hex(16))
                    .bind(&user)
                    .bind(engine::random_hex(32))
                    .bind(msat)
                    .execute(&mut *conn)
                    .await?;
                    sqlx::query("INSERT INTO desk_balances (user_id, balance_msat) VALUES ($1, 0)")
                        .bind(&user)
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .await
            .expect("a deposit");
    }
    accounts
}

struct Row {
    side: Side,
    quantity: u64,
    margin: u64,
    leverage: Leverage,
    entry: Price,
    liquidation: Option<Price>,
    takeprofit: Option<Price>,
    stoploss: Option<Price>,
}

/// Position `n` of the book (see [`load_book`]): entered at the index, with
/// the leverage its liquidation band asks.
fn row(n: u64, args: &Args, index: Price) -> Row {
    let in_band = n < args.liquidations;
    let side = if in_band || n.is_multiple_of(2) {
        Side::Buy
    } else {
        Side::Sell
    };
    // Spread the leverages, hence the liquidation prices, by position number.
    let leverage = if in_band {
        Leverage::from_ten_thousandths(1_950_000 + (n % 50) * 100)
    } else {
        Leverage::whole(2 + (n % 48) as u32)
    };
    let quantity = 100 + n % 1000;
    let margin = contract::margin_for(quantity, index, leverage)
        .unwrap()
        .max(1);
    let liquidation = match contract::liquidation(side, quantity, index, margin).unwrap() {
        Liquidation::At(price) => Some(price),
        Liquidation::Never => None,
    };
    let (takeprofit, stoploss) = if n.is_multiple_of(5) && !in_band {
        let far = |cents: i64| Some(Price::from_cents((index.cents() as i64 + cents) as u64));
        match side {
            Side::Buy => (
                far(5_000_000),
                liquidation.map(|l| Price::from_cents(l.cents() + 100)),
            ),
            Side::Sell => (
                far(-5_000_000),
                liquidation.map(|l| Price::from_cents(l.cents() - 100)),
            ),
        }
    } else {
        (None, None)
    };
    Row {
        side,
        quantity,
        margin,
        leverage,
        entry: index,
        liquidation,
        takeprofit,
        stoploss,
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The process's resident memory (Linux), in bytes.
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}
