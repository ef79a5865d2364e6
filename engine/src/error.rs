//! The engine's one error type. Client mistakes carry a message fit to show the
//! user; storage failures keep their cause for the log and never reach a client.

use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the request is not acceptable; `field` names it for the UI.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("username is already taken")]
    UsernameTaken,
    #[error("this e-mail address belongs to another account")]
    EmailTaken,
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("authentication required")]
    Unauthenticated,
    /// The password was right, and the account has two-factor authentication
    /// on: the same request again with a code (`otp_code`).
    #[error("this account has two-factor authentication on: enter the code from your authenticator app (otp_code)")]
    CodeRequired,
    /// Signed in, but this credential may not do this (CSRF token missing, scope).
    #[error("{0}")]
    Forbidden(String),
    /// What the request names does not exist (for this account).
    #[error("{0}")]
    NotFound(String),
    /// The operator switched this service off.
    #[error("{0}")]
    Unavailable(String),
    /// A limit on how much one account may hold open at once (event streams).
    #[error("{0}")]
    TooMany(String),
    /// The account is not in a state that allows this (deleting an account
    /// that still holds funds); the message says what to do first.
    #[error("{0}")]
    Conflict(String),
    #[error("too many attempts, retry in {} s", retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    /// Every password-hashing permit stayed taken for as long as a request may
    /// wait for one; nothing was done.
    #[error("the server is busy, retry in {} s", retry_after.as_secs().max(1))]
    Busy { retry_after: Duration },
    // Refusals of a wallet operation: the request was well formed, the network or
    // the ledger says no. Nothing was changed.
    #[error("insufficient funds")]
    InsufficientFunds,
    #[error("insufficient on-chain funds")]
    InsufficientOnchainFunds,
    #[error("no route to the destination")]
    NoRoute,
    #[error("route fee of {fee_msat} msat exceeds the fee limit of {limit_msat} msat")]
    FeeLimitExceeded { fee_msat: i64, limit_msat: i64 },
    #[error("invoice expired")]
    InvoiceExpired,
    #[error("invoice already paid")]
    AlreadyPaid,
    #[error("unknown alias")]
    UnknownAlias,
    #[error("channel not found")]
    ChannelNotFound,
    #[error("unknown node")]
    UnknownNode,
    #[error("{max} channels to this node are pending already; wait until one opens")]
    PendingChannelLimit { max: i64 },
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("migration error")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A refused order or trigger names its field, as every client mistake does.
impl From<contract::ticket::Refusal> for Error {
    fn from(refusal: contract::ticket::Refusal) -> Self {
        Error::Invalid {
            field: refusal.field,
            message: refusal.message,
        }
    }
}

impl Error {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The request field this error is about, if any (shown next to that field).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Error::Invalid { field, .. } => Some(field),
            Error::UsernameTaken => Some("username"),
            Error::EmailTaken => Some("email"),
            Error::InvalidCredentials => Some("password"),
            Error::CodeRequired => Some("otp_code"),
            _ => None,
        }
    }

    /// How long the client should wait before trying again, for the errors that
    /// say so (answered with a `Retry-After` header).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Throttled { retry_after } | Error::Busy { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// True for a refusal of a wallet operation (myLightning answers these with 200
    /// and an error body, as the original server did).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::InsufficientFunds
                | Error::InsufficientOnchainFunds
                | Error::NoRoute
                | Error::FeeLimitExceeded { .. }
                | Error::InvoiceExpired
                | Error::AlreadyPaid
                | Error::UnknownAlias
                | Error::ChannelNotFound
                | Error::UnknownNode
                | Error::PendingChannelLimit { .. }
        )
    }

    /// True when the cause is on the server side: logged, and answered with a
    /// generic message.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            Error::Database(_) | Error::Migration(_) | Error::Internal(_)
        )
    }
}

/// Maps a unique-constraint violation to the client error naming the field; every
/// other database error stays internal.
pub(crate) fn on_unique_violation(err: sqlx::Error, taken: Error) -> Error {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => taken,
        _ => Error::Database(err),
    }
}

/// A unique violation of the e-mail's index as [`Error::EmailTaken`], any other
/// as `taken`: an account's row has two unique keys.
pub(crate) fn on_account_violation(err: sqlx::Error, taken: Error) -> Error {
    let email = matches!(&err, sqlx::Error::Database(db)
        if db.is_unique_violation()
            && (db.message().contains("users_email_key")
                || db.constraint() == Some("users_email_key")));
    match email {
        true => Error::EmailTaken,
        false => on_unique_violation(err, taken),
    }
}
