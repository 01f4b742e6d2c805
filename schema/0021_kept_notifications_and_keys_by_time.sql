-- remit schema, version 21: two costs that grew with what the notifier and the idempotency keys
-- keep. Replication leaves both tables out.
--
-- An endpoint's view counts its failed deliveries (`GET /webhook-endpoints`, and an endpoint
-- disabled, enabled or deleted, which the writer answers with its view): the index of failed
-- deliveries by id made SQLite read every delivery the endpoint kept instead, 2 ms per
-- thousand kept (30 days' worth), in the writer's turn for a change.
CREATE INDEX webhook_deliveries_failed_by_endpoint ON webhook_deliveries(endpoint_id)
    WHERE status = 'failed';

-- Idempotency keys kept in the order they came (a table of rows, its rowid their order), their
-- time before their answer. Kept by (user, key) alone, an answer of more than about 1 KiB
-- spilled into a page of its own (twice the space the answers need), and forgetting the expired
-- keys read every key kept, and its spilled page, in the writer's turn: now it walks the oldest
-- rows to the first one still kept (`service::idempotency::purge_expired`).
CREATE TABLE idempotency_keys_by_time (
    user_id     TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    status      INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    body        TEXT NOT NULL,
    UNIQUE (user_id, key)
) STRICT;
-- Copied in the order they were kept (by user and key), not sorted by time: a sort of whole
-- rows, answers and all, is made in memory by a migration (48 hours of a busy kiosk's keys,
-- hundreds of MiB). The purge stops at the first key still kept, so a key copied here is kept
-- until every one copied before it has expired: at most 48 hours longer, once.
INSERT INTO idempotency_keys_by_time (user_id, key, fingerprint, status, created_at, body)
    SELECT user_id, key, fingerprint, status, created_at, body FROM idempotency_keys;
DROP TABLE idempotency_keys;
ALTER TABLE idempotency_keys_by_time RENAME TO idempotency_keys;
