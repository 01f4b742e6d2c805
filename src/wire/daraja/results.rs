//! The results Daraja posts to our result URL: those the simulator writes (B2C and B2B
//! results, queue timeouts, and what the tests' fake Daraja adds: Transaction Status and
//! Account Balance results), and what remit reads from a Transaction Status or Account Balance
//! result.

use super::{Callback, CallbackKind};
use crate::error::{Error, Result};
use crate::money::KesCents;
use serde_json::{json, Value};

/// The `ReferenceData` Daraja adds to every result.
fn reference_data(extra: Option<(&str, Value)>) -> Value {
    let timeout = json!({"Key": "QueueTimeoutURL", "Value": "https://internal.example/timeout"});
    match extra {
        Some((key, value)) => json!({"ReferenceItem": [{"Key": key, "Value": value}, timeout]}),
        None => json!({"ReferenceItem": timeout}),
    }
}

/// A B2C `Result` that paid: `TransactionAmount` in whole KES, the receipt twice, and the phone
/// paid with its holder's name when given, as Daraja sends it.
pub fn b2c_success(
    originator: &str,
    conversation: &str,
    receipt: &str,
    amount: KesCents,
    phone: Option<&str>,
) -> Value {
    let mut body = json!({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": originator, "ConversationID": conversation, "TransactionID": receipt,
        "ResultParameters": {"ResultParameter": [
            {"Key": "TransactionAmount", "Value": amount.get() / 100},
            {"Key": "TransactionReceipt", "Value": receipt},
            {"Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y"},
            {"Key": "TransactionCompletedDateTime", "Value": crate::time::now_rfc3339()}]},
        "ReferenceData": reference_data(None)}});
    if let (Some(phone), Some(Value::Array(items))) = (
        phone,
        body.pointer_mut("/Result/ResultParameters/ResultParameter"),
    ) {
        items.push(json!({"Key": "ReceiverPartyPublicName", "Value": format!("{phone} - SIMULATED PAYEE")}));
    }
    body
}

/// A B2B `Result` that paid: codes as strings and `Amount` as `"1500.00"`, as Daraja sends it.
pub fn b2b_success(
    originator: &str,
    conversation: &str,
    receipt: &str,
    amount: KesCents,
    payee_number: &str,
    bill_reference: Option<&str>,
) -> Value {
    json!({"Result": {"ResultType": "0", "ResultCode": "0", "ResultDesc": "The service request is processed successfully",
        "OriginatorConversationID": originator, "ConversationID": conversation, "TransactionID": receipt,
        "ResultParameters": {"ResultParameter": [
            {"Key": "Amount", "Value": format!("{}.00", amount.get() / 100)},
            {"Key": "ReceiverPartyPublicName", "Value": format!("{payee_number} - SIMULATED PAYEE")},
            {"Key": "DebitPartyCharges", "Value": ""},
            {"Key": "Currency", "Value": "KES"}]},
        "ReferenceData": reference_data(Some(("BillReferenceNumber", json!(bill_reference))))}})
}

/// A B2C `Result` that failed (2040: the recipient cannot be paid by this service).
pub fn b2c_failure(originator: &str, conversation: &str) -> Value {
    json!({"Result": {"ResultType": 0, "ResultCode": 2040,
        "ResultDesc": "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service.",
        "OriginatorConversationID": originator, "ConversationID": conversation, "TransactionID": "TCE0000000",
        "ReferenceData": reference_data(None)}})
}

/// A B2B `Result` that failed on the payee's side (`SFC_IC0003`: the receiving party is not
/// one M-Pesa can pay; the simulator's failure, so that a demo's refund reads as the merchant's
/// account, not as the kiosk's M-Pesa settings, which 2001 would blame).
pub fn b2b_failure(originator: &str, conversation: &str) -> Value {
    json!({"Result": {"ResultType": 0, "ResultCode": "SFC_IC0003", "ResultDesc": "Operator does not exist.",
        "OriginatorConversationID": originator, "ConversationID": conversation, "TransactionID": "TCE0000000",
        "ResultParameters": {"ResultParameter": {"Key": "BOCompletedTime", "Value": 20251125103902_i64}},
        "ReferenceData": reference_data(None)}})
}

/// What Daraja posts to the `QueueTimeOutURL` when a request timed out in its queue.
pub fn queue_timeout(originator: &str, conversation: &str) -> Value {
    json!({"Result": {"ResultType": 0, "ResultCode": 1,
        "ResultDesc": "The service request timed out in the queue.",
        "OriginatorConversationID": originator, "ConversationID": conversation,
        "TransactionID": "TCE0000000"}})
}

/// A Transaction Status result (posted for the query whose acknowledgement had
/// `query_conversation`), about the payment our `original` OriginatorConversationID named.
pub fn status_result(
    query_conversation: &str,
    original: &str,
    receipt: &str,
    transaction_status: &str,
    amount: KesCents,
) -> Value {
    json!({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": format!("q-{original}"), "ConversationID": query_conversation,
        "TransactionID": receipt,
        "ResultParameters": {"ResultParameter": [
            {"Key": "DebitPartyName", "Value": "600998 - Safaricom Test"},
            {"Key": "CreditPartyName", "Value": "254712345678 - JANE"},
            {"Key": "OriginatorConversationID", "Value": original},
            {"Key": "InitiatedTime", "Value": 20250314102100_i64},
            {"Key": "DebitAccountType", "Value": "Utility Account"},
            {"Key": "DebitPartyCharges", "Value": ""},
            {"Key": "TransactionReason"},
            {"Key": "ReasonType", "Value": "Business Payment to Customer via API"},
            {"Key": "TransactionStatus", "Value": transaction_status},
            {"Key": "FinalisedTime", "Value": 20250314102107_i64},
            {"Key": "Amount", "Value": amount.get() / 100},
            {"Key": "ConversationID", "Value": "AG_20250314_00000000000000000000"},
            {"Key": "ReceiptNo", "Value": receipt}]},
        "ReferenceData": reference_data(None)}})
}

/// A result that refuses a query (wrong credentials, a busy system…): `code` is not 0.
pub fn query_error(query_conversation: &str, code: &str, desc: &str) -> Value {
    json!({"Result": {"ResultType": 0, "ResultCode": code, "ResultDesc": desc,
        "OriginatorConversationID": "q-error", "ConversationID": query_conversation,
        "TransactionID": "TCE0000000", "ReferenceData": reference_data(None)}})
}

/// An Account Balance result: `accounts` as (name, KES cents).
pub fn balance_result(query_conversation: &str, accounts: &[(&str, i64)]) -> Value {
    let balances: Vec<String> = accounts
        .iter()
        .map(|(name, cents)| {
            let amount = crate::money::Decimal::of_minor(*cents, 2);
            let amount = serde_json::to_string(&amount).unwrap_or_default();
            format!("{name}|KES|{amount}|{amount}|0.00|0.00")
        })
        .collect();
    json!({"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "The service request is processed successfully.",
        "OriginatorConversationID": "q-balance", "ConversationID": query_conversation,
        "TransactionID": "TCE0000000",
        "ResultParameters": {"ResultParameter": [
            {"Key": "AccountBalance", "Value": balances.join("&")},
            {"Key": "BOCompletedTime", "Value": 20250314102107_i64}]},
        "ReferenceData": reference_data(None)}})
}

/// What a Transaction Status result says of the payment it was asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusAnswer {
    /// `TransactionStatus` `Completed`: the money moved; its receipt.
    Completed {
        /// `ReceiptNo` (or the result's `TransactionID`).
        receipt: String,
        /// `Amount`, if named.
        amount: Option<KesCents>,
        /// `CreditPartyName`, the payee as M-Pesa names it, if named.
        payee: Option<String>,
    },
    /// The transaction is known and did not complete (`TransactionStatus` other than
    /// `Completed`).
    NotCompleted {
        /// The status M-Pesa gave.
        status: String,
    },
    /// The query itself was refused or failed (`ResultCode` not 0): it says nothing about the
    /// payment.
    QueryFailed {
        /// `ResultCode`.
        code: String,
        /// `ResultDesc`.
        desc: String,
    },
}

/// `TransactionStatus` words for a transaction M-Pesa has not finished.
const IN_PROGRESS: [&str; 7] = [
    "Pending",
    "Processing",
    "In Progress",
    "InProgress",
    "Submitted",
    "Queued",
    "Initiated",
];

/// Reads a Transaction Status result.
pub fn status_answer(result: &Callback) -> StatusAnswer {
    let refused = |code: String| StatusAnswer::QueryFailed {
        code,
        desc: result.desc.clone(),
    };
    match &result.kind {
        CallbackKind::Success(transaction_id) => {
            let status = result.parameter_text("TransactionStatus");
            match status.as_deref() {
                Some(s) if s.eq_ignore_ascii_case("Completed") => {
                    let receipt = result
                        .parameter_text("ReceiptNo")
                        .or_else(|| transaction_id.clone());
                    match receipt {
                        Some(receipt) if super::plausible_receipt(&receipt) => {
                            StatusAnswer::Completed {
                                receipt,
                                amount: super::kes_cents(result.parameter("Amount")),
                                payee: result.parameter_text("CreditPartyName"),
                            }
                        }
                        Some(_) => refused("a ReceiptNo that is not an M-Pesa receipt".into()),
                        None => refused("no ReceiptNo".into()),
                    }
                }
                // Not finished yet: it says nothing final, so the payout is asked about again
                // rather than failed (its money could still go out).
                Some(s) if IN_PROGRESS.iter().any(|p| p.eq_ignore_ascii_case(s.trim())) => {
                    refused(format!("TransactionStatus {s}: not finished"))
                }
                Some(other) => StatusAnswer::NotCompleted {
                    status: other.to_string(),
                },
                None => refused("no TransactionStatus".into()),
            }
        }
        CallbackKind::Failure(code) => refused(code.clone()),
        CallbackKind::QueueTimeout => refused("queue timeout".into()),
        CallbackKind::Unknown(why) => refused(why.clone()),
    }
}

/// One account of an Account Balance result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountBalance {
    /// `Utility Account`, `Working Account`, …
    pub name: String,
    /// `KES`.
    pub currency: String,
    /// The available balance in cents (negative for a charges account).
    pub available_cents: i64,
}

/// Most accounts one balance result may name.
const ACCOUNTS_MAX: usize = 16;
/// Longest account name kept.
const ACCOUNT_NAME_BYTES_MAX: usize = 64;

/// Reads an Account Balance result: `AccountBalance` is
/// `Working Account|KES|46713.00|46713.00|0.00|0.00&Utility Account|KES|…`; the fourth column is
/// taken as the available balance (the columns' meaning is not confirmed by Daraja's pages).
pub fn account_balances(result: &Callback) -> Result<Vec<AccountBalance>> {
    if let CallbackKind::Failure(code) = &result.kind {
        return Err(Error::invalid(
            "ResultCode",
            format!("the balance query was refused ({code}: {})", result.desc),
        ));
    }
    let text = result
        .parameter_text("AccountBalance")
        .ok_or_else(|| Error::invalid("AccountBalance", "is missing"))?;
    let accounts: Vec<&str> = text.split('&').filter(|a| !a.trim().is_empty()).collect();
    if accounts.len() > ACCOUNTS_MAX {
        return Err(Error::invalid("AccountBalance", "names too many accounts"));
    }
    accounts
        .into_iter()
        .map(|account| {
            let columns: Vec<&str> = account.split('|').map(str::trim).collect();
            let (Some(name), Some(currency), Some(available)) =
                (columns.first(), columns.get(1), columns.get(3))
            else {
                return Err(Error::invalid(
                    "AccountBalance",
                    "has an account without its columns",
                ));
            };
            // The name becomes a metrics label and a log word: plain words only.
            let plain = |s: &str, max: usize| {
                !s.is_empty()
                    && s.len() <= max
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b" -_.()".contains(&b))
            };
            if !plain(name, ACCOUNT_NAME_BYTES_MAX) || !plain(currency, 3) {
                return Err(Error::invalid(
                    "AccountBalance",
                    "has an account name or currency that is not plain words",
                ));
            }
            let (negative, digits) = match available.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, *available),
            };
            let cents = crate::money::parse_major("AccountBalance", digits, 2)?;
            Ok(AccountBalance {
                name: name.to_string(),
                currency: currency.to_string(),
                available_cents: if negative { -cents } else { cents },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::daraja::parse_callback;

    #[test]
    fn a_status_result_says_completed_with_its_receipt_or_not() {
        let kes = KesCents::new(150_000).unwrap();
        let done = parse_callback(
            &status_result("AG_Q", "orig1", "TCE5QX1ABC", "Completed", kes),
            false,
        )
        .unwrap();
        assert_eq!(
            status_answer(&done),
            StatusAnswer::Completed {
                receipt: "TCE5QX1ABC".into(),
                amount: Some(kes),
                payee: Some("254712345678 - JANE".into()),
            }
        );
        let failed = parse_callback(
            &status_result("AG_Q", "orig1", "TCE0000000", "Failed", kes),
            false,
        )
        .unwrap();
        assert_eq!(
            status_answer(&failed),
            StatusAnswer::NotCompleted {
                status: "Failed".into()
            }
        );
        let refused = parse_callback(
            &query_error("AG_Q", "2001", "The initiator information is invalid."),
            false,
        )
        .unwrap();
        assert!(
            matches!(status_answer(&refused), StatusAnswer::QueryFailed { code, .. } if code == "2001")
        );
        // A transaction not finished yet is not failed: its money could still go out.
        let pending = parse_callback(
            &status_result("AG_Q", "orig1", "TCE0000000", "Pending", kes),
            false,
        )
        .unwrap();
        assert!(matches!(
            status_answer(&pending),
            StatusAnswer::QueryFailed { .. }
        ));
    }

    #[test]
    fn balances_are_read_to_the_cent_negative_ones_included() {
        let body = balance_result(
            "AG_B",
            &[
                ("Working Account", 4_671_300),
                ("Utility Account", 12_050),
                ("Charges Paid Account", -125_000),
            ],
        );
        let balances = account_balances(&parse_callback(&body, false).unwrap()).unwrap();
        assert_eq!(
            balances
                .iter()
                .map(|b| (b.name.as_str(), b.available_cents))
                .collect::<Vec<_>>(),
            [
                ("Working Account", 4_671_300),
                ("Utility Account", 12_050),
                ("Charges Paid Account", -125_000)
            ]
        );
        let odd = json!({"Result": {"ResultCode": 0, "ConversationID": "AG_B", "ResultParameters": {"ResultParameter": {"Key": "AccountBalance", "Value": "Working Account|KES"}}}});
        assert!(account_balances(&parse_callback(&odd, false).unwrap()).is_err());
        // A name that would break a metrics label or a log line is refused.
        for name in ["Utility\"} 1\nx{a=\"", "Utility\nAccount", ""] {
            let body = balance_result("AG_B", &[(name, 100)]);
            assert!(
                account_balances(&parse_callback(&body, false).unwrap()).is_err(),
                "{name:?}"
            );
        }
    }
}
