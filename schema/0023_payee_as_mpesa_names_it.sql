-- remit schema, version 23: the payee as M-Pesa's result of a paid payout names it
-- (`ReceiverPartyPublicName`: "888880 - KENYA POWER PREPAID", "254712345678 - JANE WANJIKU"),
-- sealed under the key like every name (`crypto::EncryptedColumn::PayeeName`). The payee's name on
-- a request is the one its requester typed (a kiosk agent may type "Kenya Power" for a phone of
-- their own): the view shows M-Pesa's beside it (`mpesaPayeeName`), so that the sender sees whom
-- M-Pesa paid. Payouts paid before this version have none.

ALTER TABLE payouts ADD COLUMN payee_name_enc TEXT;
