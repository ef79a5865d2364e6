-- An account's phone numbers (E.164 digits): the code sent to verify one
-- (its hash, ten minutes), and when it was verified. A verified number is
-- one account's only.
CREATE TABLE phones (
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    number       TEXT    NOT NULL,
    country      TEXT    NOT NULL,
    code_hash    TEXT,
    code_expires BIGINT,
    validated_at BIGINT,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (user_id, number)
);
CREATE UNIQUE INDEX phones_verified ON phones (number) WHERE validated_at IS NOT NULL;

-- Documents a person uploads (identity, address proof): what they are, and
-- the files kept in the data directory (`documents/<user id>/<stored>`),
-- never served to anyone but their owner.
CREATE TABLE documents (
    id            TEXT    PRIMARY KEY,
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    doc_type      TEXT    NOT NULL,
    doc_number    TEXT    NOT NULL,
    doc_expire    TEXT,
    doc_category  TEXT,
    identificator TEXT,
    metadata      TEXT    NOT NULL,
    stored_name   TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size_bytes    BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX documents_user ON documents (user_id, created_at);

-- Small titled JSON records a person keeps (the identity API's data storage).
CREATE TABLE data_storages (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, title)
);

-- A withdraw link made by a signed API key or an application's token dies
-- with that key or that application's authorisation.
ALTER TABLE desk_lnurl_withdrawals ADD COLUMN api_key_kid TEXT;
ALTER TABLE desk_lnurl_withdrawals ADD COLUMN oauth_grant_id TEXT;

-- Service accounts: accounts of their own (wallet, trading balance, API
-- keys) that a person owns and reaches only through their keys.
CREATE TABLE service_accounts (
    uid        TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    owner_id   TEXT    NOT NULL REFERENCES users (id),
    role       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE INDEX service_accounts_owner ON service_accounts (owner_id);
