-- Access control lists (the LNbits ACLs): named sets of "METHOD /path" patterns
-- that bound what their tokens may call. `endpoints` holds the patterns one per
-- line, as validated when saved. Deleting an ACL deletes its tokens.
CREATE TABLE acls (
    id         TEXT    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    endpoints  TEXT    NOT NULL,
    created_at INTEGER  NOT NULL
);
CREATE INDEX acls_user ON acls (user_id, created_at);

-- The tokens of an ACL: a row per token that still works (revoking deletes it).
-- `auth_version` is the account's at issue: a password change voids the token.
CREATE TABLE acl_tokens (
    id           TEXT    PRIMARY KEY,
    acl_id       TEXT    NOT NULL REFERENCES acls (id) ON DELETE CASCADE,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_version INTEGER  NOT NULL,
    created_at   INTEGER  NOT NULL
);
CREATE INDEX acl_tokens_acl ON acl_tokens (acl_id, created_at);

-- A withdraw link made with an ACL token names it: the link dies with the
-- token (revoked, or its ACL deleted), as one made with a scoped token does.
ALTER TABLE desk_lnurl_withdrawals ADD COLUMN acl_token_id TEXT;
