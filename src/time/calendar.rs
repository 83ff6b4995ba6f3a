//! The proleptic Gregorian calendar in UTC, as day counts since 1970-01-01
//! (H. Hinnant's `civil_from_days` / `days_from_civil`): quota periods reset
//! on its boundaries and the `Date` field is written from it. Pure.

/// Days since 1970-01-01 → (year, month 1–12, day 1–31) (proleptic Gregorian).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    // The calendar conversion round-trips and knows leap years.
    #[test]
    fn civil_round_trip() {
        assert_eq!(
            (
                civil_from_days(days_from_civil(2024, 2, 29)),
                days_from_civil(1970, 1, 1)
            ),
            ((2024, 2, 29), 0)
        );
    }
}
