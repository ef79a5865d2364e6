use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

use super::{action_error, asks_code};
use crate::api::lnm::{joule_challenge, lnurl_auth_create, login_joule, LnmError};
use crate::api::session::{nostr_sign_in, provider_error_message, sign_in_providers, SignIn};
use crate::components::{CopyButton, Field, QrCode};

// Its own lazily loaded chunk, so that the dashboard's bundle does not carry
// it (a signed-in person rarely needs it).
lazy_page!(SignInPage, "Sign in · Ampere", SignInForms);

/// The password form beside signing in with a Lightning wallet.
#[component]
fn SignInForms() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    let asks_code = asks_code(action);
    // Sent here by an application's authorization request: back there after.
    let next = leptos_router::hooks::use_location()
        .search
        .with_untracked(|s| {
            super::query_pairs(s)
                .into_iter()
                .find(|(name, _)| name == "next")
                .map(|(_, value)| value)
        });
    view! {
        <div class="sign-in">
            <section class="card narrow">
                <h1>"Sign in"</h1>
                <ActionForm action=action attr:class="form">
                    {next.map(|next| view! { <input type="hidden" name="next" value=next /> })}
                    <Field label="Username" name="username" autocomplete="username"
                        error=action_error(action, Some("username")) />
                    <Field label="Password" name="password" kind="password"
                        autocomplete="current-password" error=action_error(action, Some("password")) />
                    <Show when=move || asks_code.get()>
                        <Field label="Two-factor code" name="otp_code" autocomplete="one-time-code"
                            inputmode="numeric" error=action_error(action, Some("otp_code"))
                            hint=Signal::derive(|| "The 6 digits your authenticator app shows for Ampere.".to_string()) />
                    </Show>
                    <p class="form-error" role="alert">{move || action_error(action, None).get()}</p>
                    <button type="submit" disabled=move || action.pending().get()>"Sign in"</button>
                </ActionForm>
                <p><a href="/reset-password">"Forgot your password?"</a></p>
                <p>"New here? " <a href="/signup">"Create an account"</a></p>
            </section>
            <ProviderSignIn />
            <LightningSignIn />
            <NostrSignIn />
        </div>
    }
}

/// Signing in with the identity providers the operator configured (Google,
/// Keycloak, GitHub): plain links, so they work without JavaScript; the
/// router leaves them to the browser (`rel="external"`). A sign-in the
/// provider sent back refused says why here.
#[component]
fn ProviderSignIn() -> impl IntoView {
    let providers = Resource::new(|| (), |_| sign_in_providers());
    let query = leptos_router::hooks::use_query_map();
    let refused = move || {
        query
            .with(|q| q.get("provider_error"))
            .map(|reason| provider_error_message(&reason))
    };
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let providers = providers.await.unwrap_or_default();
                (!providers.is_empty()).then(|| view! {
                    <section class="card narrow" aria-labelledby="providers-title">
                        <h2 id="providers-title">"Sign in with another account"</h2>
                        <p class="form-error" role="alert">{refused}</p>
                        <p class="actions">
                            {providers.into_iter().map(|(name, label)| view! {
                                <a class="button secondary" rel="external" href=format!("/api/v1/auth/{name}")>
                                    {format!("Sign in with {label}")}
                                </a>
                            }).collect_view()}
                        </p>
                        <p class="hint">"The first time, it makes an account for you here."</p>
                    </section>
                })
            })}
        </Suspense>
    }
}

/// Signing in with a Lightning wallet: an LNURL-auth QR code that signs this
/// page in the moment a phone wallet answers it, and, where the browser has
/// a WebLN wallet, a button that signs the server's one-time challenge.
#[component]
fn LightningSignIn() -> impl IntoView {
    // Asked for in the browser only: each code is a challenge tied to this
    // session, which a page merely rendered (or crawled) should not mint.
    let round = RwSignal::new(0u32);
    let challenge = LocalResource::new(move || {
        round.track();
        lnurl_auth_create()
    });
    let expired = RwSignal::new(false);
    Effect::new(move |_| {
        if let Some(Ok(_)) = challenge.get() {
            expired.set(false);
            #[cfg(feature = "hydrate")]
            browser::await_answer(move || expired.set(true));
        }
    });
    #[cfg(feature = "hydrate")]
    on_cleanup(browser::stop);
    let has_webln = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| has_webln.set(browser::has_webln()));
    let webln = Action::new_local(|_: &()| async move {
        #[cfg(feature = "hydrate")]
        {
            let challenge = joule_challenge().await?;
            let (signature, alias) = browser::webln_sign(&challenge.message)
                .await
                .map_err(LnmError::new)?;
            login_joule(challenge.message, signature, alias).await?;
            browser::go_home();
            Ok::<(), LnmError>(())
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = (joule_challenge, login_joule);
            Err::<(), LnmError>(LnmError::new("a browser wallet signs in the browser only"))
        }
    });
    view! {
        <section class="card narrow" aria-labelledby="lightning-title">
            <h2 id="lightning-title">"Sign in with a Lightning wallet"</h2>
            <p class="hint">"Scan with a wallet that supports LNURL-auth. No password, no e-mail: the wallet's key is your account."</p>
            <Suspense fallback=|| view! { <p class="loading">"Preparing a code…"</p> }>
                {move || challenge.get().map(|reply| match reply {
                    Ok(link) => {
                        let uri = format!("lightning:{}", link.lnurl);
                        view! {
                            <Show
                                when=move || !expired.get()
                                fallback=move || view! {
                                    <p class="status">"This code has expired."</p>
                                    <button type="button" class="secondary" on:click=move |_| round.update(|r| *r += 1)>
                                        "New code"
                                    </button>
                                }
                            >
                                <a href=uri.clone() class="qr-link" aria-label="Open in a wallet on this device">
                                    <QrCode text=uri.clone() label="QR code to sign in with a Lightning wallet" />
                                </a>
                                <p class="copyable">
                                    <code class="wrap small" data-testid="lnurl-auth">{link.lnurl.clone()}</code>
                                    <CopyButton text=link.lnurl.clone() label="Copy the LNURL" />
                                </p>
                                <p class="status" role="status">"Waiting for your wallet…"</p>
                            </Show>
                        }
                        .into_any()
                    }
                    Err(err) => view! { <p class="form-error" role="alert">{err.message}</p> }.into_any(),
                })}
            </Suspense>
            <Show when=move || has_webln.get()>
                <p class="actions">
                    <button type="button" class="secondary" disabled=move || webln.pending().get()
                        on:click=move |_| { webln.dispatch(()); }>
                        "Sign in with a browser wallet"
                    </button>
                </p>
            </Show>
            <p class="form-error" role="alert">
                {move || webln.value().get().and_then(Result::err).map(|e| e.message)}
            </p>
        </section>
    }
}

/// Signing in with a Nostr key, where the browser has an extension that
/// signs for it (NIP-07 `window.nostr`): a NIP-98 event for the sign-in call.
#[component]
fn NostrSignIn() -> impl IntoView {
    let has_nostr = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| has_nostr.set(browser::has_nostr()));
    let nostr = Action::new_local(|_: &()| async move {
        #[cfg(feature = "hydrate")]
        {
            let origin = leptos::prelude::window()
                .location()
                .origin()
                .unwrap_or_default();
            let event = browser::nostr_sign(&format!("{origin}/api/ui/nostr_sign_in"))
                .await
                .map_err(|message| crate::api::ApiError::new(&message))?;
            nostr_sign_in(event).await?;
            browser::go_home();
            Ok::<(), crate::api::ApiError>(())
        }
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = nostr_sign_in;
            Err::<(), crate::api::ApiError>(crate::api::ApiError::new(
                "a Nostr extension signs in the browser only",
            ))
        }
    });
    view! {
        <Show when=move || has_nostr.get()>
            <section class="card narrow" aria-labelledby="nostr-title">
                <h2 id="nostr-title">"Sign in with Nostr"</h2>
                <p class="hint">"Your browser's Nostr extension signs a one-time request. The first time, it makes an account for your key."</p>
                <p class="actions">
                    <button type="button" class="secondary" disabled=move || nostr.pending().get()
                        on:click=move |_| { nostr.dispatch(()); }>
                        "Sign in with Nostr"
                    </button>
                </p>
                <p class="form-error" role="alert">
                    {move || nostr.value().get().and_then(Result::err).map(|e| e.error.message)}
                </p>
            </section>
        </Show>
    }
}

#[cfg(feature = "hydrate")]
pub(crate) mod browser {
    use std::cell::RefCell;

    use js_sys::{Function, Promise, Reflect};
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    thread_local! {
        static WAITING: RefCell<Option<web_sys::EventSource>> = const { RefCell::new(None) };
    }

    /// Listens for this session's LNURL-auth answer: signs the page in when it
    /// comes; `expired` runs when the challenge can no longer be answered.
    pub fn await_answer(expired: impl Fn() + 'static) {
        if let Some(old) = WAITING.with(|w| w.borrow_mut().take()) {
            old.close();
        }
        let Ok(source) = web_sys::EventSource::new("/lnm/lnurl/a/events") else {
            return;
        };
        let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |message: web_sys::MessageEvent| {
                let answered = message
                    .data()
                    .as_string()
                    .is_some_and(|data| data.contains("challenge_answered"));
                if answered {
                    stop();
                    go_home();
                }
            },
        );
        source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        on_message.forget();
        // A dropped connection is retried by the browser; once the challenge
        // expired the retry is refused and the source closes: the page then
        // offers a new code.
        let watched = source.clone();
        let on_error = Closure::<dyn FnMut()>::new(move || {
            if watched.ready_state() == web_sys::EventSource::CLOSED {
                stop();
                expired();
            }
        });
        source.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
        WAITING.with(|w| *w.borrow_mut() = Some(source));
    }

    /// Stops listening (an answer came, or the page is left).
    pub fn stop() {
        if let Some(source) = WAITING.with(|w| w.borrow_mut().take()) {
            source.close();
        }
    }

    /// The signed-in home page, loaded whole (the session changed).
    pub fn go_home() {
        let _ = leptos::prelude::window().location().assign("/");
    }

    fn webln() -> Option<JsValue> {
        let webln = Reflect::get(&leptos::prelude::window(), &"webln".into()).ok()?;
        (!webln.is_undefined() && !webln.is_null()).then_some(webln)
    }

    pub fn has_webln() -> bool {
        webln().is_some()
    }

    /// Calls `webln.<method>(arg)` and waits for its promise.
    async fn call(webln: &JsValue, method: &str, arg: Option<&JsValue>) -> Result<JsValue, String> {
        let function: Function = Reflect::get(webln, &method.into())
            .ok()
            .and_then(|f| f.dyn_into().ok())
            .ok_or_else(|| format!("the browser wallet has no {method}"))?;
        let returned = match arg {
            Some(arg) => function.call1(webln, arg),
            None => function.call0(webln),
        }
        .map_err(describe)?;
        JsFuture::from(Promise::resolve(&returned))
            .await
            .map_err(describe)
    }

    fn describe(err: JsValue) -> String {
        let message = Reflect::get(&err, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .or_else(|| err.as_string())
            .unwrap_or_else(|| "it refused".into());
        format!("The browser wallet did not sign: {message}")
    }

    fn nostr() -> Option<JsValue> {
        let nostr = Reflect::get(&leptos::prelude::window(), &"nostr".into()).ok()?;
        (!nostr.is_undefined() && !nostr.is_null()).then_some(nostr)
    }

    pub fn has_nostr() -> bool {
        nostr().is_some()
    }

    /// Has the browser's Nostr extension sign a NIP-98 event (kind 27235) for
    /// a POST to `url`: the signed event, as JSON.
    pub async fn nostr_sign(url: &str) -> Result<String, String> {
        let nostr = nostr().ok_or("no Nostr extension on this page")?;
        let quoted = js_sys::JSON::stringify(&url.into())
            .ok()
            .and_then(|q| q.as_string())
            .ok_or("the URL does not encode")?;
        let created_at = (js_sys::Date::now() / 1000.0).floor();
        let unsigned = js_sys::JSON::parse(&format!(
            r#"{{"kind":27235,"created_at":{created_at},"tags":[["u",{quoted}],["method","POST"]],"content":""}}"#
        ))
        .map_err(describe)?;
        let signed = call(&nostr, "signEvent", Some(&unsigned)).await?;
        js_sys::JSON::stringify(&signed)
            .ok()
            .and_then(|text| text.as_string())
            .ok_or_else(|| "the Nostr extension answered no event".to_string())
    }

    /// Has the browser's WebLN wallet sign `message`: answers the signature
    /// and the wallet node's alias (empty when it gives none).
    pub async fn webln_sign(message: &str) -> Result<(String, String), String> {
        let webln = webln().ok_or("no browser wallet on this page")?;
        call(&webln, "enable", None).await?;
        let signed = call(&webln, "signMessage", Some(&message.into())).await?;
        let signature = Reflect::get(&signed, &"signature".into())
            .ok()
            .and_then(|s| s.as_string())
            .ok_or("the browser wallet answered no signature")?;
        let alias = match call(&webln, "getInfo", None).await {
            Ok(info) => Reflect::get(&info, &"node".into())
                .and_then(|node| Reflect::get(&node, &"alias".into()))
                .ok()
                .and_then(|a| a.as_string())
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        Ok((signature, alias))
    }
}
