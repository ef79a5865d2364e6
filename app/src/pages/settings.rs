use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

use super::{action_error, asks_code, form_error};
use crate::api::mylightning::UpdateSettings;
use crate::api::session::{Account, ChangePassword};
use crate::components::{Field, SignOutButton, SignedIn};

lazy_wallet_page!(SettingsPage, "Settings · Ampere", Settings);

/// The unit of amounts, the password check for payments, the password itself,
/// and signing out.
#[component]
fn Settings(account: Account) -> impl IntoView {
    view! {
        <h1>"Settings"</h1>
        <WalletSettings account=account.clone() />
        <PasswordCard csrf=account.csrf.clone() />
        <section class="card">
            <h2>"Session"</h2>
            <p>"Signed in as " <strong>{account.username}</strong></p>
            <SignOutButton csrf=account.csrf />
        </section>
    }
}

#[component]
fn WalletSettings(account: Account) -> impl IntoView {
    let save = ServerAction::<UpdateSettings>::new();
    let denomination = RwSignal::new(account.denomination.clone());
    let recheck = RwSignal::new(account.recheck_password);
    let password = RwSignal::new(String::new());
    // What the server holds now: the form compares against it.
    let saved_recheck = Memo::new(move |_| {
        save.value()
            .get()
            .and_then(|r| r.ok())
            .map_or(account.recheck_password, |s| s.recheck_password)
    });
    let turning_off = move || saved_recheck.get() && !recheck.get();
    let csrf = account.csrf.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        save.dispatch(UpdateSettings {
            denomination: Some(denomination.get_untracked()),
            recheck_password: Some(recheck.get_untracked()),
            password: turning_off().then(|| password.get_untracked()),
            _csrf: Some(csrf.clone()),
        });
    };
    view! {
        <section class="card">
            <h2>"Wallet"</h2>
            <form class="form" on:submit=submit>
                <div class="field">
                    <label for="settings-denomination">"Show amounts in"</label>
                    <select id="settings-denomination" bind:value=denomination>
                        {["sat", "btc", "mbtc", "bits", "usd"].into_iter().map(|d| view! {
                            <option value=d selected=account.denomination == d>{d}</option>
                        }).collect_view()}
                    </select>
                    <p class="field-error" role="alert">{move || action_error(save, Some("denomination")).get()}</p>
                </div>
                <label class="check">
                    <input type="checkbox" bind:checked=recheck />
                    " Ask for my password before every payment and channel close"
                </label>
                <Show when=turning_off>
                    <Field label="Your password, to turn the check off" name="password" id="settings-password"
                        kind="password" autocomplete="current-password" value=password
                        error=action_error(save, Some("password")) />
                </Show>
                <p class="form-error" role="alert">{move || form_error(save, &["denomination", "password"]).get()}</p>
                <button type="submit" disabled=move || save.pending().get()>"Save settings"</button>
                {move || save.value().get().and_then(|r| r.ok()).map(|_| view! {
                    <p class="success" role="status">"Settings saved."</p>
                })}
            </form>
        </section>
    }
}

#[component]
pub(super) fn PasswordCard(csrf: String) -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let old_password = RwSignal::new(String::new());
    let new_password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let asks_code = asks_code(change);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        change.dispatch(ChangePassword {
            old_password: old_password.get_untracked(),
            new_password: new_password.get_untracked(),
            otp_code: Some(code.get_untracked()).filter(|c| !c.is_empty()),
            csrf: csrf.clone(),
        });
    };
    Effect::new(move |_| {
        if change.value().with(|v| matches!(v, Some(Ok(())))) {
            old_password.set(String::new());
            new_password.set(String::new());
            code.set(String::new());
        }
    });
    view! {
        <section class="card">
            <h2>"Password"</h2>
            <form class="form" on:submit=submit>
                <Field label="Current password" name="old_password" kind="password"
                    autocomplete="current-password" value=old_password
                    error=action_error(change, Some("old_password")) />
                <Field label="New password" name="new_password" kind="password"
                    autocomplete="new-password" value=new_password
                    error=action_error(change, Some("new_password")) />
                <p class="hint">"8 to 64 characters with a digit, a lower case and an upper case letter, not easy to guess."</p>
                <Show when=move || asks_code.get()>
                    <Field label="Two-factor code" name="otp_code" id="password-otp-code"
                        autocomplete="one-time-code" inputmode="numeric" value=code
                        error=action_error(change, Some("otp_code")) />
                </Show>
                <p class="form-error" role="alert">{move || form_error(change, &["old_password", "new_password", "otp_code"]).get()}</p>
                <button type="submit" disabled=move || change.pending().get()>"Change password"</button>
                {move || change.value().get().and_then(|r| r.ok()).map(|_| view! {
                    <p class="success" role="status">"Password changed. Your other sessions and tokens are signed out."</p>
                })}
            </form>
        </section>
    }
}
