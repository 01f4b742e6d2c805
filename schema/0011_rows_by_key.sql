-- remit schema, version 11: the ledger's three largest keyed tables keep their rows in the
-- order of their key (`WITHOUT ROWID`). A rowid table keyed by a text id is two B-trees: the
-- key's index gives the rowid, the table gives the row. An approval on an escrow of a large
-- ledger read both for its escrow, its category and its recipient (the text message's
-- language): six pages the cache cannot hold at a million escrows, now three (README,
-- "As the ledger grows"). The rows are small (90 to 270 bytes), as `WITHOUT ROWID` wants.
--
-- Each table is made again with the same columns, in the same order, and the same constraints
-- (https://sqlite.org/lang_altertable.html#otheralter): foreign keys are off while a migration
-- runs and checked before it commits. The rows keep their stamps (`change_seq`): a replica is
-- made again after any schema change. Statements stamp these tables with
-- `remit_change_seq_of(table, id)` from now on, so that the change log hears their keys
-- (SQLite's update hook does not report a `WITHOUT ROWID` table).

CREATE TABLE users_by_key (
    id          TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK ((role = 'sender' OR role = 'recipient' OR role = 'agent' OR role = 'admin')),
    name_enc    TEXT NOT NULL,
    phone_enc   TEXT,
    phone_index TEXT UNIQUE,
    created_at  TEXT NOT NULL,
    change_seq  INTEGER NOT NULL DEFAULT 0,
    language    TEXT CHECK ((language = 'en' OR language = 'sw')),
    CHECK ((phone_enc IS NULL) = (phone_index IS NULL))
) STRICT, WITHOUT ROWID;
INSERT INTO users_by_key (id, role, name_enc, phone_enc, phone_index, created_at, change_seq, language)
    SELECT id, role, name_enc, phone_enc, phone_index, created_at, change_seq, language
    FROM users ORDER BY id;
DROP TABLE users;
ALTER TABLE users_by_key RENAME TO users;

CREATE TABLE escrows_by_key (
    id                    TEXT PRIMARY KEY,
    sender_id             TEXT NOT NULL REFERENCES users(id),
    recipient_id          TEXT NOT NULL REFERENCES users(id),
    status                TEXT NOT NULL
        CHECK ((status = 'pending_deposit' OR status = 'active' OR status = 'completed' OR status = 'cancelled')),
    total_usd_cents       INTEGER NOT NULL CHECK (total_usd_cents > 0),
    deposited_usd_cents   INTEGER NOT NULL DEFAULT 0,
    remaining_usd_cents   INTEGER NOT NULL DEFAULT 0,
    reserved_usd_cents    INTEGER NOT NULL DEFAULT 0,
    spent_usd_cents       INTEGER NOT NULL DEFAULT 0,
    refunded_usd_cents    INTEGER NOT NULL DEFAULT 0,
    daily_limit_usd_cents INTEGER CHECK (daily_limit_usd_cents IS NULL OR daily_limit_usd_cents > 0),
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    recipient_name_enc    TEXT,
    flag_reason           TEXT,
    short_ref             TEXT CHECK (short_ref IS NULL OR length(short_ref) = 8),
    change_seq            INTEGER NOT NULL DEFAULT 0,
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
) STRICT, WITHOUT ROWID;
INSERT INTO escrows_by_key (id, sender_id, recipient_id, status, total_usd_cents,
        deposited_usd_cents, remaining_usd_cents, reserved_usd_cents, spent_usd_cents,
        refunded_usd_cents, daily_limit_usd_cents, created_at, updated_at, recipient_name_enc,
        flag_reason, short_ref, change_seq)
    SELECT id, sender_id, recipient_id, status, total_usd_cents,
        deposited_usd_cents, remaining_usd_cents, reserved_usd_cents, spent_usd_cents,
        refunded_usd_cents, daily_limit_usd_cents, created_at, updated_at, recipient_name_enc,
        flag_reason, short_ref, change_seq
    FROM escrows ORDER BY id;
DROP TABLE escrows;
ALTER TABLE escrows_by_key RENAME TO escrows;
CREATE INDEX escrows_sender ON escrows(sender_id, id);
CREATE INDEX escrows_recipient ON escrows(recipient_id, id);
CREATE INDEX escrows_status ON escrows(status, id);
CREATE UNIQUE INDEX escrows_short_ref ON escrows(short_ref) WHERE short_ref IS NOT NULL;
CREATE INDEX escrows_short_ref_missing ON escrows(id) WHERE short_ref IS NULL;
CREATE INDEX escrows_flagged ON escrows(id) WHERE flag_reason IS NOT NULL;
CREATE TRIGGER state_counts_escrow_insert AFTER INSERT ON escrows
BEGIN
    INSERT INTO state_counts (entity, status, n, change_seq) VALUES ('escrow', NEW.status, 1, NEW.change_seq)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1, change_seq = excluded.change_seq;
END;
CREATE TRIGGER state_counts_escrow_update AFTER UPDATE OF status ON escrows
    WHEN OLD.status <> NEW.status
BEGIN
    UPDATE state_counts SET n = n - 1, change_seq = NEW.change_seq
        WHERE entity = 'escrow' AND status = OLD.status;
    INSERT INTO state_counts (entity, status, n, change_seq) VALUES ('escrow', NEW.status, 1, NEW.change_seq)
        ON CONFLICT (entity, status) DO UPDATE SET n = n + 1, change_seq = excluded.change_seq;
END;

CREATE TABLE spending_categories_by_key (
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
    change_seq          INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT category_remaining_nonnegative CHECK (remaining_usd_cents >= 0),
    CONSTRAINT category_reserved_nonnegative CHECK (reserved_usd_cents >= 0),
    CONSTRAINT category_spent_nonnegative CHECK (spent_usd_cents >= 0),
    CONSTRAINT category_refunded_nonnegative CHECK (refunded_usd_cents >= 0),
    CONSTRAINT category_balances_sum CHECK (
        remaining_usd_cents + reserved_usd_cents + spent_usd_cents + refunded_usd_cents
            = funded * allocated_usd_cents),
    UNIQUE (escrow_id, name),
    UNIQUE (escrow_id, position)
) STRICT, WITHOUT ROWID;
INSERT INTO spending_categories_by_key (id, escrow_id, position, name, allocated_usd_cents,
        funded, remaining_usd_cents, reserved_usd_cents, spent_usd_cents, refunded_usd_cents,
        change_seq)
    SELECT id, escrow_id, position, name, allocated_usd_cents,
        funded, remaining_usd_cents, reserved_usd_cents, spent_usd_cents, refunded_usd_cents,
        change_seq
    FROM spending_categories ORDER BY id;
DROP TABLE spending_categories;
ALTER TABLE spending_categories_by_key RENAME TO spending_categories;
