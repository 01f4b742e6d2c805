-- remit schema, version 12: a token that a sender gave their recipient
-- (`POST /escrows/:id/recipient-token`) opens that sender's escrows only. It was given while
-- the recipient received from that sender alone, but a token opened every escrow of its
-- holder: once a second sender made an escrow to the same phone, whoever held the first
-- sender's token (the sender, until they hand it over) read the second sender's escrow, its
-- typed name, its merchants and notes. A token an admin issues (`POST /users/:id/tokens`,
-- `remit token issue`, `remit user add`) keeps `sender_scope` NULL and opens all of them.

ALTER TABLE api_tokens ADD COLUMN sender_scope TEXT REFERENCES users(id);

-- Tokens given before this version are scoped from the audit line that gave them: the
-- sender's `token.issued` line names the escrow (an admin's names none).
UPDATE api_tokens SET sender_scope = (
    SELECT a.actor FROM audit_log a
    WHERE a.action = 'token.issued' AND a.entity = api_tokens.user_id
      AND json_extract(a.details, '$.prefix') = api_tokens.prefix
      AND json_extract(a.details, '$.escrowId') IS NOT NULL
      AND a.actor LIKE 'usr\_%' ESCAPE '\'
    ORDER BY a.seq LIMIT 1
);
