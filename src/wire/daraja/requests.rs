//! What remit sends to Daraja and what Daraja answers at once (reference §1–§3, §6.4): the
//! OAuth token, B2C and B2B payment requests, Transaction Status and Account Balance queries,
//! their acknowledgements and synchronous errors, and the `SecurityCredential`.

use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::Value;

/// `POST /mpesa/b2c/v3/paymentrequest`: pay a phone.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)] // Daraja's field names
pub struct B2cRequest<'a> {
    #[serde(rename = "OriginatorConversationID")]
    pub originator_conversation_id: &'a str,
    pub initiator_name: &'a str,
    pub security_credential: &'a str,
    #[serde(rename = "CommandID")]
    pub command_id: &'a str,
    /// Whole KES.
    pub amount: i64,
    pub party_a: &'a str,
    /// `2547…`/`2541…`, 12 digits.
    pub party_b: &'a str,
    pub remarks: &'a str,
    #[serde(rename = "QueueTimeOutURL")]
    pub queue_time_out_url: &'a str,
    #[serde(rename = "ResultURL")]
    pub result_url: &'a str,
    pub occassion: &'a str,
}

/// `POST /mpesa/b2b/v1/paymentrequest`: pay a PayBill (`BusinessPayBill`) or a Till
/// (`BusinessBuyGoods`). It carries our `OriginatorConversationID` too (Daraja ignores fields
/// it does not know).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)] // Daraja's field names
pub struct B2bRequest<'a> {
    #[serde(rename = "OriginatorConversationID")]
    pub originator_conversation_id: &'a str,
    pub initiator: &'a str,
    pub security_credential: &'a str,
    #[serde(rename = "CommandID")]
    pub command_id: &'a str,
    pub sender_identifier_type: &'a str,
    /// Daraja's own spelling.
    pub reciever_identifier_type: &'a str,
    /// Whole KES.
    pub amount: i64,
    pub party_a: &'a str,
    pub party_b: &'a str,
    /// The account at the biller (PayBill only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_reference: Option<&'a str>,
    pub remarks: &'a str,
    #[serde(rename = "QueueTimeOutURL")]
    pub queue_time_out_url: &'a str,
    #[serde(rename = "ResultURL")]
    pub result_url: &'a str,
}

/// `POST /mpesa/transactionstatus/v1/query`: what became of a payment (by its receipt when
/// known, else by our `OriginatorConversationID`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)] // Daraja's field names
pub struct StatusRequest<'a> {
    pub initiator: &'a str,
    pub security_credential: &'a str,
    #[serde(rename = "CommandID")]
    pub command_id: &'a str,
    #[serde(rename = "TransactionID", skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<&'a str>,
    #[serde(
        rename = "OriginalConversationID",
        skip_serializing_if = "Option::is_none"
    )]
    pub original_conversation_id: Option<&'a str>,
    pub party_a: &'a str,
    pub identifier_type: &'a str,
    #[serde(rename = "ResultURL")]
    pub result_url: &'a str,
    #[serde(rename = "QueueTimeOutURL")]
    pub queue_time_out_url: &'a str,
    pub remarks: &'a str,
    pub occasion: &'a str,
}

/// `POST /mpesa/accountbalance/v1/query`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)] // Daraja's field names
pub struct BalanceRequest<'a> {
    pub initiator: &'a str,
    pub security_credential: &'a str,
    #[serde(rename = "CommandID")]
    pub command_id: &'a str,
    pub party_a: &'a str,
    pub identifier_type: &'a str,
    pub remarks: &'a str,
    #[serde(rename = "QueueTimeOutURL")]
    pub queue_time_out_url: &'a str,
    #[serde(rename = "ResultURL")]
    pub result_url: &'a str,
}

/// What Daraja answered at once to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAnswer {
    /// `ResponseCode` `"0"`: accepted for processing (not paid yet).
    Accepted {
        /// `ConversationID`: the result will carry it.
        conversation_id: String,
    },
    /// `ResponseCode` `"0"` without a `ConversationID`: it may have been taken, and its result
    /// cannot be told by the id Daraja gives; not a refusal.
    AcceptedWithoutConversation {
        /// `ResponseDescription`.
        message: String,
    },
    /// `ResponseCode` other than `"0"`. The reference documents only `"0"` (accepted) and the
    /// `errorCode` bodies, so this says nothing sure about whether the request was taken.
    NotAccepted {
        /// `ResponseCode`.
        code: String,
        /// `ResponseDescription`.
        message: String,
    },
    /// `{"requestId", "errorCode", "errorMessage"}`.
    Error {
        /// `errorCode` (`400.002.02`, `500.002.1001`, …).
        code: String,
        /// `errorMessage`.
        message: String,
    },
    /// Anything else (an HTML error page, an empty body).
    Unreadable,
}

/// Reads an acknowledgement or a synchronous error, whatever the HTTP status (which the caller
/// weighs: only a `4xx` with a `400.*` `errorCode` is a refusal).
pub fn sync_answer(body: &[u8]) -> SyncAnswer {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return SyncAnswer::Unreadable;
    };
    let text = |key: &str| match value.get(key) {
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    if let Some(code) = text("errorCode") {
        return SyncAnswer::Error {
            code,
            message: super::free_text(&text("errorMessage").unwrap_or_default()),
        };
    }
    match (text("ResponseCode"), text("ConversationID")) {
        (Some(code), Some(conversation_id)) if code == "0" => {
            SyncAnswer::Accepted { conversation_id }
        }
        (Some(code), None) if code == "0" => SyncAnswer::AcceptedWithoutConversation {
            message: super::free_text(&text("ResponseDescription").unwrap_or_default()),
        },
        (Some(code), _) => SyncAnswer::NotAccepted {
            code,
            message: super::free_text(&text("ResponseDescription").unwrap_or_default()),
        },
        (None, _) => SyncAnswer::Unreadable,
    }
}

/// An access token and how long it lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// `access_token`.
    pub access_token: String,
    /// `expires_in`, in seconds (a number or a numeric string).
    pub expires_in_s: i64,
}

/// How long Daraja's tokens live (its `expires_in`, `"3599"`): the lifetime of one whose
/// answer says none.
const TOKEN_LIFETIME_S: i64 = 3_599;

/// Reads the OAuth answer.
pub fn token(body: &[u8]) -> Result<Token> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| Error::internal("the OAuth answer is not JSON"))?;
    let access_token = value
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::internal("the OAuth answer has no access_token"))?
        .to_string();
    // Whole seconds, or not (`3599.0`, `"1.5"`: its whole seconds; one too large for the
    // clock, `1e400`, as long as a token is kept at most: the cast saturates). Not said (or
    // `null`): the hour Daraja's tokens live. Each of these stopped every payout, the token
    // refused as unreadable.
    let seconds = |f: f64| (!f.is_nan()).then_some(f as i64);
    let expires_in_s = match value.get("expires_in") {
        // (Read from its text: a number past f64's range is no f64 to serde_json.)
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.to_string().parse().ok().and_then(seconds)),
        Some(Value::String(s)) => {
            let s = s.trim();
            s.parse().ok().or_else(|| s.parse().ok().and_then(seconds))
        }
        None | Some(Value::Null) => Some(TOKEN_LIFETIME_S),
        _ => None,
    }
    .ok_or_else(|| Error::internal("the OAuth answer's expires_in is not a number of seconds"))?;
    Ok(Token {
        access_token,
        expires_in_s,
    })
}

/// `SecurityCredential`: base64 of the initiator password encrypted with RSA PKCS#1 v1.5 under
/// the public key of M-Pesa's certificate (PEM).
pub fn security_credential(password: &str, certificate_pem: &str) -> Result<String> {
    use base64::Engine;
    use rsa::pkcs8::DecodePublicKey;
    use x509_cert::der::{DecodePem, Encode};
    if !certificate_pem.contains("-----BEGIN CERTIFICATE-----") {
        // The PEM decoder's own words for this ("invalid data (NUL byte)") mislead.
        return Err(Error::internal(
            "the certificate is not a PEM X.509 certificate: it has no -----BEGIN CERTIFICATE----- line (the Daraja portal's certificate is such a text file)",
        ));
    }
    let certificate =
        x509_cert::Certificate::from_pem(certificate_pem.as_bytes()).map_err(|e| {
            Error::internal(format!(
                "the certificate is not a PEM X.509 certificate: {e}"
            ))
        })?;
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| Error::internal(format!("the certificate's public key: {e}")))?;
    let key = rsa::RsaPublicKey::from_public_key_der(&spki)
        .map_err(|e| Error::internal(format!("the certificate's key is not an RSA key: {e}")))?;
    let sealed = key
        .encrypt(
            &mut rand_core::OsRng,
            rsa::Pkcs1v15Encrypt,
            password.as_bytes(),
        )
        .map_err(|e| Error::internal(format!("cannot encrypt the initiator password: {e}")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_no_certificate_is_told_in_words() {
        let e = crate::error::describe(&security_credential("pw", "junk\n").unwrap_err());
        assert!(e.contains("no -----BEGIN CERTIFICATE----- line"), "{e}");
        assert!(!e.contains("NUL"), "{e}");
    }

    #[test]
    fn a_phone_daraja_echoes_in_its_words_is_masked_and_its_ids_are_not() {
        assert_eq!(
            sync_answer(br#"{"requestId":"1","errorCode":"400.002.02","errorMessage":"Bad Request - Invalid PartyB 254712345678"}"#),
            SyncAnswer::Error { code: "400.002.02".into(), message: "Bad Request - Invalid PartyB ***678".into() }
        );
        assert_eq!(
            sync_answer(br#"{"ConversationID":"AG_20250314_00000000000000000000","ResponseCode":"0","ResponseDescription":"Accept the service request successfully."}"#),
            SyncAnswer::Accepted { conversation_id: "AG_20250314_00000000000000000000".into() }
        );
        assert!(matches!(
            sync_answer(br#"{"ResponseCode":"1","ResponseDescription":"0712345678 is not registered on M-Pesa 600998"}"#),
            SyncAnswer::NotAccepted { message, .. } if message == "***678 is not registered on M-Pesa 600998"
        ));
    }

    #[test]
    fn answers_are_told_apart() {
        assert_eq!(
            sync_answer(br#"{"ConversationID":"AG_1","OriginatorConversationID":"x","ResponseCode":"0","ResponseDescription":"Accept"}"#),
            SyncAnswer::Accepted { conversation_id: "AG_1".into() }
        );
        assert_eq!(
            sync_answer(br#"{"requestId":"1","errorCode":"500.002.1001","errorMessage":"Duplicate OriginatorConversationID"}"#),
            SyncAnswer::Error { code: "500.002.1001".into(), message: "Duplicate OriginatorConversationID".into() }
        );
        assert!(
            matches!(sync_answer(br#"{"ResponseCode":1,"ResponseDescription":"no"}"#), SyncAnswer::NotAccepted { code, .. } if code == "1")
        );
        assert_eq!(
            sync_answer(br#"{"ResponseCode":"0","ResponseDescription":"Accept"}"#),
            SyncAnswer::AcceptedWithoutConversation {
                message: "Accept".into()
            }
        );
        assert_eq!(sync_answer(b"<html>"), SyncAnswer::Unreadable);
    }

    #[test]
    fn expires_in_may_be_a_number_or_a_string() {
        assert_eq!(
            token(br#"{"access_token":"t","expires_in":3599}"#)
                .unwrap()
                .expires_in_s,
            3599
        );
        assert_eq!(
            token(br#"{"access_token":"t","expires_in":"3599"}"#)
                .unwrap()
                .expires_in_s,
            3599
        );
        assert!(token(br#"{"access_token":"","expires_in":1}"#).is_err());
        for (said, seconds) in [
            (r#""expires_in":3599.0"#, 3599),
            (r#""expires_in":"1.5""#, 1),
            (r#""expires_in":99999999999999999999"#, i64::MAX),
            (r#""expires_in":1e400"#, i64::MAX),
            (r#""expires_in":null"#, 3_599),
            (r#""token_type":"Bearer""#, 3_599),
        ] {
            let body = format!(r#"{{"access_token":"t",{said}}}"#);
            assert_eq!(
                token(body.as_bytes()).unwrap().expires_in_s,
                seconds,
                "{said}"
            );
        }
        assert!(token(br#"{"access_token":"t","expires_in":"soon"}"#).is_err());
        assert!(token(br#"{"access_token":"t","expires_in":[1]}"#).is_err());
    }

    #[test]
    fn the_b2b_body_spells_fields_as_daraja_does() {
        let body = serde_json::to_value(B2bRequest {
            originator_conversation_id: "o",
            initiator: "op",
            security_credential: "c",
            command_id: "BusinessPayBill",
            sender_identifier_type: "4",
            reciever_identifier_type: "4",
            amount: 1500,
            party_a: "600998",
            party_b: "888880",
            account_reference: Some("37194502618"),
            remarks: "r",
            queue_time_out_url: "q",
            result_url: "u",
        })
        .unwrap();
        for key in [
            "OriginatorConversationID",
            "Initiator",
            "RecieverIdentifierType",
            "AccountReference",
            "QueueTimeOutURL",
            "ResultURL",
            "CommandID",
        ] {
            assert!(body.get(key).is_some(), "{key}: {body}");
        }
        assert_eq!(body["Amount"], 1500);
    }
}
