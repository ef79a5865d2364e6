//! One file per page.

mod home;
mod not_found;
mod sign_in;
mod sign_up;

pub use home::HomePage;
pub use not_found::NotFound;
pub use sign_in::SignInPage;
pub use sign_up::SignUpPage;

use crate::api::ApiError;
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// The message of the action's last error when it was about `field`.
fn field_error<S>(action: ServerAction<S>, field: &'static str) -> Signal<Option<String>>
where
    S: ServerFn<Error = ApiError> + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
{
    Signal::derive(move || {
        action.value().with(|value| match value {
            Some(Err(err)) => err.message_for(field).map(str::to_string),
            _ => None,
        })
    })
}

/// The message of the action's last error when no single field caused it.
fn form_error<S>(action: ServerAction<S>) -> Signal<Option<String>>
where
    S: ServerFn<Error = ApiError> + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
{
    Signal::derive(move || {
        action.value().with(|value| match value {
            Some(Err(err)) if err.error.field.is_none() => Some(err.error.message.clone()),
            _ => None,
        })
    })
}
