-- remit schema, version 16: M-Pesa's words on a payout (`ResultDesc`) may name the owner of the
-- number after it ("Credit Party 254722000333 - JANE WAMBUI MUTHONI", "Credit party - JANE").
-- remit masked the number (since 2026-12-03; words kept before then have it whole) and kept the
-- name, in the clear, in `payouts.result_desc` (and `failure_to_confirm_desc`, a failure held
-- for Transaction Status), in the log and in the views. Since this version the name is hidden
-- with the rest of the words after it as they arrive (`Credit Party ***333 - ***`); here the
-- same is done to the words kept before, phones masked first, by the function remit registers
-- for it (`remit_mask_mpesa_words`, `wire::daraja::free_text`), with SQLite's `secure_delete` on
-- so that the old words are not left in the pages' free space where this rewrites them, and
-- each row changed (only those) stamped for the replica.

PRAGMA secure_delete = ON;
UPDATE payouts SET change_seq = remit_change_seq(),
    result_desc = remit_mask_mpesa_words(result_desc)
    WHERE result_desc IS NOT remit_mask_mpesa_words(result_desc);
UPDATE payouts SET change_seq = remit_change_seq(),
    failure_to_confirm_desc = remit_mask_mpesa_words(failure_to_confirm_desc)
    WHERE failure_to_confirm_desc IS NOT remit_mask_mpesa_words(failure_to_confirm_desc);
PRAGMA secure_delete = OFF;
