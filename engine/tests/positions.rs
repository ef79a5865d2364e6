//! The futures desk on both databases: positions opened, valued, triggered and
//! closed through the engine, every figure checked against the contract's
//! formulas (and the spec's worked example by hand); races for one position or
//! one balance, across two processes on PostgreSQL; orders that must change
//! nothing; the tick's scale (it reads the trigger indexes, never the table);
//! and the price's history and its crossing between processes. Every story
//! ends with the exchange's books balanced.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::desk::contract::{self, Leverage, Liquidation, Price, Side};
use engine::desk::positions::{ClosedBy, State, TRIGGER_PROBE};
use engine::desk::{
    DeskConfig, Filter, Order, OrderType, Position, Quote, TickReport, TriggerChange,
};
use engine::events::{EventKind, Topic};
use engine::simnet::{ChannelState, PayRequest};
use engine::{Backend, Engine, Error, Msat, Settings, User};
use sqlx::Row;

testdb::on_both_databases!(
    open_engine;
    the_specs_worked_short_holds_through_the_engine,
    a_long_takes_its_profit_and_a_short_is_stopped_out,
    a_position_reaching_its_liquidation_leaves_the_trader_nothing,
    a_limit_order_fills_when_the_price_crosses_it_and_another_is_cancelled,
    a_limit_order_filled_through_a_gap_past_its_liquidation_is_liquidated_at_once,
    adding_margin_lowers_the_leverage_and_moves_the_liquidation_away,
    takeprofit_and_stoploss_are_set_checked_and_removed,
    concurrent_openings_take_only_what_the_balance_holds,
    concurrent_openings_never_pass_the_open_positions_cap,
    closes_racing_a_liquidation_settle_each_position_once,
    closes_racing_a_takeprofit_settle_each_position_once,
    a_cancel_racing_a_fill_settles_once,
    many_closes_of_one_position_settle_it_once,
    adding_margin_racing_a_close_moves_each_sat_once,
    orders_that_break_a_rule_change_nothing,
    a_malformed_pid_or_another_accounts_pid_changes_nothing,
    a_stale_price_refuses_trading_and_triggers_nothing,
    new_positions_switched_off_answer_unavailable_and_closes_still_work,
    a_tick_over_twenty_thousand_positions_settles_exactly_what_it_reaches,
    the_history_answers_oldest_first_within_its_range,
    a_tick_of_a_quote_already_superseded_triggers_nothing,
);

const PASSWORD: &str = "Correct-horse-7";
const CHANNEL: Msat = Msat::from_sat(1_000_000);
/// The index every story starts from (the market's default start).
const START: &str = "100000";
/// How many times each race is run.
const ROUNDS: usize = 6;
/// How many tasks race at once.
const RACERS: usize = 16;

/// The desk as it runs by default (2 bp spread), so the stories see longs
/// enter at the offer and leave at the bid, shorts the opposite.
fn settings() -> Settings {
    Settings::default()
}

async fn open_engine(url: &str) -> Engine {
    Engine::open(url, settings()).await.expect("engine opens")
}

/// A second server on the same database with its own desk settings.
async fn second_server(engine: &Engine, desk: DeskConfig) -> Engine {
    Engine::open(&engine.db.url(), Settings { desk, ..settings() })
        .await
        .expect("second server opens")
}

/// The engines a race runs on: this one, and on PostgreSQL a second process
/// on the same database, so the race is between connections and not only
/// through one process's writer.
async fn processes(engine: &Engine) -> Vec<Engine> {
    match engine.db.backend() {
        Backend::Sqlite => vec![engine.clone()],
        Backend::Postgres => vec![
            engine.clone(),
            second_server(engine, DeskConfig::default()).await,
        ],
    }
}

fn usd(text: &str) -> Price {
    Price::parse(text).expect("a price")
}

fn sats(value: u64) -> i64 {
    i64::try_from(value).unwrap()
}

struct Trader {
    user: User,
    node: String,
}

impl Trader {
    fn id(&self) -> &str {
        &self.user.id.0
    }
}

/// An account whose node has an open channel to the hub, and `deposit` sats on
/// its trading balance, paid over the simnet like any deposit.
async fn trader(engine: &Engine, name: &str, deposit: i64) -> Trader {
    let user = engine
        .register(name, PASSWORD, None, &format!("client-of-{name}"))
        .await
        .unwrap();
    let node = engine.simnet.node_of_user(&user.id.0).await.unwrap().pubkey;
    let simnet = &engine.simnet;
    let address = simnet.node(&node).await.unwrap().address;
    simnet
        .faucet(&address, Msat::from_sat(2_000_000))
        .await
        .unwrap();
    simnet.mine(1).await.unwrap();
    let hub = simnet.hub().await.unwrap().pubkey;
    simnet.open_channel(&node, &hub, CHANNEL).await.unwrap();
    simnet.mine(3).await.unwrap();
    simnet.mine(3).await.unwrap();
    let open = simnet
        .live_channels(&node)
        .await
        .unwrap()
        .iter()
        .any(|c| c.state == ChannelState::Open);
    assert!(open, "{name}'s channel is open");
    let trader = Trader { user, node };
    let issued = engine
        .desk
        .deposit(trader.id(), Msat::from_sat(deposit))
        .await
        .unwrap();
    engine
        .simnet
        .pay(PayRequest::new(&trader.node, &issued.bolt11, None))
        .await
        .unwrap();
    assert_eq!(balance(engine, &trader).await, deposit);
    trader
}

/// The trading balance, in sats (every movement of a position is whole sats).
async fn balance(engine: &Engine, trader: &Trader) -> i64 {
    let msat = engine.desk.balance(trader.id()).await.unwrap();
    assert_eq!(
        msat.0 % 1000,
        0,
        "a trading balance in whole sats: {msat:?}"
    );
    msat.sat()
}

/// The house's result, in sats.
async fn house(engine: &Engine) -> i64 {
    engine.desk.audit().await.unwrap().house.sat()
}

async fn assert_books(engine: &Engine) {
    let books = engine.desk.audit().await.unwrap();
    assert!(books.balanced(), "the exchange's books: {books:?}");
    let margins: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(margin), 0) AS BIGINT) FROM desk_positions \
         WHERE state IN ('pending', 'open')",
    )
    .fetch_one(engine.db.pool())
    .await
    .unwrap();
    assert_eq!(books.margins, Msat::from_sat(margins), "{books:?}");
}

/// Moves the index on the first process and waits until every other one
/// quotes it too.
async fn quote_at(processes: &[Engine], index: Price) -> Quote {
    let (quote, _) = processes[0].desk.move_price(index).await.unwrap();
    for other in &processes[1..] {
        quoted(other, quote).await;
    }
    quote
}

/// Waits until `engine` quotes `quote` (published by another process).
async fn quoted(engine: &Engine, quote: Quote) {
    let mut watching = engine.desk.market.watch();
    tokio::time::timeout(
        Duration::from_secs(5),
        watching.wait_for(|latest| latest.is_some_and(|l| l.at_ms >= quote.at_ms)),
    )
    .await
    .expect("the quote crosses to the other process in time")
    .unwrap();
    assert_eq!(engine.desk.market.latest(), Some(quote));
}

fn market(side: Side, quantity: u64, leverage: u32) -> Order {
    Order {
        kind: Some(OrderType::Market),
        side: Some(side),
        quantity: Some(quantity),
        leverage: Some(Leverage::whole(leverage)),
        ..Order::default()
    }
}

fn limit(side: Side, quantity: u64, leverage: u32, price: Price) -> Order {
    Order {
        kind: Some(OrderType::Limit),
        price: Some(price),
        ..market(side, quantity, leverage)
    }
}

/// Checks a position just opened (or filled) at `entry` against the
/// contract: its margin, leverage and liquidation.
#[track_caller]
fn assert_entered(
    position: &Position,
    side: Side,
    quantity: u64,
    leverage: Leverage,
    entry: Price,
) {
    let margin = contract::margin_for(quantity, entry, leverage).unwrap();
    assert_eq!(position.side, side);
    assert_eq!(position.quantity, quantity);
    assert_eq!(position.price, entry);
    assert_eq!(position.margin, margin);
    assert_eq!(position.leverage, leverage);
    assert_eq!(
        position.liquidation,
        contract::liquidation(side, quantity, entry, margin).unwrap()
    );
    assert_eq!(position.pl, None);
    assert_eq!(position.closed_by, None);
}

/// What a close of `position` at `exit` realises: the contract's P&L, never a
/// loss beyond the margin.
fn realised(position: &Position, exit: Price) -> i64 {
    contract::pl(position.side, position.quantity, position.price, exit)
        .unwrap()
        .max(-sats(position.margin))
}

/// What that close pays back to the balance.
fn paid(position: &Position, exit: Price) -> i64 {
    sats(contract::settlement(position.margin, realised(position, exit)).unwrap())
}

/// Checks a closed position against the contract: closed by `by` at `exit`
/// with the P&L of that exit; answers what it paid.
#[track_caller]
fn assert_closed(closed: &Position, by: ClosedBy, exit: Price) -> i64 {
    assert_eq!(closed.state, State::Closed, "{closed:?}");
    assert_eq!(closed.closed_by, Some(by), "{closed:?}");
    assert_eq!(closed.exit, Some(exit), "{closed:?}");
    let pl = match by {
        ClosedBy::Liquidation => -sats(closed.margin),
        _ => realised(closed, exit),
    };
    assert_eq!(closed.pl, Some(pl), "{closed:?}");
    assert!(closed.closed_at_ms.is_some());
    sats(contract::settlement(closed.margin, pl).unwrap())
}

/// A quote of the desk's spread whose bid is exactly `bid` (searched cent by
/// cent above it).
fn index_with_bid(bid: Price) -> Price {
    let spread = DeskConfig::default().market.spread_bps;
    (bid.cents()..bid.cents() + 100_000)
        .map(Price::from_cents)
        .find(|index| Quote::around(*index, spread, 0).bid == bid)
        .expect("an index quoting that bid")
}

/// A quote of the desk's spread whose offer is exactly `offer`.
fn index_with_offer(offer: Price) -> Price {
    let spread = DeskConfig::default().market.spread_bps;
    (offer.cents().saturating_sub(100_000)..=offer.cents())
        .rev()
        .map(Price::from_cents)
        .find(|index| Quote::around(*index, spread, 0).offer == offer)
        .expect("an index quoting that offer")
}

#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(outcome: engine::Result<T>, field: &str) {
    match outcome {
        Err(Error::Invalid { field: got, .. }) if got == field => {}
        other => panic!("expected Invalid on {field}, got {other:?}"),
    }
}

#[track_caller]
fn assert_unavailable<T: std::fmt::Debug>(outcome: engine::Result<T>) {
    assert!(
        matches!(outcome, Err(Error::Unavailable(_))),
        "expected Unavailable, got {outcome:?}"
    );
}

/// Everything a refused request must leave alone: every trading balance,
/// every position row, the books.
#[derive(Debug, PartialEq)]
struct Snapshot {
    balances: Vec<(String, i64)>,
    positions: Vec<String>,
    books: engine::desk::Books,
}

async fn snapshot(engine: &Engine) -> Snapshot {
    let balances = sqlx::query("SELECT user_id, balance_msat FROM desk_balances ORDER BY user_id")
        .fetch_all(engine.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get("user_id"), r.get("balance_msat")))
        .collect();
    let positions = sqlx::query(
        "SELECT id, pid, state, quantity, margin, leverage, price_cents, liquidation_cents, \
         takeprofit_cents, stoploss_cents, exit_cents, pl, closed_by, filled_at, closed_at, \
         canceled_at FROM desk_positions ORDER BY id",
    )
    .fetch_all(engine.db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        let n = |c: &str| r.get::<Option<i64>, _>(c);
        format!(
            "{} {} {} q{:?} m{:?} l{:?} p{:?} liq{:?} tp{:?} sl{:?} x{:?} pl{:?} {:?} {:?} {:?} {:?}",
            r.get::<i64, _>("id"),
            r.get::<String, _>("pid"),
            r.get::<String, _>("state"),
            n("quantity"),
            n("margin"),
            n("leverage"),
            n("price_cents"),
            n("liquidation_cents"),
            n("takeprofit_cents"),
            n("stoploss_cents"),
            n("exit_cents"),
            n("pl"),
            r.get::<Option<String>, _>("closed_by"),
            n("filled_at"),
            n("closed_at"),
            n("canceled_at"),
        )
    })
    .collect();
    Snapshot {
        balances,
        positions,
        books: engine.desk.audit().await.unwrap(),
    }
}

/// Runs `tasks` at once (released together by a barrier) and answers their
/// outcomes in order.
async fn race<T, F>(tasks: Vec<F>) -> Vec<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(tasks.len()));
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|task| {
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                task.await
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for handle in handles {
        outcomes.push(handle.await.expect("a racer panicked"));
    }
    outcomes
}

type Boxed<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

// ---------------------------------------------------------------- stories

async fn the_specs_worked_short_holds_through_the_engine(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 500_000).await;
    let house_before = house(&engine).await;

    // The index at 9991 quotes a bid of exactly 9990.0, where a short enters.
    let (quote, report) = desk.move_price(usd("9991")).await.unwrap();
    assert_eq!(quote.bid, usd("9990"));
    assert_eq!(report, TickReport::default());

    // Short 682 contracts at leverage 50: the spec's margin and liquidation.
    let short = desk
        .open_position(&alice.user, market(Side::Sell, 682, 50))
        .await
        .unwrap();
    assert_eq!(short.state, State::Open);
    assert_eq!(short.price, usd("9990"));
    assert_eq!(short.margin, 136_536);
    assert_eq!(short.liquidation, Liquidation::At(usd("10194")));
    assert_eq!(
        short.liquidation,
        Liquidation::At(Price::parse("10194.0").unwrap())
    );
    assert_eq!(short.leverage.to_string(), "50.0000");
    assert_entered(&short, Side::Sell, 682, Leverage::whole(50), usd("9990"));
    assert_eq!(balance(&engine, &alice).await, 500_000 - 136_536);
    assert_books(&engine).await;

    // The offer rises to exactly 10010.0: short of the liquidation, nothing
    // triggers; valued there the short has lost 13,640 sats.
    let (quote, report) = desk.move_price(usd("10009")).await.unwrap();
    assert_eq!(quote.offer, usd("10010"));
    assert_eq!(report, TickReport::default());
    let held = desk.position(&alice.user, &short.pid).await.unwrap();
    assert_eq!(held.state, State::Open);
    assert_eq!(held.pl_at(Some(&quote)), -13_640);

    // Closed there: P&L -13,640, and 136,536 - 13,640 = 122,896 sats back.
    let closed = desk.close_position(&alice.user, &short.pid).await.unwrap();
    assert_eq!(closed.pl, Some(-13_640));
    assert_eq!(
        assert_closed(&closed, ClosedBy::Manual, usd("10010")),
        122_896
    );
    assert_eq!(balance(&engine, &alice).await, 500_000 - 136_536 + 122_896);
    assert_eq!(house(&engine).await, house_before + 13_640);
    assert!(desk
        .positions(&alice.user, Filter::Open)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        desk.positions(&alice.user, Filter::Closed).await.unwrap(),
        vec![closed]
    );
    assert_books(&engine).await;
}

async fn a_long_takes_its_profit_and_a_short_is_stopped_out(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 500_000).await;
    let mut events = engine
        .bus
        .subscribe(&[Topic::Account(alice.id().to_string())]);
    let (quote, _) = desk.move_price(usd(START)).await.unwrap();
    // 2 bp around 100,000: 10 USD each side.
    assert_eq!((quote.bid, quote.offer), (usd("99990"), usd("100010")));

    // A long of 1,000 contracts at leverage 10 enters at the offer, with a
    // take-profit at 101,000.
    let order = Order {
        takeprofit: Some(usd("101000")),
        ..market(Side::Buy, 1000, 10)
    };
    let long = desk.open_position(&alice.user, order).await.unwrap();
    assert_entered(&long, Side::Buy, 1000, Leverage::whole(10), usd("100010"));
    // 1000 * 1e8 / (100,010 * 10), rounded down.
    assert_eq!(long.margin, 99_990);
    assert_eq!(long.takeprofit, Some(usd("101000")));
    let mut expected = 500_000 - 99_990;
    assert_eq!(balance(&engine, &alice).await, expected);

    // A short of 1,000 at leverage 20 enters at the bid, with a stop-loss at
    // 103,000 (inside the liquidation).
    let order = Order {
        stoploss: Some(usd("103000")),
        ..market(Side::Sell, 1000, 20)
    };
    let short = desk.open_position(&alice.user, order).await.unwrap();
    assert_entered(&short, Side::Sell, 1000, Leverage::whole(20), usd("99990"));
    let Liquidation::At(short_liquidation) = short.liquidation else {
        panic!("a short at leverage 20 is liquidated somewhere")
    };
    assert!(usd("103000") < short_liquidation);
    expected -= sats(short.margin);
    assert_eq!(balance(&engine, &alice).await, expected);
    assert_books(&engine).await;

    // The bid reaches 100,999.5: half a dollar short of the take-profit, so
    // nothing closes.
    let near = index_with_bid(usd("100999.5"));
    let (_, report) = desk.move_price(near).await.unwrap();
    assert_eq!(report, TickReport::default());

    // The bid reaches 101,000.0: the long takes its profit at the bid.
    let (quote, report) = desk
        .move_price(index_with_bid(usd("101000")))
        .await
        .unwrap();
    assert_eq!(
        report,
        TickReport {
            takeprofit: 1,
            ..TickReport::default()
        }
    );
    let closed = desk.position(&alice.user, &long.pid).await.unwrap();
    let back = assert_closed(&closed, ClosedBy::Takeprofit, quote.bid);
    // 1000 * 1e8 * (1/100,010 - 1/101,000), to the nearest sat.
    assert_eq!(closed.pl, Some(9_801));
    assert_eq!(back, 99_990 + 9_801);
    expected += back;
    assert_eq!(balance(&engine, &alice).await, expected);
    assert_books(&engine).await;

    // The offer reaches the short's stop-loss: it closes there, the margin
    // covering the loss.
    let (quote, report) = desk
        .move_price(index_with_offer(usd("103000")))
        .await
        .unwrap();
    assert_eq!(
        report,
        TickReport {
            stoploss: 1,
            ..TickReport::default()
        }
    );
    let stopped = desk.position(&alice.user, &short.pid).await.unwrap();
    let back = assert_closed(&stopped, ClosedBy::Stoploss, quote.offer);
    // 1000 * 1e8 * (1/99,990 - 1/103,000): a loss of 29,226 sats.
    assert_eq!(stopped.pl, Some(-29_226));
    assert_eq!(back, sats(short.margin) - 29_226);
    assert!(back > 0);
    expected += back;
    assert_eq!(balance(&engine, &alice).await, expected);
    assert_books(&engine).await;

    // The account heard each step, with the balance after it.
    let mut heard = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(500), events.recv()).await
    {
        if let EventKind::PositionChanged {
            pid,
            what,
            balance_msat,
        } = &event.kind
        {
            heard.push((pid.clone(), what.clone(), *balance_msat / 1000));
        }
    }
    let opened_long = 500_000 - 99_990;
    let opened_short = opened_long - sats(short.margin);
    let took_profit = opened_short + 99_990 + 9_801;
    assert_eq!(
        heard,
        vec![
            (long.pid.clone(), "opened".to_string(), opened_long),
            (short.pid.clone(), "opened".to_string(), opened_short),
            (long.pid.clone(), "takeprofit".to_string(), took_profit),
            (short.pid.clone(), "stoploss".to_string(), expected),
        ]
    );
}

async fn a_position_reaching_its_liquidation_leaves_the_trader_nothing(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 100_000).await;
    desk.move_price(usd(START)).await.unwrap();
    let long = desk
        .open_position(&alice.user, market(Side::Buy, 1000, 50))
        .await
        .unwrap();
    assert_entered(&long, Side::Buy, 1000, Leverage::whole(50), usd("100010"));
    assert_eq!(long.margin, 19_998);
    // 1 / (1/100,010 + 19,998 / 1e11) = 98,049.02...: the nearest tick.
    assert_eq!(long.liquidation, Liquidation::At(usd("98049")));
    let after_open = balance(&engine, &alice).await;
    assert_eq!(after_open, 100_000 - 19_998);
    let house_before = house(&engine).await;

    // A bid one tick above the liquidation leaves it open.
    let (_, report) = desk
        .move_price(index_with_bid(usd("98049.5")))
        .await
        .unwrap();
    assert_eq!(report, TickReport::default());
    assert_eq!(
        desk.position(&alice.user, &long.pid).await.unwrap().state,
        State::Open
    );

    // A bid at the liquidation price liquidates it: the trader gets nothing
    // back, the house keeps the margin.
    let (quote, report) = desk.move_price(index_with_bid(usd("98049"))).await.unwrap();
    assert_eq!(
        report,
        TickReport {
            liquidated: 1,
            ..TickReport::default()
        }
    );
    let liquidated = desk.position(&alice.user, &long.pid).await.unwrap();
    assert_eq!(
        assert_closed(&liquidated, ClosedBy::Liquidation, quote.bid),
        0
    );
    assert_eq!(liquidated.pl, Some(-19_998));
    assert_eq!(balance(&engine, &alice).await, after_open);
    assert_eq!(house(&engine).await, house_before + 19_998);
    assert_books(&engine).await;

    // It cannot be closed, liquidated or credited again.
    assert_invalid(desk.close_position(&alice.user, &long.pid).await, "pid");
    let (_, report) = desk.move_price(usd("90000")).await.unwrap();
    assert_eq!(report, TickReport::default());
    assert_eq!(balance(&engine, &alice).await, after_open);
    assert_eq!(house(&engine).await, house_before + 19_998);
    assert_books(&engine).await;
}

async fn a_limit_order_fills_when_the_price_crosses_it_and_another_is_cancelled(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 500_000).await;
    desk.move_price(usd(START)).await.unwrap();

    // A buy limit at 99,000: its margin leaves the balance at once, counted
    // in the books as a margin; it waits.
    let buy = desk
        .open_position(&alice.user, limit(Side::Buy, 1000, 10, usd("99000")))
        .await
        .unwrap();
    assert_eq!(buy.state, State::Pending);
    assert_eq!(buy.filled_at_ms, None);
    assert_entered(&buy, Side::Buy, 1000, Leverage::whole(10), usd("99000"));
    let mut expected = 500_000 - sats(buy.margin);
    assert_eq!(balance(&engine, &alice).await, expected);
    assert_books(&engine).await;

    // A sell limit at 101,000 waits too.
    let sell = desk
        .open_position(&alice.user, limit(Side::Sell, 500, 5, usd("101000")))
        .await
        .unwrap();
    assert_eq!(sell.state, State::Pending);
    assert_entered(&sell, Side::Sell, 500, Leverage::whole(5), usd("101000"));
    expected -= sats(sell.margin);
    assert_eq!(balance(&engine, &alice).await, expected);
    assert_books(&engine).await;

    // An offer half a dollar above the buy's limit fills nothing.
    let (_, report) = desk
        .move_price(index_with_offer(usd("99000.5")))
        .await
        .unwrap();
    assert_eq!(report, TickReport::default());

    // The offer reaches 99,000: the buy fills at its price, with the margin
    // it already holds; nothing else moves.
    let (_, report) = desk
        .move_price(index_with_offer(usd("99000")))
        .await
        .unwrap();
    assert_eq!(
        report,
        TickReport {
            filled: 1,
            ..TickReport::default()
        }
    );
    let filled = desk.position(&alice.user, &buy.pid).await.unwrap();
    assert_eq!(filled.state, State::Open);
    assert!(filled.filled_at_ms.is_some());
    assert_entered(&filled, Side::Buy, 1000, Leverage::whole(10), usd("99000"));
    assert_eq!(balance(&engine, &alice).await, expected);
    assert_books(&engine).await;
    // A filled order is closed, not cancelled.
    assert_invalid(desk.cancel_position(&alice.user, &buy.pid).await, "pid");

    // The sell is cancelled: its whole margin comes back, once.
    let canceled = desk.cancel_position(&alice.user, &sell.pid).await.unwrap();
    assert_eq!(canceled.state, State::Canceled);
    assert!(canceled.canceled_at_ms.is_some());
    expected += sats(sell.margin);
    assert_eq!(balance(&engine, &alice).await, expected);
    assert_books(&engine).await;
    assert_invalid(desk.cancel_position(&alice.user, &sell.pid).await, "pid");
    assert_invalid(desk.close_position(&alice.user, &sell.pid).await, "pid");
    assert_eq!(balance(&engine, &alice).await, expected);
    // A price crossing the cancelled limit fills nothing.
    let (_, report) = desk.move_price(usd("102000")).await.unwrap();
    assert_eq!(report, TickReport::default());
    assert_eq!(
        desk.position(&alice.user, &sell.pid).await.unwrap().state,
        State::Canceled
    );

    // The filled buy closes at the bid with the P&L from its limit price.
    let quote = desk.market.latest().unwrap();
    let closed = desk.close_position(&alice.user, &buy.pid).await.unwrap();
    expected += assert_closed(&closed, ClosedBy::Manual, quote.bid);
    assert!(
        closed.pl.unwrap() > 0,
        "bought at 99,000, sold near 102,000"
    );
    assert_eq!(balance(&engine, &alice).await, expected);
    assert_books(&engine).await;

    // A limit already as good as the quote fills at once, at the quote.
    let quote = desk.market.latest().unwrap();
    let eager = desk
        .open_position(&alice.user, limit(Side::Buy, 100, 10, usd("110000")))
        .await
        .unwrap();
    assert_eq!(eager.state, State::Open);
    assert_entered(&eager, Side::Buy, 100, Leverage::whole(10), quote.offer);
    assert_books(&engine).await;
}

async fn a_limit_order_filled_through_a_gap_past_its_liquidation_is_liquidated_at_once(
    engine: Engine,
) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 100_000).await;
    desk.move_price(usd(START)).await.unwrap();
    let buy = desk
        .open_position(&alice.user, limit(Side::Buy, 1000, 50, usd("99000")))
        .await
        .unwrap();
    let Liquidation::At(liquidation) = buy.liquidation else {
        panic!("a long is liquidated somewhere")
    };
    let after_open = balance(&engine, &alice).await;
    let house_before = house(&engine).await;

    // The price gaps from 100,000 to 90,000 in one tick: the order's limit is
    // crossed (it fills at 99,000) and so is its liquidation. It must not
    // stay open past its liquidation until a later tick.
    let (quote, report) = desk.move_price(usd("90000")).await.unwrap();
    assert!(quote.bid < liquidation);
    assert_eq!(
        report,
        TickReport {
            filled: 1,
            liquidated: 1,
            ..TickReport::default()
        }
    );
    let gone = desk.position(&alice.user, &buy.pid).await.unwrap();
    assert_eq!(assert_closed(&gone, ClosedBy::Liquidation, quote.bid), 0);
    assert_eq!(balance(&engine, &alice).await, after_open);
    assert_eq!(house(&engine).await, house_before + sats(buy.margin));
    assert_books(&engine).await;
}

async fn adding_margin_lowers_the_leverage_and_moves_the_liquidation_away(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 200_000).await;
    desk.move_price(usd(START)).await.unwrap();
    let long = desk
        .open_position(&alice.user, market(Side::Buy, 1000, 50))
        .await
        .unwrap();
    assert_eq!(long.margin, 19_998);
    let Liquidation::At(first) = long.liquidation else {
        panic!("a long is liquidated somewhere")
    };
    let before = balance(&engine, &alice).await;

    // 19,998 more sats: the margin doubles, the leverage halves (a hair more,
    // the margin was rounded down), the liquidation moves down.
    let added = desk
        .add_margin(&alice.user, &long.pid, 19_998)
        .await
        .unwrap();
    assert_eq!(added.margin, 39_996);
    assert_eq!(
        added.leverage,
        Leverage::of(1000, usd("100010"), 39_996).unwrap()
    );
    assert_eq!(added.leverage.to_string(), "25.0000");
    let moved = contract::liquidation(Side::Buy, 1000, usd("100010"), 39_996).unwrap();
    assert_eq!(added.liquidation, moved);
    let Liquidation::At(second) = moved else {
        panic!("still liquidated somewhere")
    };
    // 1 / (1/100,010 + 39,996 / 1e11) = 96,163.46...: the nearest tick.
    assert_eq!(second, usd("96163.5"));
    assert!(second < first);
    assert_eq!(balance(&engine, &alice).await, before - 19_998);
    assert_books(&engine).await;

    // The old liquidation price no longer liquidates it; the new one does,
    // and the house keeps the whole margin.
    let (_, report) = desk.move_price(index_with_bid(first)).await.unwrap();
    assert_eq!(report, TickReport::default());
    let house_before = house(&engine).await;
    let (quote, report) = desk.move_price(index_with_bid(second)).await.unwrap();
    assert_eq!(report.liquidated, 1);
    let gone = desk.position(&alice.user, &long.pid).await.unwrap();
    assert_closed(&gone, ClosedBy::Liquidation, quote.bid);
    assert_eq!(house(&engine).await, house_before + 39_996);
    assert_eq!(balance(&engine, &alice).await, before - 19_998);
    // Margin cannot be added to a closed position.
    assert_invalid(desk.add_margin(&alice.user, &long.pid, 1_000).await, "pid");
    assert_books(&engine).await;

    // A fractional leverage is exact: 2.5 needs 1000 * 1e8 / (price * 2.5).
    let quote = desk.market.latest().unwrap();
    let order = Order {
        leverage: Some(Leverage::parse("2.5").unwrap()),
        ..market(Side::Sell, 100, 1)
    };
    let short = desk.open_position(&alice.user, order).await.unwrap();
    assert_entered(
        &short,
        Side::Sell,
        100,
        Leverage::parse("2.5").unwrap(),
        quote.bid,
    );
    assert_eq!(short.leverage.to_string(), "2.5000");
    assert_books(&engine).await;
}

async fn takeprofit_and_stoploss_are_set_checked_and_removed(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 200_000).await;
    desk.move_price(usd(START)).await.unwrap();
    let long = desk
        .open_position(&alice.user, market(Side::Buy, 1000, 20))
        .await
        .unwrap();
    let covered = contract::last_covered(Side::Buy, 1000, long.price, long.margin).unwrap();
    let Liquidation::At(covered) = covered else {
        panic!("a long is covered down to some price")
    };

    // Set a take-profit, then a stop-loss: one each time, the other kept.
    let set = desk
        .update_position(
            &alice.user,
            &long.pid,
            TriggerChange::Takeprofit(usd("102000")),
        )
        .await
        .unwrap();
    assert_eq!((set.takeprofit, set.stoploss), (Some(usd("102000")), None));
    let set = desk
        .update_position(
            &alice.user,
            &long.pid,
            TriggerChange::Stoploss(usd("98000")),
        )
        .await
        .unwrap();
    assert_eq!(
        (set.takeprofit, set.stoploss),
        (Some(usd("102000")), Some(usd("98000")))
    );

    // Checked as at creation: a take-profit below the bid, a stop-loss above
    // it, a stop-loss at the last price the margin covers: refused, nothing
    // changed.
    let before = snapshot(&engine).await;
    for (change, field) in [
        (TriggerChange::Takeprofit(usd("99990")), "takeprofit"),
        (TriggerChange::Takeprofit(usd("99000")), "takeprofit"),
        (TriggerChange::Stoploss(usd("99990")), "stoploss"),
        (TriggerChange::Stoploss(usd("100500")), "stoploss"),
        (TriggerChange::Stoploss(covered), "stoploss"),
        (
            TriggerChange::Stoploss(Price::from_cents(covered.cents() - 10)),
            "stoploss",
        ),
        (TriggerChange::Takeprofit(usd("102000.05")), "takeprofit"),
    ] {
        assert_invalid(
            desk.update_position(&alice.user, &long.pid, change).await,
            field,
        );
        assert_eq!(snapshot(&engine).await, before, "{change:?}");
    }
    // One grid step above the last covered price is accepted.
    let just = Price::from_cents(covered.cents() + 10);
    let set = desk
        .update_position(&alice.user, &long.pid, TriggerChange::Stoploss(just))
        .await
        .unwrap();
    assert_eq!(set.stoploss, Some(just));

    // Zero removes the take-profit: a bid beyond it closes nothing.
    let set = desk
        .update_position(
            &alice.user,
            &long.pid,
            TriggerChange::Takeprofit(Price::default()),
        )
        .await
        .unwrap();
    assert_eq!((set.takeprofit, set.stoploss), (None, Some(just)));
    let (_, report) = desk.move_price(usd("103000")).await.unwrap();
    assert_eq!(report, TickReport::default());

    // Zero removes the stop-loss too: a bid below it (above the liquidation)
    // closes nothing either.
    desk.update_position(
        &alice.user,
        &long.pid,
        TriggerChange::Stoploss(Price::default()),
    )
    .await
    .unwrap();
    let (_, report) = desk
        .move_price(index_with_bid(Price::from_cents(covered.cents() + 50)))
        .await
        .unwrap();
    assert_eq!(report, TickReport::default());
    let held = desk.position(&alice.user, &long.pid).await.unwrap();
    assert_eq!(
        (held.state, held.takeprofit, held.stoploss),
        (State::Open, None, None)
    );

    // A closed position takes no trigger.
    desk.close_position(&alice.user, &long.pid).await.unwrap();
    let before = snapshot(&engine).await;
    assert_invalid(
        desk.update_position(
            &alice.user,
            &long.pid,
            TriggerChange::Takeprofit(usd("200000")),
        )
        .await,
        "pid",
    );
    assert_eq!(snapshot(&engine).await, before);
    assert_books(&engine).await;
}

// ------------------------------------------------------------------ races

async fn concurrent_openings_take_only_what_the_balance_holds(engine: Engine) {
    let processes = processes(&engine).await;
    let alice = trader(&engine, "alice", 100_000).await;
    let quote = quote_at(&processes, usd(START)).await;
    let order = Order {
        kind: Some(OrderType::Market),
        side: Some(Side::Buy),
        margin: Some(15_000),
        leverage: Some(Leverage::whole(10)),
        ..Order::default()
    };
    let tasks: Vec<Boxed<_>> = (0..RACERS)
        .map(|i| {
            let (desk, user, order) = (
                processes[i % processes.len()].desk.clone(),
                alice.user.clone(),
                order.clone(),
            );
            Box::pin(async move { desk.open_position(&user, order).await }) as Boxed<_>
        })
        .collect();
    let outcomes: Vec<engine::Result<Position>> = race(tasks).await;
    let (opened, refused): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|o| o.is_ok());
    // 100,000 sats hold six margins of 15,000, not a seventh.
    assert_eq!(opened.len(), 6, "{refused:?}");
    for refusal in refused {
        assert_invalid(refusal, "margin");
    }
    let quantity = contract::quantity_for(15_000, quote.offer, Leverage::whole(10)).unwrap();
    for position in opened {
        let position = position.unwrap();
        assert_eq!((position.margin, position.quantity), (15_000, quantity));
    }
    assert_eq!(balance(&engine, &alice).await, 10_000);
    assert_eq!(
        engine
            .desk
            .positions(&alice.user, Filter::Open)
            .await
            .unwrap()
            .len(),
        6
    );
    assert_books(&engine).await;
}

async fn concurrent_openings_never_pass_the_open_positions_cap(engine: Engine) {
    let processes = processes(&engine).await;
    let cap = engine.desk.config().open_positions_max as usize;
    assert_eq!(cap, 50);
    let alice = trader(&engine, "alice", 100_000).await;
    quote_at(&processes, usd(START)).await;
    let order = Order {
        kind: Some(OrderType::Market),
        side: Some(Side::Sell),
        margin: Some(1_000),
        leverage: Some(Leverage::whole(10)),
        ..Order::default()
    };
    for _ in 0..cap - 5 {
        engine
            .desk
            .open_position(&alice.user, order.clone())
            .await
            .unwrap();
    }
    // Sixteen openings at once for the last five places.
    let tasks: Vec<Boxed<_>> = (0..RACERS)
        .map(|i| {
            let (desk, user, order) = (
                processes[i % processes.len()].desk.clone(),
                alice.user.clone(),
                order.clone(),
            );
            Box::pin(async move { desk.open_position(&user, order).await }) as Boxed<_>
        })
        .collect();
    let outcomes: Vec<engine::Result<Position>> = race(tasks).await;
    let (opened, refused): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|o| o.is_ok());
    assert_eq!(opened.len(), 5, "{refused:?}");
    for refusal in refused {
        assert_invalid(refusal, "positions");
    }
    let open = engine
        .desk
        .positions(&alice.user, Filter::Open)
        .await
        .unwrap();
    assert_eq!(open.len(), cap);
    assert_eq!(balance(&engine, &alice).await, 100_000 - 1_000 * cap as i64);
    assert_books(&engine).await;

    // At the cap, another opening (a limit order too) is refused and changes
    // nothing; closing one makes room for exactly one.
    let before = snapshot(&engine).await;
    assert_invalid(
        engine.desk.open_position(&alice.user, order.clone()).await,
        "positions",
    );
    let pending = Order {
        kind: Some(OrderType::Limit),
        price: Some(usd("120000")),
        ..order.clone()
    };
    assert_invalid(
        engine.desk.open_position(&alice.user, pending).await,
        "positions",
    );
    assert_eq!(snapshot(&engine).await, before);
    engine
        .desk
        .close_position(&alice.user, &open[0].pid)
        .await
        .unwrap();
    engine
        .desk
        .open_position(&alice.user, order.clone())
        .await
        .unwrap();
    assert_invalid(
        engine.desk.open_position(&alice.user, order).await,
        "positions",
    );
    assert_books(&engine).await;
}

/// What one racer of [`closes_racing_a_move`] answered.
enum Racer {
    Close(engine::Result<Position>),
    Tick(engine::Result<TickReport>),
}

/// Races closes of `positions` (one task each) against a move of the index to
/// `index`; answers the closes' outcomes and the tick's report.
async fn closes_racing_a_move(
    processes: &[Engine],
    round: usize,
    user: &User,
    positions: &[Position],
    index: Price,
) -> (Vec<engine::Result<Position>>, TickReport) {
    let n = processes.len();
    let mut tasks: Vec<Boxed<Racer>> = positions
        .iter()
        .map(|position| {
            let (desk, user, pid) = (
                processes[round % n].desk.clone(),
                user.clone(),
                position.pid.clone(),
            );
            Box::pin(async move { Racer::Close(desk.close_position(&user, &pid).await) })
                as Boxed<_>
        })
        .collect();
    let ticker = processes[(round + 1) % n].desk.clone();
    // Odd rounds quote the move first and race the bare tick, which then
    // reaches the database sooner (the closes may then see the new quote).
    let quoted = match round % 2 {
        1 => Some(ticker.market.publish(index).await.unwrap()),
        _ => None,
    };
    tasks.push(Box::pin(async move {
        Racer::Tick(match quoted {
            Some(quote) => ticker.tick(quote).await,
            None => ticker.move_price(index).await.map(|(_, report)| report),
        })
    }));
    let mut closes = Vec::new();
    let mut report = None;
    for outcome in race(tasks).await {
        match outcome {
            Racer::Close(close) => closes.push(close),
            Racer::Tick(tick) => report = Some(tick.expect("the tick settles in the race")),
        }
    }
    (closes, report.expect("the tick answered"))
}

async fn closes_racing_a_liquidation_settle_each_position_once(engine: Engine) {
    let processes = processes(&engine).await;
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 500_000).await;
    let mut outcomes = HashMap::<&str, usize>::new();
    for round in 0..ROUNDS {
        quote_at(&processes, usd(START)).await;
        let mut positions = Vec::new();
        for leverage in [50, 60] {
            positions.push(
                desk.open_position(&alice.user, market(Side::Buy, 1000, leverage))
                    .await
                    .unwrap(),
            );
        }
        let before = balance(&engine, &alice).await;
        let house_before = house(&engine).await;

        // Closes race a crash to 95,000, below both liquidations.
        let (closes, report) =
            closes_racing_a_move(&processes, round, &alice.user, &positions, usd("95000")).await;
        let (mut credited, mut kept, mut liquidated) = (0, 0, 0);
        for (position, close) in positions.iter().zip(closes) {
            let settled = desk.position(&alice.user, &position.pid).await.unwrap();
            let by = settled.closed_by.expect("settled by one or the other");
            *outcomes.entry(by.code()).or_default() += 1;
            let back = assert_closed(&settled, by, settled.exit.unwrap());
            match by {
                ClosedBy::Manual => assert_eq!(close.unwrap(), settled),
                ClosedBy::Liquidation => {
                    assert_invalid(close, "pid");
                    liquidated += 1;
                }
                other => panic!("closed by {other:?}"),
            }
            credited += back;
            kept += sats(settled.margin) - back;
        }
        assert_eq!(report.liquidated, liquidated, "round {round}");
        assert_eq!(report.settled(), liquidated);
        // Each position paid at most once: exactly what its row says.
        assert_eq!(balance(&engine, &alice).await, before + credited);
        assert_eq!(house(&engine).await, house_before + kept);
        assert_books(&engine).await;
    }
    eprintln!("close vs liquidation outcomes: {outcomes:?}");
}

async fn closes_racing_a_takeprofit_settle_each_position_once(engine: Engine) {
    let processes = processes(&engine).await;
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 500_000).await;
    let mut outcomes = HashMap::<&str, usize>::new();
    for round in 0..ROUNDS {
        quote_at(&processes, usd(START)).await;
        let mut positions = Vec::new();
        for takeprofit in ["101000", "101500", "102000"] {
            let order = Order {
                takeprofit: Some(usd(takeprofit)),
                ..market(Side::Buy, 1000, 10)
            };
            positions.push(desk.open_position(&alice.user, order).await.unwrap());
        }
        let before = balance(&engine, &alice).await;
        let house_before = house(&engine).await;

        // Closes race a spike to 103,000, beyond every take-profit.
        let (closes, report) =
            closes_racing_a_move(&processes, round, &alice.user, &positions, usd("103000")).await;
        let mut credited = 0;
        let mut kept = 0;
        let mut took_profit = 0;
        for (position, close) in positions.iter().zip(closes) {
            let settled = desk.position(&alice.user, &position.pid).await.unwrap();
            let by = settled.closed_by.expect("settled by one or the other");
            *outcomes.entry(by.code()).or_default() += 1;
            let back = assert_closed(&settled, by, settled.exit.unwrap());
            match by {
                ClosedBy::Manual => assert_eq!(close.unwrap(), settled),
                ClosedBy::Takeprofit => {
                    assert_invalid(close, "pid");
                    took_profit += 1;
                }
                other => panic!("closed by {other:?}"),
            }
            credited += back;
            kept += sats(settled.margin) - back;
        }
        assert_eq!(report.takeprofit, took_profit, "round {round}");
        assert_eq!(report.settled(), took_profit);
        assert_eq!(balance(&engine, &alice).await, before + credited);
        assert_eq!(house(&engine).await, house_before + kept);
        assert_books(&engine).await;
    }
    eprintln!("close vs take-profit outcomes: {outcomes:?}");
}

async fn a_cancel_racing_a_fill_settles_once(engine: Engine) {
    let processes = processes(&engine).await;
    let n = processes.len();
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 500_000).await;
    let (mut canceled, mut filled) = (0, 0);
    for round in 0..ROUNDS {
        quote_at(&processes, usd(START)).await;
        let order = desk
            .open_position(&alice.user, limit(Side::Buy, 100, 10, usd("99000")))
            .await
            .unwrap();
        assert_eq!(order.state, State::Pending);
        let before = balance(&engine, &alice).await;

        let canceller = processes[round % n].desk.clone();
        let ticker = processes[(round + 1) % n].desk.clone();
        let (user, pid) = (alice.user.clone(), order.pid.clone());
        // As above: odd rounds race the bare tick of a quote already made.
        let quoted = match round % 2 {
            1 => Some(ticker.market.publish(usd("98000")).await.unwrap()),
            _ => None,
        };
        let tasks: Vec<Boxed<_>> = vec![
            Box::pin(async move { canceller.cancel_position(&user, &pid).await.map(|_| None) }),
            Box::pin(async move {
                match quoted {
                    Some(quote) => ticker.tick(quote).await.map(Some),
                    None => ticker.move_price(usd("98000")).await.map(|(_, r)| Some(r)),
                }
            }),
        ];
        let mut outcomes = race(tasks).await.into_iter();
        let (cancel, report) = (outcomes.next().unwrap(), outcomes.next().unwrap());
        let report = report.expect("the tick answers").unwrap();
        let now = desk.position(&alice.user, &order.pid).await.unwrap();
        match now.state {
            State::Canceled => {
                canceled += 1;
                assert!(cancel.is_ok(), "{cancel:?}");
                assert_eq!(report.filled, 0);
                assert_eq!(balance(&engine, &alice).await, before + sats(order.margin));
            }
            State::Open => {
                filled += 1;
                assert_invalid(cancel, "pid");
                assert_eq!(report.filled, 1);
                assert_eq!(now.price, usd("99000"));
                assert_eq!(balance(&engine, &alice).await, before);
            }
            other => panic!("a pending order ended {other:?}"),
        }
        assert_books(&engine).await;
    }
    eprintln!("cancel vs fill: {canceled} cancelled, {filled} filled");
}

async fn many_closes_of_one_position_settle_it_once(engine: Engine) {
    let processes = processes(&engine).await;
    let alice = trader(&engine, "alice", 200_000).await;
    quote_at(&processes, usd(START)).await;
    let long = engine
        .desk
        .open_position(&alice.user, market(Side::Buy, 1000, 10))
        .await
        .unwrap();
    let quote = quote_at(&processes, usd("100500")).await;
    let before = balance(&engine, &alice).await;
    let tasks: Vec<Boxed<_>> = (0..RACERS)
        .map(|i| {
            let (desk, user, pid) = (
                processes[i % processes.len()].desk.clone(),
                alice.user.clone(),
                long.pid.clone(),
            );
            Box::pin(async move { desk.close_position(&user, &pid).await }) as Boxed<_>
        })
        .collect();
    let outcomes: Vec<engine::Result<Position>> = race(tasks).await;
    let (closed, refused): (Vec<_>, Vec<_>) = outcomes.into_iter().partition(|o| o.is_ok());
    assert_eq!(closed.len(), 1, "exactly one close: {refused:?}");
    for refusal in refused {
        assert_invalid(refusal, "pid");
    }
    let closed = closed.into_iter().next().unwrap().unwrap();
    let back = assert_closed(&closed, ClosedBy::Manual, quote.bid);
    assert_eq!(back, paid(&long, quote.bid));
    assert_eq!(balance(&engine, &alice).await, before + back);
    assert_books(&engine).await;
}

async fn adding_margin_racing_a_close_moves_each_sat_once(engine: Engine) {
    let processes = processes(&engine).await;
    let n = processes.len();
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 500_000).await;
    let (mut added_first, mut closed_first) = (0, 0);
    for round in 0..ROUNDS {
        quote_at(&processes, usd(START)).await;
        let long = desk
            .open_position(&alice.user, market(Side::Buy, 1000, 20))
            .await
            .unwrap();
        let quote = quote_at(&processes, usd(START)).await;
        let before = balance(&engine, &alice).await;
        let amount = 10_000u64;
        let (adder, closer) = (
            processes[round % n].desk.clone(),
            processes[(round + 1) % n].desk.clone(),
        );
        let (user, pid) = (alice.user.clone(), long.pid.clone());
        let (user2, pid2) = (alice.user.clone(), long.pid.clone());
        let tasks: Vec<Boxed<_>> = vec![
            Box::pin(async move { adder.add_margin(&user, &pid, amount).await }),
            Box::pin(async move { closer.close_position(&user2, &pid2).await }),
        ];
        let mut outcomes = race(tasks).await.into_iter();
        let (add, close) = (outcomes.next().unwrap(), outcomes.next().unwrap());
        let closed = close.expect("nothing else closes it");
        let back = assert_closed(&closed, ClosedBy::Manual, quote.bid);
        if closed.margin == long.margin + amount {
            added_first += 1;
            assert!(add.is_ok(), "{add:?}");
            assert_eq!(balance(&engine, &alice).await, before - sats(amount) + back);
        } else {
            closed_first += 1;
            assert_eq!(closed.margin, long.margin);
            assert_invalid(add, "pid");
            assert_eq!(balance(&engine, &alice).await, before + back);
        }
        assert_books(&engine).await;
    }
    eprintln!("add-margin vs close: {added_first} added first, {closed_first} closed first");
}

// -------------------------------------------------------------- bad input

async fn orders_that_break_a_rule_change_nothing(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 200_000).await;
    desk.move_price(usd(START)).await.unwrap();
    let held = desk
        .open_position(&alice.user, market(Side::Buy, 1000, 10))
        .await
        .unwrap();
    assert_eq!(held.margin, 99_990);
    let covered = match contract::last_covered(Side::Buy, 1000, usd("100010"), 99_990).unwrap() {
        Liquidation::At(price) => price,
        Liquidation::Never => unreachable!("a long is covered down to some price"),
    };
    let lev = |text: &str| Some(Leverage::parse(text).unwrap());
    let long = market(Side::Buy, 1000, 50);
    let short = market(Side::Sell, 1000, 50);
    let cases: Vec<(&str, Order, &str)> = vec![
        (
            "leverage 0",
            Order {
                leverage: lev("0"),
                ..long.clone()
            },
            "leverage",
        ),
        (
            "leverage 101",
            Order {
                leverage: lev("101"),
                ..long.clone()
            },
            "leverage",
        ),
        (
            "leverage 100.0001",
            Order {
                leverage: lev("100.0001"),
                ..long.clone()
            },
            "leverage",
        ),
        (
            "leverage 0.9999",
            Order {
                leverage: lev("0.9999"),
                ..long.clone()
            },
            "leverage",
        ),
        (
            "margin and quantity giving leverage 200",
            Order {
                leverage: None,
                margin: Some(5_000),
                ..long.clone()
            },
            "leverage",
        ),
        (
            "no leverage, no margin",
            Order {
                leverage: None,
                ..long.clone()
            },
            "leverage",
        ),
        (
            "margin 0",
            Order {
                quantity: None,
                margin: Some(0),
                ..long.clone()
            },
            "margin",
        ),
        (
            "a margin too small for one contract",
            Order {
                quantity: None,
                margin: Some(1),
                ..long.clone()
            },
            "margin",
        ),
        (
            "quantity 0",
            Order {
                quantity: Some(0),
                ..long.clone()
            },
            "quantity",
        ),
        (
            "quantity beyond a billion",
            Order {
                quantity: Some(1_000_000_001),
                ..long.clone()
            },
            "quantity",
        ),
        (
            "a margin below what quantity and leverage need",
            Order {
                margin: Some(1_000),
                ..long.clone()
            },
            "margin",
        ),
        (
            "no type",
            Order {
                kind: None,
                ..long.clone()
            },
            "type",
        ),
        (
            "no side",
            Order {
                side: None,
                ..long.clone()
            },
            "side",
        ),
        (
            "a long's take-profit below the bid",
            Order {
                takeprofit: Some(usd("99000")),
                ..long.clone()
            },
            "takeprofit",
        ),
        (
            "a long's take-profit at the bid",
            Order {
                takeprofit: Some(usd("99990")),
                ..long.clone()
            },
            "takeprofit",
        ),
        (
            "a short's take-profit above the offer",
            Order {
                takeprofit: Some(usd("101000")),
                ..short.clone()
            },
            "takeprofit",
        ),
        (
            "a long's stop-loss above the bid",
            Order {
                stoploss: Some(usd("100500")),
                ..long.clone()
            },
            "stoploss",
        ),
        (
            "a short's stop-loss below the offer",
            Order {
                stoploss: Some(usd("99000")),
                ..short.clone()
            },
            "stoploss",
        ),
        (
            "a long's stop-loss beyond its liquidation",
            Order {
                stoploss: Some(usd("97000")),
                ..long.clone()
            },
            "stoploss",
        ),
        (
            "a stop-loss at the last covered price",
            Order {
                stoploss: Some(covered),
                ..market(Side::Buy, 1000, 10)
            },
            "stoploss",
        ),
        (
            "a short's stop-loss beyond its liquidation",
            Order {
                stoploss: Some(usd("103000")),
                ..short.clone()
            },
            "stoploss",
        ),
        (
            "a take-profit off the 0.1 grid",
            Order {
                takeprofit: Some(usd("105000.05")),
                ..long.clone()
            },
            "takeprofit",
        ),
        (
            "a limit without a price",
            Order {
                kind: Some(OrderType::Limit),
                ..long.clone()
            },
            "price",
        ),
        (
            "a price for a market order",
            Order {
                price: Some(usd("99000")),
                ..long.clone()
            },
            "price",
        ),
        (
            "a limit price off the 0.1 grid",
            limit(Side::Buy, 1000, 10, usd("99000.05")),
            "price",
        ),
        (
            "a limit price below 1 USD",
            limit(Side::Buy, 1, 1, usd("0.5")),
            "price",
        ),
        (
            "a margin beyond the balance",
            Order {
                quantity: None,
                margin: Some(200_000),
                leverage: lev("10"),
                ..long.clone()
            },
            "margin",
        ),
        (
            "a quantity whose margin is beyond the balance",
            market(Side::Sell, 100_000, 2),
            "margin",
        ),
    ];
    let before = snapshot(&engine).await;
    for (what, order, field) in cases {
        let outcome = desk.open_position(&alice.user, order).await;
        assert!(
            matches!(&outcome, Err(Error::Invalid { field: got, .. }) if *got == field),
            "{what}: expected Invalid on {field}, got {outcome:?}"
        );
        assert_eq!(snapshot(&engine).await, before, "{what} changed something");
    }

    // Margin: none, or more than the balance holds; a cancel of a filled
    // position.
    assert_invalid(desk.add_margin(&alice.user, &held.pid, 0).await, "amount");
    assert_invalid(
        desk.add_margin(&alice.user, &held.pid, 100_011).await,
        "amount",
    );
    assert_invalid(
        desk.add_margin(&alice.user, &held.pid, u64::MAX).await,
        "amount",
    );
    assert_invalid(desk.cancel_position(&alice.user, &held.pid).await, "pid");
    assert_eq!(snapshot(&engine).await, before);
    assert_books(&engine).await;
}

async fn a_malformed_pid_or_another_accounts_pid_changes_nothing(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 100_000).await;
    let bob = trader(&engine, "bob", 200_000).await;
    desk.move_price(usd(START)).await.unwrap();
    let bobs = desk
        .open_position(&bob.user, market(Side::Buy, 1000, 10))
        .await
        .unwrap();
    let bobs_order = desk
        .open_position(&bob.user, limit(Side::Buy, 100, 10, usd("90000")))
        .await
        .unwrap();
    let before = snapshot(&engine).await;

    // What every pid-taking call answers for `pid`, as alice.
    let answers = |pid: String| {
        let (desk, user) = (desk.clone(), alice.user.clone());
        async move {
            let mut errors = Vec::new();
            errors.push(desk.position(&user, &pid).await.unwrap_err());
            errors.push(desk.close_position(&user, &pid).await.unwrap_err());
            errors.push(desk.cancel_position(&user, &pid).await.unwrap_err());
            errors.push(
                desk.update_position(&user, &pid, TriggerChange::Takeprofit(usd("200000")))
                    .await
                    .unwrap_err(),
            );
            errors.push(desk.add_margin(&user, &pid, 1_000).await.unwrap_err());
            errors
                .into_iter()
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
        }
    };

    for malformed in [
        "",
        "abc",
        "1",
        "../../etc/passwd",
        "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz",
        &format!("{} ", bobs.pid),
        &bobs.pid[..35],
        &format!("{}0", bobs.pid),
        "' OR 1=1 --",
    ] {
        for error in answers(malformed.to_string()).await {
            assert!(
                error.starts_with("Invalid { field: \"pid\""),
                "{malformed:?}: {error}"
            );
        }
        assert_eq!(snapshot(&engine).await, before);
    }

    // Bob's position and Bob's order, named by Alice, answer exactly what a
    // pid that does not exist answers: not found, nothing more.
    let missing = answers("00000000-0000-4000-8000-000000000000".to_string()).await;
    assert!(
        missing.iter().all(|e| e.starts_with("NotFound(")),
        "{missing:?}"
    );
    assert_eq!(answers(bobs.pid.clone()).await, missing);
    assert_eq!(answers(bobs_order.pid.clone()).await, missing);
    assert_eq!(answers(bobs.pid.to_uppercase()).await, missing);
    assert_eq!(snapshot(&engine).await, before);
    // Bob still holds both.
    assert_eq!(
        desk.positions(&bob.user, Filter::Open).await.unwrap().len(),
        2
    );
    assert!(desk
        .positions(&alice.user, Filter::All)
        .await
        .unwrap()
        .is_empty());
    assert_books(&engine).await;
}

async fn a_stale_price_refuses_trading_and_triggers_nothing(engine: Engine) {
    let alice = trader(&engine, "alice", 200_000).await;
    let (quote, _) = engine.desk.move_price(usd(START)).await.unwrap();
    let long = engine
        .desk
        .open_position(&alice.user, market(Side::Buy, 1000, 50))
        .await
        .unwrap();
    let Liquidation::At(liquidation) = long.liquidation else {
        panic!("a long is liquidated somewhere")
    };

    // A quote taken a minute ago, far below the liquidation, is stale (the
    // desk's limit is 10 s): the tick ignores it.
    let crash = Quote::around(usd("90000"), 2, quote.at_ms - 60_000);
    assert!(crash.bid < liquidation);
    let before = snapshot(&engine).await;
    assert_eq!(
        engine.desk.tick(crash).await.unwrap(),
        TickReport::default()
    );
    assert_eq!(snapshot(&engine).await, before);

    // A server whose price goes stale after 1.5 s.
    let mut config = DeskConfig::default();
    config.market.stale_after = Duration::from_millis(1500);
    let slow = second_server(&engine, config).await;
    slow.desk.move_price(usd(START)).await.unwrap();
    let short = slow
        .desk
        .open_position(&alice.user, market(Side::Sell, 100, 10))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let before = snapshot(&engine).await;
    assert_unavailable(
        slow.desk
            .open_position(&alice.user, market(Side::Sell, 100, 10))
            .await,
    );
    assert_unavailable(slow.desk.close_position(&alice.user, &short.pid).await);
    assert_unavailable(
        slow.desk
            .update_position(
                &alice.user,
                &short.pid,
                TriggerChange::Takeprofit(usd("90000")),
            )
            .await,
    );
    assert_unavailable(slow.desk.market.fresh());
    let stale = slow.desk.market.latest().unwrap();
    let stale_crash = Quote {
        bid: crash.bid,
        offer: crash.offer,
        index: crash.index,
        ..stale
    };
    assert_eq!(
        slow.desk.tick(stale_crash).await.unwrap(),
        TickReport::default()
    );
    assert_eq!(snapshot(&engine).await, before);

    // A fresh price: trading resumes, and the crash, fresh, liquidates.
    slow.desk.move_price(usd(START)).await.unwrap();
    slow.desk
        .close_position(&alice.user, &short.pid)
        .await
        .unwrap();
    // The same crash, fresh, liquidates: the stale one was refused for its
    // age alone.
    let fresh = Quote {
        at_ms: engine::now_ms(),
        ..crash
    };
    let report = engine.desk.tick(fresh).await.unwrap();
    assert_eq!(report.liquidated, 1);
    assert_eq!(
        engine
            .desk
            .position(&alice.user, &long.pid)
            .await
            .unwrap()
            .closed_by,
        Some(ClosedBy::Liquidation)
    );
    assert_books(&engine).await;
}

async fn new_positions_switched_off_answer_unavailable_and_closes_still_work(engine: Engine) {
    let alice = trader(&engine, "alice", 200_000).await;
    engine.desk.move_price(usd(START)).await.unwrap();
    let long = engine
        .desk
        .open_position(&alice.user, market(Side::Buy, 1000, 10))
        .await
        .unwrap();
    let mut config = DeskConfig::default();
    config.switches.newposition = false;
    let paused = second_server(&engine, config).await;
    let before = snapshot(&engine).await;
    for order in [
        market(Side::Buy, 1000, 10),
        limit(Side::Sell, 100, 10, usd("120000")),
        // Refused for the switch before any check of the order.
        Order::default(),
    ] {
        assert_unavailable(paused.desk.open_position(&alice.user, order).await);
        assert_eq!(snapshot(&engine).await, before);
    }
    // Closing what is open is still possible.
    paused.desk.move_price(usd(START)).await.unwrap();
    let closed = paused
        .desk
        .close_position(&alice.user, &long.pid)
        .await
        .unwrap();
    assert_eq!(closed.state, State::Closed);
    assert_books(&engine).await;
}

// ------------------------------------------------------------------ scale

/// How many positions the scale story seeds.
const SEEDED: u64 = 20_000;

/// A seeded position as the story knows it.
#[derive(Debug, Clone)]
struct Seeded {
    pid: String,
    side: Side,
    pending: bool,
    quantity: u64,
    margin: u64,
    price: Price,
    liquidation: Liquidation,
    takeprofit: Option<Price>,
    stoploss: Option<Price>,
}

/// What a tick at `quote` does to a seeded position, by the spec's rules
/// (liquidation first; a long triggers at the bid, a short at the offer; a
/// buy limit fills when the offer reaches it, a sell limit the bid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Outcome {
    Untouched,
    Liquidated,
    Filled,
    Takeprofit,
    Stoploss,
}

fn outcome(p: &Seeded, quote: &Quote) -> Outcome {
    let beyond = |side: Side, reference: Price, level: Price| match side {
        // Reached in the trader's disfavour: down for a long, up for a short.
        Side::Buy => reference <= level,
        Side::Sell => reference >= level,
    };
    if p.pending {
        let entry = p.side.entry_quote(quote.bid, quote.offer);
        let reached = match p.side {
            Side::Buy => entry <= p.price,
            Side::Sell => entry >= p.price,
        };
        return if reached {
            Outcome::Filled
        } else {
            Outcome::Untouched
        };
    }
    let reference = p.side.reference_quote(quote.bid, quote.offer);
    if let Liquidation::At(at) = p.liquidation {
        if beyond(p.side, reference, at) {
            return Outcome::Liquidated;
        }
    }
    if let Some(tp) = p.takeprofit {
        if beyond(p.side.opposite(), reference, tp) {
            return Outcome::Takeprofit;
        }
    }
    if let Some(sl) = p.stoploss {
        if beyond(p.side, reference, sl) {
            return Outcome::Stoploss;
        }
    }
    Outcome::Untouched
}

/// A position row as the scale story compares it.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    state: String,
    margin: i64,
    price: i64,
    exit: Option<i64>,
    pl: Option<i64>,
    closed_by: Option<String>,
    filled_at: Option<i64>,
    closed_at: Option<i64>,
}

async fn stored(engine: &Engine) -> HashMap<String, Stored> {
    sqlx::query(
        "SELECT pid, state, margin, price_cents, exit_cents, pl, closed_by, filled_at, closed_at \
         FROM desk_positions",
    )
    .fetch_all(engine.db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("pid"),
            Stored {
                state: r.get("state"),
                margin: r.get("margin"),
                price: r.get("price_cents"),
                exit: r.get("exit_cents"),
                pl: r.get("pl"),
                closed_by: r.get("closed_by"),
                filled_at: r.get("filled_at"),
                closed_at: r.get("closed_at"),
            },
        )
    })
    .collect()
}

/// The seeded positions around `quote`: longs and shorts at leverages 10 to
/// 100, one in ten with a take-profit 1,000 to 1,490 USD away, one in ten with
/// a stop-loss 50 to 440 USD away, one in ten a limit order 500 to 2,000 USD
/// away.
fn seed(quote: &Quote) -> Vec<Seeded> {
    (0..SEEDED)
        .map(|i| {
            let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
            let leverage = Leverage::whole(10 + (i % 91) as u32);
            let kind = i % 20;
            let pending = matches!(kind, 2 | 3);
            let price = if pending {
                let away = 50_000 + (i / 20 % 16) * 10_000;
                match side {
                    Side::Buy => Price::from_cents(quote.offer.cents() - away),
                    Side::Sell => Price::from_cents(quote.bid.cents() + away),
                }
            } else {
                side.entry_quote(quote.bid, quote.offer)
            };
            let quantity = 1;
            let margin = contract::margin_for(quantity, price, leverage).unwrap();
            let liquidation = contract::liquidation(side, quantity, price, margin).unwrap();
            let reference = side.reference_quote(quote.bid, quote.offer);
            let toward = |cents: u64, favour: bool| {
                let up = (side == Side::Buy) == favour;
                Price::from_cents(if up {
                    reference.cents() + cents
                } else {
                    reference.cents() - cents
                })
            };
            let takeprofit =
                matches!(kind, 0 | 1).then(|| toward(100_000 + (i / 20 % 50) * 1_000, true));
            let stoploss =
                matches!(kind, 4 | 5).then(|| toward(5_000 + (i / 20 % 40) * 1_000, false));
            if let Some(sl) = stoploss {
                let covered = contract::last_covered(side, quantity, price, margin).unwrap();
                assert_eq!(
                    contract::check_stoploss(side, sl, reference, covered),
                    Ok(())
                );
            }
            Seeded {
                pid: format!("00000000-0000-4000-8000-{i:012x}"),
                side,
                pending,
                quantity,
                margin,
                price,
                liquidation,
                takeprofit,
                stoploss,
            }
        })
        .collect()
}

/// Writes the seeded positions for `user_id` as the desk would have (their
/// margins out of the balance in the same transaction), in multi-row inserts.
async fn insert_seeded(engine: &Engine, user_id: &str, seeded: &[Seeded], now: i64) {
    let cents = |p: Option<Price>| p.map_or("NULL".to_string(), |p| p.cents().to_string());
    let rows: Vec<String> = seeded
        .iter()
        .map(|p| {
            let liquidation = match p.liquidation {
                Liquidation::At(price) => Some(price),
                Liquidation::Never => None,
            };
            format!(
                "('{}', '{}', '{}', '{}', '{}', {}, {}, {}, {}, {}, {}, {}, {}, {})",
                p.pid,
                user_id.replace('\'', "''"),
                if p.pending { "l" } else { "m" },
                p.side.code(),
                if p.pending { "pending" } else { "open" },
                p.quantity,
                p.margin,
                Leverage::of(p.quantity, p.price, p.margin)
                    .unwrap()
                    .ten_thousandths(),
                p.price.cents(),
                cents(liquidation),
                cents(p.takeprofit),
                cents(p.stoploss),
                now,
                if p.pending {
                    "NULL".to_string()
                } else {
                    now.to_string()
                },
            )
        })
        .collect();
    let statements: Vec<String> = rows
        .chunks(2_000)
        .map(|chunk| {
            format!(
                "INSERT INTO desk_positions (pid, user_id, kind, side, state, quantity, margin, \
                 leverage, price_cents, liquidation_cents, takeprofit_cents, stoploss_cents, \
                 created_at, filled_at) VALUES {}",
                chunk.join(", ")
            )
        })
        .collect();
    let margins: i64 = seeded.iter().map(|p| sats(p.margin)).sum();
    let user_id = user_id.to_string();
    engine
        .db
        .write(move |conn| {
            Box::pin(async move {
                for statement in &statements {
                    sqlx::query(statement).execute(&mut *conn).await?;
                }
                let debited = sqlx::query(
                    "UPDATE desk_balances SET balance_msat = balance_msat - $1 \
                     WHERE user_id = $2 AND balance_msat >= $1",
                )
                .bind(margins * 1000)
                .bind(&user_id)
                .execute(&mut *conn)
                .await?;
                assert_eq!(debited.rows_affected(), 1, "the balance holds the margins");
                Ok(())
            })
        })
        .await
        .unwrap();
}

/// The plan the database chooses for `sql` with `binds` (`$1`, `$2`, ...),
/// one line per step.
async fn plan(engine: &Engine, sql: &str, binds: &[i64]) -> Vec<String> {
    let (explain, column) = match engine.db.backend() {
        Backend::Sqlite => ("EXPLAIN QUERY PLAN", "detail"),
        Backend::Postgres => ("EXPLAIN", "QUERY PLAN"),
    };
    let sql = format!("{explain} {sql}");
    let mut query = sqlx::query(&sql);
    for bind in binds {
        query = query.bind(*bind);
    }
    query
        .fetch_all(engine.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>(column))
        .collect()
}

/// Checks that `sql` reads `desk_positions` through `index` only, never by a
/// scan of the table (nor of a whole index).
#[track_caller]
fn assert_uses(plan: &[String], index: &str, sql: &str) {
    let text = plan.join("\n");
    assert!(text.contains(index), "{sql}\nshould use {index}:\n{text}");
    assert!(
        !text.contains("SCAN desk_positions") && !text.contains("Seq Scan on desk_positions"),
        "{sql}\nscans the table:\n{text}"
    );
}

async fn a_tick_over_twenty_thousand_positions_settles_exactly_what_it_reaches(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 900_000).await;
    let (quote, _) = desk.move_price(usd(START)).await.unwrap();
    let seeded = seed(&quote);
    let margins: i64 = seeded.iter().map(|p| sats(p.margin)).sum();
    assert!(margins < 900_000, "{margins}");
    let started = Instant::now();
    insert_seeded(&engine, alice.id(), &seeded, engine::now_ms()).await;
    eprintln!(
        "seeded {SEEDED} positions ({margins} sats of margin) in {:?}",
        started.elapsed()
    );
    assert_eq!(balance(&engine, &alice).await, 900_000 - margins);
    assert_books(&engine).await;
    if engine.db.backend() == Backend::Postgres {
        // As autovacuum would have by now in a running server: the planner
        // needs the table's statistics to prefer an index.
        sqlx::query("ANALYZE desk_positions")
            .execute(engine.db.pool())
            .await
            .unwrap();
    }

    // The tick's probe and claims read the partial trigger indexes, not the
    // table: their cost follows what triggers, not what is open. Asked at the
    // quote now (nothing reached) and at the fall below (a part reached).
    let fall = Quote::around(usd("98900"), DeskConfig::default().market.spread_bps, 0);
    let indexes = [
        "desk_positions_liquidation",
        "desk_positions_takeprofit",
        "desk_positions_stoploss",
        "desk_positions_limit",
    ];
    for at in [quote, fall] {
        let binds = [sats(at.bid.cents()), sats(at.offer.cents())];
        let probe = plan(&engine, TRIGGER_PROBE, &binds).await;
        for index in indexes {
            assert_uses(&probe, index, TRIGGER_PROBE);
        }
        // The claims: liquidations and fills, one statement per side, and
        // the take-profits and stop-losses reached.
        for (sql, index) in [
            (
                "UPDATE desk_positions SET state = 'closed' \
                 WHERE state = 'open' AND side = 'b' AND liquidation_cents >= $1",
                "desk_positions_liquidation",
            ),
            (
                "UPDATE desk_positions SET state = 'closed' \
                 WHERE state = 'open' AND side = 's' AND liquidation_cents <= $2",
                "desk_positions_liquidation",
            ),
            (
                "UPDATE desk_positions SET state = 'open' \
                 WHERE state = 'pending' AND side = 'b' AND price_cents >= $2",
                "desk_positions_limit",
            ),
            (
                "UPDATE desk_positions SET state = 'open' \
                 WHERE state = 'pending' AND side = 's' AND price_cents <= $1",
                "desk_positions_limit",
            ),
            (
                "SELECT id FROM desk_positions WHERE state = 'open' AND side = 'b' AND takeprofit_cents <= $1 \
                 UNION SELECT id FROM desk_positions WHERE state = 'open' AND side = 's' AND takeprofit_cents >= $2",
                "desk_positions_takeprofit",
            ),
            (
                "SELECT id FROM desk_positions WHERE state = 'open' AND side = 'b' AND stoploss_cents >= $1 \
                 UNION SELECT id FROM desk_positions WHERE state = 'open' AND side = 's' AND stoploss_cents <= $2",
                "desk_positions_stoploss",
            ),
        ] {
            assert_uses(&plan(&engine, sql, &binds).await, index, sql);
        }
    }

    // A tick that reaches nothing touches nothing.
    let before = stored(&engine).await;
    let books = desk.audit().await.unwrap();
    assert!(seeded
        .iter()
        .all(|p| outcome(p, &quote) == Outcome::Untouched));
    let fresh = Quote {
        at_ms: engine::now_ms(),
        ..quote
    };
    let started = Instant::now();
    let report = desk.tick(fresh).await.unwrap();
    eprintln!(
        "a tick reaching none of {SEEDED} positions: {:?}",
        started.elapsed()
    );
    assert_eq!(report, TickReport::default());
    assert_eq!(stored(&engine).await, before);
    assert_eq!(desk.audit().await.unwrap(), books);

    // A fall to 98,900 reaches a known part: the longs at the highest
    // leverages are liquidated, every other long with a stop-loss is
    // stopped, the shorts' nearest take-profits and the nearest buy limits
    // fill; everything else stays as it was.
    let (index, target) = (usd("98900"), fall);
    let expected: HashMap<&str, Outcome> = seeded
        .iter()
        .map(|p| (p.pid.as_str(), outcome(p, &target)))
        .collect();
    let mut counts = HashMap::<Outcome, usize>::new();
    for outcome in expected.values() {
        *counts.entry(*outcome).or_default() += 1;
    }
    for outcome in [
        Outcome::Liquidated,
        Outcome::Filled,
        Outcome::Takeprofit,
        Outcome::Stoploss,
    ] {
        assert!(counts.get(&outcome).copied().unwrap_or(0) > 0, "{counts:?}");
    }
    assert!(
        counts[&Outcome::Untouched] > SEEDED as usize / 2,
        "{counts:?}"
    );
    // A fill here is not past its liquidation (a separate story covers that).
    for p in seeded
        .iter()
        .filter(|p| expected[p.pid.as_str()] == Outcome::Filled)
    {
        let filled = Seeded {
            pending: false,
            ..p.clone()
        };
        assert_eq!(outcome(&filled, &target), Outcome::Untouched);
    }
    let balance_before = balance(&engine, &alice).await;
    let house_before = house(&engine).await;
    let started = Instant::now();
    let (quote, report) = desk.move_price(index).await.unwrap();
    eprintln!(
        "a tick settling {} and filling {} of {SEEDED} positions: {:?}",
        report.settled(),
        report.filled,
        started.elapsed()
    );
    assert_eq!((quote.bid, quote.offer), (target.bid, target.offer));
    assert_eq!(
        report,
        TickReport {
            liquidated: counts[&Outcome::Liquidated],
            filled: counts[&Outcome::Filled],
            takeprofit: counts[&Outcome::Takeprofit],
            stoploss: counts[&Outcome::Stoploss],
        }
    );
    let after = stored(&engine).await;
    let (mut credited, mut kept) = (0, 0);
    for p in &seeded {
        let (was, now) = (&before[&p.pid], &after[&p.pid]);
        let reference = p.side.reference_quote(quote.bid, quote.offer);
        let closed = |by: &str, pl: i64| Stored {
            state: "closed".into(),
            exit: Some(sats(reference.cents())),
            pl: Some(pl),
            closed_by: Some(by.into()),
            closed_at: now.closed_at,
            ..was.clone()
        };
        let pl = contract::pl(p.side, p.quantity, p.price, reference)
            .unwrap()
            .max(-sats(p.margin));
        match expected[p.pid.as_str()] {
            Outcome::Untouched => assert_eq!(now, was, "{p:?}"),
            Outcome::Liquidated => {
                assert_eq!(now, &closed("liquidation", -sats(p.margin)), "{p:?}");
                kept += sats(p.margin);
            }
            Outcome::Takeprofit | Outcome::Stoploss => {
                let by = if expected[p.pid.as_str()] == Outcome::Takeprofit {
                    "takeprofit"
                } else {
                    "stoploss"
                };
                assert_eq!(now, &closed(by, pl), "{p:?}");
                let back = sats(contract::settlement(p.margin, pl).unwrap());
                credited += back;
                kept += sats(p.margin) - back;
            }
            Outcome::Filled => {
                assert_eq!(now.state, "open");
                assert!(now.filled_at.is_some());
                assert_eq!(
                    Stored {
                        state: was.state.clone(),
                        filled_at: None,
                        ..now.clone()
                    },
                    *was,
                    "{p:?}"
                );
            }
        }
        if expected[p.pid.as_str()] != Outcome::Untouched
            && expected[p.pid.as_str()] != Outcome::Filled
        {
            assert!(now.closed_at.is_some());
        }
    }
    assert_eq!(balance(&engine, &alice).await, balance_before + credited);
    assert_eq!(house(&engine).await, house_before + kept);
    assert_books(&engine).await;

    // The same quote again reaches nothing more.
    let again = Quote {
        at_ms: engine::now_ms(),
        ..quote
    };
    assert_eq!(desk.tick(again).await.unwrap(), TickReport::default());
    assert_eq!(stored(&engine).await, after);
}

// ----------------------------------------------------------------- market

async fn the_history_answers_oldest_first_within_its_range(engine: Engine) {
    let market = &engine.desk.market;
    let mut published = Vec::new();
    for dollars in [100_000, 100_050, 99_980, 100_010, 100_020] {
        let (quote, _) = engine
            .desk
            .move_price(Price::from_usd(dollars).unwrap())
            .await
            .unwrap();
        published.push(quote);
    }
    assert_eq!(market.latest(), published.last().copied());

    // Within the last hour, every point, oldest first. (Quotes made within
    // one millisecond are stamped a millisecond apart, so the last may be
    // stamped a little ahead of the clock.)
    let now = engine::now_ms().max(published.last().unwrap().at_ms);
    let hour = 3_600_000;
    let recent = market.history(now - hour + 5_000, now).await.unwrap();
    assert_eq!(recent, published);
    assert!(recent.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    assert!(recent
        .iter()
        .all(|q| q.at_ms > now - hour && q.at_ms <= now));
    // A range names its ends inclusively; a range after them is empty.
    let middle = market
        .history(published[1].at_ms, published[3].at_ms)
        .await
        .unwrap();
    assert_eq!(middle, published[1..=3]);
    assert!(market
        .history(now + 1, now + hour)
        .await
        .unwrap()
        .is_empty());

    // Older than an hour, one point a minute: a day-old minute point is
    // answered, the second-by-second point beside it was only for the hour.
    let day_ago = now - 24 * hour;
    let old = Quote::around(usd("95000"), 2, day_ago);
    let beside = Quote::around(usd("95010"), 2, day_ago + 1_000);
    for (quote, minute) in [(old, 1), (beside, 0)] {
        engine
            .db
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO desk_prices (at_ms, index_cents, bid_cents, offer_cents, minute) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(quote.at_ms)
                    .bind(sats(quote.index.cents()))
                    .bind(sats(quote.bid.cents()))
                    .bind(sats(quote.offer.cents()))
                    .bind(minute)
                    .execute(&mut *conn)
                    .await?;
                    Ok(())
                })
            })
            .await
            .unwrap();
    }
    let day = market.history(day_ago - hour, now).await.unwrap();
    assert_eq!(day.first(), Some(&old));
    assert!(!day.contains(&beside));
    // At most one point a minute over a long range, all of them recorded ones.
    let mut minutes: Vec<i64> = day.iter().map(|q| q.at_ms / 60_000).collect();
    minutes.dedup();
    assert_eq!(minutes.len(), day.len(), "{day:?}");
    assert!(day[1..].iter().all(|q| published.contains(q)));
    assert!(day.windows(2).all(|w| w[0].at_ms < w[1].at_ms));

    // A reversed range is refused.
    assert_invalid(market.history(now, now - 1).await, "from");

    // At most 5,000 points, the newest of the range kept, oldest first.
    let base = now - 30 * 60_000;
    let rows: Vec<String> = (0..5_100)
        .map(|i| format!("({}, 10000000, 9999000, 10001000, 0)", base + i * 100))
        .collect();
    let sql = format!(
        "INSERT INTO desk_prices (at_ms, index_cents, bid_cents, offer_cents, minute) VALUES {}",
        rows.join(", ")
    );
    engine
        .db
        .write(move |conn| {
            Box::pin(async move {
                sqlx::query(&sql).execute(&mut *conn).await?;
                Ok(())
            })
        })
        .await
        .unwrap();
    let capped = market.history(base, base + 5_099 * 100).await.unwrap();
    assert_eq!(capped.len(), engine::desk::market::HISTORY_POINTS as usize);
    assert_eq!(capped.first().unwrap().at_ms, base + 100 * 100);
    assert_eq!(capped.last().unwrap().at_ms, base + 5_099 * 100);
    assert!(capped.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
}

/// Two moves of the price at once (the ticker and the simnet's price call, or
/// two processes on PostgreSQL while the ticker's lease changes hands) may
/// apply their quotes out of order: publish(old), publish(new), tick(new),
/// tick(old). The old quote's tick comes last, but the market has moved on:
/// a position opened at the new quote must not be liquidated at a price it
/// never saw, nor anything filled or closed at a price no longer quoted.
async fn a_tick_of_a_quote_already_superseded_triggers_nothing(engine: Engine) {
    let desk = &engine.desk;
    let alice = trader(&engine, "alice", 200_000).await;
    let old = desk.market.publish(usd(START)).await.unwrap();
    let (new, _) = desk.move_price(usd("110000")).await.unwrap();
    assert!(new.at_ms > old.at_ms);
    let long = desk
        .open_position(&alice.user, market(Side::Buy, 1000, 50))
        .await
        .unwrap();
    assert_eq!(long.price, new.offer);
    let Liquidation::At(liquidation) = long.liquidation else {
        panic!("a long is liquidated somewhere")
    };
    // The old quote is fresh (seconds old) and far below the liquidation.
    assert!(old.bid < liquidation);
    assert!(desk.market.fresh().is_ok());

    let before = snapshot(&engine).await;
    assert_eq!(desk.tick(old).await.unwrap(), TickReport::default());
    assert_eq!(snapshot(&engine).await, before);
    assert_eq!(
        desk.position(&alice.user, &long.pid).await.unwrap().state,
        State::Open
    );
    assert_books(&engine).await;
}

/// Two server processes on one PostgreSQL database: the quote one publishes
/// is the one the other trades at, and a third started later loads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_trades_at_the_quote_the_first_published() {
    let url = testdb::postgres();
    let a = Engine::open(&url, settings()).await.unwrap();
    let b = Engine::open(&url, settings()).await.unwrap();
    let alice = trader(&b, "alice", 100_000).await;

    let (quote, _) = a.desk.move_price(usd("95000")).await.unwrap();
    quoted(&b, quote).await;
    assert_eq!(b.desk.market.fresh().unwrap(), quote);
    let long = b
        .desk
        .open_position(&alice.user, market(Side::Buy, 100, 10))
        .await
        .unwrap();
    assert_eq!(long.price, quote.offer);
    assert_entered(&long, Side::Buy, 100, Leverage::whole(10), quote.offer);
    // B's history is the same database's.
    let now = engine::now_ms();
    assert_eq!(
        b.desk.market.history(now - 60_000, now).await.unwrap(),
        vec![quote]
    );

    // A third process, started now, quotes the last recorded price.
    let c = Engine::open(&url, settings()).await.unwrap();
    assert_eq!(c.desk.market.latest(), Some(quote));

    // A tick on A settles a position opened through B; B's reads see it.
    let order = Order {
        takeprofit: Some(usd("96000")),
        ..market(Side::Buy, 100, 10)
    };
    let with_tp = b.desk.open_position(&alice.user, order).await.unwrap();
    let (spike, report) = a.desk.move_price(usd("96100")).await.unwrap();
    assert_eq!(report.takeprofit, 1);
    let closed = b.desk.position(&alice.user, &with_tp.pid).await.unwrap();
    assert_closed(&closed, ClosedBy::Takeprofit, spike.bid);
    assert_books(&a).await;
}
