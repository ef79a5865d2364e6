use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_location;
use leptos_router::{lazy_route, LazyRoute};

use super::query_pairs;
use crate::api::oauth::{
    authorization_request, decide_authorization, AuthorizationQuery, ConsentView,
};

// Its own chunk: only people sent by an application see it.
lazy_page!(
    AuthorizePage,
    "Authorise an application · Ampere",
    Authorize
);

/// `/connect/authorize`: an application asks to act for the signed-in
/// person. The page names it and what it asks; the answer sends the browser
/// back to it (with a code, or refused). Without JavaScript the forms post
/// to the server's `POST /connect/authorize`; with it, the page asks
/// `decide_authorization` and goes where that says.
#[component]
fn Authorize() -> impl IntoView {
    let search = use_location().search;
    let request = move || {
        let pairs = search.with(|s| query_pairs(s));
        let get = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        AuthorizationQuery {
            response_type: get("response_type"),
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            scope: get("scope"),
            state: get("state"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
        }
    };
    let consent = Resource::new(request, authorization_request);
    view! {
        // The request's state and challenge are in this page's address.
        <Meta name="referrer" content="no-referrer" />
        <section class="card narrow" aria-labelledby="consent-title">
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match consent.await {
                        Ok(ConsentView::Ask { client_name, scopes, redirect_origin, username, csrf }) => view! {
                            <Ask request=request() client_name scopes redirect_origin username csrf />
                        }.into_any(),
                        Ok(ConsentView::Unsafe(why)) => view! {
                            <h1 id="consent-title">"This request cannot go on"</h1>
                            <p class="form-error" role="alert" data-testid="consent-unsafe">{why}</p>
                            <p class="hint">"Nothing was shared. Close this page, or go back to the application and try again."</p>
                        }.into_any(),
                        Ok(ConsentView::SentOn(to)) => view! {
                            <h1 id="consent-title">"One moment…"</h1>
                            <p><a href=to rel="external">"Continue"</a></p>
                        }.into_any(),
                        Err(err) => view! {
                            <h1 id="consent-title">"This request cannot go on"</h1>
                            <p class="form-error" role="alert">{err.error.message}</p>
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn Ask(
    request: AuthorizationQuery,
    client_name: String,
    scopes: Vec<(String, String)>,
    redirect_origin: String,
    username: String,
    csrf: String,
) -> impl IntoView {
    let answer = Action::new(
        move |(query, decision, csrf): &(AuthorizationQuery, String, String)| {
            decide_authorization(query.clone(), decision.clone(), csrf.clone())
        },
    );
    Effect::new(move |_| {
        if let Some(Ok(url)) = answer.value().get() {
            #[cfg(feature = "hydrate")]
            let _ = window().location().set_href(&url);
            #[cfg(not(feature = "hydrate"))]
            let _ = url;
        }
    });
    let form = move |decision: &'static str, label: &'static str, class: &'static str| {
        let (request, csrf) = (request.clone(), csrf.clone());
        let hidden = request
            .fields()
            .into_iter()
            .map(|(name, value)| view! { <input type="hidden" name=name value=value /> })
            .collect_view();
        let sent = (request.clone(), decision.to_string(), csrf.clone());
        view! {
            <form method="post" action="/connect/authorize" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                answer.dispatch(sent.clone());
            }>
                {hidden}
                <input type="hidden" name="_csrf" value=csrf />
                <input type="hidden" name="decision" value=decision />
                <button type="submit" class=class disabled=move || answer.pending().get()
                    data-testid=format!("consent-{decision}")>{label}</button>
            </form>
        }
    };
    view! {
        <h1 id="consent-title">"Authorise " <span data-testid="consent-client">{client_name.clone()}</span> "?"</h1>
        <p>{format!("Signed in as {username}. {client_name} asks to:")}</p>
        <ul class="scopes" data-testid="consent-scopes">
            {scopes.into_iter().map(|(name, meaning)| view! {
                <li><strong>{name}</strong>": "{meaning}</li>
            }).collect_view()}
        </ul>
        <p class="hint">{format!("Your answer sends you back to {redirect_origin}. You can revoke it any time on the security page.")}</p>
        <p class="form-error" role="alert">
            {move || answer.value().get().and_then(Result::err).map(|e| e.error.message)}
        </p>
        <div class="actions">
            {form("approve", "Authorise", "")}
            {form("deny", "Deny", "secondary")}
        </div>
    }
}
