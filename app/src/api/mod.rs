//! Server functions: the myLightning REST API at its fixed paths, and the calls the
//! pages make. The types here are shared by the server and the WASM bundle.

mod amount;
#[cfg(feature = "ssr")]
pub mod auth;
pub mod desk;
pub(crate) mod error;
#[cfg(feature = "ssr")]
pub mod idempotent;
// A server function's arguments are its body's fields, as many as the spec
// has (`POST /lnm/positions` has eight); the macro's generated client keeps them.
#[allow(clippy::too_many_arguments)]
pub mod lnm;
pub mod mylightning;
pub mod oauth;
pub mod security;
pub mod session;
pub mod simnet;

pub use amount::{group_thousands, Amount, Rate};
#[cfg(feature = "ssr")]
pub use error::http_status;
pub use error::{ApiError, ErrorBody};
