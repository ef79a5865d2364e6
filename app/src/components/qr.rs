use leptos::prelude::*;

/// A QR code drawn by the server as SVG (the WASM bundle carries no encoder).
#[component]
pub fn QrCode(text: String, label: &'static str) -> impl IntoView {
    let drawing = Resource::new(move || text.clone(), crate::qr::qr_svg);
    view! {
        <Suspense fallback=|| view! { <div class="qr loading">"…"</div> }>
            {move || Suspend::new(async move {
                let svg = drawing.await.unwrap_or_default();
                view! { <div class="qr" inner_html=svg role="img" aria-label=label></div> }
            })}
        </Suspense>
    }
}
