-- Paged lists read from indexes, newest first, never a whole account.

-- History search: each kind of transaction of a node, newest first, with the
-- reference as the tie-break of equal instants, read straight from an index
-- (the keyset cursor is exactly these columns). The payments index replaces
-- payments_node, of which it is an extension.
CREATE INDEX payments_history ON payments (node, created_at, payment_hash);
DROP INDEX payments_node;
CREATE INDEX invoices_history ON invoices (node, settled_at, payment_hash)
    WHERE settled_at IS NOT NULL;
CREATE INDEX chain_txs_history ON chain_txs (node, created_at, txid);

-- When a channel closed (Unix milliseconds; NULL while it is not closed): the
-- channel list shows the most recently closed ones, and pages through the rest.
-- Channels closed before this column existed count as closed when opened.
ALTER TABLE channels ADD COLUMN closed_at BIGINT;
UPDATE channels SET closed_at = created_at WHERE state = 'closed';
CREATE INDEX channels_opener_closed ON channels (opener, closed_at, point)
    WHERE state = 'closed';
CREATE INDEX channels_peer_closed ON channels (peer, closed_at, point)
    WHERE state = 'closed';
-- The channels not yet closed, without reading past the closed ones (a node
-- anyone may open channels to can have many).
CREATE INDEX channels_opener_live ON channels (opener, created_at)
    WHERE state <> 'closed';
CREATE INDEX channels_peer_live ON channels (peer, created_at)
    WHERE state <> 'closed';
