use leptos::prelude::*;

use crate::api::simnet::{Faucet, Mine};
use crate::components::Live;
use crate::pages::action_error;

/// The faucet's and the miner's actions, owned by the page: the tools are drawn
/// inside the page's data, which is read again after each action, and their
/// results must outlive that redraw.
#[derive(Clone, Copy)]
pub struct SimnetActions {
    faucet: ServerAction<Faucet>,
    mine: ServerAction<Mine>,
}

impl SimnetActions {
    /// Makes the actions available to the page's [`SimnetTools`]; what they
    /// change is read again at once, with or without the event stream.
    pub fn provide() {
        let actions = SimnetActions {
            faucet: ServerAction::<Faucet>::new(),
            mine: ServerAction::<Mine>::new(),
        };
        Live::get().refresh_after(actions.mine);
        provide_context(actions);
    }
}

/// Test coins and blocks on demand, shown when the server runs with
/// `--simnet-dev`.
#[component]
pub fn SimnetTools(address: String, csrf: String) -> impl IntoView {
    let SimnetActions { faucet, mine } = expect_context();
    let fund = {
        let csrf = csrf.clone();
        move |_| {
            faucet.dispatch(Faucet {
                address: address.clone(),
                sats: 1_000_000,
                _csrf: Some(csrf.clone()),
            });
        }
    };
    let blocks = move |count: i64| {
        let csrf = csrf.clone();
        move |_| {
            mine.dispatch(Mine {
                blocks: count,
                _csrf: Some(csrf.clone()),
            });
        }
    };
    let busy = move || faucet.pending().get() || mine.pending().get();
    view! {
        <section class="card">
            <h2>"Simnet"</h2>
            <p class="hint">"Test coins and blocks, for this development server only."</p>
            <p class="actions">
                <button type="button" class="secondary" disabled=busy on:click=fund>
                    "Get 1,000,000 test sats"
                </button>
                <button type="button" class="secondary" disabled=busy on:click=blocks(1)>"Mine 1 block"</button>
                <button type="button" class="secondary" disabled=busy on:click=blocks(6)>"Mine 6 blocks"</button>
            </p>
            <p role="status" class="hint">
                {move || faucet.value().get().and_then(|r| r.ok()).map(|_| "Coins sent: they count once a block is mined.")}
                {move || mine.value().get().and_then(|r| r.ok()).map(|m| format!(" Block height {}.", m.height))}
            </p>
            <p class="form-error" role="alert">
                {move || action_error(faucet, None).get().or_else(|| action_error(mine, None).get())}
            </p>
        </section>
    }
}
