//! Request bodies: a JSON object read field by field, so that every error names its field and
//! any field the route does not know is refused (`400 unknown_field`).

use crate::error::{Error, Result};
use serde_json::{Map, Value};

/// A name the client sent (a body's key, a query parameter), as an error says it back: its
/// first 64 characters and `…` (a name may be as long as the body or the URL, and is not echoed
/// whole).
pub fn said_back(name: &str) -> std::borrow::Cow<'_, str> {
    match name.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &name[..cut]).into(),
        None => name.into(),
    }
}

/// The fields of a JSON object body, each taken at most once.
pub struct Fields {
    map: Map<String, Value>,
    prefix: String,
}

impl Fields {
    /// Parses a body that must be one JSON object. An empty body (no bytes) is an empty
    /// object; one of blanks only is not JSON (a JSON text holds a value) and is refused.
    pub fn parse(body: &[u8]) -> Result<Fields> {
        if body.is_empty() {
            return Ok(Fields {
                map: Map::new(),
                prefix: String::new(),
            });
        }
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(Error::InvalidJson {
                message: "the body must be a JSON object; it held only blanks".into(),
            });
        }
        let value: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(e) => {
                if let Some((field, token)) = field_of_non_number(body, &e) {
                    return Err(Error::invalid(
                        &field,
                        format!("{token} is not a JSON value (JSON has no NaN or Infinity)"),
                    ));
                }
                let message = e.to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or("malformed JSON")
                    .to_string();
                return Err(Error::InvalidJson { message });
            }
        };
        reject_duplicate_keys(body)?;
        match value {
            Value::Object(map) => Ok(Fields {
                map,
                prefix: String::new(),
            }),
            _ => Err(Error::InvalidJson {
                message: "the body must be a JSON object".into(),
            }),
        }
    }

    fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// A field the client named, as an error says it back (`said_back`).
    fn named(&self, key: &str) -> String {
        self.name(&said_back(key))
    }

    /// Takes a field's raw value, if present and not null.
    pub fn take(&mut self, field: &str) -> Option<Value> {
        match self.map.remove(field) {
            Some(Value::Null) | None => None,
            Some(v) => Some(v),
        }
    }

    /// Whether the body names `field` (with a value other than null).
    pub fn has(&self, field: &str) -> bool {
        self.map.get(field).is_some_and(|v| !v.is_null())
    }

    /// A required string.
    pub fn string(&mut self, field: &str) -> Result<String> {
        let name = self.name(field);
        match self.take(field) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(Error::invalid(&name, "must be a string")),
            None => Err(self.missing(field)),
        }
    }

    /// An optional string.
    pub fn opt_string(&mut self, field: &str) -> Result<Option<String>> {
        let name = self.name(field);
        match self.take(field) {
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(Error::invalid(&name, "must be a string")),
            None => Ok(None),
        }
    }

    /// A nested object, read with the same rules; its errors name `parent.child`.
    pub fn object(&mut self, field: &str) -> Result<Fields> {
        let name = self.name(field);
        match self.take(field) {
            Some(Value::Object(map)) => Ok(Fields {
                map,
                prefix: format!("{name}."),
            }),
            Some(_) => Err(Error::invalid(&name, "must be an object")),
            None => Err(self.missing(field)),
        }
    }

    /// A required array.
    pub fn array(&mut self, field: &str) -> Result<Vec<Value>> {
        let name = self.name(field);
        match self.take(field) {
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(Error::invalid(&name, "must be an array")),
            None => Err(self.missing(field)),
        }
    }

    /// The full name of a field of this object (for errors raised by the caller).
    pub fn field_name(&self, field: &str) -> String {
        self.name(field)
    }

    /// The error for a required field the body lacks, `field` (or any of its `spellings`, as
    /// `amountKes` / `amountKesCents`). A field the body has instead that looks like a
    /// misspelling of it (`ammountKes`, `amount_kes`, `AmountKes`) is what the client got
    /// wrong: it is reported as unknown, naming the field it was probably meant to be, rather
    /// than leaving the client to work out why a field it sent is "required".
    pub fn missing(&self, field: &str) -> Error {
        self.missing_one_of(field, &[field])
    }

    /// [`Fields::missing`] for a field with more than one spelling.
    pub fn missing_one_of(&self, field: &str, spellings: &[&str]) -> Error {
        let misspelt = self.map.keys().find_map(|key| {
            spellings
                .iter()
                .find(|s| misspelling_of(key, s))
                .map(|s| (key, s))
        });
        match misspelt {
            Some((key, meant)) => Error::UnknownField {
                field: self.named(key),
                meant: Some(self.name(meant)),
            },
            None => Error::MissingField {
                field: self.name(field),
            },
        }
    }

    /// Refuses any field nobody took.
    pub fn finish(self) -> Result<()> {
        match self.map.keys().next() {
            Some(key) => Err(Error::UnknownField {
                field: self.named(key),
                meant: None,
            }),
            None => Ok(()),
        }
    }
}

/// Whether `key` looks like a misspelling of `field`: the same but for case, `_` or `-`, or
/// within two edits of it (one for names of four letters or fewer), two letters swapped
/// counting as one (`naem` for `name`).
fn misspelling_of(key: &str, field: &str) -> bool {
    let plain = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let (key, field) = (plain(key), plain(field));
    let most = if field.chars().count() <= 4 { 1 } else { 2 };
    strsim::osa_distance(&key, &field) <= most
}

/// The field whose value is `NaN`, `Infinity` or `-Infinity` (what some JSON writers make of a
/// float that is not a number, Python's among them), when that is where `error` stopped the
/// parse: `{"totalAmountUsd": NaN}` names `totalAmountUsd`, as `"NaN"` as a string would.
fn field_of_non_number(body: &[u8], error: &serde_json::Error) -> Option<(String, String)> {
    if !error.is_syntax() {
        return None;
    }
    // The byte the parse stopped at, from its line and column (both from 1).
    let line_start = if error.line() <= 1 {
        0
    } else {
        body.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(error.line() - 2)?
            .0
            + 1
    };
    let at = (line_start + error.column())
        .checked_sub(1)?
        .min(body.len());
    // Back to the start of the value: the token's characters, then blanks, then a colon.
    let token_start = body[..at]
        .iter()
        .rposition(|b| !(b.is_ascii_alphabetic() || *b == b'-' || *b == b'+'))
        .map_or(0, |i| i + 1);
    let token_end = body[token_start..]
        .iter()
        .position(|b| !(b.is_ascii_alphabetic() || *b == b'-' || *b == b'+'))
        .map_or(body.len(), |i| token_start + i);
    let token = &body[token_start..token_end];
    if !matches!(
        token,
        b"NaN" | b"Infinity" | b"-Infinity" | b"+Infinity" | b"-NaN"
    ) {
        return None;
    }
    let before = body[..token_start].trim_ascii_end();
    let before = before.strip_suffix(b":")?.trim_ascii_end();
    let before = before.strip_suffix(b"\"")?;
    let key_start = before.iter().rposition(|b| *b == b'"')? + 1;
    let key = std::str::from_utf8(&before[key_start..]).ok()?;
    // A key with an escaped quote in it is not read back here (it would be misnamed).
    let escaped = key_start >= 2 && before[key_start - 2] == b'\\';
    let token = String::from_utf8_lossy(token).into_owned();
    (!key.is_empty() && !key.contains('\\') && !escaped).then(|| (key.to_string(), token))
}

/// Parses a body that is one JSON value of any shape (a webhook's), refusing an object with the
/// same key twice as every body is; `what` names it in the error ("the callback").
pub fn json_value(body: &[u8], what: &str) -> Result<Value> {
    reject_duplicate_keys(body)?;
    serde_json::from_slice(body).map_err(|_| Error::InvalidJson {
        message: format!("{what} is not JSON"),
    })
}

/// Walks the JSON once and refuses an object with the same key twice (`{"a":5,"a":6}` would
/// otherwise silently mean 6). Syntax errors are left to the real parse.
fn reject_duplicate_keys(body: &[u8]) -> Result<()> {
    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::fmt;

    struct Walk;
    struct WalkVisitor;

    impl<'de> Visitor<'de> for WalkVisitor {
        type Value = Walk;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Walk, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(serde::de::Error::custom(format!(
                        "duplicate field `{}`",
                        said_back(&key)
                    )));
                }
                map.next_value::<Walk>()?;
            }
            Ok(Walk)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Walk, A::Error> {
            while seq.next_element::<Walk>()?.is_some() {}
            Ok(Walk)
        }
        fn visit_bool<E>(self, _: bool) -> std::result::Result<Walk, E> {
            Ok(Walk)
        }
        fn visit_i64<E>(self, _: i64) -> std::result::Result<Walk, E> {
            Ok(Walk)
        }
        fn visit_u64<E>(self, _: u64) -> std::result::Result<Walk, E> {
            Ok(Walk)
        }
        fn visit_f64<E>(self, _: f64) -> std::result::Result<Walk, E> {
            Ok(Walk)
        }
        fn visit_str<E>(self, _: &str) -> std::result::Result<Walk, E> {
            Ok(Walk)
        }
        fn visit_unit<E>(self) -> std::result::Result<Walk, E> {
            Ok(Walk)
        }
    }

    impl<'de> Deserialize<'de> for Walk {
        fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Walk, D::Error> {
            d.deserialize_any(WalkVisitor)
        }
    }

    match serde_json::from_slice::<Walk>(body) {
        Err(e) if e.is_data() => {
            let message = e.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or("duplicate field")
                .to_string();
            Err(Error::InvalidJson { message })
        }
        _ => Ok(()),
    }
}

/// Reads an object from an array item (`categories[1]`).
pub fn item_object(value: Value, name: &str) -> Result<Fields> {
    match value {
        Value::Object(map) => Ok(Fields {
            map,
            prefix: format!("{name}."),
        }),
        _ => Err(Error::invalid(name, "must be an object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_letters_swapped_are_a_misspelling() {
        for (key, field) in [
            ("naem", "name"),
            ("rloe", "role"),
            ("amuontKes", "amountKes"),
        ] {
            assert!(misspelling_of(key, field), "{key} for {field}");
        }
        for (key, field) in [("mane", "name"), ("nmae2", "name"), ("note", "name")] {
            assert!(!misspelling_of(key, field), "{key} is not {field}");
        }
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let mut f = Fields::parse(br#"{"ammountKes": 5, "a": {"b": 1}}"#).unwrap();
        assert!(
            matches!(f.string("escrowId"), Err(Error::MissingField { field }) if field == "escrowId")
        );
        let mut inner = f.object("a").unwrap();
        assert!(
            matches!(inner.string("b"), Err(Error::Validation { field, .. }) if field == "a.b")
        );
        assert!(
            matches!(f.finish(), Err(Error::UnknownField { field, .. }) if field == "ammountKes")
        );
        // A key as long as the body is said back by its first 64 characters.
        let long = format!(r#"{{"{}é": 1}}"#, "a".repeat(60_000));
        let f = Fields::parse(long.as_bytes()).unwrap();
        assert!(
            matches!(f.finish(), Err(Error::UnknownField { field, .. }) if field == format!("{}…", "a".repeat(64)))
        );
    }

    #[test]
    fn nan_and_infinity_name_their_field() {
        for body in [
            r#"{"recipientName": "W", "totalAmountUsd": NaN}"#,
            r#"{"totalAmountUsd":Infinity, "x": 1}"#,
            "{\n  \"recipientName\": \"W\",\n  \"totalAmountUsd\":\n   -Infinity\n}",
        ] {
            assert!(
                matches!(Fields::parse(body.as_bytes()), Err(Error::Validation { field, .. }) if field == "totalAmountUsd"),
                "{body}"
            );
        }
        for body in [
            r#"{"a": Nope}"#,
            r#"[NaN]"#,
            r#"{"a": 1,}"#,
            r#"{"x\"y": NaN}"#,
        ] {
            assert!(
                matches!(
                    Fields::parse(body.as_bytes()),
                    Err(Error::InvalidJson { .. })
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn a_webhook_body_with_a_key_twice_is_invalid_json() {
        let twice = br#"{"Result": {"ResultCode": 0, "ResultCode": 2001}}"#;
        assert!(matches!(
            json_value(twice, "the callback"),
            Err(Error::InvalidJson { .. })
        ));
        assert!(matches!(
            json_value(b"{", "the callback"),
            Err(Error::InvalidJson { message }) if message == "the callback is not JSON"
        ));
        let once = json_value(br#"{"Result": {"ResultCode": 0}}"#, "the callback").unwrap();
        assert_eq!(once["Result"]["ResultCode"], 0);
    }

    #[test]
    fn malformed_and_deep_json_is_invalid_json() {
        assert!(matches!(
            Fields::parse(b"{"),
            Err(Error::InvalidJson { .. })
        ));
        assert!(matches!(
            Fields::parse(b"[1]"),
            Err(Error::InvalidJson { .. })
        ));
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(matches!(
            Fields::parse(deep.as_bytes()),
            Err(Error::InvalidJson { .. })
        ));
        assert!(Fields::parse(b"").is_ok());
        for blank in [&b"\r"[..], b" ", b"\n\t "] {
            assert!(matches!(
                Fields::parse(blank),
                Err(Error::InvalidJson { .. })
            ));
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        assert!(matches!(
            Fields::parse(br#"{"totalAmountUsd":5,"totalAmountUsd":6}"#),
            Err(Error::InvalidJson { .. })
        ));
        assert!(matches!(
            Fields::parse(br#"{"a":{"b":1,"b":2}}"#),
            Err(Error::InvalidJson { .. })
        ));
        assert!(matches!(
            Fields::parse(br#"{"a":[{"b":1},{"b":1,"b":2}]}"#),
            Err(Error::InvalidJson { .. })
        ));
        assert!(Fields::parse(br#"{"a":{"b":1},"b":{"a":2.50}}"#).is_ok());
    }
}
