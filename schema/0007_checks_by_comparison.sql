-- remit schema, version 7: the same CHECK constraints, written as comparisons. SQLite
-- evaluates `x IN ('a', 'b', 'c')` — three or more constants — by building a temporary B-tree
-- for the list at every INSERT or UPDATE that checks it; an approval checked eight of them,
-- about a third of its CPU. `x = 'a' OR x = 'b' OR x = 'c'` allows exactly the same values
-- (a test holds every state enum against its CHECK) and costs a few comparisons.
--
-- A CHECK constraint is only schema text: every stored row already satisfies the equivalent
-- form, so the text is changed in place, as SQLite documents for changing constraints
-- (https://sqlite.org/lang_altertable.html#otheralter), instead of copying the tables. The
-- creation and removal of `_schema_bump` at the end changes the schema cookie, so every other
-- connection reloads the schema; the migrating connection is reopened after migrations.
PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql = replace(sql, 'status IN (''pending_deposit'', ''active'', ''completed'', ''cancelled'')', '(status = ''pending_deposit'' OR status = ''active'' OR status = ''completed'' OR status = ''cancelled'')')
    WHERE type = 'table' AND name = 'escrows';
UPDATE sqlite_schema SET sql = replace(sql, 'account IN (''world:deposits'', ''escrow:unfunded'',
        ''escrow:refunded'', ''available'', ''reserved'', ''spent'', ''refunded'')', '(account = ''world:deposits'' OR account = ''escrow:unfunded'' OR account = ''escrow:refunded'' OR account = ''available'' OR account = ''reserved'' OR account = ''spent'' OR account = ''refunded'')')
    WHERE type = 'table' AND name = 'ledger_entries';
UPDATE sqlite_schema SET sql = replace(sql, 'account IN (''world:deposits'', ''escrow:unfunded'', ''escrow:refunded'')', '(account = ''world:deposits'' OR account = ''escrow:unfunded'' OR account = ''escrow:refunded'')')
    WHERE type = 'table' AND name = 'ledger_entries';
UPDATE sqlite_schema SET sql = replace(sql, 'kind IN (''deposit'', ''activation'', ''approval'',
        ''payout_succeeded'', ''payout_failed'', ''cancellation'')', '(kind = ''deposit'' OR kind = ''activation'' OR kind = ''approval'' OR kind = ''payout_succeeded'' OR kind = ''payout_failed'' OR kind = ''cancellation'')')
    WHERE type = 'table' AND name = 'ledger_transactions';
UPDATE sqlite_schema SET sql = replace(sql, 'status IN
        (''pending_approval'', ''approved'', ''paid'', ''failed'', ''rejected'', ''cancelled'', ''expired'')', '(status = ''pending_approval'' OR status = ''approved'' OR status = ''paid'' OR status = ''failed'' OR status = ''rejected'' OR status = ''cancelled'' OR status = ''expired'')')
    WHERE type = 'table' AND name = 'payment_requests';
UPDATE sqlite_schema SET sql = replace(sql, 'merchant_type IN (''paybill'', ''till'', ''phone'')', '(merchant_type = ''paybill'' OR merchant_type = ''till'' OR merchant_type = ''phone'')')
    WHERE type = 'table' AND name = 'payment_requests';
UPDATE sqlite_schema SET sql = replace(sql, 'status IN (''queued'', ''sent'', ''succeeded'', ''failed'')', '(status = ''queued'' OR status = ''sent'' OR status = ''succeeded'' OR status = ''failed'')')
    WHERE type = 'table' AND name = 'payouts';
UPDATE sqlite_schema SET sql = replace(sql, 'command IN (''b2c'', ''b2b_paybill'', ''b2b_till'')', '(command = ''b2c'' OR command = ''b2b_paybill'' OR command = ''b2b_till'')')
    WHERE type = 'table' AND name = 'payouts';
UPDATE sqlite_schema SET sql = replace(sql, 'role IN (''sender'', ''recipient'', ''agent'', ''admin'')', '(role = ''sender'' OR role = ''recipient'' OR role = ''agent'' OR role = ''admin'')')
    WHERE type = 'table' AND name = 'users';
PRAGMA writable_schema = OFF;
CREATE TABLE _schema_bump (x INTEGER);
DROP TABLE _schema_bump;
