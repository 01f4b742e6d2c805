-- remit schema, version 8: continuous replication into PostgreSQL (README, "Replication").
--
-- Every write transaction takes the next number of one counter (meta row `change_seq`, bumped
-- under the write lock: once per group commit for the writer, and only when the batch changed
-- a row) and stamps it on the rows it inserts or updates in the tables below. A replica at number P copies the
-- rows stamped above P; the journal and the audit log are append-only and copied by their own
-- ever-growing keys instead. No index on the stamps: finding the changed rows is the
-- replicator's work, on a read connection, never the writer's (see README).
--
-- Rows older than this version are stamped 0: a first copy takes everything.

ALTER TABLE meta ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE escrows ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE spending_categories ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE daily_spend ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE fx_rates ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payment_requests ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payouts ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deposits ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE audit_keys ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_events ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE daraja_queries ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mpesa_balances ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE state_counts ADD COLUMN change_seq INTEGER NOT NULL DEFAULT 0;

-- The counter. Its row carries its own number in `change_seq` (and as text in `value`).
INSERT INTO meta (key, value, change_seq) VALUES ('change_seq', '0', 0);

-- This ledger's id, made once: its rows land under it in PostgreSQL (schema remit_<id>), so
-- that one database holds every kiosk of a pilot. A backup keeps it: it is the same ledger.
INSERT INTO meta (key, value) VALUES ('ledger_id', 'ldg_' || lower(hex(randomblob(10))));

-- The state counts are kept by triggers (schema 6); they now stamp their rows with the number
-- of the escrow or payout row that fired them (its statement stamped it).
DROP TRIGGER state_counts_escrow_insert;
DROP TRIGGER state_counts_escrow_update;
DROP TRIGGER state_counts_payout_insert;
DROP TRIGGER state_counts_payout_update;
CREATE TRIGGER state_counts_escrow_insert AFTER INSERT ON escrows
BEGIN
    INSERT INTO state_counts (entity, status, n, change_seq) VALUES ('escrow', NEW.status, 1, NEW.change_seq)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1, change_seq = excluded.change_seq;
END;
CREATE TRIGGER state_counts_escrow_update AFTER UPDATE OF status ON escrows
    WHEN OLD.status <> NEW.status
BEGIN
    UPDATE state_counts SET n = n - 1, change_seq = NEW.change_seq
        WHERE entity = 'escrow' AND status = OLD.status;
    INSERT INTO state_counts (entity, status, n, change_seq) VALUES ('escrow', NEW.status, 1, NEW.change_seq)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1, change_seq = excluded.change_seq;
END;
CREATE TRIGGER state_counts_payout_insert AFTER INSERT ON payouts
BEGIN
    INSERT INTO state_counts (entity, status, n, change_seq) VALUES ('payout', NEW.status, 1, NEW.change_seq)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1, change_seq = excluded.change_seq;
END;
CREATE TRIGGER state_counts_payout_update AFTER UPDATE OF status ON payouts
    WHEN OLD.status <> NEW.status
BEGIN
    UPDATE state_counts SET n = n - 1, change_seq = NEW.change_seq
        WHERE entity = 'payout' AND status = OLD.status;
    INSERT INTO state_counts (entity, status, n, change_seq) VALUES ('payout', NEW.status, 1, NEW.change_seq)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1, change_seq = excluded.change_seq;
END;
