-- Coins minted to wallets of accounts since deleted. Deleting an account (only
-- when its wallet is empty) deletes its node's chain history, faucet receipts
-- included; the supply's audit adds this back so that every coin ever minted
-- is still counted once.
ALTER TABLE money_supply ADD COLUMN retired_msat INTEGER NOT NULL DEFAULT 0
    CHECK (retired_msat BETWEEN 0 AND 2100000000000000000);

-- The same for the desk: a deleted trader's settled deposits, withdrawals and
-- the house's result against them leave with their rows; these keep the books'
-- figures (`Desk::audit`) what they were.
ALTER TABLE desk_house ADD COLUMN retired_received_msat INTEGER NOT NULL DEFAULT 0
    CHECK (retired_received_msat BETWEEN 0 AND 2100000000000000000);
ALTER TABLE desk_house ADD COLUMN retired_withdrawn_msat INTEGER NOT NULL DEFAULT 0
    CHECK (retired_withdrawn_msat BETWEEN 0 AND 2100000000000000000);
