-- remit schema, version 5: what a kiosk needs. An escrow has a short code a person can read
-- out and type (its deposit reference); a cash deposit has a receipt number remit makes, and
-- may be taken in shillings at the day's rate.

-- 8 characters of 23456789ABCDEFGHJKLMNPQRSTUVWXYZ; filled in for older escrows when the key
-- is at hand (the backfill), made with each new one.
ALTER TABLE escrows ADD COLUMN short_ref TEXT CHECK (short_ref IS NULL OR length(short_ref) = 8);
CREATE UNIQUE INDEX escrows_short_ref ON escrows(short_ref) WHERE short_ref IS NOT NULL;
-- The escrows still without one (empty once the backfill ran: opening stays cheap).
CREATE INDEX escrows_short_ref_missing ON escrows(id) WHERE short_ref IS NULL;

-- The receipt number printed for a cash deposit (NULL for card deposits and older ones).
ALTER TABLE deposits ADD COLUMN receipt_number TEXT;
CREATE UNIQUE INDEX deposits_receipt_number ON deposits(receipt_number)
    WHERE receipt_number IS NOT NULL;
-- A cash deposit taken in KES: the shillings received and the rate they were converted at
-- (USD cents = floor(KES cents × 10⁴ / rate), never in the platform's disfavour).
ALTER TABLE deposits ADD COLUMN amount_kes_cents INTEGER CHECK (amount_kes_cents IS NULL OR amount_kes_cents > 0);
ALTER TABLE deposits ADD COLUMN rate_kes_per_usd_e4 INTEGER
    CHECK ((rate_kes_per_usd_e4 IS NULL) = (amount_kes_cents IS NULL) AND (rate_kes_per_usd_e4 IS NULL OR rate_kes_per_usd_e4 > 0));
