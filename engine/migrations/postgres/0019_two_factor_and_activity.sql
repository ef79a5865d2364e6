-- Two-factor codes (TOTP): the secret an authenticator app holds, whether it
-- is on (a secret waits off until a first code proves the app has it), and
-- the last 30-second step a code was accepted for: a code works once.
CREATE TABLE two_factor (
    user_id    TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT    NOT NULL,
    enabled    BIGINT  NOT NULL DEFAULT 0,
    last_step  BIGINT  NOT NULL DEFAULT 0,
    created_at BIGINT  NOT NULL
);

-- What happened to an account and from where: sign-in attempts (every way),
-- session ends, password, two-factor and API key changes. Never a secret.
CREATE TABLE activities (
    id         BIGSERIAL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    topic      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    result     TEXT    NOT NULL,
    user_ip    TEXT    NOT NULL,
    user_agent TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE INDEX activities_user ON activities (user_id, created_at);

-- What the exchange identity API (NebulaECN) keeps of a user beyond the
-- account: its free-form `data` (a JSON object) and who referred it.
CREATE TABLE user_data (
    user_id      TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    data         TEXT    NOT NULL,
    referral_uid TEXT,
    updated_at   BIGINT  NOT NULL
);

-- Signed API keys (OpenDAX/Barong style): the secret signs each request
-- (HMAC-SHA256 of nonce and kid), so the server keeps it to check; scopes are
-- read, wallet and trade, comma-separated.
CREATE TABLE api_keys (
    kid        TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    algorithm  TEXT    NOT NULL,
    scope      TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    secret     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- The nonces each key has signed, until they leave the window: each works once.
CREATE TABLE api_key_nonces (
    kid        TEXT    NOT NULL REFERENCES api_keys (kid) ON DELETE CASCADE,
    nonce      BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    PRIMARY KEY (kid, nonce)
);
