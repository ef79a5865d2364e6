//! The desk's price wired into the server, on SQLite and PostgreSQL: an
//! operator's JSON feed (served on loopback by the test) moves it and its
//! silence pauses trading; the simnet's price call sets it at once (only with
//! `--simnet-dev`) and runs the tick; the ticker and the history answer it;
//! and the realtime WebSocket, driven by a client of its own
//! (tokio-tungstenite), streams the ticks to anyone and a trader's position
//! changes to that trader only, refuses foreign pages using the cookie, caps
//! sockets, and ends with the credential and with the server.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::response::IntoResponse;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

use common::{Reply, Server, PASSWORD};
use engine::desk::contract::{Leverage, Price, Side};
use engine::desk::{Order, OrderType, Scopes};
use engine::simnet::PayRequest;
use engine::Msat;
use server::Site;

testdb::on_both_databases!(
    open_server;
    an_operators_feed_moves_the_price_and_its_silence_pauses_trading,
    the_simnet_price_call_sets_the_index_at_once_and_runs_the_tick,
    the_ticker_and_the_history_answer_the_recorded_quotes,
);

/// A server run without `--simnet-dev`.
mod without_simnet_dev {
    use super::*;

    testdb::on_both_databases!(
        open_server_without_dev;
        the_simnet_price_call_is_not_found,
    );
}

/// The WebSocket stories: a real client on a loopback port.
mod realtime {
    use super::*;

    testdb::on_both_databases!(
        listening_server;
        the_public_channels_stream_every_tick_and_bad_requests_get_json_rpc_errors,
        position_changes_reach_their_own_signed_in_account_only,
        a_foreign_page_cannot_open_a_socket_with_the_cookie,
        sockets_are_capped_per_account_and_per_client_address,
        a_socket_ends_with_its_credential_and_with_the_server,
        a_socket_ends_when_its_browser_signs_in_again_and_logs_out,
    );
}

/// A still price (volatility 0), ticking every 100 ms when a ticker runs,
/// stale after a second.
fn still() -> engine::Settings {
    let mut settings = engine::Settings::default();
    settings.desk.market.volatility = 0.0;
    settings.desk.market.interval = Duration::from_millis(100);
    settings.desk.market.stale_after = Duration::from_secs(1);
    settings
}

async fn open_server(url: &str) -> Server {
    Server::open_with_settings(url, still(), Site::for_tests(true)).await
}

async fn open_server_without_dev(url: &str) -> Server {
    Server::open_with_settings(url, still(), Site::for_tests(false)).await
}

/// At most 2 sockets per account and 5 per client address.
async fn listening_server(url: &str) -> (Server, String) {
    let site = Site {
        max_realtime_sockets: 2,
        max_realtime_sockets_per_address: 5,
        ..Site::for_tests(true)
    };
    Server::listening_with(url, still(), site).await
}

/// An account, with an account token (`Authorization: Bearer`).
struct Trader {
    user: engine::User,
    token: String,
}

async fn trader(server: &Server, name: &str) -> Trader {
    let engine = &server.services.engine;
    let user = engine.register(name, PASSWORD, None, name).await.unwrap();
    let token = engine.tokens.issue(&user).unwrap();
    Trader { user, token }
}

/// A trader whose trading balance holds `sats`, deposited over Lightning from
/// its own wallet node.
async fn funded_trader(server: &Server, name: &str, sats: i64) -> Trader {
    let trader = trader(server, name).await;
    let engine = &server.services.engine;
    let node = common::desk::wallet_with_channel(server, &trader.user.id.0).await;
    let issued = engine
        .desk
        .deposit(&trader.user.id.0, Msat::from_sat(sats))
        .await
        .unwrap();
    engine
        .simnet
        .pay(PayRequest::new(&node, &issued.bolt11, None))
        .await
        .unwrap();
    assert_eq!(balance_sats(server, &trader).await, sats);
    trader
}

async fn balance_sats(server: &Server, trader: &Trader) -> i64 {
    server
        .services
        .engine
        .desk
        .balance(&trader.user.id.0)
        .await
        .unwrap()
        .sat()
}

/// A market long of `quantity` contracts at leverage 10.
fn long(quantity: u64) -> Order {
    Order {
        kind: Some(OrderType::Market),
        side: Some(Side::Buy),
        quantity: Some(quantity),
        leverage: Some(Leverage::whole(10)),
        ..Default::default()
    }
}

async fn call(
    server: &Server,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let auth = bearer.map_or(common::Auth::None, common::Auth::Bearer);
    server.call(method, path, auth, body).await
}

/// `POST /api/v1/simnet/price` with this raw JSON body.
async fn set_price(server: &Server, token: &str, body: &str) -> Reply {
    call(
        server,
        Method::POST,
        "/api/v1/simnet/price",
        Some(token),
        Some(body),
    )
    .await
}

async fn ticker(server: &Server) -> Value {
    let reply = call(server, Method::GET, "/lnm/market/ticker", None, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply.body
}

/// The index the server quotes now, as the API writes it.
fn latest_index(server: &Server) -> String {
    server
        .services
        .engine
        .desk
        .market
        .latest()
        .unwrap()
        .index
        .to_string()
}

/// Waits (at most 10 s) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// What the test's price feed answers.
#[derive(Clone)]
enum FeedReply {
    Json(Value),
    /// Never answers in time.
    Hang,
}

/// A price feed on a loopback port.
struct Feed {
    reply: Arc<Mutex<FeedReply>>,
    url: String,
}

impl Feed {
    async fn start(first: Value) -> Feed {
        let reply = Arc::new(Mutex::new(FeedReply::Json(first)));
        let state = reply.clone();
        let app = axum::Router::new().route(
            "/v2/prices/spot",
            axum::routing::get(move || {
                let reply = state.lock().unwrap().clone();
                async move {
                    match reply {
                        FeedReply::Json(body) => axum::Json(body).into_response(),
                        FeedReply::Hang => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            StatusCode::GATEWAY_TIMEOUT.into_response()
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v2/prices/spot", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Feed { reply, url }
    }

    fn answer(&self, reply: FeedReply) {
        *self.reply.lock().unwrap() = reply;
    }
}

async fn an_operators_feed_moves_the_price_and_its_silence_pauses_trading(server: Server) {
    let engine = &server.services.engine;
    let alice = funded_trader(&server, "alice", 500_000).await;
    // The feed says 67123.45 as a string, 33 % under the start (100,000): a
    // jump, believed once the next reading confirms it.
    let feed = Feed::start(json!({"data": {"amount": "67123.45", "currency": "USD"}})).await;
    let source =
        server::price_feed::Feed::new(&feed.url, "/data/amount", Duration::from_millis(300))
            .unwrap();
    let ticker_task = engine.desk.spawn_ticker(Box::new(source));
    eventually("the index follows the feed", || {
        latest_index(&server) == "67123.45"
    })
    .await;
    let quote = ticker(&server).await;
    assert_eq!(quote["index"], "67123.45");

    // Trading runs at the feed's quote: a long enters at the offer.
    let position = engine
        .desk
        .open_position(&alice.user, long(100))
        .await
        .unwrap();
    assert_eq!(position.price.to_string(), quote["offer"].as_str().unwrap());

    // The feed moves, now as a JSON number: the price follows.
    feed.answer(FeedReply::Json(json!({"data": {"amount": 67500.5}})));
    eventually("the index follows the feed's number", || {
        latest_index(&server) == "67500.5"
    })
    .await;

    // The feed stops answering: after the staleness bound (1 s) opening and
    // closing are refused with 503, and the ticker's time stands still.
    feed.answer(FeedReply::Hang);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let refused = engine
        .desk
        .open_position(&alice.user, long(100))
        .await
        .unwrap_err();
    assert_eq!(
        app::api::http_status(&refused),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(refused.to_string().contains("stale"), "{refused}");
    let close = engine
        .desk
        .close_position(&alice.user, &position.pid)
        .await
        .unwrap_err();
    assert_eq!(
        app::api::http_status(&close),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let frozen = ticker(&server).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ticker(&server).await, frozen);
    assert_eq!(frozen["index"], "67500.5");
    let balance = balance_sats(&server, &alice).await;
    assert_eq!(balance, 500_000 - position.margin as i64, "nothing moved");

    // Nonsense is no better than silence.
    feed.answer(FeedReply::Json(json!({"data": {"amount": "-67500"}})));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(engine.desk.market.fresh().is_err());

    // The feed answers again: trading resumes, and the close settles once.
    feed.answer(FeedReply::Json(json!({"data": {"amount": "67510"}})));
    eventually("the price is fresh again", || {
        engine.desk.market.fresh().is_ok()
    })
    .await;
    let closed = engine
        .desk
        .close_position(&alice.user, &position.pid)
        .await
        .unwrap();
    assert!(closed.closed_at_ms.is_some());
    let pl = closed.pl.unwrap();
    assert_eq!(balance_sats(&server, &alice).await, 500_000 + pl);
    ticker_task.abort();
}

async fn the_simnet_price_call_sets_the_index_at_once_and_runs_the_tick(server: Server) {
    let engine = &server.services.engine;
    let alice = funded_trader(&server, "alice", 500_000).await;

    let set = set_price(&server, &alice.token, r#"{"index": 9990}"#).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    // 2 bp of spread: 0.99 USD each side, widened outward to the 0.5 tick.
    assert_eq!(set.body["index"], "9990.0");
    assert_eq!(set.body["bid"], "9989.0");
    assert_eq!(set.body["offer"], "9991.0");
    assert_eq!(
        set.body["tick"],
        json!({"filled": 0, "liquidated": 0, "takeprofit": 0, "stoploss": 0})
    );
    let quote = engine.desk.market.latest().unwrap();
    assert_eq!(set.body["time"], engine::rfc3339(quote.at_ms));
    // The ticker, public, says the same.
    let now = ticker(&server).await;
    for field in ["index", "bid", "offer", "time"] {
        assert_eq!(now[field], set.body[field], "{field}");
    }

    // A long at leverage 10 opens at the offer; the index then falls through
    // its liquidation price, and the call's own tick liquidates it.
    let position = engine
        .desk
        .open_position(&alice.user, long(100))
        .await
        .unwrap();
    assert_eq!(position.price, Price::from_cents(999_100));
    let crash = set_price(&server, &alice.token, r#"{"index": "8000.25"}"#).await;
    assert_eq!(crash.status, StatusCode::OK, "{}", crash.text);
    assert_eq!(crash.body["index"], "8000.25");
    assert_eq!(crash.body["tick"]["liquidated"], 1);
    let liquidated = engine
        .desk
        .position(&alice.user, &position.pid)
        .await
        .unwrap();
    assert!(liquidated.closed_at_ms.is_some());
    assert_eq!(liquidated.pl, Some(-(position.margin as i64)));
    assert_eq!(
        balance_sats(&server, &alice).await,
        500_000 - position.margin as i64
    );

    // Nonsense answers 400 in the simnet API's format and changes nothing.
    let before = ticker(&server).await;
    for body in [
        r#"{"index": 0}"#,
        r#"{"index": -5}"#,
        r#"{"index": "-5"}"#,
        r#"{"index": "abc"}"#,
        r#"{"index": true}"#,
        r#"{"index": null}"#,
        r#"{"index": 9990.123}"#,
        r#"{"index": "9990.001"}"#,
        r#"{"index": 1e5}"#,
        r#"{"index": 0.5}"#,
        r#"{"index": 10000000.01}"#,
        r#"{"index": 100000000000000000000000000}"#,
        r#"{"index": "12,5"}"#,
        r#"{}"#,
        r#"not json"#,
    ] {
        let refused = set_price(&server, &alice.token, body).await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            refused.text
        );
        assert!(
            refused.body["error"]["message"].is_string(),
            "{body}: {}",
            refused.text
        );
    }
    assert_eq!(ticker(&server).await, before);

    // Without a credential: 401.
    let anonymous = call(
        &server,
        Method::POST,
        "/api/v1/simnet/price",
        None,
        Some(r#"{"index": 9990}"#),
    )
    .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ticker(&server).await, before);
}

async fn the_simnet_price_call_is_not_found(server: Server) {
    let alice = trader(&server, "alice").await;
    let before = ticker(&server).await;
    let refused = set_price(&server, &alice.token, r#"{"index": 9990}"#).await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text);
    assert_eq!(refused.body, json!({"error": {"message": "not found"}}));
    assert_eq!(ticker(&server).await, before);
}

async fn the_ticker_and_the_history_answer_the_recorded_quotes(server: Server) {
    let engine = &server.services.engine;
    let alice = trader(&server, "alice").await;
    let mut times = Vec::new();
    for index in ["9990", "9995.5", "10000.25"] {
        let set = set_price(&server, &alice.token, &format!(r#"{{"index": "{index}"}}"#)).await;
        assert_eq!(set.status, StatusCode::OK, "{}", set.text);
        times.push(engine.desk.market.latest().unwrap().at_ms);
    }

    // The last hour by default, oldest first, public; prices as strings.
    let history = call(&server, Method::GET, "/lnm/market/history", None, None).await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    assert!(history.headers.contains_key("x-ratelimit-remaining"));
    let points = history.body.as_array().unwrap();
    let indexes: Vec<&str> = points
        .iter()
        .map(|p| p["index"].as_str().unwrap())
        .collect();
    assert_eq!(indexes, ["9990.0", "9995.5", "10000.25"]);
    let stamps: Vec<i64> = points.iter().map(|p| p["time"].as_i64().unwrap()).collect();
    assert_eq!(stamps, times);
    assert_eq!(
        points[2],
        json!({"time": times[2], "index": "10000.25", "bid": "9999.0", "offer": "10001.5"})
    );
    let now = ticker(&server).await;
    assert_eq!(now["index"], "10000.25");
    assert_eq!(now["time"], engine::rfc3339(times[2]));

    // A range, both ends inclusive.
    let range = format!("/lnm/market/history?from={}&to={}", times[0], times[1]);
    let reply = call(&server, Method::GET, &range, None, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let indexes: Vec<&str> = reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["index"].as_str().unwrap())
        .collect();
    assert_eq!(indexes, ["9990.0", "9995.5"]);
    let one = format!("/lnm/market/history?from={0}&to={0}", times[2]);
    let reply = call(&server, Method::GET, &one, None, None).await;
    assert_eq!(reply.body.as_array().unwrap().len(), 1);

    // Bad values: 400 with the LN-Markets message.
    for query in [
        "from=abc".to_string(),
        "to=-1".to_string(),
        "from=1e3".to_string(),
        "to=99999999999999999999".to_string(),
        format!("from={}&to={}", times[2], times[0]),
    ] {
        let reply = call(
            &server,
            Method::GET,
            &format!("/lnm/market/history?{query}"),
            None,
            None,
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            reply.text
        );
        assert!(reply.body["message"].is_string(), "{query}: {}", reply.text);
    }
}

// The WebSocket client.

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/lnm/realtime` with these headers; the refusal's status otherwise.
async fn connect(base: &str, headers: &[(&str, &str)]) -> Result<Socket, StatusCode> {
    let url = format!("{}/lnm/realtime", base.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name = tungstenite::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            Err(StatusCode::from_u16(response.status().as_u16()).unwrap())
        }
        Err(err) => panic!("connecting: {err}"),
    }
}

async fn send(socket: &mut Socket, text: &str) {
    socket.send(Message::Text(text.into())).await.unwrap();
}

/// The next JSON frame (pings skipped), within 5 s.
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s");
        match frame {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a JSON frame, got {other:?}"),
        }
    }
}

async fn ask(socket: &mut Socket, request: Value) -> Value {
    send(socket, &request.to_string()).await;
    next_json(socket).await
}

fn subscribe(id: i64, channels: &[&str]) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "subscribe", "params": channels})
}

/// The close code the server ends the socket with, within 5 s.
async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("the socket closes within 5 s");
        match frame {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn error_code(reply: &Value) -> i64 {
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {reply}"))
}

/// Signs in through the wallet's login: the `session=...` cookie.
async fn cookie(server: &Server, name: &str) -> String {
    server.session_login(name, None).await
}

async fn the_public_channels_stream_every_tick_and_bad_requests_get_json_rpc_errors(
    (server, base): (Server, String),
) {
    let engine = &server.services.engine;
    let alice = trader(&server, "alice").await;
    let mut socket = connect(&base, &[]).await.unwrap();
    let subscribed = ask(
        &mut socket,
        json!({"jsonrpc": "2.0", "id": "a1", "method": "subscribe",
               "params": ["futures:btc_usd:index", "futures:btc_usd:last-price"]}),
    )
    .await;
    assert_eq!(
        subscribed,
        json!({"jsonrpc": "2.0", "id": "a1",
               "result": ["futures:btc_usd:index", "futures:btc_usd:last-price"]})
    );

    let set = set_price(&server, &alice.token, r#"{"index": 9990.5}"#).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    let at_ms = engine.desk.market.latest().unwrap().at_ms;
    assert_eq!(
        next_json(&mut socket).await,
        json!({"jsonrpc": "2.0", "method": "subscription", "params": {
            "channel": "futures:btc_usd:index",
            "data": {"index": 9990.5, "time": at_ms}}})
    );
    let last = next_json(&mut socket).await;
    assert_eq!(last["params"]["channel"], "futures:btc_usd:last-price");
    let data = &last["params"]["data"];
    assert_eq!(data["lastPrice"], json!(9990.5));
    assert_eq!(data["bid"], json!(9989.5));
    assert_eq!(data["offer"], json!(9991.5));
    assert_eq!(data["time"], at_ms);
    assert_eq!(
        (set.body["bid"].as_str(), set.body["offer"].as_str()),
        (Some("9989.5"), Some("9991.5"))
    );

    // Without the index, the next tick pushes the last price only.
    let unsubscribed = ask(
        &mut socket,
        json!({"jsonrpc": "2.0", "id": 2, "method": "unsubscribe",
               "params": ["futures:btc_usd:index"]}),
    )
    .await;
    assert_eq!(unsubscribed["result"], json!(["futures:btc_usd:index"]));
    engine
        .desk
        .move_price(Price::from_cents(1_000_000))
        .await
        .unwrap();
    let up = next_json(&mut socket).await;
    assert_eq!(up["params"]["channel"], "futures:btc_usd:last-price");
    assert_eq!(up["params"]["data"]["lastPrice"], json!(10000.0));
    assert_eq!(up["params"]["data"]["lastTickDirection"], "PlusTick");

    // Mistakes get JSON-RPC's errors, by id, and the socket goes on.
    let not_json = ask_text(&mut socket, "{\"jsonrpc\": \"2.0\", ").await;
    assert_eq!(
        (error_code(&not_json), &not_json["id"]),
        (-32700, &Value::Null)
    );
    let no_method = ask(
        &mut socket,
        json!({"jsonrpc": "2.0", "id": 7, "method": "trade", "params": []}),
    )
    .await;
    assert_eq!(
        (error_code(&no_method), &no_method["id"]),
        (-32601, &json!(7))
    );
    let unknown = ask(&mut socket, subscribe(8, &["futures:eth_usd:index"])).await;
    assert_eq!(error_code(&unknown), -32602);
    assert!(unknown["error"]["message"]
        .as_str()
        .unwrap()
        .contains("futures:btc_usd:index"));
    let empty = ask(&mut socket, subscribe(9, &[])).await;
    assert_eq!(error_code(&empty), -32602);
    let not_a_request = ask(&mut socket, json!({"id": 10, "method": "subscribe"})).await;
    assert_eq!(
        (error_code(&not_a_request), &not_a_request["id"]),
        (-32600, &json!(10))
    );
    let private = ask(&mut socket, subscribe(11, &["user:positions"])).await;
    assert_eq!(error_code(&private), -32001);
    socket
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(error_code(&next_json(&mut socket).await), -32700);
    // A notification is obeyed, not answered: the next frame is the
    // batch's answer, which says the index is subscribed again.
    send(
        &mut socket,
        r#"{"jsonrpc":"2.0","method":"unsubscribe","params":["futures:btc_usd:last-price"]}"#,
    )
    .await;
    let batch = ask(
        &mut socket,
        json!([subscribe(12, &["futures:btc_usd:index"]),
               {"jsonrpc": "2.0", "id": 13, "method": "nope"}]),
    )
    .await;
    assert_eq!(batch[0]["result"], json!(["futures:btc_usd:index"]));
    assert_eq!(error_code(&batch[1]), -32601);
    engine
        .desk
        .move_price(Price::from_cents(999_000))
        .await
        .unwrap();
    let down = next_json(&mut socket).await;
    assert_eq!(down["params"]["channel"], "futures:btc_usd:index");
    assert_eq!(down["params"]["data"]["index"], json!(9990.0));

    // A frame over 16 KiB ends the socket.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"{}"}}"#,
        "x".repeat(20_000)
    );
    let _ = socket.send(Message::Text(huge.into())).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the socket ends");
    assert!(matches!(ended, None | Some(1009)), "{ended:?}");
}

async fn ask_text(socket: &mut Socket, text: &str) -> Value {
    send(socket, text).await;
    next_json(socket).await
}

async fn position_changes_reach_their_own_signed_in_account_only((server, base): (Server, String)) {
    let engine = &server.services.engine;
    let alice = funded_trader(&server, "alice", 500_000).await;
    let bob = trader(&server, "bob").await;
    let alice_cookie = cookie(&server, "alice").await;

    // Alice, with her cookie, from the server's own page.
    let mut alice_socket = connect(
        &base,
        &[("cookie", alice_cookie.as_str()), ("origin", base.as_str())],
    )
    .await
    .unwrap();
    let subscribed = ask(&mut alice_socket, subscribe(1, &["user:positions"])).await;
    assert_eq!(subscribed["result"], json!(["user:positions"]));

    // Bob's token without the positions scope may not; with it, may.
    let scopes = |names: &[&str]| {
        Scopes::parse(&names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap()
    };
    let user_only = engine
        .desk
        .tokens
        .create(&bob.user, scopes(&["user"]), 3600)
        .await
        .unwrap();
    let bearer = format!("Bearer {user_only}");
    let mut refused = connect(&base, &[("authorization", bearer.as_str())])
        .await
        .unwrap();
    let denied = ask(
        &mut refused,
        subscribe(2, &["user:positions", "futures:btc_usd:index"]),
    )
    .await;
    assert_eq!(error_code(&denied), -32003);
    assert!(denied["error"]["message"]
        .as_str()
        .unwrap()
        .contains("positions"));
    let positions = engine
        .desk
        .tokens
        .create(&bob.user, scopes(&["positions"]), 3600)
        .await
        .unwrap();
    let bearer = format!("Bearer {positions}");
    let mut bob_socket = connect(&base, &[("authorization", bearer.as_str())])
        .await
        .unwrap();
    let subscribed = ask(
        &mut bob_socket,
        subscribe(3, &["user:positions", "futures:btc_usd:index"]),
    )
    .await;
    assert_eq!(
        subscribed["result"],
        json!(["user:positions", "futures:btc_usd:index"])
    );

    // Alice opens a long: she hears it, with her new balance.
    engine
        .desk
        .move_price(Price::from_cents(1_000_000))
        .await
        .unwrap();
    assert_eq!(
        next_json(&mut bob_socket).await["params"]["channel"],
        "futures:btc_usd:index"
    );
    let position = engine
        .desk
        .open_position(&alice.user, long(100))
        .await
        .unwrap();
    let opened = next_json(&mut alice_socket).await;
    assert_eq!(
        opened,
        json!({"jsonrpc": "2.0", "method": "subscription", "params": {
            "channel": "user:positions",
            "data": {"pid": position.pid, "what": "opened",
                     "balance": 500_000 - position.margin as i64}}})
    );

    // The index falls through her liquidation price: she hears that too.
    engine
        .desk
        .move_price(Price::from_cents(800_000))
        .await
        .unwrap();
    let liquidated = next_json(&mut alice_socket).await;
    assert_eq!(liquidated["params"]["data"]["pid"], json!(position.pid));
    assert_eq!(liquidated["params"]["data"]["what"], "liquidated");
    assert_eq!(
        liquidated["params"]["data"]["balance"],
        json!(balance_sats(&server, &alice).await)
    );

    // Bob heard neither: his next frame is the last tick's index.
    let frame = next_json(&mut bob_socket).await;
    assert_eq!(
        frame["params"]["channel"], "futures:btc_usd:index",
        "{frame}"
    );
    assert_eq!(frame["params"]["data"]["index"], json!(8000.0));
}

async fn a_foreign_page_cannot_open_a_socket_with_the_cookie((server, base): (Server, String)) {
    trader(&server, "alice").await;
    let alice_cookie = cookie(&server, "alice").await;
    let evil = "https://evil.example";

    // Another site's page, with the cookie its browser adds: refused.
    let refused = connect(
        &base,
        &[("cookie", alice_cookie.as_str()), ("origin", evil)],
    )
    .await;
    assert_eq!(refused.err(), Some(StatusCode::FORBIDDEN));
    // Another site's page without a cookie: the public channels only.
    let mut public = connect(&base, &[("origin", evil)]).await.unwrap();
    let private = ask(&mut public, subscribe(1, &["user:positions"])).await;
    assert_eq!(error_code(&private), -32001);
    let index = ask(&mut public, subscribe(2, &["futures:btc_usd:index"])).await;
    assert_eq!(index["result"], json!(["futures:btc_usd:index"]));
    // This server's page, and a script (no Origin), with the cookie: signed in.
    for headers in [
        vec![("cookie", alice_cookie.as_str()), ("origin", base.as_str())],
        vec![("cookie", alice_cookie.as_str())],
    ] {
        let mut socket = connect(&base, &headers).await.unwrap();
        let mine = ask(&mut socket, subscribe(3, &["user:positions"])).await;
        assert_eq!(mine["result"], json!(["user:positions"]), "{headers:?}");
    }
    // A credential that does not authenticate is refused, not a visitor.
    let forged = connect(&base, &[("authorization", "Bearer not.a.token")]).await;
    assert_eq!(forged.err(), Some(StatusCode::UNAUTHORIZED));
    // A plain GET is told to upgrade, in the API's format.
    let plain = server.get("/lnm/realtime", common::Auth::None).await;
    assert_eq!(plain.status, StatusCode::UPGRADE_REQUIRED, "{}", plain.text);
    assert_eq!(plain.headers[header::UPGRADE], "websocket");
    assert!(plain.body["message"]
        .as_str()
        .unwrap()
        .contains("WebSocket"));
}

async fn sockets_are_capped_per_account_and_per_client_address((server, base): (Server, String)) {
    trader(&server, "alice").await;
    let alice_cookie = cookie(&server, "alice").await;
    let signed_in = [("cookie", alice_cookie.as_str())];

    // Two sockets per account, however many handshakes race for them.
    let attempts = (0..6).map(|_| connect(&base, &signed_in));
    let (mut open, refused): (Vec<_>, Vec<_>) = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .partition(Result::is_ok);
    assert_eq!((open.len(), refused.len()), (2, 4));
    for refusal in refused {
        assert_eq!(refusal.err(), Some(StatusCode::TOO_MANY_REQUESTS));
    }
    let mut first = open.pop().unwrap().unwrap();
    let _second = open.pop().unwrap().unwrap();
    assert_eq!(
        connect(&base, &signed_in).await.err(),
        Some(StatusCode::TOO_MANY_REQUESTS)
    );
    // Closing one frees its place.
    first.close(None).await.unwrap();
    drop(first);
    let mut third = None;
    for _ in 0..100 {
        match connect(&base, &signed_in).await {
            Ok(socket) => {
                third = Some(socket);
                break;
            }
            Err(status) => {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let _third = third.expect("a closed socket's place is freed");

    // Five per client address, signed in or not: two are Alice's.
    let mut visitors = Vec::new();
    for _ in 0..3 {
        visitors.push(connect(&base, &[]).await.unwrap());
    }
    assert_eq!(
        connect(&base, &[]).await.err(),
        Some(StatusCode::TOO_MANY_REQUESTS)
    );
    // Each is still served.
    for socket in &mut visitors {
        let reply = ask(socket, subscribe(1, &["futures:btc_usd:index"])).await;
        assert_eq!(reply["result"], json!(["futures:btc_usd:index"]));
    }
}

async fn a_socket_ends_with_its_credential_and_with_the_server((server, base): (Server, String)) {
    let engine = &server.services.engine;
    let alice = trader(&server, "alice").await;
    let alice_cookie = cookie(&server, "alice").await;
    let bob = trader(&server, "bob").await;

    // Alice logs out (elsewhere, over HTTP): her socket ends.
    let mut alice_socket = connect(&base, &[("cookie", alice_cookie.as_str())])
        .await
        .unwrap();
    let subscribed = ask(&mut alice_socket, subscribe(1, &["user:positions"])).await;
    assert!(subscribed["result"].is_array());
    let logout = server
        .send(
            Request::post("/lnm/user/logout")
                .header(header::COOKIE, &alice_cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.text);
    assert_eq!(close_code(&mut alice_socket).await, 1008);
    // The cookie is a visitor's now.
    let mut after = connect(&base, &[("cookie", alice_cookie.as_str())])
        .await
        .unwrap();
    let refused = ask(&mut after, subscribe(2, &["user:positions"])).await;
    assert_eq!(error_code(&refused), -32001);

    // Bob's token is revoked: his socket ends.
    let scopes = Scopes::parse(&["positions".to_string()]).unwrap();
    let token = engine
        .desk
        .tokens
        .create(&bob.user, scopes, 3600)
        .await
        .unwrap();
    let jti = engine.desk.tokens.verify(&token).await.unwrap().jti;
    let bearer = format!("Bearer {token}");
    let mut bob_socket = connect(&base, &[("authorization", bearer.as_str())])
        .await
        .unwrap();
    ask(&mut bob_socket, subscribe(1, &["user:positions"])).await;
    engine.desk.tokens.revoke(&bob.user, &jti).await.unwrap();
    assert_eq!(close_code(&mut bob_socket).await, 1008);
    assert_eq!(
        connect(&base, &[("authorization", bearer.as_str())])
            .await
            .err(),
        Some(StatusCode::UNAUTHORIZED)
    );

    // The server shuts down: every socket ends, the account's and a visitor's.
    let alice_token = format!("Bearer {}", alice.token);
    let mut signed_in = connect(&base, &[("authorization", alice_token.as_str())])
        .await
        .unwrap();
    let mut visitor = connect(&base, &[]).await.unwrap();
    server.services.end_streams();
    assert_eq!(close_code(&mut signed_in).await, 1001);
    assert_eq!(close_code(&mut visitor).await, 1001);
}

/// Signing in again on a browser already signed in moves its session to a
/// fresh id (the old one is deleted). A socket opened under the old id must
/// not outlive it: the logout that follows names only the new id, and the
/// socket would otherwise stream the account's positions forever, whoever
/// signed in after (another account on the same browser included).
async fn a_socket_ends_when_its_browser_signs_in_again_and_logs_out(
    (server, base): (Server, String),
) {
    trader(&server, "alice").await;
    let first = cookie(&server, "alice").await;
    let mut socket = connect(&base, &[("cookie", first.as_str())]).await.unwrap();
    let subscribed = ask(&mut socket, subscribe(1, &["user:positions"])).await;
    assert!(subscribed["result"].is_array(), "{subscribed}");

    let second = server.session_login("alice", Some(&first)).await;
    assert_ne!(second, first, "signing in again moves the session id");
    let logout = server
        .send(
            Request::post("/lnm/user/logout")
                .header(header::COOKIE, &second)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(logout.status, StatusCode::OK, "{}", logout.text);
    assert_eq!(close_code(&mut socket).await, 1008);
}
