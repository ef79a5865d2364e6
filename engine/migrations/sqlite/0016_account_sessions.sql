-- The account's signed-in browsers: one row per sign-in, named by a random
-- handle its session carries. A session whose row is gone is signed out at
-- its next request (ending one session, or all the others, from the
-- security page). Rows of an older password (auth_version) no longer count.
CREATE TABLE account_sessions (
    handle       TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_version INTEGER  NOT NULL,
    created_at   INTEGER  NOT NULL,
    seen_at      INTEGER  NOT NULL,
    address      TEXT    NOT NULL,
    user_agent   TEXT    NOT NULL
);
CREATE INDEX account_sessions_user ON account_sessions (user_id);
CREATE INDEX account_sessions_seen ON account_sessions (seen_at);
