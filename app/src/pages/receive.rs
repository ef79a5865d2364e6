use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

use super::{action_error, form_error};
use crate::api::mylightning::{CreateInvoice, CreateInvoiceResponse};
use crate::api::session::Account;
use crate::api::Amount;
use crate::components::{now_seconds, CopyButton, Field, Live, QrCode, RateNote, SignedIn};

lazy_wallet_page!(ReceivePage, "Receive · Ampere", Receive);

/// Asks for a Lightning payment: amount and memo give a signed invoice, shown as
/// a QR code, text to copy, a `lightning:` link and a PNG to download, with its
/// time left and its status, which turns to paid the moment it settles.
#[component]
fn Receive(account: Account) -> impl IntoView {
    let create = ServerAction::<CreateInvoice>::new();
    let amount = RwSignal::new(String::new());
    let memo = RwSignal::new(String::new());
    let quickpay = RwSignal::new(false);
    let csrf = account.csrf.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let amount = amount.get_untracked().trim().to_string();
        create.dispatch(CreateInvoice {
            amount: (!amount.is_empty()).then_some(Amount(amount)),
            memo: Some(memo.get_untracked()),
            quickpay: Some(quickpay.get_untracked()),
            _csrf: Some(csrf.clone()),
        });
    };
    let invoice = move || {
        create
            .value()
            .get()
            .and_then(|reply| reply.ok())
            .filter(|invoice| invoice.payment_request.is_some())
    };
    view! {
        <section class="card">
            <h1>"Receive over Lightning"</h1>
            <form class="form" on:submit=submit>
                <Field label=format!("Amount ({})", account.denomination) name="amount" id="receive-amount"
                    inputmode="decimal" autocomplete="off" placeholder="any amount" required=false
                    value=amount error=action_error(create, Some("amount")) />
                <Field label="Memo" name="memo" id="receive-memo" autocomplete="off" required=false
                    value=memo error=action_error(create, Some("memo")) />
                <label class="check">
                    <input type="checkbox" bind:checked=quickpay />
                    " QuickPay: add this server's address, so the payer can save you as a contact"
                </label>
                <p class="form-error" role="alert">{move || form_error(create, &["amount", "memo"]).get()}</p>
                <button type="submit" disabled=move || create.pending().get()>"Create invoice"</button>
            </form>
        </section>
        {move || invoice().map(|invoice| view! { <Invoice invoice /> })}
    }
}

#[component]
fn Invoice(invoice: CreateInvoiceResponse) -> impl IntoView {
    let text = invoice.payment_request.unwrap_or_default();
    let hash = invoice.payment_hash.unwrap_or_default();
    let expires_at = invoice.expires_at.unwrap_or_default();
    let rate = invoice.rate;
    let live = Live::get();
    let paid = Memo::new(move |_| live.settled.with(|settled| settled.contains(&hash)));
    let now = now_seconds();
    let status = move || {
        if paid.get() {
            "Paid".to_string()
        } else {
            let left = expires_at - now.get();
            if left <= 0 {
                "Expired".to_string()
            } else {
                format!(
                    "Waiting for payment · expires in {}:{:02}",
                    left / 60,
                    left % 60
                )
            }
        }
    };
    let png = format!("/rest/v1/getqrimage?inputcode={text}");
    let link = format!("lightning:{text}");
    view! {
        <section class="card invoice" aria-labelledby="invoice-title">
            <h2 id="invoice-title">"Your invoice"</h2>
            <p class="status" class:success=paid role="status" data-testid="invoice-status">{status}</p>
            <RateNote rate />
            <QrCode text=text.clone() label="QR code of the invoice" />
            <p class="copyable">
                <code class="wrap" data-testid="invoice">{text.clone()}</code>
                <CopyButton text=text label="Copy the invoice" />
            </p>
            <p class="actions">
                <a class="button" href=link>"Open in a wallet"</a>
                <a class="button secondary" href=png download="invoice.png">"Download PNG"</a>
            </p>
        </section>
    }
}
