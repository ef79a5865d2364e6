use leptos::prelude::*;
use leptos_meta::Title;

use super::action_error;
use crate::api::mylightning::{
    get_all_data, CreateInvoice, DataResponse, DecodeInvoice, SendInvoice, UpdateSettings,
};
use crate::api::session::{me, SignOut, SignedInUser};
use crate::api::Amount;

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
            <ActionForm action=sign_out>
                <input type="hidden" name="csrf" value=me.csrf />
                <button type="submit" class="secondary">"Sign out"</button>
            </ActionForm>
        </section>
        <Dashboard />
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

/// Balances, the node and its receive address, in the account's denomination.
#[component]
fn Dashboard() -> impl IntoView {
    // The actions live here, outside the part that re-renders when the data is
    // fetched again, so their results stay on screen.
    let settings = ServerAction::<UpdateSettings>::new();
    let send = Send::new();
    let data = Resource::new_blocking(
        move || (settings.version().get(), send.pay.version().get()),
        |_| get_all_data(),
    );
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading your wallet…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(data) => view! { <Overview data settings send /> }.into_any(),
                    Err(err) => view! { <p class="form-error" role="alert">{err.to_string()}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Overview(
    data: DataResponse,
    settings: ServerAction<UpdateSettings>,
    send: Send,
) -> impl IntoView {
    let unit = data.denomination.clone();
    let address = data.address.clone();
    let balance = |label: &'static str, id: &'static str, amount: String| {
        let unit = unit.clone();
        view! {
            <div class="balance">
                <span class="label">{label}</span>
                <span class="amount" data-testid=id>{amount}</span>
                <span class="unit">{unit}</span>
            </div>
        }
    };
    let csrf = data.csrf.clone();
    let choose = move |ev: leptos::ev::Event| {
        settings.dispatch(UpdateSettings {
            denomination: Some(event_target_value(&ev)),
            recheck_password: None,
            password: None,
            _csrf: Some(csrf.clone()),
        });
    };
    let current = data.denomination.clone();
    view! {
        <section class="card">
            <h2>"Balances"</h2>
            <div class="balances">
                {balance("Total", "balance-total", data.balances.btcfunds.0.clone())}
                {balance("Lightning", "balance-lightning", data.balances.lntfunds.0.clone())}
                {balance("On chain", "balance-onchain", data.balances.onchainfunds.0.clone())}
            </div>
            <label class="inline">
                "Show amounts in "
                <select on:change=choose aria-label="Denomination">
                    {["sat", "btc", "mbtc", "bits"]
                        .into_iter()
                        .map(|d| view! { <option value=d selected=current == d>{d}</option> })
                        .collect_view()}
                </select>
            </label>
        </section>
        <section class="card">
            <h2>"Your node"</h2>
            <dl class="facts">
                <dt>"Alias"</dt>
                <dd>{data.info.alias.clone()}</dd>
                <dt>"Node id"</dt>
                <dd><code class="wrap" data-testid="node-id">{data.info.node_id.clone()}</code></dd>
                <dt>"Block height"</dt>
                <dd data-testid="blockheight">{data.info.blockheight}</dd>
            </dl>
        </section>
        <SendCard send unit=data.denomination.clone() csrf=data.csrf.clone()
            recheck=data.recheck_password />
        <ReceiveCard unit=data.denomination.clone() csrf=data.csrf.clone() />
        <section class="card">
            <h2>"Receive on chain"</h2>
            <QrCode text=address label="QR code of the address" />
            <code class="wrap" data-testid="address">{data.address.clone()}</code>
        </section>
    }
}

/// Asks for a Lightning payment: amount and memo give a signed invoice, shown as
/// a QR code, text to copy, a `lightning:` link and a PNG to download.
#[component]
fn ReceiveCard(unit: String, csrf: String) -> impl IntoView {
    let create = ServerAction::<CreateInvoice>::new();
    let (amount, set_amount) = signal(String::new());
    let (memo, set_memo) = signal(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let amount = amount.get_untracked();
        create.dispatch(CreateInvoice {
            amount: (!amount.trim().is_empty()).then(|| Amount(amount.trim().to_string())),
            memo: Some(memo.get_untracked()),
            quickpay: None,
            _csrf: Some(csrf.clone()),
        });
    };
    let invoice = move || {
        create.value().with(|v| {
            v.as_ref()
                .and_then(|r| r.as_ref().ok())
                .and_then(|r| r.payment_request.clone())
        })
    };
    view! {
        <section class="card">
            <h2>"Receive over Lightning"</h2>
            <form class="form" on:submit=submit>
                <div class="field">
                    <label for="receive-amount">{format!("Amount ({unit})")}</label>
                    <input id="receive-amount" name="amount" inputmode="decimal" autocomplete="off"
                        placeholder="any amount"
                        aria-describedby="receive-amount-error"
                        on:input=move |ev| set_amount.set(event_target_value(&ev)) />
                    <p class="field-error" id="receive-amount-error" role="alert">{move || action_error(create, Some("amount")).get()}</p>
                </div>
                <div class="field">
                    <label for="receive-memo">"Memo"</label>
                    <input id="receive-memo" name="memo" maxlength="256" autocomplete="off"
                        aria-describedby="receive-memo-error"
                        on:input=move |ev| set_memo.set(event_target_value(&ev)) />
                    <p class="field-error" id="receive-memo-error" role="alert">{move || action_error(create, Some("memo")).get()}</p>
                </div>
                <p class="form-error" role="alert">{move || action_error(create, None).get()}</p>
                <button type="submit" disabled=move || create.pending().get()>"Create invoice"</button>
            </form>
            {move || invoice().map(|bolt11| {
                let png = format!("/rest/v1/getqrimage?inputcode={bolt11}");
                let link = format!("lightning:{bolt11}");
                view! {
                    <div class="invoice">
                        <QrCode text=bolt11.clone() label="QR code of the invoice" />
                        <code class="wrap" data-testid="invoice">{bolt11.clone()}</code>
                        <p class="actions">
                            <a class="button" href=link>"Open in a wallet"</a>
                            <a class="button secondary" href=png download="invoice.png">"Download PNG"</a>
                        </p>
                    </div>
                }
            })}
        </section>
    }
}

/// The state of paying an invoice: what was pasted, its decoding, the payment.
#[derive(Clone, Copy)]
struct Send {
    invoice: RwSignal<String>,
    amount: RwSignal<String>,
    password: RwSignal<String>,
    decode: ServerAction<DecodeInvoice>,
    pay: ServerAction<SendInvoice>,
}

impl Send {
    fn new() -> Self {
        Send {
            invoice: RwSignal::new(String::new()),
            amount: RwSignal::new(String::new()),
            password: RwSignal::new(String::new()),
            decode: ServerAction::new(),
            pay: ServerAction::new(),
        }
    }
}

/// Pays an invoice: paste it, read what it asks for, confirm. A paid invoice
/// cannot be submitted again.
#[component]
fn SendCard(send: Send, unit: String, csrf: String, recheck: bool) -> impl IntoView {
    let review = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        send.decode.dispatch(DecodeInvoice {
            invoiceid: send.invoice.get_untracked(),
        });
    };
    let decoded = move || send.decode.value().get().and_then(|r| r.ok());
    let decode_error = move || match send.decode.value().get() {
        Some(Err(err)) => Some(err.error.message),
        _ => None,
    };
    let paid = move || {
        send.pay
            .value()
            .get()
            .and_then(|r| r.ok())
            .and_then(|r| r.payment)
            .filter(|p| decoded().is_some_and(|d| d.payment_hash == p.payment_hash))
    };
    let confirm = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if send.pay.pending().get_untracked() || paid().is_some() {
            return;
        }
        let amount = send.amount.get_untracked();
        send.pay.dispatch(SendInvoice {
            invoiceid: send.invoice.get_untracked(),
            alias: None,
            amount: (!amount.trim().is_empty()).then(|| Amount(amount.trim().to_string())),
            fee_limit: None,
            password: recheck.then(|| send.password.get_untracked()),
            _csrf: Some(csrf.clone()),
        });
    };
    let unit_label = unit.clone();
    view! {
        <section class="card">
            <h2>"Send over Lightning"</h2>
            <form class="form" on:submit=review>
                <div class="field">
                    <label for="send-invoice">"Invoice"</label>
                    <input id="send-invoice" autocomplete="off" spellcheck="false"
                        placeholder="lnbcrt…" aria-describedby="send-invoice-error"
                        prop:value=move || send.invoice.get()
                        on:input=move |ev| send.invoice.set(event_target_value(&ev)) />
                    <p class="field-error" id="send-invoice-error" role="alert">{decode_error}</p>
                </div>
                <button type="submit" class="secondary">"Review"</button>
            </form>
            {move || decoded().map(|d| {
                let unit = unit_label.clone();
                let amountless = d.amount.is_none();
                view! {
                    <form class="form review" on:submit=confirm.clone()>
                        <dl class="facts">
                            <dt>"Amount"</dt>
                            <dd data-testid="send-amount">
                                {d.amount.clone().map(|a| format!("{} {unit}", a.0)).unwrap_or_else(|| "any amount".into())}
                            </dd>
                            <dt>"Memo"</dt>
                            <dd data-testid="send-memo">{d.memo.clone()}</dd>
                            <dt>"Payee"</dt>
                            <dd><code class="wrap">{d.payee.clone()}</code></dd>
                        </dl>
                        <Show when=move || amountless>
                            <div class="field">
                                <label for="send-amount-input">{format!("Amount to pay ({})", unit.clone())}</label>
                                <input id="send-amount-input" inputmode="decimal" autocomplete="off"
                                    on:input=move |ev| send.amount.set(event_target_value(&ev)) />
                                <p class="field-error" role="alert">{move || action_error(send.pay, Some("amount")).get()}</p>
                            </div>
                        </Show>
                        <Show when=move || recheck>
                            <div class="field">
                                <label for="send-password">"Your password"</label>
                                <input id="send-password" type="password" autocomplete="current-password"
                                    on:input=move |ev| send.password.set(event_target_value(&ev)) />
                                <p class="field-error" role="alert">{move || action_error(send.pay, Some("password")).get()}</p>
                            </div>
                        </Show>
                        <p class="form-error" role="alert">{move || action_error(send.pay, None).get()}</p>
                        <button type="submit" disabled=move || send.pay.pending().get() || paid().is_some()>
                            "Pay"
                        </button>
                    </form>
                }
            })}
            {move || paid().map(|p| view! {
                <p class="success" role="status" data-testid="send-result">
                    {format!("Paid {} {} (fee {})", p.amount.0, unit.clone(), p.fee.0)}
                </p>
            })}
        </section>
    }
}

/// A QR code drawn by the server as SVG.
#[component]
fn QrCode(text: String, label: &'static str) -> impl IntoView {
    let drawing = Resource::new(move || text.clone(), crate::qr::qr_svg);
    view! {
        <Suspense fallback=|| view! { <div class="qr loading">"…"</div> }>
            {move || Suspend::new(async move {
                let svg = drawing.await.unwrap_or_default();
                view! { <div class="qr" inner_html=svg role="img" aria-label=label></div> }
            })}
        </Suspense>
    }
}
