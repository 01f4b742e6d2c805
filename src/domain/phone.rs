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

/// A number written by hand inside other text: its digits, and up to two characters between
/// each group of them and the next from those a phone is written with (`0712 345 678`,
/// `0712.345.678`, `0712_345_678`, `+254/712/345/678`, `(0712) 345-678`). An amount's decimals
/// end it (`number_runs`: `1500.00`). Byte range (first digit to last), its digit groups and
/// what joins them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberRun {
    /// From its first digit to its last, in bytes.
    pub span: std::ops::Range<usize>,
    /// Its groups of digits, in order.
    pub groups: Vec<String>,
    /// Where each group is, in bytes.
    pub group_spans: Vec<std::ops::Range<usize>>,
    /// What joins each group to the next.
    pub joiners: Vec<String>,
}

/// How a Kenyan mobile number is written in groups (their lengths), by the digits it begins
/// with: `0712345678`, `0712 345 678`, `0712-345678`, `0712 34 56 78`, `071 234 5678`,
/// `0712-34-5678`, `0 712 345 678`, `07 12 34 56 78`; `254712345678`,
/// `254 712345678`, `254 712 345 678`, `254 712 345678`, `254712 345 678`, `254712 345678`
/// (`+` or not); the same after `00`. A shape that begins with a group of one or two digits
/// counts only at a number's start, its groups joined alike throughout: `15-07-2026-0001` (a
/// date and a serial) and `07-12_10:15:30` (a date and a time) are no phones.
const PHONE_SHAPES: [(&str, &[&[usize]]); 3] = [
    (
        "0",
        &[
            &[10],
            &[4, 3, 3],
            &[4, 6],
            &[4, 2, 2, 2],
            &[3, 3, 4],
            &[4, 2, 4],
            &[1, 3, 3, 3],
            &[2, 2, 2, 2, 2],
        ],
    ),
    (
        "254",
        &[
            &[12],
            &[3, 9],
            &[3, 3, 3, 3],
            &[3, 3, 6],
            &[6, 3, 3],
            &[6, 6],
        ],
    ),
    (
        "00254",
        &[
            &[14],
            &[5, 9],
            &[5, 3, 3, 3],
            &[5, 3, 3, 6],
            &[8, 3, 3],
            &[8, 6],
        ],
    ),
];

/// Shapes a log's masking also takes for a phone (`NumberRun::phones_loosely`), which a field's
/// refusal must not (they are as often an invoice's or a receipt's number): `07 1234 5678`
/// (read as `INV/01/2026/0001` is) and the nine digits of a mobile without its `0`
/// (`712 345 678`, `712-345678`; nine in a row are masked as any long number is).
const LOOSE_PHONE_SHAPES: [(&str, &[&[usize]]); 2] =
    [("0", &[&[2, 4, 4]]), ("", &[&[3, 3, 3], &[3, 6]])];

impl NumberRun {
    /// Its digits, all together.
    pub fn digits(&self) -> String {
        self.groups.concat()
    }

    /// The spans (in bytes) of its groups in a row that are a Kenyan mobile number written
    /// whole, in one of the ways people write one (`PHONE_SHAPES`: `07…` or `01…` in ten
    /// digits, `2547…` or `2541…` in twelve, after `00` in fourteen). Nine digits without their
    /// `0` are not taken for one (too many receipt numbers are nine digits), nor digits grouped
    /// as no phone is (`15-07-2026-0001`, a date and a serial).
    pub fn phones(&self) -> Vec<std::ops::Range<usize>> {
        self.phones_shaped(&PHONE_SHAPES)
    }

    /// `phones`, and numbers that may be a phone written another way (`LOOSE_PHONE_SHAPES`):
    /// what a log masks, where masking an invoice's number costs nothing.
    pub fn phones_loosely(&self) -> Vec<std::ops::Range<usize>> {
        let mut found = self.phones_shaped(&PHONE_SHAPES);
        found.extend(self.phones_shaped(&LOOSE_PHONE_SHAPES));
        found
    }

    /// Whether it begins with an IPv4 address and its port (`127.0.0.1:40013`, `10.0.12.200:8443`):
    /// four groups of one to three digits, at most 255, without a leading zero, joined by single
    /// dots, then `:` and the port; and no phone read in those four groups (`254.110.123.100:80`
    /// and `0.110.123.100:80` are numbers a person may write so, and stay masked).
    fn begins_with_an_address_and_port(&self) -> bool {
        self.groups.len() >= 5
            && self.joiners[..3].iter().all(|j| j == ".")
            && self.joiners[3] == ":"
            && self.groups[..4].iter().all(|g| {
                g.len() <= 3
                    && (g == "0" || !g.starts_with('0'))
                    && g.parse::<u16>().is_ok_and(|n| n <= 255)
            })
            && self
                .phones()
                .iter()
                .all(|phone| phone.start >= self.group_spans[4].start)
    }

    /// The spans of the groups in a row that a shape of `shapes_by_prefix` reads as a mobile
    /// number, from every group on: spans may overlap, so that masking them all leaves no phone
    /// readable that another reading began before (`100/712/345/678`, `0110/254/712/345/678`).
    fn phones_shaped(
        &self,
        shapes_by_prefix: &[(&str, &[&[usize]])],
    ) -> Vec<std::ops::Range<usize>> {
        let mut found = Vec::new();
        for first in 0..self.groups.len() {
            for &(prefix, shapes) in shapes_by_prefix {
                for shape in shapes {
                    let Some(groups) = self.groups.get(first..first + shape.len()) else {
                        continue;
                    };
                    if groups.iter().map(String::len).ne(shape.iter().copied()) {
                        continue;
                    }
                    let joins = &self.joiners[first..first + shape.len() - 1];
                    if shape[0] <= 2 && (first > 0 || joins.iter().any(|j| *j != joins[0])) {
                        continue;
                    }
                    let digits = groups.concat();
                    let mobile = digits
                        .strip_prefix(prefix)
                        .and_then(|rest| rest.bytes().next())
                        .is_some_and(|b| matches!(b, b'7' | b'1'));
                    if mobile {
                        let last = first + shape.len() - 1;
                        found.push(self.group_spans[first].start..self.group_spans[last].end);
                    }
                }
            }
        }
        found
    }
}

/// What may stand between the groups of a number written by hand.
fn joins_digits(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'-' | b'.' | b',' | b'/' | b'_' | b':' | b'(' | b')' | b'+' | b'~' | b'=' | b'@'
    )
}

/// The numbers in `text` (`NumberRun`), with at least `min_digits` digits each.
pub fn number_runs(text: &str, min_digits: usize) -> Vec<NumberRun> {
    let b = text.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut groups = Vec::new();
        let mut group_spans = Vec::new();
        let mut joiners = Vec::new();
        let mut end;
        // After `j`: up to two joining characters, then a digit (where a next group begins).
        let group_after = |j: usize| {
            let mut k = j;
            while k < b.len() && k - j < 2 && joins_digits(b[k]) {
                k += 1;
            }
            (k > j && k < b.len() && b[k].is_ascii_digit()).then_some(k)
        };
        loop {
            let from = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            groups.push(text[from..i].to_string());
            group_spans.push(from..i);
            end = i;
            // Up to two joining characters, then more digits: the same number goes on, unless
            // they are an amount's decimals: a `.` or `,` not joining groups before, then two
            // digits or fewer, the last group (`1500.00`, `1,500,000.00`; not `07.12.34.56.78`).
            let Some(j) = group_after(i) else { break };
            let next_digits = b[j..].iter().take_while(|c| c.is_ascii_digit()).count();
            let point = b[i..j]
                .iter()
                .find(|c| matches!(c, b'.' | b','))
                .filter(|c| !b[start..i].contains(c));
            if point.is_some() && next_digits <= 2 && group_after(j + next_digits).is_none() {
                break;
            }
            joiners.push(text[i..j].to_string());
            i = j;
        }
        if groups.iter().map(String::len).sum::<usize>() >= min_digits {
            runs.push(NumberRun {
                span: start..end,
                groups,
                group_spans,
                joiners,
            });
        }
        i = end.max(start + 1);
    }
    runs
}

/// `text` with each number of nine digits or more in it (`number_runs`: a phone however its
/// groups are joined, `0712 345 678`, `0712.345.678`, `+254 712  345 678`) written `***` and its
/// last three digits: words from outside (M-Pesa's, a Stripe dispute's reason) that the file,
/// the log and the views keep.
/// An IPv4 address and its port (`127.0.0.1:40013`, a gateway's address in a transport error) are
/// no phone: a run that begins with them is masked from the port on, if that and what follows
/// are nine digits or more (`NumberRun::begins_with_an_address_and_port`).
pub fn long_numbers_masked(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for run in number_runs(text, 9) {
        let from = if run.begins_with_an_address_and_port() {
            4
        } else {
            0
        };
        let digits: String = run.groups[from..].concat();
        if digits.len() < 9 {
            continue;
        }
        let start = run.group_spans[from].start;
        out.push_str(&text[copied..start]);
        out.push_str("***");
        out.push_str(&digits[digits.len() - 3..]);
        copied = run.span.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether `text` holds a Kenyan mobile number written whole (`NumberRun::phones`):
/// what a field kept as typed (a cash deposit's reference, a receipt, a category's name) must
/// not be, since the file keeps it readable.
pub fn holds_a_phone(text: &str) -> bool {
    number_runs(text, 10)
        .iter()
        .any(|run| !run.phones().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_written_by_hand_are_found_whatever_separates_their_groups() {
        for (text, phone) in [
            ("0712345678", true),
            ("Wanjiku-0712345678", true),
            ("x0712_345_678y", true),
            ("+254/712/345/678", true),
            ("254:712:345:678", true),
            ("0712@345@678", true),
            ("(0712) 345-678", true),
            ("0712  345  678", true),
            ("pay 0712 345 678 1500", true),
            ("0112345678", true),
            ("254112345678", true),
            // Not a phone: receipts, amounts, other lengths and prefixes.
            ("123456789", false),
            ("712345678", false),
            ("QK12345678", false),
            ("0812345678", false),
            ("1,500,000.00", false),
            ("071234567", false),
            ("0712.34", false),
            ("RCPT-2026-000123", false),
            ("0712   345 678", false),
            ("00254712345678", true),
            ("00254 712 345 678", true),
            ("07.12.34.56.78", true),
            ("0712 34 56 78", true),
            ("254 712 345678", true),
            // Dates and serials grouped as no phone is.
            ("15-07-2026-0001", false),
            ("2026-07-15-000123", false),
            ("INV/01/2026/0001", false),
            ("DEP 2026-01-15 123456", false),
            ("term_2026_07_15_123456", false),
            ("07-12_10:15:30", false),
            ("order-2026-07-1234-5678", false),
            // Other ways people write one.
            ("254712-345-678", true),
            ("+254712-345-678", true),
            ("254712-345678", true),
            ("071-234-5678", true),
            ("0712-34-5678", true),
            ("0 712 345 678", true),
            // Read as a date and a serial, as `INV/01/2026/0001` is.
            ("07 1234 5678", false),
            ("fees_071_234_5678", true),
            ("RMT-2026-0001", false),
        ] {
            assert_eq!(holds_a_phone(text), phone, "{text}");
        }
        // An amount's decimals end the number; a dot between groups of three does not.
        let runs = number_runs("KES 1500000.00 to 0712.345.678", 7);
        assert!(runs.iter().all(|r| r.phones().len() <= 1));
        let spans: Vec<&str> = runs
            .iter()
            .map(|r| &"KES 1500000.00 to 0712.345.678"[r.span.clone()])
            .collect();
        assert_eq!(spans, ["1500000", "0712.345.678"]);
    }

    #[test]
    fn an_address_and_port_are_no_phone_but_a_phone_after_them_is() {
        for (text, kept) in [
            (
                "http://127.0.0.1:40013/mpesa/b2c: connection refused",
                "http://127.0.0.1:40013/mpesa/b2c: connection refused",
            ),
            (
                "to 10.200.12.254:8443 timed out",
                "to 10.200.12.254:8443 timed out",
            ),
            // Nine digits in threes are no phone here (a log's looser reading would take them).
            (
                "to 192.168.100.5:8443 timed out",
                "to 192.168.100.5:8443 timed out",
            ),
            ("197.248.123.10:443", "197.248.123.10:443"),
            ("127.0.0.1:0712345678", "127.0.0.1:***678"),
            // Not an address and port: a phone written with dots (some of whose groups are at
            // most 255), numbers past 255, a leading zero, no port.
            ("0712.345.678", "***678"),
            ("254.712.345.678", "***678"),
            ("254.110.123.100", "***100"),
            ("+254.110.123.100", "+***100"),
            ("0.110.123.100", "***100"),
            ("254.110.123.100:8080", "***080"),
            ("0.110.123.100:80", "***080"),
            ("254.7.1.2 345678", "***678"),
            ("1.2.3.04:40013", "***013"),
            ("10.20.30.40.50", "***050"),
            ("Credit Party 254722000333", "Credit Party ***333"),
        ] {
            assert_eq!(long_numbers_masked(text), kept, "{text}");
        }
    }

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
