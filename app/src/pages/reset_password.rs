use leptos::prelude::*;
use leptos_meta::{Meta, Title};
use leptos_router::hooks::use_query_map;
use leptos_router::{lazy_route, LazyRoute};

use super::action_error;
use crate::api::session::{RequestPasswordReset, ResetPassword};
use crate::components::Field;

// Its own lazily loaded chunk: few visits need it.
lazy_page!(
    ResetPasswordPage,
    "Reset your password · Ampere",
    ResetPasswordForms
);

/// `/reset-password`: asks for a reset link by e-mail; opened from a link
/// (`?key=...`), sets the new password.
#[component]
fn ResetPasswordForms() -> impl IntoView {
    let key = move || use_query_map().read().get("key").filter(|k| !k.is_empty());
    view! {
        // The link's key is in this page's address: never send it on.
        <Meta name="referrer" content="no-referrer" />
        <section class="card narrow">
            {move || match key() {
                Some(key) => view! { <NewPassword key /> }.into_any(),
                None => view! { <AskForLink /> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn AskForLink() -> impl IntoView {
    let action = ServerAction::<RequestPasswordReset>::new();
    let sent = move || matches!(action.value().get(), Some(Ok(())));
    view! {
        <h1>"Forgot your password?"</h1>
        <Show
            when=sent
            fallback=move || view! {
                <p class="hint">"Give the e-mail address of your account. We send it a link to choose a new password."</p>
                <ActionForm action=action attr:class="form">
                    <Field label="E-mail address" name="email" kind="email" autocomplete="email"
                        error=action_error(action, Some("email")) />
                    <p class="form-error" role="alert">{move || action_error(action, None).get()}</p>
                    <button type="submit" disabled=move || action.pending().get()>"Send the link"</button>
                </ActionForm>
            }
        >
            <p class="status" role="status">
                "If an account has this address, a link is on its way. It works once, within 30 minutes."
            </p>
        </Show>
        <p><a href="/signin">"Back to sign in"</a></p>
    }
}

#[component]
fn NewPassword(key: String) -> impl IntoView {
    let action = ServerAction::<ResetPassword>::new();
    let done = move || matches!(action.value().get(), Some(Ok(())));
    view! {
        <h1>"Choose a new password"</h1>
        <Show
            when=done
            fallback=move || {
                let key = key.clone();
                view! {
                    <ActionForm action=action attr:class="form">
                        <input type="hidden" name="reset_key" value=key />
                        <Field label="New password" name="password" kind="password"
                            autocomplete="new-password" error=action_error(action, Some("password")) />
                        <p class="hint">"8 to 64 characters with a digit, a lower and an upper case letter"</p>
                        <Field label="The same password again" name="password_repeat" kind="password"
                            autocomplete="new-password" error=action_error(action, Some("password_repeat")) />
                        <p class="form-error" role="alert">
                            {move || action_error(action, Some("reset_key")).get().or_else(|| action_error(action, None).get())}
                        </p>
                        <button type="submit" disabled=move || action.pending().get()>"Set the password"</button>
                    </ActionForm>
                }
            }
        >
            <p class="status" role="status">
                "Your new password is set, and every other sign-in of the account has ended."
            </p>
            <p><a href="/signin">"Sign in"</a></p>
        </Show>
    }
}
