//! One file per page.

/// A page loaded on demand, its code a separate WASM chunk (`cargo leptos
/// build --split`): `$route` is the route's type, `$title` the document title,
/// `$page` the component that renders the page. `lazy_page!` renders it for
/// anyone; `lazy_wallet_page!` for the signed-in account (`$page` takes it).
macro_rules! lazy_page {
    ($route:ident, $title:literal, $page:ident) => {
        lazy_page!(@route $route, $title, view! { <$page /> });
    };
    (@route $route:ident, $title:literal, $body:expr) => {
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(this: Self) -> AnyView {
                let _ = this;
                view! {
                    <Title text=$title />
                    {$body}
                }
                .into_any()
            }
        }
    };
}

macro_rules! lazy_wallet_page {
    ($route:ident, $title:literal, $page:ident) => {
        lazy_page!(@route $route, $title, view! {
            <SignedIn page=|account| view! { <$page account /> }.into_any() />
        });
    };
}

mod authorize;
mod channels;
mod contacts;
mod funding;
mod history;
mod home;
mod not_found;
mod positions;
mod receive;
mod reset_password;
mod security;
mod send;
mod settings;
mod sign_in;
mod sign_up;
mod tokens;
mod trade;

pub use authorize::AuthorizePage;
pub use channels::ChannelsPage;
pub use contacts::ContactsPage;
pub use funding::FundingPage;
pub use history::HistoryPage;
pub use home::HomePage;
pub use not_found::NotFound;
pub use positions::PositionsPage;
pub use receive::ReceivePage;
pub use reset_password::ResetPasswordPage;
pub use security::SecurityPage;
pub use send::SendPage;
pub use settings::SettingsPage;
pub use sign_in::SignInPage;
pub use sign_up::SignUpPage;
pub use tokens::TokensPage;
pub use trade::TradePage;

use crate::api::lnm::{Done, LnmError, NewToken, PositionView, Success};
use crate::api::mylightning::{
    ContactView, CreateInvoiceResponse, DecodedInvoice, Empty, GenericResponse, SettingsResponse,
};
use crate::api::simnet::{Funded, Mined};
use crate::api::{ApiError, ErrorBody};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;

/// Query text for a link: everything but unreserved characters percent-encoded.
pub(crate) fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The parameters of a query string (`?a=1&b=%26`), each decoded once.
/// The router's own query map decodes its values a second time (`%2541`
/// reads as `A`), which would change a value an application must get back
/// exactly (its `state`).
pub(crate) fn query_pairs(search: &str) -> Vec<(String, String)> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    search
        .trim_start_matches('?')
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// A reply that may carry a refusal in its body: myLightning answers refusals
/// (insufficient funds, no route, ...) with 200 and an `error`.
pub trait Refusal {
    fn refusal(&self) -> Option<&ErrorBody> {
        None
    }
}

impl Refusal for () {}
impl Refusal for SettingsResponse {}
impl Refusal for DecodedInvoice {}
impl Refusal for ContactView {}
impl Refusal for Empty {}
impl Refusal for Mined {}
impl Refusal for Funded {}
impl Refusal for PositionView {}
impl Refusal for Success {}
impl Refusal for NewToken {}
impl Refusal for crate::api::security::AclTokenView {}
impl Refusal for crate::api::security::NewApiKey {}
impl Refusal for Done {}

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

/// An API's error as a form shows it: the message, and the input that caused
/// it when one did.
pub trait FormError {
    fn message_and_field(&self) -> (&str, Option<&str>);
}

impl FormError for ApiError {
    fn message_and_field(&self) -> (&str, Option<&str>) {
        (&self.error.message, self.error.field.as_deref())
    }
}

impl FormError for LnmError {
    fn message_and_field(&self) -> (&str, Option<&str>) {
        (&self.message, self.field.as_deref())
    }
}

/// The message of the action's last failure or refusal when `field` caused it;
/// with `None`, when no single field did (shown for the whole form).
pub(crate) fn action_error<S>(
    action: ServerAction<S>,
    field: Option<&'static str>,
) -> Signal<Option<String>>
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Error: FormError + Send + Sync + 'static,
    S::Output: Refusal + Send + Sync + 'static,
{
    last_error(action, move |caused_by| caused_by == field)
}

/// Whether the server asked `action`'s form for a two-factor code (the account
/// has it on) or refused the one given: from then on the form shows its
/// code field.
pub(crate) fn asks_code<S>(action: ServerAction<S>) -> Signal<bool>
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Error: FormError + Send + Sync + 'static,
    S::Output: Refusal + Send + Sync + 'static,
{
    let refused = action_error(action, Some("otp_code"));
    code_asked_once(Signal::derive(move || refused.with(Option::is_some)))
}

/// Whether `refused` (the server asked for a two-factor code, or refused the
/// one given) was ever true: a form keeps its code field from then on.
pub(crate) fn code_asked_once(refused: Signal<bool>) -> Signal<bool> {
    let asked = RwSignal::new(false);
    Effect::new(move |_| {
        if refused.get() {
            asked.set(true);
        }
    });
    asked.into()
}

/// The message of the action's last failure or refusal unless one of the form's
/// `fields` caused it (those show beside their input): nothing is left unsaid.
pub(crate) fn form_error<S>(
    action: ServerAction<S>,
    fields: &'static [&'static str],
) -> Signal<Option<String>>
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Error: FormError + Send + Sync + 'static,
    S::Output: Refusal + Send + Sync + 'static,
{
    last_error(action, move |caused_by| {
        caused_by.is_none_or(|field| !fields.contains(&field))
    })
}

fn last_error<S>(
    action: ServerAction<S>,
    shows: impl Fn(Option<&str>) -> bool + Send + Sync + 'static,
) -> Signal<Option<String>>
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Error: FormError + Send + Sync + 'static,
    S::Output: Refusal + Send + Sync + 'static,
{
    Signal::derive(move || {
        action.value().with(|value| {
            let (message, field) = match value {
                Some(Err(err)) => err.message_and_field(),
                Some(Ok(reply)) => reply
                    .refusal()
                    .map(|body| (body.message.as_str(), body.field.as_deref()))?,
                None => return None,
            };
            shows(field).then(|| message.to_string())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::query_pairs;

    #[test]
    fn a_query_is_decoded_once() {
        let pairs = query_pairs("?state=50%2541%25&scope=profile+read&x=%zz&next=%2Fa%3Fb%3D1");
        assert_eq!(
            pairs,
            vec![
                ("state".to_string(), "50%41%".to_string()),
                ("scope".to_string(), "profile read".to_string()),
                ("x".to_string(), "%zz".to_string()),
                ("next".to_string(), "/a?b=1".to_string()),
            ]
        );
        assert!(query_pairs("").is_empty());
    }
}
