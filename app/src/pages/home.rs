use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::session::{me, SignOut, SignedInUser};

/// The landing page: the signed-in user's start page, or a welcome for visitors.
#[component]
pub fn HomePage() -> impl IntoView {
    let me = Resource::new_blocking(|| (), |_| me());
    view! {
        <Title text="Ampere" />
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match me.await {
                    Ok(Some(me)) => view! { <SignedIn me /> }.into_any(),
                    Ok(None) => view! { <Welcome /> }.into_any(),
                    Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SignedIn(me: SignedInUser) -> impl IntoView {
    let sign_out = ServerAction::<SignOut>::new();
    view! {
        <section class="card">
            <h1>"Welcome, " <span data-testid="username">{me.username}</span></h1>
            <p>"Your wallet opens here soon: balances, channels and invoices."</p>
            <ActionForm action=sign_out>
                <input type="hidden" name="csrf" value=me.csrf />
                <button type="submit" class="secondary">"Sign out"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn Welcome() -> impl IntoView {
    view! {
        <section class="card">
            <h1>"A Lightning wallet and a futures desk you host yourself"</h1>
            <p class="actions">
                <a class="button" href="/signup">"Create an account"</a>
                <a class="button secondary" href="/signin">"Sign in"</a>
            </p>
        </section>
    }
}
