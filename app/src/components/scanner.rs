//! Reads a QR code for the Send page: live from the camera where the browser can
//! decode QR codes itself (`BarcodeDetector`), or from a photo the person picks
//! (decoded by the browser when it can, else by the server's `/rest/v1/scanqr`).

use leptos::html;
use leptos::prelude::*;

#[component]
pub fn Scanner(on_read: Callback<String>) -> impl IntoView {
    let video = NodeRef::<html::Video>::new();
    // Known only in the browser, after hydration: the server renders without it.
    let camera = RwSignal::new(false);
    let scanning = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        camera.set(browser::detector().is_some());
    });
    let start = move |_| {
        error.set(None);
        #[cfg(feature = "hydrate")]
        browser::scan_camera(video, scanning, error, on_read);
        #[cfg(not(feature = "hydrate"))]
        let _ = on_read;
    };
    let stop = move |_| scanning.set(false);
    let pick = move |ev: leptos::ev::Event| {
        error.set(None);
        #[cfg(feature = "hydrate")]
        browser::scan_photo(ev, error, on_read);
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    view! {
        <div class="scanner">
            <p class="actions">
                <Show when=move || camera.get() && !scanning.get()>
                    <button type="button" class="secondary" on:click=start>"Scan with the camera"</button>
                </Show>
                <Show when=move || scanning.get()>
                    <button type="button" class="secondary" on:click=stop>"Stop the camera"</button>
                </Show>
                <label class="button secondary file">
                    "Read a photo of a QR code"
                    <input type="file" accept="image/*" on:change=pick />
                </label>
            </p>
            <video node_ref=video class="camera" playsinline muted
                hidden=move || !scanning.get() aria-label="Camera preview"></video>
            <p class="field-error" role="alert">{move || error.get()}</p>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    use js_sys::{Array, Object, Promise, Reflect};
    use leptos::html;
    use leptos::prelude::*;
    use leptos::task::spawn_local;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    #[wasm_bindgen]
    extern "C" {
        /// The Shape Detection API's QR reader (Chromium on Android, macOS, ...).
        pub type BarcodeDetector;
        #[wasm_bindgen(constructor, catch)]
        fn new(options: &JsValue) -> Result<BarcodeDetector, JsValue>;
        #[wasm_bindgen(method)]
        fn detect(this: &BarcodeDetector, source: &JsValue) -> Promise;
    }

    pub fn detector() -> Option<BarcodeDetector> {
        if !Reflect::has(&window(), &"BarcodeDetector".into()).unwrap_or(false) {
            return None;
        }
        let options = Object::new();
        let formats = Array::of1(&"qr_code".into());
        Reflect::set(&options, &"formats".into(), &formats).ok()?;
        BarcodeDetector::new(&options).ok()
    }

    /// The text of the first QR code `detector` finds in `source`, if any.
    async fn detect(detector: &BarcodeDetector, source: &JsValue) -> Option<String> {
        let found = JsFuture::from(detector.detect(source)).await.ok()?;
        let first = Array::from(&found).get(0);
        Reflect::get(&first, &"rawValue".into()).ok()?.as_string()
    }

    async fn sleep(ms: i32) {
        let wait = Promise::new(&mut |resolve, _| {
            let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        });
        let _ = JsFuture::from(wait).await;
    }

    pub fn scan_camera(
        video: NodeRef<html::Video>,
        scanning: RwSignal<bool>,
        error: RwSignal<Option<String>>,
        on_read: Callback<String>,
    ) {
        let (Some(detector), Some(video)) = (detector(), video.get_untracked()) else {
            return;
        };
        scanning.set(true);
        spawn_local(async move {
            let stream = match open_camera().await {
                Ok(stream) => stream,
                Err(message) => {
                    scanning.set(false);
                    error.set(Some(message));
                    return;
                }
            };
            video.set_src_object(Some(&stream));
            let _ = video.play();
            let mut read = None;
            while scanning.get_untracked() && read.is_none() {
                sleep(300).await;
                read = detect(&detector, &video).await;
            }
            for track in stream.get_tracks().iter() {
                track.unchecked_into::<web_sys::MediaStreamTrack>().stop();
            }
            video.set_src_object(None);
            scanning.set(false);
            if let Some(text) = read {
                on_read.run(text);
            }
        });
    }

    async fn open_camera() -> Result<web_sys::MediaStream, String> {
        let denied = || "the camera is not available: allow it, or read a photo".to_string();
        let devices = window().navigator().media_devices().map_err(|_| denied())?;
        let constraints = web_sys::MediaStreamConstraints::new();
        let facing = Object::new();
        Reflect::set(&facing, &"facingMode".into(), &"environment".into()).map_err(|_| denied())?;
        constraints.set_video(&facing);
        let promise = devices
            .get_user_media_with_constraints(&constraints)
            .map_err(|_| denied())?;
        let stream = JsFuture::from(promise).await.map_err(|_| denied())?;
        Ok(stream.unchecked_into())
    }

    pub fn scan_photo(
        ev: leptos::ev::Event,
        error: RwSignal<Option<String>>,
        on_read: Callback<String>,
    ) {
        let input: web_sys::HtmlInputElement = event_target(&ev);
        let Some(file) = input.files().and_then(|files| files.get(0)) else {
            return;
        };
        // The same photo may be picked again after a failure.
        input.set_value("");
        spawn_local(async move {
            let read = match detector() {
                Some(detector) => detect(&detector, &file)
                    .await
                    .ok_or_else(|| "no QR code found in the photo".to_string()),
                None => scan_on_server(&file).await,
            };
            match read {
                Ok(text) => on_read.run(text),
                Err(message) => error.set(Some(message)),
            }
        });
    }

    /// `POST /rest/v1/scanqr` with the photo: `{"text"}` or `{"error":{"message"}}`.
    async fn scan_on_server(file: &web_sys::File) -> Result<String, String> {
        let failed = || "the photo could not be read".to_string();
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_body(file);
        let response = JsFuture::from(window().fetch_with_str_and_init("/rest/v1/scanqr", &init))
            .await
            .map_err(|_| failed())?;
        let response: web_sys::Response = response.unchecked_into();
        let body = JsFuture::from(response.json().map_err(|_| failed())?)
            .await
            .map_err(|_| failed())?;
        if let Some(text) = Reflect::get(&body, &"text".into())
            .ok()
            .and_then(|t| t.as_string())
        {
            return Ok(text);
        }
        let message = Reflect::get(&body, &"error".into())
            .and_then(|e| Reflect::get(&e, &"message".into()))
            .ok()
            .and_then(|m| m.as_string());
        Err(message.unwrap_or_else(failed))
    }
}
