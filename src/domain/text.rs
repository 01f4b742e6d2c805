//! Text a person or a client typed: category names, free text (names, notes, reasons) and
//! references (receipts, account numbers), each bounded by `limits`.

use crate::error::{Error, Result};
use crate::limits::{CATEGORY_NAME_BYTES_MAX, TEXT_CHARS_MAX};

/// A spending category name: lowercase `[a-z0-9_]{1,32}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CategoryName(String);

impl CategoryName {
    /// Whether `input` is a name as the contract spells names: lowercase `[a-z0-9_]{1,32}`.
    fn spelled(input: &str) -> bool {
        (1..=CATEGORY_NAME_BYTES_MAX).contains(&input.len())
            && input
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }

    /// Parses a name, naming `field` on error: one spelled as the contract says is taken as
    /// it is; another as a person types it, trimmed, lower case, spaces, dashes and
    /// underscores in a run one `_`, none first or last (`School Fees` → `school_fees`, shown
    /// as "School fees"). What a payment request finds its category by.
    pub fn parse(field: &str, input: &str) -> Result<CategoryName> {
        if CategoryName::spelled(input) {
            return Ok(CategoryName(input.to_string()));
        }
        let mut name = String::with_capacity(input.len());
        for c in input.trim().chars() {
            let c = match c {
                ' ' | '-' | '_' => '_',
                c => c.to_ascii_lowercase(),
            };
            if !(c == '_' && (name.is_empty() || name.ends_with('_'))) {
                name.push(c);
            }
        }
        while name.ends_with('_') {
            name.pop();
        }
        if CategoryName::spelled(&name) {
            Ok(CategoryName(name))
        } else {
            Err(Error::invalid(
                field,
                format!("must be 1 to {CATEGORY_NAME_BYTES_MAX} letters (a-z), digits and spaces, like School fees"),
            ))
        }
    }

    /// A new category's name (an escrow being made), spelled as the contract says: lowercase
    /// `[a-z0-9_]{1,32}`, kept as sent. Another spelling (`School Fees`) is refused naming the
    /// one to send when there is one (`school_fees`; a UI turns what a person typed into it
    /// before sending). None that holds a phone or a token (`not_personal`), since the name is
    /// kept readable. A payment request still finds its category by `parse` (`School Fees`
    /// finds `school_fees`).
    pub fn parse_new(field: &str, input: &str) -> Result<CategoryName> {
        if !CategoryName::spelled(input) {
            // A phone or a token in it is said as such, whatever its spelling.
            let instead = match CategoryName::parse(field, input) {
                Ok(name) => {
                    not_personal(field, &name.0)?;
                    format!(": {} rather than what was sent", name.0)
                }
                Err(_) => String::new(),
            };
            return Err(Error::invalid(
                field,
                format!(
                    "must be 1 to {CATEGORY_NAME_BYTES_MAX} lowercase letters (a-z), digits and _, like school_fees{instead}"
                ),
            ));
        }
        not_personal(field, input)?;
        Ok(CategoryName(input.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `text` with each control character replaced by `with`: words and ids that come from outside
/// (M-Pesa's results, Stripe's events) are kept without a NUL, which PostgreSQL's `text`
/// refuses (a replica fails on such a row), or a line break in a line of the log.
pub fn controls_replaced(text: &str, with: char) -> String {
    text.chars()
        .map(|c| if c.is_control() { with } else { c })
        .collect()
}

/// Words from outside (M-Pesa's result descriptions, a Stripe dispute's reason) made plain
/// before their numbers are found and masked (`long_numbers_masked`), so that a phone cannot
/// pass unmasked for being written with other characters than ASCII's: each control character
/// and each space of another kind (a no-break space, U+00A0, between a number's groups) is a
/// space, each decimal digit of another script (full-width `０７２２`, Arabic-Indic `٠٧٢٢`) is
/// its ASCII digit, and what shows as nothing between two digits (a zero-width space, a
/// joiner, a direction mark, a keycap's selector and frame `0️⃣`) is dropped. Elsewhere those
/// stay: a name's joiners (Persian's ZWNJ, an emoji's ZWJ) and a sentence's direction marks are
/// part of its words.
pub fn outside_words(text: &str) -> String {
    let chars: Vec<char> = text
        .chars()
        .map(|c| {
            if c.is_control() || c.is_whitespace() {
                ' '
            } else {
                ascii_digit(c).unwrap_or(c)
            }
        })
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if unseen_between_digits(chars[i]) && out.ends_with(|d: char| d.is_ascii_digit()) {
            let next = (i..chars.len())
                .find(|&j| !unseen_between_digits(chars[j]))
                .unwrap_or(chars.len());
            if chars.get(next).is_some_and(char::is_ascii_digit) {
                i = next;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// What shows as nothing and may stand between two digits of a number (`outside_words`).
fn unseen_between_digits(c: char) -> bool {
    invisible(c)
        || matches!(
            c,
            '\u{200C}'..='\u{200F}' | '\u{061C}' | '\u{FE00}'..='\u{FE0F}' | '\u{20E3}'
        )
}

/// The first digit (zero) of each run of ten decimal digits Unicode gives a script, besides
/// ASCII's (its general category Nd): Arabic-Indic and its extended form, NKo, the Indic
/// scripts', Thai, Lao, Tibetan, Myanmar and Shan, Khmer, Mongolian, Limbu, New Tai Lue, Tai
/// Tham, Balinese, Sundanese, Lepcha, Ol Chiki, Vai, Saurashtra, Kayah Li, Javanese, Myanmar
/// Tai Laing, Cham, Meetei Mayek, full-width, Osmanya, Hanifi Rohingya, Brahmi, Sora Sompeng,
/// Chakma, Sharada, Khudawadi, Newa, Tirhuta, Modi, Takri, Ahom, Warang Citi, Bhaiksuki,
/// Masaram and Gunjala Gondi, Mro, Pahawh Hmong, the five mathematical sets, Nyiakeng Puachue
/// Hmong, Wancho, Adlam and the segmented digits.
const DIGIT_ZEROS: &[u32] = &[
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16B50, 0x1D7CE, 0x1D7D8,
    0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// `c` as an ASCII digit when it is a decimal digit of another script (`DIGIT_ZEROS`).
fn ascii_digit(c: char) -> Option<char> {
    let c = u32::from(c);
    DIGIT_ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&c))
        .and_then(|zero| char::from_digit(c - zero, 10))
}

/// What free text may not hold: control characters; the line and paragraph separators
/// (U+2028, U+2029), which break a receipt's or an SMS's line as a newline would; and the
/// bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), which make
/// text display in another order than the one stored, so that a name or a merchant could read
/// on a screen or a receipt as something it is not. (The marks U+200E and U+200F, and the
/// zero-width joiners that scripts and emoji need, stay allowed.) And the characters that show
/// as nothing at all (`invisible`), which can make two merchant names that read the same differ,
/// or a name that reads as blank.
pub fn refused_in_text(c: char) -> bool {
    c.is_control()
        || invisible(c)
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Characters that take no room and draw nothing where a name or a note is shown: Unicode's
/// default-ignorable code points (DerivedCoreProperties.txt, `Default_Ignorable_Code_Point`)
/// but those allowed in a name (`draws_something`: the joiners, the direction marks and the
/// variation selectors) and the bidirectional controls (refused on their own account): the
/// zero-width space, the word joiner, the invisible operators and the deprecated format
/// characters U+2060–U+206F, the byte-order mark, the soft hyphen, the Mongolian vowel
/// separator, the combining grapheme joiner, the Hangul fillers, the Khmer inherent vowels, the
/// shorthand format controls, the musical formatting controls, the tag characters (a whole
/// hidden text after a visible one) and the code points kept ignorable for characters to come
/// (U+FFF0–U+FFF8, U+E0080–U+E00FF, U+E01F0–U+E0FFF). And two sets of format controls that are
/// not ignorable but lay out other text: the interlinear annotation marks (which hide the text
/// between them) and the Egyptian hieroglyph format controls.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'
            | '\u{2060}'..='\u{2065}'
            | '\u{206A}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{00AD}'
            | '\u{180E}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{FFA0}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E00FF}'
            | '\u{E01F0}'..='\u{E0FFF}'
    )
}

/// Whether a character shows as something on its own: not a space, not one of the characters
/// refused in text, and not one that is allowed inside a name but draws nothing alone (the
/// zero-width non-joiner and joiner U+200C–U+200D, which scripts and emoji need, the direction
/// marks U+200E–U+200F and U+061C, the blank Braille pattern U+2800, the variation selectors
/// U+FE00–U+FE0F, U+E0100–U+E01EF and Mongolian's U+180B–U+180D, U+180F, and the blocks of
/// combining marks U+0300–U+036F, U+1AB0–U+1AFF, U+1DC0–U+1DFF, U+20D0–U+20FF, U+FE20–U+FE2F).
/// The OpenAPI document's pattern for free text says the same (a test holds them equal over
/// the Basic Multilingual Plane).
fn draws_something(c: char) -> bool {
    !c.is_whitespace()
        && !refused_in_text(c)
        && !matches!(
            c,
            '\u{200C}'..='\u{200F}'
                | '\u{061C}'
                | '\u{2800}'
                | '\u{0300}'..='\u{036F}'
                | '\u{1AB0}'..='\u{1AFF}'
                | '\u{1DC0}'..='\u{1DFF}'
                | '\u{20D0}'..='\u{20FF}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FE20}'..='\u{FE2F}'
                | '\u{180B}'..='\u{180D}'
                | '\u{180F}'
                | '\u{E0100}'..='\u{E01EF}'
        )
}

/// Free text a person typed (names, notes): trimmed, 1–`TEXT_CHARS_MAX` characters, none of
/// `refused_in_text` (at its ends either: a tab or a line separator there is refused as inside,
/// as the OpenAPI document's pattern says, not trimmed away).
pub fn parse_text(field: &str, input: &str, required: bool) -> Result<Option<String>> {
    if input.chars().any(refused_in_text) {
        return Err(refused_text(field));
    }
    let t = input.trim();
    let empty = || {
        if required {
            Err(Error::invalid(field, "must not be empty"))
        } else {
            Ok(None)
        }
    };
    if t.is_empty() {
        return empty();
    }
    if t.chars().count() > TEXT_CHARS_MAX {
        return Err(Error::invalid(
            field,
            format!("must be at most {TEXT_CHARS_MAX} characters"),
        ));
    }
    // Allowed characters that draw nothing on their own, alone: as good as nothing.
    if !t.chars().any(draws_something) {
        return empty();
    }
    Ok(Some(t.to_string()))
}

/// What a text with a character `refused_in_text` is told (optional text too, before anything
/// else is said).
fn refused_text(field: &str) -> Error {
    Error::invalid(
        field,
        "must not contain control characters, invisible characters, line separators or text-direction controls",
    )
}

/// Refuses text that is kept readable (a category's name, a cash deposit's reference, a receipt
/// typed by an admin) when it holds a phone number written whole or an API token: the file,
/// its backups, the replica and the views keep such text as typed, and a phone is personal
/// data (an agent may type the customer's phone as the reference).
pub fn not_personal(field: &str, text: &str) -> Result<()> {
    if crate::domain::holds_a_phone(text) {
        return Err(Error::invalid(
            field,
            "holds a phone number, which is personal data and would be kept readable as typed",
        ));
    }
    // `rmt_` (or `rmt-`) and hex digits, as a token begins (`RMT-2026-0001` is a reference).
    let lower = text.to_ascii_lowercase();
    let token = lower.match_indices("rmt").any(|(at, _)| {
        let rest = &lower.as_bytes()[at + 3..];
        rest.first().is_some_and(|b| matches!(b, b'_' | b'-'))
            && rest[1..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count()
                >= 8
    });
    if token {
        return Err(Error::invalid(
            field,
            "holds what reads as an API token, which would be kept readable",
        ));
    }
    Ok(())
}

/// A reference kept as typed (a cash deposit's reference, an admin's receipt):
/// `parse_reference`, and `not_personal`.
pub fn parse_kept_reference(field: &str, input: &str, max: usize) -> Result<String> {
    let reference = parse_reference(field, input, max)?;
    not_personal(field, &reference)?;
    Ok(reference)
}

/// A reference (deposit receipt number, account reference): 1–`max` visible ASCII characters.
pub fn parse_reference(field: &str, input: &str, max: usize) -> Result<String> {
    let ok = !input.is_empty() && input.len() <= max && input.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(input.to_string())
    } else {
        Err(Error::invalid(
            field,
            format!("must be 1 to {max} letters, digits or signs, without spaces or accents"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_digit_zero_begins_ten_numeric_characters() {
        // A slip in the table would turn a letter into a digit in M-Pesa's words.
        for &zero in DIGIT_ZEROS {
            for c in zero..zero + 10 {
                let c = char::from_u32(c).unwrap();
                assert!(c.is_numeric(), "{c:?} of the set at {zero:#x}");
                assert!(ascii_digit(c).is_some());
            }
        }
    }

    #[test]
    fn joiners_and_marks_stay_in_outside_words_but_between_digits() {
        for kept in [
            "\u{645}\u{6cc}\u{200c}\u{634}\u{648}\u{62f}",
            "\u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467}",
            "\u{200f}\u{5e9}\u{5dc}\u{5d5}\u{5dd} 12",
            "caf\u{e9}\u{200b}",
        ] {
            assert_eq!(outside_words(kept), kept, "{kept:?}");
        }
        assert_eq!(outside_words("07\u{200c}22\u{200f}\u{200b}00"), "072200");
        assert_eq!(
            outside_words("0\u{fe0f}\u{20e3}7\u{fe0f}\u{20e3}2\u{fe0f}\u{20e3}"),
            "072\u{fe0f}\u{20e3}"
        );
        assert_eq!(outside_words("\u{1e950}\u{1e957}\u{1c52}"), "072");
    }

    /// A name of nothing visible, or with characters that draw nothing inside it (so that
    /// "Kenya\u{200B}Power" could pass for "Kenya Power"'s twin), is refused; the joiners that
    /// scripts and emoji need are not.
    #[test]
    fn invisible_characters_are_refused_and_joiners_kept() {
        for bad in [
            "\u{200B}",
            "\u{3164}",
            "Kenya\u{200B}Power",
            "Kenya\u{E0001}\u{E0070}Power",
            "Kenya\u{FFF9}Power\u{FFFA}x\u{FFFB}",
            "A\u{17B4}B",
            "A\u{1D173}B",
            "Ma\u{00AD}ji",
            "\u{FEFF}Shop",
            "A\u{2060}B",
            // Every default-ignorable code point the list missed until 2026-12-07, and the
            // Egyptian hieroglyph format controls: accepted, a name of one of them read as
            // blank, "Kenya Power\u{1BCA0}" as Kenya Power's twin.
            "\u{2065}",
            "A\u{206A}B",
            "A\u{206F}B",
            "\u{FFF0}",
            "A\u{FFF8}B",
            "Kenya Power\u{1BCA0}",
            "A\u{1BCA3}B",
            "A\u{13430}B",
            "A\u{1343F}B",
            "A\u{E0080}B",
            "A\u{E00FF}B",
            "A\u{E01F0}B",
            "A\u{E0FFF}B",
            // Nothing but characters that draw nothing, each allowed inside a name.
            "\u{180B}",
            "\u{180F}",
            "\u{E0100}",
            "\u{E01EF}",
            "\u{200C}",
            "\u{200D}",
            "\u{200E}",
            "\u{061C}",
            "\u{2800}",
            "\u{0301}",
            "\u{200D}\u{0301} \u{200E}",
        ] {
            assert!(parse_text("merchantName", bad, true).is_err(), "{bad:?}");
        }
        for good in [
            "👩\u{200D}👩\u{200D}👧 Family shop",
            "क्\u{200D}ष",
            "Wanjikũ",
            // A variation selector after the character it selects a form of.
            "\u{1820}\u{180B}\u{1821}",
            "\u{845B}\u{E0100}",
        ] {
            assert_eq!(
                parse_text("merchantName", good, true).unwrap().as_deref(),
                Some(good)
            );
        }
    }

    /// Every free-text field of the OpenAPI document has one pattern; on every character of the
    /// Basic Multilingual Plane, as the whole text and between two letters, it says what
    /// `parse_text` does (the pattern keeps to that plane).
    #[test]
    fn the_documented_pattern_of_free_text_is_the_rule() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
        let name = &doc["components"]["schemas"]["NewPaymentRequest"]["properties"]["merchantName"];
        let pattern =
            jsonschema::draft202012::new(&serde_json::json!({"pattern": name["pattern"]})).unwrap();
        for c in (0..=0xFFFF_u32).filter_map(char::from_u32) {
            for text in [
                c.to_string(),
                format!("a{c}b"),
                format!("{c}ab"),
                format!("ab{c}"),
            ] {
                assert_eq!(
                    pattern.is_valid(&serde_json::json!(text)),
                    parse_text("merchantName", &text, true).is_ok(),
                    "docs/openapi.json and parse_text disagree on {text:?} (U+{:04X})",
                    u32::from(c)
                );
            }
        }
    }

    /// The web UI's list of the characters refused in typed text (`ui/js/forms.js`,
    /// `HIDDEN_CHARS`, which says so in the kiosk's words before a round trip) is the server's
    /// rule, on every code point.
    #[test]
    fn the_web_uis_refused_characters_are_the_rule() {
        let ranges = web_ui_class("const HIDDEN_CHARS = /[", "]/u;");
        for c in (0..=0x10_FFFF_u32).filter_map(char::from_u32) {
            assert_eq!(
                ranges.iter().any(|r| r.contains(&u32::from(c))),
                refused_in_text(c),
                "ui/js/forms.js and refused_in_text disagree on U+{:04X}",
                u32::from(c)
            );
        }
    }

    /// The web UI's list of the characters that draw nothing on their own (`DRAWS_NOTHING`,
    /// with which a required text of only those is said to be empty before a round trip) is the
    /// server's, on every code point it does not refuse.
    #[test]
    fn the_web_uis_characters_that_draw_nothing_are_the_rule() {
        let ranges = web_ui_class("const DRAWS_NOTHING = /^[", "]*$/u;");
        for c in (0..=0x10_FFFF_u32).filter_map(char::from_u32) {
            if refused_in_text(c) {
                continue;
            }
            assert_eq!(
                ranges.iter().any(|r| r.contains(&u32::from(c))),
                !draws_something(c),
                "ui/js/forms.js and draws_something disagree on U+{:04X}",
                u32::from(c)
            );
        }
    }

    /// The code points of a character class in `ui/js/forms.js`, written between `start` and
    /// `end` as `\uXXXX` or `\u{X…}`, alone or as the ends of a range `a-b`.
    fn web_ui_class(start: &str, end: &str) -> Vec<std::ops::RangeInclusive<u32>> {
        let forms = include_str!("../../ui/js/forms.js");
        let class = forms
            .split_once(start)
            .and_then(|(_, rest)| rest.split_once(end))
            .expect(start)
            .0;
        let mut ranges: Vec<std::ops::RangeInclusive<u32>> = Vec::new();
        let (mut rest, mut dash) = (class, false);
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('-') {
                (rest, dash) = (after, true);
                continue;
            }
            let escape = rest.strip_prefix("\\u").expect(rest);
            let (hex, after) = match escape.strip_prefix('{') {
                Some(braced) => braced.split_once('}').unwrap(),
                None => escape.split_at(4),
            };
            let point = u32::from_str_radix(hex, 16).unwrap();
            match ranges.last_mut() {
                Some(last) if dash => *last = *last.start()..=point,
                _ => ranges.push(point..=point),
            }
            (rest, dash) = (after, false);
        }
        ranges
    }

    /// Optional text (a note, a reason) refuses what required text refuses: a control or
    /// direction character alone is an error, not "no note"; allowed characters that draw
    /// nothing alone are no note.
    #[test]
    fn optional_text_refuses_what_required_text_refuses() {
        for bad in ["\u{7}", "\u{202E}", "\u{200B}", "a\u{2028}b"] {
            assert!(parse_text("note", bad, false).is_err(), "{bad:?}");
        }
        for nothing in ["", "   ", "\u{200D}", "\u{0301}"] {
            assert_eq!(
                parse_text("note", nothing, false).unwrap(),
                None,
                "{nothing:?}"
            );
        }
    }

    #[test]
    fn category_names() {
        assert!(CategoryName::parse("c", "school_fees").is_ok());
        assert!(CategoryName::parse("c", &"a".repeat(32)).is_ok());
        for (typed, name) in [
            ("School Fees", "school_fees"),
            ("  school - fees ", "school_fees"),
            ("Rent", "rent"),
            ("Term_2 books", "term_2_books"),
        ] {
            assert_eq!(CategoryName::parse("c", typed).unwrap().as_str(), name);
            // A new category's name is sent as the contract spells it: the form to send is
            // named.
            let refused = CategoryName::parse_new("c", typed).unwrap_err().to_string();
            assert!(refused.contains(name), "{refused}");
            assert!(CategoryName::parse_new("c", name).is_ok());
        }
        // API.md's `[a-z0-9_]{1,32}` as sent, underscores anywhere, kept and found as sent.
        for spelled in ["_water", "water_", "water__bills", "2026"] {
            assert_eq!(
                CategoryName::parse_new("c", spelled).unwrap().as_str(),
                spelled
            );
            assert_eq!(CategoryName::parse("c", spelled).unwrap().as_str(), spelled);
        }
        for unspelled in ["Water", " water", "water bills", "wat-er"] {
            assert!(
                CategoryName::parse_new("c", unspelled).is_err(),
                "{unspelled}"
            );
        }
        // Nothing to send instead: the rule alone, not the person's spelling of it.
        let refused = CategoryName::parse_new("c", "Électricité")
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("like school_fees") && !refused.contains("School fees"),
            "{refused}"
        );
        for bad in [
            "",
            "  ",
            "x'); DROP TABLE escrows;--",
            "<script>",
            &"a".repeat(33),
            "Ada ya shule é",
        ] {
            assert!(CategoryName::parse("c", bad).is_err(), "{bad}");
        }
    }

    /// Free text is bounded in characters, as the published document's `maxLength` counts them:
    /// 200 characters of four bytes each fit, 201 of one byte do not.
    #[test]
    fn free_text_is_bounded_in_characters() {
        let wide = "𝄞".repeat(TEXT_CHARS_MAX);
        assert_eq!(wide.len(), 4 * TEXT_CHARS_MAX);
        assert_eq!(parse_text("name", &wide, true).unwrap(), Some(wide.clone()));
        assert_eq!(
            parse_text("name", &format!("  {}  ", "Wanjikũ ".repeat(25)), true).unwrap(),
            Some("Wanjikũ ".repeat(25).trim().to_string())
        );
        assert!(parse_text("name", &"a".repeat(TEXT_CHARS_MAX + 1), true).is_err());
        assert!(parse_text("name", &"é".repeat(TEXT_CHARS_MAX + 1), true).is_err());
        assert!(parse_text("name", "a\u{7}b", true).is_err());
        // Text that would display in another order than it is stored, or break a line.
        for c in [
            '\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{2028}', '\u{2029}',
        ] {
            assert!(
                parse_text("name", &format!("Kenya{c}Power"), true).is_err(),
                "{c:?}"
            );
        }
        // Marks and joiners that scripts and emoji need are kept.
        for text in [
            "\u{5e9}\u{5dc}\u{5d5}\u{5dd}\u{200F}",
            "می\u{200C}خواهم",
            "👩\u{200D}👧",
        ] {
            assert_eq!(
                parse_text("name", text, true).unwrap().as_deref(),
                Some(text)
            );
        }
        assert_eq!(parse_text("note", "   ", false).unwrap(), None);
        assert!(parse_text("name", "   ", true).is_err());
    }
}
