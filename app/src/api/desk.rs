//! The desk pages' forms that must also work without JavaScript: closing a
//! position and asking for a deposit invoice. They take form encoding, are
//! cookie writes under `/api/ui` (the gate checks their `csrf` field), call
//! the same desk services as `/lnm`, and redirect to the page that shows the
//! result (with JavaScript, the router follows the redirect in place).

use leptos::prelude::*;

use crate::api::ApiError;

/// Closes one of the account's positions at the current price, then shows
/// the positions.
#[server(prefix = "/api/ui", endpoint = "desk/close")]
pub async fn close_from_page(pid: String, csrf: String) -> Result<(), ApiError> {
    use crate::api::auth;
    use engine::desk::DeskScope;
    let _ = csrf;
    let caller = auth::permitted(engine::Access::Desk(DeskScope::Positions)).await?;
    auth::engine()?
        .desk
        .close_position(&caller.user, &pid)
        .await?;
    leptos_axum::redirect("/positions");
    Ok(())
}

/// Issues a deposit invoice of `amount` whole sats, then shows it on the
/// funding page (`?invoice=&hash=`).
#[server(prefix = "/api/ui", endpoint = "desk/deposit")]
pub async fn deposit_from_page(amount: String, csrf: String) -> Result<(), ApiError> {
    use crate::api::auth;
    use engine::desk::DeskScope;
    let _ = csrf;
    let caller = auth::permitted(engine::Access::Desk(DeskScope::Deposit)).await?;
    let desk = auth::engine()?.desk.clone();
    let sats = amount
        .trim()
        .replace([',', ' '], "")
        .parse::<i64>()
        .map_err(|_| engine::Error::invalid("amount", "amount is a whole number of sats"))?;
    let amount = desk.amount_in(sats, Some("sat"))?;
    let issued = desk.deposit(&caller.user.id.0, amount).await?;
    leptos_axum::redirect(&format!(
        "/funding?invoice={}&hash={}",
        issued.bolt11, issued.payment_hash
    ));
    Ok(())
}
