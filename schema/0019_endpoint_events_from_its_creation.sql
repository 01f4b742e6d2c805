-- remit schema, version 19: an endpoint receives the events that come after it is created. The
-- fan-out turns events into deliveries in batches, behind the commits that made them; an endpoint
-- created while it had a backlog was given the events of the backlog too, made before it
-- existed. `after_seq` is the outbox's newest event when the endpoint was made (the newest event
-- is never forgotten, so the sequence never goes back); the fan-out skips what is not after it.
-- Endpoints made before this version keep 0 (every event not yet fanned out, as before).
-- Replication leaves this table out.

ALTER TABLE webhook_endpoints ADD COLUMN after_seq INTEGER NOT NULL DEFAULT 0 CHECK (after_seq >= 0);
