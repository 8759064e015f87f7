//! Calendar dates in UTC, as the guide's secret list reads and shows them.
//!
//! The expiry of a client secret arrives from an HTML date input as
//! `YYYY-MM-DD` and means the end of that day in UTC. The proleptic
//! Gregorian calendar is computed here rather than with a date crate,
//! because only these two conversions are needed on both the server and
//! the browser.

/// Seconds in one UTC day (Unix time has no leap seconds).
pub const SECONDS_PER_DAY: i64 = 86_400;
/// First year accepted and shown: Unix time starts in 1970.
const FIRST_YEAR: i64 = 1970;
/// Last year accepted: the four digits of `YYYY`.
const LAST_YEAR: i64 = 9999;

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_year(year: i64) -> i64 {
    if is_leap_year(year) { 366 } else { 365 }
}

fn days_in_month(year: i64, month: u32) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses a `YYYY-MM-DD` date between 1970 and 9999 and returns the number
/// of days from 1970-01-01 to it, or `None` when it is not such a date.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let (year, month, day) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let all_digits = |part: &str| part.bytes().all(|byte| byte.is_ascii_digit());
    if !(all_digits(year) && all_digits(month) && all_digits(day)) {
        return None;
    }
    let year: i64 = year.parse().ok()?;
    let month: u32 = month.parse().ok()?;
    let day: i64 = day.parse().ok()?;
    if !(FIRST_YEAR..=LAST_YEAR).contains(&year) || !(1..=12).contains(&month) {
        return None;
    }
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }

    let whole_years: i64 = (FIRST_YEAR..year).map(days_in_year).sum();
    let whole_months: i64 = (1..month).map(|earlier| days_in_month(year, earlier)).sum();
    Some(whole_years + whole_months + day - 1)
}

/// Returns the Unix time at which the UTC day `text` (`YYYY-MM-DD`) ends,
/// which is the first second of the next day, or `None` when `text` is not
/// a date that [`parse_date`] accepts.
pub fn end_of_day(text: &str) -> Option<i64> {
    parse_date(text).map(|days| (days + 1) * SECONDS_PER_DAY)
}

/// Formats a Unix time as its UTC date, `YYYY-MM-DD`. Times before 1970
/// show as 1970-01-01.
pub fn format_date(unix_time: i64) -> String {
    let mut days = unix_time.div_euclid(SECONDS_PER_DAY).max(0);
    let mut year = FIRST_YEAR;
    while days >= days_in_year(year) {
        days -= days_in_year(year);
        year += 1;
    }
    let mut month = 1;
    while days >= days_in_month(year, month) {
        days -= days_in_month(year, month);
        month += 1;
    }
    format!("{year:04}-{month:02}-{:02}", days + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_known_dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("1970-02-01"), Some(31));
        assert_eq!(parse_date("2000-03-01"), Some(11_017));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("2038-01-19"), Some(24_855));
    }

    #[test]
    fn parse_rejects_non_dates() {
        for text in [
            "",
            "2023-02-29",
            "1900-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-04-31",
            "2024-01-00",
            "1969-12-31",
            "2024-1-05",
            "24-01-05",
            "2024/01/05",
            "2024-01-05T00:00",
            "+2024-01-05",
            "2024-01-0a",
            " 2024-01-05",
            "10000-01-01",
        ] {
            assert_eq!(parse_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn end_of_day_is_next_midnight() {
        assert_eq!(end_of_day("1970-01-01"), Some(86_400));
        // 2038-01-19 03:14:07 UTC is 2^31 - 1; that day ends 20:45:53 later.
        assert_eq!(end_of_day("2038-01-19"), Some(2_147_558_400));
        assert_eq!(end_of_day("not a date"), None);
    }

    #[test]
    fn format_known_times() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(86_399), "1970-01-01");
        assert_eq!(format_date(2_147_483_647), "2038-01-19");
        assert_eq!(format_date(951_782_400), "2000-02-29");
        assert_eq!(format_date(1_700_000_000), "2023-11-14");
        assert_eq!(format_date(-5), "1970-01-01");
    }

    #[test]
    fn format_reverses_parse() {
        let mut days = 0;
        while days < 40_000 {
            let text = format_date(days * SECONDS_PER_DAY);
            assert_eq!(parse_date(&text), Some(days), "{text}");
            days += 1;
        }
    }

    #[test]
    fn day_end_formats_as_that_day() {
        let end = end_of_day("2027-12-31").unwrap();
        assert_eq!(format_date(end - 1), "2027-12-31");
        assert_eq!(format_date(end), "2028-01-01");
    }
}
