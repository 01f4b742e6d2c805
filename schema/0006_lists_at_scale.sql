-- remit schema, version 6: the operator's lists stay fast as the ledger grows. The rows they
-- look for are rare (flagged or reversed deposits, flagged payouts), so each gets a small
-- partial index instead of a walk through every row.
CREATE INDEX deposits_flagged ON deposits(id) WHERE status = 'flagged';
CREATE INDEX deposits_reversed ON deposits(id) WHERE reversal IS NOT NULL;
CREATE INDEX payouts_flagged ON payouts(id) WHERE flagged = 1;
CREATE INDEX escrows_flagged ON escrows(id) WHERE flag_reason IS NOT NULL;

-- How many escrows and payouts are in each state, kept by triggers in the transaction that
-- changes a state, so that /metrics reads a few rows instead of counting a million.
CREATE TABLE state_counts (
    entity TEXT NOT NULL CHECK (entity IN ('escrow', 'payout')),
    status TEXT NOT NULL,
    n      INTEGER NOT NULL CHECK (n >= 0),
    PRIMARY KEY (entity, status)
) STRICT, WITHOUT ROWID;
INSERT INTO state_counts (entity, status, n)
    SELECT 'escrow', status, COUNT(*) FROM escrows GROUP BY status;
INSERT INTO state_counts (entity, status, n)
    SELECT 'payout', status, COUNT(*) FROM payouts GROUP BY status;

CREATE TRIGGER state_counts_escrow_insert AFTER INSERT ON escrows
BEGIN
    INSERT INTO state_counts (entity, status, n) VALUES ('escrow', NEW.status, 1)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER state_counts_escrow_update AFTER UPDATE OF status ON escrows
    WHEN OLD.status <> NEW.status
BEGIN
    UPDATE state_counts SET n = n - 1 WHERE entity = 'escrow' AND status = OLD.status;
    INSERT INTO state_counts (entity, status, n) VALUES ('escrow', NEW.status, 1)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER state_counts_payout_insert AFTER INSERT ON payouts
BEGIN
    INSERT INTO state_counts (entity, status, n) VALUES ('payout', NEW.status, 1)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER state_counts_payout_update AFTER UPDATE OF status ON payouts
    WHEN OLD.status <> NEW.status
BEGIN
    UPDATE state_counts SET n = n - 1 WHERE entity = 'payout' AND status = OLD.status;
    INSERT INTO state_counts (entity, status, n) VALUES ('payout', NEW.status, 1)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1;
END;
