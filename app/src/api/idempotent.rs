//! `Idempotency-Key` for the calls that move money (`sendinvoice`, `quickpay`,
//! `openchannel`): a client that retries after a lost answer sends the same key
//! and gets the first outcome back, whether that was a payment or a refusal.
//! Without the header a call simply runs. (Server side only.)

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::auth::{engine, set_status};
use crate::api::ApiError;
use engine::idempotency::{Claim, Idempotency};
use engine::Caller;

const HEADER: &str = "idempotency-key";

/// Runs `work` at most once per key: `operation` and `inputs` (what the client
/// asked for, secrets left out) must match the first request's.
pub async fn once<T, W>(
    caller: &Caller,
    operation: &str,
    inputs: serde_json::Value,
    work: W,
) -> Result<T, ApiError>
where
    T: Serialize + DeserializeOwned,
    W: std::future::Future<Output = Result<T, engine::Error>>,
{
    let key = leptos::prelude::use_context::<axum::http::request::Parts>().and_then(|parts| {
        parts
            .headers
            .get(HEADER)
            .map(|v| v.to_str().map(str::to_string).unwrap_or_default())
    });
    let Some(key) = key else {
        return Ok(work.await?);
    };
    let engine = engine()?;
    let user = &caller.user.id.0;
    let fingerprint = Idempotency::fingerprint(operation, &inputs.to_string());
    match engine.idempotency.claim(user, &key, &fingerprint).await? {
        Claim::Fresh => {}
        Claim::Running => {
            set_status(409);
            return Err(ApiError::new(
                "a request with this Idempotency-Key is still running; retry shortly",
            ));
        }
        Claim::Done { status, response } => {
            set_status(status);
            // A stored refusal has only `error`; a stored success has no `error`.
            if let Ok(refusal) = serde_json::from_str::<ApiError>(&response) {
                return Err(refusal);
            }
            return serde_json::from_str::<T>(&response)
                .map_err(|_| ApiError::new("internal error"));
        }
    }
    let outcome = work.await;
    // A success or a refusal is the answer for good; anything else changed
    // nothing, so the key is given back for a corrected retry.
    match &outcome {
        Ok(value) => {
            let json = serde_json::to_string(value).unwrap_or_default();
            engine.idempotency.complete(user, &key, 200, &json).await?
        }
        Err(err) if err.is_refusal() => {
            let json = serde_json::to_string(&ApiError::new(err.to_string())).unwrap_or_default();
            engine.idempotency.complete(user, &key, 200, &json).await?
        }
        Err(_) => engine.idempotency.release(user, &key).await?,
    }
    Ok(outcome?)
}
