-- Sign-ins through identity providers under way: one row per start, named by
-- the SHA-256 of its `state` and bound to the browser that started it (the
-- SHA-256 of its `provider_flow` cookie). The provider's answer uses it up
-- once, within 10 minutes.
CREATE TABLE provider_flows (
    state_hash   TEXT    PRIMARY KEY,
    browser_hash TEXT    NOT NULL,
    provider     TEXT    NOT NULL,
    verifier     TEXT    NOT NULL,
    nonce        TEXT,
    link_to      TEXT    REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT  NOT NULL
);
CREATE INDEX provider_flows_created ON provider_flows (created_at);
