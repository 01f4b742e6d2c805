//! Daraja's wire formats, shared by the real client, the simulator and the result webhook:
//! the requests and their synchronous answers (`requests`), and here the results posted to our
//! result URL: B2C and B2B `Result` callbacks, Transaction Status and Account Balance results,
//! the STK `Body.stkCallback`, and queue timeouts. Parsing is tolerant in the ways the
//! reference documents (§5): codes as numbers or strings, a single object where an array is
//! expected, items looked up by key.

pub mod requests;
pub mod results;

use crate::error::{Error, Result};
use crate::money::{parse_major, KesCents};
use serde_json::Value;

/// What a Daraja callback says, whatever its shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// `OriginatorConversationID` (B2C/B2B).
    pub originator: Option<String>,
    /// `ConversationID` (B2C/B2B) or `CheckoutRequestID` (STK).
    pub conversation: Option<String>,
    /// What happened.
    pub kind: CallbackKind,
    /// The amount the callback names, in KES cents, if any.
    pub amount: Option<KesCents>,
    /// `ResultDesc`.
    pub desc: String,
    /// `ResultParameters.ResultParameter` as sent (a list or one item), for results that carry
    /// more than a payout's (Transaction Status, Account Balance).
    pub parameters: Option<Value>,
    /// `ReferenceData.ReferenceItem` as sent (a list or one item): a B2B result names the bill
    /// account it paid there (`BillReferenceNumber`).
    pub reference: Option<Value>,
    /// Is it the STK form (`Body.stkCallback`, the answer to a Lipa na M-Pesa Online push)
    /// rather than a B2C or B2B `Result`?
    pub stk: bool,
}

/// The outcome a callback reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackKind {
    /// Money moved; the receipt, if the callback names one.
    Success(Option<String>),
    /// No money moved; the result code.
    Failure(String),
    /// Stuck in M-Pesa's queue: outcome unknown.
    QueueTimeout,
    /// A result that does not say whether money moved (`ResultCode` 15 "Duplicate Detected":
    /// an earlier attempt may have paid; `ResultType` 1: more messages to come).
    Unknown(String),
}

/// What a `ResultCode` or `ResultType` says.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Code {
    /// `0`, `"0"`: exactly these (the reference's rule); `"00"` or `" 0"` is `Unreadable`.
    Zero,
    /// Another code: digits (`2001`, `"2001"`, without a leading zero) or a code like
    /// `SFC_IC0003`.
    Other(String),
    /// Not a code (`0.0`, `"-0"`, `""`, `true`): it cannot say that money moved, nor that it
    /// did not, so it is an unknown outcome, never a failure that would return the money.
    /// Held as it was written (JSON: a string quoted, `" 0"` not `0`), for the operator.
    Unreadable(String),
}

/// Reads a code field: `None` when it is absent or null.
fn code_of(v: Option<&Value>) -> Option<Code> {
    let value = v?;
    let as_written = || {
        let json = value.to_string();
        match json.char_indices().nth(40) {
            Some((cut, _)) => format!("{}…", &json[..cut]),
            None => json,
        }
    };
    let (text, exact) = match value {
        Value::Null => return None,
        Value::Number(n) if n.is_u64() => (n.to_string(), true),
        Value::String(s) => (s.trim().to_string(), s.as_str() == "0"),
        _ => return Some(Code::Unreadable(as_written())),
    };
    let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let named = text.bytes().any(|b| b.is_ascii_alphabetic())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    Some(if digits && text.bytes().all(|b| b == b'0') {
        // Success is said one way; a zero written otherwise is read as no code at all (an
        // unknown outcome, asked about), never as money that moved. So is a code written
        // with a leading zero (`"015"`): no code of M-Pesa's is, and read as its digits it
        // was a failure that returned the money where `15` says an earlier attempt may have
        // paid (until 2026-12-07).
        if exact {
            Code::Zero
        } else {
            Code::Unreadable(as_written())
        }
    } else if (digits && !text.starts_with('0')) || named {
        Code::Other(text)
    } else {
        Code::Unreadable(as_written())
    })
}

/// The outcome a final result's `ResultCode` reports.
fn outcome_of(code: Code, receipt: impl FnOnce() -> Option<String>) -> CallbackKind {
    match code {
        Code::Zero => CallbackKind::Success(receipt()),
        Code::Other(code) if code == "15" => CallbackKind::Unknown(
            "ResultCode 15 (duplicate detected): an earlier attempt may have paid".into(),
        ),
        Code::Other(code) => CallbackKind::Failure(code),
        Code::Unreadable(text) => {
            CallbackKind::Unknown(format!("ResultCode {text} is not a result code"))
        }
    }
}

/// Could `text` be an M-Pesa receipt? They are ten capital letters and digits (`TCE4K7PQ2M`),
/// a format Safaricom does not document: anything of 6 to 20 letters and digits passes, but
/// M-Pesa's stand-in for no receipt (`TCE0000000`, `TLC0000000`: zeros after the first three
/// characters, as failures carry it).
pub fn plausible_receipt(text: &str) -> bool {
    let stand_in = text.len() > 3 && text.bytes().skip(3).all(|b| b == b'0');
    (6..=20).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric()) && !stand_in
}

/// The keys whose items say what a result is worth: named twice with different values, the
/// result says two things, and cannot be read as a payment.
const KEYS_NAMED_ONCE: [&str; 7] = [
    "TransactionAmount",
    "Amount",
    "TransactionReceipt",
    "ReceiptNo",
    "MpesaReceiptNumber",
    "TransactionStatus",
    "OriginatorConversationID",
];

/// The first of `KEYS_NAMED_ONCE` that `list` names twice with different values.
fn named_twice(list: Option<&Value>, key_field: &str) -> Option<&'static str> {
    let items: Vec<&Value> = match list? {
        Value::Array(items) => items.iter().collect(),
        _ => return None,
    };
    KEYS_NAMED_ONCE.into_iter().find(|key| {
        let mut values = items
            .iter()
            .filter(|item| item.get(key_field).and_then(Value::as_str) == Some(key))
            .map(|item| item.get("Value"));
        values
            .next()
            .is_some_and(|first| values.any(|other| other != first))
    })
}

/// Why a success callback cannot be taken at its word, if it cannot: it names an amount, a
/// receipt or a status twice with different values, or two different receipts
/// (`TransactionReceipt` and the result's `TransactionID`).
fn doubt_of(result: &Value, list: Option<&Value>, key_field: &str) -> Option<String> {
    if let Some(key) = named_twice(list, key_field) {
        return Some(format!(
            "the result names {key} twice, with different values"
        ));
    }
    let receipt = text(lookup(list, key_field, "TransactionReceipt"));
    let id = text(result.get("TransactionID"));
    match (receipt, id) {
        (Some(receipt), Some(id)) if receipt != id => Some(
            "the result names two receipts (TransactionReceipt and TransactionID differ)".into(),
        ),
        _ => None,
    }
}

/// Items of `ResultParameter` / `Item`: an array, or a single object (none otherwise).
fn items(list: Option<&Value>) -> &[Value] {
    match list {
        Some(Value::Array(items)) => items,
        Some(one @ Value::Object(_)) => std::slice::from_ref(one),
        _ => &[],
    }
}

/// Is this item the one named `key` (by its `key_field`)?
fn named_item(item: &Value, key_field: &str, key: &str) -> bool {
    item.get(key_field).and_then(Value::as_str) == Some(key)
}

/// The first item of `list` whose `key_field` is `key`: its `Value`.
fn lookup<'a>(list: Option<&'a Value>, key_field: &str, key: &str) -> Option<&'a Value> {
    items(list)
        .iter()
        .find(|item| named_item(item, key_field, key))
        .and_then(|item| item.get("Value"))
}

pub(crate) fn kes_cents(v: Option<&Value>) -> Option<KesCents> {
    let text = match v? {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    parse_major("Amount", &text, 2).ok().and_then(KesCents::new)
}

/// Daraja's free text (`ResultDesc`, `errorMessage`, `ResponseDescription`) as remit keeps,
/// logs and shows it: M-Pesa's words, with any number of nine digits or more (a phone number
/// it may echo, `254712345678`, `+254 712 345 678`, `0712.345.678`: groups of digits joined by
/// up to two of a phone's separators count as one number, `domain::long_numbers_masked`)
/// masked to its last three digits (`***678`), at most
/// 300 characters. A payout's text reaches the log and the sender, neither of which may read
/// a phone; and the name M-Pesa gives after a phone (`Credit Party 254722000333 - JANE WAMBUI`)
/// is hidden with the rest of the text after it (`Credit Party ***333 - ***`: `payee_name_hidden`).
/// Also the SQL function `remit_mask_mpesa_words`, by which schema 16 does the same to the words
/// kept before (some kept every digit of a phone, before 2026-12-03).
pub fn free_text(text: &str) -> String {
    // A line break or a NUL in M-Pesa's words is a space in remit's, and a number written in
    // other digits or spaces than ASCII's is found all the same.
    let out = crate::domain::long_numbers_masked(&crate::domain::outside_words(text.trim()));
    // Cut after masking, so that a phone across the cut is masked whole.
    payee_name_hidden(&out).chars().take(300).collect()
}

/// Text whose phones are masked (`***333`), with what follows a hyphen after a masked phone,
/// after a PayBill or Till number (five to eight digits) or after the words "credit party"
/// hidden when it holds a letter: M-Pesa names the owner of a number there (`Credit Party
/// ***333 - JANE WAMBUI MUTHONI`, `254708374149 - John Doe`, `Credit party - JANE`, `Credit
/// Party 888880 - MAMA MBOGA KIOSK`: a till may be a person's, and the merchant's name is
/// sealed everywhere else; it was kept after a short code until 2026-12-07), a name the file,
/// the log and the views must not hold. The rest of the text goes with it (a name may hold any
/// character, and M-Pesa writes it last). A name written straight after such a number with
/// no dash is recognised when it is two words or more in capitals (`Till 5551234 KAMAU
/// WEKESA`, M-Pesa's way of writing a name): `Till 5551234 ***`; words in small letters
/// after a number (`The receiver ***678 is not registered`) are M-Pesa's own.
pub fn payee_name_hidden(text: &str) -> String {
    let cut = [after_a_dash(text), after_a_number(text)]
        .into_iter()
        .flatten()
        .min();
    match cut {
        Some(cut) => format!("{} ***", text[..cut].trim_end_matches(' ')),
        None => text.to_string(),
    }
}

/// Where a name written after a masked phone, a short code or "credit party" and a dash
/// starts: just after the dash.
fn after_a_dash(text: &str) -> Option<usize> {
    // A hyphen, or the en or em dash of Daraja's own samples (`000000– Biller`).
    for (at, dash) in text.match_indices(['-', '\u{2013}', '\u{2014}']) {
        let before = text[..at].trim_end_matches(' ');
        let upto = at + dash.len();
        let after = &text[upto..];
        let tail = before.as_bytes();
        let masked_phone = tail.len() >= 6
            && tail[tail.len() - 6..tail.len() - 3] == *b"***"
            && tail[tail.len() - 3..].iter().all(u8::is_ascii_digit);
        let party = before.len() >= 12
            && before.is_char_boundary(before.len() - 12)
            && before[before.len() - 12..].eq_ignore_ascii_case("credit party");
        let digits = tail.iter().rev().take_while(|b| b.is_ascii_digit()).count();
        let short_code = (5..=8).contains(&digits)
            && tail
                .len()
                .checked_sub(digits + 1)
                .is_none_or(|at| !tail[at].is_ascii_alphanumeric() && tail[at] != b'*');
        if (masked_phone || party || short_code) && after.chars().any(char::is_alphabetic) {
            return Some(upto);
        }
    }
    None
}

/// Where a name in capitals written straight after a masked phone or a short code (five to
/// eight digits standing alone) starts: just after the number.
fn after_a_number(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if !bytes[at].is_ascii_digit() {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            at += 1;
        }
        let digits = at - start;
        let masked_phone = digits == 3 && text[..start].ends_with("***");
        let short_code = (5..=8).contains(&digits)
            && start
                .checked_sub(1)
                .is_none_or(|b| !bytes[b].is_ascii_alphanumeric() && bytes[b] != b'*');
        let spaced = bytes.get(at) == Some(&b' ');
        if (masked_phone || short_code) && spaced && capital_words(&text[at..]) {
            return Some(at);
        }
    }
    None
}

/// Does `text` begin with two words or more in capitals (letters, and a name's `.` or `'`),
/// the first of two letters or more?
fn capital_words(text: &str) -> bool {
    let mut words = text.split_whitespace();
    let capitals = |word: &str, least: usize| {
        word.chars()
            .all(|c| c.is_uppercase() || c == '.' || c == '\'')
            && word.chars().filter(|c| c.is_alphabetic()).count() >= least
    };
    matches!((words.next(), words.next()), (Some(first), Some(second))
        if capitals(first, 2) && capitals(second, 1))
}

/// A value's text, trimmed; none when empty. A control character (no id or code of M-Pesa's
/// holds one) becomes U+FFFD: such an id matches nothing of ours, as before, and no NUL reaches
/// the file, where PostgreSQL's text refuses it.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => {
            Some(crate::domain::controls_replaced(s.trim(), '\u{FFFD}'))
        }
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Parses a B2C/B2B `Result`, an STK `Body.stkCallback`, or a queue timeout, tolerantly (§5 of
/// the wire-format reference): codes as numbers or strings, single objects for arrays, items
/// by key, missing values.
pub fn parse_callback(body: &Value, queue_timeout: bool) -> Result<Callback> {
    if let Some(stk) = body.get("Body").and_then(|b| b.get("stkCallback")) {
        let code = code_of(stk.get("ResultCode"))
            .ok_or_else(|| Error::invalid("ResultCode", "is missing"))?;
        let items = stk.get("CallbackMetadata").and_then(|m| m.get("Item"));
        let kind = match (
            outcome_of(code, || text(lookup(items, "Name", "MpesaReceiptNumber"))),
            named_twice(items, "Name"),
        ) {
            (CallbackKind::Success(_), Some(key)) => CallbackKind::Unknown(format!(
                "the callback names {key} twice, with different values"
            )),
            (kind, _) => kind,
        };
        return Ok(Callback {
            originator: None,
            conversation: text(stk.get("CheckoutRequestID")),
            kind,
            amount: kes_cents(lookup(items, "Name", "Amount")),
            desc: free_text(&text(stk.get("ResultDesc")).unwrap_or_default()),
            parameters: None,
            reference: None,
            stk: true,
        });
    }
    let result = body
        .get("Result")
        .ok_or_else(|| Error::invalid("Result", "is missing: not a Daraja callback"))?;
    let originator = text(result.get("OriginatorConversationID"));
    let conversation = text(result.get("ConversationID"));
    if originator.is_none() && conversation.is_none() {
        return Err(Error::invalid("Result", "names no conversation"));
    }
    let params = result
        .get("ResultParameters")
        .and_then(|p| p.get("ResultParameter"));
    let desc = free_text(&text(result.get("ResultDesc")).unwrap_or_default());
    if queue_timeout {
        return Ok(Callback {
            originator,
            conversation,
            kind: CallbackKind::QueueTimeout,
            amount: None,
            desc,
            parameters: None,
            reference: None,
            stk: false,
        });
    }
    let code = code_of(result.get("ResultCode"))
        .ok_or_else(|| Error::invalid("ResultCode", "is missing"))?;
    let kind = match code_of(result.get("ResultType")).unwrap_or(Code::Zero) {
        Code::Zero => match outcome_of(code, || {
            text(lookup(params, "Key", "TransactionReceipt"))
                .or_else(|| text(result.get("TransactionID")))
        }) {
            CallbackKind::Success(receipt) => match doubt_of(result, params, "Key") {
                Some(doubt) => CallbackKind::Unknown(doubt),
                None => CallbackKind::Success(receipt),
            },
            other => other,
        },
        Code::Other(t) if t == "1" => {
            CallbackKind::Unknown("ResultType 1: M-Pesa has more messages for this payout".into())
        }
        Code::Other(t) | Code::Unreadable(t) => {
            CallbackKind::Unknown(format!("ResultType {t} is not a final result"))
        }
    };
    let amount = kes_cents(lookup(params, "Key", "TransactionAmount"))
        .or_else(|| kes_cents(lookup(params, "Key", "Amount")));
    Ok(Callback {
        originator,
        conversation,
        kind,
        amount,
        desc,
        parameters: params.cloned(),
        reference: result
            .get("ReferenceData")
            .and_then(|r| r.get("ReferenceItem"))
            .cloned(),
        stk: false,
    })
}

impl Callback {
    /// The callback as a payment's own result (B2C, B2B), not an answer to Transaction Status:
    /// a success that names a `TransactionStatus` other than `Completed` (which only a status
    /// answer carries) says two things, and is an unknown outcome, asked about.
    pub fn as_payment_result(&self) -> std::borrow::Cow<'_, Callback> {
        match (&self.kind, self.parameter_text("TransactionStatus")) {
            (CallbackKind::Success(_), Some(status))
                if !status.eq_ignore_ascii_case("Completed") =>
            {
                let mut read = self.clone();
                read.kind = CallbackKind::Unknown(format!(
                    "a payment's result that names TransactionStatus {status:?}"
                ));
                std::borrow::Cow::Owned(read)
            }
            _ => std::borrow::Cow::Borrowed(self),
        }
    }

    /// The value of the result parameter `key`, if the result has it.
    pub fn parameter(&self, key: &str) -> Option<&Value> {
        lookup(self.parameters.as_ref(), "Key", key)
    }

    /// A parameter as text (a string, or a number written out).
    pub fn parameter_text(&self, key: &str) -> Option<String> {
        text(self.parameter(key))
    }

    /// Every value the result gives `key`, as text, in `ReferenceData` (where M-Pesa puts a
    /// B2B result's `BillReferenceNumber`) and in `ResultParameters` (its
    /// `ReceiverPartyPublicName`), each item of either list, without repeats: a result that
    /// names two payees, one where remit looks and another elsewhere, is read as naming both.
    pub fn named(&self, key: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for list in [self.reference.as_ref(), self.parameters.as_ref()] {
            let values = items(list)
                .iter()
                .filter(|item| named_item(item, "Key", key))
                .filter_map(|item| text(item.get("Value")));
            for value in values {
                if !out.contains(&value) {
                    out.push(value);
                }
            }
        }
        out
    }

    /// The key a delivery is deduplicated on: the payout's id at Daraja, what the callback
    /// says and the amount it names. A repeat of the same callback has the same key; a
    /// different outcome for the same payout does not. The file keeps the key in the clear: an
    /// id or receipt that is not one's shape (a phone and a name sent as an id) is kept as its
    /// digest (`key_part`).
    pub fn dedupe_key(&self) -> String {
        let id = key_part(
            self.originator
                .as_deref()
                .or(self.conversation.as_deref())
                .unwrap_or("-"),
        );
        let what = match &self.kind {
            CallbackKind::Success(receipt) => {
                format!("ok:{}", key_part(receipt.as_deref().unwrap_or("-")))
            }
            CallbackKind::Failure(code) => format!("failed:{code}"),
            CallbackKind::QueueTimeout => "timeout".into(),
            CallbackKind::Unknown(_) => "unknown".into(),
        };
        let amount = self.amount.map_or("-".to_string(), |a| a.get().to_string());
        format!("{id}:{what}:{amount}")
    }

    /// The key an answer to one of remit's queries (Transaction Status, Account Balance) is
    /// deduplicated on: the query's ConversationID and the TransactionStatus it says, before
    /// `dedupe_key`. A status result may name the payment by the same ids at every query (its
    /// `OriginatorConversationID` the payment's, not the query's), and "Pending" to one query
    /// and "Completed" to the next are two answers (keyed as a payment's result, the second
    /// was dropped as the first's repeat, and the payout stayed stuck on "Pending" with its
    /// money paid).
    pub fn answer_dedupe_key(&self) -> String {
        let status: String = self
            .parameter_text("TransactionStatus")
            .unwrap_or_else(|| "-".into())
            .chars()
            .take(32)
            .collect();
        let query = key_part(self.conversation.as_deref().unwrap_or("-"));
        format!("query:{query}:{}:{}", key_part(&status), self.dedupe_key())
    }
}

/// An id of M-Pesa's as a part of a key kept in the clear: itself when it has an id's shape (1
/// to 64 of ASCII letters, digits, `_`, `-` and `.`, as every id M-Pesa gives and remit makes
/// has), otherwise `sha256-` and half its digest's hex, which tells the same text from another
/// and reads as neither.
fn key_part(text: &str) -> std::borrow::Cow<'_, str> {
    let id_shaped = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if id_shaped {
        std::borrow::Cow::Borrowed(text)
    } else {
        let digest = crate::crypto::sha256(text.as_bytes());
        std::borrow::Cow::Owned(format!("sha256-{}", crate::crypto::hex(&digest[..16])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn control_characters_are_replaced_in_ids_and_a_space_in_m_pesa_s_words() {
        assert_eq!(
            free_text("Insufficient\u{0}funds\nnow"),
            "Insufficient funds now"
        );
        assert_eq!(
            text(Some(&json!("AG_1\u{0}x"))).as_deref(),
            Some("AG_1\u{FFFD}x")
        );
        assert_eq!(text(Some(&json!(" AG_1 "))).as_deref(), Some("AG_1"));
    }

    /// Guards against: a phone in M-Pesa's words written with no-break spaces, full-width or
    /// Arabic-Indic digits, or a zero-width space between its digits was kept and shown whole.
    #[test]
    fn a_phone_written_in_other_digits_or_spaces_than_ascii_s_is_masked() {
        for text in [
            "Paid to 0722\u{a0}000\u{a0}333 now",
            "Paid to \u{ff10}\u{ff17}\u{ff12}\u{ff12}\u{ff10}\u{ff10}\u{ff10}\u{ff13}\u{ff13}\u{ff13} now",
            "Paid to \u{660}\u{667}\u{662}\u{662}\u{660}\u{660}\u{660}\u{663}\u{663}\u{663} now",
            "Paid to 0722\u{200b}000\u{2009}333 now",
        ] {
            assert_eq!(free_text(text), "Paid to ***333 now", "{text:?}");
        }
        // Other words are kept as they were.
        assert_eq!(
            free_text("Malipo ya Ksh 1,500.00"),
            "Malipo ya Ksh 1,500.00"
        );
        assert_eq!(free_text("caf\u{e9} \u{2013} ok"), "caf\u{e9} \u{2013} ok");
    }

    #[test]
    fn m_pesa_s_stand_in_for_no_receipt_is_no_receipt() {
        assert!(plausible_receipt("TCE4K7PQ2M"));
        assert!(plausible_receipt("SIM7Q2K9XZ"));
        for stand_in in ["TCE0000000", "TLC0000000", "XYZ000"] {
            assert!(!plausible_receipt(stand_in), "{stand_in}");
        }
    }

    #[test]
    fn a_result_naming_a_key_twice_differently_is_an_unknown_outcome() {
        let with = |params: Value| {
            let body = json!({"Result": {"ResultType": 0, "ResultCode": 0,
                "OriginatorConversationID": "o", "ConversationID": "c", "TransactionID": "TCE4K7PQ2M",
                "ResultParameters": {"ResultParameter": params}}});
            parse_callback(&body, false).unwrap()
        };
        let twice = with(json!([{"Key": "TransactionAmount", "Value": 1500},
            {"Key": "TransactionAmount", "Value": 1}]));
        assert!(
            matches!(twice.kind, CallbackKind::Unknown(ref w) if w.contains("TransactionAmount twice")),
            "{twice:?}"
        );
        // The same value twice says one thing.
        let same = with(json!([{"Key": "TransactionAmount", "Value": 1500},
            {"Key": "TransactionAmount", "Value": 1500}]));
        assert!(matches!(same.kind, CallbackKind::Success(_)), "{same:?}");
        let receipts = with(json!([{"Key": "TransactionReceipt", "Value": "TCE9999999"}]));
        assert!(
            matches!(receipts.kind, CallbackKind::Unknown(ref w) if w.contains("two receipts")),
            "{receipts:?}"
        );
        // A status answer's words, read as a payment's own result, are not a payment.
        let status = with(json!([{"Key": "TransactionStatus", "Value": "Failed"}]));
        assert!(
            matches!(status.kind, CallbackKind::Success(_)),
            "a status answer as parsed"
        );
        assert!(matches!(
            status.as_payment_result().kind,
            CallbackKind::Unknown(_)
        ));
        let completed = with(json!([{"Key": "TransactionStatus", "Value": "Completed"}]));
        assert!(matches!(
            completed.as_payment_result().kind,
            CallbackKind::Success(_)
        ));
        let stk = json!({"Body": {"stkCallback": {"MerchantRequestID": "m", "CheckoutRequestID": "ws_CO_1",
            "ResultCode": 0, "ResultDesc": "ok", "CallbackMetadata": {"Item": [
                {"Name": "Amount", "Value": 1500}, {"Name": "Amount", "Value": 15},
                {"Name": "MpesaReceiptNumber", "Value": "TCE5N8QW3R"}]}}}});
        assert!(matches!(
            parse_callback(&stk, false).unwrap().kind,
            CallbackKind::Unknown(_)
        ));
    }

    #[test]
    fn a_result_s_words_keep_no_phone_and_no_more_than_300_characters() {
        let body: Value = serde_json::from_str(r#"{"Result": {"ResultType": 0, "ResultCode": 2001,
            "ResultDesc": "The receiver 254712345678 is not registered",
            "OriginatorConversationID": "o", "ConversationID": "AG_20250314_00000000000000000000"}}"#)
        .unwrap();
        let callback = parse_callback(&body, false).unwrap();
        assert_eq!(callback.desc, "The receiver ***678 is not registered");
        assert_eq!(
            callback.conversation.as_deref(),
            Some("AG_20250314_00000000000000000000")
        );
        assert_eq!(free_text(&"x".repeat(1_000)).len(), 300);
        let across = format!("{}254712345678", "x".repeat(295));
        assert_eq!(free_text(&across), format!("{}***67", "x".repeat(295)));
        assert_eq!(
            free_text(" short code 600998, KES 1500 "),
            "short code 600998, KES 1500"
        );
        // However the groups of a phone are joined; an amount's decimals end a number.
        for (said, kept) in [
            (
                "call 0712.345.678 or +254 712  345 678",
                "call ***678 or +***678",
            ),
            ("to 0712_345_678.", "to ***678."),
            ("(0712) 345-678 failed", "(***678 failed"),
            (
                "KES 1,500,000.00 to 0712345678",
                "KES 1,500,000.00 to ***678",
            ),
            ("balance 12345.67", "balance 12345.67"),
        ] {
            assert_eq!(free_text(said), kept, "{said}");
        }
    }

    #[test]
    fn the_name_m_pesa_gives_after_a_phone_is_hidden_with_what_follows() {
        for (said, kept) in [
            (
                "The initiator information is invalid. Credit Party 254722000333 - JANE WAMBUI MUTHONI",
                "The initiator information is invalid. Credit Party ***333 - ***",
            ),
            ("254708374149 - John Doe. Thanks", "***149 - ***"),
            ("Paid 0712-345-678-JANE W. DOE", "Paid ***678- ***"),
            ("Paid +254 712 345 678 -Añé", "Paid +***678 - ***"),
            ("Credit party - JANE WANJIKU; acct 42", "Credit party - ***"),
            ("CREDIT PARTY-X", "CREDIT PARTY- ***"),
            ("254722000333 \u{2013} Jane", "***333 \u{2013} ***"),
            ("Credit Party 254722000333\u{2014}Jane", "Credit Party ***333\u{2014} ***"),
            ("A well-known error", "A well-known error"),
            // No name: nothing hidden.
            ("The receiver 254712345678 is not registered", "The receiver ***678 is not registered"),
            ("Credit Party 254722000333 - 42", "Credit Party ***333 - 42"),
            // A short code is not a phone (not masked); the name after it may be a person's.
            ("888880 - KPLC PREPAID", "888880 - ***"),
            (
                "Credit Party 888880 - MAMA MBOGA KIOSK account ACC-77123 is invalid",
                "Credit Party 888880 - ***",
            ),
            ("Till 5551234-Kamau Wekesa", "Till 5551234- ***"),
            // A name in capitals straight after a number, without a dash.
            ("till 5551234 LANDLORD KAMAU WEKESA", "till 5551234 ***"),
            ("Credit Party 254722000333 JANE W. MUTHONI", "Credit Party ***333 ***"),
            ("Paid 888880  ÑAÑA O'NEIL - x", "Paid 888880 ***"),
            // One word in capitals, or words of small letters, or a number after it: kept.
            ("Paybill 600000 KES 100 paid", "Paybill 600000 KES 100 paid"),
            ("Till 5551234 LANDLORD", "Till 5551234 LANDLORD"),
            ("Initiator 600000 is not permitted", "Initiator 600000 is not permitted"),
            ("ref AB123456 JANE DOE", "ref AB123456 JANE DOE"),
            // Four digits, or nine (a phone masked before), are not a short code.
            ("Ksh 1500 - paid", "Ksh 1500 - paid"),
            ("ref AB123456 - ok", "ref AB123456 - ok"),
            ("*** - x ***12 - y", "*** - x ***12 - y"),
        ] {
            assert_eq!(free_text(said), kept, "{said}");
        }
        // Text kept before (its phones already masked) is hidden the same way.
        assert_eq!(
            payee_name_hidden("Credit Party ***333 - JANE"),
            "Credit Party ***333 - ***"
        );
        assert_eq!(payee_name_hidden("***3334 - JANE"), "***3334 - JANE");
    }

    #[test]
    fn a_callbacks_key_holds_ids_as_they_are_and_anything_else_as_a_digest() {
        let stk = |id: &str| -> String {
            let body = json!({"Body": {"stkCallback": {"MerchantRequestID": "m",
                "CheckoutRequestID": id, "ResultCode": 1032, "ResultDesc": "cancelled"}}});
            parse_callback(&body, false).unwrap().dedupe_key()
        };
        assert_eq!(
            stk("ws_CO_191220191020363925"),
            "ws_CO_191220191020363925:failed:1032:-"
        );
        let odd = stk("ws_CO_0722123456 Zebedayo");
        assert!(odd.starts_with("sha256-"), "{odd}");
        assert!(!odd.contains("0722") && !odd.contains("Zeb"), "{odd}");
        // The same text gives the same key (a repeat is still one), another text another.
        assert_eq!(odd, stk("ws_CO_0722123456 Zebedayo"));
        assert_ne!(odd, stk("ws_CO_0722123456 Zebedayi"));
    }

    #[test]
    fn callbacks_parse_in_every_shape() {
        let b2c: Value = serde_json::from_str(r#"{"Result": {"ResultType": 0, "ResultCode": 0, "ResultDesc": "ok",
          "OriginatorConversationID": "abc", "ConversationID": "AG_1", "TransactionID": "TCE4K7PQ2M",
          "ResultParameters": {"ResultParameter": [{"Key": "TransactionAmount", "Value": 2500},
            {"Key": "TransactionReceipt", "Value": "TCE4K7PQ2M"}]}}}"#).unwrap();
        let c = parse_callback(&b2c, false).unwrap();
        assert_eq!(c.kind, CallbackKind::Success(Some("TCE4K7PQ2M".into())));
        assert_eq!(c.amount, KesCents::new(250_000));
        let b2b_fail: Value = serde_json::from_str(r#"{"Result": {"ResultType": 0, "ResultCode": 2001, "ResultDesc": "bad",
          "OriginatorConversationID": "c3", "ConversationID": "AG_2", "TransactionID": "TCE0000000",
          "ResultParameters": {"ResultParameter": {"Key": "BOCompletedTime", "Value": 20250314103902}},
          "ReferenceData": {"ReferenceItem": {"Key": "QueueTimeoutURL", "Value": "x"}}}}"#).unwrap();
        assert_eq!(
            parse_callback(&b2b_fail, false).unwrap().kind,
            CallbackKind::Failure("2001".into())
        );
        let b2b_ok: Value = serde_json::from_str(
            r#"{"Result": {"ResultType": "0", "ResultCode": "0", "ResultDesc": "ok",
          "OriginatorConversationID": "2b", "ConversationID": "AG_3", "TransactionID": "TCE7H2LX9B",
          "ResultParameters": {"ResultParameter": [{"Key": "Amount", "Value": "1500.00"}]}}}"#,
        )
        .unwrap();
        let c = parse_callback(&b2b_ok, false).unwrap();
        assert_eq!(
            (c.kind, c.amount),
            (
                CallbackKind::Success(Some("TCE7H2LX9B".into())),
                KesCents::new(150_000)
            )
        );
        let stk: Value = serde_json::from_str(r#"{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"ws_CO_1","ResultCode":0,"ResultDesc":"ok","CallbackMetadata":{"Item":[{"Name":"Amount","Value":1500.00},{"Name":"MpesaReceiptNumber","Value":"TCE5N8QW3R"},{"Name":"Balance"},{"Name":"TransactionDate","Value":20250314102512},{"Name":"PhoneNumber","Value":254712345678}]}}}}"#).unwrap();
        let c = parse_callback(&stk, false).unwrap();
        assert_eq!(
            (c.conversation.as_deref(), c.kind),
            (
                Some("ws_CO_1"),
                CallbackKind::Success(Some("TCE5N8QW3R".into()))
            )
        );
        let sfc: Value = serde_json::from_str(
            r#"{"Result": {"ResultCode": "SFC_IC0003", "ConversationID": "AG_4"}}"#,
        )
        .unwrap();
        assert_eq!(
            parse_callback(&sfc, false).unwrap().kind,
            CallbackKind::Failure("SFC_IC0003".into())
        );
        assert_eq!(
            parse_callback(&sfc, true).unwrap().kind,
            CallbackKind::QueueTimeout
        );
        assert!(parse_callback(&serde_json::json!({"foo": 1}), false).is_err());
    }

    /// Only a code that reads as zero is a success and only a code that reads as another code
    /// is a failure (which returns the money): anything else reports an unknown outcome.
    #[test]
    fn a_result_code_that_is_not_a_code_is_an_unknown_outcome_never_a_failure() {
        let kind = |code: Value| {
            let body = serde_json::json!({"Result": {"ResultType": 0, "ResultCode": code,
                "OriginatorConversationID": "o", "ConversationID": "AG_1", "TransactionID": "TCE4K7PQ2M"}});
            parse_callback(&body, false).unwrap().kind
        };
        let ok = CallbackKind::Success(Some("TCE4K7PQ2M".into()));
        // Zero as the reference writes it, and no other way (`" 0 "`, `"00"` are unknown).
        for zero in [serde_json::json!(0), serde_json::json!("0")] {
            assert_eq!(kind(zero.clone()), ok, "{zero}");
        }
        for (code, text) in [
            (serde_json::json!(2001), "2001"),
            (serde_json::json!("2040"), "2040"),
            (serde_json::json!("SFC_IC0003"), "SFC_IC0003"),
        ] {
            assert_eq!(kind(code), CallbackKind::Failure(text.into()));
        }
        for odd in [
            serde_json::json!(" 0 "),
            serde_json::json!("00"),
            serde_json::json!(0.0),
            serde_json::json!("0.0"),
            serde_json::json!(-1),
            serde_json::json!("-0"),
            serde_json::json!("+0"),
            serde_json::json!(""),
            serde_json::json!(true),
            serde_json::json!(1.5),
            serde_json::json!("2 001"),
            // No code of M-Pesa's has a leading zero: `"015"` read as its digits was a
            // failure (the money returned) where `15` is an unknown outcome.
            serde_json::json!("015"),
            serde_json::json!("0015"),
            serde_json::json!("02001"),
        ] {
            assert!(
                matches!(kind(odd.clone()), CallbackKind::Unknown(_)),
                "{odd} must be an unknown outcome"
            );
        }
        // The operator reads the code as it was sent: `" 0 "`, not a `"0"` said not to be one.
        assert_eq!(
            kind(serde_json::json!(" 0 ")),
            CallbackKind::Unknown(r#"ResultCode " 0 " is not a result code"#.into())
        );
        assert_eq!(
            kind(serde_json::json!(0.0)),
            CallbackKind::Unknown("ResultCode 0.0 is not a result code".into())
        );
        let stk = serde_json::json!({"Body": {"stkCallback": {"CheckoutRequestID": "ws_CO_1",
            "ResultCode": 0.0, "ResultDesc": "x"}}});
        assert!(matches!(
            parse_callback(&stk, false).unwrap().kind,
            CallbackKind::Unknown(_)
        ));
        let typed = serde_json::json!({"Result": {"ResultType": 2, "ResultCode": 1,
            "OriginatorConversationID": "o"}});
        assert!(matches!(
            parse_callback(&typed, false).unwrap().kind,
            CallbackKind::Unknown(_)
        ));
    }
}
