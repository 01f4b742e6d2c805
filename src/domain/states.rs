//! The closed sets of words remit stores: roles, the states of escrows, requests, payouts and
//! deposits, where money comes from and goes to. Each is an enum with its text form in one
//! place (`as_str`/`FromStr`), read and written as SQLite text, and an `ALL` list that a test
//! holds equal to the values its schema `CHECK` allows.

use std::fmt;

/// A text that is not one of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue(pub String);

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown value {:?}", self.0)
    }
}

impl std::error::Error for UnknownValue {}

/// Defines an enum of stored words: its variants and their text, `ALL`, `as_str`, `FromStr`,
/// `Display`, serde `Serialize` and rusqlite `ToSql`/`FromSql`.
macro_rules! string_enum {
    ($(#[$doc:meta])* $vis:vis enum $name:ident {
        $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+
    }) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the schema lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored and shown word.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses a client-supplied word, naming `field` and the allowed words on error.
            #[allow(dead_code)]
            pub fn parse_field(field: &str, text: &str) -> $crate::error::Result<$name> {
                text.parse().map_err(|_| {
                    let words: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    $crate::error::Error::invalid(
                        field,
                        format!("must be one of {}", words.join(", ")),
                    )
                })
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::UnknownValue;
            fn from_str(text: &str) -> std::result::Result<$name, Self::Err> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err($crate::domain::UnknownValue(other.to_string())),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::Borrowed(
                    rusqlite::types::ValueRef::Text(self.as_str().as_bytes()),
                ))
            }
        }

        impl rusqlite::types::FromSql for $name {
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<$name> {
                value
                    .as_str()?
                    .parse()
                    .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// The four roles of the API.
    pub enum Role {
        /// Puts money in and approves payments on their own escrows.
        Sender = "sender",
        /// Receives: sees their escrows and asks for payments.
        Recipient = "recipient",
        /// A kiosk operator: asks for payments for any recipient, records cash deposits.
        Agent = "agent",
        /// Everything.
        Admin = "admin",
    }
}

string_enum! {
    /// An escrow: `pending_deposit → active → completed | cancelled`.
    pub enum EscrowStatus {
        /// Created; deposits do not cover the total yet.
        PendingDeposit = "pending_deposit",
        /// Funded: payment requests may be made and approved.
        Active = "active",
        /// Nothing remaining and nothing reserved.
        Completed = "completed",
        /// Cancelled by its sender; what was left is refunded.
        Cancelled = "cancelled",
    }
}

string_enum! {
    /// A payment request: `pending_approval → approved → paid | failed`, or `rejected |
    /// cancelled`.
    pub enum RequestStatus {
        /// Waiting for the sender.
        PendingApproval = "pending_approval",
        /// Approved; its payout is on its way.
        Approved = "approved",
        /// Its payout succeeded.
        Paid = "paid",
        /// Its payout failed; the money went back to the category.
        Failed = "failed",
        /// The sender declined it.
        Rejected = "rejected",
        /// Withdrawn by who asked (or with its escrow).
        Cancelled = "cancelled",
        /// Not approved in time: its USD price was fixed at the rate of its day.
        Expired = "expired",
    }
}

impl RequestStatus {
    /// Is this a final state?
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            RequestStatus::PendingApproval | RequestStatus::Approved
        )
    }
}

string_enum! {
    /// A payout: `queued → sent → succeeded | failed`.
    pub enum PayoutStatus {
        /// Waiting for the worker (or for its next attempt).
        Queued = "queued",
        /// Accepted by M-Pesa; its result has not come yet.
        Sent = "sent",
        /// Money moved.
        Succeeded = "succeeded",
        /// No money moved; it went back to the category.
        Failed = "failed",
    }
}

impl PayoutStatus {
    /// Has the payout got its result?
    pub fn has_result(self) -> bool {
        matches!(self, PayoutStatus::Succeeded | PayoutStatus::Failed)
    }
}

string_enum! {
    /// What became of a deposit.
    pub enum DepositStatus {
        /// Counted towards its escrow.
        Applied = "applied",
        /// Recorded but not applied, for the operator (unknown escrow, too much, …).
        Flagged = "flagged",
    }
}

string_enum! {
    /// Where a deposit came from.
    pub enum DepositSource {
        /// A Stripe PaymentIntent (the reference is its `pi_…` id).
        Stripe = "stripe",
        /// Cash or a bank transfer recorded at a kiosk.
        Cash = "cash",
    }
}

string_enum! {
    /// How a merchant is paid.
    pub enum MerchantType {
        /// A PayBill number and an account at the biller.
        Paybill = "paybill",
        /// A Till number.
        Till = "till",
        /// A mobile number.
        Phone = "phone",
    }
}

string_enum! {
    /// The M-Pesa API a payout goes through.
    pub enum PayoutCommand {
        /// Business to customer (a phone).
        B2c = "b2c",
        /// Business to business, `BusinessPayBill`.
        B2bPaybill = "b2b_paybill",
        /// Business to business, `BusinessBuyGoods`.
        B2bTill = "b2b_till",
    }
}

impl MerchantType {
    /// The payout command that pays this kind of account: B2C for phones, B2B for PayBill and
    /// Till.
    pub fn payout_command(self) -> PayoutCommand {
        match self {
            MerchantType::Paybill => PayoutCommand::B2bPaybill,
            MerchantType::Till => PayoutCommand::B2bTill,
            MerchantType::Phone => PayoutCommand::B2c,
        }
    }
}

string_enum! {
    /// How a deposit's money may be taken back by the card network.
    pub enum DepositReversal {
        /// Stripe refunded (part of) the charge.
        Refunded = "refunded",
        /// The cardholder disputed the charge.
        Disputed = "disputed",
    }
}

string_enum! {
    /// Who sent a webhook we received.
    pub enum WebhookSource {
        /// Stripe (deposits).
        Stripe = "stripe",
        /// M-Pesa (payout results).
        Mpesa = "mpesa",
    }
}

string_enum! {
    /// What an outbox event says happened (API.md, "Outgoing notifications").
    pub enum EventType {
        /// Deposits reached the escrow's total.
        EscrowActivated = "escrow.activated",
        /// Nothing remaining and nothing reserved.
        EscrowCompleted = "escrow.completed",
        /// Its sender cancelled it; what was left is refunded.
        EscrowCancelled = "escrow.cancelled",
        /// A payment request waits for its sender's approval.
        PaymentRequestCreated = "payment_request.created",
        /// Its sender approved it; its payout is queued.
        PaymentRequestApproved = "payment_request.approved",
        /// Its sender declined it.
        PaymentRequestRejected = "payment_request.rejected",
        /// It was not approved in time.
        PaymentRequestExpired = "payment_request.expired",
        /// Its payout succeeded.
        PaymentRequestPaid = "payment_request.paid",
        /// Its payout failed; the money went back.
        PaymentRequestFailed = "payment_request.failed",
        /// A deposit was applied to its escrow.
        DepositRecorded = "deposit.recorded",
        /// A deposit arrived that could not be applied (for the operator).
        DepositFlagged = "deposit.flagged",
        /// A payout is stuck (`service::payouts`' one definition).
        PayoutStuck = "payout.stuck",
        /// A paying M-Pesa account went below the float alert.
        FloatLow = "float.low",
    }
}

string_enum! {
    /// A webhook delivery: `pending → delivered | failed`.
    pub enum DeliveryStatus {
        /// Waiting for its next attempt.
        Pending = "pending",
        /// A 2xx answer came.
        Delivered = "delivered",
        /// Its retries ran out (or a retry asked for by an admin failed).
        Failed = "failed",
    }
}

string_enum! {
    /// A text message: `pending → sent | failed`, or `logged` (the `log` gateway sends nothing).
    pub enum SmsStatus {
        /// Waiting to be sent.
        Pending = "pending",
        /// Recorded only: the `log` gateway sends nothing.
        Logged = "logged",
        /// The SMS gateway accepted it.
        Sent = "sent",
        /// The SMS gateway refused it, or its retries ran out.
        Failed = "failed",
    }
}

string_enum! {
    /// Which text a message is.
    pub enum SmsTemplate {
        /// To a sender: a payment request waits for their approval.
        RequestWaiting = "request_waiting",
        /// To a recipient: their payment was paid.
        RequestPaid = "request_paid",
        /// To a recipient: their payment failed and the money went back.
        RequestFailed = "request_failed",
        /// To a sender: a payout they approved is stuck.
        PayoutStuck = "payout_stuck",
    }
}

string_enum! {
    /// The language of a user's text messages.
    pub enum Language {
        /// English (the default).
        En = "en",
        /// Kiswahili.
        Sw = "sw",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Account, Kind};

    /// The quoted words of `CHECK (<column> IN (…))` in the schema of `table`.
    fn allowed(conn: &rusqlite::Connection, table: &str, column: &str) -> Vec<String> {
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        let flat = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        // Either `CHECK (col IN ('a', 'b'))` or (schema 7) `CHECK ((col = 'a' OR col = 'b'))`.
        let start = flat
            .find(&format!("CHECK ({column} IN ("))
            .or_else(|| flat.find(&format!("CHECK (({column} = '")))
            .unwrap_or_else(|| panic!("no CHECK on {table}.{column}"));
        let list = &flat[start..];
        let list = &list[..list.find("))").unwrap()];
        let values: Vec<String> = list
            .split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        // Checked for real too: each value is allowed, a value outside the list is not.
        let expr = format!("{})", &list["CHECK (".len()..]);
        let holds = |v: &str| -> bool {
            let literal = format!("'{}'", v.replace('\'', "''"));
            let sql = format!("SELECT {}", expr.replace(column, &literal));
            conn.query_row(&sql, [], |r| r.get::<_, bool>(0)).unwrap()
        };
        for v in &values {
            assert!(holds(v), "{table}.{column} refuses {v}");
        }
        assert!(!holds("not-a-state"), "{table}.{column} allows anything");
        values
    }

    fn words<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Vec<String> {
        all.iter().map(|v| as_str(*v).to_string()).collect()
    }

    #[test]
    fn every_enum_allows_exactly_what_its_schema_check_allows() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        crate::store::migrate(&mut conn).unwrap();
        let cases: &[(&str, &str, Vec<String>)] = &[
            ("users", "role", words(Role::ALL, Role::as_str)),
            (
                "escrows",
                "status",
                words(EscrowStatus::ALL, EscrowStatus::as_str),
            ),
            (
                "payment_requests",
                "status",
                words(RequestStatus::ALL, RequestStatus::as_str),
            ),
            (
                "payment_requests",
                "merchant_type",
                words(MerchantType::ALL, MerchantType::as_str),
            ),
            (
                "payouts",
                "status",
                words(PayoutStatus::ALL, PayoutStatus::as_str),
            ),
            (
                "payouts",
                "command",
                words(PayoutCommand::ALL, PayoutCommand::as_str),
            ),
            (
                "deposits",
                "status",
                words(DepositStatus::ALL, DepositStatus::as_str),
            ),
            (
                "deposits",
                "source",
                words(DepositSource::ALL, DepositSource::as_str),
            ),
            (
                "deposits",
                "reversal",
                words(DepositReversal::ALL, DepositReversal::as_str),
            ),
            (
                "webhook_events",
                "source",
                words(WebhookSource::ALL, WebhookSource::as_str),
            ),
            ("users", "language", words(Language::ALL, Language::as_str)),
            (
                "outbox_events",
                "type",
                words(EventType::ALL, EventType::as_str),
            ),
            (
                "webhook_deliveries",
                "status",
                words(DeliveryStatus::ALL, DeliveryStatus::as_str),
            ),
            (
                "sms_messages",
                "status",
                words(SmsStatus::ALL, SmsStatus::as_str),
            ),
            (
                "sms_messages",
                "template",
                words(SmsTemplate::ALL, SmsTemplate::as_str),
            ),
            (
                "ledger_transactions",
                "kind",
                words(Kind::ALL, Kind::as_str),
            ),
            (
                "ledger_entries",
                "account",
                words(Account::ALL, Account::as_str),
            ),
        ];
        for (table, column, all) in cases {
            assert_eq!(&allowed(&conn, table, column), all, "{table}.{column}");
        }
    }

    #[test]
    fn no_write_to_a_table_builds_a_temporary_list_to_check_a_constraint() {
        // `x IN ('a', 'b', 'c')` in a CHECK makes SQLite build a B-tree of the list at every
        // write (schema 7 rewrote them as comparisons); a new one would show up here. A fresh
        // connection, as the store opens one after migrating: a connection keeps the schema it
        // parsed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("schema.db");
        crate::store::migrate(&mut rusqlite::Connection::open(&path).unwrap()).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let tables: Vec<String> = conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for table in tables {
            let columns: Vec<String> = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let values = vec!["NULL"; columns.len()].join(", ");
            let plan: Vec<String> = conn
                .prepare(&format!(
                    "EXPLAIN INSERT INTO \"{table}\" VALUES ({values})"
                ))
                .unwrap()
                .query_map([], |r| r.get(1))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert!(
                !plan.iter().any(|op| op == "OpenEphemeral"),
                "an INSERT into {table} builds a temporary table (a CHECK with an IN list?)"
            );
        }
    }

    #[test]
    fn words_round_trip_and_unknown_words_are_refused() {
        for status in PayoutStatus::ALL {
            assert_eq!(status.as_str().parse::<PayoutStatus>(), Ok(*status));
        }
        assert!("settled".parse::<PayoutStatus>().is_err());
        assert!(matches!(
            EscrowStatus::parse_field("status", "open"),
            Err(crate::Error::Validation { field, .. }) if field == "status"
        ));
    }
}
