-- Sign-in through identity providers: an account at Google, Keycloak (OpenID
-- Connect) or GitHub (OAuth 2.0) is one more kind of key an account signs in
-- with, stored as `<provider>:<the provider's subject>`. SQLite cannot change
-- a CHECK: the table is made again with the wider one.
CREATE TABLE linking_keys_next (
    pubkey     TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL
        CHECK (kind IN ('lnurl', 'joule', 'nostr', 'google', 'keycloak', 'github')),
    created_at INTEGER  NOT NULL
);
INSERT INTO linking_keys_next (pubkey, user_id, kind, created_at)
    SELECT pubkey, user_id, kind, created_at FROM linking_keys;
DROP TABLE linking_keys;
ALTER TABLE linking_keys_next RENAME TO linking_keys;
CREATE INDEX linking_keys_user ON linking_keys (user_id);
