use leptos::prelude::*;
use leptos_meta::Title;

use super::action_error;
use crate::api::session::SignIn;
use crate::components::Field;

#[component]
pub fn SignInPage() -> impl IntoView {
    let action = ServerAction::<SignIn>::new();
    view! {
        <Title text="Sign in · Ampere" />
        <section class="card narrow">
            <h1>"Sign in"</h1>
            <ActionForm action=action attr:class="form">
                <Field label="Username" name="username" autocomplete="username"
                    error=action_error(action, Some("username")) />
                <Field label="Password" name="password" kind="password"
                    autocomplete="current-password" error=action_error(action, Some("password")) />
                <p class="form-error" role="alert">{move || action_error(action, None).get()}</p>
                <button type="submit" disabled=move || action.pending().get()>"Sign in"</button>
            </ActionForm>
            <p>"New here? " <a href="/signup">"Create an account"</a></p>
        </section>
    }
}
