//! Proleptic Gregorian calendar arithmetic shared by the date parsers:
//! Docker's RFC 3339 timestamps (`docker::api`) and the HTTP `Date` and
//! `Retry-After` headers (`upload::retry`).
//!
//! Only four-digit years ([`MIN_YEAR`]`..=`[`MAX_YEAR`]) are accepted, the
//! most either format can spell; every function here is total and free of
//! overflow on any input, so a hostile date can only be rejected.

use std::ops::RangeInclusive;

/// The earliest year accepted (`0000`, i.e. 1 BC).
pub const MIN_YEAR: i64 = 0;
/// The latest year accepted (`9999`).
pub const MAX_YEAR: i64 = 9999;
/// [`MIN_YEAR`]`..=`[`MAX_YEAR`].
pub const YEARS: RangeInclusive<i64> = MIN_YEAR..=MAX_YEAR;

/// Gregorian leap year (every 4th, except centuries not divisible by 400).
pub fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1–12) of `year`; 0 for a month outside 1–12.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`), negative before 1970. `None` unless `year` is in
/// [`YEARS`], `month` in 1–12 and `day` exists in that month (so
/// `2023-02-29` and `2024-04-31` are rejected, not rolled over).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    if !YEARS.contains(&year) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // With the bounds above every intermediate value is below 4 million.
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Seconds since the Unix epoch (negative before it) of a UTC date and
/// time, with checked arithmetic. `None` for an invalid date (see
/// [`days_from_civil`]) or `hour > 23`, `minute > 59`, `second > 60` (60
/// allows a leap second, counted as the first second of the next minute).
pub fn unix_seconds(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
) -> Option<i64> {
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let time_of_day = i64::from(hour * 3600 + minute * 60 + second);
    days_from_civil(year, month, day)?
        .checked_mul(86_400)?
        .checked_add(time_of_day)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_against_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(days_from_civil(1969, 12, 31), Some(-1));
        assert_eq!(days_from_civil(1, 1, 1), Some(-719_162));
        assert_eq!(days_from_civil(0, 1, 1), Some(-719_528));
        assert_eq!(days_from_civil(9999, 12, 31), Some(2_932_896));
        // Every day from 1969 to 2101 is one after the previous.
        let mut prev = days_from_civil(1968, 12, 31).unwrap();
        for year in 1969..=2101 {
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    let d = days_from_civil(year, month, day).unwrap();
                    assert_eq!(d, prev + 1, "{year}-{month}-{day}");
                    prev = d;
                }
            }
        }
    }

    #[test]
    fn leap_years_and_month_lengths() {
        assert!(is_leap(2000) && is_leap(2024) && is_leap(0));
        assert!(!is_leap(1900) && !is_leap(2023) && !is_leap(2100));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2023, 4), 30);
        assert_eq!(days_in_month(2023, 12), 31);
        assert_eq!(days_in_month(2023, 0), 0);
        assert_eq!(days_in_month(2023, 13), 0);
    }

    #[test]
    fn invalid_dates_are_rejected_not_rolled_over() {
        assert_eq!(days_from_civil(2023, 2, 29), None);
        assert_eq!(days_from_civil(1900, 2, 29), None);
        assert_eq!(days_from_civil(2024, 4, 31), None);
        assert_eq!(days_from_civil(2024, 1, 0), None);
        assert_eq!(days_from_civil(2024, 1, 99), None);
        assert_eq!(days_from_civil(2024, 0, 1), None);
        assert_eq!(days_from_civil(2024, 13, 1), None);
        assert_eq!(days_from_civil(2024, u32::MAX, u32::MAX), None);
    }

    #[test]
    fn out_of_range_years_do_not_overflow() {
        for year in [
            -1,
            10_000,
            99_999_999_999,
            999_999_999_999_999,
            i64::MAX,
            i64::MIN,
            i64::MAX / 400,
            i64::MIN / 400,
        ] {
            assert_eq!(days_from_civil(year, 1, 1), None, "{year}");
            assert_eq!(unix_seconds(year, 12, 31, 23, 59, 60), None, "{year}");
        }
    }

    #[test]
    fn unix_seconds_of_known_times() {
        assert_eq!(unix_seconds(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(unix_seconds(1994, 11, 6, 8, 49, 37), Some(784_111_777));
        assert_eq!(unix_seconds(1969, 12, 31, 23, 59, 59), Some(-1));
        assert_eq!(
            unix_seconds(9999, 12, 31, 23, 59, 59),
            Some(253_402_300_799)
        );
        assert_eq!(unix_seconds(2016, 12, 31, 23, 59, 60), Some(1_483_228_800));
        assert_eq!(unix_seconds(2024, 1, 1, 24, 0, 0), None);
        assert_eq!(unix_seconds(2024, 1, 1, 0, 60, 0), None);
        assert_eq!(unix_seconds(2024, 1, 1, 0, 0, 61), None);
        assert_eq!(unix_seconds(2024, 1, 1, u32::MAX, u32::MAX, u32::MAX), None);
    }

    #[test]
    fn civil_dates_cross_leap_years() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
