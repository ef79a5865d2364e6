-- The simulated Lightning network ("simnet"): nodes, a chain, channels, invoices
-- and payments. Amounts are millisatoshis; instants are Unix milliseconds.
-- The CHECK constraints are the ledger's last line of defence: no statement can
-- leave a negative balance or a channel whose sides do not add up.

-- Per-account wallet settings.
ALTER TABLE users ADD COLUMN denomination TEXT NOT NULL DEFAULT 'sat';
ALTER TABLE users ADD COLUMN recheck_password BIGINT  NOT NULL DEFAULT 1;

-- One node per account, plus the server's own hub (user_id NULL). The secret key
-- is the node's identity: it signs invoices and is never logged or returned.
CREATE TABLE nodes (
    pubkey       TEXT    PRIMARY KEY,
    user_id      TEXT    UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    alias        TEXT    NOT NULL,
    secret_key   TEXT    NOT NULL,
    address      TEXT    NOT NULL UNIQUE,
    onchain_msat BIGINT  NOT NULL DEFAULT 0 CHECK (onchain_msat >= 0),
    created_at   BIGINT  NOT NULL
);

-- The simulated chain: one row per mined block.
CREATE TABLE blocks (
    height   BIGINT  PRIMARY KEY,
    hash     TEXT    NOT NULL,
    mined_at BIGINT  NOT NULL
);

-- On-chain movements of a node's wallet: positive received, negative spent. A
-- receipt counts in `nodes.onchain_msat` once its block is mined (height set); a
-- spend is taken from it at once, so it cannot be spent twice.
CREATE TABLE chain_txs (
    id          BIGSERIAL PRIMARY KEY,
    txid        TEXT    NOT NULL,
    node        TEXT    NOT NULL REFERENCES nodes (pubkey) ON DELETE CASCADE,
    amount_msat BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    height      BIGINT ,
    created_at  BIGINT  NOT NULL
);
CREATE INDEX chain_txs_unconfirmed ON chain_txs (height) WHERE height IS NULL;
CREATE INDEX chain_txs_node ON chain_txs (node, id);

-- Channels. `point` is the funding outpoint txid:vout. The opener funded it; the
-- two balances always add up to the capacity. States: pending_open, open,
-- closing, force_closing, closed. `ready_height` is when a pending state ends.
CREATE TABLE channels (
    point          TEXT    PRIMARY KEY,
    opener         TEXT    NOT NULL REFERENCES nodes (pubkey) ON DELETE CASCADE,
    peer           TEXT    NOT NULL REFERENCES nodes (pubkey) ON DELETE CASCADE,
    capacity_msat  BIGINT  NOT NULL CHECK (capacity_msat > 0),
    opener_msat    BIGINT  NOT NULL CHECK (opener_msat >= 0),
    peer_msat      BIGINT  NOT NULL CHECK (peer_msat >= 0),
    state          TEXT    NOT NULL,
    ready_height   BIGINT ,
    created_at     BIGINT  NOT NULL,
    CHECK (opener_msat + peer_msat = capacity_msat),
    CHECK (opener <> peer)
);
CREATE INDEX channels_opener ON channels (opener);
CREATE INDEX channels_peer ON channels (peer);

-- Invoices a node issued. `settled_at` is set once, by the payment that settles
-- it (the UPDATE that sets it requires it to be NULL).
CREATE TABLE invoices (
    payment_hash   TEXT    PRIMARY KEY,
    node           TEXT    NOT NULL REFERENCES nodes (pubkey) ON DELETE CASCADE,
    bolt11         TEXT    NOT NULL,
    amount_msat    BIGINT ,
    memo           TEXT    NOT NULL,
    preimage       TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    settled_at     BIGINT ,
    received_msat  BIGINT 
);
CREATE INDEX invoices_node ON invoices (node, created_at);

-- Payments a node sent. Only successful payments are recorded with money moved;
-- a refused payment moved nothing and is answered, not stored.
CREATE TABLE payments (
    id            BIGSERIAL PRIMARY KEY,
    node          TEXT    NOT NULL REFERENCES nodes (pubkey) ON DELETE CASCADE,
    payment_hash  TEXT    NOT NULL UNIQUE,
    destination   TEXT    NOT NULL,
    amount_msat   BIGINT  NOT NULL CHECK (amount_msat > 0),
    fee_msat      BIGINT  NOT NULL CHECK (fee_msat >= 0),
    memo          TEXT    NOT NULL,
    preimage      TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX payments_node ON payments (node, created_at);

-- Each account's payees, by alias (unique ignoring case per account).
CREATE TABLE addressbook (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    alias      TEXT    NOT NULL,
    alias_key  TEXT    NOT NULL,
    pubkey     TEXT    NOT NULL,
    host       TEXT,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, alias_key)
);
