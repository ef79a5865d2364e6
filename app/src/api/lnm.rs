//! The LN-Markets API v1.0.1 (`specs/lnmarkets-api-v1.0.1.md`) under `/lnm`: a
//! script written for the original service works after changing its base URL
//! to `<server>/lnm`. Field names, paths and methods are the spec's; server_fn
//! keys functions by path and method, so `GET`, `PUT` and `POST
//! /lnm/login/credentials` are three functions.
//!
//! Errors are real HTTP statuses with `{"message": "..."}` (400 bad
//! parameters or a refused operation, 401, 403 wrong scope, 404, 429, 503
//! switched off). The LNURL routes a wallet calls answer LNURL's own
//! `{"status": "ERROR", "reason": "..."}` ([`LnurlError`]).
//!
//! Credentials: the `session` cookie (the wallet's; cookie writes here need no
//! CSRF token, as in the spec: the origin rule and `SameSite=Lax` refuse
//! cross-site writes) or a scoped token as `Authorization: Bearer`.

use leptos::prelude::*;
use leptos::server_fn::codec::{DeleteUrl, GetUrl, Json, JsonEncoding, PostUrl, PutJson};
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// The LN-Markets error body, plus `field` (additive) when one input caused
/// it, so the desk's ticket shows the message next to that input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct LnmError {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl LnmError {
    pub fn new(message: impl Into<String>) -> Self {
        LnmError {
            message: message.into(),
            field: None,
        }
    }
}

impl FromServerFnError for LnmError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(err: ServerFnErrorErr) -> Self {
        LnmError::new(crate::api::error::machinery_error(err))
    }
}

/// LNURL's error body (LUD-03, LUD-04), answered with a 4xx status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{reason}")]
pub struct LnurlError {
    pub status: String,
    pub reason: String,
}

impl FromServerFnError for LnurlError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(err: ServerFnErrorErr) -> Self {
        LnurlError {
            status: "ERROR".into(),
            reason: crate::api::error::machinery_error(err),
        }
    }
}

#[cfg(feature = "ssr")]
mod server {
    use axum::http::StatusCode;

    use super::{LnmError, LnurlError};
    use crate::api::ApiError;
    use engine::Error;

    /// The status an engine error answers on `/lnm`: a refused operation is
    /// the client's 400 here, never a 200 with an error inside.
    fn status(err: &Error) -> StatusCode {
        if err.is_refusal() {
            StatusCode::BAD_REQUEST
        } else {
            crate::api::http_status(err)
        }
    }

    /// Sets the status (and `Retry-After`) and answers the public message.
    fn answer(err: Error) -> String {
        let status = status(&err);
        crate::api::error::answer(err, status)
    }

    impl From<Error> for LnmError {
        fn from(err: Error) -> Self {
            // Internal causes stay in the log: no field is named for them.
            let field = (!err.is_internal())
                .then(|| err.field().map(str::to_string))
                .flatten();
            LnmError {
                message: answer(err),
                field,
            }
        }
    }

    impl From<Error> for LnurlError {
        fn from(err: Error) -> Self {
            LnurlError {
                status: "ERROR".into(),
                reason: answer(err),
            }
        }
    }

    /// The shared sign-in helpers answer the myLightning body; their status is
    /// set already, the message carries over.
    impl From<ApiError> for LnmError {
        fn from(err: ApiError) -> Self {
            LnmError {
                message: err.error.message,
                field: err.error.field,
            }
        }
    }

    impl From<ApiError> for LnurlError {
        fn from(err: ApiError) -> Self {
            LnurlError {
                status: "ERROR".into(),
                reason: err.error.message,
            }
        }
    }
}

/// `GET /lnm/state/api`: which services are on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiStateView {
    pub withdraw: bool,
    pub newposition: bool,
    #[serde(rename = "accountCreation")]
    pub account_creation: bool,
}

#[server(prefix = "/lnm", endpoint = "state/api", input = GetUrl)]
pub async fn api_state() -> Result<ApiStateView, LnmError> {
    let switches = crate::api::auth::engine()?.desk.config().switches;
    Ok(ApiStateView {
        withdraw: switches.withdraw,
        newposition: switches.newposition,
        account_creation: switches.account_creation,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeStateView {
    pub uri: String,
    pub alias: String,
    pub pubkey: String,
}

/// `GET /lnm/state/node`: the exchange's node.
#[server(prefix = "/lnm", endpoint = "state/node", input = GetUrl)]
pub async fn node_state() -> Result<NodeStateView, LnmError> {
    use crate::api::auth;
    let engine = auth::engine()?;
    let node = engine.desk.node();
    Ok(NodeStateView {
        uri: format!("{}@{}", node.pubkey, auth::public_host_port()),
        alias: node.alias.clone(),
        pubkey: node.pubkey.clone(),
    })
}

/// What the sign-in routes answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignedInUser {
    pub username: String,
    /// Sats, as text.
    pub balance: String,
    pub account_type: String,
    /// The wallet key that signed in (Joule only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linkingpublickey: Option<String>,
}

#[cfg(feature = "ssr")]
async fn signed_in_user(
    user: &engine::User,
    linkingpublickey: Option<String>,
) -> Result<SignedInUser, LnmError> {
    use crate::api::auth;
    auth::start_session(user).await?;
    let balance = auth::engine()?.desk.balance(&user.id.0).await?;
    Ok(SignedInUser {
        username: user.username.clone(),
        balance: balance.sat().to_string(),
        account_type: user.account_type.clone(),
        linkingpublickey,
    })
}

/// `POST /lnm/login/credentials`: signs in with the wallet's username and
/// password (the same `session` cookie as the wallet).
#[server(prefix = "/lnm", endpoint = "login/credentials", input = Json)]
pub async fn login_credentials(
    login: String,
    password: String,
    #[server(default)] otp_code: Option<String>,
) -> Result<SignedInUser, LnmError> {
    use crate::api::auth;
    let user = auth::engine()?
        .accounts
        .login(&login, &password, otp_code.as_deref(), &auth::seen())
        .await?;
    signed_in_user(&user, None).await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountInvoiceView {
    pub invoice: String,
    /// Seconds left to pay it.
    pub expiry: i64,
}

/// `GET /lnm/login/credentials`: an invoice whose payment opens an account.
#[server(prefix = "/lnm", endpoint = "login/credentials", input = GetUrl)]
pub async fn account_invoice() -> Result<AccountInvoiceView, LnmError> {
    let issued = crate::api::auth::engine()?.desk.account_invoice().await?;
    Ok(AccountInvoiceView {
        invoice: issued.bolt11,
        expiry: (issued.expires_at_ms - issued.created_at_ms) / 1000,
    })
}

/// `PUT /lnm/login/credentials`: opens the account the paid invoice
/// `paymentHash` bought; its sats are the first trading balance.
#[server(prefix = "/lnm", endpoint = "login/credentials", input = PutJson)]
pub async fn register_credentials(
    #[server(rename = "paymentHash")] payment_hash: String,
    login: String,
    password: String,
) -> Result<SignedInUser, LnmError> {
    use crate::api::auth;
    let user = auth::engine()?
        .desk
        .register_paid(&payment_hash, &login, &password, &auth::client_address())
        .await?;
    signed_in_user(&user, None).await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JouleChallengeView {
    /// The message to sign with WebLN `signMessage`.
    pub message: String,
    /// Seconds left to answer it.
    pub expiry: i64,
}

/// `GET /lnm/login/joule`: a one-time message to sign (an addition to the spec:
/// without it any captured login could be replayed).
#[server(prefix = "/lnm", endpoint = "login/joule", input = GetUrl)]
pub async fn joule_challenge() -> Result<JouleChallengeView, LnmError> {
    let (message, expires) = crate::api::auth::engine()?.desk.joule_challenge().await?;
    Ok(JouleChallengeView {
        message,
        expiry: (expires - engine::now_ms() / 1000).max(0),
    })
}

/// `POST /lnm/login/joule`: signs in with an LND-format signature of a
/// challenge from `GET /lnm/login/joule`.
#[server(prefix = "/lnm", endpoint = "login/joule", input = Json)]
pub async fn login_joule(
    message: String,
    signature: String,
    alias: String,
) -> Result<SignedInUser, LnmError> {
    use crate::api::auth;
    let (user, key) = auth::engine()?
        .desk
        .joule_login(&message, &signature, &alias, &auth::seen())
        .await?;
    signed_in_user(&user, Some(key)).await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub uid: String,
    pub balance: String,
    pub username: String,
    pub account_type: String,
}

/// `GET /lnm/user`.
#[server(prefix = "/lnm", endpoint = "user", input = GetUrl)]
pub async fn get_user() -> Result<UserView, LnmError> {
    use engine::desk::DeskScope;
    let caller = crate::api::auth::permitted(engine::Access::Desk(DeskScope::User)).await?;
    let balance = crate::api::auth::engine()?
        .desk
        .balance(&caller.user.id.0)
        .await?;
    Ok(UserView {
        uid: caller.user.id.0.clone(),
        balance: balance.sat().to_string(),
        username: caller.user.username.clone(),
        account_type: caller.user.account_type.clone(),
    })
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Done {}

/// `PUT /lnm/user`: changes the password. Every other session and every token
/// of the account stop working, in every process; this session goes on.
#[server(prefix = "/lnm", endpoint = "user", input = PutJson)]
pub async fn update_user(
    #[server(rename = "previousPassword")] previous_password: String,
    #[server(rename = "newPassword")] new_password: String,
    #[server(default)] otp_code: Option<String>,
) -> Result<Done, LnmError> {
    use crate::api::auth;
    use engine::desk::DeskScope;
    let caller = crate::api::auth::permitted(engine::Access::Desk(DeskScope::User)).await?;
    caller.may_change_password().map_err(engine::Error::from)?;
    let user = auth::engine()?
        .accounts
        .change_password(
            &caller.user,
            &previous_password,
            &new_password,
            otp_code.as_deref(),
            &auth::seen(),
        )
        .await
        .map_err(|err| match err {
            engine::Error::Invalid { field, message } => engine::Error::Invalid {
                field: match field {
                    "old_password" => "previousPassword",
                    "new_password" => "newPassword",
                    other => other,
                },
                message,
            },
            other => other,
        })?;
    if let engine::Credential::Session { csrf, .. } = &caller.credential {
        auth::renew_session(&user, csrf.clone()).await?;
    }
    Ok(Done {})
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepositInvoice {
    #[serde(rename = "paymentRequest")]
    pub payment_request: String,
    /// Seconds left to pay it.
    pub expiry: i64,
    /// Additive: the deposit history's `payment_hash`, to watch it settle.
    #[serde(rename = "paymentHash")]
    pub payment_hash: String,
}

/// `POST /lnm/user/deposit`: an invoice of the exchange; paying it credits the
/// trading balance, once, whoever pays it.
#[server(prefix = "/lnm", endpoint = "user/deposit", input = Json)]
pub async fn deposit(
    amount: i64,
    #[server(default)] unit: Option<String>,
) -> Result<DepositInvoice, LnmError> {
    use engine::desk::DeskScope;
    let caller = crate::api::auth::permitted(engine::Access::Desk(DeskScope::Deposit)).await?;
    let desk = crate::api::auth::engine()?.desk.clone();
    if unit.as_deref().is_some_and(|u| u != "sat") {
        return Err(engine::Error::invalid("unit", "deposits are in sat").into());
    }
    let amount = desk.amount_in(amount, Some("sat"))?;
    let issued = desk.deposit(&caller.user.id.0, amount).await?;
    Ok(DepositInvoice {
        payment_request: issued.bolt11,
        expiry: (issued.expires_at_ms - issued.created_at_ms) / 1000,
        payment_hash: issued.payment_hash,
    })
}

/// One entry of `GET /lnm/user/history`: a deposit (`did`) or a withdrawal
/// (`wid`), with the spec's fields (its `sucess_ts` spelling included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub amount: String,
    pub creation_ts: String,
    pub details: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wid: Option<String>,
    pub fail: bool,
    pub fail_reason: Option<String>,
    pub fail_ts: Option<String>,
    pub payment_hash: String,
    pub success: bool,
    pub sucess_ts: Option<String>,
    pub uid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryView {
    pub transaction: Vec<HistoryEntry>,
}

/// `GET /lnm/user/history?type=deposit|withdraw`: newest first, at most 1000.
#[server(prefix = "/lnm", endpoint = "user/history", input = GetUrl)]
pub async fn history(#[server(default)] r#type: Option<String>) -> Result<HistoryView, LnmError> {
    use engine::desk::DeskScope;
    use engine::rfc3339;
    let caller = crate::api::auth::permitted(engine::Access::Desk(DeskScope::User)).await?;
    let desk = crate::api::auth::engine()?.desk.clone();
    let user = &caller.user.id.0;
    let transaction = match r#type.as_deref() {
        Some("deposit") => desk
            .deposits(user)
            .await?
            .into_iter()
            .map(|d| HistoryEntry {
                amount: d.amount.sat().to_string(),
                creation_ts: rfc3339(d.created_at_ms),
                details: None,
                did: Some(d.id),
                wid: None,
                fail: d.expired_at_ms.is_some(),
                fail_reason: d.expired_at_ms.map(|_| "expired unpaid".to_string()),
                fail_ts: d.expired_at_ms.map(rfc3339),
                payment_hash: d.payment_hash,
                success: d.settled_at_ms.is_some(),
                sucess_ts: d.settled_at_ms.map(rfc3339),
                uid: d.user_id,
            })
            .collect(),
        Some("withdraw") => desk
            .withdrawals(user)
            .await?
            .into_iter()
            .map(|w| {
                let failed = w.state == "failed";
                let paid = w.state == "paid";
                HistoryEntry {
                    amount: w.amount.sat().to_string(),
                    creation_ts: rfc3339(w.created_at_ms),
                    details: (w.fee.0 > 0).then(|| {
                        format!("routing fee {} msat paid from the trading balance", w.fee.0)
                    }),
                    did: None,
                    wid: Some(w.id),
                    fail: failed,
                    fail_reason: w.fail_reason,
                    fail_ts: w.finished_at_ms.filter(|_| failed).map(rfc3339),
                    payment_hash: w.payment_hash,
                    success: paid,
                    sucess_ts: w.finished_at_ms.filter(|_| paid).map(rfc3339),
                    uid: w.user_id,
                }
            })
            .collect(),
        Some(_) => {
            return Err(engine::Error::invalid("type", "type is deposit or withdraw").into())
        }
        None => {
            return Err(
                engine::Error::invalid("type", "type is required: deposit or withdraw").into(),
            )
        }
    };
    Ok(HistoryView { transaction })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenEntry {
    pub aud: Vec<String>,
    pub exp: String,
    pub iat: String,
    pub jti: String,
    pub revoked: bool,
}

/// `GET /lnm/user/jwt`: the account's tokens (session cookie only).
#[server(prefix = "/lnm", endpoint = "user/jwt", input = GetUrl)]
pub async fn list_tokens() -> Result<Vec<TokenEntry>, LnmError> {
    use engine::rfc3339;
    let caller = crate::api::auth::permitted(engine::Access::ManageTokens).await?;
    let tokens = crate::api::auth::engine()?
        .desk
        .tokens
        .list(&caller.user)
        .await?;
    Ok(tokens
        .into_iter()
        .map(|t| TokenEntry {
            aud: t.scopes.into_iter().map(str::to_string).collect(),
            exp: rfc3339(t.expires_at_ms),
            iat: rfc3339(t.issued_at_ms),
            jti: t.jti,
            revoked: t.revoked,
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewToken {
    /// The token itself, shown once.
    pub signature: String,
}

/// `POST /lnm/user/jwt`: a token limited to `scopes`, valid `expiry` seconds
/// (session cookie only: a token cannot mint tokens).
#[server(prefix = "/lnm", endpoint = "user/jwt", input = Json)]
pub async fn create_token(scopes: Vec<String>, expiry: i64) -> Result<NewToken, LnmError> {
    let caller = crate::api::auth::permitted(engine::Access::ManageTokens).await?;
    let scopes = engine::desk::Scopes::parse(&scopes)?;
    let signature = crate::api::auth::engine()?
        .desk
        .tokens
        .create(&caller.user, scopes, expiry)
        .await?;
    Ok(NewToken { signature })
}

/// `DELETE /lnm/user/jwt?jti=`: revokes a token at once, everywhere.
#[server(prefix = "/lnm", endpoint = "user/jwt", input = DeleteUrl)]
pub async fn revoke_token(#[server(default)] jti: Option<String>) -> Result<Done, LnmError> {
    let caller = crate::api::auth::permitted(engine::Access::ManageTokens).await?;
    let Some(jti) = jti else {
        return Err(engine::Error::invalid("jti", "jti is required").into());
    };
    crate::api::auth::engine()?
        .desk
        .tokens
        .revoke(&caller.user, &jti)
        .await?;
    Ok(Done {})
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithdrawalDone {
    /// Sats.
    pub amount: i64,
    /// Additive: the routing fee the trading balance paid besides `amount`,
    /// sats (rounded up: what the balance shows less).
    pub fee: i64,
    /// The payment's preimage: proof it was paid.
    pub paymentsecret: String,
    pub wid: String,
    pub paymenthash: String,
}

/// `POST /lnm/user/withdraw`: pays `invoice` from the trading balance.
/// Additive: `password`, which a browser's session needs when its account
/// re-checks passwords before money leaves (tokens need none), and
/// `otp_code`, the two-factor code an account that has it on gives past its
/// code-free allowance.
#[server(prefix = "/lnm", endpoint = "user/withdraw", input = Json)]
pub async fn withdraw(
    amount: i64,
    #[server(default)] unit: Option<String>,
    invoice: String,
    #[server(default)] password: Option<String>,
    #[server(default)] otp_code: Option<String>,
) -> Result<WithdrawalDone, LnmError> {
    use engine::desk::DeskScope;
    let access = engine::Access::Desk(DeskScope::Withdraw);
    let caller = crate::api::auth::payer(access, password.as_deref()).await?;
    let engine = crate::api::auth::engine()?;
    let amount = engine.desk.amount_in(amount, unit.as_deref())?;
    let leaving = engine.leaving(&caller.user, &invoice, Some(amount));
    let withdrawal = engine.desk.withdraw(&caller.user.id.0, amount, &invoice);
    let done = engine
        .accounts
        .withdrawing(&caller.user, leaving, otp_code.as_deref(), withdrawal)
        .await?;
    Ok(WithdrawalDone {
        amount: done.amount.sat(),
        fee: done.fee.round_up_to_sat().map_or(0, engine::Msat::sat),
        paymentsecret: done.preimage,
        wid: done.id,
        paymenthash: done.payment_hash,
    })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lnurl {
    pub lnurl: String,
}

/// `POST /lnm/user/withdraw/lnurl`: an LNURL-withdraw for exactly `amount`,
/// paid at most once. Additive: `password` and `otp_code`, as for `POST
/// /lnm/user/withdraw` (the code is asked when the link is made).
#[server(prefix = "/lnm", endpoint = "user/withdraw/lnurl", input = Json)]
pub async fn withdraw_lnurl(
    amount: i64,
    #[server(default)] unit: Option<String>,
    #[server(default)] password: Option<String>,
    #[server(default)] otp_code: Option<String>,
) -> Result<Lnurl, LnmError> {
    use engine::desk::DeskScope;
    let access = engine::Access::Desk(DeskScope::Withdraw);
    let caller = crate::api::auth::payer(access, password.as_deref()).await?;
    let engine = crate::api::auth::engine()?;
    let amount = engine.desk.amount_in(amount, unit.as_deref())?;
    let link = engine
        .desk
        .withdraw_link(&caller.user, amount, (&caller.credential).into());
    let lnurl = engine
        .accounts
        .withdrawing(
            &caller.user,
            std::future::ready(Ok(amount)),
            otp_code.as_deref(),
            link,
        )
        .await?;
    Ok(Lnurl { lnurl })
}

/// `POST /lnm/user/logout`: ends the session.
#[server(prefix = "/lnm", endpoint = "user/logout", input = PostUrl)]
pub async fn logout() -> Result<Done, LnmError> {
    crate::api::auth::end_session().await?;
    Ok(Done {})
}

/// A position as the spec shows it: every number a string, prices with their
/// decimals ("9990.0"), times RFC 3339. `pl` is realised once closed and
/// valued at the current quote while open; `exit_price` is the close's, or
/// while open the price a close would get now. Additive: `closed_by` (manual,
/// takeprofit, stoploss, liquidation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionView {
    pub id: String,
    pub pid: String,
    pub uid: String,
    pub user_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub side: String,
    pub sign: String,
    pub quantity: String,
    pub margin: String,
    pub leverage: String,
    pub price: String,
    /// `null` when no price liquidates it (a short at leverage 1).
    pub liquidation: Option<String>,
    pub pl: String,
    pub exit_price: Option<String>,
    pub takeprofit: Option<String>,
    pub stoploss: Option<String>,
    pub takeprofit_wi: Option<String>,
    pub stoploss_wi: Option<String>,
    pub market_wi: String,
    pub margin_wi: String,
    pub creation_ts: Option<String>,
    pub market_filled_ts: Option<String>,
    pub funded: bool,
    pub funded_ts: Option<String>,
    pub closed: bool,
    pub closed_ts: Option<String>,
    pub canceled: bool,
    pub canceled_ts: Option<String>,
    pub closed_by: Option<String>,
    pub payment_hash: Option<String>,
    pub wid: Option<String>,
    pub withdraw: bool,
}

impl PositionView {
    /// What its live P&L is computed from.
    pub fn exposure(&self) -> crate::api::desk::Exposure {
        crate::api::desk::Exposure {
            side: self.side.clone(),
            quantity: self.quantity.clone(),
            margin: self.margin.clone(),
            price: self.price.clone(),
        }
    }
}

#[cfg(feature = "ssr")]
impl PositionView {
    fn of(position: &engine::desk::Position, quote: Option<&engine::desk::Quote>) -> Self {
        use engine::desk::contract::Liquidation;
        use engine::desk::positions::{ClosedBy, State};
        use engine::rfc3339;
        let open = matches!(position.state, State::Open | State::Pending);
        // A trigger's order state: running while it can fire, filled when it
        // closed the position, canceled when something else ended it.
        let trigger = |set: bool, fired: ClosedBy| {
            set.then(|| {
                if open {
                    "running"
                } else if position.closed_by == Some(fired) {
                    "filled"
                } else {
                    "canceled"
                }
                .to_string()
            })
        };
        let fired_trigger = |fired: ClosedBy| position.closed_by == Some(fired);
        let exit = match position.state {
            State::Closed => position.exit,
            State::Open => quote.map(|q| position.reference(q)),
            State::Pending | State::Canceled => None,
        };
        PositionView {
            id: position.id.to_string(),
            pid: position.pid.clone(),
            uid: position.user_id.clone(),
            user_id: None,
            kind: position.kind.code().into(),
            side: position.side.code().into(),
            sign: position.side.sign().to_string(),
            quantity: position.quantity.to_string(),
            margin: position.margin.to_string(),
            leverage: position.leverage.to_string(),
            price: position.price.to_string(),
            liquidation: match position.liquidation {
                Liquidation::At(price) => Some(price.to_string()),
                Liquidation::Never => None,
            },
            pl: position.pl_at(quote).to_string(),
            exit_price: exit.map(|p| p.to_string()),
            takeprofit: position.takeprofit.map(|p| p.to_string()),
            stoploss: position.stoploss.map(|p| p.to_string()),
            takeprofit_wi: trigger(
                position.takeprofit.is_some() || fired_trigger(ClosedBy::Takeprofit),
                ClosedBy::Takeprofit,
            ),
            stoploss_wi: trigger(
                position.stoploss.is_some() || fired_trigger(ClosedBy::Stoploss),
                ClosedBy::Stoploss,
            ),
            market_wi: match position.state {
                State::Pending => "running",
                State::Canceled => "canceled",
                State::Open | State::Closed => "filled",
            }
            .into(),
            margin_wi: match position.state {
                State::Pending | State::Open => "running",
                State::Closed => "closed",
                State::Canceled => "canceled",
            }
            .into(),
            creation_ts: Some(rfc3339(position.created_at_ms)),
            market_filled_ts: position.filled_at_ms.map(rfc3339),
            // The margin is paid from the trading balance when the position is made.
            funded: true,
            funded_ts: Some(rfc3339(position.created_at_ms)),
            closed: position.state == State::Closed,
            closed_ts: position.closed_at_ms.map(rfc3339),
            canceled: position.state == State::Canceled,
            canceled_ts: position.canceled_at_ms.map(rfc3339),
            closed_by: position.closed_by.map(|by| by.code().to_string()),
            payment_hash: None,
            wid: None,
            withdraw: false,
        }
    }
}

/// `GET /lnm/positions` answers `{"positions": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionList {
    pub positions: Vec<PositionView>,
}

/// The caller allowed to trade, and the desk.
#[cfg(feature = "ssr")]
async fn trader() -> Result<(engine::Caller, engine::desk::Desk), LnmError> {
    use engine::desk::DeskScope;
    let caller = crate::api::auth::permitted(engine::Access::Desk(DeskScope::Positions)).await?;
    Ok((caller, crate::api::auth::engine()?.desk.clone()))
}

/// A view of `position` at the latest quote.
#[cfg(feature = "ssr")]
fn position_view(desk: &engine::desk::Desk, position: &engine::desk::Position) -> PositionView {
    PositionView::of(position, desk.market.latest().as_ref())
}

/// A JSON number as a price: at most two decimals, exactly (the text of the
/// number, never a float's approximation).
#[cfg(feature = "ssr")]
fn price_arg(
    field: &'static str,
    value: Option<serde_json::Number>,
) -> Result<Option<engine::desk::contract::Price>, engine::Error> {
    value
        .map(|number| {
            engine::desk::contract::Price::parse(&number.to_string()).ok_or_else(|| {
                engine::Error::invalid(
                    field,
                    format!("{field} must be a positive price in USD, with at most 2 decimals"),
                )
            })
        })
        .transpose()
}

/// A JSON integer as a count of sats or contracts: at least 1. An integer is
/// JSON Schema's, as the OpenAPI document uses it: any number without a
/// fraction, `10000.0` included (what a script computing in floating point
/// sends).
#[cfg(feature = "ssr")]
fn count_arg(
    field: &'static str,
    value: Option<serde_json::Number>,
) -> Result<Option<u64>, engine::Error> {
    use engine::Error;
    value
        .map(|number| {
            let whole = match number.as_i64() {
                Some(n) => n,
                None => match number.as_f64() {
                    Some(f) if f.fract() != 0.0 => {
                        return Err(Error::invalid(
                            field,
                            format!("{field} must be a whole number"),
                        ))
                    }
                    // Exactly representable up to here, and within i64.
                    Some(f) if f.abs() < 9.0e15 => f as i64,
                    _ => return Err(Error::invalid(field, format!("{field} is too large"))),
                },
            };
            u64::try_from(whole)
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Error::invalid(field, format!("{field} must be at least 1")))
        })
        .transpose()
}

/// `GET /lnm/positions?open|closed|all`: the account's positions (open and
/// pending limit orders by default; closed: the last 1000). Each flag counts
/// when present bare (`?closed`) or `true`/`1`.
#[server(prefix = "/lnm", endpoint = "positions", input = GetUrl)]
pub async fn list_positions(
    #[server(default)] open: Option<String>,
    #[server(default)] closed: Option<String>,
    #[server(default)] all: Option<String>,
) -> Result<PositionList, LnmError> {
    use engine::desk::Filter;
    let (caller, desk) = trader().await?;
    // A request to this route is read from its raw query: the URL codec takes
    // a bare flag (`?closed`) for absent. A page rendering on the server calls
    // the function directly, with the request of the page: its arguments say.
    let uri: axum::http::Uri = leptos_axum::extract()
        .await
        .map_err(|_| LnmError::new("the query could not be read"))?;
    let pairs: Vec<(String, String)> =
        if uri.path() == <ListPositions as leptos::server_fn::ServerFn>::PATH {
            uri.query()
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (name.to_string(), value.to_string())
                })
                .collect()
        } else {
            [("open", open), ("closed", closed), ("all", all)]
                .into_iter()
                .filter_map(|(name, value)| Some((name.to_string(), value?)))
                .collect()
        };
    let mut flags = (false, false, false);
    for (name, value) in &pairs {
        let on = match value.as_str() {
            "" | "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                let field = match name.as_str() {
                    "closed" => "closed",
                    "all" => "all",
                    _ => "open",
                };
                let message = format!("{name} is true or false");
                return Err(engine::Error::invalid(field, message).into());
            }
        };
        match name.as_str() {
            "open" => flags.0 = on,
            "closed" => flags.1 = on,
            "all" => flags.2 = on,
            _ => {}
        }
    }
    let filter = match flags {
        (_, _, true) | (true, true, _) => Filter::All,
        (_, true, _) => Filter::Closed,
        _ => Filter::Open,
    };
    let positions = desk.positions(&caller.user, filter).await?;
    Ok(PositionList {
        positions: positions.iter().map(|p| position_view(&desk, p)).collect(),
    })
}

/// `POST /lnm/positions`: opens a market (`m`) or limit (`l`) position; of
/// margin, quantity and leverage two decide the third.
#[server(prefix = "/lnm", endpoint = "positions", input = Json)]
pub async fn create_position(
    #[server(default)] r#type: Option<String>,
    #[server(default)] side: Option<String>,
    #[server(default)] margin: Option<serde_json::Number>,
    #[server(default)] leverage: Option<serde_json::Number>,
    #[server(default)] quantity: Option<serde_json::Number>,
    #[server(default)] takeprofit: Option<serde_json::Number>,
    #[server(default)] stoploss: Option<serde_json::Number>,
    #[server(default)] price: Option<serde_json::Number>,
) -> Result<PositionView, LnmError> {
    use engine::desk::contract::{Leverage, Side};
    use engine::desk::{Order, OrderType};
    use engine::Error;
    let (caller, desk) = trader().await?;
    let kind = match r#type.as_deref() {
        None => None,
        Some(code) => Some(
            OrderType::from_code(code)
                .ok_or_else(|| Error::invalid("type", "type must be m (market) or l (limit)"))?,
        ),
    };
    let side = match side.as_deref() {
        None => None,
        Some(code) => Some(
            Side::from_code(code)
                .ok_or_else(|| Error::invalid("side", "side must be b (buy) or s (sell)"))?,
        ),
    };
    let leverage = leverage
        .map(|number| {
            Leverage::parse(&number.to_string()).ok_or_else(|| {
                Error::invalid(
                    "leverage",
                    "leverage must be a positive number with at most 4 decimals",
                )
            })
        })
        .transpose()?;
    let order = Order {
        kind,
        side,
        margin: count_arg("margin", margin)?,
        quantity: count_arg("quantity", quantity)?,
        leverage,
        price: price_arg("price", price)?,
        takeprofit: price_arg("takeprofit", takeprofit)?,
        stoploss: price_arg("stoploss", stoploss)?,
    };
    let position = desk.open_position(&caller.user, order).await?;
    Ok(position_view(&desk, &position))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Success {
    pub success: bool,
}

/// `PUT /lnm/positions {pid, takeprofit | stoploss}`: sets one trigger (never
/// both in one request); 0 removes it.
#[server(prefix = "/lnm", endpoint = "positions", input = PutJson)]
pub async fn update_position(
    #[server(default)] pid: String,
    #[server(default)] takeprofit: Option<serde_json::Number>,
    #[server(default)] stoploss: Option<serde_json::Number>,
) -> Result<Success, LnmError> {
    use engine::desk::contract::Price;
    use engine::desk::TriggerChange;
    use engine::Error;
    let (caller, desk) = trader().await?;
    engine::desk::positions::check_pid(&pid)?;
    // Zero removes a trigger; anything else is a price.
    let price = |field, value: serde_json::Number| -> Result<Price, Error> {
        if value.as_f64() == Some(0.0) {
            return Ok(Price::default());
        }
        Ok(price_arg(field, Some(value))?.unwrap_or_default())
    };
    let change = match (takeprofit, stoploss) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "stoploss",
                "takeprofit and stoploss are mutually exclusive: send one per request",
            )
            .into())
        }
        (Some(tp), None) => TriggerChange::Takeprofit(price("takeprofit", tp)?),
        (None, Some(sl)) => TriggerChange::Stoploss(price("stoploss", sl)?),
        (None, None) => {
            return Err(Error::invalid("takeprofit", "send takeprofit or stoploss").into())
        }
    };
    desk.update_position(&caller.user, &pid, change).await?;
    Ok(Success { success: true })
}

/// `DELETE /lnm/positions?pid=`: closes a position at the current quote.
#[server(prefix = "/lnm", endpoint = "positions", input = DeleteUrl)]
pub async fn close_position(#[server(default)] pid: String) -> Result<PositionView, LnmError> {
    let (caller, desk) = trader().await?;
    let position = desk.close_position(&caller.user, &pid).await?;
    Ok(position_view(&desk, &position))
}

/// `POST /lnm/positions/cancel {pid}`: cancels a limit order not yet filled
/// and gives its margin back.
#[server(prefix = "/lnm", endpoint = "positions/cancel", input = Json)]
pub async fn cancel_position(#[server(default)] pid: String) -> Result<PositionView, LnmError> {
    let (caller, desk) = trader().await?;
    let position = desk.cancel_position(&caller.user, &pid).await?;
    Ok(position_view(&desk, &position))
}

/// `POST /lnm/positions/add-margin {pid, amount}` (additive): moves `amount`
/// sats from the trading balance into an open position's margin.
#[server(prefix = "/lnm", endpoint = "positions/add-margin", input = Json)]
pub async fn add_margin(
    #[server(default)] pid: String,
    #[server(default)] amount: Option<serde_json::Number>,
) -> Result<PositionView, LnmError> {
    let (caller, desk) = trader().await?;
    let amount = count_arg("amount", amount)?
        .ok_or_else(|| engine::Error::invalid("amount", "amount is required"))?;
    let position = desk.add_margin(&caller.user, &pid, amount).await?;
    Ok(position_view(&desk, &position))
}

/// `GET /lnm/lnurl/a/c`: an LNURL-auth for this browser session; once a
/// wallet answers it, the session is signed in.
#[server(prefix = "/lnm", endpoint = "lnurl/a/c", input = GetUrl)]
pub async fn lnurl_auth_create() -> Result<Lnurl, LnmError> {
    use crate::api::auth;
    let nonce = engine::random_hex(16);
    let (k1, lnurl) = auth::engine()?.desk.lnurl_auth_challenge(&nonce).await?;
    auth::await_lnurl_auth(k1, nonce).await?;
    Ok(Lnurl { lnurl })
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LnurlOk {
    pub status: String,
}

/// `GET /lnm/lnurl/a`: the wallet's signed answer to an LNURL-auth (with
/// `action=link`: to a link challenge from the security page).
#[server(prefix = "/lnm", endpoint = "lnurl/a", input = GetUrl)]
pub async fn lnurl_auth(
    #[server(default)] k1: String,
    #[server(default)] tag: String,
    #[server(default)] sig: String,
    #[server(default)] key: String,
    #[server(default)] hmac: String,
    #[server(default)] t: String,
    #[server(default)] action: String,
) -> Result<LnurlOk, LnurlError> {
    use crate::api::auth;
    if tag != "login" {
        return Err(engine::Error::invalid("tag", "tag must be login").into());
    }
    let desk = &auth::engine()?.desk;
    match action.as_str() {
        "link" => desk.lnurl_link_answer(&k1, &sig, &key, &hmac, &t).await?,
        _ => {
            desk.lnurl_auth_answer(&k1, &sig, &key, &hmac, &t, &auth::seen())
                .await?
        }
    };
    Ok(LnurlOk {
        status: "OK".into(),
    })
}

/// The withdraw request a wallet reads (LUD-03); amounts in msat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WithdrawRequest {
    pub callback: String,
    #[serde(rename = "defaultDescription")]
    pub default_description: String,
    pub tag: String,
    #[serde(rename = "maxWithdrawable")]
    pub max_withdrawable: i64,
    #[serde(rename = "minWithdrawable")]
    pub min_withdrawable: i64,
    pub k1: String,
}

/// `GET /lnm/lnurl/w/r`: what an LNURL-withdraw offers.
#[server(prefix = "/lnm", endpoint = "lnurl/w/r", input = GetUrl)]
pub async fn lnurl_withdraw_request(
    #[server(default)] signature: String,
    #[server(default)] n: String,
    #[server(default)] expiry: String,
) -> Result<WithdrawRequest, LnurlError> {
    let expiry: i64 = expiry
        .parse()
        .map_err(|_| engine::Error::invalid("expiry", "expiry is a Unix time"))?;
    let request = crate::api::auth::engine()?
        .desk
        .withdraw_request(&signature, &n, expiry)
        .await?;
    Ok(WithdrawRequest {
        callback: request.callback,
        default_description: "Ampere exchange withdrawal".into(),
        tag: "withdrawRequest".into(),
        max_withdrawable: request.amount.0,
        min_withdrawable: request.amount.0,
        k1: request.k1,
    })
}

/// `GET /lnm/lnurl/w?k1&pr`: the wallet's invoice for an LNURL-withdraw, paid
/// at once.
#[server(prefix = "/lnm", endpoint = "lnurl/w", input = GetUrl)]
pub async fn lnurl_withdraw(
    #[server(default)] k1: String,
    #[server(default)] pr: String,
) -> Result<LnurlOk, LnurlError> {
    crate::api::auth::engine()?
        .desk
        .withdraw_by_link(&k1, &pr)
        .await?;
    Ok(LnurlOk {
        status: "OK".into(),
    })
}

// The market: the desk's BTC/USD quote and its recent history (additive,
// public: no credential, counted by the `/lnm` quotas like every route here).

/// `GET /lnm/market/ticker`: the exchange's latest quote, prices as the spec
/// writes them ("9990.0"). `time` says when it was taken: while it is older
/// than the server's staleness bound, opening and closing positions answer 503.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TickerView {
    pub index: String,
    pub bid: String,
    pub offer: String,
    /// RFC 3339.
    pub time: String,
}

#[server(prefix = "/lnm", endpoint = "market/ticker", input = GetUrl)]
pub async fn market_ticker() -> Result<TickerView, LnmError> {
    let quote = crate::api::auth::engine()?
        .desk
        .market
        .latest()
        .ok_or_else(|| {
            engine::Error::Unavailable("the exchange has no BTC/USD price yet".into())
        })?;
    Ok(TickerView {
        index: quote.index.to_string(),
        bid: quote.bid.to_string(),
        offer: quote.offer.to_string(),
        time: engine::rfc3339(quote.at_ms),
    })
}

/// One point of `GET /lnm/market/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketPoint {
    /// Unix milliseconds.
    pub time: i64,
    pub index: String,
    pub bid: String,
    pub offer: String,
}

/// `GET /lnm/market/history?from=&to=` (Unix ms, both inclusive; defaults:
/// the last hour up to now): the recorded quotes, oldest first, every one
/// when `from` lies within the last hour, one a minute before that (two days
/// are kept); at most 5000, the newest.
#[server(prefix = "/lnm", endpoint = "market/history", input = GetUrl)]
pub async fn market_history(
    #[server(default)] from: Option<String>,
    #[server(default)] to: Option<String>,
) -> Result<Vec<MarketPoint>, LnmError> {
    const HOUR_MS: i64 = 3600 * 1000;
    fn millis(field: &'static str, text: Option<&str>) -> Result<Option<i64>, engine::Error> {
        let Some(text) = text.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        match text.parse::<i64>() {
            Ok(ms) if (0..=i64::MAX / 2).contains(&ms) => Ok(Some(ms)),
            _ => Err(engine::Error::invalid(
                field,
                format!("{field} is a time in Unix milliseconds"),
            )),
        }
    }
    let to_ms = millis("to", to.as_deref())?.unwrap_or_else(engine::now_ms);
    let from_ms = millis("from", from.as_deref())?.unwrap_or(to_ms.saturating_sub(HOUR_MS));
    let quotes = crate::api::auth::engine()?
        .desk
        .market
        .history(from_ms, to_ms)
        .await?;
    Ok(quotes
        .into_iter()
        .map(|quote| MarketPoint {
            time: quote.at_ms,
            index: quote.index.to_string(),
            bid: quote.bid.to_string(),
            offer: quote.offer.to_string(),
        })
        .collect())
}
