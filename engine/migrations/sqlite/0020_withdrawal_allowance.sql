-- How much an account with two-factor codes on has withdrawn without a code in
-- its current day (a window that starts with its first such withdrawal): past
-- the operator's allowance, a withdrawal asks for a code.
CREATE TABLE withdrawal_allowance (
    user_id      TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    window_start BIGINT  NOT NULL,
    spent_msat   BIGINT  NOT NULL CHECK (spent_msat >= 0)
);
