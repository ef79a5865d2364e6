//! Live updates: the server's event stream (`GET /rest/v1/events`) turned into
//! signals, so balances, invoices and channels change on screen without a reload.
//! It only reads; it never changes data itself.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;

#[derive(Clone, Copy)]
pub struct Live {
    /// Moves on after events: data that may have changed is read again.
    pub version: RwSignal<u64>,
    /// Payment hashes of the invoices settled since the page loaded.
    pub settled: RwSignal<Vec<String>>,
}

impl Live {
    /// Makes the live updates available to every page (once, in the app).
    pub fn provide() {
        provide_context(Live {
            version: RwSignal::new(0),
            settled: RwSignal::new(Vec::new()),
        });
    }

    pub fn get() -> Self {
        expect_context()
    }

    /// Asks the pages to read their data again (after the user changed it).
    pub fn refresh(self) {
        self.version.update(|v| *v += 1);
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
        static REFRESH_DUE: Cell<bool> = const { Cell::new(false) };
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
                if let Some(Event {
                    kind,
                    payment_hash: Some(hash),
                }) = event
                {
                    if kind == "invoice_settled" {
                        live.settled.update(|settled| settled.push(hash));
                    }
                }
                refresh_soon(live);
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
                refresh_soon(live);
            }
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        on_open.forget();
        SOURCE.with(|s| *s.borrow_mut() = Some(source));
    }

    fn refresh_soon(live: Live) {
        if REFRESH_DUE.with(|due| due.replace(true)) {
            return;
        }
        set_timeout(
            move || {
                REFRESH_DUE.with(|due| due.set(false));
                live.refresh();
            },
            std::time::Duration::from_millis(150),
        );
    }
}
