-- remit schema, version 14: a webhook delivery found by its event. Forgetting an old outbox
-- event (`service::retention`) makes SQLite look for the deliveries that still name it (the
-- foreign key `webhook_deliveries.event_seq`): without an index led by that column, a scan of
-- every delivery for each event forgotten (11.6 s for a window of 500 events beside a million
-- deliveries). Events are numbered in order, so each new delivery's entry lands at the index's
-- end. Only tables that replication leaves out change here (`replicate::source::LEFT_OUT`): a
-- replica is not made again for it.

CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_seq);
