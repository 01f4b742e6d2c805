//! Wall-clock helpers: RFC 3339 UTC timestamps and the Africa/Nairobi calendar day (UTC+3, no DST).

use std::time::{SystemTime, UNIX_EPOCH};

/// Nairobi is UTC+3 all year.
const NAIROBI_OFFSET_S: i64 = 3 * 3600;

/// Seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How far the wall clock has been set ahead of the time that passed since this process first
/// asked (`set_ahead_s` is asked at the server's start), in seconds: NTP correcting a kiosk
/// whose clock ran days slow (a board without its clock battery) moves every time written
/// before it days into the past. 0 when the clock was not set ahead (or was set back). The time
/// passed is the kernel's since boot, sleep included (`/proc/uptime`): a kiosk asleep every
/// night is not set ahead by its nights (elsewhere, the process's own clock, which a sleep
/// does not move).
pub fn set_ahead_s() -> i64 {
    static START: std::sync::LazyLock<(i64, Option<i64>, std::time::Instant)> =
        std::sync::LazyLock::new(|| (now_unix(), since_boot_s(), std::time::Instant::now()));
    let (wall, boot, started) = *START;
    let passed = match (boot, since_boot_s()) {
        (Some(then), Some(now)) => now - then,
        _ => started.elapsed().as_secs() as i64,
    };
    ahead_by(wall, now_unix(), passed)
}

/// Whole seconds since the machine booted, its sleeps included (Linux's `/proc/uptime`).
fn since_boot_s() -> Option<i64> {
    std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split(['.', ' '])
        .next()?
        .parse()
        .ok()
}

/// `set_ahead_s` of a clock that read `wall_then` and now reads `wall_now`, `passed_s` later.
fn ahead_by(wall_then: i64, wall_now: i64, passed_s: i64) -> i64 {
    (wall_now - wall_then - passed_s).max(0)
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The Unix time of `2026-11-25T09:30:00Z` (the form `rfc3339` writes); `None` for anything
/// else.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<u32>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    Some(days * 86_400 + i64::from(h * 3600 + mi * 60 + s))
}

/// `2026-11-25T09:30:00Z` for a Unix time.
pub fn rfc3339(unix_s: i64) -> String {
    let days = unix_s.div_euclid(86_400);
    let secs = unix_s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60
        );
    }
    // Digit by digit: this runs several times per write, and `format!` with padding cost
    // about ten times as much.
    let mut out = String::with_capacity(20);
    let push2 = |out: &mut String, n: i64| {
        out.push(char::from(b'0' + (n / 10 % 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    };
    push2(&mut out, y / 100);
    push2(&mut out, y % 100);
    for (n, before) in [
        (i64::from(m), '-'),
        (i64::from(d), '-'),
        (secs / 3600, 'T'),
        ((secs / 60) % 60, ':'),
        (secs % 60, ':'),
    ] {
        out.push(before);
        push2(&mut out, n);
    }
    out.push('Z');
    out
}

/// `2026-11-25T09:30:00.125Z` for a Unix time in milliseconds: for times that order work to the
/// millisecond (the next attempt of a delivery). Compared with times of the same form, and in one
/// place (`service::retention`) with a cutoff of `rfc3339`'s: the first 19 characters are the
/// same second, and `.` sorts before `Z`, so a time within the cutoff's second reads as before
/// it (at most a second early).
pub fn rfc3339_ms(unix_ms: i64) -> String {
    let text = rfc3339(unix_ms.div_euclid(1000));
    format!(
        "{}.{:03}Z",
        text.trim_end_matches('Z'),
        unix_ms.rem_euclid(1000)
    )
}

/// The Unix milliseconds of a time `rfc3339_ms` or `rfc3339` wrote; `None` for anything else.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    match text.len() {
        20 => parse_rfc3339(text).map(|s| s * 1000),
        24 if text.as_bytes()[19] == b'.' && text.ends_with('Z') => {
            let seconds = parse_rfc3339(&format!("{}Z", text.get(..19)?))?;
            let ms: i64 = text.get(20..23)?.parse().ok()?;
            Some(seconds * 1000 + ms)
        }
        _ => None,
    }
}

/// A time `rfc3339_ms` wrote, as every answer says times: in whole seconds (the second it falls
/// in). Any other text is given back as it is.
pub fn in_seconds(text: String) -> String {
    match text.len() {
        24 if text.as_bytes()[19] == b'.' && text.ends_with('Z') => format!("{}Z", &text[..19]),
        _ => text,
    }
}

/// The current time as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    rfc3339(now_unix())
}

/// The Nairobi calendar day (`YYYY-MM-DD`) of a Unix time.
pub fn nairobi_day(unix_s: i64) -> String {
    let (y, m, d) = civil_from_days((unix_s + NAIROBI_OFFSET_S).div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_to_the_millisecond_is_said_in_its_second() {
        let ms = rfc3339_ms(1_764_063_000_870);
        assert_eq!(ms, "2025-11-25T09:30:00.870Z");
        assert_eq!(in_seconds(ms), "2025-11-25T09:30:00Z");
        assert_eq!(in_seconds(rfc3339(1_764_063_000)), "2025-11-25T09:30:00Z");
        assert_eq!(in_seconds("not a time".into()), "not a time");
    }

    #[test]
    fn a_clock_set_ahead_is_told_from_time_passing() {
        // Ten minutes passed, the clock read ten minutes more: not set ahead.
        assert_eq!(ahead_by(1_000, 1_600, 600), 0);
        // Ten minutes passed, the clock read three days and ten minutes more.
        assert_eq!(ahead_by(1_000, 1_600 + 3 * 86_400, 600), 3 * 86_400);
        // Set back an hour: nothing kept shorter for it.
        assert_eq!(ahead_by(1_000, 1_600 - 3_600, 600), 0);
        assert!(set_ahead_s() >= 0);
    }

    #[test]
    fn millisecond_times_round_trip_and_order_as_text() {
        let ms = 1_764_581_400_125;
        assert_eq!(rfc3339_ms(ms), "2025-12-01T09:30:00.125Z");
        assert_eq!(parse_rfc3339_ms(&rfc3339_ms(ms)), Some(ms));
        assert_eq!(parse_rfc3339_ms("2025-12-01T09:30:00Z"), Some(ms - 125));
        assert!(rfc3339_ms(ms) < rfc3339_ms(ms + 1));
        assert!(rfc3339_ms(ms + 875) < rfc3339_ms(ms + 876));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_581_400 + 14_399), "2025-12-01T13:29:59Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(253_402_300_800), "10000-01-01T00:00:00Z");
    }

    #[test]
    fn rfc3339_round_trips() {
        for t in [0, 951_782_400, 1_735_689_600, 1_764_000_000 + 12_345] {
            assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{t}");
        }
        for bad in [
            "",
            "2025-01-01 00:00:00Z",
            "2025-13-01T00:00:00Z",
            "2025-01-01T00:00:00",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn nairobi_day_turns_at_21_utc() {
        // 2025-01-01T20:59:59Z is 23:59:59 in Nairobi; one second later it is the 2nd.
        assert_eq!(nairobi_day(1_735_689_600 + 20 * 3600 + 3599), "2025-01-01");
        assert_eq!(nairobi_day(1_735_689_600 + 21 * 3600), "2025-01-02");
        assert_eq!(nairobi_day(1_735_689_600 - 3 * 3600), "2025-01-01");
        assert_eq!(nairobi_day(1_735_689_600 - 3 * 3600 - 1), "2024-12-31");
    }
}
