//! The WASM entry point: hydrates the server-rendered page.

use leptos::mount::hydrate_from_async;
use leptos::prelude::*;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Lazy: a page whose code is a separate chunk is loaded before hydrating it.
    // hydrate_from_async starts Leptos' executor itself.
    wasm_bindgen_futures::spawn_local(async {
        let app = hydrate_from_async(document().body().expect("a body"), app::App).await;
        app.forget();
        // Tells tests (and anyone curious) that the page now reacts to input.
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
}
