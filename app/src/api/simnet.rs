//! The simnet's developer calls, served only when the server runs with
//! `--simnet-dev`: test coins from the faucet and blocks on demand. Scripts and
//! tests call them; the dashboard shows them as buttons.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

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
