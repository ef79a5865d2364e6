//! The Leptos application: pages and components rendered on the server and
//! hydrated in the browser, and the server functions they (and scripts) call.

// Leptos views are deeply nested types; the wallet pages outgrow the default.
#![recursion_limit = "256"]

pub mod api;
mod components;
mod pages;
pub mod qr;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{Lazy, SsrMode, StaticSegment};

use components::{Live, Realtime};
use pages::{
    AuthorizePage, ChannelsPage, ContactsPage, FundingPage, HistoryPage, HomePage, NotFound,
    PositionsPage, ReceivePage, ResetPasswordPage, SecurityPage, SendPage, SettingsPage,
    SignInPage, SignUpPage, TokensPage, TradePage,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    content_security_policy(&[]);
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                // The same on every page: written here, on the server, the
                // bundle carries no code for them.
                <meta name="color-scheme" content="light dark" />
                <meta name="theme-color" content="#6b3fd4" />
                <link rel="stylesheet" id="leptos" href="/pkg/ampere.css" />
                <link rel="manifest" href="/manifest.webmanifest" />
                <link rel="icon" href="/icon.svg" />
                <link rel="apple-touch-icon" href="/icon-192.png" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Inline scripts run only with this response's nonce (the hydration script),
/// other scripts only from this site (the bundle and the pages' chunks; nothing
/// here serves user text as a script, and `nosniff` is on), so text a user typed
/// can never run as a script; no other site may frame the wallet. Forms post
/// to this site, and to `form_targets` (origins): the consent page's answer
/// is redirected to the application that asked.
#[cfg(feature = "ssr")]
pub(crate) fn content_security_policy(form_targets: &[String]) {
    use axum::http::{header, HeaderValue};
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    let policy = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
         media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; frame-ancestors 'none'; form-action 'self'{}",
        form_targets
            .iter()
            .map(|origin| format!(" {origin}"))
            .collect::<String>()
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    Live::provide();
    Realtime::provide();
    view! {
        <Title text="Ampere" />
        <Router>
            <header class="topbar">
                <a href="/" class="brand">"⚡ Ampere"</a>
            </header>
            <main>
                <Routes fallback=NotFound>
                    // Async: the page is sent whole once its data is read, so it
                    // reads complete without JavaScript (out-of-order streaming
                    // needs JS) and goes out in one write.
                    <Route path=StaticSegment("") view=HomePage ssr=SsrMode::Async />
                    <Route path=StaticSegment("receive") view={Lazy::<ReceivePage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("send") view={Lazy::<SendPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("channels") view={Lazy::<ChannelsPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("contacts") view={Lazy::<ContactsPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("history") view={Lazy::<HistoryPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("trade") view={Lazy::<TradePage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("positions") view={Lazy::<PositionsPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("funding") view={Lazy::<FundingPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("tokens") view={Lazy::<TokensPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("settings") view={Lazy::<SettingsPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("security") view={Lazy::<SecurityPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("signin") view={Lazy::<SignInPage>::new()} ssr=SsrMode::Async />
                    <Route path=(StaticSegment("connect"), StaticSegment("authorize")) view={Lazy::<AuthorizePage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("signup") view={Lazy::<SignUpPage>::new()} ssr=SsrMode::Async />
                    <Route path=StaticSegment("reset-password") view={Lazy::<ResetPasswordPage>::new()} ssr=SsrMode::Async />
                </Routes>
            </main>
        </Router>
    }
}
