-- Throttles: how many attempts one subject (a username, an account, a client
-- address, or '' for everyone) made of one kind ("scope") within its window.
-- Kept here rather than in each process's memory so that every server process
-- on this database counts the same attempts.
--
-- One row per (scope, subject): counting locks that row (an upsert), so two
-- processes can never both take the last free attempt. `attempts` holds the
-- instants (Unix milliseconds, oldest first, space-separated) of the attempts
-- still in the window, never more than the scope's limit of them, so a row stays
-- small. `expires_at` is when its newest attempt leaves the window: past it the
-- row counts for nothing and the sweep deletes it, which bounds the table by the
-- subjects active within one window (a flood of random usernames included).
CREATE TABLE throttles (
    scope      TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    attempts   TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, subject)
);

CREATE INDEX throttles_by_expiry ON throttles (expires_at);
