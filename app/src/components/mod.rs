//! Pieces the pages share.

mod account;
pub mod chart;
mod clock;
mod copy;
mod field;
pub mod figures;
mod live;
mod qr;
mod rate;
mod realtime;
mod scanner;
mod simnet;

pub use account::{
    wallet_data, wallet_data_without_blocks, wallet_summary, ErrorCard, SignOutButton, SignedIn,
    WithData,
};
pub use clock::{now_seconds, unix_now};
pub use copy::CopyButton;
pub use field::Field;
pub use live::Live;
pub use qr::QrCode;
pub use rate::RateNote;
pub use realtime::{LiveQuote, Realtime};
pub use scanner::Scanner;
pub use simnet::{SimnetActions, SimnetTools};
