//! What the desk pages read and post beyond `/lnm`: the dashboard's compact
//! desk card, and the forms that must also work without JavaScript (closing a
//! position, asking for a deposit invoice and reading that invoice back for
//! the page it redirects to). The forms take form encoding, are cookie writes
//! under `/api/ui` (the gate checks their `csrf` field), call the same desk
//! services as `/lnm`, and redirect to the page that shows the result (with
//! JavaScript, the router follows the redirect in place).

use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use serde::{Deserialize, Serialize};

use crate::api::ApiError;

/// What a filled position's live P&L is computed from, written as `/lnm`
/// writes a position's fields (side code, contracts, sats, entry price).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exposure {
    pub side: String,
    pub quantity: String,
    pub margin: String,
    pub price: String,
}

#[cfg(feature = "ssr")]
impl Exposure {
    pub fn of(position: &engine::desk::Position) -> Self {
        Exposure {
            side: position.side.code().into(),
            quantity: position.quantity.to_string(),
            margin: position.margin.to_string(),
            price: position.price.to_string(),
        }
    }
}

/// The dashboard's desk card: the trading balance in sats and the filled
/// positions' exposures. The card reads this rather than `/lnm`'s full views
/// so that the dashboard's bundle does not carry their decoders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeskCardView {
    pub balance: i64,
    pub open: Vec<Exposure>,
}

/// The account's desk card (the desk's `user` and `positions` scopes).
#[server(prefix = "/api/ui", endpoint = "desk/card", input = GetUrl)]
pub async fn desk_card() -> Result<DeskCardView, ApiError> {
    use crate::api::auth;
    use engine::desk::positions::State;
    use engine::desk::{DeskScope, Filter};
    use engine::Access;
    let caller = auth::permitted(Access::Desk(DeskScope::User)).await?;
    caller
        .permits(Access::Desk(DeskScope::Positions))
        .map_err(engine::Error::from)?;
    let desk = &auth::engine()?.desk;
    let balance = desk.balance(&caller.user.id.0).await?.sat();
    let open = desk
        .positions(&caller.user, Filter::Open)
        .await?
        .iter()
        .filter(|p| p.state == State::Open)
        .map(Exposure::of)
        .collect();
    Ok(DeskCardView { balance, open })
}

/// Closes one of the account's positions at the current price, then shows
/// the positions.
#[server(prefix = "/api/ui", endpoint = "desk/close")]
pub async fn close_from_page(pid: String, csrf: String) -> Result<(), ApiError> {
    use crate::api::auth;
    use engine::desk::DeskScope;
    // A page's form: the session's CSRF token must come with it (the gate
    // read `csrf`; `writer` refuses a request that did not carry it).
    let _ = csrf;
    auth::writer().await?;
    let caller = auth::permitted(engine::Access::Desk(DeskScope::Positions)).await?;
    auth::engine()?
        .desk
        .close_position(&caller.user, &pid)
        .await?;
    leptos_axum::redirect("/positions");
    Ok(())
}

/// Issues a deposit invoice of `amount` whole sats, then shows it on the
/// funding page (`?deposit=` its payment hash: the page reads the invoice
/// back with [`deposit_invoice`], so a link cannot show a stranger's).
#[server(prefix = "/api/ui", endpoint = "desk/deposit")]
pub async fn deposit_from_page(amount: String, csrf: String) -> Result<(), ApiError> {
    use crate::api::auth;
    use engine::desk::DeskScope;
    let _ = csrf;
    auth::writer().await?;
    let caller = auth::permitted(engine::Access::Desk(DeskScope::Deposit)).await?;
    let desk = auth::engine()?.desk.clone();
    let sats = amount
        .trim()
        .replace([',', ' '], "")
        .parse::<i64>()
        .map_err(|_| engine::Error::invalid("amount", "amount is a whole number of sats"))?;
    let amount = desk.amount_in(sats, Some("sat"))?;
    let issued = desk.deposit(&caller.user.id.0, amount).await?;
    leptos_axum::redirect(&format!("/funding?deposit={}", issued.payment_hash));
    Ok(())
}

/// One of the account's deposit invoices, by its payment hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedDeposit {
    pub bolt11: String,
    pub paid: bool,
}

/// The deposit invoice of `hash`, if this account issued it (else 404).
#[server(prefix = "/api/ui", endpoint = "desk/deposit-invoice", input = GetUrl)]
pub async fn deposit_invoice(hash: String) -> Result<IssuedDeposit, ApiError> {
    use crate::api::auth;
    use engine::desk::DeskScope;
    let caller = auth::permitted(engine::Access::Desk(DeskScope::Deposit)).await?;
    let found = auth::engine()?
        .desk
        .deposit_invoice(&caller.user.id.0, hash.trim())
        .await?;
    match found {
        Some((bolt11, paid)) => Ok(IssuedDeposit { bolt11, paid }),
        None => {
            Err(engine::Error::NotFound("no deposit of yours has this payment hash".into()).into())
        }
    }
}
