//! Event timestamps: CloudWatch's `2026-11-29T19:04:12.123+0000` and RFC 3339 (`…Z`,
//! `…+00:00`), to milliseconds since the Unix epoch.
//!
//! Written here rather than taken from a date crate: none is in the dependency tree, and the
//! two shapes events carry are small enough to parse strictly (no week dates, no leap
//! seconds, no lowercase `t`/`z` guessing).

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)` to milliseconds since the Unix
/// epoch (fractions below a millisecond are dropped). Errors say what is wrong with the text.
pub fn parse_timestamp(text: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "`{text}` is not a timestamp ({why}); write e.g. `2026-11-29T19:04:12.123+0000` or `2026-11-29T19:04:12Z`"
        )
    };
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad("expected a date, `T` and a time"));
    }
    let num = |from: usize, to: usize| -> Result<i64, String> {
        let s = &text[from..to];
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("a field holds something other than digits"));
        }
        s.parse::<i64>().map_err(|_| bad("a field is out of range"))
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("no such time of day"));
    }
    let mut rest = &text[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("a `.` without digits"));
        }
        let padded = format!("{:0<3}", &frac[..digits.min(3)]);
        millis = padded.parse().map_err(|_| bad("bad fraction"))?;
        rest = &frac[digits..];
    }
    let offset_min = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(bad("expected `Z` or an offset such as `+0000` or `+00:00`")),
            };
            let digits = rest[1..].replace(':', "");
            let shaped = matches!(rest.len(), 5 | 6) && (rest.len() == 5 || &rest[3..4] == ":");
            if !shaped || digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad("expected an offset such as `+0000` or `+00:00`"));
            }
            let (h, m) = (num_of(&digits[..2]), num_of(&digits[2..]));
            if h > 23 || m > 59 {
                return Err(bad("no such offset"));
            }
            sign * (h * 60 + m)
        }
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    let ms = secs * 1000 + millis;
    u64::try_from(ms).map_err(|_| bad("before 1970"))
}

fn num_of(s: &str) -> i64 {
    s.parse().unwrap_or(0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's days-from-civil; the inverse of `scope::iso8601`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cloudwatch_and_rfc3339_shapes() {
        let want = 1_795_979_052_123; // 2026-11-29T19:04:12.123Z
        assert_eq!(parse_timestamp("2026-11-29T19:04:12.123+0000"), Ok(want));
        assert_eq!(parse_timestamp("2026-11-29T19:04:12.123Z"), Ok(want));
        assert_eq!(parse_timestamp("2026-11-29T19:04:12.123+00:00"), Ok(want));
        assert_eq!(parse_timestamp("2026-11-29T20:04:12.123+01:00"), Ok(want));
        assert_eq!(parse_timestamp("2026-11-29T19:04:12.123456Z"), Ok(want));
        assert_eq!(parse_timestamp("2026-11-29T19:04:12Z"), Ok(want - 123));
        assert_eq!(parse_timestamp("2026-11-29T19:04:12.1Z"), Ok(want - 23));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(
            parse_timestamp("2024-02-29T00:00:00Z"),
            Ok(1_709_164_800_000)
        );
    }

    #[test]
    fn round_trips_what_the_engine_writes() {
        for ms in [0u64, 1_795_979_052_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_timestamp(&crate::iso8601(ms as f64 / 1000.0)), Ok(ms));
        }
    }

    #[test]
    fn refuses_what_is_not_one() {
        for bad in [
            "",
            "2026-11-29",
            "2026-11-29 19:04:12Z",
            "2026-11-29T19:04:12",
            "2026-11-29T19:04:12.Z",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-29T24:00:00Z",
            "2026-11-29T19:04:12+000",
            "2026-11-29T19:04:12+00-00",
            "2026-11-29T19:04:12z",
            "1969-12-31T23:59:59Z",
            "2026-1a-29T19:04:12Z",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }
}
