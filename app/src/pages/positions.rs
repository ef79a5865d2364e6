use contract::Price;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

use super::{action_error, FormError, Refusal};
use crate::api::desk::CloseFromPage;
use crate::api::group_thousands;
use crate::api::lnm::{
    list_positions, AddMargin, CancelPosition, LnmError, PositionView, UpdatePosition,
};
use crate::api::session::Account;
use crate::components::figures::{in_unit, percent, sats, signed_sats, usd};
use crate::components::{Field, Realtime, SignedIn};
use leptos::server_fn::ServerFn;

lazy_wallet_page!(PositionsPage, "Positions · Ampere", Positions);

/// The actions every row shares, and which row's form the last one came
/// from (its refusal shows in that form only).
#[derive(Clone, Copy)]
struct Actions {
    update: ServerAction<UpdatePosition>,
    close: ServerAction<CloseFromPage>,
    cancel: ServerAction<CancelPosition>,
    add_margin: ServerAction<AddMargin>,
    acting_on: RwSignal<String>,
    unit: StoredValue<String>,
    csrf: StoredValue<String>,
    /// Whether the page is hydrated (the forms without a no-JS path wait).
    ready: RwSignal<bool>,
}

/// Open positions with their P&L at every tick, pending limit orders, closed
/// positions with their result, and totals.
#[component]
fn Positions(account: Account) -> impl IntoView {
    let realtime = Realtime::get();
    realtime.connect();
    // Read with the page; afterwards the book reads them again itself (see
    // `Book`), so that a change redraws only the rows it changed.
    let book = Resource::new(|| (), |_| read_book());
    let actions = Actions {
        update: ServerAction::new(),
        close: ServerAction::new(),
        cancel: ServerAction::new(),
        add_margin: ServerAction::new(),
        acting_on: RwSignal::new(String::new()),
        unit: StoredValue::new(account.denomination.clone()),
        csrf: StoredValue::new(account.csrf.clone()),
        ready: RwSignal::new(false),
    };
    // Effects run in the browser only: the forms that need JavaScript wait
    // for it.
    Effect::new(move |_| actions.ready.set(true));
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
        <Suspense fallback=|| view! { <p class="loading">"Loading your positions…"</p> }>
            {move || Suspend::new(async move {
                match book.await {
                    Ok((open, closed)) => view! { <Book open closed /> }.into_any(),
                    Err(err) => view! {
                        <p class="form-error card" role="alert">{err.message}</p>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The account's open positions (pending limit orders among them) and its
/// closed ones.
async fn read_book() -> Result<(Vec<PositionView>, Vec<PositionView>), LnmError> {
    let open = list_positions(None, None, None).await?;
    let closed = list_positions(None, Some("true".into()), None).await?;
    Ok((open.positions, closed.positions))
}

/// Which form of which row acted last (its refusal shows there only).
fn acting(pid: &str, form: &str) -> String {
    format!("{pid} {form}")
}

/// What a row's form shows under its input: its own `typo` first, then the
/// refusal of the last request, if this form (`me`) sent it, whether the
/// server named `field` or no field.
fn form_refusal<S>(
    action: ServerAction<S>,
    field: &'static str,
    me: StoredValue<String>,
    typo: RwSignal<Option<String>>,
) -> Signal<Option<String>>
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Error: FormError + Send + Sync + 'static,
    S::Output: Refusal + Send + Sync + 'static,
{
    let Actions { acting_on, .. } = expect_context();
    let refused = action_error(action, Some(field));
    let other = action_error(action, None);
    Signal::derive(move || {
        typo.get().or_else(|| {
            me.with_value(|me| acting_on.with(|a| a == me))
                .then(|| refused.get().or_else(|| other.get()))
                .flatten()
        })
    })
}

/// Whether a position is a limit order still waiting for its price.
fn pending(position: &PositionView) -> bool {
    position.market_wi == "running"
}

/// What a row shows besides its live P&L: a row is drawn again only when one
/// of these changed (a row being edited keeps what is typed in it).
fn row_key(p: &PositionView) -> String {
    format!(
        "{}|{}|{}|{}|{:?}|{:?}|{:?}|{}|{}",
        p.pid,
        p.margin,
        p.leverage,
        p.quantity,
        p.liquidation,
        p.takeprofit,
        p.stoploss,
        p.market_wi,
        p.closed
    )
}

#[component]
fn Book(open: Vec<PositionView>, closed: Vec<PositionView>) -> impl IntoView {
    let realtime = Realtime::get();
    let Actions { unit, .. } = expect_context();
    let open = RwSignal::new(open);
    let closed = RwSignal::new(closed);
    // Read again when the account's positions change (a push, an action, a
    // reconnection); an answer older than the latest change is dropped.
    Effect::new(move |seen: Option<u64>| {
        let version = realtime.positions();
        if seen.is_some() {
            leptos::task::spawn_local(async move {
                if let Ok((o, c)) = read_book().await {
                    if realtime.positions_untracked() == version {
                        open.set(o);
                        closed.set(c);
                    }
                }
            });
        }
        version
    });
    let filled = Memo::new(move |_| {
        open.with(|o| {
            o.iter()
                .filter(|p| !pending(p))
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    let orders = Memo::new(move |_| {
        open.with(|o| o.iter().filter(|p| pending(p)).cloned().collect::<Vec<_>>())
    });
    let sum = |list: &[PositionView], field: fn(&PositionView) -> &String| -> i64 {
        list.iter()
            .filter_map(|p| field(p).parse::<i64>().ok())
            .sum()
    };
    // Margin held by filled positions and by orders waiting to fill.
    let margins = move || open.with(|o| sum(o, |p| &p.margin));
    let realised = move || closed.with(|c| sum(c, |p| &p.pl));
    let open_pl = Memo::new(move |_| {
        filled.with(|filled| match realtime.quote() {
            Some(quote) => filled
                .iter()
                .filter_map(|p| quote.pl_of(&p.exposure()))
                .sum::<i64>(),
            None => sum(filled, |p| &p.pl),
        })
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
                        {move || signed_sats(open_pl.get())}
                    </span>
                    <span class="unit">{move || in_unit_of(open_pl.get())}</span>
                </div>
                <div class="balance">
                    <span class="label">"Margin in use"</span>
                    <span class="amount" data-testid="total-margin">{move || sats(margins())}</span>
                </div>
                <div class="balance">
                    <span class="label">"Closed P&L"</span>
                    <span class="amount" data-testid="total-closed-pl">{move || signed_sats(realised())}</span>
                    <span class="unit">{move || in_unit_of(realised())}</span>
                </div>
            </div>
        </section>
        <section class="card list" aria-labelledby="open-title">
            <h2 id="open-title">{move || format!("Open ({})", filled.with(Vec::len))}</h2>
            <Show when=move || filled.with(Vec::is_empty)>
                <p class="empty">"No open position. "<a href="/trade">"Trade"</a></p>
            </Show>
            <For each=move || filled.get() key=row_key let(p)>
                <OpenRow position=p />
            </For>
        </section>
        <section class="card list" aria-labelledby="orders-title">
            <h2 id="orders-title">{move || format!("Limit orders ({})", orders.with(Vec::len))}</h2>
            <Show when=move || orders.with(Vec::is_empty)>
                <p class="empty">"No pending order."</p>
            </Show>
            <For each=move || orders.get() key=row_key let(p)>
                <OrderRow position=p />
            </For>
        </section>
        <section class="card list" aria-labelledby="closed-title">
            <h2 id="closed-title">{move || format!("Closed ({})", closed.with(Vec::len))}</h2>
            <Show when=move || closed.with(Vec::is_empty)>
                <p class="empty">"Nothing closed yet."</p>
            </Show>
            <For each=move || closed.get() key=row_key let(p)>
                <ClosedRow position=p />
            </For>
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
    let valued = position.exposure();
    // Once per tick per row, however many places show it; the server's own
    // valuation until a live quote arrives (and without JavaScript).
    let rendered: Option<i64> = position.pl.parse().ok();
    let pl = Memo::new(move |_| realtime.quote().and_then(|q| q.pl_of(&valued)).or(rendered));
    let pid = StoredValue::new(position.pid.clone());
    let closing = acting(&position.pid, "close");
    let mine = move || actions.acting_on.with(|a| *a == closing);
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
                <CloseButton pid=pid.get_value() long=position.side == "b" />
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
    let me = StoredValue::new(acting(&pid.get_value(), field));
    // Text that is no price is refused here, before sending.
    let typo = RwSignal::new(None::<String>);
    let error = form_refusal(actions.update, field, me, typo);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = value.get_untracked().trim().replace(',', "");
        // Empty removes the trigger: the API's zero.
        let price = if text.is_empty() {
            Some(Price::from_cents(0))
        } else {
            Price::parse(&text)
        };
        let Some(price) = price.and_then(|p| p.to_string().parse::<serde_json::Number>().ok())
        else {
            typo.set(Some(
                "Enter a price in USD, like 101000.5 (empty removes it).".into(),
            ));
            return;
        };
        typo.set(None);
        actions.acting_on.set(me.get_value());
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
                inputmode="decimal" required=false value error
                on_edit=move |()| typo.set(None) />
            <button type="submit" class="small secondary"
                disabled=move || !actions.ready.get() || actions.update.pending().get()>
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
    let me = StoredValue::new(acting(&pid.get_value(), "amount"));
    let typo = RwSignal::new(None::<String>);
    let error = form_refusal(actions.add_margin, "amount", me, typo);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = amount.get_untracked().trim().replace(',', "");
        let Some(sats) = text
            .parse::<u64>()
            .ok()
            .filter(|sats| *sats > 0)
            .map(serde_json::Number::from)
        else {
            typo.set(Some("Enter a whole number of sats, like 5000.".into()));
            return;
        };
        typo.set(None);
        actions.acting_on.set(me.get_value());
        actions.add_margin.dispatch(AddMargin {
            pid: pid.get_value(),
            amount: Some(sats),
        });
    };
    view! {
        <form class="inline-form" on:submit=submit>
            <Field label="Add margin (sat)" name="amount"
                id=format!("margin-{}", pid.get_value())
                inputmode="numeric" value=amount error on_edit=move |()| typo.set(None) />
            <button type="submit" class="small secondary"
                disabled=move || !actions.ready.get() || actions.add_margin.pending().get()>
                "Add"
            </button>
        </form>
    }
}

/// Closes at the current price (a long at the bid, a short at the
/// offer), after a confirmation: a `details` element
/// holding the form, so it works without JavaScript too.
#[component]
fn CloseButton(pid: String, long: bool) -> impl IntoView {
    let actions: Actions = expect_context();
    let realtime = Realtime::get();
    let me = acting(&pid, "close");
    view! {
        <details class="confirm-close">
            <summary class="button secondary">"Close"</summary>
            <ActionForm action=actions.close attr:class="confirm"
                on:submit=move |_| actions.acting_on.set(me.clone())>
                <input type="hidden" name="pid" value=pid />
                <input type="hidden" name="csrf" value=actions.csrf.get_value() />
                <span>{move || format!(
                    "Close at the market{}?",
                    realtime.quote().map(|q| match long {
                        true => format!(" (bid {})", usd(q.bid)),
                        false => format!(" (offer {})", usd(q.offer)),
                    }).unwrap_or_default()
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
    let cancelling = acting(&position.pid, "cancel");
    let mine = move || actions.acting_on.with(|a| *a == cancelling);
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
                    actions.acting_on.set(acting(&pid.get_value(), "cancel"));
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
            Some("liquidation") => "Liquidated",
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
            <span class=if position.closed_by.as_deref() == Some("liquidation") { "badge short" } else { "badge" }
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
        assert_eq!(quote("10010").pl_of(&position.exposure()), Some(-13_640));
        assert_eq!(quote("20000").pl_of(&position.exposure()), Some(-136_536));
        assert!(!pending(&position));
    }
}
