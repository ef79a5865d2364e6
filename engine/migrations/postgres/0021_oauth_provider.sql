-- Ampere as an OAuth 2.0 provider (the Lime flows). Clients are registered by
-- the operator (`ampere oauth-client add`); their secrets, the codes and the
-- access tokens are stored as SHA-256 hashes only.
CREATE TABLE oauth_clients (
    id            TEXT    PRIMARY KEY,
    name          TEXT    NOT NULL,
    secret_hash   TEXT    NOT NULL,
    redirect_urls TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

-- An application a user authorised: what the security page lists and revokes.
CREATE TABLE oauth_grants (
    id           TEXT    PRIMARY KEY,
    client_id    TEXT    NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes       TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    last_used_at BIGINT  NOT NULL,
    UNIQUE (client_id, user_id)
);
CREATE INDEX oauth_grants_user ON oauth_grants (user_id);

-- Authorization codes: five minutes, once, under the password they were
-- granted under (`auth_version`).
CREATE TABLE oauth_codes (
    code_hash        TEXT    PRIMARY KEY,
    client_id        TEXT    NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri     TEXT    NOT NULL,
    scopes           TEXT    NOT NULL,
    challenge        TEXT,
    challenge_method TEXT,
    auth_version     BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL,
    used_at          BIGINT
);

-- Access tokens: 24 hours from their last use; `code_hash` names the code a
-- token was issued for (a replayed code revokes it), `auth_version` the
-- password it was issued under.
CREATE TABLE oauth_tokens (
    token_hash   TEXT    PRIMARY KEY,
    grant_id     TEXT    NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    scopes       TEXT    NOT NULL,
    code_hash    TEXT,
    auth_version BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);
CREATE INDEX oauth_tokens_code ON oauth_tokens (code_hash);

-- A person's profile (the identity API's `profiles`, the provider's
-- `/userinfo` names): one per account.
CREATE TABLE profiles (
    user_id    TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    first_name TEXT    NOT NULL DEFAULT '',
    last_name  TEXT    NOT NULL DEFAULT '',
    dob        TEXT,
    address    TEXT    NOT NULL DEFAULT '',
    postcode   TEXT    NOT NULL DEFAULT '',
    city       TEXT    NOT NULL DEFAULT '',
    country    TEXT    NOT NULL DEFAULT '',
    state      TEXT    NOT NULL DEFAULT 'drafted',
    metadata   TEXT    NOT NULL DEFAULT '{}',
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
