-- Password reset links sent by e-mail. The link carries a random key; only its
-- SHA-256 is kept. A link works once (`used_at`), until `expires_at`, and only
-- while the account's `auth_version` is the one it was made under (a new
-- password, by any way, voids every older link), and only while the account's
-- e-mail address is the one it was sent to.
CREATE TABLE password_resets (
    key_hash     TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_version INTEGER  NOT NULL,
    email        TEXT    NOT NULL,
    created_at   INTEGER  NOT NULL,
    expires_at   INTEGER  NOT NULL,
    used_at      INTEGER
);
CREATE INDEX password_resets_user ON password_resets (user_id, created_at);
