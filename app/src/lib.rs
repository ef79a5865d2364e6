//! The Leptos application: pages and components rendered on the server and
//! hydrated in the browser, and the server functions they (and scripts) call.

pub mod api;
mod components;
mod pages;
pub mod qr;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{SsrMode, StaticSegment};

use pages::{HomePage, NotFound, SignInPage, SignUpPage};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/ampere.css" />
        <Title text="Ampere" />
        <Meta name="color-scheme" content="light dark" />
        <Link rel="manifest" href="/manifest.webmanifest" />
        <Link rel="icon" href="/icon.svg" />
        <Router>
            <header class="topbar">
                <a href="/" class="brand">"⚡ Ampere"</a>
            </header>
            <main>
                <Routes fallback=NotFound>
                    // In order: the page's data is in the HTML itself, so it reads
                    // complete without JavaScript (out-of-order streaming needs JS).
                    <Route path=StaticSegment("") view=HomePage ssr=SsrMode::InOrder />
                    <Route path=StaticSegment("signin") view=SignInPage />
                    <Route path=StaticSegment("signup") view=SignUpPage />
                </Routes>
            </main>
        </Router>
    }
}
