-- remit schema, version 3: payment requests expire; an escrow keeps the recipient's name as its
-- own sender typed it; Stripe refunds and disputes of applied deposits are recorded and flag
-- the escrow for the operator.

-- A request may now be `expired` (a final state: decided by the clock, by nobody) once its
-- `expires_at` passes (72 hours after it was made, for requests made before this version). SQLite
-- cannot change a CHECK in place, so the table is rebuilt (the migration runner turns foreign
-- keys off around it and checks them before it commits).
CREATE TABLE payment_requests_v3 (
    id                   TEXT PRIMARY KEY,
    escrow_id            TEXT NOT NULL REFERENCES escrows(id),
    category_id          TEXT NOT NULL REFERENCES spending_categories(id),
    requested_by         TEXT NOT NULL REFERENCES users(id),
    status               TEXT NOT NULL CHECK (status IN
        ('pending_approval', 'approved', 'paid', 'failed', 'rejected', 'cancelled', 'expired')),
    amount_kes_cents     INTEGER NOT NULL CHECK (amount_kes_cents > 0),
    amount_usd_cents     INTEGER NOT NULL CHECK (amount_usd_cents > 0),
    rate_kes_per_usd_e4  INTEGER NOT NULL CHECK (rate_kes_per_usd_e4 > 0),
    merchant_type        TEXT NOT NULL CHECK (merchant_type IN ('paybill', 'till', 'phone')),
    merchant_name_enc    TEXT NOT NULL,
    merchant_account_enc TEXT NOT NULL,
    note_enc             TEXT,
    decided_by           TEXT REFERENCES users(id),
    decided_at           TEXT,
    decision_reason_enc  TEXT,
    approved_day         TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    expires_at           TEXT NOT NULL,
    CHECK ((status = 'pending_approval') = (decided_at IS NULL)),
    CHECK (status <> 'expired' OR decided_by IS NULL)
) STRICT;
INSERT INTO payment_requests_v3 (id, escrow_id, category_id, requested_by, status, amount_kes_cents,
    amount_usd_cents, rate_kes_per_usd_e4, merchant_type, merchant_name_enc, merchant_account_enc,
    note_enc, decided_by, decided_at, decision_reason_enc, approved_day, created_at, updated_at,
    expires_at)
SELECT id, escrow_id, category_id, requested_by, status, amount_kes_cents, amount_usd_cents,
    rate_kes_per_usd_e4, merchant_type, merchant_name_enc, merchant_account_enc, note_enc,
    decided_by, decided_at, decision_reason_enc, approved_day, created_at, updated_at,
    strftime('%Y-%m-%dT%H:%M:%SZ', created_at, '+72 hours')
FROM payment_requests;
DROP TABLE payment_requests;
ALTER TABLE payment_requests_v3 RENAME TO payment_requests;
CREATE INDEX payment_requests_escrow ON payment_requests(escrow_id, id);
-- Only the requests still waiting: small, and the expiry sweep reads it in expiry order.
CREATE INDEX payment_requests_waiting ON payment_requests(expires_at)
    WHERE status = 'pending_approval';

-- The recipient's name as this escrow's sender typed it (encrypted, bound to the escrow): a
-- sender never sees the name another sender typed for the same phone. Filled for older
-- escrows when the database is opened.
ALTER TABLE escrows ADD COLUMN recipient_name_enc TEXT;

-- Why the operator must look at this escrow (a deposit of it was refunded or disputed).
ALTER TABLE escrows ADD COLUMN flag_reason TEXT;

-- A Stripe refund or dispute of a deposit that was applied: its money may be taken back.
ALTER TABLE deposits ADD COLUMN reversal TEXT CHECK (reversal IN ('refunded', 'disputed'));
ALTER TABLE deposits ADD COLUMN reversal_reason TEXT;
ALTER TABLE deposits ADD COLUMN reversal_at TEXT;
