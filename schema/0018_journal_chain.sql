-- remit schema, version 18: an escrow's journal is a chain, newest first, instead of an index.
-- Schema 13's index `ledger_transactions(escrow_id, id)` took an entry at a random place for
-- every journal transaction: at a million escrows its pages were the writer's most read and
-- the checkpointer's most written (README, "As the ledger grows"), more than the escrows' own.
-- Now each transaction names the one before it in its escrow (`prev_id`), and the escrow names
-- its newest (`escrows.last_transaction_id`), a row every journal transaction changes anyway:
-- `GET /escrows/:id/journal` walks the chain from the escrow by the transactions' own key, and
-- `remit check` holds every chain to its escrow's transactions in order.
--
-- The transactions kept before are chained here, once (the journal's append-only guard is lifted
-- for that one statement and put back as it was); the index they are chained by goes last. The
-- rows keep their stamps (`change_seq`), as in schema 11: this migration changes replicated
-- tables, so every replica is made again after it (it must never be listed in
-- `replicate::source::MIGRATIONS_LEFT_OUT`).

ALTER TABLE ledger_transactions ADD COLUMN prev_id INTEGER CHECK (prev_id < id);
ALTER TABLE escrows ADD COLUMN last_transaction_id INTEGER;

DROP TRIGGER ledger_transactions_append_only_update;
UPDATE ledger_transactions SET prev_id = (
    SELECT MAX(p.id) FROM ledger_transactions p
    WHERE p.escrow_id = ledger_transactions.escrow_id AND p.id < ledger_transactions.id);
CREATE TRIGGER ledger_transactions_append_only_update BEFORE UPDATE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;

UPDATE escrows SET last_transaction_id = (
    SELECT MAX(t.id) FROM ledger_transactions t WHERE t.escrow_id = escrows.id);

DROP INDEX ledger_transactions_escrow;
