//! The WASM entry point: hydrates the server-rendered page.

// Leptos views are deeply nested types; the dashboard outgrows the default limit.
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Lazy: a page whose code is a separate chunk is loaded before hydrating it.
    leptos::mount::hydrate_lazy(|| {
        // Runs once the page is hydrated: tells tests (and anyone curious) that
        // it now reacts to input.
        leptos::prelude::request_animation_frame(|| {
            if let Some(body) = leptos::prelude::document().body() {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        });
        app::App()
    });
}
