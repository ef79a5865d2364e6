//! The desk live: the `/lnm/realtime` WebSocket (JSON-RPC 2.0) turned into
//! signals. The latest quote changes at every tick; a counter moves when one of
//! the account's positions changes (filled, triggered, liquidated, closed): the
//! pages then read the positions and the balance again from the server, which
//! also sees deposits and withdrawals the socket does not tell. The socket
//! reconnects by itself, and a reconnection counts as a change of the
//! positions (events may have been missed). It only reads; it never changes
//! data itself.

use contract::Price;
use leptos::prelude::*;

use crate::api::desk::Exposure;

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
    /// The P&L of a filled position at this quote, as the server values it (a
    /// long at the bid, a short at the offer), never a loss beyond the margin.
    pub fn pl_of(self, position: &Exposure) -> Option<i64> {
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
    connected: RwSignal<bool>,
}

impl Realtime {
    /// Makes the desk's live data available to every page (once, in the app).
    pub fn provide() {
        provide_context(Realtime {
            quote: RwSignal::new(None),
            positions: RwSignal::new(0),
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

    /// The same, untracked: whether an answer read since is still the latest.
    pub fn positions_untracked(self) -> u64 {
        self.positions.get_untracked()
    }

    /// Asks the desk pages to read their positions again (after an action).
    pub fn refresh(self) {
        self.positions.update(|v| *v += 1);
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

    /// Closes the socket and stops reconnecting (at sign-out: the next
    /// account opens its own).
    pub fn disconnect(self) {
        #[cfg(feature = "hydrate")]
        browser::disconnect();
        self.connected.set(false);
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
    Position,
    Other,
}

/// One message of the socket, as far as the pages read it (typed, and its
/// prices kept as the JSON text they were sent as, so they read exactly).
#[cfg(any(feature = "hydrate", test))]
#[derive(serde::Deserialize)]
struct Message<'a> {
    method: Option<&'a str>,
    #[serde(borrow)]
    params: Option<Params<'a>>,
}

#[cfg(any(feature = "hydrate", test))]
#[derive(serde::Deserialize)]
struct Params<'a> {
    channel: &'a str,
    #[serde(borrow)]
    data: Data<'a>,
}

#[cfg(any(feature = "hydrate", test))]
#[derive(serde::Deserialize)]
struct Data<'a> {
    #[serde(default)]
    time: i64,
    #[serde(borrow)]
    index: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, rename = "lastPrice")]
    last_price: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    bid: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    offer: Option<&'a serde_json::value::RawValue>,
}

#[cfg(any(feature = "hydrate", test))]
fn read_push(text: &str) -> Push {
    // A JSON number of USD (`9990.5`), exactly; anything else is no price.
    let price = |raw: Option<&serde_json::value::RawValue>| raw.and_then(|r| Price::parse(r.get()));
    let Ok(Message {
        method: Some("subscription"),
        params: Some(Params { channel, data }),
    }) = serde_json::from_str::<Message>(text)
    else {
        return Push::Other;
    };
    match channel {
        "futures:btc_usd:index" => Push::Quote {
            index: price(data.index),
            bid: None,
            offer: None,
            at_ms: data.time,
        },
        "futures:btc_usd:last-price" => Push::Quote {
            index: price(data.last_price),
            bid: price(data.bid),
            offer: price(data.offer),
            at_ms: data.time,
        },
        "user:positions" => Push::Position,
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
            } => {
                let Some(index) = index else { return };
                let last = self.quote.get_untracked().unwrap_or(LiveQuote {
                    index,
                    bid: bid.unwrap_or(index),
                    offer: offer.unwrap_or(index),
                    at_ms,
                });
                let next = LiveQuote {
                    index,
                    bid: bid.unwrap_or(last.bid),
                    offer: offer.unwrap_or(last.offer),
                    at_ms,
                };
                // Both channels push each tick: the second one usually
                // changes nothing, and wakes nothing.
                if at_ms >= last.at_ms && self.quote.get_untracked() != Some(next) {
                    self.quote.set(Some(next));
                }
            }
            Push::Position => self.refresh(),
            Push::Other => {}
        }
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::RefCell;
    use std::time::Duration;

    use futures::channel::oneshot;
    use futures::{SinkExt, StreamExt};
    use gloo_net::websocket::{futures::WebSocket, Message};

    use super::{read_push, Realtime};
    use leptos::prelude::*;

    thread_local! {
        /// Held while a socket runs; dropping it stops the socket for good.
        static STOP: RefCell<Option<oneshot::Sender<()>>> = const { RefCell::new(None) };
    }

    /// Public quotes in one request, the account's positions in another: a
    /// visitor's second request is refused and the first still stands.
    const SUBSCRIBE: [&str; 2] = [
        r#"{"jsonrpc":"2.0","id":"quotes","method":"subscribe","params":["futures:btc_usd:last-price","futures:btc_usd:index"]}"#,
        r#"{"jsonrpc":"2.0","id":"positions","method":"subscribe","params":["user:positions"]}"#,
    ];

    pub fn connect(realtime: Realtime) {
        if STOP.with(|stop| stop.borrow().is_some()) {
            return;
        }
        let (stop, stopped) = oneshot::channel::<()>();
        STOP.with(|slot| *slot.borrow_mut() = Some(stop));
        leptos::task::spawn_local(async move {
            let running = std::pin::pin!(run(realtime));
            // Dropping the loop drops its socket, which closes it.
            let _ = futures::future::select(running, stopped).await;
        });
    }

    pub fn disconnect() {
        STOP.with(|slot| slot.borrow_mut().take());
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

    /// One socket, until it ends; answers whether it carried anything (a
    /// server that refuses at once counts as a failure, and waits longer).
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
        let mut carried = false;
        while let Some(Ok(message)) = read.next().await {
            carried = true;
            if let Message::Text(text) = message {
                realtime.apply(read_push(&text));
            }
        }
        carried
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
        assert_eq!(position, Push::Position);
        assert_eq!(
            read_push(r#"{"jsonrpc":"2.0","id":"quotes","result":[]}"#),
            Push::Other
        );
        assert_eq!(read_push("not json"), Push::Other);
        // A price sent as text is no price; an index tick reads its own field.
        assert_eq!(
            read_push(
                r#"{"method":"subscription","params":{"channel":"futures:btc_usd:index",
                "data":{"index":"9990","time":5}}}"#
            ),
            Push::Quote {
                index: None,
                bid: None,
                offer: None,
                at_ms: 5
            }
        );
        assert_eq!(
            read_push(
                r#"{"method":"subscription","params":{"channel":"futures:btc_usd:index",
                "data":{"index":100000.25,"time":6}}}"#
            ),
            Push::Quote {
                index: Some(usd("100000.25")),
                bid: None,
                offer: None,
                at_ms: 6
            }
        );
    }
}
