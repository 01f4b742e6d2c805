-- remit schema, version 17: a webhook endpoint's URL may carry its receiver's own secret (an API
-- key in its query, a token in its path), and was kept in the clear in `webhook_endpoints.url`.
-- It is sealed under the key now, in `url_enc` (`crypto::EncryptedColumn::WebhookUrl`), and
-- `url` keeps only its origin (`https://hooks.example.org:8443`), as the audit log always did
-- (its host). The URLs kept before are sealed at the first open by this version
-- (`store::backfill::webhook_urls`: a migration has no key). Replication leaves these tables out.

ALTER TABLE webhook_endpoints ADD COLUMN url_enc TEXT;
