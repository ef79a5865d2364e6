use contract::ticket::{check_price, Order, OrderType, Refusal, Ticket};
use contract::{Leverage, Liquidation, Price, Side};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

use super::{action_error, form_error};
use crate::api::lnm::{
    get_user, list_positions, market_history, market_ticker, CreatePosition, PositionView,
};
use crate::api::session::Account;
use crate::components::chart::{Level, PriceChart};
use crate::components::figures::{in_unit, sats, signed_sats, unix_ms, usd};
use crate::components::{unix_now, Field, Live, LiveQuote, Realtime, SignedIn};

lazy_wallet_page!(TradePage, "Trade · Ampere", Trade);

/// The desk's own limit, which the ticket previews against (the server
/// applies its configured one).
const MAX_LEVERAGE: u32 = 100;

/// How far back the chart looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    Hour,
    Day,
}

impl Window {
    fn ms(self) -> i64 {
        match self {
            Window::Hour => 3_600_000,
            Window::Day => 86_400_000,
        }
    }
}

/// A quote as the ticker answers it, or `None` when it does not read.
fn quote_of(ticker: &crate::api::lnm::TickerView) -> Option<LiveQuote> {
    Some(LiveQuote {
        index: Price::parse(&ticker.index)?,
        bid: Price::parse(&ticker.bid)?,
        offer: Price::parse(&ticker.offer)?,
        at_ms: unix_ms(&ticker.time)?,
    })
}

/// Trading: the live quote, the chart with the account's levels, the order
/// ticket, and the open positions in short.
#[component]
fn Trade(account: Account) -> impl IntoView {
    let realtime = Realtime::get();
    realtime.connect();
    let ticker = Resource::new(|| (), |_| market_ticker());
    Effect::new(move |_| {
        if let Some(Ok(ticker)) = ticker.get() {
            if let Some(quote) = quote_of(&ticker) {
                realtime.seed(quote);
            }
        }
    });
    let window = RwSignal::new(Window::Hour);
    // Read on the server with the page, thinned there: the HTML carries the
    // points drawn, not every recorded quote.
    let history = Resource::new(
        move || window.get(),
        |window| async move {
            let now_ms = unix_now() * 1000;
            let from = (now_ms - window.ms()).to_string();
            market_history(Some(from), None).await.map(|points| {
                let points: Vec<_> = points
                    .iter()
                    .filter_map(|p| Some((p.time, Price::parse(&p.index)?)))
                    .collect();
                crate::components::chart::thin(&points)
                    .into_iter()
                    .map(|(t, p)| (t, p.cents()))
                    .collect::<Vec<_>>()
            })
        },
    );
    // The positions (drawn on the chart, listed below it) and the balance the
    // ticket checks against are read by the browser, after hydration: read
    // reactively during the server's render, these resources hung it under
    // concurrent loads (Leptos 0.8's SSR with several resources read by
    // `.get()`, leptos-rs/leptos#4578). The server renders the chart's
    // history, awaited in its boundary. Read again after a position event and
    // after any movement of the account's money (a deposit).
    let positions = LocalResource::new(move || {
        realtime.positions();
        list_positions(None, None, None)
    });
    let wallet = Live::get();
    let user = LocalResource::new(move || {
        wallet.funds();
        realtime.positions();
        get_user()
    });
    // Quotes that arrived since the history was read.
    let live = RwSignal::new(Vec::<(i64, Price)>::new());
    Effect::new(move |_| {
        if let Some(quote) = realtime.quote() {
            live.update(|points| {
                if points.last().is_none_or(|(t, _)| *t < quote.at_ms) {
                    points.push((quote.at_ms, quote.index));
                }
                let oldest = quote.at_ms - Window::Day.ms();
                points.retain(|(t, _)| *t >= oldest);
            });
        }
    });
    let points = Signal::derive(move || {
        let mut points: Vec<(i64, Price)> = history
            .get()
            .and_then(Result::ok)
            .unwrap_or_default()
            .into_iter()
            .map(|(t, cents)| (t, Price::from_cents(cents)))
            .collect();
        let last = points.last().map_or(i64::MIN, |(t, _)| *t);
        live.with(|live| points.extend(live.iter().filter(|(t, _)| *t > last)));
        if let Some((newest, _)) = points.last().copied() {
            let oldest = newest - window.get().ms();
            points.retain(|(t, _)| *t >= oldest);
        }
        points
    });
    let open: Signal<Vec<PositionView>> = Signal::derive(move || {
        positions
            .get()
            .and_then(Result::ok)
            .map(|list| list.positions)
            .unwrap_or_default()
    });
    let levels =
        Signal::derive(move || open.with(|open| open.iter().flat_map(levels_of).collect()));
    let balance = Signal::derive(move || {
        user.get()
            .and_then(Result::ok)
            .and_then(|u| u.balance.parse::<i64>().ok())
    });
    let unit = account.denomination.clone();
    view! {
        <h1>"Trade BTC/USD"</h1>
        <QuoteBar />
        <div class="desk">
            <section class="card chart-card" aria-labelledby="chart-title">
                <div class="row">
                    <h2 id="chart-title" class="grow">"Index"</h2>
                    <div class="segmented" role="group" aria-label="Chart window">
                        <button
                            type="button"
                            aria-pressed=move || (window.get() == Window::Hour).to_string()
                            on:click=move |_| window.set(Window::Hour)
                        >"1 h"</button>
                        <button
                            type="button"
                            aria-pressed=move || (window.get() == Window::Day).to_string()
                            on:click=move |_| window.set(Window::Day)
                        >"24 h"</button>
                    </div>
                </div>
                <Transition fallback=|| view! { <p class="loading">"Loading the chart…"</p> }>
                    {move || Suspend::new(async move {
                        match history.await {
                            Ok(_) => view! {
                                <PriceChart points levels label="BTC/USD index" />
                            }.into_any(),
                            Err(err) => view! { <p class="form-error">{err.message}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </section>
            <Ticket balance unit />
        </div>
        <OpenSummary open />
    }
}

/// Bid, offer and index, live, with the time of the quote.
#[component]
fn QuoteBar() -> impl IntoView {
    let realtime = Realtime::get();
    let figure = move |label: &'static str, id: &'static str, pick: fn(LiveQuote) -> Price| {
        view! {
            <div class="balance">
                <span class="label">{label}</span>
                <span class="amount" data-testid=id>
                    {move || realtime.quote().map_or_else(|| "—".to_string(), |q| usd(pick(q)))}
                </span>
                <span class="unit">"USD"</span>
            </div>
        }
    };
    view! {
        <section class="card quote" aria-label="BTC/USD quote" aria-live="off">
            <div class="balances">
                {figure("Bid (sell)", "quote-bid", |q| q.bid)}
                {figure("Offer (buy)", "quote-offer", |q| q.offer)}
                {figure("Index", "quote-index", |q| q.index)}
            </div>
            <p class="hint">
                {move || match realtime.quote() {
                    Some(q) => format!("Quote of {}", clock_time(q.at_ms)),
                    None => "No quote yet".into(),
                }}
                {move || (!realtime.connected()).then_some(" · connecting to live prices…")}
            </p>
        </section>
    }
}

/// `14:03:07 UTC` of Unix milliseconds.
fn clock_time(at_ms: i64) -> String {
    let secs = at_ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The lines a position draws on the chart.
fn levels_of(position: &PositionView) -> Vec<Level> {
    let long = position.side == "b";
    // A limit order waiting to fill is drawn at the price it waits for.
    let name = match (long, position.market_wi == "running") {
        (true, false) => "Long",
        (false, false) => "Short",
        (true, true) => "Buy at",
        (false, true) => "Sell at",
    };
    let mut levels = Vec::new();
    let mut add = |label: String, price: Option<&String>, kind| {
        if let Some(price) = price.and_then(|p| Price::parse(p)) {
            levels.push(Level { label, price, kind });
        }
    };
    add(
        format!("{name} {}", crate::api::group_thousands(&position.quantity)),
        Some(&position.price),
        "entry",
    );
    add("TP".into(), position.takeprofit.as_ref(), "takeprofit");
    add("SL".into(), position.stoploss.as_ref(), "stoploss");
    add("Liq.".into(), position.liquidation.as_ref(), "liquidation");
    levels
}

/// Which of margin and quantity the trader typed: the other is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sizing {
    Margin,
    Quantity,
}

/// What the ticket's inputs say, read as an order; a refusal names the input
/// that does not read.
fn read_order(
    side: Side,
    kind: OrderType,
    sizing: Sizing,
    inputs: [&str; 6],
) -> Result<Order, Refusal> {
    let [price, margin, quantity, leverage, takeprofit, stoploss] =
        inputs.map(|text| text.trim().replace([',', ' '], ""));
    let refused = |field: &'static str, message: String| Refusal { field, message };
    let count = |field: &'static str, text: &str, what: &str| -> Result<Option<u64>, Refusal> {
        if text.is_empty() {
            return Ok(None);
        }
        text.parse::<u64>()
            .map(Some)
            .map_err(|_| refused(field, format!("{field} is a whole number of {what}")))
    };
    let price_of = |field: &'static str, text: &str| -> Result<Option<Price>, Refusal> {
        if text.is_empty() {
            return Ok(None);
        }
        let price = Price::parse(text).ok_or_else(|| {
            refused(
                field,
                format!("{field} must be a positive price in USD, with at most 2 decimals"),
            )
        })?;
        check_price(field, price)?;
        Ok(Some(price))
    };
    let leverage = Leverage::parse(&leverage).ok_or_else(|| {
        refused(
            "leverage",
            "leverage must be a positive number with at most 4 decimals".into(),
        )
    })?;
    let (margin, quantity) = match sizing {
        Sizing::Margin => (count("margin", &margin, "sats")?, None),
        Sizing::Quantity => (None, count("quantity", &quantity, "USD contracts")?),
    };
    if margin.is_none() && quantity.is_none() {
        let field = match sizing {
            Sizing::Margin => "margin",
            Sizing::Quantity => "quantity",
        };
        return Err(refused(field, format!("enter a {field}")));
    }
    Ok(Order {
        kind: Some(kind),
        side: Some(side),
        margin,
        quantity,
        leverage: Some(leverage),
        price: match kind {
            OrderType::Limit => Some(
                price_of("price", &price)?
                    .ok_or_else(|| refused("price", "a limit order needs a price".into()))?,
            ),
            OrderType::Market => None,
        },
        takeprofit: price_of("takeprofit", &takeprofit)?,
        stoploss: price_of("stoploss", &stoploss)?,
    })
}

/// A JSON number of a decimal text the ticket has already read.
fn number(text: impl ToString) -> Option<serde_json::Number> {
    text.to_string().parse().ok()
}

/// The order ticket: buy or sell, market or limit, margin and quantity linked
/// through the leverage, take-profit and stop-loss with their valid ranges,
/// and a preview of what the order does, by the rules the server applies.
#[component]
fn Ticket(balance: Signal<Option<i64>>, unit: String) -> impl IntoView {
    let realtime = Realtime::get();
    let create = ServerAction::<CreatePosition>::new();
    let side = RwSignal::new(Side::Buy);
    let kind = RwSignal::new(OrderType::Market);
    let sizing = RwSignal::new(Sizing::Margin);
    let price = RwSignal::new(String::new());
    let margin = RwSignal::new("10000".to_string());
    let quantity = RwSignal::new(String::new());
    let leverage = RwSignal::new("10".to_string());
    let takeprofit = RwSignal::new(String::new());
    let stoploss = RwSignal::new(String::new());
    let read = move |with_triggers: bool| {
        let (tp, sl) = match with_triggers {
            true => (takeprofit.get(), stoploss.get()),
            false => (String::new(), String::new()),
        };
        let (margin, quantity) = match sizing.get() {
            Sizing::Margin => (margin.get(), String::new()),
            Sizing::Quantity => (String::new(), quantity.get()),
        };
        read_order(
            side.get(),
            kind.get(),
            sizing.get(),
            [&price.get(), &margin, &quantity, &leverage.get(), &tp, &sl],
        )
    };
    let checked = move |with_triggers: bool| -> Option<Result<Ticket, Refusal>> {
        let quote = realtime.quote()?;
        Some(
            read(with_triggers).and_then(|order| order.check(quote.bid, quote.offer, MAX_LEVERAGE)),
        )
    };
    let ticket = Memo::new(move |_| checked(true));
    // Without its triggers, for the ranges the triggers may take.
    let base = Memo::new(move |_| checked(false).and_then(Result::ok));
    // The derived size follows the typed one (whatever the triggers say), and
    // is written only when it changes: not at every tick.
    Effect::new(move |_| {
        if let Some(t) = base.get() {
            let (derived, value) = match sizing.get_untracked() {
                Sizing::Margin => (quantity, t.quantity.to_string()),
                Sizing::Quantity => (margin, t.margin.to_string()),
            };
            if derived.with_untracked(|v| *v != value) {
                derived.set(value);
            }
        }
    });
    // What the person typed (not the derived size, which moves with the
    // price), and what it was when the order went: the server's refusal
    // stands until the person changes what it refused.
    let typed = move || {
        let size = match sizing.get() {
            Sizing::Margin => margin.get(),
            Sizing::Quantity => quantity.get(),
        };
        let triggers = (takeprofit.get(), stoploss.get());
        (
            side.get(),
            kind.get(),
            sizing.get(),
            price.get(),
            size,
            leverage.get(),
            triggers,
        )
    };
    let sent = RwSignal::new(None);
    let unchanged = move || sent.with(|sent| sent.as_ref() == Some(&typed()));
    let refusal = move |field: &'static str| {
        let server = action_error(create, Some(field));
        Signal::derive(move || {
            let local = ticket.with(|t| match t {
                Some(Err(r)) if r.field == field => Some(r.message.clone()),
                _ => None,
            });
            local.or_else(|| unchanged().then(|| server.get()).flatten())
        })
    };
    let form_message = {
        let server = form_error(
            create,
            &[
                "price",
                "margin",
                "quantity",
                "leverage",
                "takeprofit",
                "stoploss",
            ],
        );
        Signal::derive(move || unchanged().then(|| server.get()).flatten())
    };
    let ranges = move |trigger: &'static str| {
        Signal::derive(move || {
            let Some(t) = base.get() else {
                return String::new();
            };
            let reference = usd(t.reference);
            let covered = match t.covered {
                Liquidation::At(p) => Some(usd(p)),
                Liquidation::Never => None,
            };
            match (trigger, t.side, covered) {
                ("takeprofit", Side::Buy, _) => format!("Above {reference}. Optional."),
                ("takeprofit", Side::Sell, _) => format!("Below {reference}. Optional."),
                (_, Side::Buy, Some(c)) => format!("Between {c} and {reference}. Optional."),
                (_, Side::Sell, Some(c)) => format!("Between {reference} and {c}. Optional."),
                (_, Side::Buy, None) => format!("Below {reference}. Optional."),
                (_, Side::Sell, None) => format!("Above {reference}. Optional."),
            }
        })
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(Ok(t)) = ticket.get_untracked() else {
            return;
        };
        let Ok(order) = read(true) else { return };
        sent.set(Some(untrack(typed)));
        create.dispatch(CreatePosition {
            r#type: Some(t.kind.code().into()),
            side: Some(t.side.code().into()),
            margin: order.margin.and_then(number),
            quantity: order.quantity.and_then(number),
            leverage: order.leverage.and_then(number),
            takeprofit: order.takeprofit.and_then(number),
            stoploss: order.stoploss.and_then(number),
            price: order.price.and_then(number),
        });
    };
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            realtime.refresh();
        }
    });
    let preview_unit = unit.clone();
    let preview = move || {
        let quote = realtime.quote();
        match ticket.get() {
            None => view! { <p class="loading">"Waiting for a price…"</p> }.into_any(),
            Some(Err(_)) => {
                view! { <p class="hint">"Complete the ticket to see what it does."</p> }.into_any()
            }
            Some(Ok(t)) => {
                let unit_value = |amount: i64| {
                    quote
                        .and_then(|q| in_unit(amount, &preview_unit, q.index))
                        .map(|v| format!(" ({v})"))
                        .unwrap_or_default()
                };
                let entry = match (t.kind, t.fills_now) {
                    (OrderType::Market, _) | (OrderType::Limit, true) => {
                        format!(
                            "{} now, at the {}",
                            usd(t.price),
                            if t.side == Side::Buy { "offer" } else { "bid" }
                        )
                    }
                    (OrderType::Limit, false) => {
                        format!("{} when the price reaches it", usd(t.price))
                    }
                };
                let liquidation = match t.liquidation {
                    Liquidation::At(p) => usd(p),
                    Liquidation::Never => "never (the margin covers any move)".into(),
                };
                let at = |trigger: Option<Price>| {
                    trigger
                        .and_then(|p| t.pl_at(p))
                        .map(|pl| format!("{}{}", signed_sats(pl), unit_value(pl)))
                        .unwrap_or_else(|| "—".into())
                };
                let margin = t.margin as i64;
                let after = balance.get().map(|b| b - margin);
                view! {
                    <dl class="facts preview" data-testid="ticket-preview">
                        <dt>"Entry"</dt>
                        <dd data-testid="preview-entry">{entry}</dd>
                        <dt>"Quantity"</dt>
                        <dd data-testid="preview-quantity">{format!("{} USD", crate::api::group_thousands(&t.quantity.to_string()))}</dd>
                        <dt>"Margin"</dt>
                        <dd data-testid="preview-margin">{format!("{}{}", sats(margin), unit_value(margin))}</dd>
                        <dt>"Leverage"</dt>
                        <dd>{format!("{}×", t.leverage.to_string().trim_end_matches('0').trim_end_matches('.'))}</dd>
                        <dt>"Liquidation"</dt>
                        <dd data-testid="preview-liquidation">{liquidation}</dd>
                        <dt>"At take-profit"</dt>
                        <dd data-testid="preview-tp">{at(t.takeprofit)}</dd>
                        <dt>"At stop-loss"</dt>
                        <dd data-testid="preview-sl">{at(t.stoploss)}</dd>
                        <dt>"Balance after"</dt>
                        <dd class:form-error=after.is_some_and(|a| a < 0)>
                            {after.map_or_else(|| "—".into(), |a| if a < 0 {
                                format!("{} short", sats(-a))
                            } else {
                                sats(a)
                            })}
                        </dd>
                    </dl>
                }
                .into_any()
            }
        }
    };
    let opened = move || match create.value().get() {
        Some(Ok(p)) => Some(
            format!(
                "{} {} {} USD at {} · margin {}",
                if p.closed || p.canceled {
                    "Closed"
                } else if p.market_wi == "running" {
                    "Limit order placed:"
                } else {
                    "Opened:"
                },
                if p.side == "b" { "long" } else { "short" },
                crate::api::group_thousands(&p.quantity),
                crate::api::group_thousands(&p.price),
                crate::api::group_thousands(&p.margin),
            ) + " sat",
        ),
        _ => None,
    };
    let choice = move |name: &'static str,
                       label: &'static str,
                       on: Signal<bool>,
                       pick: Callback<()>| {
        view! {
            <label class="choice">
                <input type="radio" name=name prop:checked=move || on.get() on:change=move |_| pick.run(()) />
                <span>{label}</span>
            </label>
        }
    };
    // The slider shows the typed leverage to the nearest whole step.
    let slider = move || {
        let typed: f64 = leverage.get().parse().unwrap_or(1.0);
        typed
            .clamp(1.0, f64::from(MAX_LEVERAGE))
            .round()
            .to_string()
    };
    view! {
        <section class="card ticket" aria-labelledby="ticket-title">
            <h2 id="ticket-title">"Order"</h2>
            <form on:submit=submit novalidate>
                <fieldset class="segmented">
                    <legend class="visually-hidden">"Side"</legend>
                    {choice("side", "Buy · long", Signal::derive(move || side.get() == Side::Buy), Callback::new(move |_| side.set(Side::Buy)))}
                    {choice("side", "Sell · short", Signal::derive(move || side.get() == Side::Sell), Callback::new(move |_| side.set(Side::Sell)))}
                </fieldset>
                <fieldset class="segmented">
                    <legend class="visually-hidden">"Order type"</legend>
                    {choice("type", "Market", Signal::derive(move || kind.get() == OrderType::Market), Callback::new(move |_| kind.set(OrderType::Market)))}
                    {choice("type", "Limit", Signal::derive(move || kind.get() == OrderType::Limit), Callback::new(move |_| kind.set(OrderType::Limit)))}
                </fieldset>
                <Show when=move || kind.get() == OrderType::Limit>
                    <Field label="Limit price (USD)" name="price" inputmode="decimal" value=price error=refusal("price") />
                </Show>
                <div class="pair">
                    <Field label="Margin (sat)" name="margin" inputmode="numeric" value=margin
                        error=refusal("margin") on_edit=move |_| sizing.set(Sizing::Margin) />
                    <Field label="Quantity (USD)" name="quantity" inputmode="numeric" value=quantity
                        error=refusal("quantity") on_edit=move |_| sizing.set(Sizing::Quantity) />
                </div>
                <div class="leverage">
                    <Field label="Leverage" name="leverage" inputmode="decimal" value=leverage error=refusal("leverage") />
                    <input type="range" min="1" max=MAX_LEVERAGE step="1" aria-label="Leverage slider"
                        prop:value=slider
                        on:input=move |ev| leverage.set(event_target_value(&ev)) />
                </div>
                <div class="pair">
                    <Field label="Take-profit (USD)" name="takeprofit" inputmode="decimal" required=false value=takeprofit
                        error=refusal("takeprofit") hint=ranges("takeprofit") />
                    <Field label="Stop-loss (USD)" name="stoploss" inputmode="decimal" required=false value=stoploss
                        error=refusal("stoploss") hint=ranges("stoploss") />
                </div>
                {preview}
                <p class="form-error" role="alert">{move || form_message.get()}</p>
                <button
                    type="submit"
                    class:sell=move || side.get() == Side::Sell
                    data-testid="ticket-submit"
                    disabled=move || create.pending().get() || !matches!(ticket.get(), Some(Ok(_)))
                >
                    {move || {
                        let verb = if side.get() == Side::Buy { "Buy" } else { "Sell" };
                        match (create.pending().get(), ticket.get()) {
                            (true, _) => "Sending…".to_string(),
                            (false, Some(Ok(t))) => format!("{verb} {} USD", crate::api::group_thousands(&t.quantity.to_string())),
                            _ => verb.to_string(),
                        }
                    }}
                </button>
                <p class="success" role="status" data-testid="ticket-result">{opened}</p>
            </form>
        </section>
    }
}

/// The open positions in one line each, with a way to the positions page.
#[component]
fn OpenSummary(open: Signal<Vec<PositionView>>) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="open-title">
            <div class="row">
                <h2 id="open-title" class="grow">"Open positions"</h2>
                <a href="/positions">"Manage positions"</a>
            </div>
            {move || {
                let open = open.get();
                if open.is_empty() {
                    return view! { <p class="empty">"No open position."</p> }.into_any();
                }
                view! {
                    <ul class="list">
                        {open
                            .into_iter()
                            .map(|p| view! {
                                <li class="row">
                                    <span class=if p.side == "b" { "badge long" } else { "badge short" }>
                                        {if p.side == "b" { "Long" } else { "Short" }}
                                    </span>
                                    <span class="grow">
                                        {format!(
                                            "{} USD at {}{}",
                                            crate::api::group_thousands(&p.quantity),
                                            crate::api::group_thousands(&p.price),
                                            if p.market_wi == "running" { " (limit order)" } else { "" }
                                        )}
                                    </span>
                                </li>
                            })
                            .collect_view()}
                    </ul>
                }
                .into_any()
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tickets_inputs_read_as_the_order_they_say() {
        let order = read_order(
            Side::Sell,
            OrderType::Market,
            Sizing::Quantity,
            ["", "", "682", "50", "", "10,100.5"],
        )
        .expect("an order");
        assert_eq!(order.quantity, Some(682));
        assert_eq!(order.margin, None);
        assert_eq!(order.stoploss, Price::parse("10100.5"));
        let refused = |inputs| {
            read_order(Side::Buy, OrderType::Limit, Sizing::Margin, inputs)
                .expect_err("refused")
                .field
        };
        assert_eq!(refused(["", "1000", "", "10", "", ""]), "price");
        assert_eq!(refused(["9000", "1.5", "", "10", "", ""]), "margin");
        assert_eq!(refused(["9000", "", "", "10", "", ""]), "margin");
        assert_eq!(refused(["9000", "1000", "", "x", "", ""]), "leverage");
        assert_eq!(refused(["9000", "1000", "", "10", "0.5", ""]), "takeprofit");
        assert_eq!(clock_time(3_600_000 + 61_000), "01:01:01 UTC");
    }
}
