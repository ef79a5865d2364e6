//! Pieces several pages share.

mod field;

pub use field::Field;
