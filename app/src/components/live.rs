//! Live updates: the server's event stream (`GET /rest/v1/events`) turned into
//! signals, so balances, invoices and channels change on screen without a reload.
//! Events are sorted by what they concern: the account's money and channels
//! (`funds`), or the chain (`chain`, a block was mined); a page reads again only
//! what its data depends on. It only reads; it never changes data itself.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

#[derive(Clone, Copy)]
pub struct Live {
    /// Moves on when the account's payments, invoices, coins or channels change.
    funds: RwSignal<u64>,
    /// Moves on when a block is mined (heights, confirmations).
    chain: RwSignal<u64>,
    /// Payment hashes of the invoices settled since the page loaded.
    pub settled: RwSignal<Vec<String>>,
}

impl Live {
    /// Makes the live updates available to every page (once, in the app).
    pub fn provide() {
        provide_context(Live {
            funds: RwSignal::new(0),
            chain: RwSignal::new(0),
            settled: RwSignal::new(Vec::new()),
        });
    }

    pub fn get() -> Self {
        expect_context()
    }

    /// Tracks the account's money and channels: data that depends on them only.
    pub fn funds(self) -> u64 {
        self.funds.get()
    }

    /// Tracks the money, the channels and the chain.
    pub fn everything(self) -> (u64, u64) {
        (self.funds.get(), self.chain.get())
    }

    /// Asks the pages to read their data again (after the user changed it, or
    /// when events may have been missed).
    pub fn refresh(self) {
        self.funds.update(|v| *v += 1);
        self.chain.update(|v| *v += 1);
    }

    /// Reads the pages' data again each time `action` finishes.
    pub fn refresh_after<S>(self, action: ServerAction<S>)
    where
        S: ServerFn + Clone + Send + Sync + 'static,
        S::Output: Send + Sync + 'static,
        S::Error: Send + Sync + 'static,
    {
        Effect::new(move |_| {
            if action.version().get() > 0 {
                self.refresh();
            }
        });
    }

    /// Opens the event stream, once per page load, in the browser only. A burst
    /// of events (six blocks mined) causes one refresh.
    pub fn connect(self) {
        #[cfg(feature = "hydrate")]
        browser::connect(self);
    }

    /// Closes the event stream (at sign-out: the account's events stop here).
    pub fn disconnect(self) {
        #[cfg(feature = "hydrate")]
        browser::disconnect();
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::cell::{Cell, RefCell};

    use serde::Deserialize;
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    use super::Live;
    use leptos::prelude::*;

    /// The fields of an event the pages look at.
    #[derive(Deserialize)]
    struct Event {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        payment_hash: Option<String>,
    }

    thread_local! {
        static SOURCE: RefCell<Option<web_sys::EventSource>> = const { RefCell::new(None) };
        /// Concerns to read again when the burst's timer fires: (funds, chain).
        static DUE: Cell<(bool, bool)> = const { Cell::new((false, false)) };
    }

    pub fn disconnect() {
        if let Some(source) = SOURCE.with(|s| s.borrow_mut().take()) {
            source.close();
        }
    }

    pub fn connect(live: Live) {
        if SOURCE.with(|s| s.borrow().is_some()) {
            return;
        }
        let Ok(source) = web_sys::EventSource::new("/rest/v1/events") else {
            return;
        };
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |message: web_sys::MessageEvent| {
                let event = message
                    .data()
                    .as_string()
                    .and_then(|data| serde_json::from_str::<Event>(&data).ok());
                let concern = match &event {
                    Some(Event { kind, .. }) if kind == "block_mined" => Concern::Chain,
                    Some(Event { kind, .. }) if kind == "lagged" => Concern::Everything,
                    Some(_) => Concern::Funds,
                    None => Concern::Everything,
                };
                if let Some(Event {
                    kind,
                    payment_hash: Some(hash),
                }) = event
                {
                    if kind == "invoice_settled" {
                        live.settled.update(|settled| settled.push(hash));
                    }
                }
                refresh_soon(live, concern);
            },
        );
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        // After a reconnection (server restart, network change) events may have
        // been missed: read everything again. Not on the first opening: the page
        // has just been rendered with fresh data.
        let opened = Cell::new(false);
        let on_open = Closure::<dyn FnMut()>::new(move || {
            if opened.replace(true) {
                refresh_soon(live, Concern::Everything);
            }
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        on_open.forget();
        SOURCE.with(|s| *s.borrow_mut() = Some(source));
    }

    /// What an event may have changed.
    #[derive(Clone, Copy)]
    enum Concern {
        Funds,
        Chain,
        Everything,
    }

    /// A burst of events (six blocks mined) causes one read of each concern.
    fn refresh_soon(live: Live, concern: Concern) {
        let (funds, chain) = match concern {
            Concern::Funds => (true, false),
            Concern::Chain => (false, true),
            Concern::Everything => (true, true),
        };
        let was = DUE.with(|due| {
            let (f, c) = due.get();
            due.set((f || funds, c || chain));
            f || c
        });
        if was {
            return;
        }
        set_timeout(
            move || {
                let (funds, chain) = DUE.with(|due| due.replace((false, false)));
                if funds {
                    live.funds.update(|v| *v += 1);
                }
                if chain {
                    live.chain.update(|v| *v += 1);
                }
            },
            std::time::Duration::from_millis(150),
        );
    }
}
