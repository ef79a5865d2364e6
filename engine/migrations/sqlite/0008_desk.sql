-- The exchange (the desk's half of Ampere): trading balances, deposits and
-- withdrawals over Lightning, LNURL-withdraw links, sign-in challenges, scoped
-- tokens, and the keys wallets sign in with. Amounts are millisatoshis, bounded
-- like every amount of the network (0 to 21 million BTC); instants are Unix ms.
-- The exchange's books balance at every commit (`Desk::audit`):
--   settled deposits = trading balances + unclaimed deposits + margins
--                      + withdrawals paid or in flight (with their fees)
--                      + the house's result.

-- How an account was created, as the LN-Markets API names it:
-- credentials, lnurl or joule.
ALTER TABLE users ADD COLUMN account_type TEXT NOT NULL DEFAULT 'credentials';

-- Keys a wallet signs in with (LNURL-auth linking keys, Joule node keys): each
-- names one account.
CREATE TABLE linking_keys (
    pubkey     TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('lnurl', 'joule')),
    created_at INTEGER  NOT NULL
);
CREATE INDEX linking_keys_user ON linking_keys (user_id);

-- One trading balance per account that ever used the desk.
CREATE TABLE desk_balances (
    user_id      TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    balance_msat INTEGER  NOT NULL DEFAULT 0
                 CHECK (balance_msat BETWEEN 0 AND 2100000000000000000)
);

-- Invoices of the exchange's node that credit the desk when paid. `user_id` is
-- NULL for an account-creation invoice until the new account claims it.
-- `settled_at` is set once, in the transaction of the payment that settles the
-- invoice; `claimed_at` once, when an account takes a creation deposit.
CREATE TABLE desk_deposits (
    id           TEXT    PRIMARY KEY,
    user_id      TEXT    REFERENCES users (id) ON DELETE CASCADE,
    purpose      TEXT    NOT NULL CHECK (purpose IN ('deposit', 'account')),
    payment_hash TEXT    NOT NULL UNIQUE,
    amount_msat  INTEGER  NOT NULL CHECK (amount_msat BETWEEN 1 AND 2100000000000000000),
    created_at   INTEGER  NOT NULL,
    expires_at   INTEGER  NOT NULL,
    settled_at   INTEGER,
    claimed_at   INTEGER
);
CREATE INDEX desk_deposits_user ON desk_deposits (user_id, created_at);

-- Withdrawals: the amount and a reserve for the routing fee leave the trading
-- balance when the row is made (state 'pending', `fee_msat` the reserve); the
-- payment's own transaction turns it 'paid' with the fee paid (the rest of the
-- reserve back to the balance), or a definite failure turns it 'failed' and
-- refunds both. Both changes require 'pending', so exactly one happens. The
-- trader pays the fee: a route through the trader's own nodes earns nothing
-- from the exchange.
CREATE TABLE desk_withdrawals (
    id           TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    via          TEXT    NOT NULL CHECK (via IN ('invoice', 'lnurl')),
    payment_hash TEXT    NOT NULL,
    amount_msat  INTEGER  NOT NULL CHECK (amount_msat BETWEEN 1 AND 2100000000000000000),
    fee_msat     INTEGER  NOT NULL DEFAULT 0 CHECK (fee_msat BETWEEN 0 AND 2100000000000000000),
    state        TEXT    NOT NULL CHECK (state IN ('pending', 'paid', 'failed')),
    fail_reason  TEXT,
    created_at   INTEGER  NOT NULL,
    finished_at  INTEGER
);
CREATE INDEX desk_withdrawals_user ON desk_withdrawals (user_id, created_at);
CREATE INDEX desk_withdrawals_pending ON desk_withdrawals (state, created_at);

-- LNURL-withdraw links: `k1` pays once (`withdrawal_id` set when used), and
-- only while the credential that made it stands: the account's `auth_version`
-- then, and the scoped token (`token_jti`) if one made it.
CREATE TABLE desk_lnurl_withdrawals (
    k1            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_version  INTEGER  NOT NULL,
    token_jti     TEXT,
    amount_msat   INTEGER  NOT NULL CHECK (amount_msat BETWEEN 1 AND 2100000000000000000),
    created_at    INTEGER  NOT NULL,
    expires_at    INTEGER  NOT NULL,
    withdrawal_id TEXT
);

-- Sign-in challenges (LNURL-auth k1, Joule messages): each works once
-- (`used_at`), before `expires_at`. An LNURL-auth challenge names the browser
-- session waiting for it; its answer names the account that signed in.
CREATE TABLE desk_challenges (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('lnurl', 'joule')),
    session_id TEXT,
    created_at INTEGER  NOT NULL,
    expires_at INTEGER  NOT NULL,
    used_at    INTEGER,
    user_id    TEXT    REFERENCES users (id) ON DELETE CASCADE
);
CREATE INDEX desk_challenges_expiry ON desk_challenges (expires_at);

-- Scoped tokens (`/user/jwt`): the JWT itself is signed; this row lets it be
-- listed and revoked. `scopes` is a comma-separated list.
CREATE TABLE desk_tokens (
    jti        TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL,
    -- The account's auth_version at issue: a password change voids the token.
    auth_version INTEGER NOT NULL,
    issued_at  INTEGER  NOT NULL,
    expires_at INTEGER  NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX desk_tokens_user ON desk_tokens (user_id, issued_at);

-- The house's result: what the exchange itself won or lost against traders
-- (with positions).
CREATE TABLE desk_house (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    result_msat INTEGER NOT NULL DEFAULT 0
                CHECK (result_msat BETWEEN -2100000000000000000 AND 2100000000000000000)
);
INSERT INTO desk_house (id, result_msat) VALUES (1, 0);
