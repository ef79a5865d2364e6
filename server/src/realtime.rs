//! `GET /lnm/realtime`: the desk live over a WebSocket speaking JSON-RPC 2.0,
//! as LN Markets' realtime API does. A client sends
//! `{"jsonrpc":"2.0","id":"1","method":"subscribe","params":["futures:btc_usd:index"]}`
//! (or `unsubscribe`), is answered by `id` with the channels it named
//! (`"result": [...]`), then receives
//! `{"jsonrpc":"2.0","method":"subscription","params":{"channel":..,"data":{..}}}`:
//! - `futures:btc_usd:index`: `{"index", "time"}` at every tick;
//! - `futures:btc_usd:last-price`: `{"lastPrice", "bid", "offer",
//!   "lastTickDirection", "time"}` at every tick (the exchange is every
//!   trader's counterparty: its last price is the index it quotes around);
//! - `user:positions`, for a signed-in caller (the session cookie, an account
//!   token, or a desk token with the `positions` scope): `{"pid", "what",
//!   "balance"}` when one of the account's positions changes (`what` as the
//!   bus names it: opened, filled, updated, margin_added, takeprofit,
//!   stoploss, liquidated, closed, canceled; `balance` the trading balance
//!   after it, sats).
//!
//! Prices are JSON numbers of USD, times Unix milliseconds. Errors are JSON-RPC's:
//! -32700 not JSON, -32600 not a request, -32601 unknown method, -32602 bad
//! channels, and this server's -32001 (`user:positions` without a credential)
//! and -32003 (a token without the `positions` scope). Batches are answered
//! as batches; notifications (no `id`) are obeyed and not answered.
//!
//! This module is the bus's adapter for sockets; it owns no state but its
//! sockets'. A socket ends when its caller's credential does (logout, password
//! change, revoked or expired token, in any process), when the server shuts
//! down, when the client stays silent a minute (the server pings every 20 s),
//! reads too slowly, or misses position events (it must read them again). Frames
//! are at most 16 KiB; an account and a client address hold at most so many
//! sockets at once (`--max-realtime-sockets`, `...-per-address`). The gate
//! refuses a cookie-authenticated handshake from another site's `Origin`.

use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::gate::ErrorFormat;
use crate::live::{Slot, Streams};
use app::api::auth::{ClientAddress, Identity};
use engine::desk::contract::Price;
use engine::desk::market::quote_of;
use engine::desk::DeskScope;
use engine::events::{EventKind, Subscription, Topic};
use engine::{Access, Caller, Engine};

/// The largest frame (and message) a client may send.
const FRAME_MAX: usize = 16 * 1024;
/// How often the server pings.
const PING_EVERY: Duration = Duration::from_secs(20);
/// How long a client may send nothing, not even a pong, before the socket ends.
const SILENCE_MAX: Duration = Duration::from_secs(60);
/// How long one frame may take to leave: a client that reads slower ends.
const SEND_WITHIN: Duration = Duration::from_secs(10);

/// JSON-RPC 2.0's error codes, and this server's own (-32000 to -32099).
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const UNAUTHENTICATED: i64 = -32001;
const FORBIDDEN: i64 = -32003;

/// WebSocket close codes (RFC 6455).
const GOING_AWAY: u16 = 1001;
const POLICY: u16 = 1008;
const TRY_AGAIN_LATER: u16 = 1013;

/// The handshake: who calls (the gate decided), whether one more socket is
/// allowed, then the upgrade.
pub async fn connect(
    State(engine): State<Engine>,
    State(streams): State<Streams>,
    identity: Option<Extension<Identity>>,
    address: Option<Extension<ClientAddress>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let format = ErrorFormat::Lnm;
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            use WebSocketUpgradeRejection::{InvalidConnectionHeader, InvalidUpgradeHeader};
            // Not a handshake at all: say which protocol to upgrade to.
            let plain = matches!(
                rejection,
                InvalidConnectionHeader(_) | InvalidUpgradeHeader(_)
            );
            let status = if plain {
                StatusCode::UPGRADE_REQUIRED
            } else {
                rejection.status()
            };
            let mut response = format.error(
                status,
                "this route is a WebSocket (JSON-RPC 2.0): connect with a WebSocket client",
            );
            if plain {
                response.headers_mut().insert(
                    axum::http::header::UPGRADE,
                    axum::http::HeaderValue::from_static("websocket"),
                );
            }
            return response;
        }
    };
    let caller = match identity.map(|Extension(identity)| identity) {
        Some(Identity::Caller(caller)) => Some(caller),
        Some(Identity::Rejected) => {
            return format.error(StatusCode::UNAUTHORIZED, "authentication required")
        }
        Some(Identity::Visitor) | None => None,
    };
    let address = address.map_or_else(|| "local".to_string(), |Extension(a)| a.0);
    let Some(address_slot) = streams
        .sockets_per_address
        .take(&crate::rate_limit::network_of(&address))
    else {
        let message = format!(
            "at most {} realtime sockets per client address may be open at once",
            streams.sockets_per_address.max()
        );
        return format.error(StatusCode::TOO_MANY_REQUESTS, &message);
    };
    let account_slot = match &caller {
        Some(caller) => match streams.sockets_per_account.take(&caller.user.id.0) {
            Some(slot) => Some(slot),
            None => {
                let message = format!(
                    "at most {} realtime sockets per account may be open at once; close another one first",
                    streams.sockets_per_account.max()
                );
                return format.error(StatusCode::TOO_MANY_REQUESTS, &message);
            }
        },
        None => None,
    };
    let mut topics = vec![Topic::Market];
    if let Some(caller) = &caller {
        topics.push(caller.topic());
    }
    let subscription = engine.bus.subscribe(&topics);
    // A logout or password change between the gate's check and the
    // subscription would otherwise go unnoticed.
    if let Some(caller) = &caller {
        if engine
            .accounts
            .authenticate(&caller.user.id.0, caller.user.auth_version)
            .await
            .is_err()
        {
            return format.error(StatusCode::UNAUTHORIZED, "authentication required");
        }
    }
    let socket = Socket {
        channels: Channels::new(caller),
        subscription,
        shutdown: streams.shutdown(),
        _slots: (address_slot, account_slot),
    };
    upgrade
        .max_message_size(FRAME_MAX)
        .max_frame_size(FRAME_MAX)
        .on_upgrade(move |ws| socket.run(ws))
}

/// One open socket.
struct Socket {
    channels: Channels,
    subscription: Subscription,
    shutdown: watch::Receiver<bool>,
    _slots: (Slot, Option<Slot>),
}

/// What woke a socket up.
enum Step {
    Frame(Option<Result<Message, axum::Error>>),
    Event(Option<std::sync::Arc<engine::events::Event>>),
    Ping,
    Shutdown,
    Expired,
}

impl Socket {
    async fn run(mut self, mut ws: WebSocket) {
        if let Some((code, reason)) = self.serve(&mut ws).await {
            let close = Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            }));
            let _ = tokio::time::timeout(SEND_WITHIN, ws.send(close)).await;
        }
    }

    /// Serves the socket until it must end: answers the close frame to send,
    /// or `None` when the client left (or cannot be written to).
    async fn serve(&mut self, ws: &mut WebSocket) -> Option<(u16, &'static str)> {
        let expiry = self.channels.caller.as_ref().and_then(|caller| {
            let at = caller.expires_at_ms()?;
            let left = (at - engine::now_ms()).max(0) as u64;
            Some(Instant::now() + Duration::from_millis(left))
        });
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        let mut heard = Instant::now();
        loop {
            if *self.shutdown.borrow() {
                return Some((GOING_AWAY, "the server is shutting down"));
            }
            let step = tokio::select! {
                frame = ws.recv() => Step::Frame(frame),
                event = self.subscription.recv() => Step::Event(event),
                _ = ping.tick() => Step::Ping,
                _ = self.shutdown.changed() => Step::Shutdown,
                _ = sleep_until(expiry) => Step::Expired,
            };
            let out = match step {
                Step::Frame(Some(Ok(message))) => {
                    heard = Instant::now();
                    match message {
                        Message::Text(text) => self.channels.answer(text.as_str()),
                        Message::Binary(_) => Some(error(
                            Value::Null,
                            PARSE_ERROR,
                            "frames are JSON text, not binary",
                        )),
                        Message::Ping(_) | Message::Pong(_) => None,
                        // The library answers the close itself.
                        Message::Close(_) => return None,
                    }
                    .into_iter()
                    .collect()
                }
                Step::Frame(None | Some(Err(_))) => return None,
                Step::Event(None) => return Some((GOING_AWAY, "the server is shutting down")),
                Step::Event(Some(event)) => {
                    let ended = self
                        .channels
                        .caller
                        .as_ref()
                        .is_some_and(|caller| caller.is_ended_by(&event.kind));
                    if ended {
                        return Some((
                            POLICY,
                            "signed out: the session ended, the password changed or the token was revoked",
                        ));
                    }
                    match self.channels.push(&event.kind) {
                        Ok(frames) => frames,
                        Err(Missed) => return Some((
                            TRY_AGAIN_LATER,
                            "position events were missed: reconnect and read the positions again",
                        )),
                    }
                }
                Step::Ping => {
                    if heard.elapsed() > SILENCE_MAX {
                        return Some((GOING_AWAY, "the client stayed silent too long"));
                    }
                    if !send(ws, Message::Ping(Default::default())).await {
                        return None;
                    }
                    Vec::new()
                }
                Step::Shutdown => return Some((GOING_AWAY, "the server is shutting down")),
                Step::Expired => return Some((POLICY, "the token expired")),
            };
            for frame in out {
                if !send(ws, Message::Text(frame.to_string().into())).await {
                    return None;
                }
            }
        }
    }
}

/// Sends one frame, unless the client reads too slowly to take it.
async fn send(ws: &mut WebSocket, message: Message) -> bool {
    matches!(
        tokio::time::timeout(SEND_WITHIN, ws.send(message)).await,
        Ok(Ok(()))
    )
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A channel a socket may subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Channel {
    Index,
    LastPrice,
    Positions,
}

impl Channel {
    const ALL: [Channel; 3] = [Channel::Index, Channel::LastPrice, Channel::Positions];

    fn name(self) -> &'static str {
        match self {
            Channel::Index => "futures:btc_usd:index",
            Channel::LastPrice => "futures:btc_usd:last-price",
            Channel::Positions => "user:positions",
        }
    }

    fn named(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// The position events of a socket may have been missed.
struct Missed;

/// What one socket subscribed to and who it is: answers its requests and
/// turns the bus's events into its pushes. No I/O.
struct Channels {
    caller: Option<Caller>,
    subscribed: Vec<Channel>,
    /// The last index seen, and whether the last change was up.
    last_index: Option<Price>,
    last_rise: bool,
}

impl Channels {
    fn new(caller: Option<Caller>) -> Self {
        Channels {
            caller,
            subscribed: Vec::new(),
            last_index: None,
            last_rise: true,
        }
    }

    /// The answer to one text frame (`None` for notifications only).
    fn answer(&mut self, text: &str) -> Option<Value> {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            return Some(error(Value::Null, PARSE_ERROR, "not JSON"));
        };
        match request {
            Value::Array(batch) if batch.is_empty() => {
                Some(error(Value::Null, INVALID_REQUEST, "an empty batch"))
            }
            Value::Array(batch) => {
                let answers: Vec<Value> = batch
                    .into_iter()
                    .filter_map(|request| self.answer_one(request))
                    .collect();
                (!answers.is_empty()).then_some(Value::Array(answers))
            }
            request => self.answer_one(request),
        }
    }

    fn answer_one(&mut self, request: Value) -> Option<Value> {
        let Value::Object(request) = request else {
            return Some(error(
                Value::Null,
                INVALID_REQUEST,
                "a request is a JSON object",
            ));
        };
        let id = match request.get("id") {
            None => None,
            Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id.clone()),
            Some(_) => {
                return Some(error(
                    Value::Null,
                    INVALID_REQUEST,
                    "id is a string or a number",
                ))
            }
        };
        let invalid = |message| {
            Some(error(
                id.clone().unwrap_or(Value::Null),
                INVALID_REQUEST,
                message,
            ))
        };
        if request.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return invalid("jsonrpc must be \"2.0\"");
        }
        let Some(method) = request.get("method").and_then(Value::as_str) else {
            return invalid("method is a string: subscribe or unsubscribe");
        };
        let outcome = match method {
            "subscribe" => channels_of(request.get("params")).and_then(|c| self.subscribe(c)),
            "unsubscribe" => channels_of(request.get("params")).map(|c| self.unsubscribe(c)),
            _ => Err((
                METHOD_NOT_FOUND,
                format!("no method {method:?}: subscribe or unsubscribe"),
            )),
        };
        // A notification is obeyed, never answered.
        let id = id?;
        Some(match outcome {
            Ok(names) => json!({"jsonrpc": "2.0", "id": id, "result": names}),
            Err((code, message)) => error(id, code, &message),
        })
    }

    /// Subscribes to all of `channels` or, when one is not allowed, to none.
    /// `user:positions` shows what `GET /lnm/positions` does: an ACL token
    /// must be allowed that request too.
    fn subscribe(&mut self, channels: Vec<Channel>) -> Result<Vec<&'static str>, (i64, String)> {
        if channels.contains(&Channel::Positions) {
            let Some(caller) = &self.caller else {
                return Err((
                    UNAUTHENTICATED,
                    "user:positions needs a signed-in caller: the session cookie or a token \
                     with the positions scope"
                        .into(),
                ));
            };
            caller
                .permits(Access::Desk(DeskScope::Positions))
                .and_then(|()| caller.admits("GET", "/lnm/positions"))
                .map_err(|denied| (FORBIDDEN, denied.to_string()))?;
        }
        for channel in &channels {
            if !self.subscribed.contains(channel) {
                self.subscribed.push(*channel);
            }
        }
        Ok(channels.into_iter().map(Channel::name).collect())
    }

    fn unsubscribe(&mut self, channels: Vec<Channel>) -> Vec<&'static str> {
        self.subscribed.retain(|c| !channels.contains(c));
        channels.into_iter().map(Channel::name).collect()
    }

    /// The pushes an event makes on this socket.
    fn push(&mut self, kind: &EventKind) -> Result<Vec<Value>, Missed> {
        let mut frames = Vec::new();
        match kind {
            EventKind::PriceTicked { .. } => {
                let Some(quote) = quote_of(kind) else {
                    return Ok(frames);
                };
                let direction = self.tick_direction(quote.index);
                if self.subscribed.contains(&Channel::Index) {
                    frames.push(push(
                        Channel::Index,
                        json!({"index": usd(quote.index), "time": quote.at_ms}),
                    ));
                }
                if self.subscribed.contains(&Channel::LastPrice) {
                    frames.push(push(
                        Channel::LastPrice,
                        json!({
                            "lastPrice": usd(quote.index),
                            "bid": usd(quote.bid),
                            "offer": usd(quote.offer),
                            "lastTickDirection": direction,
                            "time": quote.at_ms,
                        }),
                    ));
                }
            }
            EventKind::PositionChanged {
                pid,
                what,
                balance_msat,
            } if self.subscribed.contains(&Channel::Positions) => {
                frames.push(push(
                    Channel::Positions,
                    json!({"pid": pid, "what": what, "balance": balance_msat / 1000}),
                ));
            }
            // Events were missed: a user's positions, or the end of the
            // session it was opened with, among them.
            EventKind::Resync
                if self.subscribed.contains(&Channel::Positions)
                    || self.caller.as_ref().is_some_and(|c| {
                        matches!(c.credential, engine::Credential::Session { .. })
                    }) =>
            {
                return Err(Missed)
            }
            _ => {}
        }
        Ok(frames)
    }

    /// BitMEX's and LN Markets' tick direction of `index` after the last one.
    fn tick_direction(&mut self, index: Price) -> &'static str {
        let direction = match self.last_index.map(|last| index.cmp(&last)) {
            Some(std::cmp::Ordering::Greater) => {
                self.last_rise = true;
                "PlusTick"
            }
            Some(std::cmp::Ordering::Less) => {
                self.last_rise = false;
                "MinusTick"
            }
            _ if self.last_rise => "ZeroPlusTick",
            _ => "ZeroMinusTick",
        };
        self.last_index = Some(index);
        direction
    }
}

/// The channels a request's `params` name: a non-empty list of known names,
/// each once, in order.
fn channels_of(params: Option<&Value>) -> Result<Vec<Channel>, (i64, String)> {
    let known = || {
        Channel::ALL
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Some(Value::Array(names)) = params else {
        return Err((
            INVALID_PARAMS,
            format!("params is a list of channels: {}", known()),
        ));
    };
    if names.is_empty() {
        return Err((
            INVALID_PARAMS,
            format!("name at least one channel: {}", known()),
        ));
    }
    let mut channels = Vec::new();
    for name in names {
        let channel = name.as_str().and_then(Channel::named).ok_or_else(|| {
            (
                INVALID_PARAMS,
                format!("no channel {name}: the channels are {}", known()),
            )
        })?;
        if !channels.contains(&channel) {
            channels.push(channel);
        }
    }
    Ok(channels)
}

fn push(channel: Channel, data: Value) -> Value {
    json!({
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": channel.name(), "data": data},
    })
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// A price as a JSON number of USD (cents are exact in an f64 at any price
/// the desk quotes, and print as written: 9990.5, 10000.25).
fn usd(price: Price) -> Value {
    serde_json::Number::from_f64(price.cents() as f64 / 100.0).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(channels: &mut Channels, request: &str) -> Value {
        channels.answer(request).expect("an answer")
    }

    #[test]
    fn a_visitor_subscribes_to_the_public_channels_and_is_told_what_is_wrong() {
        let mut visitor = Channels::new(None);
        let reply = ask(
            &mut visitor,
            r#"{"jsonrpc":"2.0","id":"a1","method":"subscribe","params":["futures:btc_usd:index","futures:btc_usd:index"]}"#,
        );
        assert_eq!(
            reply,
            json!({"jsonrpc":"2.0","id":"a1","result":["futures:btc_usd:index"]})
        );
        let code = |reply: &Value| reply["error"]["code"].as_i64().unwrap();
        assert_eq!(code(&ask(&mut visitor, "{")), PARSE_ERROR);
        assert_eq!(ask(&mut visitor, "{")["id"], Value::Null);
        assert_eq!(code(&ask(&mut visitor, "[]")), INVALID_REQUEST);
        assert_eq!(code(&ask(&mut visitor, "7")), INVALID_REQUEST);
        assert_eq!(
            code(&ask(
                &mut visitor,
                r#"{"id":1,"method":"subscribe","params":[]}"#
            )),
            INVALID_REQUEST
        );
        let unknown = ask(&mut visitor, r#"{"jsonrpc":"2.0","id":2,"method":"trade"}"#);
        assert_eq!(
            (code(&unknown), &unknown["id"]),
            (METHOD_NOT_FOUND, &json!(2))
        );
        for params in [r#"[]"#, r#"["futures:eth_usd:index"]"#, r#"[1]"#, r#""x""#] {
            let request =
                format!(r#"{{"jsonrpc":"2.0","id":3,"method":"subscribe","params":{params}}}"#);
            assert_eq!(
                code(&ask(&mut visitor, &request)),
                INVALID_PARAMS,
                "{params}"
            );
        }
        let private = ask(
            &mut visitor,
            r#"{"jsonrpc":"2.0","id":4,"method":"subscribe","params":["futures:btc_usd:last-price","user:positions"]}"#,
        );
        assert_eq!(code(&private), UNAUTHENTICATED);
        // Refused whole: last-price was not subscribed either.
        assert_eq!(visitor.subscribed, vec![Channel::Index]);
        // A notification is obeyed and not answered; a batch answered as one.
        assert_eq!(
            visitor.answer(
                r#"{"jsonrpc":"2.0","method":"unsubscribe","params":["futures:btc_usd:index"]}"#
            ),
            None
        );
        assert!(visitor.subscribed.is_empty());
        let batch = ask(
            &mut visitor,
            r#"[{"jsonrpc":"2.0","id":5,"method":"subscribe","params":["futures:btc_usd:last-price"]},{"jsonrpc":"2.0","id":6,"method":"nope"}]"#,
        );
        assert_eq!(batch[0]["result"], json!(["futures:btc_usd:last-price"]));
        assert_eq!(code(&batch[1]), METHOD_NOT_FOUND);
    }

    #[test]
    fn ticks_push_the_subscribed_channels_with_their_direction() {
        let mut visitor = Channels::new(None);
        ask(
            &mut visitor,
            r#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":["futures:btc_usd:last-price"]}"#,
        );
        let tick = |cents: i64, at_ms| EventKind::PriceTicked {
            index_cents: cents,
            bid_cents: cents - 50,
            offer_cents: cents + 50,
            at_ms,
        };
        let pushed = visitor.push(&tick(999_050, 1)).ok().unwrap();
        assert_eq!(
            pushed,
            vec![json!({"jsonrpc":"2.0","method":"subscription","params":{
                "channel":"futures:btc_usd:last-price",
                "data":{"lastPrice":9990.5,"bid":9990.0,"offer":9991.0,
                        "lastTickDirection":"ZeroPlusTick","time":1}}})]
        );
        let direction =
            |pushed: Vec<Value>| pushed[0]["params"]["data"]["lastTickDirection"].clone();
        assert_eq!(
            direction(visitor.push(&tick(999_000, 2)).ok().unwrap()),
            "MinusTick"
        );
        assert_eq!(
            direction(visitor.push(&tick(999_000, 3)).ok().unwrap()),
            "ZeroMinusTick"
        );
        assert_eq!(
            direction(visitor.push(&tick(1_000_025, 4)).ok().unwrap()),
            "PlusTick"
        );
        // Not subscribed to positions: their events and resyncs pass by.
        let changed = EventKind::PositionChanged {
            pid: "p".into(),
            what: "filled".into(),
            balance_msat: 5_000,
        };
        assert!(visitor.push(&changed).ok().unwrap().is_empty());
        assert!(visitor.push(&EventKind::Resync).is_ok());
    }
}
