-- Money within bounds, enforced by the database itself: the last line of defence
-- behind the engine's checked arithmetic. No balance or amount may be negative or
-- exceed every bitcoin there will ever be, 21 million BTC =
-- 2,100,000,000,000,000,000 msat (an i64 holds about 4.4 times that, so no sum of
-- two bounded values overflows unnoticed). A statement that would leave a value
-- out of bounds fails, and its transaction with it.
--
-- SQLite cannot add a CHECK to an existing table: each bound is a pair of
-- triggers (insert, update) that abort the statement. They also catch an
-- integer overflow, which SQLite does not report but turns into a REAL far out
-- of bounds. A NULL (an amountless or unpaid invoice) passes, as with a CHECK.

-- The coins created so far (genesis, faucet, demo funding): every mint adds to
-- it in the same transaction, under the same bound, so the network as a whole
-- never holds more than 21 million BTC whatever the faucet is asked.
CREATE TABLE money_supply (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    minted_msat INTEGER NOT NULL CHECK (minted_msat BETWEEN 0 AND 2100000000000000000)
);
INSERT INTO money_supply (id, minted_msat)
SELECT 1, COALESCE(SUM(amount_msat), 0) FROM chain_txs WHERE kind IN ('genesis', 'faucet');

CREATE TRIGGER nodes_msat_bounded_insert BEFORE INSERT ON nodes
WHEN NEW.onchain_msat NOT BETWEEN 0 AND 2100000000000000000
BEGIN SELECT RAISE(ABORT, 'nodes.onchain_msat out of bounds'); END;
CREATE TRIGGER nodes_msat_bounded_update BEFORE UPDATE OF onchain_msat ON nodes
WHEN NEW.onchain_msat NOT BETWEEN 0 AND 2100000000000000000
BEGIN SELECT RAISE(ABORT, 'nodes.onchain_msat out of bounds'); END;

-- Signed: positive received, negative spent.
CREATE TRIGGER chain_txs_msat_bounded_insert BEFORE INSERT ON chain_txs
WHEN NEW.amount_msat NOT BETWEEN -2100000000000000000 AND 2100000000000000000
BEGIN SELECT RAISE(ABORT, 'chain_txs.amount_msat out of bounds'); END;
CREATE TRIGGER chain_txs_msat_bounded_update BEFORE UPDATE OF amount_msat ON chain_txs
WHEN NEW.amount_msat NOT BETWEEN -2100000000000000000 AND 2100000000000000000
BEGIN SELECT RAISE(ABORT, 'chain_txs.amount_msat out of bounds'); END;

CREATE TRIGGER channels_msat_bounded_insert BEFORE INSERT ON channels
WHEN NEW.capacity_msat NOT BETWEEN 1 AND 2100000000000000000
  OR NEW.opener_msat NOT BETWEEN 0 AND 2100000000000000000
  OR NEW.peer_msat NOT BETWEEN 0 AND 2100000000000000000
BEGIN SELECT RAISE(ABORT, 'channels balance out of bounds'); END;
CREATE TRIGGER channels_msat_bounded_update
BEFORE UPDATE OF capacity_msat, opener_msat, peer_msat ON channels
WHEN NEW.capacity_msat NOT BETWEEN 1 AND 2100000000000000000
  OR NEW.opener_msat NOT BETWEEN 0 AND 2100000000000000000
  OR NEW.peer_msat NOT BETWEEN 0 AND 2100000000000000000
BEGIN SELECT RAISE(ABORT, 'channels balance out of bounds'); END;

CREATE TRIGGER invoices_msat_bounded_insert BEFORE INSERT ON invoices
WHEN NEW.amount_msat NOT BETWEEN 1 AND 2100000000000000000
  OR NEW.received_msat NOT BETWEEN 1 AND 2100000000000000000
BEGIN SELECT RAISE(ABORT, 'invoices amount out of bounds'); END;
CREATE TRIGGER invoices_msat_bounded_update
BEFORE UPDATE OF amount_msat, received_msat ON invoices
WHEN NEW.amount_msat NOT BETWEEN 1 AND 2100000000000000000
  OR NEW.received_msat NOT BETWEEN 1 AND 2100000000000000000
BEGIN SELECT RAISE(ABORT, 'invoices amount out of bounds'); END;

CREATE TRIGGER payments_msat_bounded_insert BEFORE INSERT ON payments
WHEN NEW.amount_msat NOT BETWEEN 1 AND 2100000000000000000
  OR NEW.fee_msat NOT BETWEEN 0 AND 2100000000000000000
BEGIN SELECT RAISE(ABORT, 'payments amount out of bounds'); END;
CREATE TRIGGER payments_msat_bounded_update
BEFORE UPDATE OF amount_msat, fee_msat ON payments
WHEN NEW.amount_msat NOT BETWEEN 1 AND 2100000000000000000
  OR NEW.fee_msat NOT BETWEEN 0 AND 2100000000000000000
BEGIN SELECT RAISE(ABORT, 'payments amount out of bounds'); END;
