use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use leptos_router::{lazy_route, LazyRoute};

use super::{action_error, form_error, url_encode};
use crate::api::mylightning::{
    channels, ChannelView, ChannelsResponse, CloseChannel, ContactView, DataResponse, OpenChannel,
};
use crate::api::session::Account;
use crate::api::{Amount, Rate};
use crate::components::{
    wallet_data, ErrorCard, Field, Live, RateNote, SignedIn, SimnetActions, SimnetTools, WithData,
};

lazy_wallet_page!(ChannelsPage, "Channels · Ampere", Channels);

/// What the channel rows need beyond their channel.
#[derive(Clone)]
struct ChannelsState {
    close: ServerAction<CloseChannel>,
    account: Account,
}

/// The node's channels with their state and balances, opening one to a peer
/// (the hub first) and closing one, cooperatively or by force. States move on
/// live as blocks are mined. Below them, the last closed channels; older ones
/// a page at a time (the URL's `closed` query holds the page's cursor, so the
/// pages work without JavaScript).
#[component]
fn Channels(account: Account) -> impl IntoView {
    let data = wallet_data();
    let close = ServerAction::<CloseChannel>::new();
    Live::get().refresh_after(close);
    SimnetActions::provide();
    provide_context(ChannelsState {
        close,
        account: account.clone(),
    });
    let query = use_query_map();
    let older = Memo::new(move |_| query.with(|q| q.get("closed").unwrap_or_default()));
    let paging = Memo::new(move |_| !older.get().is_empty());
    view! {
        <h1>"Channels"</h1>
        <WithData data render=|data| view! { <ChannelList data /> }.into_any() />
        <p class="form-error" role="alert">{move || form_error(close, &["password"]).get()}</p>
        {move || if paging.get() {
            view! { <OlderClosed cursor=older data /> }.into_any()
        } else {
            view! { <WithData data render=|data| view! { <RecentlyClosed data /> }.into_any() /> }.into_any()
        }}
        <OpenChannelCard account=account.clone() data />
        {account.simnet_dev.then(|| view! {
            <WithData data render=|data| view! {
                <SimnetTools address=data.address csrf=data.csrf />
            }.into_any() />
        })}
    }
}

#[component]
fn ChannelList(data: DataResponse) -> impl IntoView {
    let had_channels = !data.channels.is_empty();
    let channels: Vec<ChannelView> = data
        .channels
        .into_iter()
        .filter(|c| c.state != "Closed")
        .collect();
    if channels.is_empty() {
        let message = if !had_channels {
            "No channels yet. Open one to the hub below."
        } else {
            "No open channels. Open one below."
        };
        return view! { <p class="card empty">{message}</p> }.into_any();
    }
    let unit = data.denomination;
    let names = data.addressbook;
    view! {
        <ul class="list" aria-label="Channels">
            {channels.into_iter().map(|channel| {
                let peer = peer_name(&channel, &names);
                view! { <ChannelRow channel peer unit=unit.clone() /> }
            }).collect_view()}
        </ul>
        <RateNote rate=data.rate />
    }
    .into_any()
}

/// The last closed channels `getalldata` lists, and the link to older ones.
#[component]
fn RecentlyClosed(data: DataResponse) -> impl IntoView {
    let closed: Vec<ChannelView> = data
        .channels
        .into_iter()
        .filter(|c| c.state == "Closed")
        .collect();
    if closed.is_empty() {
        return ().into_any();
    }
    let older = data
        .closed_channels_cursor
        .map(|cursor| format!("/channels?closed={}", url_encode(&cursor)));
    view! {
        <ClosedTable title="Recently closed" closed names=data.addressbook unit=data.denomination rate=data.rate />
        {older.map(|href| view! {
            <p><a href=href rel="next" data-testid="closed-older">"Older closed channels"</a></p>
        })}
    }
    .into_any()
}

/// A page of older closed channels, read from `GET /rest/v1/channels`.
#[component]
fn OlderClosed(
    cursor: Memo<String>,
    data: Resource<Result<DataResponse, crate::api::ApiError>>,
) -> impl IntoView {
    let page = Resource::new_blocking(
        move || cursor.get(),
        |cursor| channels("closed".into(), cursor, String::new()),
    );
    view! {
        <Transition fallback=|| view! { <p class="loading">"Loading closed channels…"</p> }>
            {move || Suspend::new(async move {
                let (page, data) = (page.await, data.await);
                match (page, data) {
                    (Ok(page), Ok(data)) => view! {
                        <OlderClosedPage page names=data.addressbook unit=data.denomination />
                    }.into_any(),
                    (Err(err), _) | (_, Err(err)) => view! { <ErrorCard err /> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn OlderClosedPage(page: ChannelsResponse, names: Vec<ContactView>, unit: String) -> impl IntoView {
    let next = page
        .next_cursor
        .map(|cursor| format!("/channels?closed={}", url_encode(&cursor)));
    view! {
        {if page.channels.is_empty() {
            view! { <p class="card empty">"No older closed channels."</p> }.into_any()
        } else {
            view! { <ClosedTable title="Older closed channels" closed=page.channels names unit rate=page.rate /> }.into_any()
        }}
        <nav class="actions" aria-label="Pages of closed channels">
            <a href="/channels">"Most recent"</a>
            {next.map(|href| view! { <a href=href rel="next" data-testid="closed-older">"Older"</a> })}
        </nav>
    }
}

/// Closed channels as a table: the peer, the capacity and what was yours when
/// it closed (paid out on chain).
#[component]
fn ClosedTable(
    title: &'static str,
    closed: Vec<ChannelView>,
    names: Vec<ContactView>,
    unit: String,
    rate: Option<Rate>,
) -> impl IntoView {
    view! {
        <section class="card">
            <h2>{title}</h2>
            <table class="history">
                <thead>
                    <tr>
                        <th scope="col">"Peer"</th>
                        <th scope="col" class="num">{format!("Capacity ({unit})")}</th>
                        <th scope="col" class="num">{format!("Yours ({unit})")}</th>
                        <th scope="col">"Channel point"</th>
                    </tr>
                </thead>
                <tbody>
                    {closed.into_iter().map(|channel| view! {
                        <tr data-testid="closed-channel">
                            <td>{peer_name(&channel, &names)}</td>
                            <td class="num">{channel.capacity.grouped()}</td>
                            <td class="num">{channel.balance.grouped()}</td>
                            <td><code class="wrap small">{channel.channelpoint}</code></td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <RateNote rate />
        </section>
    }
}

/// The peer's alias from the address book, else the start of its node id.
fn peer_name(channel: &ChannelView, names: &[ContactView]) -> String {
    names
        .iter()
        .find(|c| c.node_id == channel.node)
        .map(|c| c.alias.clone())
        .unwrap_or_else(|| format!("{}…", &channel.node[..channel.node.len().min(16)]))
}

#[component]
fn ChannelRow(channel: ChannelView, peer: String, unit: String) -> impl IntoView {
    // The bar is a picture of the split; the figures beside it are exact.
    let local: f64 = channel.balance.0.parse().unwrap_or(0.0);
    let capacity: f64 = channel.capacity.0.parse().unwrap_or(0.0);
    let share = if capacity > 0.0 {
        (local / capacity * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    let open = channel.state == "Open";
    let closable = open || channel.state.starts_with("Pending");
    let point = channel.channelpoint.clone();
    let opener = if channel.initiator {
        "Opened by you"
    } else {
        "Opened by the peer"
    };
    view! {
        <li class="card channel" data-testid="channel">
            <div class="row">
                <strong class="grow">{peer} <span class="hint opener">{opener}</span></strong>
                <span class="badge" class:open=open data-testid="channel-state">{channel.state.clone()}</span>
            </div>
            <div class="bar" role="img"
                aria-label=format!("{} {unit} on your side of {} {unit}", channel.balance.grouped(), channel.capacity.grouped())>
                <span style=format!("width: {share:.1}%")></span>
            </div>
            <dl class="facts">
                <dt>"Yours"</dt>
                <dd data-testid="channel-local">{format!("{} {unit}", channel.balance.grouped())}</dd>
                <dt>"Theirs"</dt>
                <dd data-testid="channel-remote">{format!("{} {unit}", channel.remote_balance.grouped())}</dd>
                <dt>"Capacity"</dt>
                <dd data-testid="channel-capacity">{format!("{} {unit}", channel.capacity.grouped())}</dd>
                <dt>"Channel point"</dt>
                <dd><code class="wrap small">{channel.channelpoint.clone()}</code></dd>
            </dl>
            {closable.then(|| view! { <CloseChannelForm point /> }.into_any())}
        </li>
    }
}

/// Closes a channel after asking how (cooperatively or by force) and, when the
/// account wants it, for the password.
#[component]
fn CloseChannelForm(point: String) -> impl IntoView {
    let ChannelsState { close, account } = expect_context::<ChannelsState>();
    let confirming = RwSignal::new(false);
    let force = RwSignal::new(false);
    let password = RwSignal::new(String::new());
    let recheck = account.recheck_password;
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        close.dispatch(CloseChannel {
            channelpoint: point.clone(),
            force: Some(force.get_untracked()),
            password: recheck.then(|| password.get_untracked()),
            _csrf: Some(account.csrf.clone()),
        });
    };
    view! {
        <Show
            when=move || confirming.get()
            fallback=move || view! {
                <button type="button" class="secondary" on:click=move |_| confirming.set(true)>
                    "Close channel"
                </button>
            }
        >
            <form class="form confirm-box" on:submit=submit.clone()>
                <fieldset>
                    <legend>"Close this channel?"</legend>
                    <label class="check">
                        <input type="radio" name="close-kind" prop:checked=move || !force.get()
                            on:change=move |_| force.set(false) />
                        " Cooperatively: funds back on chain after 1 block"
                    </label>
                    <label class="check">
                        <input type="radio" name="close-kind" prop:checked=move || force.get()
                            on:change=move |_| force.set(true) />
                        " By force: without the peer, funds locked for several blocks"
                    </label>
                </fieldset>
                {recheck.then(|| view! {
                    <Field label="Your password" name="password" id="close-password" kind="password"
                        autocomplete="current-password" value=password
                        error=action_error(close, Some("password")) />
                }.into_any())}
                <p class="actions">
                    <button type="submit" class="danger" disabled=move || close.pending().get()>
                        "Yes, close it"
                    </button>
                    <button type="button" class="secondary" on:click=move |_| confirming.set(false)>
                        "Keep it open"
                    </button>
                </p>
            </form>
        </Show>
    }
}

/// Opens a channel funded from the on-chain balance; the hub is offered first.
#[component]
fn OpenChannelCard(
    account: Account,
    data: Resource<Result<DataResponse, crate::api::ApiError>>,
) -> impl IntoView {
    let open = ServerAction::<OpenChannel>::new();
    let peer = RwSignal::new(String::new());
    let amount = RwSignal::new(String::new());
    Live::get().refresh_after(open);
    // The hub is the peer a new wallet wants: it is filled in from the start.
    Effect::new(move |_| {
        let hub = data.get().and_then(|d| d.ok()).and_then(|d| {
            d.addressbook
                .into_iter()
                .find(|c| c.alias == "hub")
                .map(|c| c.node_id)
        });
        if let Some(hub) = hub {
            if peer.get_untracked().is_empty() {
                peer.set(hub);
            }
        }
    });
    let csrf = account.csrf.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        open.dispatch(OpenChannel {
            remotenode: peer.get_untracked().trim().to_string(),
            amount: Amount(amount.get_untracked().trim().to_string()),
            _csrf: Some(csrf.clone()),
        });
    };
    let unit = account.denomination.clone();
    view! {
        <section class="card">
            <h2>"Open a channel"</h2>
            <form class="form" on:submit=submit>
                <div class="field">
                    <label for="open-peer">"Peer"</label>
                    <select id="open-peer" on:change=move |ev| peer.set(event_target_value(&ev))>
                        <option value="">"Choose a peer, or paste a node id below"</option>
                        // Read inside a transition, as on the server, so hydration
                        // finds the same options. The hub first.
                        <Transition>
                            {move || Suspend::new(async move {
                                data.await.ok().map(|d| {
                                    let mut peers = d.addressbook;
                                    peers.sort_by_key(|c| c.alias != "hub");
                                    peers.into_iter().map(|c| {
                                        let label = format!("{} ({}…)", c.alias, &c.node_id[..c.node_id.len().min(12)]);
                                        let id = c.node_id.clone();
                                        view! {
                                            <option value=c.node_id selected=move || peer.get() == id>{label}</option>
                                        }
                                    }).collect_view()
                                })
                            })}
                        </Transition>
                    </select>
                </div>
                <Field label="Node id" name="remotenode" id="open-node" autocomplete="off"
                    placeholder="02…@host:port" value=peer error=action_error(open, Some("remotenode")) />
                <Field label=format!("Capacity ({unit})") name="amount" id="open-amount" inputmode="decimal"
                    autocomplete="off" value=amount error=action_error(open, Some("amount")) />
                <Transition>
                    {move || Suspend::new(async move {
                        data.await.ok().map(|d| view! {
                            <p class="hint">
                                {format!("{} {} on chain can fund a channel.", d.balances.onchainfunds.0, d.denomination)}
                            </p>
                            <RateNote rate=d.rate />
                        })
                    })}
                </Transition>
                <p class="form-error" role="alert">{move || form_error(open, &["remotenode", "amount"]).get()}</p>
                <button type="submit" disabled=move || open.pending().get()>"Open channel"</button>
            </form>
            // The note follows the channel: its state as last read, not as opened.
            {move || open.value().get().and_then(|r| r.ok()).and_then(|r| r.channel).map(|opened| {
                let point = opened.channelpoint.clone();
                let state = move || {
                    data.get()
                        .and_then(|d| d.ok())
                        .and_then(|d| d.channels.into_iter().find(|c| c.channelpoint == opened.channelpoint))
                        .map_or_else(|| opened.state.clone(), |c| c.state)
                        .to_lowercase()
                };
                view! {
                    <p class="success" role="status" data-testid="open-result">
                        {move || format!("Channel {} is {}.", point, state())}
                    </p>
                }
            })}
        </section>
    }
}
