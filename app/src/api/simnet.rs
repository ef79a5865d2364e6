//! The simnet's developer calls, served only when the server runs with
//! `--simnet-dev`: test coins from the faucet, blocks on demand and the desk's
//! BTC/USD index set at once. Scripts and tests call them; the dashboard shows
//! them as buttons.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::api::{Amount, ApiError};

/// Whether the server runs with `--simnet-dev`, provided by the server.
#[derive(Debug, Clone, Copy)]
pub struct SimnetDev(pub bool);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mined {
    pub height: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Funded {
    pub txid: String,
}

/// `POST /api/v1/simnet/mine {"blocks": N}` → `{"height": H}`.
#[server(prefix = "/api/v1/simnet", endpoint = "mine", input = Json)]
pub async fn mine(blocks: i64, _csrf: Option<String>) -> Result<Mined, ApiError> {
    developer().await?;
    let height = crate::api::auth::engine()?.simnet.mine(blocks).await?;
    Ok(Mined { height })
}

/// `POST /api/v1/simnet/faucet {"address": "...", "sats": N}` → `{"txid": ...}`,
/// confirmed in the next block. `N` is at most 100,000,000 (1 BTC) a call; more
/// answers 400, and so does any call once the network holds 21 million BTC.
#[server(prefix = "/api/v1/simnet", endpoint = "faucet", input = Json)]
pub async fn faucet(address: String, sats: i64, _csrf: Option<String>) -> Result<Funded, ApiError> {
    developer().await?;
    // Past what msat can count is past the cap too: the engine refuses it with
    // the cap in its message.
    let amount = engine::Msat::checked_from_sat(sats).unwrap_or(engine::Msat(i64::MAX));
    let txid = crate::api::auth::engine()?
        .simnet
        .faucet(&address, amount)
        .await?;
    Ok(Funded { txid })
}

/// The desk's quote after `POST /api/v1/simnet/price`, prices as the desk's
/// API writes them ("9990.0"), and what the tick did to the positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceSet {
    pub index: String,
    pub bid: String,
    pub offer: String,
    /// RFC 3339.
    pub time: String,
    pub tick: TickDone,
}

/// How many positions one tick filled or closed, by cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TickDone {
    pub filled: usize,
    pub liquidated: usize,
    pub takeprofit: usize,
    pub stoploss: usize,
}

/// `POST /api/v1/simnet/price {"index": N}`: the BTC/USD index becomes `N`
/// USD at once (a number or a decimal string, at most two decimals, from 1 to
/// 10,000,000), everywhere; limit orders, take-profits, stop-losses and
/// liquidations run on it. The embedded walk goes on from it.
#[server(prefix = "/api/v1/simnet", endpoint = "price", input = Json)]
pub async fn set_price(index: Amount, _csrf: Option<String>) -> Result<PriceSet, ApiError> {
    use engine::desk::contract::Price;
    developer().await?;
    let price = Price::parse(&index.0).ok_or_else(|| {
        engine::Error::invalid(
            "index",
            "the index is a positive number of USD with at most two decimals",
        )
    })?;
    engine::desk::market::check_index(price)?;
    let (quote, tick) = crate::api::auth::engine()?.desk.move_price(price).await?;
    Ok(PriceSet {
        index: quote.index.to_string(),
        bid: quote.bid.to_string(),
        offer: quote.offer.to_string(),
        time: engine::rfc3339(quote.at_ms),
        tick: TickDone {
            filled: tick.filled,
            liquidated: tick.liquidated,
            takeprofit: tick.takeprofit,
            stoploss: tick.stoploss,
        },
    })
}

/// A signed-in writer on a server started with `--simnet-dev`; 404 otherwise.
#[cfg(feature = "ssr")]
async fn developer() -> Result<(), ApiError> {
    use crate::api::auth;
    if !use_context::<SimnetDev>().is_some_and(|dev| dev.0) {
        auth::set_status(404);
        return Err(ApiError::new("not found"));
    }
    auth::writer().await.map(drop)
}
