//! `KenyanPhone`: a Kenyan mobile number in any common spelling, held in one canonical form.

use crate::error::{Error, Result};
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
        // Not trimmed: what may surround the digits is what may separate them (the OpenAPI
        // document's pattern says the same); a tab or a newline is refused, not dropped.
        for c in input.chars() {
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
        if input.trim().is_empty() {
            return Err(Error::invalid(
                field,
                "is empty: give a Kenyan mobile number, such as 0712 345 678",
            ));
        }
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(
                "it may contain only digits, a leading +, and spaces, dashes, dots or brackets between them",
            ));
        }
        // `00` dials abroad, but ten digits are a domestic number (`0` and nine): `0012345678`
        // is told why it is not a mobile number, not that it is foreign.
        let digits = match digits.strip_prefix("00").filter(|_| digits.len() != 10) {
            Some(rest) if rest.starts_with("254") => rest,
            Some(_) => return Err(bad("only +254 numbers are accepted")),
            None => digits,
        };
        let nsn = match digits.len() {
            12 if digits.starts_with("254") => &digits[3..],
            10 if digits.starts_with('0') => &digits[1..],
            // Nine digits are the number without its 0; with it, one is missing (`071234567`).
            9 if !digits.starts_with('0') => digits,
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
    fn refusals_say_why() {
        let why = |input: &str| KenyanPhone::parse("phone", input).unwrap_err().to_string();
        for (input, reason) in [
            ("0000000000", "mobile numbers start with 07 or 01"),
            ("0012345678", "mobile numbers start with 07 or 01"),
            ("00255712345678", "only +254 numbers are accepted"),
            ("+255712345678", "only +254 numbers are accepted"),
            ("07123456789", "wrong length"),
            ("071234567", "wrong length"),
            // The separators taken are the ones said; nothing at all is said as nothing.
            (
                "0712 x45 678",
                "spaces, dashes, dots or brackets between them",
            ),
            ("", "is empty: give a Kenyan mobile number"),
            ("   ", "is empty: give a Kenyan mobile number"),
        ] {
            assert!(why(input).contains(reason), "{input}: {}", why(input));
        }
    }

    /// What the OpenAPI document's pattern for a phone takes is what `parse` takes, at the
    /// ends too: the separators, never other white space.
    #[test]
    fn the_documented_pattern_of_a_phone_is_the_rule() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
        let phone = &doc["components"]["schemas"]["NewEscrow"]["properties"]["recipientPhone"];
        let pattern =
            jsonschema::draft202012::new(&serde_json::json!({"pattern": phone["pattern"]}))
                .unwrap();
        for input in [
            "0712345678",
            " 0712345678 ",
            "(0712) 345-678.",
            "+254 712 345 678",
            "0712345678\n",
            "\t0712345678",
            "\u{a0}0712345678",
            "0712345678\u{2028}",
            "0712345678\u{3000}",
            "+254712345678\r",
            "07123456789",
        ] {
            assert_eq!(
                pattern.is_valid(&serde_json::json!(input)),
                KenyanPhone::parse("phone", input).is_ok(),
                "docs/openapi.json and parse disagree on {input:?}"
            );
        }
    }

    #[test]
    fn phones_mask_and_never_debug_print_in_full() {
        let p = KenyanPhone::parse("phone", "0712345678").unwrap();
        assert_eq!(p.masked(), "+254 7** *** 678");
        assert!(!format!("{p:?}").contains("712345678"));
    }
}
