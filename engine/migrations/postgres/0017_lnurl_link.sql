-- Linking a Lightning wallet's key to a signed-in account (LNURL-auth,
-- LUD-04 `action=link`): the challenge names the account; a wallet's answer
-- uses it up once, before it expires.
CREATE TABLE lnurl_link_challenges (
    k1         TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at BIGINT  NOT NULL,
    linked_key TEXT
);
CREATE INDEX lnurl_link_challenges_expiry ON lnurl_link_challenges (expires_at);
