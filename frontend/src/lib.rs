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

/// Room for the WASM splitter (`cargo leptos build --split`). It lays each
/// module's share of the read-only data out again, aligned per module, and
/// when the result outgrows the linker's segment by even a byte it puts the
/// whole segment (every page's strings, 160 KB) into the main module, which
/// doubles what the dashboard downloads. This block is kept by the linker
/// but used by no code, so the splitter emits it nowhere: it only leaves the
/// segment that much longer than what the splitter needs.
#[used]
static SPLITTER_SLACK: [u8; 8192] = [0x5a; 8192];
