-- Sign-in with Nostr (NIP-98): a Nostr key (32-byte x-only, 64 hex digits) is
-- one more kind of key an account signs in with.
ALTER TABLE linking_keys DROP CONSTRAINT linking_keys_kind_check;
ALTER TABLE linking_keys ADD CONSTRAINT linking_keys_kind_check
    CHECK (kind IN ('lnurl', 'joule', 'nostr'));

-- NIP-98 events already accepted (each works once), kept past their 60 s
-- window and then forgotten.
CREATE TABLE nostr_events (
    id          TEXT    PRIMARY KEY,
    accepted_at BIGINT  NOT NULL
);
CREATE INDEX nostr_events_accepted ON nostr_events (accepted_at);
