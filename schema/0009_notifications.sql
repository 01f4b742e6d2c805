-- remit schema, version 9: notifications out. Every change a person should hear about is an
-- event in the outbox, written by the writer command that makes the change (so an event exists
-- exactly when its change committed). A fan-out step turns new events into webhook deliveries
-- and SMS, advancing its position in the same command as the rows it makes. CHECKs of a set of
-- words are comparisons, never `IN` lists (schema 7 says why).

-- The language of a user's SMS (NULL: English).
ALTER TABLE users ADD COLUMN language TEXT CHECK ((language = 'en' OR language = 'sw'));

-- The outbox. `seq` is the order of commit (one writer); `id` is the event's public id (`evt_…`).
-- `data` is JSON of ids, states and amounts: never a name, a phone or a merchant detail.
CREATE TABLE outbox_events (
    seq        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL,
    type       TEXT NOT NULL CHECK ((type = 'escrow.activated' OR type = 'escrow.completed'
        OR type = 'escrow.cancelled' OR type = 'payment_request.created'
        OR type = 'payment_request.approved' OR type = 'payment_request.rejected'
        OR type = 'payment_request.expired' OR type = 'payment_request.paid'
        OR type = 'payment_request.failed' OR type = 'deposit.recorded'
        OR type = 'deposit.flagged' OR type = 'payout.stuck' OR type = 'float.low')),
    created_at TEXT NOT NULL,
    data       TEXT NOT NULL
) STRICT;

-- How far each reader of the outbox has come: every event with `seq` up to this is done.
CREATE TABLE outbox_positions (
    consumer TEXT PRIMARY KEY CHECK (consumer = 'fanout'),
    seq      INTEGER NOT NULL CHECK (seq >= 0)
) STRICT, WITHOUT ROWID;
INSERT INTO outbox_positions (consumer, seq) VALUES ('fanout', 0);

-- Where events are posted. `events` is a JSON array of event types; the signing secret is
-- sealed like PII. A deleted endpoint is kept (its deliveries name it) but never posted to.
CREATE TABLE webhook_endpoints (
    id         TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    events     TEXT NOT NULL,
    secret_enc TEXT NOT NULL,
    enabled    INTEGER NOT NULL DEFAULT 1 CHECK (enabled = 0 OR enabled = 1),
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
) STRICT;

-- One event for one endpoint. Pending ones have a time for their next attempt; a failure after
-- `retry_until` is final (`failed`).
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints(id),
    event_seq        INTEGER NOT NULL REFERENCES outbox_events(seq),
    status           TEXT NOT NULL CHECK ((status = 'pending' OR status = 'delivered' OR status = 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at  TEXT,
    retry_until      TEXT NOT NULL,
    last_attempt_at  TEXT,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    finished_at      TEXT,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL)),
    -- A fan-out that ran twice would fail here rather than post an event twice.
    UNIQUE (endpoint_id, event_seq)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(endpoint_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries(id) WHERE status = 'failed';

-- Every attempt of a delivery: the HTTP status (NULL when no answer came), how long it took,
-- and what went wrong.
CREATE TABLE webhook_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id),
    n           INTEGER NOT NULL CHECK (n >= 1),
    at          TEXT NOT NULL,
    status_code INTEGER,
    duration_ms INTEGER NOT NULL CHECK (duration_ms >= 0),
    error       TEXT,
    PRIMARY KEY (delivery_id, n)
) STRICT, WITHOUT ROWID;

-- Text messages to users, made from events. The body is sealed; the phone is not stored here
-- (it is read from the user, and decrypted, only to send). With the `log` gateway a message is
-- recorded as `logged` and nothing is sent.
CREATE TABLE sms_messages (
    id              TEXT PRIMARY KEY,
    event_seq       INTEGER NOT NULL REFERENCES outbox_events(seq),
    user_id         TEXT NOT NULL REFERENCES users(id),
    template        TEXT NOT NULL CHECK ((template = 'request_waiting'
        OR template = 'request_paid' OR template = 'request_failed' OR template = 'payout_stuck')),
    language        TEXT NOT NULL CHECK ((language = 'en' OR language = 'sw')),
    body_enc        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK ((status = 'pending' OR status = 'logged'
        OR status = 'sent' OR status = 'failed')),
    gateway         TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at TEXT,
    provider_id     TEXT,
    provider_status TEXT,
    error           TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    CHECK ((status = 'pending') = (next_attempt_at IS NOT NULL)),
    UNIQUE (event_seq, user_id)
) STRICT;
CREATE INDEX sms_messages_due ON sms_messages(next_attempt_at) WHERE status = 'pending';

-- When a payout's `payout.stuck` event was emitted (once per payout).
ALTER TABLE payouts ADD COLUMN stuck_event_at TEXT;
