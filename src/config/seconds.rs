//! Durations as the config writes them: seconds, a positive finite number.

/// A positive, finite number of seconds as a Duration.
pub fn seconds(value: f64) -> Option<std::time::Duration> {
    (value > 0.0)
        .then(|| std::time::Duration::try_from_secs_f64(value).ok())
        .flatten()
}

#[cfg(test)]
mod seconds_tests {
    use super::seconds;
    use std::time::Duration;

    // Zero, negative and non-finite timeouts are refused.
    #[test]
    fn seconds_must_be_positive() {
        assert_eq!(
            [0.0, -1.0, f64::NAN, 1.5].map(seconds),
            [None, None, None, Some(Duration::from_millis(1500))]
        );
    }
}
