-- remit schema, version 24: M-Pesa's words on a payout may name the owner of a PayBill or Till
-- after its number ("Credit Party 888880 - MAMA MBOGA KIOSK account ACC-77123 is invalid"): a
-- till may be a person's, and the merchant's name is sealed everywhere else. Schema 16 hid a
-- name after a phone or after "credit party"; since this version a name after a number of five
-- to eight digits is hidden too, as the words arrive (`wire::daraja::payee_name_hidden`). Here
-- the same is done to the words kept before, by the function schema 16 uses
-- (`remit_mask_mpesa_words`, which now has this rule), with SQLite's `secure_delete` on, each row
-- changed (only those) stamped for the replica. No table changes shape: a replica made at schema
-- 23 is kept (`replicate::source::MIGRATIONS_LEFT_OUT`), and the rows changed reach it as any
-- change does.

PRAGMA secure_delete = ON;
UPDATE payouts SET change_seq = remit_change_seq(),
    result_desc = remit_mask_mpesa_words(result_desc)
    WHERE result_desc IS NOT remit_mask_mpesa_words(result_desc);
UPDATE payouts SET change_seq = remit_change_seq(),
    failure_to_confirm_desc = remit_mask_mpesa_words(failure_to_confirm_desc)
    WHERE failure_to_confirm_desc IS NOT remit_mask_mpesa_words(failure_to_confirm_desc);
PRAGMA secure_delete = OFF;
