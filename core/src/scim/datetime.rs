//! SCIM `dateTime` values (RFC 7643 §2.3.5: `xsd:dateTime`), parsed to an instant so that
//! filters compare them chronologically rather than as text.

use std::fmt;

/// An instant on the UTC time line, from an `xsd:dateTime` such as `2011-05-13T04:42:34Z`.
///
/// Ordering is chronological: `2011-05-13T06:42:34+02:00` equals `2011-05-13T04:42:34Z`, and
/// fractional seconds count. A value without an offset is taken as UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    seconds: i64,
    nanos: u32,
}

/// Why a text is not an `xsd:dateTime`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{text}` is not a valid dateTime: {reason} (expected a form like `2011-05-13T04:42:34Z`)")]
pub struct DateTimeError {
    text: String,
    reason: &'static str,
}

impl DateTime {
    /// Parses an `xsd:dateTime`: `YYYY-MM-DDThh:mm:ss`, optional fraction, optional `Z` or
    /// `±hh:mm` offset.
    ///
    /// # Errors
    /// A [`DateTimeError`] naming what is wrong when `text` is not of that form or names a
    /// day or time that does not exist.
    ///
    /// ```
    /// use usersync_core::scim::datetime::DateTime;
    /// let a = DateTime::parse("2011-05-13T04:42:34Z")?;
    /// let b = DateTime::parse("2011-05-13T06:42:34.000+02:00")?;
    /// assert_eq!(a, b);
    /// assert!(DateTime::parse("2011-02-29T00:00:00Z").is_err());
    /// # Ok::<(), usersync_core::scim::datetime::DateTimeError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, DateTimeError> {
        parse(text.as_bytes()).map_err(|reason| DateTimeError {
            text: text.chars().take(64).collect(),
            reason,
        })
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub fn unix_seconds(&self) -> i64 {
        self.seconds
    }

    /// A text whose byte order is chronological order, for stores that compare instants
    /// as text (every value `parse` accepts, offsets included, fits its fixed width).
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))] // used by the SQL translation
    pub(crate) fn sort_key(&self) -> String {
        format!("{:013}{:09}", self.seconds + 1_000_000_000_000, self.nanos)
    }

    /// The instant `seconds` (and `nanos`) after the Unix epoch.
    pub fn from_unix(seconds: i64, nanos: u32) -> Self {
        Self {
            seconds: seconds + i64::from(nanos / 1_000_000_000),
            nanos: nanos % 1_000_000_000,
        }
    }
}

impl fmt::Display for DateTime {
    /// RFC 3339 in UTC; a fraction, when there is one, in milli-, micro- or nanoseconds,
    /// whichever keeps every digit. Parsing the text gives back the same instant.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.seconds.div_euclid(86_400);
        let secs = self.seconds.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60
        )?;
        if self.nanos.is_multiple_of(1_000_000) && self.nanos != 0 {
            write!(f, ".{:03}", self.nanos / 1_000_000)?;
        } else if self.nanos.is_multiple_of(1_000) && self.nanos != 0 {
            write!(f, ".{:06}", self.nanos / 1_000)?;
        } else if self.nanos != 0 {
            write!(f, ".{:09}", self.nanos)?;
        }
        f.write_str("Z")
    }
}

fn parse(b: &[u8]) -> Result<DateTime, &'static str> {
    if !b.first().is_some_and(u8::is_ascii_digit) {
        return Err("it does not start with a year");
    }
    let mut p = Cursor { b, i: 0 };
    let year = p.digits(4, "the year needs four digits")?;
    p.expect(b'-', "expected `-` after the year")?;
    let month = p.digits(2, "the month needs two digits")?;
    p.expect(b'-', "expected `-` after the month")?;
    let day = p.digits(2, "the day needs two digits")?;
    if !matches!(p.peek(), Some(b'T' | b't')) {
        return Err("expected `T` between the date and the time");
    }
    p.i += 1;
    let hour = p.digits(2, "the hour needs two digits")?;
    p.expect(b':', "expected `:` after the hour")?;
    let minute = p.digits(2, "the minutes need two digits")?;
    p.expect(b':', "expected `:` after the minutes")?;
    let second = p.digits(2, "the seconds need two digits")?;
    let mut nanos: u32 = 0;
    if p.peek() == Some(b'.') {
        p.i += 1;
        let start = p.i;
        while let Some(c @ b'0'..=b'9') = p.peek() {
            if p.i - start < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
            p.i += 1;
        }
        let n = p.i - start;
        if n == 0 {
            return Err("expected digits after the decimal point");
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_minutes: i64 = match p.peek() {
        None => 0,
        Some(b'Z' | b'z') => {
            p.i += 1;
            0
        }
        Some(sign @ (b'+' | b'-')) => {
            p.i += 1;
            let h = p.digits(2, "the offset hours need two digits")?;
            p.expect(b':', "expected `:` in the offset")?;
            let m = p.digits(2, "the offset minutes need two digits")?;
            if h > 14 || m > 59 {
                return Err("the offset is out of range");
            }
            let total = i64::from(h * 60 + m);
            if sign == b'-' { -total } else { total }
        }
        Some(_) => return Err("unexpected text after the time"),
    };
    if p.i != b.len() {
        return Err("unexpected text after the offset");
    }
    if !(1..=12).contains(&month) {
        return Err("the month is out of range");
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err("that day does not exist in that month");
    }
    let end_of_day = hour == 24 && minute == 0 && second == 0 && nanos == 0;
    if (hour > 23 && !end_of_day) || minute > 59 || second > 59 {
        return Err("the time is out of range");
    }
    let days = days_from_civil(i64::from(year), month, day);
    let seconds =
        days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_minutes * 60;
    // Offsets can push an instant out of four-digit years, which could not be written back.
    if !(FIRST_INSTANT..END_INSTANT).contains(&seconds) {
        return Err("the instant is before year 0000 or after year 9999 in UTC");
    }
    Ok(DateTime { seconds, nanos })
}

/// 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z in Unix seconds.
const FIRST_INSTANT: i64 = -62_167_219_200;
const END_INSTANT: i64 = 253_402_300_800;

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8, why: &'static str) -> Result<(), &'static str> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(why)
        }
    }

    fn digits(&mut self, n: usize, why: &'static str) -> Result<u32, &'static str> {
        let slice = self.b.get(self.i..self.i + n).ok_or(why)?;
        let mut v = 0u32;
        for &c in slice {
            if !c.is_ascii_digit() {
                return Err(why);
            }
            v = v * 10 + u32::from(c - b'0');
        }
        self.i += n;
        Ok(v)
    }
}

fn is_leap(y: u32) -> bool {
    (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400)
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the "days from civil" algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month, day) of a day counted from 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime {
        DateTime::parse(s).unwrap()
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(dt("1970-01-01T00:00:00Z").unix_seconds(), 0);
        assert_eq!(dt("2011-05-13T04:42:34Z").unix_seconds(), 1_305_261_754);
        assert_eq!(dt("2000-03-01T00:00:00Z").unix_seconds(), 951_868_800);
        assert_eq!(dt("1969-12-31T23:59:59Z").unix_seconds(), -1);
    }

    #[test]
    fn offsets_fractions_and_end_of_day() {
        assert_eq!(dt("2011-05-13T06:42:34+02:00"), dt("2011-05-13T04:42:34Z"));
        assert_eq!(dt("2011-05-12T23:42:34-05:00"), dt("2011-05-13T04:42:34Z"));
        assert!(dt("2011-05-13T04:42:34.5Z") > dt("2011-05-13T04:42:34.499999999Z"));
        assert_eq!(
            dt("2011-05-13T04:42:34.1234567891Z"),
            dt("2011-05-13T04:42:34.123456789Z")
        );
        assert_eq!(dt("2011-05-13T24:00:00Z"), dt("2011-05-14T00:00:00Z"));
        assert_eq!(dt("2011-05-13T04:42:34"), dt("2011-05-13T04:42:34Z"));
    }

    #[test]
    fn rejects_what_is_not_a_datetime() {
        for bad in [
            "",
            "2011-05-13",
            "2011-05-13 04:42:34Z",
            "2011-13-01T00:00:00Z",
            "2011-02-29T00:00:00Z",
            "2011-04-31T00:00:00Z",
            "2011-05-13T24:00:01Z",
            "2011-05-13T04:60:00Z",
            "2011-05-13T04:42:60Z",
            "2011-05-13T04:42:34.Z",
            "2011-05-13T04:42:34+15:00",
            "2011-05-13T04:42:34+0200",
            "2011-05-13T04:42:34Zjunk",
            "20110-05-13T04:42:34Z",
            "２０１１-05-13T04:42:34Z",
        ] {
            assert!(DateTime::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(dt("2012-02-29T00:00:00Z") > dt("2012-02-28T23:59:59Z"));
        assert!(dt("2000-02-29T00:00:00Z") > dt("1900-02-28T00:00:00Z"));
        assert!(DateTime::parse("1900-02-29T00:00:00Z").is_err());
        assert!(DateTime::parse("0000-01-01T00:00:00+01:00").is_err());
        assert!(DateTime::parse("9999-12-31T23:59:59-01:00").is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "1970-01-01T00:00:00Z",
            "2011-05-13T04:42:34Z",
            "1601-01-01T00:00:00.250Z",
        ] {
            assert_eq!(dt(s).to_string(), s);
            assert_eq!(dt(&dt(s).to_string()), dt(s));
        }
        let e = DateTime::parse("2011-02-30T00:00:00Z")
            .unwrap_err()
            .to_string();
        assert!(e.contains("that day does not exist"), "{e}");
    }
}
