//! Futures positions over HTTP (`/lnm/positions`), on SQLite and PostgreSQL:
//! the spec's worked example to the sat, a position's life through limit fill,
//! take-profit, stop-loss and liquidation, concurrent openings against one
//! balance, and every bad input of the OpenAPI schemas refused with the API's
//! error and nothing changed. The price is set through the engine (still, no
//! spread), so each figure is checked against the contract's formulas.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::{json, Value};

use common::desk::{
    assert_books_balance, assert_error, balance, bearer, count, deposit, get, lnm, post, trader,
};
use common::Server;
use engine::desk::contract::{self, Leverage, Liquidation, Price, Side};

testdb::on_both_databases!(
    still_market;
    the_specs_worked_short_to_the_sat,
    a_limit_order_fills_and_its_take_profit_triggers,
    stop_loss_liquidation_and_cancel_settle_once,
    concurrent_openings_never_overdraw,
    bad_input_answers_400_or_404_and_changes_nothing,
    whole_numbers_written_with_a_point_and_upper_case_pids_are_taken,
    the_pages_forms_refuse_other_accounts_and_missing_csrf,
);

/// A server whose price moves only when a test moves it, with no spread: the
/// bid and the offer are the index.
async fn still_market(url: &str) -> Server {
    let mut settings = engine::Settings::default();
    settings.desk.market.spread_bps = 0;
    settings.desk.market.volatility = 0.0;
    settings.desk.open_positions_max = 3;
    Server::open_with_settings(url, settings, server::Site::for_tests(true)).await
}

fn usd(text: &str) -> Price {
    Price::parse(text).expect("a price")
}

async fn set_price(server: &Server, text: &str) -> engine::desk::TickReport {
    let (_, report) = server
        .services
        .engine
        .desk
        .move_price(usd(text))
        .await
        .expect("the price moves");
    report
}

/// A trader with `sats` on the trading balance.
async fn funded_trader(server: &Server, name: &str, sats: i64) -> common::desk::Trader {
    let trader = trader(server, name).await;
    deposit(server, &trader, &trader.node, sats).await;
    assert_eq!(balance(server, &trader.cookie).await, sats);
    trader
}

async fn open(server: &Server, cookie: &str, order: Value) -> Value {
    let reply = post(server, "/lnm/positions", cookie, order).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body
}

async fn positions(server: &Server, cookie: &str, query: &str) -> Vec<Value> {
    let reply = get(server, &format!("/lnm/positions{query}"), cookie).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body["positions"].as_array().unwrap().clone()
}

async fn close(server: &Server, cookie: &str, pid: &str) -> Value {
    let reply = lnm(
        server,
        Method::DELETE,
        &format!("/lnm/positions?pid={pid}"),
        Some(cookie),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body
}

fn num(value: &Value) -> i64 {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"))
        .parse()
        .unwrap()
}

async fn the_specs_worked_short_to_the_sat(server: Server) {
    let alice = funded_trader(&server, "alice", 200_000).await;
    set_price(&server, "9990").await;
    let short = open(
        &server,
        &alice.cookie,
        json!({"type": "m", "side": "s", "quantity": 682, "leverage": 50}),
    )
    .await;
    // Every number a string, as the spec shows them.
    assert_eq!(short["margin"], "136536");
    assert_eq!(short["liquidation"], "10194.0");
    assert_eq!(short["price"], "9990.0");
    assert_eq!(short["leverage"], "50.0000");
    assert_eq!(short["quantity"], "682");
    assert_eq!(short["sign"], "-1");
    assert_eq!(short["side"], "s");
    assert_eq!(short["type"], "m");
    assert_eq!(short["market_wi"], "filled");
    assert_eq!(short["margin_wi"], "running");
    assert_eq!(short["pl"], "0");
    assert_eq!(short["closed"], false);
    assert!(short["takeprofit_wi"].is_null());
    let pid = short["pid"].as_str().unwrap().to_string();
    assert_eq!(balance(&server, &alice.cookie).await, 200_000 - 136_536);
    assert_books_balance(&server).await;

    // At 10010 the open position shows the P&L a close would realise.
    set_price(&server, "10010").await;
    let open_now = positions(&server, &alice.cookie, "").await;
    assert_eq!(open_now.len(), 1);
    assert_eq!(open_now[0]["pl"], "-13640");
    assert_eq!(open_now[0]["exit_price"], "10010.0");

    let closed = close(&server, &alice.cookie, &pid).await;
    assert_eq!(closed["pl"], "-13640");
    assert_eq!(closed["exit_price"], "10010.0");
    assert_eq!(closed["closed"], true);
    assert_eq!(closed["margin_wi"], "closed");
    assert_eq!(closed["closed_by"], "manual");
    assert_eq!(
        balance(&server, &alice.cookie).await,
        200_000 - 136_536 + (136_536 - 13_640)
    );
    // Closing again changes nothing.
    let again = lnm(
        &server,
        Method::DELETE,
        &format!("/lnm/positions?pid={pid}"),
        Some(&alice.cookie),
        None,
    )
    .await;
    assert_error(&again, StatusCode::BAD_REQUEST, "already closed");
    assert_eq!(balance(&server, &alice.cookie).await, 186_360);
    assert!(positions(&server, &alice.cookie, "").await.is_empty());
    let history = positions(&server, &alice.cookie, "?closed=true").await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["pid"], pid.as_str());
    assert_eq!(positions(&server, &alice.cookie, "?all").await.len(), 1);
    // The house won what Alice lost.
    let books = server.services.engine.desk.audit().await.unwrap();
    assert_eq!(books.house.0, 13_640_000);
    assert_books_balance(&server).await;
}

async fn a_limit_order_fills_and_its_take_profit_triggers(server: Server) {
    let bob = funded_trader(&server, "bob", 500_000).await;
    set_price(&server, "20000").await;
    // A buy limit at 19500, margin and leverage given: the quantity follows.
    let order = open(
        &server,
        &bob.cookie,
        json!({"type": "l", "side": "b", "price": 19500, "margin": 100000, "leverage": 10}),
    )
    .await;
    let quantity = contract::quantity_for(100_000, usd("19500"), Leverage::whole(10)).unwrap();
    assert_eq!(num(&order["quantity"]) as u64, quantity);
    assert_eq!(order["market_wi"], "running");
    assert_eq!(order["price"], "19500.0");
    assert!(order["exit_price"].is_null());
    let pid = order["pid"].as_str().unwrap().to_string();
    assert_eq!(balance(&server, &bob.cookie).await, 400_000);
    assert_books_balance(&server).await;
    // The dashboard's card: the balance, and no exposure while unfilled.
    let card = get(&server, "/api/ui/desk/card", &bob.cookie).await;
    assert_eq!(card.status, StatusCode::OK, "{}", card.text);
    assert_eq!(card.body, json!({"balance": 400_000, "open": []}));

    // Above its price nothing fills; at it, it fills at its own price.
    assert_eq!(set_price(&server, "19600").await.filled, 0);
    assert_eq!(set_price(&server, "19500").await.filled, 1);
    let filled = positions(&server, &bob.cookie, "").await;
    assert_eq!(filled[0]["market_wi"], "filled");
    assert!(filled[0]["market_filled_ts"].is_string());
    // Filled, it is on the card as /lnm/positions writes it.
    let card = get(&server, "/api/ui/desk/card", &bob.cookie).await;
    let exposure = &filled[0];
    let expected = json!({"side": "b", "quantity": exposure["quantity"],
        "margin": exposure["margin"], "price": exposure["price"]});
    assert_eq!(card.body["open"], json!([expected]), "{}", card.text);

    // A take-profit below the bid is refused; above it, accepted.
    let wrong = lnm(
        &server,
        Method::PUT,
        "/lnm/positions",
        Some(&bob.cookie),
        Some(json!({"pid": pid, "takeprofit": 19000})),
    )
    .await;
    assert_error(&wrong, StatusCode::BAD_REQUEST, "takeprofit must be above");
    let set = lnm(
        &server,
        Method::PUT,
        "/lnm/positions",
        Some(&bob.cookie),
        Some(json!({"pid": pid, "takeprofit": 21000.5})),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(set.body["success"], true);
    assert_eq!(
        positions(&server, &bob.cookie, "").await[0]["takeprofit_wi"],
        "running"
    );

    // The price gaps through it: the position closes at the market, 21100.
    let report = set_price(&server, "21100").await;
    assert_eq!(report.takeprofit, 1);
    let closed = &positions(&server, &bob.cookie, "?closed=true").await[0];
    assert_eq!(closed["closed_by"], "takeprofit");
    assert_eq!(closed["takeprofit_wi"], "filled");
    assert_eq!(closed["exit_price"], "21100.0");
    let pl = contract::pl(Side::Buy, quantity, usd("19500"), usd("21100")).unwrap();
    assert_eq!(num(&closed["pl"]), pl);
    assert_eq!(balance(&server, &bob.cookie).await, 400_000 + 100_000 + pl);
    assert_books_balance(&server).await;
}

async fn stop_loss_liquidation_and_cancel_settle_once(server: Server) {
    let carol = funded_trader(&server, "carol", 1_000_000).await;
    set_price(&server, "30000").await;
    // A short with a stop-loss at 30600, and a long at leverage 100.
    let short = open(
        &server,
        &carol.cookie,
        json!({"type": "m", "side": "s", "quantity": 600, "leverage": 20, "stoploss": 30600}),
    )
    .await;
    let short_margin = contract::margin_for(600, usd("30000"), Leverage::whole(20)).unwrap();
    assert_eq!(num(&short["margin"]) as u64, short_margin);
    assert_eq!(short["stoploss"], "30600.0");
    let long = open(
        &server,
        &carol.cookie,
        json!({"type": "m", "side": "b", "quantity": 600, "leverage": 100}),
    )
    .await;
    let long_margin = contract::margin_for(600, usd("30000"), Leverage::whole(100)).unwrap();
    let Some(Liquidation::At(liquidation)) =
        contract::liquidation(Side::Buy, 600, usd("30000"), long_margin)
    else {
        panic!("a long is liquidable")
    };
    assert_eq!(long["liquidation"], liquidation.to_string().as_str());
    // A limit sell far above, cancelled: its margin comes back.
    let limit = open(
        &server,
        &carol.cookie,
        json!({"type": "l", "side": "s", "price": 40000, "quantity": 100, "leverage": 2}),
    )
    .await;
    let limit_margin = contract::margin_for(100, usd("40000"), Leverage::whole(2)).unwrap();
    let after_opening = 1_000_000 - (short_margin + long_margin + limit_margin) as i64;
    assert_eq!(balance(&server, &carol.cookie).await, after_opening);
    // The open-positions cap (3 here) holds.
    let fourth = post(
        &server,
        "/lnm/positions",
        &carol.cookie,
        json!({"type": "m", "side": "b", "quantity": 10, "leverage": 10}),
    )
    .await;
    assert_error(&fourth, StatusCode::BAD_REQUEST, "at most 3 positions");
    let cancel = post(
        &server,
        "/lnm/positions/cancel",
        &carol.cookie,
        json!({"pid": limit["pid"]}),
    )
    .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.text);
    assert_eq!(cancel.body["canceled"], true);
    assert_eq!(cancel.body["market_wi"], "canceled");
    let twice = post(
        &server,
        "/lnm/positions/cancel",
        &carol.cookie,
        json!({"pid": limit["pid"]}),
    )
    .await;
    assert_error(&twice, StatusCode::BAD_REQUEST, "already closed");
    let after_cancel = after_opening + limit_margin as i64;
    assert_eq!(balance(&server, &carol.cookie).await, after_cancel);

    // Down through the long's liquidation: it is liquidated, nothing comes
    // back; the short gains but its stop-loss is far.
    let below = Price::from_cents(liquidation.cents() - 100);
    let report = set_price(&server, &below.to_string()).await;
    assert_eq!((report.liquidated, report.stoploss), (1, 0));
    assert_eq!(balance(&server, &carol.cookie).await, after_cancel);
    let liquidated = positions(&server, &carol.cookie, "?closed=true")
        .await
        .into_iter()
        .find(|p| p["pid"] == long["pid"])
        .unwrap();
    assert_eq!(liquidated["closed_by"], "liquidation");
    assert_eq!(num(&liquidated["pl"]), -(long_margin as i64));
    // Up through the short's stop-loss: it closes at the offer, within its margin.
    let report = set_price(&server, "30700").await;
    assert_eq!((report.liquidated, report.stoploss), (0, 1));
    let pl = contract::pl(Side::Sell, 600, usd("30000"), usd("30700")).unwrap();
    assert!(pl < 0 && pl > -(short_margin as i64));
    assert_eq!(
        balance(&server, &carol.cookie).await,
        after_cancel + short_margin as i64 + pl
    );
    // Nothing settles twice: the same price again does nothing.
    assert_eq!(set_price(&server, "30700").await.settled(), 0);
    assert!(positions(&server, &carol.cookie, "").await.is_empty());
    let house = server.services.engine.desk.audit().await.unwrap().house.0;
    assert_eq!(house, (long_margin as i64 - pl) * 1000);
    assert_books_balance(&server).await;
}

async fn concurrent_openings_never_overdraw(server: Server) {
    let dave = funded_trader(&server, "dave", 250_000).await;
    set_price(&server, "50000").await;
    // Ten orders of 100,000 sats each at once: two fit.
    let server = std::sync::Arc::new(server);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (server, cookie) = (server.clone(), dave.cookie.clone());
        tasks.push(tokio::spawn(async move {
            post(
                &server,
                "/lnm/positions",
                &cookie,
                json!({"type": "m", "side": "b", "margin": 100000, "leverage": 5}),
            )
            .await
        }));
    }
    let mut opened = 0;
    for task in tasks {
        let reply = task.await.unwrap();
        match reply.status {
            StatusCode::OK => opened += 1,
            _ => assert_error(&reply, StatusCode::BAD_REQUEST, "trading balance"),
        }
    }
    assert_eq!(opened, 2);
    assert_eq!(balance(&server, &dave.cookie).await, 50_000);
    assert_eq!(positions(&server, &dave.cookie, "").await.len(), 2);
    assert_books_balance(&server).await;
}

async fn bad_input_answers_400_or_404_and_changes_nothing(server: Server) {
    let erin = funded_trader(&server, "erin", 300_000).await;
    let frank = funded_trader(&server, "frank", 100_000).await;
    set_price(&server, "10000").await;
    let franks = open(
        &server,
        &frank.cookie,
        json!({"type": "m", "side": "b", "margin": 10000, "leverage": 10}),
    )
    .await;
    let mine = open(
        &server,
        &erin.cookie,
        json!({"type": "m", "side": "b", "margin": 10000, "leverage": 10}),
    )
    .await;
    let pid = mine["pid"].as_str().unwrap();
    let before = (
        balance(&server, &erin.cookie).await,
        count(&server, "desk_positions").await,
    );
    let books = server.services.engine.desk.audit().await.unwrap();

    let order = |extra: Value| {
        let mut order = json!({"type": "m", "side": "b", "margin": 10000, "leverage": 10});
        for (k, v) in extra.as_object().unwrap() {
            order[k] = v.clone();
        }
        order
    };
    let refused = [
        (
            order(json!({"leverage": 0})),
            "leverage must be between 1 and 100",
        ),
        (
            order(json!({"leverage": 101})),
            "leverage must be between 1 and 100",
        ),
        (
            order(json!({"leverage": 0.5})),
            "leverage must be between 1 and 100",
        ),
        (order(json!({"leverage": 2.000001})), "at most 4 decimals"),
        (order(json!({"margin": 0})), "margin must be at least 1"),
        (order(json!({"margin": -5})), "margin must be at least 1"),
        (
            order(json!({"margin": 1, "leverage": 1})),
            "buys no contract",
        ),
        (order(json!({"margin": 400000})), "trading balance"),
        (order(json!({"type": "l"})), "needs a price"),
        (order(json!({"price": 9000})), "limit orders"),
        (order(json!({"type": "x"})), "type must be m"),
        (order(json!({"side": "long"})), "side must be b"),
        (
            order(json!({"takeprofit": 9000})),
            "takeprofit must be above",
        ),
        (order(json!({"stoploss": 10500})), "stoploss must be below"),
        (
            order(json!({"stoploss": 5000})),
            "stoploss must be above the liquidation",
        ),
        (
            order(json!({"type": "l", "price": 9000.05})),
            "multiple of 0.1",
        ),
        (
            order(json!({"quantity": 5000, "leverage": null})),
            "leverage of",
        ),
        (
            json!({"type": "m", "side": "b", "margin": 10000}),
            "give leverage",
        ),
    ];
    for (body, words) in refused {
        let reply = post(&server, "/lnm/positions", &erin.cookie, body.clone()).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, words);
    }
    // A body that does not parse.
    let reply = post(
        &server,
        "/lnm/positions",
        &erin.cookie,
        json!({"margin": "lots"}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);

    let put = |body: Value| {
        let server = &server;
        let cookie = erin.cookie.clone();
        async move {
            lnm(
                server,
                Method::PUT,
                "/lnm/positions",
                Some(&cookie),
                Some(body),
            )
            .await
        }
    };
    assert_error(
        &put(json!({"pid": pid, "takeprofit": 11000, "stoploss": 9500})).await,
        StatusCode::BAD_REQUEST,
        "mutually exclusive",
    );
    assert_error(
        &put(json!({"pid": "not-a-uuid", "takeprofit": 11000})).await,
        StatusCode::BAD_REQUEST,
        "uuid",
    );
    assert_error(
        &put(json!({"pid": franks["pid"], "takeprofit": 11000})).await,
        StatusCode::NOT_FOUND,
        "no such position",
    );
    assert_error(
        &put(json!({"pid": pid, "stoploss": 1000})).await,
        StatusCode::BAD_REQUEST,
        "stoploss must be above the liquidation",
    );
    let delete = |query: String| {
        let server = &server;
        let cookie = erin.cookie.clone();
        async move { lnm(server, Method::DELETE, &query, Some(&cookie), None).await }
    };
    assert_error(
        &delete(format!(
            "/lnm/positions?pid={}",
            franks["pid"].as_str().unwrap()
        ))
        .await,
        StatusCode::NOT_FOUND,
        "no such position",
    );
    assert_error(
        &delete("/lnm/positions?pid=1%27%20OR%201=1".into()).await,
        StatusCode::BAD_REQUEST,
        "uuid",
    );
    let cancel = post(
        &server,
        "/lnm/positions/cancel",
        &erin.cookie,
        json!({"pid": pid}),
    )
    .await;
    assert_error(
        &cancel,
        StatusCode::BAD_REQUEST,
        "close the position instead",
    );
    for amount in [json!(0), json!(-1), json!(10_000_000)] {
        let reply = post(
            &server,
            "/lnm/positions/add-margin",
            &erin.cookie,
            json!({"pid": pid, "amount": amount}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    }
    // Another account's position is nobody's to close, even with its pid.
    assert_eq!(positions(&server, &frank.cookie, "").await.len(), 1);

    // No credential, and a token without the positions scope.
    let anonymous = lnm(&server, Method::GET, "/lnm/positions", None, None).await;
    assert_eq!(
        anonymous.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        anonymous.text
    );
    let bearer = bearer(&server, &erin.cookie, &["deposit"]).await;
    let scoped = post(&server, "/lnm/positions", &bearer, order(json!({}))).await;
    assert_eq!(scoped.status, StatusCode::FORBIDDEN, "{}", scoped.text);

    assert_eq!(
        (
            balance(&server, &erin.cookie).await,
            count(&server, "desk_positions").await
        ),
        before
    );
    assert_eq!(server.services.engine.desk.audit().await.unwrap(), books);
    assert_books_balance(&server).await;
}

/// A server whose quotes go stale after a second.
async fn quickly_stale_market(url: &str) -> Server {
    let mut settings = engine::Settings::default();
    settings.desk.market.spread_bps = 0;
    settings.desk.market.stale_after = std::time::Duration::from_secs(1);
    Server::open_with_settings(url, settings, server::Site::for_tests(true)).await
}

/// A server whose operator switched new positions off.
async fn closed_desk(url: &str) -> Server {
    let mut settings = engine::Settings::default();
    settings.desk.switches.newposition = false;
    Server::open_with_settings(url, settings, server::Site::for_tests(true)).await
}

mod stale {
    use super::*;

    testdb::on_both_databases!(
        quickly_stale_market;
        a_stale_price_stops_trading_and_triggers_nothing,
    );
}

mod switched_off {
    use super::*;

    testdb::on_both_databases!(
        closed_desk;
        new_positions_switched_off_answer_503,
    );
}

async fn a_stale_price_stops_trading_and_triggers_nothing(server: Server) {
    let gina = funded_trader(&server, "gina", 100_000).await;
    set_price(&server, "10000").await;
    let position = open(
        &server,
        &gina.cookie,
        json!({"type": "m", "side": "s", "margin": 10000, "leverage": 5, "stoploss": 11000}),
    )
    .await;
    let pid = position["pid"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let before = balance(&server, &gina.cookie).await;
    let opening = post(
        &server,
        "/lnm/positions",
        &gina.cookie,
        json!({"type": "m", "side": "s", "margin": 10000, "leverage": 5}),
    )
    .await;
    assert_error(&opening, StatusCode::SERVICE_UNAVAILABLE, "stale");
    let closing = lnm(
        &server,
        Method::DELETE,
        &format!("/lnm/positions?pid={pid}"),
        Some(&gina.cookie),
        None,
    )
    .await;
    assert_error(&closing, StatusCode::SERVICE_UNAVAILABLE, "stale");
    // A stale quote far beyond the stop-loss triggers nothing.
    let desk = &server.services.engine.desk;
    let old = engine::desk::Quote::around(usd("20000"), 0, engine::now_ms() - 60_000);
    assert_eq!(desk.tick(old).await.unwrap().settled(), 0);
    assert_eq!(positions(&server, &gina.cookie, "").await.len(), 1);
    assert_eq!(balance(&server, &gina.cookie).await, before);
    // A fresh price: trading resumes.
    set_price(&server, "10000").await;
    close(&server, &gina.cookie, &pid).await;
    assert_eq!(balance(&server, &gina.cookie).await, 100_000);
    assert_books_balance(&server).await;
}

async fn new_positions_switched_off_answer_503(server: Server) {
    let hal = funded_trader(&server, "hal", 100_000).await;
    set_price(&server, "10000").await;
    let opening = post(
        &server,
        "/lnm/positions",
        &hal.cookie,
        json!({"type": "m", "side": "b", "margin": 10000, "leverage": 5}),
    )
    .await;
    assert_error(&opening, StatusCode::SERVICE_UNAVAILABLE, "switched off");
    assert!(positions(&server, &hal.cookie, "").await.is_empty());
    assert_eq!(balance(&server, &hal.cookie).await, 100_000);
}

/// What the OpenAPI document calls valid is taken. An `integer` is any JSON
/// number without a fraction (JSON Schema: `10000.0` is one, and a script
/// computing a margin in floating point sends it so); a pid matches
/// `[a-fA-F0-9]` (a UUID is case-insensitive), so the upper-case spelling of
/// one's own pid names it. A fraction is still refused.
async fn whole_numbers_written_with_a_point_and_upper_case_pids_are_taken(server: Server) {
    let gina = funded_trader(&server, "gina", 300_000).await;
    set_price(&server, "10000").await;
    let by_margin = open(
        &server,
        &gina.cookie,
        json!({"type": "m", "side": "b", "margin": 10000.0, "leverage": 10}),
    )
    .await;
    assert_eq!(by_margin["margin"], "10000");
    let by_quantity = open(
        &server,
        &gina.cookie,
        json!({"type": "m", "side": "s", "quantity": 1e2, "leverage": 10}),
    )
    .await;
    assert_eq!(by_quantity["quantity"], "100");

    let pid = by_margin["pid"].as_str().unwrap().to_uppercase();
    let added = post(
        &server,
        "/lnm/positions/add-margin",
        &gina.cookie,
        json!({"pid": pid, "amount": 500.0}),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.text);
    assert_eq!(added.body["margin"], "10500");
    let closed = close(&server, &gina.cookie, &pid).await;
    assert_eq!(closed["closed"], true);

    for (body, words) in [
        (
            json!({"type": "m", "side": "b", "margin": 10000.5, "leverage": 10}),
            "margin",
        ),
        (
            json!({"type": "m", "side": "b", "quantity": 1e30, "leverage": 10}),
            "quantity",
        ),
    ] {
        let reply = post(&server, "/lnm/positions", &gina.cookie, body).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, words);
    }
    assert_books_balance(&server).await;
}

/// The session's CSRF token, as the pages put it in their forms.
async fn csrf_of(server: &Server, cookie: &str) -> String {
    let data = get(server, "/rest/v1/getalldata", cookie).await;
    assert_eq!(data.status, StatusCode::OK, "{}", data.text);
    data.body["_csrf"]
        .as_str()
        .expect("a CSRF token")
        .to_string()
}

/// A form post of a page without JavaScript (`application/x-www-form-urlencoded`).
async fn form(server: &Server, path: &str, cookie: &str, fields: &str) -> common::Reply {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "text/html")
        .body(Body::from(fields.to_string()))
        .unwrap();
    server.send(request).await
}

/// The desk pages' no-JavaScript forms (`/api/ui/desk/close`, `/deposit`) and
/// the invoice read-back: without the session's CSRF token nothing happens,
/// another account's position cannot be closed nor its deposit invoice read,
/// and the owner's own requests work and redirect to the page that shows them.
async fn the_pages_forms_refuse_other_accounts_and_missing_csrf(server: Server) {
    set_price(&server, "10000").await;
    let alice = funded_trader(&server, "alice_forms", 100_000).await;
    let mallory = funded_trader(&server, "mallory_forms", 1_000).await;
    let opened = open(
        &server,
        &alice.cookie,
        json!({"type": "m", "side": "b", "margin": 10_000, "leverage": 10}),
    )
    .await;
    let pid = opened["pid"].as_str().unwrap().to_string();
    let alice_csrf = csrf_of(&server, &alice.cookie).await;
    let mallory_csrf = csrf_of(&server, &mallory.cookie).await;

    // No token (a malformed form), or another session's: refused, the
    // position stays open.
    let missing = form(
        &server,
        "/api/ui/desk/close",
        &alice.cookie,
        &format!("pid={pid}"),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{}", missing.text);
    assert!(missing.text.contains("csrf"), "{}", missing.text);
    for token in ["", mallory_csrf.as_str()] {
        let fields = format!("pid={pid}&csrf={token}");
        let forged = form(&server, "/api/ui/desk/close", &alice.cookie, &fields).await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.text);
    }
    // Another account, with its own valid token: no such position of hers.
    let foreign = form(
        &server,
        "/api/ui/desk/close",
        &mallory.cookie,
        &format!("pid={pid}&csrf={mallory_csrf}"),
    )
    .await;
    assert!(
        !foreign.status.is_success() && !foreign.status.is_redirection(),
        "{}",
        foreign.status
    );
    assert_eq!(positions(&server, &alice.cookie, "").await.len(), 1);
    assert_eq!(balance(&server, &mallory.cookie).await, 1_000);

    // The owner closes it and is sent to the positions page.
    let closed = form(
        &server,
        "/api/ui/desk/close",
        &alice.cookie,
        &format!("pid={pid}&csrf={alice_csrf}"),
    )
    .await;
    assert!(
        closed.status.is_redirection(),
        "{} {}",
        closed.status,
        closed.text
    );
    assert_eq!(closed.headers[header::LOCATION], "/positions");
    assert!(positions(&server, &alice.cookie, "").await.is_empty());
    assert_eq!(balance(&server, &alice.cookie).await, 100_000);

    // A deposit invoice: the redirect names its hash only; the invoice is
    // read back by its owner, never by another account.
    let fields = format!("amount=1234&csrf={mallory_csrf}");
    let refused = form(&server, "/api/ui/desk/deposit", &alice.cookie, &fields).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let issued = form(
        &server,
        "/api/ui/desk/deposit",
        &alice.cookie,
        &format!("amount=1%2C234&csrf={alice_csrf}"),
    )
    .await;
    assert!(
        issued.status.is_redirection(),
        "{} {}",
        issued.status,
        issued.text
    );
    let location = issued.headers[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    let hash = location
        .strip_prefix("/funding?deposit=")
        .expect("the funding page with the deposit's hash")
        .to_string();
    assert_eq!(hash.len(), 64);
    let path = format!("/api/ui/desk/deposit-invoice?hash={hash}");
    let own = get(&server, &path, &alice.cookie).await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.text);
    assert_eq!(own.body["paid"], false);
    let bolt11 = own.body["bolt11"].as_str().unwrap();
    assert!(bolt11.starts_with("lnbcrt12340n1"), "{bolt11}");
    let stranger = get(&server, &path, &mallory.cookie).await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND, "{}", stranger.text);
    assert!(!stranger.text.contains(bolt11));
    assert_books_balance(&server).await;
}
