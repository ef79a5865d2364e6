-- Accounts. Never edit an applied migration: add a new one.
--
-- `username_key` is the lower-cased username: its UNIQUE constraint makes the
-- database refuse "Alice" when "alice" exists, even under concurrent sign-ups.
-- `auth_version` grows on every password change; sessions and bearer tokens carry
-- the version they were issued under and stop working when it moves on.
-- Instants are milliseconds since the Unix epoch, the same on both backends.
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    username      TEXT    NOT NULL,
    username_key  TEXT    NOT NULL UNIQUE,
    email         TEXT,
    display_name  TEXT,
    password_hash TEXT    NOT NULL,
    is_admin      BIGINT  NOT NULL DEFAULT 0,
    auth_version  BIGINT  NOT NULL DEFAULT 0,
    created_at    BIGINT  NOT NULL
);

-- Secrets the server makes for itself on first start (the JWT signing key), kept
-- in the database so that every process sharing it agrees on them.
CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
