use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::desk::{desk_card, DeskCardView};
use crate::api::group_thousands;
use crate::api::mylightning::{SummaryResponse, UpdateSettings};
use crate::api::session::Account;
use crate::api::ApiError;
use crate::components::figures::signed_sats;
use crate::components::{
    wallet_summary, CopyButton, Live, RateNote, Realtime, SignedIn, SimnetActions, SimnetTools,
    WithData,
};

/// The landing page: the signed-in account's dashboard, or a welcome for visitors.
#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <Title text="Ampere" />
        <SignedIn
            page=|account| view! { <Dashboard account /> }.into_any()
            visitor=|| view! { <Welcome /> }.into_any()
        />
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

/// What the dashboard's parts share beyond its data.
#[derive(Clone, Copy)]
struct DashboardState {
    settings: ServerAction<UpdateSettings>,
    simnet_dev: bool,
}

/// Balances, the node and its receive address, in the account's denomination.
#[component]
fn Dashboard(account: Account) -> impl IntoView {
    let data = wallet_summary();
    let settings = ServerAction::<UpdateSettings>::new();
    Live::get().refresh_after(settings);
    SimnetActions::provide();
    provide_context(DashboardState {
        settings,
        simnet_dev: account.simnet_dev,
    });
    view! {
        <h1 class="greeting">"Welcome, " <span data-testid="username">{account.username}</span></h1>
        // One read of the data for the whole page: its parts render together.
        <WithData data render=|data| view! { <Overview data /> }.into_any() />
    }
}

#[component]
fn Overview(data: SummaryResponse) -> impl IntoView {
    let DashboardState {
        settings,
        simnet_dev,
    } = expect_context();
    let tools = simnet_dev.then(|| {
        view! { <SimnetTools address=data.address.clone() csrf=data.csrf.clone() /> }
    });
    view! {
        <Balances data=data.clone() settings />
        <Desk />
        <Node data />
        {tools}
    }
}

/// The trading balance and the open positions' P&L, live.
#[component]
fn Desk() -> impl IntoView {
    let realtime = Realtime::get();
    realtime.connect();
    let live = Live::get();
    // Read by the browser after hydration (an effect), again whenever money
    // moves or a position changes; the P&L moves with every quote. Neither a
    // resource nor read while the server renders: resources read reactively
    // in its render hung it under load (Leptos 0.8's SSR, leptos-rs/leptos
    // #4578 and #4673), and the figures are live anyway.
    let card = RwSignal::new(None::<Result<DeskCardView, ApiError>>);
    let asked = StoredValue::new(0u64);
    Effect::new(move |_| {
        live.funds();
        realtime.positions();
        let ask = asked.get_value() + 1;
        asked.set_value(ask);
        leptos::task::spawn_local(async move {
            let read = desk_card().await;
            // An older answer never overwrites a newer one.
            if asked.get_value() == ask {
                card.set(Some(read));
            }
        });
    });
    let read = move || card.with(|c| c.as_ref().map(|c| c.as_ref().ok().cloned()));
    let balance = move || match read() {
        None => "…".to_string(),
        Some(None) => "—".to_string(),
        Some(Some(c)) => group_thousands(&c.balance.to_string()),
    };
    let open_pl = move || {
        let quote = realtime.quote()?;
        card.with(|c| {
            let open = &c.as_ref()?.as_ref().ok()?.open;
            Some(open.iter().filter_map(|p| quote.pl_of(p)).sum::<i64>())
        })
    };
    let count = move || read().flatten().map_or(0, |c| c.open.len());
    view! {
        <section class="card" aria-labelledby="desk-title">
            <div class="row">
                <h2 id="desk-title" class="grow">"Trading desk"</h2>
                <a href="/trade">"Trade"</a>
                <a href="/funding">"Fund"</a>
            </div>
            <div class="balances">
                <div class="balance">
                    <span class="label">"Trading balance"</span>
                    <span class="amount" data-testid="desk-balance">{balance}</span>
                    <span class="unit">"sat"</span>
                </div>
                <div class="balance">
                    <span class="label">{move || format!("Open P&L ({} positions)", count())}</span>
                    <span class="amount" data-testid="desk-open-pl">
                        {move || open_pl().map_or_else(|| "—".into(), signed_sats)}
                    </span>
                    <span class="unit">"live"</span>
                </div>
            </div>
        </section>
    }
}

#[component]
fn Balances(data: SummaryResponse, settings: ServerAction<UpdateSettings>) -> impl IntoView {
    let csrf = data.csrf;
    let choose = move |ev: leptos::ev::Event| {
        settings.dispatch(UpdateSettings {
            denomination: Some(event_target_value(&ev)),
            recheck_password: None,
            password: None,
            _csrf: Some(csrf.clone()),
        });
    };
    let unit = data.denomination;
    let balance = |label: &'static str, id: &'static str, amount: String| {
        view! {
            <div class="balance">
                <span class="label">{label}</span>
                <span class="amount" data-testid=id>{amount}</span>
                <span class="unit">{unit.clone()}</span>
            </div>
        }
    };
    view! {
        <section class="card" aria-labelledby="balances-title">
            <h2 id="balances-title">"Balances"</h2>
            <div class="balances">
                {balance("Total", "balance-total", data.balances.btcfunds.grouped())}
                {balance("Lightning", "balance-lightning", data.balances.lntfunds.grouped())}
                {balance("On chain", "balance-onchain", data.balances.onchainfunds.grouped())}
            </div>
            <RateNote rate=data.rate />
            <label class="inline">
                "Show amounts in "
                <select on:change=choose aria-label="Denomination" disabled=move || settings.pending().get()>
                    {["sat", "btc", "mbtc", "bits", "usd"]
                        .into_iter()
                        .map(|d| view! { <option value=d selected=unit == d>{d}</option> })
                        .collect_view()}
                </select>
            </label>
        </section>
    }
}

/// The node's identity and chain state, and the address that receives on chain.
#[component]
fn Node(data: SummaryResponse) -> impl IntoView {
    let node_id = data.info.node_id;
    let address = data.address;
    let png = format!("/rest/v1/getqrimage?inputcode={address}");
    view! {
        <section class="card">
            <h2>"Your node"</h2>
            <dl class="facts">
                <dt>"Alias"</dt>
                <dd>{data.info.alias}</dd>
                <dt>"Node id"</dt>
                <dd class="copyable">
                    <code class="wrap" data-testid="node-id">{node_id.clone()}</code>
                    <CopyButton text=node_id label="Copy the node id" />
                </dd>
                <dt>"Block height"</dt>
                <dd data-testid="blockheight">{data.info.blockheight}</dd>
                <dt>"Chain"</dt>
                <dd>{if data.info.synchronized { "Synchronized" } else { "Catching up…" }}</dd>
            </dl>
        </section>
        <section class="card">
            <h2>"Receive on chain"</h2>
            <img class="qr" src=png width="240" height="240" alt="QR code of the address" />
            <p class="copyable">
                <code class="wrap" data-testid="address">{address.clone()}</code>
                <CopyButton text=address label="Copy the address" />
            </p>
        </section>
    }
}
