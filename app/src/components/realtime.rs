//! The desk live: the `/lnm/realtime` WebSocket (JSON-RPC 2.0) turned into
//! signals. The latest quote changes at every tick; a counter moves when one of
//! the account's positions changes (filled, triggered, liquidated, closed),
//! with the trading balance after it. The socket reconnects by itself, and a
//! reconnection counts as a change of the positions (events may have been
//! missed). It only reads; it never changes data itself.

use contract::Price;
use leptos::prelude::*;

use crate::api::lnm::PositionView;

/// One quote of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveQuote {
    pub index: Price,
    pub bid: Price,
    pub offer: Price,
    /// Unix milliseconds.
    pub at_ms: i64,
}

impl LiveQuote {
    /// The P&L of an open position at this quote, as the server values it (a
    /// long at the bid, a short at the offer), never a loss beyond the margin.
    pub fn pl_of(self, position: &PositionView) -> Option<i64> {
        let side = contract::Side::from_code(&position.side)?;
        let quantity: u64 = position.quantity.parse().ok()?;
        let margin: i64 = position.margin.parse().ok()?;
        let entry = Price::parse(&position.price)?;
        let exit = side.reference_quote(self.bid, self.offer);
        Some(contract::pl(side, quantity, entry, exit)?.max(-margin))
    }
}

#[derive(Clone, Copy)]
pub struct Realtime {
    quote: RwSignal<Option<LiveQuote>>,
    positions: RwSignal<u64>,
    /// The trading balance after the latest position event, sats.
    balance: RwSignal<Option<i64>>,
    connected: RwSignal<bool>,
}

impl Realtime {
    /// Makes the desk's live data available to every page (once, in the app).
    pub fn provide() {
        provide_context(Realtime {
            quote: RwSignal::new(None),
            positions: RwSignal::new(0),
            balance: RwSignal::new(None),
            connected: RwSignal::new(false),
        });
    }

    pub fn get() -> Self {
        expect_context()
    }

    /// The latest quote (tracked): live once connected, else the one a page
    /// was rendered with ([`Realtime::seed`]).
    pub fn quote(self) -> Option<LiveQuote> {
        self.quote.get()
    }

    /// A quote read with the page, unless a newer one arrived already.
    pub fn seed(self, quote: LiveQuote) {
        let newer = self
            .quote
            .with_untracked(|q| q.is_some_and(|q| q.at_ms >= quote.at_ms));
        if !newer {
            self.quote.set(Some(quote));
        }
    }

    /// Tracks the account's positions: data that depends on them only.
    pub fn positions(self) -> u64 {
        self.positions.get()
    }

    /// Asks the desk pages to read their positions again (after an action).
    pub fn refresh(self) {
        self.positions.update(|v| *v += 1);
    }

    /// The trading balance the latest position event left, sats (tracked).
    pub fn balance(self) -> Option<i64> {
        self.balance.get()
    }

    /// Whether quotes are arriving live (tracked).
    pub fn connected(self) -> bool {
        self.connected.get()
    }

    /// Opens the socket, once per page load, in the browser only.
    pub fn connect(self) {
        #[cfg(feature = "hydrate")]
        browser::connect(self);
    }
}

/// A JSON number of USD as the socket sends it (`9990.5`), exactly.
#[cfg(any(feature = "hydrate", test))]
fn price_of(value: &serde_json::Value) -> Option<Price> {
    match value {
        serde_json::Value::Number(number) => Price::parse(&number.to_string()),
        _ => None,
    }
}

/// What one message of the socket changes.
#[cfg(any(feature = "hydrate", test))]
#[derive(Debug, PartialEq)]
enum Push {
    Quote {
        index: Option<Price>,
        bid: Option<Price>,
        offer: Option<Price>,
        at_ms: i64,
    },
    Position {
        balance: Option<i64>,
    },
    Other,
}

#[cfg(any(feature = "hydrate", test))]
fn read_push(text: &str) -> Push {
    let Ok(message) = serde_json::from_str::<serde_json::Value>(text) else {
        return Push::Other;
    };
    if message["method"] != "subscription" {
        return Push::Other;
    }
    let params = &message["params"];
    let data = &params["data"];
    let at_ms = data["time"].as_i64().unwrap_or(0);
    match params["channel"].as_str() {
        Some("futures:btc_usd:index") => Push::Quote {
            index: price_of(&data["index"]),
            bid: None,
            offer: None,
            at_ms,
        },
        Some("futures:btc_usd:last-price") => Push::Quote {
            index: price_of(&data["lastPrice"]),
            bid: price_of(&data["bid"]),
            offer: price_of(&data["offer"]),
            at_ms,
        },
        Some("user:positions") => Push::Position {
            balance: data["balance"].as_i64(),
        },
        _ => Push::Other,
    }
}

#[cfg(feature = "hydrate")]
impl Realtime {
    fn apply(self, push: Push) {
        match push {
            Push::Quote {
                index,
                bid,
                offer,
                at_ms,
            } => self.quote.update(|quote| {
                let Some(index) = index else { return };
                let last = quote.unwrap_or(LiveQuote {
                    index,
                    bid: bid.unwrap_or(index),
                    offer: offer.unwrap_or(index),
                    at_ms,
                });
                if at_ms < last.at_ms {
                    return;
                }
                *quote = Some(LiveQuote {
                    index,
                    bid: bid.unwrap_or(last.bid),
                    offer: offer.unwrap_or(last.offer),
                    at_ms,
                });
            }),
            Push::Position { balance } => {
                if balance.is_some() {
                    self.balance.set(balance);
                }
                self.refresh();
            }
            Push::Other => {}
        }
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::Cell;
    use std::time::Duration;

    use futures::{SinkExt, StreamExt};
    use gloo_net::websocket::{futures::WebSocket, Message};

    use super::{read_push, Realtime};
    use leptos::prelude::*;

    thread_local! {
        static OPEN: Cell<bool> = const { Cell::new(false) };
    }

    /// Public quotes in one request, the account's positions in another: a
    /// visitor's second request is refused and the first still stands.
    const SUBSCRIBE: [&str; 2] = [
        r#"{"jsonrpc":"2.0","id":"quotes","method":"subscribe","params":["futures:btc_usd:last-price","futures:btc_usd:index"]}"#,
        r#"{"jsonrpc":"2.0","id":"positions","method":"subscribe","params":["user:positions"]}"#,
    ];

    pub fn connect(realtime: Realtime) {
        if OPEN.with(|open| open.replace(true)) {
            return;
        }
        leptos::task::spawn_local(run(realtime));
    }

    /// Keeps a socket open for as long as the page lives, waiting a little
    /// longer after each failure (1 s up to 15 s).
    async fn run(realtime: Realtime) {
        let mut failures = 0u32;
        let mut first = true;
        loop {
            if session(realtime, first).await {
                failures = 0;
            }
            first = false;
            realtime.connected.set(false);
            failures = (failures + 1).min(4);
            sleep(Duration::from_secs(1 << failures).min(Duration::from_secs(15))).await;
        }
    }

    /// One socket, until it ends; answers whether it had opened.
    async fn session(realtime: Realtime, first: bool) -> bool {
        let location = window().location();
        let scheme = match location.protocol().as_deref() {
            Ok("https:") => "wss",
            _ => "ws",
        };
        let Ok(host) = location.host() else {
            return false;
        };
        let Ok(socket) = WebSocket::open(&format!("{scheme}://{host}/lnm/realtime")) else {
            return false;
        };
        let (mut write, mut read) = socket.split();
        for request in SUBSCRIBE {
            if write.send(Message::Text(request.into())).await.is_err() {
                return false;
            }
        }
        realtime.connected.set(true);
        // After a reconnection, position events may have been missed.
        if !first {
            realtime.refresh();
        }
        while let Some(Ok(message)) = read.next().await {
            if let Message::Text(text) = message {
                realtime.apply(read_push(&text));
            }
        }
        true
    }

    async fn sleep(duration: Duration) {
        let (done, wait) = futures::channel::oneshot::channel::<()>();
        set_timeout(
            move || {
                let _ = done.send(());
            },
            duration,
        );
        let _ = wait.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(text: &str) -> Price {
        Price::parse(text).expect("a price")
    }

    #[test]
    fn pushes_of_the_three_channels_read_exactly() {
        let quote = read_push(
            r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"futures:btc_usd:last-price",
            "data":{"lastPrice":9990.5,"bid":9990.0,"offer":9991.0,"lastTickDirection":"PlusTick","time":1700}}}"#,
        );
        assert_eq!(
            quote,
            Push::Quote {
                index: Some(usd("9990.5")),
                bid: Some(usd("9990")),
                offer: Some(usd("9991")),
                at_ms: 1700
            }
        );
        let position = read_push(
            r#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"user:positions",
            "data":{"pid":"p","what":"closed","balance":12345}}}"#,
        );
        assert_eq!(
            position,
            Push::Position {
                balance: Some(12345)
            }
        );
        assert_eq!(
            read_push(r#"{"jsonrpc":"2.0","id":"quotes","result":[]}"#),
            Push::Other
        );
        assert_eq!(read_push("not json"), Push::Other);
    }
}
