use contract::Price;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

use super::action_error;
use crate::api::desk::CloseFromPage;
use crate::api::group_thousands;
use crate::api::lnm::{list_positions, AddMargin, CancelPosition, PositionView, UpdatePosition};
use crate::api::session::Account;
use crate::components::figures::{in_unit, percent, sats, signed_sats, usd};
use crate::components::{Field, Realtime, SignedIn};

lazy_wallet_page!(PositionsPage, "Positions · Ampere", Positions);

/// The actions every row shares, and which position the last one was for
/// (its refusal shows in that row only).
#[derive(Clone, Copy)]
struct Actions {
    update: ServerAction<UpdatePosition>,
    close: ServerAction<CloseFromPage>,
    cancel: ServerAction<CancelPosition>,
    add_margin: ServerAction<AddMargin>,
    acting_on: RwSignal<String>,
    unit: StoredValue<String>,
    csrf: StoredValue<String>,
}

/// Open positions with their P&L at every tick, pending limit orders, closed
/// positions with their result, and totals.
#[component]
fn Positions(account: Account) -> impl IntoView {
    let realtime = Realtime::get();
    realtime.connect();
    let open = Resource::new(
        move || realtime.positions(),
        |_| list_positions(None, None, None),
    );
    let closed = Resource::new(
        move || realtime.positions(),
        |_| list_positions(None, Some("true".into()), None),
    );
    let actions = Actions {
        update: ServerAction::new(),
        close: ServerAction::new(),
        cancel: ServerAction::new(),
        add_margin: ServerAction::new(),
        acting_on: RwSignal::new(String::new()),
        unit: StoredValue::new(account.denomination.clone()),
        csrf: StoredValue::new(account.csrf.clone()),
    };
    // Whatever an action changed is read again.
    Effect::new(move |_| {
        let versions = (
            actions.update.version().get(),
            actions.close.version().get(),
            actions.cancel.version().get(),
            actions.add_margin.version().get(),
        );
        if versions != (0, 0, 0, 0) {
            realtime.refresh();
        }
    });
    provide_context(actions);
    view! {
        <h1>"Positions"</h1>
        <Transition fallback=|| view! { <p class="loading">"Loading your positions…"</p> }>
            {move || Suspend::new(async move {
                let (open, closed) = (open.await, closed.await);
                match (open, closed) {
                    (Ok(open), Ok(closed)) => view! {
                        <Book open=open.positions closed=closed.positions />
                    }.into_any(),
                    (Err(err), _) | (_, Err(err)) => view! {
                        <p class="form-error card" role="alert">{err.message}</p>
                    }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Whether a position is a limit order still waiting for its price.
fn pending(position: &PositionView) -> bool {
    position.market_wi == "running"
}

#[component]
fn Book(open: Vec<PositionView>, closed: Vec<PositionView>) -> impl IntoView {
    let realtime = Realtime::get();
    let Actions { unit, .. } = expect_context();
    let (orders, filled): (Vec<_>, Vec<_>) = open.into_iter().partition(pending);
    let margins: i64 = filled
        .iter()
        .filter_map(|p| p.margin.parse::<i64>().ok())
        .sum();
    let realised: i64 = closed.iter().filter_map(|p| p.pl.parse::<i64>().ok()).sum();
    let valued = filled.clone();
    let rendered: i64 = filled.iter().filter_map(|p| p.pl.parse::<i64>().ok()).sum();
    let open_pl = Memo::new(move |_| match realtime.quote() {
        Some(quote) => Some(valued.iter().filter_map(|p| quote.pl_of(p)).sum::<i64>()),
        None => Some(rendered),
    });
    let in_unit_of = move |amount: i64| {
        realtime
            .quote()
            .and_then(|q| unit.with_value(|u| in_unit(amount, u, q.index)))
            .map(|v| format!(" · {v}"))
            .unwrap_or_default()
    };
    view! {
        <section class="card" aria-labelledby="totals-title">
            <h2 id="totals-title">"Totals"</h2>
            <div class="balances">
                <div class="balance">
                    <span class="label">"Open P&L"</span>
                    <span class="amount" data-testid="total-open-pl">
                        {move || open_pl.get().map_or_else(|| "—".into(), signed_sats)}
                    </span>
                    <span class="unit">{move || open_pl.get().map(in_unit_of).unwrap_or_default()}</span>
                </div>
                <div class="balance">
                    <span class="label">"Margin in use"</span>
                    <span class="amount" data-testid="total-margin">{sats(margins)}</span>
                </div>
                <div class="balance">
                    <span class="label">"Closed P&L"</span>
                    <span class="amount" data-testid="total-closed-pl">{signed_sats(realised)}</span>
                </div>
            </div>
        </section>
        <section class="card list" aria-labelledby="open-title">
            <h2 id="open-title">{format!("Open ({})", filled.len())}</h2>
            {if filled.is_empty() {
                view! { <p class="empty">"No open position. "<a href="/trade">"Trade"</a></p> }.into_any()
            } else {
                filled.into_iter().map(|p| view! { <OpenRow position=p /> }).collect_view().into_any()
            }}
        </section>
        <section class="card list" aria-labelledby="orders-title">
            <h2 id="orders-title">{format!("Limit orders ({})", orders.len())}</h2>
            {if orders.is_empty() {
                view! { <p class="empty">"No pending order."</p> }.into_any()
            } else {
                orders.into_iter().map(|p| view! { <OrderRow position=p /> }).collect_view().into_any()
            }}
        </section>
        <section class="card list" aria-labelledby="closed-title">
            <h2 id="closed-title">{format!("Closed ({})", closed.len())}</h2>
            {if closed.is_empty() {
                view! { <p class="empty">"Nothing closed yet."</p> }.into_any()
            } else {
                closed.into_iter().map(|p| view! { <ClosedRow position=p /> }).collect_view().into_any()
            }}
        </section>
    }
}

/// `Long 682 USD ×50` of a position.
fn headline(p: &PositionView) -> String {
    let leverage = p.leverage.trim_end_matches('0').trim_end_matches('.');
    format!(
        "{} {} USD ×{leverage}",
        if p.side == "b" { "Long" } else { "Short" },
        group_thousands(&p.quantity)
    )
}

fn price_text(price: Option<&String>) -> String {
    price
        .and_then(|p| Price::parse(p))
        .map_or_else(|| "—".into(), usd)
}

#[component]
fn OpenRow(position: PositionView) -> impl IntoView {
    let realtime = Realtime::get();
    let actions: Actions = expect_context();
    let margin: i64 = position.margin.parse().unwrap_or(0);
    let valued = position.clone();
    // Once per tick per row, however many places show it; the server's own
    // valuation until a live quote arrives (and without JavaScript).
    let rendered: Option<i64> = position.pl.parse().ok();
    let pl = Memo::new(move |_| realtime.quote().and_then(|q| q.pl_of(&valued)).or(rendered));
    let pid = StoredValue::new(position.pid.clone());
    let mine = move || actions.acting_on.get() == pid.get_value();
    let close_error = action_error(actions.close, None);
    view! {
        <article class="row position" data-testid="open-position" data-pid=position.pid.clone()>
            <div class="grow">
                <strong class="alias">{headline(&position)}</strong>
                <dl class="facts">
                    <dt>"Entry"</dt>
                    <dd>{price_text(Some(&position.price))}</dd>
                    <dt>"Margin"</dt>
                    <dd data-testid="position-margin">{sats(margin)}</dd>
                    <dt>"Liquidation"</dt>
                    <dd data-testid="position-liquidation">{price_text(position.liquidation.as_ref())}</dd>
                    <dt>"Take-profit"</dt>
                    <dd data-testid="position-tp">{price_text(position.takeprofit.as_ref())}</dd>
                    <dt>"Stop-loss"</dt>
                    <dd data-testid="position-sl">{price_text(position.stoploss.as_ref())}</dd>
                </dl>
            </div>
            <div class="pl" aria-live="off">
                <span class="amount" class:gain=move || pl.get().is_some_and(|v| v > 0)
                    class:loss=move || pl.get().is_some_and(|v| v < 0) data-testid="position-pl">
                    {move || pl.get().map_or_else(|| "—".into(), signed_sats)}
                </span>
                <span class="hint">
                    {move || pl.get().map(|v| percent(v, margin)).unwrap_or_default()}
                    {move || {
                        let quote = realtime.quote()?;
                        let v = pl.get()?;
                        actions.unit.with_value(|u| in_unit(v, u, quote.index)).map(|v| format!(" · {v}"))
                    }}
                </span>
            </div>
            <div class="row-actions">
                <TriggerForm pid=pid.get_value() field="takeprofit" label="Take-profit (USD)" current=position.takeprofit.clone() />
                <TriggerForm pid=pid.get_value() field="stoploss" label="Stop-loss (USD)" current=position.stoploss.clone() />
                <AddMarginForm pid=pid.get_value() />
                <CloseButton pid=pid.get_value() />
                <p class="form-error" role="alert">
                    {move || mine().then(|| close_error.get()).flatten()}
                </p>
            </div>
        </article>
    }
}

/// Sets (or, empty, removes) a take-profit or a stop-loss.
#[component]
fn TriggerForm(
    pid: String,
    field: &'static str,
    label: &'static str,
    current: Option<String>,
) -> impl IntoView {
    let actions: Actions = expect_context();
    let value = RwSignal::new(current.unwrap_or_default());
    let pid = StoredValue::new(pid);
    let error = {
        let refused = action_error(actions.update, Some(field));
        let other = action_error(actions.update, None);
        Signal::derive(move || {
            let mine = actions.acting_on.get() == pid.get_value()
                && actions
                    .update
                    .input()
                    .with(|i| i.as_ref().is_none_or(|i| i.pid == pid.get_value()));
            mine.then(|| refused.get().or_else(|| other.get()))
                .flatten()
        })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = value.get_untracked().trim().replace(',', "");
        // Empty removes the trigger: the API's zero.
        let price: Option<serde_json::Number> = if text.is_empty() {
            "0".parse().ok()
        } else {
            text.parse().ok()
        };
        let Some(price) = price else {
            return;
        };
        actions.acting_on.set(pid.get_value());
        let (takeprofit, stoploss) = match field {
            "takeprofit" => (Some(price), None),
            _ => (None, Some(price)),
        };
        actions.update.dispatch(UpdatePosition {
            pid: pid.get_value(),
            takeprofit,
            stoploss,
        });
    };
    let id = match field {
        "takeprofit" => "tp",
        _ => "sl",
    };
    view! {
        <form class="inline-form" on:submit=submit>
            <Field label=label name=field id=format!("{id}-{}", pid.get_value())
                inputmode="decimal" required=false value error />
            <button type="submit" class="small secondary" disabled=move || actions.update.pending().get()>
                "Set"
            </button>
        </form>
    }
}

/// Moves sats from the trading balance into the position's margin.
#[component]
fn AddMarginForm(pid: String) -> impl IntoView {
    let actions: Actions = expect_context();
    let amount = RwSignal::new(String::new());
    let pid = StoredValue::new(pid);
    let error = {
        let refused = action_error(actions.add_margin, Some("amount"));
        let other = action_error(actions.add_margin, None);
        Signal::derive(move || {
            (actions.acting_on.get() == pid.get_value())
                .then(|| refused.get().or_else(|| other.get()))
                .flatten()
        })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(sats) = amount
            .get_untracked()
            .trim()
            .replace(',', "")
            .parse::<serde_json::Number>()
        else {
            return;
        };
        actions.acting_on.set(pid.get_value());
        actions.add_margin.dispatch(AddMargin {
            pid: pid.get_value(),
            amount: Some(sats),
        });
    };
    view! {
        <form class="inline-form" on:submit=submit>
            <Field label="Add margin (sat)" name="amount"
                id=format!("margin-{}", pid.get_value())
                inputmode="numeric" value=amount error />
            <button type="submit" class="small secondary" disabled=move || actions.add_margin.pending().get()>
                "Add"
            </button>
        </form>
    }
}

/// Closes at the current price, after a confirmation: a `details` element
/// holding the form, so it works without JavaScript too.
#[component]
fn CloseButton(pid: String) -> impl IntoView {
    let actions: Actions = expect_context();
    let realtime = Realtime::get();
    let acting_on = pid.clone();
    view! {
        <details class="confirm-close">
            <summary class="button secondary">"Close"</summary>
            <ActionForm action=actions.close attr:class="confirm"
                on:submit=move |_| actions.acting_on.set(acting_on.clone())>
                <input type="hidden" name="pid" value=pid />
                <input type="hidden" name="csrf" value=actions.csrf.get_value() />
                <span>{move || format!(
                    "Close at the market{}?",
                    realtime.quote().map(|q| format!(" (index {})", usd(q.index))).unwrap_or_default()
                )}</span>
                <button type="submit" class="danger" disabled=move || actions.close.pending().get()>
                    "Yes, close it"
                </button>
            </ActionForm>
        </details>
    }
}

#[component]
fn OrderRow(position: PositionView) -> impl IntoView {
    let actions: Actions = expect_context();
    let pid = StoredValue::new(position.pid.clone());
    let mine = move || actions.acting_on.get() == pid.get_value();
    let cancel_error = action_error(actions.cancel, None);
    view! {
        <article class="row position" data-testid="limit-order" data-pid=position.pid.clone()>
            <div class="grow">
                <strong class="alias">{headline(&position)}</strong>
                <span>{format!(
                    "Limit {} · margin {}",
                    price_text(Some(&position.price)),
                    sats(position.margin.parse().unwrap_or(0))
                )}</span>
            </div>
            <button type="button" class="secondary" disabled=move || actions.cancel.pending().get()
                on:click=move |_| {
                    actions.acting_on.set(pid.get_value());
                    actions.cancel.dispatch(CancelPosition { pid: pid.get_value() });
                }>
                "Cancel order"
            </button>
            <p class="form-error" role="alert">
                {move || mine().then(|| cancel_error.get()).flatten()}
            </p>
        </article>
    }
}

#[component]
fn ClosedRow(position: PositionView) -> impl IntoView {
    let pl: i64 = position.pl.parse().unwrap_or(0);
    let how = if position.canceled {
        "Canceled".to_string()
    } else {
        match position.closed_by.as_deref() {
            Some("takeprofit") => "Take-profit hit",
            Some("stoploss") => "Stopped out",
            Some("liquidated") => "Liquidated",
            _ => "Closed",
        }
        .to_string()
    };
    let when = position
        .closed_ts
        .clone()
        .or(position.canceled_ts.clone())
        .unwrap_or_default();
    view! {
        <article class="row position" data-testid="closed-position" data-pid=position.pid.clone()>
            <div class="grow">
                <strong class="alias">{headline(&position)}</strong>
                <span>{format!(
                    "{} → {}",
                    price_text(Some(&position.price)),
                    price_text(position.exit_price.as_ref())
                )}</span>
                <time class="hint" datetime=when.clone()>{when.replace('T', " ").replace('Z', " UTC")}</time>
            </div>
            <span class=if position.closed_by.as_deref() == Some("liquidated") { "badge short" } else { "badge" }
                data-testid="closed-how">{how}</span>
            <span class="amount" class:gain={pl > 0} class:loss={pl < 0} data-testid="closed-pl">
                {if position.canceled { "—".to_string() } else { signed_sats(pl) }}
            </span>
        </article>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::LiveQuote;

    #[test]
    fn a_positions_live_pl_is_the_servers_and_never_beyond_its_margin() {
        let position = PositionView {
            id: "1".into(),
            pid: "p".into(),
            uid: "u".into(),
            user_id: None,
            kind: "m".into(),
            side: "s".into(),
            sign: "-1".into(),
            quantity: "682".into(),
            margin: "136536".into(),
            leverage: "50.0000".into(),
            price: "9990.0".into(),
            liquidation: Some("10194.0".into()),
            pl: "0".into(),
            exit_price: None,
            takeprofit: None,
            stoploss: None,
            takeprofit_wi: None,
            stoploss_wi: None,
            market_wi: "filled".into(),
            margin_wi: "running".into(),
            creation_ts: None,
            market_filled_ts: None,
            funded: true,
            funded_ts: None,
            closed: false,
            closed_ts: None,
            canceled: false,
            canceled_ts: None,
            closed_by: None,
            payment_hash: None,
            wid: None,
            withdraw: false,
        };
        let quote = |offer: &str| LiveQuote {
            index: Price::parse(offer).unwrap(),
            bid: Price::parse(offer).unwrap(),
            offer: Price::parse(offer).unwrap(),
            at_ms: 0,
        };
        // The spec's worked example: a short valued at the offer.
        assert_eq!(quote("10010").pl_of(&position), Some(-13_640));
        assert_eq!(quote("20000").pl_of(&position), Some(-136_536));
        assert!(!pending(&position));
    }
}
