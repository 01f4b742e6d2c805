//! Domain values that cannot hold a bad value: `KenyanPhone`, `CategoryName`, prefixed ids,
//! bounded text. Each is built only through its parser.

use crate::error::{Error, Result};
use crate::limits::{CATEGORY_NAME_BYTES_MAX, TEXT_BYTES_MAX};
use std::fmt;

/// A Kenyan mobile number, held as its 9-digit national significant number (NSN).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KenyanPhone {
    nsn: String,
}

impl KenyanPhone {
    /// Normalises any common spelling (`07…`, `01…`, `2547…`, `+2547…`, `00254…`, spaces,
    /// dashes, dots, brackets) by the rules of the wire-format reference §7. Never guesses:
    /// another country code or a wrong length is refused.
    pub fn parse(field: &str, input: &str) -> Result<KenyanPhone> {
        let bad =
            |why: &str| Error::invalid(field, format!("is not a Kenyan mobile number ({why})"));
        let mut cleaned = String::with_capacity(input.len());
        for c in input.trim().chars() {
            match c {
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => cleaned.push(c),
            }
        }
        let digits = match cleaned.strip_prefix('+') {
            Some(rest) => {
                if !rest.starts_with("254") {
                    return Err(bad("only +254 numbers are accepted"));
                }
                rest
            }
            None => cleaned.as_str(),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "it may contain only digits, spaces, dashes and a leading +",
            ));
        }
        let digits = match digits.strip_prefix("00") {
            Some(rest) if rest.starts_with("254") => rest,
            Some(_) => return Err(bad("only +254 numbers are accepted")),
            None => digits,
        };
        let nsn = match digits.len() {
            12 if digits.starts_with("254") => &digits[3..],
            10 if digits.starts_with('0') => &digits[1..],
            9 => digits,
            _ => return Err(bad("wrong length")),
        };
        if !(nsn.starts_with('7') || nsn.starts_with('1')) {
            return Err(bad("mobile numbers start with 07 or 01"));
        }
        Ok(KenyanPhone {
            nsn: nsn.to_string(),
        })
    }

    /// `+254712345678`: the stored, canonical form.
    pub fn e164(&self) -> String {
        format!("+254{}", self.nsn)
    }

    /// `254712345678`: the form Daraja wants.
    pub fn daraja(&self) -> String {
        format!("254{}", self.nsn)
    }

    /// `+254 7** *** 678`: what non-admins see.
    pub fn masked(&self) -> String {
        format!("+254 {}** *** {}", &self.nsn[..1], &self.nsn[6..])
    }
}

impl fmt::Debug for KenyanPhone {
    /// Masked, so that a phone can never reach a log through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KenyanPhone({})", self.masked())
    }
}

/// A spending category name: lowercase `[a-z0-9_]{1,32}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CategoryName(String);

impl CategoryName {
    /// Parses a name, naming `field` on error.
    pub fn parse(field: &str, input: &str) -> Result<CategoryName> {
        let ok = !input.is_empty()
            && input.len() <= CATEGORY_NAME_BYTES_MAX
            && input
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if ok {
            Ok(CategoryName(input.to_string()))
        } else {
            Err(Error::invalid(
                field,
                "must be 1 to 32 characters of a-z, 0-9 and _",
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text a person typed (names, notes): trimmed, 1–`TEXT_BYTES_MAX` bytes, no control
/// characters.
pub fn parse_text(field: &str, input: &str, required: bool) -> Result<Option<String>> {
    let t = input.trim();
    if t.is_empty() {
        return if required {
            Err(Error::invalid(field, "must not be empty"))
        } else {
            Ok(None)
        };
    }
    if t.len() > TEXT_BYTES_MAX {
        return Err(Error::invalid(
            field,
            format!("must be at most {TEXT_BYTES_MAX} bytes"),
        ));
    }
    if t.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(Some(t.to_string()))
}

/// A reference (deposit receipt number, account reference): 1–`max` visible ASCII characters.
pub fn parse_reference(field: &str, input: &str, max: usize) -> Result<String> {
    let ok = !input.is_empty() && input.len() <= max && input.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(input.to_string())
    } else {
        Err(Error::invalid(
            field,
            format!("must be 1 to {max} visible ASCII characters"),
        ))
    }
}

/// The kinds of object with a prefixed id.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum IdKind {
    /// `usr_`
    User,
    /// `esc_`
    Escrow,
    /// `cat_`
    Category,
    /// `pr_`
    PaymentRequest,
    /// `po_`
    Payout,
    /// `dep_`
    Deposit,
    /// `whe_`
    WebhookEvent,
}

impl IdKind {
    /// The prefix, without the underscore.
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::User => "usr",
            IdKind::Escrow => "esc",
            IdKind::Category => "cat",
            IdKind::PaymentRequest => "pr",
            IdKind::Payout => "po",
            IdKind::Deposit => "dep",
            IdKind::WebhookEvent => "whe",
        }
    }
}

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// A new time-ordered id: prefix, `_`, 10 characters of milliseconds and 16 of randomness
/// (Crockford base32, lowercase), so ids sort by creation time.
pub fn new_id(kind: IdKind) -> String {
    let mut random = [0u8; 10];
    crate::crypto::fill_random(&mut random);
    let ms = crate::time::now_unix_ms().max(0) as u128;
    let value: u128 = (ms << 80)
        | random
            .iter()
            .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    let mut out = String::with_capacity(kind.prefix().len() + 27);
    out.push_str(kind.prefix());
    out.push('_');
    for i in (0..26).rev() {
        let idx = ((value >> (i * 5)) & 31) as usize;
        out.push(CROCKFORD[idx] as char);
    }
    out
}

/// Checks that a client-supplied id has the shape of an id of `kind`; anything else cannot
/// exist, so it is `404`, not `400`.
pub fn check_id(kind: IdKind, id: &str) -> Result<()> {
    let what = match kind {
        IdKind::User => "user",
        IdKind::Escrow => "escrow",
        IdKind::Category => "category",
        IdKind::PaymentRequest => "payment request",
        IdKind::Payout => "payout",
        IdKind::Deposit => "deposit",
        IdKind::WebhookEvent => "webhook event",
    };
    let ok = id
        .strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| body.len() == 26 && body.bytes().all(|b| CROCKFORD.contains(&b)));
    if ok {
        Ok(())
    } else {
        Err(Error::NotFound { what })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_vectors_from_the_reference() {
        let good = [
            ("0712345678", "254712345678"),
            ("+254712345678", "254712345678"),
            ("254712345678", "254712345678"),
            ("712345678", "254712345678"),
            ("+254 712 345 678", "254712345678"),
            ("0712-345-678", "254712345678"),
            ("00254712345678", "254712345678"),
            ("0110123456", "254110123456"),
            ("+254110123456", "254110123456"),
            ("254 110 123 456", "254110123456"),
            ("(0712) 345.678", "254712345678"),
        ];
        for (input, want) in good {
            let p = KenyanPhone::parse("phone", input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(p.daraja(), want, "{input}");
            assert_eq!(p.e164(), format!("+{want}"), "{input}");
        }
        let bad = [
            "07123456789",
            "0812345678",
            "2540712345678",
            "+255712345678",
            "071234567",
            "0712 34567a",
            "",
            "+",
            "++254712345678",
            "0025571234567",
            "٠٧١٢٣٤٥٦٧٨",
        ];
        for input in bad {
            assert!(
                KenyanPhone::parse("phone", input).is_err(),
                "{input} must be refused"
            );
        }
    }

    #[test]
    fn phones_mask_and_never_debug_print_in_full() {
        let p = KenyanPhone::parse("phone", "0712345678").unwrap();
        assert_eq!(p.masked(), "+254 7** *** 678");
        assert!(!format!("{p:?}").contains("712345678"));
    }

    #[test]
    fn category_names() {
        assert!(CategoryName::parse("c", "school_fees").is_ok());
        assert!(CategoryName::parse("c", &"a".repeat(32)).is_ok());
        for bad in [
            "",
            "School",
            "x'); DROP TABLE escrows;--",
            "<script>",
            &"a".repeat(33),
            "a b",
        ] {
            assert!(CategoryName::parse("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_prefixed_checked_and_time_ordered() {
        let a = new_id(IdKind::Escrow);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id(IdKind::Escrow);
        assert!(a.starts_with("esc_") && a.len() == 30);
        assert!(a < b);
        assert!(check_id(IdKind::Escrow, &a).is_ok());
        assert!(check_id(IdKind::PaymentRequest, &a).is_err());
        assert!(check_id(IdKind::Escrow, "esc_../../etc/passwd").is_err());
    }
}
