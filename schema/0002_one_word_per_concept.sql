-- remit schema, version 2: one word per concept (see the glossary in src/domain/mod.rs).
-- A rate is KES per USD x 10^4 everywhere; a payout gets its result, it is never "settled".
ALTER TABLE payment_requests RENAME COLUMN rate_e4 TO rate_kes_per_usd_e4;
ALTER TABLE fx_rates RENAME COLUMN rate_e4 TO rate_kes_per_usd_e4;
ALTER TABLE payouts RENAME COLUMN settled_at TO result_at;
