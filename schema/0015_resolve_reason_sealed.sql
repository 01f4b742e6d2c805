-- remit schema, version 15: an admin's words on a payout resolved as failed by hand are sealed
-- like every other text a person types (a request's note, a rejection's reason): they were kept
-- in `payouts.result_desc`, in the clear, beside M-Pesa's own words, and may name the payee ("the
-- number is Jane's old line"). They are now in `resolve_reason_enc`, sealed under the key
-- (`crypto::EncryptedColumn::ResolveReason`), and the view reads them back as `resultDesc`, as
-- before. Reasons recorded before this version stay where they were (a migration has no key).

ALTER TABLE payouts ADD COLUMN resolve_reason_enc TEXT;
