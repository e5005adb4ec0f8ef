//! How old something is, as an operator reads it in a table: the two
//! largest units (`45s`, `12m`, `3h 05m`, `2d 04h`).

use jiff::Timestamp;

/// Whole seconds from `since` to `now` (0 for a time in the future).
pub fn age_seconds(since: Timestamp, now: Timestamp) -> i64 {
    (now.as_second() - since.as_second()).max(0)
}

/// The age of `since` at `now` (`0s` for a time in the future).
pub fn age(since: Timestamp, now: Timestamp) -> String {
    let secs = age_seconds(since, now);
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3_600, secs % 3_600 / 60);
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{m}m"),
        3_600..86_400 => format!("{h}h {m:02}m"),
        _ => format!("{d}d {h:02}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_largest_units() {
        let now: Timestamp = "2026-12-06T12:00:00Z".parse().unwrap();
        let at = |s: &str| age(s.parse().unwrap(), now);
        assert_eq!(at("2026-12-06T12:00:01Z"), "0s");
        assert_eq!(at("2026-12-06T11:59:15Z"), "45s");
        assert_eq!(at("2026-12-06T11:48:00Z"), "12m");
        assert_eq!(at("2026-12-06T08:55:00Z"), "3h 05m");
        assert_eq!(at("2026-12-04T07:30:00Z"), "2d 04h");
    }
}
