use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use leptos_router::{lazy_route, LazyRoute};

use crate::api::desk::{deposit_invoice, DepositFromPage, IssuedDeposit};
use crate::api::group_thousands;
use crate::api::lnm::{self, get_user, HistoryEntry, LnmError};
use crate::api::mylightning::{create_invoice, get_summary, send_invoice};
use crate::api::session::Account;
use crate::api::ApiError;
use crate::components::figures::sats;
use crate::components::{CopyButton, Field, Live, QrCode, Realtime, SignedIn};

lazy_wallet_page!(FundingPage, "Funding · Ampere", Funding);

/// A wallet error as the desk's forms show it.
fn desk_error(err: ApiError) -> LnmError {
    LnmError {
        message: err.error.message,
        field: err.error.field,
    }
}

/// Whole sats a person typed (`1,000` reads as 1000).
fn read_sats(text: &str) -> Result<i64, LnmError> {
    text.trim()
        .replace([',', ' '], "")
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| LnmError {
            message: "amount is a whole number of sats, at least 1".into(),
            field: Some("amount".into()),
        })
}

/// Where a form shows its latest failure: `Some(field)` beside that field
/// (one of the form's `fields`), `None` for the form when no field of it
/// caused it.
fn refusals(
    last: RwSignal<Option<LnmError>>,
    fields: &'static [&'static str],
) -> impl Fn(Option<&'static str>) -> Signal<Option<String>> + Copy {
    move |field| {
        Signal::derive(move || {
            last.with(|e| {
                e.as_ref()
                    .filter(|e| match field {
                        Some(f) => e.field.as_deref() == Some(f),
                        None => !e.field.as_deref().is_some_and(|f| fields.contains(&f)),
                    })
                    .map(|e| e.message.clone())
            })
        })
    }
}

/// Moving sats between the wallet and the trading balance: deposit (paid by
/// this wallet in one click, or by any wallet from a QR code) and withdraw (to
/// this wallet in one click, to a pasted invoice, or to a phone wallet by
/// LNURL-withdraw), each credited or paid live, and the history of both.
#[component]
fn Funding(account: Account) -> impl IntoView {
    let realtime = Realtime::get();
    realtime.connect();
    let live = Live::get();
    let user = Resource::new(move || (live.funds(), realtime.positions()), |_| get_user());
    let wallet = Resource::new(move || live.funds(), |_| get_summary());
    let deposits = Resource::new(
        move || live.funds(),
        |_| lnm::history(Some("deposit".into())),
    );
    let withdrawals = Resource::new(
        move || live.funds(),
        |_| lnm::history(Some("withdraw".into())),
    );
    let unit = account.denomination.clone();
    view! {
        <h1>"Funding"</h1>
        <section class="card" aria-labelledby="funds-title">
            <h2 id="funds-title">"Balances"</h2>
            <div class="balances">
                <div class="balance">
                    <span class="label">"Trading balance"</span>
                    <span class="amount" data-testid="trading-balance">
                        <Transition fallback=|| "…">
                            {move || user.get().map(|u| match u {
                                Ok(u) => group_thousands(&u.balance),
                                Err(e) => e.message,
                            })}
                        </Transition>
                    </span>
                    <span class="unit">"sat"</span>
                </div>
                <div class="balance">
                    <span class="label">"Wallet (Lightning)"</span>
                    <span class="amount" data-testid="wallet-balance">
                        <Transition fallback=|| "…">
                            {move || wallet.get().map(|w| match w {
                                Ok(w) => w.balances.lntfunds.grouped(),
                                Err(e) => e.to_string(),
                            })}
                        </Transition>
                    </span>
                    <span class="unit">{unit}</span>
                </div>
            </div>
        </section>
        <Deposit account=account.clone() deposits />
        <Withdraw account withdrawals />
        <section class="card" aria-labelledby="funding-history-title">
            <h2 id="funding-history-title">"History"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let (deposits, withdrawals) = (deposits.await, withdrawals.await);
                    view! {
                        <HistoryTable title="Deposits" id="deposits" entries=deposits />
                        <HistoryTable title="Withdrawals" id="withdrawals" entries=withdrawals />
                    }
                })}
            </Transition>
        </section>
    }
}

#[component]
fn Deposit(
    account: Account,
    deposits: Resource<Result<lnm::HistoryView, LnmError>>,
) -> impl IntoView {
    let amount = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let recheck = account.recheck_password;
    let csrf = StoredValue::new(account.csrf.clone());
    // The invoice for another wallet: a form (it works without JavaScript)
    // whose route redirects here with the invoice's hash in the query; the
    // invoice itself is read back from the account's own deposits.
    let invoice_form = ServerAction::<DepositFromPage>::new();
    let query = use_query_map();
    let live = Live::get();
    let shown_invoice = Resource::new(
        move || (query.with(|q| q.get("deposit")), live.funds()),
        |(hash, _)| async move {
            match hash {
                Some(hash) => Some(deposit_invoice(hash).await),
                None => None,
            }
        },
    );
    // Asked of the exchange, then paid by this account's own wallet.
    let pay = Action::new(move |input: &(i64, Option<String>)| {
        let (sats, password) = input.clone();
        async move {
            let issued = lnm::deposit(sats, Some("sat".into())).await?;
            let reply = send_invoice(
                issued.payment_request,
                None,
                None,
                None,
                password,
                None,
                Some(csrf.get_value()),
            )
            .await
            .map_err(desk_error)?;
            match reply.error {
                Some(refused) => Err(LnmError {
                    message: refused.message,
                    field: refused.field,
                }),
                None => Ok(issued.payment_hash),
            }
        }
    });
    let parsed = move || read_sats(&amount.get_untracked());
    let last_error = RwSignal::new(None::<LnmError>);
    let pay_from_wallet = move |_| match parsed() {
        Ok(sats) => {
            last_error.set(None);
            pay.dispatch((sats, recheck.then(|| password.get_untracked())));
        }
        Err(err) => last_error.set(Some(err)),
    };
    // The latest failure of either way, until the next attempt.
    Effect::new(move |_| {
        if let Some(Err(err)) = pay.value().get() {
            last_error.set(Some(err));
        }
    });
    Effect::new(move |_| {
        if let Some(Err(err)) = invoice_form.value().get() {
            last_error.set(Some(desk_error(err)));
        }
    });
    Effect::new(move |_| {
        if invoice_form.version().get() > 0 {
            last_error.set(None);
        }
    });
    let error_of = refusals(last_error, &["amount", "password"]);
    let credited = move |hash: &str| {
        deposits.get().and_then(Result::ok).is_some_and(|history| {
            history
                .transaction
                .iter()
                .any(|d| d.payment_hash == hash && d.success)
        })
    };
    let busy = move || pay.pending().get() || invoice_form.pending().get();
    view! {
        <section class="card" aria-labelledby="deposit-title">
            <h2 id="deposit-title">"Deposit"</h2>
            <ActionForm action=invoice_form attr:class="form">
                <input type="hidden" name="csrf" value=csrf.get_value() />
                <Field label="Amount (sat)" name="amount" id="deposit-amount" inputmode="numeric"
                    value=amount error=error_of(Some("amount")) />
                // Read by the one-click payment only: `form` keeps it out of
                // the invoice form's post.
                {recheck.then(|| view! {
                    <Field label="Your password (to pay from the wallet)" name="password" id="deposit-password"
                        kind="password" autocomplete="current-password" value=password required=false
                        error=error_of(Some("password")) form="none" />
                })}
                <p class="form-error" role="alert">{move || error_of(None).get()}</p>
                <p class="actions">
                    <button type="button" disabled=busy data-testid="deposit-from-wallet" on:click=pay_from_wallet>
                        {move || if pay.pending().get() { "Paying…" } else { "Pay from my Ampere wallet" }}
                    </button>
                    <button type="submit" class="secondary" disabled=busy>
                        "Show an invoice for another wallet"
                    </button>
                </p>
            </ActionForm>
            <p class="status success" role="status" data-testid="deposit-status">
                {move || match pay.value().get() {
                    Some(Ok(hash)) if credited(&hash) => Some("Deposited: the trading balance is credited.".to_string()),
                    Some(Ok(_)) => Some("Paid, crediting…".to_string()),
                    _ => None,
                }}
            </p>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    match shown_invoice.await {
                        None => ().into_any(),
                        Some(Err(err)) => view! {
                            <p class="form-error" role="alert">{err.to_string()}</p>
                        }.into_any(),
                        Some(Ok(invoice)) => view! { <DepositInvoiceView invoice /> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// A deposit invoice for another wallet: its QR code, and whether it is paid
/// (read again as the account's funds change).
#[component]
fn DepositInvoiceView(invoice: IssuedDeposit) -> impl IntoView {
    let bolt11 = invoice.bolt11;
    view! {
        <div class="review">
            <QrCode text=format!("lightning:{bolt11}") label="QR code of the deposit invoice" />
            <p class="copyable">
                <code class="wrap small" data-testid="deposit-invoice">{bolt11.clone()}</code>
                <CopyButton text=bolt11 label="Copy the invoice" />
            </p>
            <p class="status" class:success=invoice.paid role="status" data-testid="deposit-invoice-status">
                {if invoice.paid {
                    "Paid: the trading balance is credited."
                } else {
                    "Waiting for the payment…"
                }}
            </p>
        </div>
    }
}

/// What a withdrawal shows besides its amount: the password (when the
/// account re-checks it) and the two-factor code (when the server asks).
#[derive(Clone)]
struct Proof {
    password: Option<String>,
    otp_code: Option<String>,
}

#[component]
fn Withdraw(
    account: Account,
    withdrawals: Resource<Result<lnm::HistoryView, LnmError>>,
) -> impl IntoView {
    let amount = RwSignal::new(String::new());
    let pasted = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    // Money leaving the desk asks for the password, as the wallet's payments
    // do, and for a two-factor code once the server asks for one.
    let recheck = account.recheck_password;
    let proof = move || Proof {
        password: recheck.then(|| password.get_untracked()),
        otp_code: Some(code.get_untracked().trim().to_string()).filter(|c| !c.is_empty()),
    };
    let csrf = StoredValue::new(account.csrf.clone());
    let realtime = Realtime::get();
    let live = Live::get();
    // To this account's own wallet: its invoice, paid by the exchange.
    let to_wallet = Action::new(move |input: &(i64, Proof)| {
        let (sats, proof) = input.clone();
        async move {
            let invoice = create_invoice(
                None,
                Some("Withdrawal from the Ampere desk".into()),
                None,
                Some(csrf.get_value()),
            )
            .await
            .map_err(desk_error)?;
            let bolt11 = invoice.payment_request.ok_or_else(|| LnmError {
                message: invoice
                    .error
                    .map_or_else(|| "the wallet made no invoice".into(), |e| e.message),
                field: None,
            })?;
            lnm::withdraw(
                sats,
                Some("sat".into()),
                bolt11,
                proof.password,
                proof.otp_code,
            )
            .await
        }
    });
    let to_invoice = Action::new(move |input: &(i64, String, Proof)| {
        let (sats, invoice, proof) = input.clone();
        lnm::withdraw(
            sats,
            Some("sat".into()),
            invoice,
            proof.password,
            proof.otp_code,
        )
    });
    let by_lnurl = Action::new(move |input: &(i64, Proof)| {
        let (sats, proof) = input.clone();
        lnm::withdraw_lnurl(sats, Some("sat".into()), proof.password, proof.otp_code)
    });
    // The withdrawals already paid when the LNURL was asked for (taken in the
    // click, outside any reactive scope): one paid since is the phone's.
    let paid_before = RwSignal::new(None::<Vec<String>>);
    let paid_ids = move |history: &Option<Result<lnm::HistoryView, LnmError>>| {
        history.as_ref()?.as_ref().ok().map(|h| {
            h.transaction
                .iter()
                .filter(|w| w.success)
                .filter_map(|w| w.wid.clone())
                .collect::<Vec<_>>()
        })
    };
    let lnurl_paid = move || {
        let now = withdrawals.with(paid_ids);
        paid_before.with(|before| match (before, now) {
            (Some(before), Some(now)) => now.iter().any(|wid| !before.contains(wid)),
            _ => false,
        })
    };
    let last_error = RwSignal::new(None::<LnmError>);
    for failed in [
        Signal::derive(move || to_wallet.value().get().and_then(Result::err)),
        Signal::derive(move || to_invoice.value().get().and_then(Result::err)),
    ] {
        Effect::new(move |_| {
            if let Some(err) = failed.get() {
                last_error.set(Some(err));
            }
        });
    }
    Effect::new(move |_| {
        if let Some(Err(err)) = by_lnurl.value().get() {
            last_error.set(Some(err));
        }
    });
    let done = RwSignal::new(None::<String>);
    for paid in [
        Signal::derive(move || to_wallet.value().get().and_then(Result::ok)),
        Signal::derive(move || to_invoice.value().get().and_then(Result::ok)),
    ] {
        Effect::new(move |_| {
            if let Some(paid) = paid.get() {
                let fee = match paid.fee {
                    0 => String::new(),
                    fee => format!(" (routing fee {})", sats(fee)),
                };
                done.set(Some(format!("Withdrawn: {} paid{fee}.", sats(paid.amount))));
                live.refresh();
                realtime.refresh();
            }
        });
    }
    let with_amount = move |then: &dyn Fn(i64)| match read_sats(&amount.get_untracked()) {
        Ok(sats) => {
            last_error.set(None);
            done.set(None);
            then(sats);
        }
        Err(err) => last_error.set(Some(err)),
    };
    let error_of = refusals(last_error, &["amount", "invoice", "password", "otp_code"]);
    let asks_code = super::code_asked_once(Signal::derive(move || {
        last_error.with(|e| e.as_ref().and_then(|e| e.field.as_deref()) == Some("otp_code"))
    }));
    let busy =
        move || to_wallet.pending().get() || to_invoice.pending().get() || by_lnurl.pending().get();
    view! {
        <section class="card" aria-labelledby="withdraw-title">
            <h2 id="withdraw-title">"Withdraw"</h2>
            <form class="form" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                with_amount(&|sats| {
                    to_wallet.dispatch((sats, proof()));
                });
            }>
                <Field label="Amount (sat)" name="amount" id="withdraw-amount" inputmode="numeric"
                    value=amount error=error_of(Some("amount")) />
                {recheck.then(|| view! {
                    <Field label="Your password (to withdraw)" name="password" id="withdraw-password"
                        kind="password" autocomplete="current-password" value=password
                        error=error_of(Some("password")) />
                })}
                <Show when=move || asks_code.get()>
                    <Field label="Two-factor code" name="otp_code" id="withdraw-code" value=code
                        autocomplete="one-time-code" inputmode="numeric"
                        error=error_of(Some("otp_code")) />
                </Show>
                <p class="form-error" role="alert">{move || error_of(None).get()}</p>
                <p class="actions">
                    <button type="submit" disabled=busy data-testid="withdraw-to-wallet">
                        {move || if to_wallet.pending().get() { "Withdrawing…" } else { "To my Ampere wallet" }}
                    </button>
                    <button type="button" class="secondary" disabled=busy on:click=move |_| with_amount(&|sats| {
                        paid_before.set(withdrawals.with_untracked(paid_ids));
                        by_lnurl.dispatch((sats, proof()));
                    })>
                        "As a QR code for a phone wallet"
                    </button>
                </p>
                <details class="review">
                    <summary>"To an invoice of another wallet"</summary>
                    <Field label="Invoice" name="invoice" id="withdraw-invoice" value=pasted
                        required=false error=error_of(Some("invoice")) />
                    <button type="button" class="secondary" disabled=busy on:click=move |_| with_amount(&|sats| {
                        to_invoice.dispatch((sats, pasted.get_untracked().trim().to_string(), proof()));
                    })>
                        "Pay this invoice"
                    </button>
                </details>
            </form>
            <p class="status success" role="status" data-testid="withdraw-status">{move || done.get()}</p>
            {move || by_lnurl.value().get().and_then(Result::ok).map(|link| view! {
                <div class="review">
                    <QrCode text=format!("lightning:{}", link.lnurl) label="QR code of the LNURL-withdraw" />
                    <p class="copyable">
                        <code class="wrap small" data-testid="withdraw-lnurl">{link.lnurl.clone()}</code>
                        <CopyButton text=link.lnurl label="Copy the LNURL" />
                    </p>
                    <p class="status" class:success=lnurl_paid role="status" data-testid="withdraw-lnurl-status">
                        {move || if lnurl_paid() {
                            "Paid to your phone wallet."
                        } else {
                            "Scan it with a Lightning wallet: it can be claimed once."
                        }}
                    </p>
                </div>
            })}
        </section>
    }
}

#[component]
fn HistoryTable(
    title: &'static str,
    id: &'static str,
    entries: Result<lnm::HistoryView, LnmError>,
) -> impl IntoView {
    let rows = match entries {
        Ok(history) => history.transaction,
        Err(err) => return view! { <p class="form-error">{err.message}</p> }.into_any(),
    };
    let status = |e: &HistoryEntry| {
        if e.success {
            "Done".to_string()
        } else if e.fail {
            format!(
                "Failed{}",
                e.fail_reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            )
        } else {
            "Pending".to_string()
        }
    };
    view! {
        <h3>{title}</h3>
        {if rows.is_empty() {
            view! { <p class="empty">"None yet."</p> }.into_any()
        } else {
            view! {
                <table class="history" data-testid=id>
                    <thead>
                        <tr>
                            <th scope="col">"When"</th>
                            <th scope="col" class="num">"Amount (sat)"</th>
                            <th scope="col">"Status"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {rows.into_iter().map(|e| view! {
                            <tr>
                                <td><time datetime=e.creation_ts.clone()>{e.creation_ts.replace('T', " ").replace('Z', " UTC")}</time></td>
                                <td class="num">{group_thousands(&e.amount)}</td>
                                <td>{status(&e)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
    }
    .into_any()
}
