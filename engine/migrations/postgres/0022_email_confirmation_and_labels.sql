-- Codes sent to confirm an account's e-mail address (SHA-256 hashes only):
-- a day, once, and only for the address they were sent to.
CREATE TABLE email_codes (
    code_hash  TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT
);

-- The address an account confirmed: confirmed while it is still the
-- account's address.
CREATE TABLE email_confirmations (
    user_id      TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    email        TEXT    NOT NULL,
    confirmed_at BIGINT  NOT NULL
);

-- The labels a person puts on their account (the identity API's `public`
-- scope); the server's own (`private`: e-mail, two-factor, phone) are read
-- from what they describe, never stored here.
CREATE TABLE labels (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, key)
);
