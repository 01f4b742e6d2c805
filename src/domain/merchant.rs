//! `MerchantAccount`: where a payment goes: a PayBill number and an account at the biller, a
//! Till number, or a phone. It is PII: stored encrypted, as the JSON its view shows.

use super::{parse_reference, KenyanPhone, MerchantType};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Length of a PayBill account reference: Daraja's `AccountReference` takes up to 13.
const ACCOUNT_REFERENCE_BYTES_MAX: usize = 13;
/// Length of a stored account reference: requests made before the limit was Daraja's may
/// hold up to 20 (M-Pesa refuses them, and the payout's money returns).
const STORED_ACCOUNT_REFERENCE_BYTES_MAX: usize = 20;

/// Where the money goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerchantAccount {
    /// A PayBill number and the account at the biller (paid by B2B `BusinessPayBill`).
    Paybill {
        /// The PayBill number.
        number: String,
        /// The account at the biller (meter number, student number…).
        account_reference: String,
    },
    /// A Till number (paid by B2B `BusinessBuyGoods`).
    Till {
        /// The Till number.
        number: String,
    },
    /// A mobile number (paid by B2C).
    Phone(KenyanPhone),
}

/// The JSON form of an account: stored (encrypted) and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MerchantAccountView {
    /// `paybill`, `till` or `phone`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The PayBill or Till number, or the phone in E.164 (masked for non-owners).
    pub number: String,
    /// The account at the biller, for a PayBill.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub account_reference: Option<String>,
}

impl MerchantAccount {
    /// Parses `{"type", "number", "accountReference"}` parts, naming the field at fault.
    pub fn parse(
        kind: &str,
        number: &str,
        account_reference: Option<&str>,
    ) -> Result<MerchantAccount> {
        Self::parse_with(kind, number, account_reference, ACCOUNT_REFERENCE_BYTES_MAX)
    }

    fn parse_with(
        kind: &str,
        number: &str,
        account_reference: Option<&str>,
        reference_max: usize,
    ) -> Result<MerchantAccount> {
        let short_code = |n: &str| {
            if (5..=8).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()) {
                Ok(n.to_string())
            } else {
                Err(Error::invalid(
                    "merchantAccount.number",
                    "must be a PayBill or Till number of 5 to 8 digits",
                ))
            }
        };
        let kind = kind.parse::<MerchantType>().map_err(|_| {
            Error::invalid("merchantAccount.type", "must be paybill, till or phone")
        })?;
        match (kind, account_reference) {
            (MerchantType::Paybill, Some(reference)) => Ok(MerchantAccount::Paybill {
                number: short_code(number)?,
                account_reference: parse_reference(
                    "merchantAccount.accountReference",
                    reference,
                    reference_max,
                )?,
            }),
            // The fields in the order a form shows them: a bad number is said before the
            // missing reference.
            (MerchantType::Paybill, None) => {
                short_code(number)?;
                Err(Error::MissingField {
                    field: "merchantAccount.accountReference".into(),
                })
            }
            (MerchantType::Till, None) => Ok(MerchantAccount::Till {
                number: short_code(number)?,
            }),
            (MerchantType::Phone, None) => Ok(MerchantAccount::Phone(KenyanPhone::parse(
                "merchantAccount.number",
                number,
            )?)),
            (MerchantType::Till | MerchantType::Phone, Some(_)) => Err(Error::invalid(
                "merchantAccount.accountReference",
                "is only for paybill accounts",
            )),
        }
    }

    /// Reads back the stored form (decrypted): the same parser as a request's (with the older,
    /// longer reference limit), so a stored account is always a valid one.
    pub fn from_stored(json: &str) -> Result<MerchantAccount> {
        let view: MerchantAccountView = serde_json::from_str(json)
            .map_err(|e| Error::internal(format!("stored merchant account: {e}")))?;
        MerchantAccount::parse_with(
            &view.kind,
            &view.number,
            view.account_reference.as_deref(),
            STORED_ACCOUNT_REFERENCE_BYTES_MAX,
        )
        .map_err(|e| Error::internal(format!("stored merchant account: {e}")))
    }

    /// The kind of account.
    pub fn kind(&self) -> MerchantType {
        match self {
            MerchantAccount::Paybill { .. } => MerchantType::Paybill,
            MerchantAccount::Till { .. } => MerchantType::Till,
            MerchantAccount::Phone(_) => MerchantType::Phone,
        }
    }

    /// The number as it is stored and paid: PayBill or Till number, or the phone in E.164.
    pub fn number(&self) -> String {
        match self {
            MerchantAccount::Paybill { number, .. } | MerchantAccount::Till { number } => {
                number.clone()
            }
            MerchantAccount::Phone(phone) => phone.e164(),
        }
    }

    /// The account at the biller, for a PayBill.
    pub fn account_reference(&self) -> Option<&str> {
        match self {
            MerchantAccount::Paybill {
                account_reference, ..
            } => Some(account_reference),
            _ => None,
        }
    }

    /// The full view (stored, and shown to the request's owners).
    pub fn view(&self) -> MerchantAccountView {
        MerchantAccountView {
            kind: self.kind().as_str().to_string(),
            number: self.number(),
            account_reference: self.account_reference().map(str::to_string),
        }
    }

    /// The stored JSON.
    pub fn stored(&self) -> Result<String> {
        serde_json::to_string(&self.view()).map_err(Error::internal)
    }
}

/// `***` and at most the last three characters of `number`, never more than half of them:
/// `***880` for 888880, `***1` for X1, `***` for a single character. The stars do not
/// count what they hide, so a short reference is not given away by its length either.
pub fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let keep = (chars.len() / 2).min(3);
    format!(
        "***{}",
        chars[chars.len() - keep..].iter().collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_accounts_read_back_as_they_were() {
        for account in [
            MerchantAccount::parse("paybill", "888880", Some("12345678")).unwrap(),
            MerchantAccount::parse("till", "123456", None).unwrap(),
            MerchantAccount::parse("phone", "0711222333", None).unwrap(),
        ] {
            let stored = account.stored().unwrap();
            assert_eq!(MerchantAccount::from_stored(&stored).unwrap(), account);
        }
        assert_eq!(
            MerchantAccount::parse("phone", "0711222333", None)
                .unwrap()
                .stored()
                .unwrap(),
            r#"{"type":"phone","number":"+254711222333"}"#
        );
    }

    #[test]
    fn a_paybill_without_its_reference_and_a_bad_number_is_told_of_the_number_first() {
        let field = |e: Error| match e {
            Error::Validation { field, .. } | Error::MissingField { field } => field,
            other => panic!("{other:?}"),
        };
        for number in ["", "12", "abcde"] {
            let e = MerchantAccount::parse("paybill", number, None).unwrap_err();
            assert_eq!(field(e), "merchantAccount.number", "{number:?}");
        }
        let e = MerchantAccount::parse("paybill", "888880", None).unwrap_err();
        assert_eq!(field(e), "merchantAccount.accountReference");
    }

    #[test]
    fn masking_keeps_the_last_three() {
        assert_eq!(mask_number("888880"), "***880");
        assert_eq!(mask_number("12345678"), "***678");
        assert_eq!(mask_number("ACC1"), "***C1");
        assert_eq!(mask_number("X1"), "***1");
        assert_eq!(mask_number("7"), "***");
        assert_eq!(mask_number(""), "***");
    }
}
