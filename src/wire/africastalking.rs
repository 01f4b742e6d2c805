//! Africa's Talking's bulk SMS HTTP API, as far as remit uses it (README, "SMS"):
//! `POST {base}/version1/messaging` with the headers `apiKey` and `Accept: application/json`,
//! a form body (`username`, `to`, `message`, `from` when a sender id is set, `bulkSMSMode=1`),
//! answered `201` with `{"SMSMessageData": {"Message", "Recipients": [{"statusCode", "number",
//! "status", "cost", "messageId"}]}}`. What was confirmed and what was not is in the README.

use serde_json::Value;

/// The path of the send call under the base URL.
pub const SEND_PATH: &str = "/version1/messaging";

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// The body of a send to one number (E.164, `+254…`).
pub fn send_body(username: &str, to: &str, message: &str, from: Option<&str>) -> String {
    let mut pairs = vec![
        ("username", username),
        ("to", to),
        ("message", message),
        ("bulkSMSMode", "1"),
    ];
    if let Some(from) = from {
        pairs.push(("from", from));
    }
    form(&pairs)
}

/// What an answer to a send to one number says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendAnswer {
    /// Taken: the recipient's `status` is `Success`.
    Accepted {
        /// `messageId`.
        message_id: Option<String>,
        /// `status` and `statusCode`, as given.
        status: String,
    },
    /// Refused for this recipient (an invalid number, a blacklisted user, no balance…): not
    /// tried again.
    Refused {
        /// `status` and `statusCode`, as given.
        status: String,
    },
    /// Answered for another number than the one sent to: not tried again (the gateway may
    /// route it there again).
    OtherNumber {
        /// That number masked, and its `status` and `statusCode`.
        status: String,
    },
    /// Not taken, but may be later (a 5xx answer, a recipient status code of 500 or more):
    /// tried again.
    Retry {
        /// What came back, in a few words.
        reason: String,
    },
    /// A success (2xx) whose answer cannot be read: it may have been taken, or not.
    Unknown {
        /// What came back, in a few words.
        reason: String,
    },
}

/// Reads the answer to a send to one number (`to`, as sent): its HTTP status and body. A
/// recipient that names another number (written whole: the gateway's samples write some digits
/// as `X`) is not this text's: a success for it is not taken for one, and the text is not sent
/// again (its words may have gone to that number) but refused, the number masked, for an admin
/// to look into.
pub fn read_answer(http_status: u16, body: &[u8], to: &str) -> SendAnswer {
    if http_status >= 500 || http_status == 429 {
        return SendAnswer::Retry {
            reason: format!("HTTP {http_status}"),
        };
    }
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let recipients = parsed
        .as_ref()
        .and_then(|v| v["SMSMessageData"]["Recipients"].as_array());
    // The number a recipient names, if written whole: as a Kenyan number however written
    // (`+254…`, `0…`, `00254…`), else its digits (`+` and nine digits or more).
    let sent_to = same_form(to);
    let named = |recipient: &Value| recipient["number"].as_str().and_then(same_form);
    // The recipient naming the number sent to; else one naming no number written whole (the
    // gateway's samples write some digits as `X`); else every one names another number.
    let ours = recipients.and_then(|r| {
        r.iter()
            .find(|r| named(r).is_some() && named(r) == sent_to)
            .or_else(|| r.iter().find(|r| named(r).is_none()))
    });
    let others = recipients
        .and_then(|r| r.first())
        .filter(|_| ours.is_none());
    if let (Some(other), Some(number)) = (others, others.and_then(named)) {
        // Whatever its status: a gateway that answers for a stranger is not sent the text
        // again (it may route it there again).
        let status = recipient_status(other);
        // (`free_text`: masked as any long number in a gateway's words, at most 300 characters.)
        let shown: String = crate::wire::daraja::free_text(&number)
            .chars()
            .take(40)
            .collect();
        return SendAnswer::OtherNumber {
            status: format!("the answer names another number ({shown}): {status}"),
        };
    }
    let recipient = ours.or(others);
    let Some(recipient) = recipient else {
        let message = parsed
            .as_ref()
            .and_then(|v| v["SMSMessageData"]["Message"].as_str())
            .map(|m| {
                words_after_a_number_hidden(crate::wire::daraja::free_text(m))
                    .chars()
                    .take(120)
                    .collect::<String>()
            });
        return match (http_status, message) {
            // A well-formed answer without a recipient: the request itself was refused.
            (200..=299, Some(m)) => SendAnswer::Refused {
                status: format!("no recipient in the answer: {m}"),
            },
            (400..=499, m) => SendAnswer::Refused {
                status: format!(
                    "HTTP {http_status}{}",
                    m.map(|m| format!(": {m}")).unwrap_or_default()
                ),
            },
            (200..=299, None) => SendAnswer::Unknown {
                reason: format!("HTTP {http_status} with an answer that could not be read"),
            },
            _ => SendAnswer::Retry {
                reason: format!("HTTP {http_status} with an answer that could not be read"),
            },
        };
    };
    let code = status_code(recipient);
    let status = recipient_status(recipient);
    if recipient["status"].as_str() == Some("Success") {
        return SendAnswer::Accepted {
            message_id: recipient["messageId"].as_str().map(str::to_string),
            status,
        };
    }
    if code.is_some_and(|c| c >= 500) {
        return SendAnswer::Retry { reason: status };
    }
    SendAnswer::Refused { status }
}

/// A number as the gateway or remit writes it, in one form to compare: a Kenyan number's E.164
/// form, or the digits of one written `+` and nine digits or more; `None` for one not written
/// whole (none, fewer than nine digits, or a number some of whose digits are written as letters
/// or `*`, as the gateway's samples write `+254711XXXYYY`).
/// Anything else (a name, an address) is no number of this text: kept as it is, to differ.
fn same_form(number: &str) -> Option<String> {
    if let Ok(phone) = crate::domain::KenyanPhone::parse("number", number) {
        return Some(phone.e164());
    }
    let digits = number.trim().trim_start_matches('+');
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        // Nine digits or more: a number; fewer (`+2547`, echoed of a number refused as
        // invalid): none written whole.
        return (digits.len() >= 9).then(|| format!("+{digits}"));
    }
    let hidden = digits.len() >= 9
        && digits.bytes().take(3).all(|b| b.is_ascii_digit())
        && digits
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'*');
    if hidden {
        return None;
    }
    Some(digits.to_string())
}

/// A recipient's `statusCode`, a number or a string of one.
fn status_code(recipient: &Value) -> Option<i64> {
    recipient["statusCode"].as_i64().or_else(|| {
        recipient["statusCode"]
            .as_str()
            .and_then(|s| s.parse().ok())
    })
}

/// A gateway's words (its phones masked) without what follows the first masked phone, when a
/// letter does: the words after a number may be its owner's name (`InvalidPhoneNumber for
/// +***654 (Zawadi Kiprotich)` was kept so in the file, and shown in `GET /sms`, until
/// 2026-12-07); the gateway's own word comes first.
fn words_after_a_number_hidden(text: String) -> String {
    let phone_end = text.match_indices("***").find_map(|(at, _)| {
        let end = at + 6;
        text.get(at + 3..end)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
            .map(|_| end)
    });
    match phone_end {
        Some(end) if text[end..].chars().any(char::is_alphabetic) => {
            format!("{} ***", &text[..end])
        }
        _ => text,
    }
}

/// A recipient's `status` and `statusCode` as kept and shown to admins (`GET /sms`, "never a
/// phone"): a gateway's words may echo the number, masked as M-Pesa's are.
fn recipient_status(recipient: &Value) -> String {
    let shown = words_after_a_number_hidden(crate::wire::daraja::free_text(
        recipient["status"].as_str().unwrap_or(""),
    ));
    match status_code(recipient) {
        Some(code) => format!("{shown} ({code})"),
        None => shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_is_url_encoded() {
        assert_eq!(
            send_body("sandbox", "+254712345678", "KES 1,500 paid. Asante!", Some("REMIT")),
            "username=sandbox&to=%2B254712345678&message=KES+1%2C500+paid.+Asante%21&bulkSMSMode=1&from=REMIT"
        );
    }

    const TO: &str = "+254711000111";

    /// An answer of one recipient, `number` as the gateway wrote it, taken.
    fn success_for(number: &str) -> String {
        format!(
            r#"{{"SMSMessageData":{{"Message":"Sent to 1/1","Recipients":[{{"statusCode":101,"number":"{number}","status":"Success","messageId":"ATXid_4"}}]}}}}"#
        )
    }

    #[test]
    fn a_success_for_another_number_is_not_this_texts() {
        let other = br#"{"SMSMessageData":{"Message":"Sent to 1/1","Recipients":[{"statusCode":101,"number":"+254799888777","status":"Success","messageId":"ATXid_1"}]}}"#;
        assert_eq!(
            read_answer(201, other, TO),
            SendAnswer::OtherNumber {
                status: "the answer names another number (+***777): Success (101)".into()
            }
        );
        // Whatever its status, in whatever order: not sent again to a gateway that answers for
        // a stranger.
        for body in [
            br#"{"SMSMessageData":{"Message":"Sent to 0/1","Recipients":[{"statusCode":500,"number":"+254799888777","status":"GatewayError"}]}}"#.as_slice(),
            br#"{"SMSMessageData":{"Message":"Sent to 1/2","Recipients":[{"statusCode":500,"number":"+254799888777","status":"GatewayError"},{"statusCode":101,"number":"+254799888666","status":"Success"}]}}"#.as_slice(),
            br#"{"SMSMessageData":{"Message":"Sent to 1/2","Recipients":[{"statusCode":101,"number":"+254799888666","status":"Success"},{"statusCode":500,"number":"+254799888777","status":"GatewayError"}]}}"#.as_slice(),
        ] {
            assert!(matches!(
                read_answer(201, body, TO),
                SendAnswer::OtherNumber { .. }
            ));
        }
        // Something that is no number of this text (a name, an address) is another's.
        for written in ["Wanjiru Kamau", "192.168.100.5:8443"] {
            assert!(
                matches!(
                    read_answer(201, success_for(written).as_bytes(), TO),
                    SendAnswer::OtherNumber { .. }
                ),
                "{written}"
            );
        }
        // Its own number written otherwise (`0…`, `00254…`) is its own.
        for written in ["0711000111", "00254711000111", "+254 711 000 111"] {
            assert!(
                matches!(
                    read_answer(201, success_for(written).as_bytes(), TO),
                    SendAnswer::Accepted { .. }
                ),
                "{written}"
            );
        }
        // Another number first, then one written with `X`: the latter is read, whatever the
        // order.
        for body in [
            br#"{"SMSMessageData":{"Message":"Sent to 1/2","Recipients":[{"statusCode":403,"number":"+254799888777","status":"InvalidPhoneNumber"},{"statusCode":101,"number":"+254711XXXYYY","status":"Success","messageId":"ATXid_5"}]}}"#.as_slice(),
            br#"{"SMSMessageData":{"Message":"Sent to 1/2","Recipients":[{"statusCode":101,"number":"+254711XXXYYY","status":"Success","messageId":"ATXid_5"},{"statusCode":403,"number":"+254799888777","status":"InvalidPhoneNumber"}]}}"#.as_slice(),
        ] {
            assert!(matches!(
                read_answer(201, body, TO),
                SendAnswer::Accepted { .. }
            ));
        }
        // Its own number among others is read, wherever it stands.
        let two = br#"{"SMSMessageData":{"Message":"Sent to 1/2","Recipients":[{"statusCode":403,"number":"+254799888777","status":"InvalidPhoneNumber"},{"statusCode":101,"number":"+254711000111","status":"Success","messageId":"ATXid_2"}]}}"#;
        assert_eq!(
            read_answer(201, two, TO),
            SendAnswer::Accepted {
                message_id: Some("ATXid_2".into()),
                status: "Success (101)".into()
            }
        );
        // Written without its `+`, it is the same number.
        let bare = br#"{"SMSMessageData":{"Message":"Sent to 1/1","Recipients":[{"statusCode":101,"number":"254711000111","status":"Success","messageId":"ATXid_3"}]}}"#;
        assert!(matches!(
            read_answer(201, bare, TO),
            SendAnswer::Accepted { .. }
        ));
    }

    #[test]
    fn answers_are_read_per_recipient() {
        let ok = br#"{"SMSMessageData":{"Message":"Sent to 1/1 Total Cost: KES 0.8000","Recipients":[{"statusCode":101,"number":"+254711XXXYYY","status":"Success","cost":"KES 0.8000","messageId":"ATPid_SampleTxnId123"}]}}"#;
        assert_eq!(
            read_answer(201, ok, TO),
            SendAnswer::Accepted {
                message_id: Some("ATPid_SampleTxnId123".into()),
                status: "Success (101)".into()
            }
        );
        let invalid = br#"{"SMSMessageData":{"Message":"Sent to 0/1","Recipients":[{"statusCode":403,"number":"+2547","status":"InvalidPhoneNumber","cost":"0","messageId":"None"}]}}"#;
        assert!(matches!(
            read_answer(201, invalid, TO),
            SendAnswer::Refused { .. }
        ));
        let gateway = br#"{"SMSMessageData":{"Message":"Sent to 0/1","Recipients":[{"statusCode":501,"number":"+254711","status":"GatewayError","cost":"0","messageId":"None"}]}}"#;
        assert!(matches!(
            read_answer(201, gateway, TO),
            SendAnswer::Retry { .. }
        ));
        assert!(matches!(
            read_answer(502, b"Bad gateway", TO),
            SendAnswer::Retry { .. }
        ));
        // Taken, maybe: a success whose answer cannot be read is not known (it was tried
        // again as if refused, and sent twice).
        assert!(matches!(
            read_answer(201, b"<html>ok</html>", TO),
            SendAnswer::Unknown { .. }
        ));
        assert!(matches!(
            read_answer(401, b"The supplied authentication is invalid", TO),
            SendAnswer::Refused { .. }
        ));
        // The gateway's words are kept and shown to admins: a number they echo is masked.
        let echoed = br#"{"SMSMessageData":{"Message":"Sent to 0/1 +254733111222","Recipients":[{"statusCode":403,"status":"InvalidPhoneNumber +254733111222"}]}}"#;
        assert_eq!(
            read_answer(201, echoed, TO),
            SendAnswer::Refused {
                status: "InvalidPhoneNumber +***222 (403)".into()
            }
        );
        let echoed = br#"{"SMSMessageData":{"Message":"Rejected 0733111222","Recipients":[]}}"#;
        assert_eq!(
            read_answer(201, echoed, TO),
            SendAnswer::Refused {
                status: "no recipient in the answer: Rejected ***222".into()
            }
        );
        // Words after the number may be its owner's name: not kept.
        let named = br#"{"SMSMessageData":{"Message":"InvalidPhoneNumber for +254733987654 (Zawadi Kiprotich)","Recipients":[]}}"#;
        assert_eq!(
            read_answer(201, named, TO),
            SendAnswer::Refused {
                status: "no recipient in the answer: InvalidPhoneNumber for +***654 ***".into()
            }
        );
        let named = br#"{"SMSMessageData":{"Message":"x","Recipients":[{"statusCode":403,"status":"InvalidPhoneNumber +254733111222 Baraka"}]}}"#;
        assert_eq!(
            read_answer(201, named, TO),
            SendAnswer::Refused {
                status: "InvalidPhoneNumber +***222 *** (403)".into()
            }
        );
    }
}
