-- remit schema, version 13: an escrow's journal (`GET /escrows/:id/journal`, the web UI's
-- "Where the money went") reads its escrow's transactions by an index, not by scanning every
-- transaction of the ledger from the page's cursor on: at a million escrows the scan read
-- millions of rows for each page, and any sender could ask for it over and over. The price is
-- one index entry per journal transaction (an approval's and its payout's land side by side,
-- under the same escrow).

CREATE INDEX ledger_transactions_escrow ON ledger_transactions(escrow_id, id);
