//! Money and rates as integers: `UsdCents`, `KesCents`, `RateKesPerUsd` (KES per USD × 10⁴).
//! Decimal text (`500.25`, `"500.25"`) is parsed digit by digit into minor units; no float ever
//! touches an amount.

use crate::error::{Error, Result};
use std::fmt;

macro_rules! minor_units {
    ($name:ident, $code:literal) => {
        /// A non-negative amount in minor units (cents) of its currency; serialised as the
        /// integer.
        #[derive(
            Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize,
        )]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// Zero.
            pub const ZERO: $name = $name(0);

            /// An amount from minor units; `None` when negative.
            pub fn new(minor: i64) -> Option<$name> {
                (minor >= 0).then_some($name(minor))
            }

            /// An amount read back from a column that a CHECK keeps non-negative.
            pub fn from_column(minor: i64) -> Result<$name> {
                $name::new(minor)
                    .ok_or_else(|| Error::internal(concat!("negative ", $code, " amount in a row")))
            }

            /// Minor units.
            pub fn get(self) -> i64 {
                self.0
            }

            /// The ISO code of the currency.
            pub fn currency(self) -> &'static str {
                $code
            }

            /// `USD 1,234.56`: for people.
            pub fn display(self) -> String {
                format!("{} {}", $code, group_thousands(self.0))
            }

            /// The major-unit JSON number (`400.0`, `66.67`) that responses carry next to cents.
            pub fn major(self) -> Decimal {
                Decimal::of_minor(self.0, 2)
            }

            /// Parses either spelling of a request amount: `major` as decimal text with at most
            /// two decimals, or `minor` as an integer count of cents. Exactly one must be given.
            pub fn parse_either(
                field: &str,
                major: Option<&serde_json::Value>,
                minor: Option<&serde_json::Value>,
                max: $name,
            ) -> Result<$name> {
                let cents_field = format!("{field}Cents");
                let minor_units = match (major, minor) {
                    (Some(_), Some(_)) => {
                        return Err(Error::invalid(
                            field,
                            format!("give {field} or {cents_field}, not both"),
                        ))
                    }
                    (None, None) => {
                        return Err(Error::MissingField {
                            field: field.to_string(),
                        })
                    }
                    (Some(v), None) => parse_major(field, &json_number_text(field, v)?, 2)?,
                    // Cents are a JSON number (API.md: "integer minor units"); text is the
                    // decimal spelling's alone (a string of digits was taken as cents until
                    // 2026-12-07).
                    (None, Some(serde_json::Value::String(_))) => {
                        return Err(Error::invalid(&cents_field, CENTS_AS_TEXT))
                    }
                    (None, Some(v)) => parse_integer(
                        &cents_field,
                        &whole_json_number(&json_number_text(&cents_field, v)?, v),
                    )?,
                };
                let name = if major.is_some() {
                    field
                } else {
                    cents_field.as_str()
                };
                if minor_units == 0 {
                    return Err(Error::invalid(name, "must be greater than zero"));
                }
                if minor_units > max.0 {
                    return Err(Error::invalid(
                        name,
                        format!("must not be more than {}", max.display()),
                    ));
                }
                Ok($name(minor_units))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.display())
            }
        }

        impl rusqlite::types::ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(rusqlite::types::ToSqlOutput::from(self.0))
            }
        }

        impl rusqlite::types::FromSql for $name {
            /// Read back through the same rule as `new`: a negative amount in a row is an error.
            fn column_result(
                value: rusqlite::types::ValueRef<'_>,
            ) -> rusqlite::types::FromSqlResult<$name> {
                let minor = value.as_i64()?;
                $name::new(minor).ok_or(rusqlite::types::FromSqlError::OutOfRange(minor))
            }
        }
    };
}

/// An amount in major units as an exact JSON number (`400.0`, `66.67`, `-10.0`): what responses
/// carry next to the integer minor units. Never computed through floating point.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(transparent)]
pub struct Decimal(serde_json::Value);

impl Decimal {
    /// `minor / 10^decimals`.
    pub fn of_minor(minor: i64, decimals: u32) -> Decimal {
        Decimal(decimal_json(minor, decimals))
    }
}

minor_units!(UsdCents, "USD");
minor_units!(KesCents, "KES");

/// A USD→KES rate: Kenyan shillings per US dollar, × 10⁴ (`150.0` is `1_500_000`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RateKesPerUsd(i64);

impl RateKesPerUsd {
    /// The rate until an admin sets one: KES 150 per USD.
    pub const DEFAULT: RateKesPerUsd = RateKesPerUsd(150 * 10_000);

    /// A rate from its × 10⁴ integer; `None` unless positive and at most `RATE_KES_PER_USD_E4_MAX`.
    pub fn from_e4(rate_kes_per_usd_e4: i64) -> Option<RateKesPerUsd> {
        (rate_kes_per_usd_e4 > 0 && rate_kes_per_usd_e4 <= crate::limits::RATE_KES_PER_USD_E4_MAX)
            .then_some(RateKesPerUsd(rate_kes_per_usd_e4))
    }

    /// Parses decimal text with at most 4 decimals (`152.25`).
    pub fn parse(field: &str, text: &str) -> Result<RateKesPerUsd> {
        let e4 = parse_major(field, text, 4)?;
        RateKesPerUsd::from_e4(e4)
            .ok_or_else(|| Error::invalid(field, "must be greater than zero and at most 100000"))
    }

    /// Parses a JSON number or string.
    pub fn parse_json(field: &str, v: &serde_json::Value) -> Result<RateKesPerUsd> {
        RateKesPerUsd::parse(field, &json_number_text(field, v)?)
    }

    /// The × 10⁴ integer.
    pub fn e4(self) -> i64 {
        self.0
    }

    /// The rate as a JSON number (`150.0`, `152.25`).
    pub fn decimal(self) -> Decimal {
        Decimal::of_minor(self.0, 4)
    }

    /// The USD value of KES received at this rate, rounded down so that rounding never costs
    /// the platform: `floor(kes_cents × 10⁴ / rate_kes_per_usd_e4)`.
    pub fn usd_for_floor(self, kes: KesCents) -> UsdCents {
        let usd = i128::from(kes.get()) * 10_000 / i128::from(self.0);
        UsdCents(i64::try_from(usd).unwrap_or(i64::MAX))
    }

    /// The shillings a kiosk collects in cash for `usd` still due: the fewest whole shillings
    /// that pay it (converted down, `usd_for_floor`, they are exactly `usd`: KES 25,000.50 due at
    /// 150 is KES 25,001), or, when a whole shilling would buy more than is due (a rate under
    /// 100), `kes_for`'s exact cents. The most a cash deposit in shillings may be, and the web
    /// UI's `kesToCollect`.
    pub fn kes_to_collect(self, usd: UsdCents) -> KesCents {
        let exact = self.kes_for(usd);
        let whole = KesCents((exact.get() + 99) / 100 * 100);
        if self.usd_for_floor(whole) == usd {
            whole
        } else {
            exact
        }
    }

    /// The shillings that pay for `usd` at this rate, rounded up (taken in KES, they convert
    /// back to at least `usd`): `ceil(usd_cents × rate_kes_per_usd_e4 / 10⁴)`.
    pub fn kes_for(self, usd: UsdCents) -> KesCents {
        let kes = (i128::from(usd.get()) * i128::from(self.0) + 9_999) / 10_000;
        KesCents(i64::try_from(kes).unwrap_or(i64::MAX))
    }

    /// The USD cost of a KES amount at this rate, rounded up so that rounding never costs the
    /// platform: `ceil(kes_cents × 10⁴ / rate_kes_per_usd_e4)`.
    pub fn usd_for(self, kes: KesCents) -> UsdCents {
        let num = i128::from(kes.get()) * 10_000;
        let den = i128::from(self.0);
        let usd = (num + den - 1) / den;
        UsdCents(i64::try_from(usd).unwrap_or(i64::MAX))
    }
}

impl fmt::Display for RateKesPerUsd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", decimal_text(self.0, 4))
    }
}

impl rusqlite::types::ToSql for RateKesPerUsd {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.0))
    }
}

impl rusqlite::types::FromSql for RateKesPerUsd {
    fn column_result(
        value: rusqlite::types::ValueRef<'_>,
    ) -> rusqlite::types::FromSqlResult<RateKesPerUsd> {
        let e4 = value.as_i64()?;
        RateKesPerUsd::from_e4(e4).ok_or(rusqlite::types::FromSqlError::OutOfRange(e4))
    }
}

/// Why cents written as text are refused (`parse_either`).
const CENTS_AS_TEXT: &str = "must be a whole number of cents written as a JSON number, not text";

/// The text of a JSON number (exactly as sent, thanks to `arbitrary_precision`) or string.
pub fn json_number_text(field: &str, v: &serde_json::Value) -> Result<String> {
    match v {
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::String(s) => Ok(s.clone()),
        _ => Err(Error::invalid(
            field,
            "must be a number or a decimal string",
        )),
    }
}

/// Parses `123`, `123.4`, `123.45` (with `decimals` = 2) into minor units: digits, at most one
/// dot, at most `decimals` digits after it. Everything else (signs, exponents, spaces, NaN,
/// overflow) is a validation error naming `field`.
pub fn parse_major(field: &str, text: &str, decimals: u32) -> Result<i64> {
    if text.starts_with('-') {
        return Err(Error::invalid(field, "must be greater than zero"));
    }
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(frac) || text.ends_with('.') {
        return Err(Error::invalid(
            field,
            "must be a plain decimal number such as 500.25",
        ));
    }
    if frac.len() > decimals as usize {
        return Err(Error::invalid(
            field,
            format!("must have at most {decimals} decimals"),
        ));
    }
    let too_large = || Error::invalid(field, "is too large");
    let scale = 10_i64.pow(decimals);
    let mut whole_value: i64 = 0;
    for b in whole.bytes() {
        whole_value = whole_value
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or_else(too_large)?;
    }
    let mut frac_value: i64 = 0;
    for i in 0..decimals as usize {
        let digit = frac.as_bytes().get(i).map_or(0, |b| i64::from(b - b'0'));
        frac_value = frac_value * 10 + digit;
    }
    whole_value
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_value))
        .ok_or_else(too_large)
}

/// A JSON number written with a fraction of zeros (`28800.0`, as many encoders write a float)
/// is that whole number: JSON does not tell `28800.0` from `28800`. (Cents written as text are
/// refused before: `CENTS_AS_TEXT`.)
fn whole_json_number(text: &str, value: &serde_json::Value) -> String {
    match (value, text.split_once('.')) {
        (serde_json::Value::Number(_), Some((whole, frac)))
            if !frac.is_empty() && frac.bytes().all(|b| b == b'0') =>
        {
            whole.to_string()
        }
        _ => text.to_string(),
    }
}

/// Parses a whole number of minor units (`50025`).
pub fn parse_integer(field: &str, text: &str) -> Result<i64> {
    if text.starts_with('-') {
        return Err(Error::invalid(field, "must be greater than zero"));
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(field, "must be a whole number of cents"));
    }
    text.parse::<i64>()
        .map_err(|_| Error::invalid(field, "is too large"))
}

/// `value / 10^decimals` as minimal decimal text with at least one decimal: `400.0`, `66.67`.
/// Digit by digit: several amounts of every approval's answer, event and audit line go
/// through here, and `format!` with a zero-padded width cost several times as much.
fn decimal_text(value: i64, decimals: u32) -> String {
    let scale = 10_u64.pow(decimals);
    let abs = value.unsigned_abs();
    let mut out = String::with_capacity(24);
    if value < 0 {
        out.push('-');
    }
    out.push_str(&(abs / scale).to_string());
    out.push('.');
    // The fraction's digits, most significant first, without its trailing zeros but one.
    let mut frac = [b'0'; 19];
    let mut rest = abs % scale;
    for digit in frac[..decimals as usize].iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let mut len = (decimals as usize).max(1);
    while len > 1 && frac[len - 1] == b'0' {
        len -= 1;
    }
    out.extend(frac[..len].iter().map(|&b| char::from(b)));
    out
}

/// The same text as a JSON number, kept exact by `arbitrary_precision`.
fn decimal_json(value: i64, decimals: u32) -> serde_json::Value {
    let text = decimal_text(value, decimals);
    match text.parse::<serde_json::Number>() {
        Ok(n) => serde_json::Value::Number(n),
        Err(_) => serde_json::Value::String(text),
    }
}

/// `1234567` cents → `12,345.67`.
fn group_thousands(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let whole = (abs / 100).to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}.{:02}", abs % 100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shillings_quoted_for_a_dollar_amount_convert_back_to_exactly_it() {
        // What the kiosk asks for (rounded up) pays the dollars due, never a cent less or more.
        for rate in [
            1_000_000, 1_522_500, 1_523_333, 1_299_999, 10_000, 9_876_543,
        ] {
            let rate = RateKesPerUsd(rate);
            for usd in [1, 99, 10_000, 123_457, 1_000_000] {
                let kes = rate.kes_for(UsdCents(usd));
                assert_eq!(rate.usd_for_floor(kes), UsdCents(usd), "{rate} {usd}");
                // One cent of shillings less would not cover it.
                assert!(rate.usd_for_floor(KesCents(kes.get() - 1)).get() < usd);
            }
        }
    }

    /// The kiosk's whole shillings: they pay exactly what is due, the next shilling is more;
    /// where a shilling is more than a cent, the exact cents.
    #[test]
    fn the_shillings_to_collect_are_whole_and_pay_exactly_what_is_due() {
        let at = |rate: i64, usd: i64| RateKesPerUsd(rate).kes_to_collect(UsdCents(usd)).get();
        assert_eq!(
            at(1_500_000, 16_667),
            2_500_100,
            "USD 166.67 at 150 is KES 25,001"
        );
        assert_eq!(
            at(1_522_500, 5_000),
            761_300,
            "USD 50 at 152.25 is KES 7,613"
        );
        assert_eq!(
            at(1_293_500, 5_000),
            646_800,
            "USD 50 at 129.35 is KES 6,468"
        );
        assert_eq!(at(1_500_000, 5_000), 750_000, "exact: KES 7,500");
        for rate in [
            1_500_000, 1_522_500, 1_293_500, 1_000_000, 990_000, 10_000, 9_876_543,
        ] {
            let rate = RateKesPerUsd(rate);
            for usd in [1, 99, 10_000, 16_667, 123_457, 1_000_000] {
                let kes = rate.kes_to_collect(UsdCents(usd));
                assert_eq!(rate.usd_for_floor(kes), UsdCents(usd), "{rate} {usd}");
                assert!(kes.get() >= rate.kes_for(UsdCents(usd)).get());
                assert!(
                    kes.get() % 100 == 0 || kes == rate.kes_for(UsdCents(usd)),
                    "{rate} {usd}: {kes}"
                );
            }
        }
    }

    fn usd(v: serde_json::Value) -> Result<UsdCents> {
        UsdCents::parse_either("totalAmountUsd", Some(&v), None, UsdCents(1_000_000))
    }
    fn usd_cents(v: serde_json::Value) -> Result<UsdCents> {
        UsdCents::parse_either("totalAmountUsd", None, Some(&v), UsdCents(1_000_000))
    }
    fn field_of(r: Result<UsdCents>) -> String {
        match r {
            Err(Error::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn decimal_amounts_parse_exactly() {
        assert_eq!(usd(json!(500)).unwrap().get(), 50_000);
        assert_eq!(usd(json!("500.25")).unwrap().get(), 50_025);
        assert_eq!(
            usd(serde_json::from_str("500.25").unwrap()).unwrap().get(),
            50_025
        );
        assert_eq!(usd(serde_json::from_str("0.1").unwrap()).unwrap().get(), 10);
        // 0.29 * 100 in f64 is 28.999999999999996: parsing text must not round through floats.
        assert_eq!(
            usd(serde_json::from_str("0.29").unwrap()).unwrap().get(),
            29
        );
        assert_eq!(usd(json!("0.01")).unwrap().get(), 1);
    }

    #[test]
    fn boundaries_of_the_maximum() {
        assert_eq!(usd(json!("10000")).unwrap().get(), 1_000_000);
        assert_eq!(usd(json!("10000.00")).unwrap().get(), 1_000_000);
        assert_eq!(field_of(usd(json!("10000.01"))), "totalAmountUsd");
        assert_eq!(usd_cents(json!(1_000_000)).unwrap().get(), 1_000_000);
        assert_eq!(field_of(usd_cents(json!(1_000_001))), "totalAmountUsdCents");
        assert_eq!(usd_cents(json!(1)).unwrap().get(), 1);
    }

    #[test]
    fn bad_amounts_name_the_field() {
        let cases = [
            ("zero", json!(0)),
            ("zero string", json!("0.00")),
            ("negative", json!(-5)),
            ("negative string", json!("-5")),
            ("three decimals", json!("1.005")),
            ("exponent", serde_json::from_str("1e30").unwrap()),
            (
                "huge",
                serde_json::from_str("100000000000000000000000").unwrap(),
            ),
            ("i64 overflow in cents", json!("92233720368547758.08")),
            ("NaN", json!("NaN")),
            ("Infinity", json!("Infinity")),
            ("word", json!("abc")),
            ("spaces", json!(" 5")),
            ("trailing dot", json!("5.")),
            ("leading dot", json!(".5")),
            ("bool", json!(true)),
            ("null", json!(null)),
            ("object", json!({"a": 1})),
        ];
        for (what, v) in cases {
            match usd(v) {
                Err(Error::Validation { field, .. }) => {
                    assert_eq!(field, "totalAmountUsd", "{what}")
                }
                other => panic!("{what}: expected a validation error, got {other:?}"),
            }
        }
        for (what, v) in [
            ("cents with decimals", json!("100.5")),
            ("2^63", serde_json::from_str("9223372036854775808").unwrap()),
            ("negative cents", json!(-1)),
        ] {
            assert_eq!(field_of(usd_cents(v)), "totalAmountUsdCents", "{what}");
        }
    }

    #[test]
    fn both_or_neither_spelling_is_refused() {
        let v = json!(5);
        assert!(matches!(
            UsdCents::parse_either("amountUsd", Some(&v), Some(&v), UsdCents(100)),
            Err(Error::Validation { .. })
        ));
        assert!(matches!(
            UsdCents::parse_either("amountUsd", None, None, UsdCents(100)),
            Err(Error::MissingField { .. })
        ));
    }

    #[test]
    fn usd_for_kes_rounds_up() {
        let rate = RateKesPerUsd::DEFAULT;
        assert_eq!(rate.usd_for(KesCents(10_000)).get(), 67); // KES 100.00 → USD 0.67
        assert_eq!(rate.usd_for(KesCents(1_000_000)).get(), 6_667); // KES 10,000 → USD 66.67
        assert_eq!(rate.usd_for(KesCents(15_000)).get(), 100); // exact: no round up
        assert_eq!(rate.usd_for(KesCents(1)).get(), 1);
        let odd = RateKesPerUsd::parse("rate", "152.25").unwrap();
        assert_eq!(odd.e4(), 1_522_500);
        assert_eq!(odd.usd_for(KesCents(1_522_500)).get(), 10_000);
        assert_eq!(odd.usd_for(KesCents(1_522_501)).get(), 10_001);
    }

    #[test]
    fn rates_allow_four_decimals() {
        assert_eq!(
            RateKesPerUsd::parse("rate", "129.1234").unwrap().e4(),
            1_291_234
        );
        assert!(RateKesPerUsd::parse("rate", "129.12345").is_err());
        assert!(RateKesPerUsd::parse("rate", "0").is_err());
        assert!(RateKesPerUsd::parse("rate", "100001").is_err());
        assert_eq!(json(&RateKesPerUsd::DEFAULT.decimal()), "150.0");
        assert_eq!(
            json(&RateKesPerUsd::parse("rate", "152.25").unwrap().decimal()),
            "152.25"
        );
    }

    fn json(d: &Decimal) -> String {
        serde_json::to_string(d).unwrap()
    }

    #[test]
    fn decimal_text_is_the_padded_format_without_trailing_zeros() {
        let reference = |value: i64, decimals: u32| {
            let scale = 10_u64.pow(decimals);
            let abs = value.unsigned_abs();
            let mut frac = format!("{:0width$}", abs % scale, width = decimals as usize);
            while frac.len() > 1 && frac.ends_with('0') {
                frac.pop();
            }
            let sign = if value < 0 { "-" } else { "" };
            format!("{sign}{}.{frac}", abs / scale)
        };
        let values = (-100_000..=100_000)
            .chain([6_667, 40_000, -1_005, 1_291_234, 10_000_000, -99_990_000])
            .chain([i64::MAX, i64::MIN, i64::MIN + 1]);
        for value in values {
            for decimals in 0..=4 {
                assert_eq!(
                    decimal_text(value, decimals),
                    reference(value, decimals),
                    "{value} / 10^{decimals}"
                );
            }
        }
        assert_eq!(decimal_text(1_291_234, 4), "129.1234");
        assert_eq!(decimal_text(-1_000, 2), "-10.0");
    }

    #[test]
    fn amounts_render_for_json_and_people() {
        assert_eq!(json(&UsdCents(40_000).major()), "400.0");
        assert_eq!(json(&UsdCents(6_667).major()), "66.67");
        assert_eq!(json(&UsdCents(6_660).major()), "66.6");
        assert_eq!(json(&UsdCents(5).major()), "0.05");
        assert_eq!(KesCents(1_000_000).display(), "KES 10,000.00");
        assert_eq!(UsdCents(123_456_789).display(), "USD 1,234,567.89");
        assert_eq!(UsdCents(0).display(), "USD 0.00");
        assert_eq!(json(&Decimal::of_minor(-1_000, 2)), "-10.0");
    }
}
