-- The futures desk: positions on the inverse BTC/USD contract, and the recent
-- history of the price they trade at. Margins and P&L are whole sats, prices
-- integer cents, leverages ten-thousandths; instants are Unix ms. A position's
-- margin left the trading balance when it was made (a limit order's too): the
-- books count the margins of pending and open positions.

CREATE TABLE desk_positions (
    -- The spec's numeric `id`; `pid` is the one clients name.
    id                BIGSERIAL PRIMARY KEY,
    pid               TEXT    NOT NULL UNIQUE,
    user_id           TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- `m` market, `l` limit.
    kind              TEXT    NOT NULL CHECK (kind IN ('m', 'l')),
    side              TEXT    NOT NULL CHECK (side IN ('b', 's')),
    -- `pending`: a limit order not yet filled. Each change of state is an
    -- UPDATE conditioned on the state before, so it happens once.
    state             TEXT    NOT NULL CHECK (state IN ('pending', 'open', 'closed', 'canceled')),
    quantity          BIGINT  NOT NULL CHECK (quantity BETWEEN 1 AND 1000000000),
    margin            BIGINT  NOT NULL CHECK (margin BETWEEN 1 AND 2100000000000000),
    leverage          BIGINT  NOT NULL CHECK (leverage > 0),
    -- The entry price (a limit order's price until it fills).
    price_cents       BIGINT  NOT NULL CHECK (price_cents > 0),
    -- NULL: no price liquidates it (a short at leverage 1).
    liquidation_cents BIGINT,
    takeprofit_cents  BIGINT  CHECK (takeprofit_cents > 0),
    stoploss_cents    BIGINT  CHECK (stoploss_cents > 0),
    exit_cents        BIGINT,
    pl                BIGINT,
    closed_by         TEXT    CHECK (closed_by IN ('manual', 'takeprofit', 'stoploss', 'liquidation')),
    created_at        BIGINT  NOT NULL,
    filled_at         BIGINT,
    closed_at         BIGINT,
    canceled_at       BIGINT
);
CREATE INDEX desk_positions_user ON desk_positions (user_id, id);
-- An account's open positions and pending orders (counted at every opening,
-- listed by default), apart from its history, which only grows.
CREATE INDEX desk_positions_user_open ON desk_positions (user_id)
    WHERE state IN ('pending', 'open');
-- The tick's trigger index: what the reference price reaches, per side, among
-- the positions it can reach. A tick reads ranges of these, never the table.
-- Positions without a trigger of a kind are not in its index (most have no
-- take-profit or stop-loss), so the indexes stay small and a settlement
-- touches only those it is in.
CREATE INDEX desk_positions_liquidation ON desk_positions (side, liquidation_cents)
    WHERE state = 'open' AND liquidation_cents IS NOT NULL;
CREATE INDEX desk_positions_takeprofit ON desk_positions (side, takeprofit_cents)
    WHERE state = 'open' AND takeprofit_cents IS NOT NULL;
CREATE INDEX desk_positions_stoploss ON desk_positions (side, stoploss_cents)
    WHERE state = 'open' AND stoploss_cents IS NOT NULL;
CREATE INDEX desk_positions_limit ON desk_positions (side, price_cents)
    WHERE state = 'pending';

-- The quotes: every tick of the last hour, the first of each minute (`minute`
-- 1) for two days.
CREATE TABLE desk_prices (
    at_ms       BIGINT  PRIMARY KEY,
    index_cents BIGINT  NOT NULL,
    bid_cents   BIGINT  NOT NULL,
    offer_cents BIGINT  NOT NULL,
    minute      BIGINT  NOT NULL CHECK (minute IN (0, 1))
);
CREATE INDEX desk_prices_minute ON desk_prices (minute, at_ms);
