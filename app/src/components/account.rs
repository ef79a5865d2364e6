//! The frame of every wallet page: the signed-in account (or a way to sign in),
//! the navigation, and the wallet's data kept fresh by the live updates.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_router::components::A;

use super::{Live, Realtime};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::mylightning::{get_all_data, get_summary, DataResponse, SummaryResponse};
use crate::api::session::{me, Account, SignOut};
use crate::api::ApiError;

/// Renders `page` for the signed-in account, or `visitor` (by default, a link to
/// sign in) for everyone else.
#[component]
pub fn SignedIn(
    page: fn(Account) -> AnyView,
    #[prop(optional)] visitor: Option<fn() -> AnyView>,
) -> impl IntoView {
    let me = Resource::new_blocking(|| (), |_| me());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(account)) => {
                        Live::get().connect();
                        view! {
                            <WalletNav csrf=account.csrf.clone() />
                            {page(account)}
                        }
                            .into_any()
                    }
                    Ok(None) => visitor.map_or_else(|| view! { <SignedOut /> }.into_any(), |v| v()),
                    Err(err) => view! { <ErrorCard err /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SignedOut() -> impl IntoView {
    view! {
        <section class="card narrow">
            <h1>"You are signed out"</h1>
            <p class="actions">
                <a class="button" href="/signin">"Sign in"</a>
                <a class="button secondary" href="/signup">"Create an account"</a>
            </p>
        </section>
    }
}

/// A failure to load a page's data, where the data would be.
#[component]
pub fn ErrorCard(err: ApiError) -> impl IntoView {
    view! { <p class="form-error card" role="alert">{err.to_string()}</p> }
}

/// Where a signed-in person can go: the wallet's pages, then the desk's.
const DESTINATIONS: [(&str, &str); 12] = [
    ("/", "Dashboard"),
    ("/receive", "Receive"),
    ("/send", "Send"),
    ("/channels", "Channels"),
    ("/contacts", "Contacts"),
    ("/history", "History"),
    ("/trade", "Trade"),
    ("/positions", "Positions"),
    ("/funding", "Funding"),
    ("/tokens", "Tokens"),
    ("/security", "Security"),
    ("/settings", "Settings"),
];

/// Every destination in one row on a wide screen; on a phone, a menu button
/// that opens all of them at once (a `details` element: no script needed).
#[component]
fn WalletNav(csrf: String) -> impl IntoView {
    let links = || {
        DESTINATIONS
            .into_iter()
            .map(|(href, label)| view! { <li><A href=href exact=true>{label}</A></li> })
            .collect_view()
    };
    let location = leptos_router::hooks::use_location();
    let here = move || {
        let path = location.pathname.get();
        DESTINATIONS
            .iter()
            .find(|(href, _)| *href == path)
            .map_or("Menu", |(_, label)| *label)
    };
    // A link followed inside the open menu closes it.
    let menu = NodeRef::<leptos::html::Details>::new();
    let close_menu = move |_| {
        if let Some(menu) = menu.get() {
            menu.set_open(false);
        }
    };
    view! {
        <nav class="wallet-nav" aria-label="Main">
            <ul class="nav-wide">{links()}</ul>
            <details class="nav-menu" node_ref=menu>
                <summary>
                    <span aria-hidden="true">"☰ "</span>
                    {here}
                    <span class="visually-hidden">" — open the menu"</span>
                </summary>
                <ul on:click=close_menu>{links()}</ul>
            </details>
            <SignOutButton csrf />
        </nav>
    }
}

/// Ends the session: a plain form, so it also works without JavaScript; with
/// it, the action posts the same field and the router follows the server's
/// redirect in place.
#[component]
pub fn SignOutButton(csrf: String) -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    let live = Live::get();
    let realtime = Realtime::get();
    let token = StoredValue::new(csrf.clone());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        // The account's streams end here: whoever signs in next opens their own.
        live.disconnect();
        realtime.disconnect();
        sign_out.dispatch(SignOut {
            csrf: token.get_value(),
        });
    };
    view! {
        <form method="post" action=SignOut::PATH class="sign-out" on:submit=submit>
            <input type="hidden" name="csrf" value=csrf />
            <button type="submit" class="secondary" disabled=move || sign_out.pending().get()>
                "Sign out"
            </button>
        </form>
    }
}

/// The wallet's `getalldata`, read again whenever the account's money or
/// channels change or a block is mined (channels count confirmations).
pub fn wallet_data() -> Resource<Result<DataResponse, ApiError>> {
    let live = Live::get();
    Resource::new_blocking(move || live.everything(), |_| get_all_data())
}

/// `getalldata` for a page that shows no heights or confirmations (the address
/// book): read again when money or channels change, not at every block.
pub fn wallet_data_without_blocks() -> Resource<Result<DataResponse, ApiError>> {
    let live = Live::get();
    Resource::new_blocking(move || live.funds(), |_| get_all_data())
}

/// The dashboard's summary (balances and the block height), read again
/// whenever either changes.
pub fn wallet_summary() -> Resource<Result<SummaryResponse, ApiError>> {
    let live = Live::get();
    Resource::new_blocking(move || live.everything(), |_| get_summary())
}

/// Shows `render` of the wallet's data; while it is read again, the previous
/// figures stay on screen.
#[component]
pub fn WithData<T>(data: Resource<Result<T, ApiError>>, render: fn(T) -> AnyView) -> impl IntoView
where
    T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading your wallet…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => render(data),
                    Err(err) => view! { <ErrorCard err /> }.into_any(),
                }
            })}
        </Transition>
    }
}
