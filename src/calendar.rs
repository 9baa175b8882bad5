//! Proleptic Gregorian calendar arithmetic for the few places that read or
//! print dates without a date library (RFC 3339 in the query API, rules
//! and the command line): Howard Hinnant's algorithms, days counted from
//! 1970-01-01.
//!
//! Invariants: `days_from_civil(civil_from_days(d)) == Some(d)` for every
//! `d` whose year fits an `i64`; `days_from_civil` returns `None` instead
//! of overflowing.

/// (year, month 1–12, day 1–31) of day number `days` since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to the date (`month` 1–12, `day` 1–31); `None`
/// when the count does not fit an `i64`.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i64> {
    let y = if month <= 2 {
        year.checked_sub(1)?
    } else {
        year
    };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.checked_mul(146_097)?.checked_add(doe - 719_468)
}

/// Days in `month` (1–12) of `year`.
pub fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (date, hours, minutes, seconds, milliseconds) of Unix milliseconds, UTC.
pub fn utc_parts(time_ms: i64) -> ((i64, i64, i64), i64, i64, i64, i64) {
    let in_day = time_ms.rem_euclid(86_400_000);
    (
        civil_from_days(time_ms.div_euclid(86_400_000)),
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), Some(11_017));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(1900, 2), 28);
        assert_eq!(utc_parts(1_500), ((1970, 1, 1), 0, 0, 1, 500));
        assert_eq!(days_from_civil(i64::MAX, 12, 31), None);
    }

    proptest! {
        #[test]
        fn days_round_trip(days in -(1i64 << 40)..(1i64 << 40)) {
            let (year, month, day) = civil_from_days(days);
            prop_assert!((1..=days_in_month(year, month)).contains(&day));
            prop_assert_eq!(days_from_civil(year, month, day), Some(days));
        }
    }
}
