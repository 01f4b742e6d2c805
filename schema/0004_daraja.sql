-- remit schema, version 4: paying through M-Pesa Daraja. An outcome that is not known is
-- resolved by asking (Transaction Status), never by sending again under a new id; a failure
-- result waits for that answer before it returns money; the float is watched.

-- Which gateway sent the payout (`simulator` payouts move no real money).
ALTER TABLE payouts ADD COLUMN gateway TEXT CHECK (gateway IN ('simulator', 'daraja'));
-- When the next Transaction Status query of this payout is due (NULL: none is needed), and how
-- many were sent.
ALTER TABLE payouts ADD COLUMN status_query_due_at TEXT;
ALTER TABLE payouts ADD COLUMN status_queries INTEGER NOT NULL DEFAULT 0 CHECK (status_queries >= 0);
-- A failure result that is applied only once Transaction Status confirms it (a forged failure
-- would return money that was paid).
ALTER TABLE payouts ADD COLUMN failure_to_confirm_code TEXT;
ALTER TABLE payouts ADD COLUMN failure_to_confirm_desc TEXT;
CREATE INDEX payouts_status_query_due ON payouts(status_query_due_at)
    WHERE status_query_due_at IS NOT NULL;

-- The queries sent to Daraja whose results come back to our result URL, found by the
-- ConversationID of their acknowledgement.
CREATE TABLE daraja_queries (
    conversation_id TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('transaction_status', 'account_balance')),
    payout_id       TEXT REFERENCES payouts(id),
    sent_at         TEXT NOT NULL,
    answered_at     TEXT,
    CHECK ((kind = 'transaction_status') = (payout_id IS NOT NULL))
) STRICT;
CREATE INDEX daraja_queries_payout ON daraja_queries(payout_id) WHERE payout_id IS NOT NULL;

-- The M-Pesa account balances last reported (the Utility account pays B2C, the Working account
-- B2B). Amounts in KES cents; a charges account may be negative.
CREATE TABLE mpesa_balances (
    account             TEXT PRIMARY KEY,
    currency            TEXT NOT NULL,
    available_kes_cents INTEGER NOT NULL,
    updated_at          TEXT NOT NULL
) STRICT;
