//! The myLightning wallet API (`specs/mylightning-rest-v1.txt`) at `/rest/v1`:
//! JSON bodies named after the spec's fields, the session cookie `session` (or a
//! bearer token). Amounts are decimals in the account's denomination; in `usd`
//! they are converted at the desk's BTC/USD index (`engine::Unit`), and every
//! response holding such amounts says the rate and its time in `rate`. An
//! amount in usd is read only at a fresh price (else 503); amounts are shown
//! at the latest one, fresh or stale, which `rate` tells.
//!
//! Errors are `{"error":{"message":"..."}}`: 401 without a valid credential, 403
//! without the CSRF token on a cookie-authenticated write, 400 for a malformed
//! request, and 200 for a refusal (insufficient funds, no route, ...), as the
//! original server answered. Every response type carries `error`, so a client
//! reads a refusal as data.

use leptos::prelude::*;
use leptos::server_fn::codec::{GetUrl, Json, PostUrl};
use serde::{Deserialize, Serialize};

use crate::api::{Amount, ApiError, ErrorBody, Rate};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginResponse {
    pub username: String,
    /// The token cookie-authenticated writes must send back as `_csrf`.
    #[serde(rename = "_csrf")]
    pub csrf: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Empty {}

/// `GenericResponse`, with what the operation did when it succeeded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenericResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
    /// For payments: the payment hash, amount, fee and preimage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentView>,
    /// For channel operations: the channel as it now is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelView>,
    /// The rate the amounts are in, when they are in usd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentView {
    pub payment_hash: String,
    pub destination: String,
    pub amount: Amount,
    pub fee: Amount,
    pub preimage: String,
    pub memo: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateInvoiceResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_hash: Option<String>,
    /// Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The rate the amount asked in usd was converted at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Balances {
    pub btcfunds: Amount,
    pub lntfunds: Amount,
    /// Confirmed on-chain funds (an addition to the spec).
    pub onchainfunds: Amount,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Info {
    #[serde(rename = "nodeId")]
    pub node_id: String,
    pub alias: String,
    pub port: u16,
    pub synchronized: bool,
    pub blockheight: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelView {
    /// The remote node's public key.
    pub node: String,
    pub channel: String,
    pub state: String,
    pub balance: Amount,
    pub capacity: Amount,
    pub channelpoint: String,
    pub remote_balance: Amount,
    pub initiator: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionView {
    #[serde(rename = "type")]
    pub kind: String,
    pub amount: Amount,
    pub fee: Amount,
    pub memo: String,
    /// Unix seconds.
    pub time: i64,
    pub status: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContactView {
    pub alias: String,
    #[serde(rename = "nodeId")]
    pub node_id: String,
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataResponse {
    pub address: String,
    pub balances: Balances,
    pub info: Info,
    /// The channels not yet closed, newest first, then the last ten closed.
    pub channels: Vec<ChannelView>,
    /// Where the older closed channels start (`GET channels?state=closed&cursor=`);
    /// null when `channels` holds every closed one.
    pub closed_channels_cursor: Option<String>,
    pub transactions: Vec<TransactionView>,
    pub addressbook: Vec<ContactView>,
    #[serde(rename = "_csrf")]
    pub csrf: String,
    pub denomination: String,
    pub recheck_password: bool,
    /// The rate the amounts are in, when they are in usd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsResponse {
    pub denomination: String,
    pub recheck_password: bool,
}

/// `POST /rest/v1/login {username, password}`: 200 and a fresh `session` cookie, or
/// 401 (429 with `Retry-After` after repeated failures).
#[server(prefix = "/rest/v1", endpoint = "login", input = Json)]
pub async fn login(
    username: String,
    password: String,
    #[server(default)] otp_code: Option<String>,
) -> Result<LoginResponse, ApiError> {
    use crate::api::auth;
    let engine = auth::engine()?;
    let user = engine
        .accounts
        .login(&username, &password, otp_code.as_deref(), &auth::seen())
        .await?;
    let session = auth::start_session(&user).await?;
    Ok(LoginResponse {
        username: user.username,
        csrf: session.csrf,
    })
}

/// `POST /rest/v1/logout`: ends the session on the server, in every process.
/// A signed-in session must send its CSRF token (`_csrf`, as any write), so that
/// another site cannot sign the user out; without a session it answers 200, so a
/// script can always call it.
#[server(prefix = "/rest/v1", endpoint = "logout", input = PostUrl)]
pub async fn logout() -> Result<Empty, ApiError> {
    use crate::api::auth;
    if auth::signed_in().await.ok().flatten().is_some() {
        auth::writer().await?;
    }
    auth::end_session().await?;
    Ok(Empty {})
}

/// `GET /rest/v1/ping`: 200 for a valid session (or bearer token), 401 otherwise.
#[server(prefix = "/rest/v1", endpoint = "ping", input = GetUrl)]
pub async fn ping() -> Result<Empty, ApiError> {
    crate::api::auth::caller().await?;
    Ok(Empty {})
}

/// `GET /rest/v1/getalldata`: the node, balances, channels (those not yet closed
/// and the last ten closed), history (the newest 200), address book and the
/// CSRF token.
#[server(prefix = "/rest/v1", endpoint = "getalldata", input = GetUrl)]
pub async fn get_all_data() -> Result<DataResponse, ApiError> {
    use crate::api::auth;
    let caller = auth::caller().await?;
    let engine = auth::engine()?;
    let unit = caller.user.denomination.unit(&engine.desk.market)?;
    let overview = engine.wallet.overview(&caller.user).await?;
    Ok(DataResponse {
        address: overview.summary.node.address.clone(),
        balances: balances_view(&overview.summary, unit),
        info: info_view(&overview.summary),
        channels: overview
            .channels
            .iter()
            .map(|c| channel_view(c, unit))
            .collect(),
        closed_channels_cursor: overview.older_closed_cursor,
        transactions: overview
            .transactions
            .iter()
            .map(|t| transaction_view(t, unit))
            .collect(),
        addressbook: overview
            .addressbook
            .into_iter()
            .map(|c| ContactView {
                alias: c.alias,
                node_id: c.pubkey,
                host: c.host,
            })
            .collect(),
        csrf: caller.csrf().to_string(),
        denomination: unit.as_str().to_string(),
        recheck_password: caller.user.recheck_password,
        rate: Rate::of(unit),
    })
}

/// What the dashboard shows: `getalldata` without channels, history and address
/// book (three fewer queries for the page everyone opens first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryResponse {
    pub address: String,
    pub balances: Balances,
    pub info: Info,
    #[serde(rename = "_csrf")]
    pub csrf: String,
    pub denomination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

/// `GET /api/ui/summary`: the dashboard's part of `getalldata`.
#[server(prefix = "/api/ui", endpoint = "summary", input = GetUrl)]
pub async fn get_summary() -> Result<SummaryResponse, ApiError> {
    use crate::api::auth;
    let caller = auth::caller().await?;
    let engine = auth::engine()?;
    let unit = caller.user.denomination.unit(&engine.desk.market)?;
    let summary = engine.wallet.summary(&caller.user).await?;
    Ok(SummaryResponse {
        address: summary.node.address.clone(),
        balances: balances_view(&summary, unit),
        info: info_view(&summary),
        csrf: caller.csrf().to_string(),
        denomination: unit.as_str().to_string(),
        rate: Rate::of(unit),
    })
}

/// `POST /rest/v1/createinvoice {amount, memo, quickpay}`: a signed BOLT11
/// invoice of the caller's node; with `quickpay: true`, `"<bolt11>@<host>:<port>"`.
/// The CSRF token may also come in the body as `_csrf` (the pages send it there).
#[server(prefix = "/rest/v1", endpoint = "createinvoice", input = Json)]
pub async fn create_invoice(
    amount: Option<Amount>,
    memo: Option<String>,
    quickpay: Option<bool>,
    _csrf: Option<String>,
) -> Result<CreateInvoiceResponse, ApiError> {
    use crate::api::auth;
    let caller = auth::writer().await?;
    let engine = auth::engine()?;
    // The rate matters only to an amount: an amountless invoice needs none.
    let (amount, rate) = match amount {
        Some(a) => {
            let unit = caller.user.denomination.unit(&engine.desk.market)?;
            (Some(unit.parse_amount("amount", &a.0)?), Rate::of(unit))
        }
        None => (None, None),
    };
    let issued = engine
        .wallet
        .create_invoice(&caller.user, amount, memo.as_deref().unwrap_or_default())
        .await?;
    let payment_request = if quickpay.unwrap_or(false) {
        format!("{}@{}", issued.bolt11, auth::public_host_port())
    } else {
        issued.bolt11
    };
    Ok(CreateInvoiceResponse {
        payment_request: Some(payment_request),
        payment_hash: Some(issued.payment_hash),
        expires_at: Some(issued.expires_at_ms / 1000),
        rate,
        error: None,
    })
}

/// `POST /rest/v1/sendinvoice {invoiceid, alias}`: pays a BOLT11 invoice
/// (`lightning:` prefix and `@host:port` suffix accepted); with `alias`, saves the
/// payee in the address book. `amount` pays an amountless invoice; `fee_limit`
/// caps the routing fee (default: 10 sat + 1 %). `otp_code`: the two-factor
/// code, which an account that has it on gives past its code-free allowance.
#[server(prefix = "/rest/v1", endpoint = "sendinvoice", input = Json)]
pub async fn send_invoice(
    invoiceid: String,
    alias: Option<String>,
    amount: Option<Amount>,
    fee_limit: Option<Amount>,
    password: Option<String>,
    otp_code: Option<String>,
    _csrf: Option<String>,
) -> Result<GenericResponse, ApiError> {
    use crate::api::auth;
    use crate::api::idempotent::once;
    let caller = auth::payer(engine::Access::Pay, password.as_deref()).await?;
    let engine = auth::engine()?;
    let unit = caller.user.denomination.unit(&engine.desk.market)?;
    let inputs = serde_json::json!([
        invoiceid,
        alias,
        amount.as_ref().map(|a| &a.0),
        fee_limit.as_ref().map(|a| &a.0),
        unit.as_str()
    ]);
    once(&caller, "sendinvoice", inputs, async {
        let amount = match amount {
            Some(a) => Some(unit.parse_amount("amount", &a.0)?),
            None => None,
        };
        let fee_limit = fee_limit
            .map(|f| unit.parse_amount("fee_limit", &f.0))
            .transpose()?;
        let leaving = engine.leaving(&caller.user, &invoiceid, amount);
        let paying = engine.wallet.send(
            &caller.user,
            &invoiceid,
            amount,
            alias.as_deref(),
            fee_limit,
        );
        let payment = engine
            .accounts
            .withdrawing(&caller.user, leaving, otp_code.as_deref(), paying)
            .await?;
        Ok(GenericResponse {
            payment: Some(payment_view(&payment, unit)),
            rate: Rate::of(unit),
            ..Default::default()
        })
    })
    .await
}

/// What an invoice asks for, read before paying it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecodedInvoice {
    /// In the account's denomination; `None` for an amountless invoice.
    pub amount: Option<Amount>,
    pub memo: String,
    pub payee: String,
    pub payment_hash: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// The rate `amount` is in, when it is in usd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

/// `POST /rest/v1/decodeinvoice {invoiceid}` (an addition to the spec): the
/// invoice's amount, memo, payee and expiry, with its signature checked.
#[server(prefix = "/rest/v1", endpoint = "decodeinvoice", input = Json)]
pub async fn decode_invoice(invoiceid: String) -> Result<DecodedInvoice, ApiError> {
    use crate::api::auth;
    let caller = auth::caller().await?;
    let decoded = engine::simnet::invoice::decode(&invoiceid)?;
    let unit = caller
        .user
        .denomination
        .unit(&auth::engine()?.desk.market)?;
    Ok(DecodedInvoice {
        amount: decoded.amount.map(|a| Amount(unit.format(a))),
        memo: decoded.memo,
        payee: decoded.payee,
        payment_hash: decoded.payment_hash,
        expires_at: decoded.expires_at_ms / 1000,
        rate: decoded.amount.and(Rate::of(unit)),
    })
}

/// `POST /rest/v1/quickpay {dest, amount, memo}`: pays the address-book entry
/// `dest` with a fresh invoice from its node (`otp_code` as for `sendinvoice`).
#[server(prefix = "/rest/v1", endpoint = "quickpay", input = Json)]
pub async fn quick_pay(
    dest: String,
    amount: Amount,
    memo: Option<String>,
    fee_limit: Option<Amount>,
    password: Option<String>,
    otp_code: Option<String>,
    _csrf: Option<String>,
) -> Result<GenericResponse, ApiError> {
    use crate::api::auth;
    use crate::api::idempotent::once;
    let caller = auth::payer(engine::Access::Pay, password.as_deref()).await?;
    let engine = auth::engine()?;
    let unit = caller.user.denomination.unit(&engine.desk.market)?;
    let inputs = serde_json::json!([
        dest,
        amount.0,
        memo,
        fee_limit.as_ref().map(|a| &a.0),
        unit.as_str()
    ]);
    once(&caller, "quickpay", inputs, async {
        let amount = unit.parse_amount("amount", &amount.0)?;
        let fee_limit = fee_limit
            .map(|f| unit.parse_amount("fee_limit", &f.0))
            .transpose()?;
        let paying = engine.wallet.quickpay(
            &caller.user,
            &dest,
            amount,
            memo.as_deref().unwrap_or_default(),
            fee_limit,
        );
        let payment = engine
            .accounts
            .withdrawing(
                &caller.user,
                std::future::ready(Ok(amount)),
                otp_code.as_deref(),
                paying,
            )
            .await?;
        Ok(GenericResponse {
            payment: Some(payment_view(&payment, unit)),
            rate: Rate::of(unit),
            ..Default::default()
        })
    })
    .await
}

/// `POST /rest/v1/openchannel {remotenode, amount}`: opens a channel of capacity
/// `amount` to `remotenode` (a pubkey, optionally `@host:port`).
#[server(prefix = "/rest/v1", endpoint = "openchannel", input = Json)]
pub async fn open_channel(
    remotenode: String,
    amount: Amount,
    _csrf: Option<String>,
) -> Result<GenericResponse, ApiError> {
    use crate::api::auth;
    use crate::api::idempotent::once;
    let caller = auth::writer().await?;
    let engine = auth::engine()?;
    let unit = caller.user.denomination.unit(&engine.desk.market)?;
    let inputs = serde_json::json!([remotenode, amount.0, unit.as_str()]);
    once(&caller, "openchannel", inputs, async {
        let capacity = unit.parse_amount("amount", &amount.0)?;
        // A channel holds whole sats: dollars take the next whole sat, so the
        // capacity is still worth at least what was typed.
        let capacity = match unit {
            engine::Unit::Usd(_) => capacity
                .round_up_to_sat()
                .ok_or_else(|| engine::Error::invalid("amount", "amount exceeds 21 million BTC"))?,
            _ => capacity,
        };
        let peer = engine::simnet::parse_node_id(&remotenode)?;
        let node = engine.wallet.node_id(&caller.user).await?;
        let channel = engine.simnet.open_channel(&node, &peer, capacity).await?;
        Ok(GenericResponse {
            channel: Some(channel_view(&channel, unit)),
            rate: Rate::of(unit),
            ..Default::default()
        })
    })
    .await
}

/// `POST /rest/v1/closechannel {channelpoint, force}`: closes cooperatively, or
/// by force with `force: true`.
#[server(prefix = "/rest/v1", endpoint = "closechannel", input = Json)]
pub async fn close_channel(
    channelpoint: String,
    force: Option<bool>,
    password: Option<String>,
    _csrf: Option<String>,
) -> Result<GenericResponse, ApiError> {
    use crate::api::auth;
    let caller = auth::payer(engine::Access::Pay, password.as_deref()).await?;
    let engine = auth::engine()?;
    let unit = caller.user.denomination.unit(&engine.desk.market)?;
    let node = engine.wallet.node_id(&caller.user).await?;
    let channel = engine
        .simnet
        .close_channel(&node, &channelpoint, force.unwrap_or(false))
        .await?;
    Ok(GenericResponse {
        channel: Some(channel_view(&channel, unit)),
        rate: Rate::of(unit),
        ..Default::default()
    })
}

/// `POST /rest/v1/addcontact {alias, node_id, host}` (an addition to the spec):
/// saves a payee in the address book under `alias`.
#[server(prefix = "/rest/v1", endpoint = "addcontact", input = Json)]
pub async fn add_contact(
    alias: String,
    node_id: String,
    host: Option<String>,
    _csrf: Option<String>,
) -> Result<ContactView, ApiError> {
    use crate::api::auth;
    let caller = auth::writer().await?;
    let contact = auth::engine()?
        .wallet
        .add_contact(&caller.user, &alias, &node_id, host.as_deref())
        .await?;
    Ok(ContactView {
        alias: contact.alias,
        node_id: contact.pubkey,
        host: contact.host,
    })
}

/// `POST /rest/v1/removecontact {alias}` (an addition to the spec): removes an
/// address-book entry.
#[server(prefix = "/rest/v1", endpoint = "removecontact", input = Json)]
pub async fn remove_contact(alias: String, _csrf: Option<String>) -> Result<Empty, ApiError> {
    use crate::api::auth;
    let caller = auth::writer().await?;
    auth::engine()?
        .wallet
        .remove_contact(&caller.user, &alias)
        .await?;
    Ok(Empty {})
}

/// One page of the history, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryResponse {
    pub transactions: Vec<TransactionView>,
    /// Pass it as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
    /// The rate the amounts are in, when they are in usd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

/// `GET /rest/v1/history?type=&from=&to=&q=&limit=&cursor=` (an addition to the
/// spec): the transactions of type `sent`, `received` or `onchain`, between the
/// days `from` and `to` (`YYYY-MM-DD`, UTC, both included), whose memo contains
/// `q` (ignoring the case of ASCII letters), newest first, `limit` (1 to 500,
/// default 100) at a time. `cursor` is a previous page's `next_cursor`.
/// `/rest/v1/history.csv` takes the same filter.
#[server(prefix = "/rest/v1", endpoint = "history", input = GetUrl)]
pub async fn history(
    #[server(default)]
    #[server(rename = "type")]
    kind: String,
    #[server(default)] from: String,
    #[server(default)] to: String,
    #[server(default)] q: String,
    #[server(default)] limit: String,
    #[server(default)] cursor: String,
) -> Result<HistoryResponse, ApiError> {
    use crate::api::auth;
    use engine::wallet::{HistoryCursor, HistoryFilter};
    let caller = auth::caller().await?;
    let filter = HistoryFilter::parse(&kind, &from, &to, &q)?;
    let limit = engine::cursor::parse_limit(&limit)?;
    let after = HistoryCursor::parse(&cursor)?;
    let engine = auth::engine()?;
    let unit = caller.user.denomination.unit(&engine.desk.market)?;
    let page = engine
        .wallet
        .history(&caller.user, &filter, after.as_ref(), limit)
        .await?;
    Ok(HistoryResponse {
        transactions: page
            .transactions
            .iter()
            .map(|t| transaction_view(t, unit))
            .collect(),
        next_cursor: page.next_cursor,
        rate: Rate::of(unit),
    })
}

/// One page of channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelsResponse {
    pub channels: Vec<ChannelView>,
    /// Pass it as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
    /// The rate the amounts are in, when they are in usd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

/// `GET /rest/v1/channels?state=closed&cursor=&limit=` (an addition to the spec):
/// the closed channels, most recently closed first, `limit` (1 to 500, default
/// 100) at a time. `getalldata` lists the channels not yet closed and the last
/// ten closed, with the cursor where the older ones start.
#[server(prefix = "/rest/v1", endpoint = "channels", input = GetUrl)]
pub async fn channels(
    #[server(default)] state: String,
    #[server(default)] cursor: String,
    #[server(default)] limit: String,
) -> Result<ChannelsResponse, ApiError> {
    use crate::api::auth;
    let caller = auth::caller().await?;
    if state != "closed" {
        return Err(engine::Error::invalid(
            "state",
            "state must be closed (getalldata lists the channels not yet closed)",
        )
        .into());
    }
    let limit = engine::cursor::parse_limit(&limit)?;
    let after = engine::simnet::ClosedCursor::parse(&cursor)?;
    let engine = auth::engine()?;
    let unit = caller.user.denomination.unit(&engine.desk.market)?;
    let page = engine
        .wallet
        .closed_channels(&caller.user, after.as_ref(), limit)
        .await?;
    Ok(ChannelsResponse {
        channels: page
            .channels
            .iter()
            .map(|c| channel_view(c, unit))
            .collect(),
        next_cursor: page.next_cursor,
        rate: Rate::of(unit),
    })
}

/// `POST /rest/v1/settings {denomination, recheck_password}`: the account's
/// wallet settings (`denomination`: sat, btc, mbtc, bits or usd); a field left
/// out keeps its value. The CSRF token may also
/// come in the body as `_csrf` (the pages send it there).
#[server(prefix = "/rest/v1", endpoint = "settings", input = Json)]
pub async fn update_settings(
    denomination: Option<String>,
    recheck_password: Option<bool>,
    password: Option<String>,
    _csrf: Option<String>,
) -> Result<SettingsResponse, ApiError> {
    use crate::api::auth;
    let caller = auth::writer().await?;
    let engine = auth::engine()?;
    let denomination = denomination
        .as_deref()
        .map(engine::Denomination::parse)
        .transpose()?;
    // Turning the password check off is itself guarded by the password.
    if recheck_password == Some(false) && caller.user.recheck_password {
        auth::recheck(&caller, password.as_deref()).await?;
    }
    let user = engine
        .accounts
        .update_settings(&caller.user, denomination, recheck_password)
        .await?;
    Ok(SettingsResponse {
        denomination: user.denomination.as_str().to_string(),
        recheck_password: user.recheck_password,
    })
}

#[cfg(feature = "ssr")]
fn channel_view(channel: &engine::simnet::Channel, unit: engine::Unit) -> ChannelView {
    ChannelView {
        node: channel.remote.clone(),
        channel: channel.point.clone(),
        state: channel.display_state(),
        balance: Amount(unit.format(channel.local)),
        capacity: Amount(unit.format(channel.capacity)),
        channelpoint: channel.point.clone(),
        remote_balance: Amount(unit.format(channel.remote_balance)),
        initiator: channel.initiator,
    }
}

#[cfg(feature = "ssr")]
fn balances_view(summary: &engine::wallet::Summary, unit: engine::Unit) -> Balances {
    let amount = |m: engine::Msat| Amount(unit.format(m));
    Balances {
        btcfunds: amount(summary.total),
        lntfunds: amount(summary.lightning),
        onchainfunds: amount(summary.node.onchain),
    }
}

#[cfg(feature = "ssr")]
fn info_view(summary: &engine::wallet::Summary) -> Info {
    Info {
        node_id: summary.node.pubkey.clone(),
        alias: summary.node.alias.clone(),
        port: crate::api::auth::public_port(),
        synchronized: true,
        blockheight: summary.blockheight,
    }
}

#[cfg(feature = "ssr")]
fn transaction_view(t: &engine::wallet::Transaction, unit: engine::Unit) -> TransactionView {
    TransactionView {
        kind: t.kind.to_string(),
        amount: Amount(unit.format(t.amount)),
        fee: Amount(unit.format(t.fee)),
        memo: t.memo.clone(),
        time: t.time_ms / 1000,
        status: t.status.to_string(),
        id: t.reference.clone(),
    }
}

#[cfg(feature = "ssr")]
fn payment_view(payment: &engine::simnet::Payment, unit: engine::Unit) -> PaymentView {
    PaymentView {
        payment_hash: payment.payment_hash.clone(),
        destination: payment.destination.clone(),
        amount: Amount(unit.format(payment.amount)),
        fee: Amount(unit.format(payment.fee)),
        preimage: payment.preimage.clone(),
        memo: payment.memo.clone(),
    }
}
