-- Idempotency keys: a client that retries a payment after a lost answer sends
-- the same `Idempotency-Key` and gets the first outcome back instead of paying
-- twice. One row per (account, key); `fingerprint` is a hash of the request, so
-- the key cannot be reused for a different request. `status` is NULL while the
-- first request still runs (a concurrent retry is told so), then the outcome's
-- HTTP status with its JSON body in `response`.
CREATE TABLE idempotency_keys (
    user_id     TEXT    NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    status      INTEGER,
    response    TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
);

-- Keys are kept a day; the sweep deletes by age.
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
