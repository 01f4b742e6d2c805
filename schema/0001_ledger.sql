-- remit schema, version 1: the ledger, its journal and audit chain, users and tokens,
-- payouts and webhooks. Money is INTEGER minor units; rates are KES per USD x 10^4.
-- Timestamps are RFC 3339 UTC text. Every table is STRICT.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('sender', 'recipient', 'agent', 'admin')),
    name_enc    TEXT NOT NULL,
    phone_enc   TEXT,
    phone_index TEXT UNIQUE,
    created_at  TEXT NOT NULL,
    CHECK ((phone_enc IS NULL) = (phone_index IS NULL))
) STRICT;

CREATE TABLE api_tokens (
    token_hash   BLOB PRIMARY KEY CHECK (length(token_hash) = 32),
    prefix       TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id),
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
) STRICT;
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE escrows (
    id                    TEXT PRIMARY KEY,
    sender_id             TEXT NOT NULL REFERENCES users(id),
    recipient_id          TEXT NOT NULL REFERENCES users(id),
    status                TEXT NOT NULL
        CHECK (status IN ('pending_deposit', 'active', 'completed', 'cancelled')),
    total_usd_cents       INTEGER NOT NULL CHECK (total_usd_cents > 0),
    deposited_usd_cents   INTEGER NOT NULL DEFAULT 0,
    remaining_usd_cents   INTEGER NOT NULL DEFAULT 0,
    reserved_usd_cents    INTEGER NOT NULL DEFAULT 0,
    spent_usd_cents       INTEGER NOT NULL DEFAULT 0,
    refunded_usd_cents    INTEGER NOT NULL DEFAULT 0,
    daily_limit_usd_cents INTEGER CHECK (daily_limit_usd_cents IS NULL OR daily_limit_usd_cents > 0),
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    CONSTRAINT escrow_deposited_range
        CHECK (deposited_usd_cents >= 0 AND deposited_usd_cents <= total_usd_cents),
    CONSTRAINT escrow_remaining_nonnegative CHECK (remaining_usd_cents >= 0),
    CONSTRAINT escrow_reserved_nonnegative CHECK (reserved_usd_cents >= 0),
    CONSTRAINT escrow_spent_nonnegative CHECK (spent_usd_cents >= 0),
    CONSTRAINT escrow_refunded_nonnegative CHECK (refunded_usd_cents >= 0),
    -- Before activation the four balances are empty and deposits wait unfunded; once active
    -- they sum to the total; a cancelled escrow's balances sum to what was deposited.
    CONSTRAINT escrow_balances_sum CHECK (
        CASE status
            WHEN 'pending_deposit' THEN
                remaining_usd_cents + reserved_usd_cents + spent_usd_cents + refunded_usd_cents = 0
                AND deposited_usd_cents < total_usd_cents
            WHEN 'cancelled' THEN
                remaining_usd_cents + reserved_usd_cents + spent_usd_cents + refunded_usd_cents
                    = deposited_usd_cents
            ELSE
                deposited_usd_cents = total_usd_cents
                AND remaining_usd_cents + reserved_usd_cents + spent_usd_cents + refunded_usd_cents
                    = total_usd_cents
        END)
) STRICT;
CREATE INDEX escrows_sender ON escrows(sender_id, id);
CREATE INDEX escrows_recipient ON escrows(recipient_id, id);
CREATE INDEX escrows_status ON escrows(status, id);

CREATE TABLE spending_categories (
    id                  TEXT PRIMARY KEY,
    escrow_id           TEXT NOT NULL REFERENCES escrows(id),
    position            INTEGER NOT NULL CHECK (position >= 0),
    name                TEXT NOT NULL,
    allocated_usd_cents INTEGER NOT NULL CHECK (allocated_usd_cents > 0),
    funded              INTEGER NOT NULL DEFAULT 0 CHECK (funded IN (0, 1)),
    remaining_usd_cents INTEGER NOT NULL DEFAULT 0,
    reserved_usd_cents  INTEGER NOT NULL DEFAULT 0,
    spent_usd_cents     INTEGER NOT NULL DEFAULT 0,
    refunded_usd_cents  INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT category_remaining_nonnegative CHECK (remaining_usd_cents >= 0),
    CONSTRAINT category_reserved_nonnegative CHECK (reserved_usd_cents >= 0),
    CONSTRAINT category_spent_nonnegative CHECK (spent_usd_cents >= 0),
    CONSTRAINT category_refunded_nonnegative CHECK (refunded_usd_cents >= 0),
    CONSTRAINT category_balances_sum CHECK (
        remaining_usd_cents + reserved_usd_cents + spent_usd_cents + refunded_usd_cents
            = funded * allocated_usd_cents),
    UNIQUE (escrow_id, name),
    UNIQUE (escrow_id, position)
) STRICT;

CREATE TABLE daily_spend (
    escrow_id          TEXT NOT NULL REFERENCES escrows(id),
    day                TEXT NOT NULL,
    approved_usd_cents INTEGER NOT NULL CHECK (approved_usd_cents >= 0),
    limit_usd_cents    INTEGER NOT NULL CHECK (limit_usd_cents > 0),
    PRIMARY KEY (escrow_id, day),
    CONSTRAINT daily_limit CHECK (approved_usd_cents <= limit_usd_cents)
) STRICT, WITHOUT ROWID;

CREATE TABLE fx_rates (
    pair        TEXT PRIMARY KEY CHECK (pair = 'USD-KES'),
    rate_e4     INTEGER NOT NULL CHECK (rate_e4 > 0),
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
) STRICT;

CREATE TABLE payment_requests (
    id                   TEXT PRIMARY KEY,
    escrow_id            TEXT NOT NULL REFERENCES escrows(id),
    category_id          TEXT NOT NULL REFERENCES spending_categories(id),
    requested_by         TEXT NOT NULL REFERENCES users(id),
    status               TEXT NOT NULL CHECK (status IN
        ('pending_approval', 'approved', 'paid', 'failed', 'rejected', 'cancelled')),
    amount_kes_cents     INTEGER NOT NULL CHECK (amount_kes_cents > 0),
    amount_usd_cents     INTEGER NOT NULL CHECK (amount_usd_cents > 0),
    rate_e4              INTEGER NOT NULL CHECK (rate_e4 > 0),
    merchant_type        TEXT NOT NULL CHECK (merchant_type IN ('paybill', 'till', 'phone')),
    merchant_name_enc    TEXT NOT NULL,
    merchant_account_enc TEXT NOT NULL,
    note_enc             TEXT,
    decided_by           TEXT REFERENCES users(id),
    decided_at           TEXT,
    decision_reason_enc  TEXT,
    approved_day         TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    CHECK ((status = 'pending_approval') = (decided_at IS NULL))
) STRICT;
CREATE INDEX payment_requests_escrow ON payment_requests(escrow_id, id);

CREATE TABLE payouts (
    id                         TEXT PRIMARY KEY,
    payment_request_id         TEXT NOT NULL UNIQUE REFERENCES payment_requests(id),
    escrow_id                  TEXT NOT NULL REFERENCES escrows(id),
    status                     TEXT NOT NULL
        CHECK (status IN ('queued', 'sent', 'succeeded', 'failed')),
    command                    TEXT NOT NULL CHECK (command IN ('b2c', 'b2b_paybill', 'b2b_till')),
    amount_kes_cents           INTEGER NOT NULL CHECK (amount_kes_cents > 0),
    amount_usd_cents           INTEGER NOT NULL CHECK (amount_usd_cents > 0),
    originator_conversation_id TEXT NOT NULL UNIQUE,
    conversation_id            TEXT UNIQUE,
    receipt                    TEXT UNIQUE,
    result_code                TEXT,
    result_desc                TEXT,
    attempts                   INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at            TEXT,
    flagged                    INTEGER NOT NULL DEFAULT 0 CHECK (flagged IN (0, 1)),
    flag_reason                TEXT,
    created_at                 TEXT NOT NULL,
    sent_at                    TEXT,
    settled_at                 TEXT,
    updated_at                 TEXT NOT NULL,
    CHECK ((status = 'succeeded') = (receipt IS NOT NULL)),
    CHECK ((status IN ('succeeded', 'failed')) = (settled_at IS NOT NULL))
) STRICT;
-- Few indexes on purpose: every index an approval touches at a random place costs a page
-- written to the WAL at each commit. Lists by status filter rows instead.
CREATE INDEX payouts_status ON payouts(status, id);

CREATE TABLE deposits (
    id               TEXT PRIMARY KEY,
    escrow_id        TEXT REFERENCES escrows(id),
    source           TEXT NOT NULL CHECK (source IN ('stripe', 'cash')),
    reference        TEXT NOT NULL,
    amount_usd_cents INTEGER NOT NULL CHECK (amount_usd_cents > 0),
    status           TEXT NOT NULL CHECK (status IN ('applied', 'flagged')),
    flag_reason      TEXT,
    recorded_by      TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    UNIQUE (source, reference),
    CHECK ((status = 'applied') = (escrow_id IS NOT NULL AND flag_reason IS NULL))
) STRICT;
CREATE INDEX deposits_escrow ON deposits(escrow_id);

-- The double-entry journal. A journal transaction's entries sum to zero. Accounts:
-- world:deposits (money in), escrow:unfunded (deposits waiting for the total),
-- escrow:refunded (unfunded deposits returned on cancel), and per category
-- available / reserved / spent / refunded.
CREATE TABLE ledger_transactions (
    id         INTEGER PRIMARY KEY,
    escrow_id  TEXT NOT NULL REFERENCES escrows(id),
    kind       TEXT NOT NULL CHECK (kind IN ('deposit', 'activation', 'approval',
        'payout_succeeded', 'payout_failed', 'cancellation')),
    reference  TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE ledger_entries (
    id               INTEGER PRIMARY KEY,
    transaction_id   INTEGER NOT NULL REFERENCES ledger_transactions(id),
    escrow_id        TEXT NOT NULL REFERENCES escrows(id),
    category_id      TEXT REFERENCES spending_categories(id),
    account          TEXT NOT NULL CHECK (account IN ('world:deposits', 'escrow:unfunded',
        'escrow:refunded', 'available', 'reserved', 'spent', 'refunded')),
    amount_usd_cents INTEGER NOT NULL CHECK (amount_usd_cents <> 0),
    CHECK ((category_id IS NULL) = (account IN ('world:deposits', 'escrow:unfunded', 'escrow:refunded')))
) STRICT;
CREATE INDEX ledger_entries_transaction ON ledger_entries(transaction_id);

CREATE TRIGGER ledger_transactions_append_only_update BEFORE UPDATE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER ledger_transactions_append_only_delete BEFORE DELETE ON ledger_transactions
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER ledger_entries_append_only_update BEFORE UPDATE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER ledger_entries_append_only_delete BEFORE DELETE ON ledger_entries
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;

-- Keys of the audit chain: each starts at a sequence number and is stored wrapped under
-- the master key (see README, key rotation).
CREATE TABLE audit_keys (
    from_seq INTEGER PRIMARY KEY CHECK (from_seq >= 1),
    key_enc  TEXT NOT NULL
) STRICT;

-- One line per state change, chained: mac = HMAC(audit key, prev_mac || canonical line).
CREATE TABLE audit_log (
    seq      INTEGER PRIMARY KEY CHECK (seq >= 1),
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    entity   TEXT NOT NULL,
    details  TEXT NOT NULL,
    prev_mac BLOB NOT NULL,
    mac      BLOB NOT NULL
) STRICT;
CREATE INDEX audit_log_entity ON audit_log(entity, seq);

CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;

CREATE TABLE webhook_events (
    id          TEXT PRIMARY KEY,
    source      TEXT NOT NULL CHECK (source IN ('stripe', 'mpesa')),
    dedupe_key  TEXT NOT NULL,
    payload_enc TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    deliveries  INTEGER NOT NULL DEFAULT 1 CHECK (deliveries >= 1),
    received_at TEXT NOT NULL,
    last_at     TEXT NOT NULL,
    UNIQUE (source, dedupe_key)
) STRICT;

CREATE TABLE idempotency_keys (
    user_id     TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT, WITHOUT ROWID;
