//! Text a person or a client typed: category names, free text (names, notes, reasons) and
//! references (receipts, account numbers), each bounded by `limits`.

use crate::error::{Error, Result};
use crate::limits::{CATEGORY_NAME_BYTES_MAX, TEXT_BYTES_MAX};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
