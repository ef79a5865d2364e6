use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

use super::{action_error, asks_code, form_error};
use crate::api::mylightning::{DecodeInvoice, DecodedInvoice, SendInvoice};
use crate::api::session::Account;
use crate::api::Amount;
use crate::components::{now_seconds, Field, Live, RateNote, Scanner, SignedIn};

lazy_wallet_page!(SendPage, "Send · Ampere", Send);

/// Pays an invoice: paste or scan it, read what it asks for, confirm. A paid
/// invoice cannot be submitted again.
#[component]
fn Send(account: Account) -> impl IntoView {
    let invoice = RwSignal::new(String::new());
    let decode = ServerAction::<DecodeInvoice>::new();
    let review = move || {
        decode.dispatch(DecodeInvoice {
            invoiceid: invoice.get_untracked().trim().to_string(),
        });
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        review();
    };
    let scanned = Callback::new(move |text: String| {
        invoice.set(text);
        review();
    });
    let decoded = move || {
        decode
            .value()
            .get()
            .and_then(|reply| reply.ok())
            .filter(|_| !decode.pending().get())
    };
    view! {
        <section class="card">
            <h1>"Send over Lightning"</h1>
            <form class="form" on:submit=on_submit>
                <Field label="Invoice" name="invoiceid" id="send-invoice" autocomplete="off"
                    placeholder="lnbcrt…" value=invoice error=action_error(decode, Some("invoiceid")) />
                <p class="form-error" role="alert">{move || form_error(decode, &["invoiceid"]).get()}</p>
                <button type="submit" class="secondary" disabled=move || decode.pending().get()>"Review"</button>
            </form>
            <Scanner on_read=scanned />
        </section>
        {move || decoded().map(|decoded| view! {
            <Confirm decoded invoice=invoice.get_untracked() account=account.clone() />
        })}
    }
}

/// What the invoice asks for, and the payment once confirmed.
#[component]
fn Confirm(decoded: DecodedInvoice, invoice: String, account: Account) -> impl IntoView {
    let pay = ServerAction::<SendInvoice>::new();
    let live = Live::get();
    let amount = RwSignal::new(String::new());
    let alias = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let asks_code = asks_code(pay);
    let paid = move || {
        pay.value()
            .with(|v| matches!(v, Some(Ok(r)) if r.payment.is_some()))
    };
    let Account {
        csrf,
        denomination: unit,
        recheck_password: recheck,
        ..
    } = account;
    let amountless = decoded.amount.is_none();
    let confirm = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        // One payment per review: a second click while paying, or after, is ignored.
        if pay.pending().get_untracked() || paid() {
            return;
        }
        let amount = amount.get_untracked().trim().to_string();
        let alias = alias.get_untracked().trim().to_string();
        pay.dispatch(SendInvoice {
            invoiceid: invoice.clone(),
            alias: (!alias.is_empty()).then_some(alias),
            amount: amountless.then_some(Amount(amount)),
            fee_limit: None,
            password: recheck.then(|| password.get_untracked()),
            otp_code: Some(code.get_untracked().trim().to_string()).filter(|c| !c.is_empty()),
            _csrf: Some(csrf.clone()),
        });
    };
    Effect::new(move |_| {
        if paid() {
            live.refresh();
        }
    });
    let now = now_seconds();
    let expires_at = decoded.expires_at;
    let expiry = move || {
        let left = expires_at - now.get();
        if left <= 0 {
            "expired".to_string()
        } else {
            format!("in {}:{:02}", left / 60, left % 60)
        }
    };
    let result_unit = unit.clone();
    view! {
        <section class="card" aria-labelledby="confirm-title">
            <h2 id="confirm-title">"Pay this invoice?"</h2>
            <dl class="facts">
                <dt>"Amount"</dt>
                <dd data-testid="send-amount">
                    {decoded.amount.map(|a| format!("{} {unit}", a.grouped())).unwrap_or_else(|| "any amount".into())}
                    <RateNote rate=decoded.rate />
                </dd>
                <dt>"Memo"</dt>
                <dd data-testid="send-memo">{decoded.memo}</dd>
                <dt>"Payee"</dt>
                <dd><code class="wrap" data-testid="send-payee">{decoded.payee}</code></dd>
                <dt>"Expires"</dt>
                <dd data-testid="send-expiry">{expiry}</dd>
            </dl>
            <form class="form review" on:submit=confirm>
                {amountless.then(|| view! {
                    <Field label=format!("Amount to pay ({result_unit})") name="amount" id="send-amount-input"
                        inputmode="decimal" autocomplete="off" value=amount
                        error=action_error(pay, Some("amount")) />
                })}
                <Field label="Save the payee as (optional)" name="alias" id="send-alias"
                    autocomplete="off" required=false value=alias error=action_error(pay, Some("alias")) />
                {recheck.then(|| view! {
                    <Field label="Your password" name="password" id="send-password" kind="password"
                        autocomplete="current-password" value=password
                        error=action_error(pay, Some("password")) />
                })}
                <Show when=move || asks_code.get()>
                    <Field label="Two-factor code" name="otp_code" id="send-code" value=code
                        autocomplete="one-time-code" inputmode="numeric"
                        error=action_error(pay, Some("otp_code")) />
                </Show>
                <p class="form-error" role="alert">{move || form_error(pay, if amountless { &["amount", "alias", "password", "otp_code"] } else { &["alias", "password", "otp_code"] }).get()}</p>
                <button type="submit" disabled=move || pay.pending().get() || paid()>
                    {move || if pay.pending().get() { "Paying…" } else if paid() { "Paid" } else { "Pay" }}
                </button>
            </form>
            {move || pay.value().get().and_then(|r| r.ok()).and_then(|r| Some((r.payment?, r.rate))).map(|(p, rate)| view! {
                <p class="success" role="status" data-testid="send-result">
                    {format!("Paid {} {} (fee {})", p.amount.grouped(), result_unit, p.fee.grouped())}
                </p>
                <RateNote rate />
            })}
        </section>
    }
}
