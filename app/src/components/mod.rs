//! Pieces the pages share.

mod account;
mod clock;
mod copy;
mod field;
mod live;
mod qr;
mod rate;
mod scanner;
mod simnet;

pub use account::{
    wallet_data, wallet_data_without_blocks, wallet_summary, ErrorCard, SignOutButton, SignedIn,
    WithData,
};
pub use clock::now_seconds;
pub use copy::CopyButton;
pub use field::Field;
pub use live::Live;
pub use qr::QrCode;
pub use rate::RateNote;
pub use scanner::Scanner;
pub use simnet::{SimnetActions, SimnetTools};
