use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

use super::{action_error, asks_code, form_error};
use crate::api::mylightning::{AddContact, ContactView, DataResponse, QuickPay, RemoveContact};
use crate::api::session::Account;
use crate::api::Amount;
use crate::components::{wallet_data_without_blocks, Field, Live, RateNote, SignedIn, WithData};

lazy_wallet_page!(ContactsPage, "Contacts · Ampere", Contacts);

/// The address book: pay a contact by alias (QuickPay), add and remove contacts.
#[component]
fn Contacts(account: Account) -> impl IntoView {
    let data = wallet_data_without_blocks();
    let remove = ServerAction::<RemoveContact>::new();
    Live::get().refresh_after(remove);
    provide_context(ContactsState {
        remove,
        csrf: account.csrf.clone(),
    });
    view! {
        <h1>"Contacts"</h1>
        <WithData data render=|data| view! { <ContactList data /> }.into_any() />
        <p class="form-error" role="alert">{move || action_error(remove, None).get()}</p>
        <QuickPayCard account=account.clone() data />
        <AddContactCard csrf=account.csrf />
    }
}

#[derive(Clone)]
struct ContactsState {
    remove: ServerAction<RemoveContact>,
    csrf: String,
}

#[component]
fn ContactList(data: DataResponse) -> impl IntoView {
    if data.addressbook.is_empty() {
        return view! {
            <p class="card empty">"No contacts yet. Add one below, or save a payee when you pay an invoice."</p>
        }
        .into_any();
    }
    view! {
        <ul class="card list" aria-label="Contacts">
            {data.addressbook.into_iter().map(|contact| view! { <ContactRow contact /> }).collect_view()}
        </ul>
    }
    .into_any()
}

#[component]
fn ContactRow(contact: ContactView) -> impl IntoView {
    let ContactsState { remove, csrf } = expect_context::<ContactsState>();
    let confirming = RwSignal::new(false);
    let alias = contact.alias.clone();
    let confirm = move |_| {
        remove.dispatch(RemoveContact {
            alias: alias.clone(),
            _csrf: Some(csrf.clone()),
        });
        confirming.set(false);
    };
    let name = contact.alias.clone();
    view! {
        <li class="row" data-testid="contact">
            <div class="grow">
                <strong class="alias">{contact.alias.clone()}</strong>
                <code class="wrap small">{contact.node_id.clone()}</code>
                {contact.host.clone().map(|host| view! { <span class="hint">{host}</span> })}
            </div>
            <Show
                when=move || confirming.get()
                fallback=move || view! {
                    <button type="button" class="secondary small" on:click=move |_| confirming.set(true)
                        aria-label=format!("Remove {name}")>"Remove"</button>
                }
            >
                <span class="confirm">
                    "Remove? "
                    <button type="button" class="danger small" on:click=confirm.clone()>"Yes, remove"</button>
                    <button type="button" class="secondary small" on:click=move |_| confirming.set(false)>"Keep"</button>
                </span>
            </Show>
        </li>
    }
}

/// Pays a contact by alias with a fresh invoice from their node.
#[component]
fn QuickPayCard(
    account: Account,
    data: Resource<Result<DataResponse, crate::api::ApiError>>,
) -> impl IntoView {
    let pay = ServerAction::<QuickPay>::new();
    let dest = RwSignal::new(String::new());
    let amount = RwSignal::new(String::new());
    let memo = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let asks_code = asks_code(pay);
    Live::get().refresh_after(pay);
    let recheck = account.recheck_password;
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        pay.dispatch(QuickPay {
            dest: dest.get_untracked(),
            amount: Amount(amount.get_untracked().trim().to_string()),
            memo: Some(memo.get_untracked()),
            fee_limit: None,
            password: recheck.then(|| password.get_untracked()),
            otp_code: Some(code.get_untracked().trim().to_string()).filter(|c| !c.is_empty()),
            _csrf: Some(account.csrf.clone()),
        });
    };
    let unit = account.denomination.clone();
    view! {
        <section class="card">
            <h2>"QuickPay a contact"</h2>
            <form class="form" on:submit=submit>
                <div class="field">
                    <label for="quickpay-dest">"Contact"</label>
                    <select id="quickpay-dest" bind:value=dest required>
                        <option value="">"Choose…"</option>
                        // Read inside a transition, as on the server, so hydration
                        // finds the same options.
                        <Transition>
                            {move || Suspend::new(async move {
                                data.await.ok().map(|d| d.addressbook.into_iter().map(|c| {
                                    let label = c.alias.clone();
                                    view! { <option value=c.alias>{label}</option> }
                                }).collect_view())
                            })}
                        </Transition>
                    </select>
                    <p class="field-error" role="alert">{move || action_error(pay, Some("dest")).get()}</p>
                </div>
                <Field label=format!("Amount ({unit})") name="amount" id="quickpay-amount"
                    inputmode="decimal" autocomplete="off" value=amount error=action_error(pay, Some("amount")) />
                <Field label="Memo" name="memo" id="quickpay-memo" autocomplete="off" required=false
                    value=memo error=action_error(pay, Some("memo")) />
                {recheck.then(|| view! {
                    <Field label="Your password" name="password" id="quickpay-password" kind="password"
                        autocomplete="current-password" value=password error=action_error(pay, Some("password")) />
                })}
                <Show when=move || asks_code.get()>
                    <Field label="Two-factor code" name="otp_code" id="quickpay-code" value=code
                        autocomplete="one-time-code" inputmode="numeric"
                        error=action_error(pay, Some("otp_code")) />
                </Show>
                <p class="form-error" role="alert">{move || form_error(pay, &["dest", "amount", "memo", "password", "otp_code"]).get()}</p>
                <button type="submit" disabled=move || pay.pending().get()>
                    {move || if pay.pending().get() { "Paying…" } else { "Pay" }}
                </button>
            </form>
            {move || pay.value().get().and_then(|r| r.ok()).and_then(|r| Some((r.payment?, r.rate))).map(|(p, rate)| view! {
                <p class="success" role="status" data-testid="quickpay-result">
                    {format!("Paid {} {} to {} (fee {})", p.amount.grouped(), unit, dest.get_untracked(), p.fee.grouped())}
                </p>
                <RateNote rate />
            })}
        </section>
    }
}

#[component]
fn AddContactCard(csrf: String) -> impl IntoView {
    let add = ServerAction::<AddContact>::new();
    let live = Live::get();
    let alias = RwSignal::new(String::new());
    let node_id = RwSignal::new(String::new());
    let host = RwSignal::new(String::new());
    Effect::new(move |_| {
        if add.value().with(|v| matches!(v, Some(Ok(_)))) {
            live.refresh();
            alias.set(String::new());
            node_id.set(String::new());
            host.set(String::new());
        }
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let host = host.get_untracked().trim().to_string();
        add.dispatch(AddContact {
            alias: alias.get_untracked(),
            node_id: node_id.get_untracked().trim().to_string(),
            host: (!host.is_empty()).then_some(host),
            _csrf: Some(csrf.clone()),
        });
    };
    view! {
        <section class="card">
            <h2>"Add a contact"</h2>
            <form class="form" on:submit=submit>
                <Field label="Alias" name="alias" id="contact-alias" autocomplete="off"
                    value=alias error=action_error(add, Some("alias")) />
                <Field label="Node id" name="node_id" id="contact-node" autocomplete="off"
                    placeholder="02…" value=node_id error=action_error(add, Some("remotenode")) />
                <Field label="Server (host:port, optional)" name="host" id="contact-host" autocomplete="off"
                    required=false value=host error=action_error(add, Some("host")) />
                <p class="form-error" role="alert">{move || form_error(add, &["alias", "remotenode", "host"]).get()}</p>
                <button type="submit" disabled=move || add.pending().get()>"Add contact"</button>
            </form>
        </section>
    }
}
