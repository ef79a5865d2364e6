use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

use super::{action_error, form_error};
use crate::api::lnm::{list_tokens, CreateToken, RevokeToken, TokenEntry};
use crate::api::session::Account;
use crate::components::{CopyButton, SignedIn};

lazy_wallet_page!(TokensPage, "Tokens · Ampere", Tokens);

/// What each scope lets a script do, as the token form offers them.
const SCOPES: [(&str, &str); 4] = [
    ("user", "Read the account and its trading balance"),
    ("positions", "Open, change and close positions"),
    ("deposit", "Ask for deposit invoices"),
    ("withdraw", "Withdraw from the trading balance"),
];

/// How long a new token may live.
const EXPIRIES: [(i64, &str); 5] = [
    (3600, "1 hour"),
    (86_400, "1 day"),
    (7 * 86_400, "1 week"),
    (30 * 86_400, "30 days"),
    (365 * 86_400, "1 year"),
];

/// Tokens for scripts (`Authorization: Bearer` on `/lnm`): create one with
/// scopes and an expiry (shown once, with copy), list them, revoke one.
#[component]
fn Tokens(#[allow(unused_variables)] account: Account) -> impl IntoView {
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_tokens(),
    );
    let chosen = RwSignal::new(vec!["user".to_string(), "positions".to_string()]);
    let expiry = RwSignal::new(EXPIRIES[2].0);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        create.dispatch(CreateToken {
            scopes: chosen.get_untracked(),
            expiry: expiry.get_untracked(),
        });
    };
    let scope_error = action_error(create, Some("scopes"));
    let expiry_error = action_error(create, Some("expiry"));
    let other_error = form_error(create, &["scopes", "expiry"]);
    let revoke_error = action_error(revoke, None);
    view! {
        <h1>"Tokens"</h1>
        <section class="card" aria-labelledby="new-token-title">
            <h2 id="new-token-title">"New token"</h2>
            <form class="form" on:submit=submit>
                <fieldset aria-describedby="scopes-error">
                    <legend>"What it may do"</legend>
                    {SCOPES.into_iter().map(|(scope, what)| view! {
                        <label class="check">
                            <input type="checkbox" name="scopes" value=scope
                                prop:checked=move || chosen.with(|c| c.iter().any(|s| s == scope))
                                on:change=move |ev| {
                                    let on = event_target_checked(&ev);
                                    chosen.update(|c| {
                                        c.retain(|s| s != scope);
                                        if on {
                                            c.push(scope.to_string());
                                        }
                                    });
                                } />
                            <span><strong>{scope}</strong>" · "{what}</span>
                        </label>
                    }).collect_view()}
                    <p class="field-error" id="scopes-error" role="alert">{move || scope_error.get()}</p>
                </fieldset>
                <div class="field">
                    <label for="token-expiry">"Valid for"</label>
                    <select id="token-expiry" aria-describedby="expiry-error"
                        on:change=move |ev| expiry.set(event_target_value(&ev).parse().unwrap_or(EXPIRIES[2].0))>
                        {EXPIRIES.into_iter().map(|(secs, label)| view! {
                            <option value=secs.to_string() selected=move || expiry.get() == secs>{label}</option>
                        }).collect_view()}
                    </select>
                    <p class="field-error" id="expiry-error" role="alert">{move || expiry_error.get()}</p>
                </div>
                <p class="form-error" role="alert">{move || other_error.get()}</p>
                <p class="actions">
                    <button type="submit" disabled=move || create.pending().get() || chosen.with(Vec::is_empty)>
                        "Create token"
                    </button>
                </p>
            </form>
            {move || create.value().get().and_then(Result::ok).map(|token| view! {
                <div class="review" role="status">
                    <p class="success">"Your token. It is shown once: copy it now."</p>
                    <p class="copyable">
                        <code class="wrap small" data-testid="new-token">{token.signature.clone()}</code>
                        <CopyButton text=token.signature label="Copy the token" />
                    </p>
                </div>
            })}
        </section>
        <section class="card list" aria-labelledby="tokens-title">
            <h2 id="tokens-title">"Your tokens"</h2>
            <p class="form-error" role="alert">{move || revoke_error.get()}</p>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match tokens.await {
                        Ok(list) if list.is_empty() => view! { <p class="empty">"No token yet."</p> }.into_any(),
                        Ok(list) => list
                            .into_iter()
                            .map(|t| view! { <TokenRow token=t revoke /> })
                            .collect_view()
                            .into_any(),
                        Err(err) => view! { <p class="form-error">{err.message}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn TokenRow(token: TokenEntry, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    let jti = token.jti.clone();
    let name = format!("Revoke token {}", token.jti.get(..8).unwrap_or(&token.jti));
    let day = |ts: &str| ts.replace('T', " ").get(..16).unwrap_or(ts).to_string() + " UTC";
    view! {
        <article class="row" data-testid="token">
            <div class="grow">
                <strong class="alias">{token.aud.join(", ")}</strong>
                <span class="hint">{format!("Created {} · expires {}", day(&token.iat), day(&token.exp))}</span>
                <code class="small">{token.jti.clone()}</code>
            </div>
            {if token.revoked {
                view! { <span class="badge">"Revoked"</span> }.into_any()
            } else {
                view! {
                    <button type="button" class="secondary small" aria-label=name
                        disabled=move || revoke.pending().get()
                        on:click=move |_| { revoke.dispatch(RevokeToken { jti: Some(jti.clone()) }); }>
                        "Revoke"
                    </button>
                }.into_any()
            }}
        </article>
    }
}
