-- Money within bounds, enforced by the database itself: the last line of defence
-- behind the engine's checked arithmetic. No balance or amount may be negative or
-- exceed every bitcoin there will ever be, 21 million BTC =
-- 2,100,000,000,000,000,000 msat (an i64 holds about 4.4 times that, so no sum of
-- two bounded values overflows unnoticed). A statement that would leave a value
-- out of bounds fails, and its transaction with it.

-- The coins created so far (genesis, faucet, demo funding): every mint adds to
-- it in the same transaction, under the same bound, so the network as a whole
-- never holds more than 21 million BTC whatever the faucet is asked.
CREATE TABLE money_supply (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    minted_msat BIGINT NOT NULL CHECK (minted_msat BETWEEN 0 AND 2100000000000000000)
);
INSERT INTO money_supply (id, minted_msat)
SELECT 1, COALESCE(SUM(amount_msat), 0) FROM chain_txs WHERE kind IN ('genesis', 'faucet');

ALTER TABLE nodes ADD CONSTRAINT nodes_onchain_msat_bounded
    CHECK (onchain_msat BETWEEN 0 AND 2100000000000000000);
-- Signed: positive received, negative spent.
ALTER TABLE chain_txs ADD CONSTRAINT chain_txs_amount_msat_bounded
    CHECK (amount_msat BETWEEN -2100000000000000000 AND 2100000000000000000);
ALTER TABLE channels ADD CONSTRAINT channels_msat_bounded
    CHECK (capacity_msat BETWEEN 1 AND 2100000000000000000
       AND opener_msat BETWEEN 0 AND 2100000000000000000
       AND peer_msat BETWEEN 0 AND 2100000000000000000);
-- NULL (an amountless or unpaid invoice) passes: a CHECK refuses only false.
ALTER TABLE invoices ADD CONSTRAINT invoices_msat_bounded
    CHECK (amount_msat BETWEEN 1 AND 2100000000000000000
       AND received_msat BETWEEN 1 AND 2100000000000000000);
ALTER TABLE payments ADD CONSTRAINT payments_msat_bounded
    CHECK (amount_msat BETWEEN 1 AND 2100000000000000000
       AND fee_msat BETWEEN 0 AND 2100000000000000000);
