-- Sign-in with Nostr (NIP-98): a Nostr key (32-byte x-only, 64 hex digits) is
-- one more kind of key an account signs in with. SQLite cannot change a CHECK:
-- the table is made again with the wider one.
CREATE TABLE linking_keys_next (
    pubkey     TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('lnurl', 'joule', 'nostr')),
    created_at INTEGER  NOT NULL
);
INSERT INTO linking_keys_next (pubkey, user_id, kind, created_at)
    SELECT pubkey, user_id, kind, created_at FROM linking_keys;
DROP TABLE linking_keys;
ALTER TABLE linking_keys_next RENAME TO linking_keys;
CREATE INDEX linking_keys_user ON linking_keys (user_id);

-- NIP-98 events already accepted (each works once), kept past their 60 s
-- window and then forgotten.
CREATE TABLE nostr_events (
    id          TEXT    PRIMARY KEY,
    accepted_at INTEGER  NOT NULL
);
CREATE INDEX nostr_events_accepted ON nostr_events (accepted_at);
