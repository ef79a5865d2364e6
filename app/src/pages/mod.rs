//! One file per page.

mod home;
mod not_found;
mod sign_in;
mod sign_up;

pub use home::HomePage;
pub use not_found::NotFound;
pub use sign_in::SignInPage;
pub use sign_up::SignUpPage;

use crate::api::mylightning::{CreateInvoiceResponse, GenericResponse};
use crate::api::{ApiError, ErrorBody};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// A reply that may carry a refusal in its body: myLightning answers refusals
/// (insufficient funds, no route, ...) with 200 and an `error`.
pub trait Refusal {
    fn refusal(&self) -> Option<&ErrorBody> {
        None
    }
}

impl Refusal for () {}

impl Refusal for CreateInvoiceResponse {
    fn refusal(&self) -> Option<&ErrorBody> {
        self.error.as_ref()
    }
}

impl Refusal for GenericResponse {
    fn refusal(&self) -> Option<&ErrorBody> {
        self.error.as_ref()
    }
}

/// The message of the action's last failure or refusal when `field` caused it;
/// with `None`, when no single field did (shown for the whole form).
fn action_error<S>(action: ServerAction<S>, field: Option<&'static str>) -> Signal<Option<String>>
where
    S: ServerFn<Error = ApiError> + Clone + Send + Sync + 'static,
    S::Output: Refusal + Send + Sync + 'static,
{
    Signal::derive(move || {
        action.value().with(|value| {
            let body = match value {
                Some(Err(err)) => Some(&err.error),
                Some(Ok(reply)) => reply.refusal(),
                None => None,
            }?;
            (body.field.as_deref() == field).then(|| body.message.clone())
        })
    })
}
