-- remit schema, version 16: M-Pesa's words on a payout (`ResultDesc`) may name the owner of the
-- number after it ("Credit Party 254722000333 - JANE WAMBUI MUTHONI", "Credit party - JANE").
-- remit masked the number and kept the name, in the clear, in `payouts.result_desc` (and
-- `failure_to_confirm_desc`, a failure held for Transaction Status), in the log and in the
-- views. Since this version the name is hidden with the rest of the text after it as the words
-- arrive (`Credit Party ***333 - ***`); here the same is done to the words kept before, by the
-- function remit registers for it (`remit_hide_payee_name`, `wire::daraja::payee_name_hidden`),
-- with SQLite's `secure_delete` on so that the old words are not left in the pages' free space,
-- and each row changed stamped for the replica.
-- Backups made before keep the names: a restored copy has them hidden at its first open.

PRAGMA secure_delete = ON;
UPDATE payouts SET change_seq = remit_change_seq(), result_desc = remit_hide_payee_name(result_desc)
    WHERE result_desc LIKE '%-%';
UPDATE payouts SET change_seq = remit_change_seq(),
    failure_to_confirm_desc = remit_hide_payee_name(failure_to_confirm_desc)
    WHERE failure_to_confirm_desc LIKE '%-%';
PRAGMA secure_delete = OFF;
