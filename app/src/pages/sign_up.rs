use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

use super::action_error;
use crate::api::session::SignUp;
use crate::components::Field;

lazy_page!(SignUpPage, "Create an account · Ampere", SignUpForm);

#[component]
fn SignUpForm() -> impl IntoView {
    let action = ServerAction::<SignUp>::new();
    view! {
        <section class="card narrow">
            <h1>"Create an account"</h1>
            <ActionForm action=action attr:class="form">
                <Field label="Username" name="username" autocomplete="username"
                    error=action_error(action, Some("username")) />
                <p class="hint">"3 to 32 letters, digits, '-', '_' or '.'"</p>
                <Field label="Password" name="password" kind="password"
                    autocomplete="new-password" error=action_error(action, Some("password")) />
                <p class="hint">"8 to 64 characters with a digit, a lower and an upper case letter"</p>
                <p class="form-error" role="alert">{move || action_error(action, None).get()}</p>
                <button type="submit" disabled=move || action.pending().get()>"Create account"</button>
            </ActionForm>
            <p>"Already have an account? " <a href="/signin">"Sign in"</a></p>
        </section>
    }
}
