//! Image version names: `YYYY.MM.DD.N`, the UTC build date and a per-day
//! counter. They sort by time and are unique per role.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::RegistryError;

/// One image version of a role. Compares field by field, so
/// `2026.11.25.10 > 2026.11.25.9` and a later day beats any counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    date: Date,
    n: u32,
}

impl Version {
    /// Version `n` of the given day (`n` starts at 1).
    pub fn new(date: Date, n: u32) -> Result<Self, RegistryError> {
        let version = Self { date, n };
        if n == 0 || !(1000..=9999).contains(&date.year()) {
            return Err(RegistryError::InvalidVersion {
                text: version.to_string(),
                reason: "the year must have four digits and the counter starts at 1".into(),
            });
        }
        Ok(version)
    }

    /// The UTC day this version was allocated on.
    pub fn date(&self) -> Date {
        self.date
    }

    /// The per-day counter (`N`).
    pub fn counter(&self) -> u32 {
        self.n
    }

    /// The version a new build allocates at `now`, given the versions the role
    /// already has: `N` is one more than the highest `N` of that day. If the
    /// role already has a version from a later day (the clock went back), the
    /// new one continues that day so that newer builds always sort last.
    pub fn next(now: Timestamp, existing: &[Version]) -> Result<Self, RegistryError> {
        let today = now.to_zoned_datetime(TimeZone::UTC).date();
        let latest = existing.iter().max();
        let date = match latest {
            Some(latest) if latest.date() > today => latest.date(),
            _ => today,
        };
        let highest = existing
            .iter()
            .filter(|v| v.date() == date)
            .map(|v| v.n)
            .max()
            .unwrap_or(0);
        Self::new(date, highest + 1)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}.{:02}.{:02}.{}",
            self.date.year(),
            self.date.month(),
            self.date.day(),
            self.n
        )
    }
}

impl FromStr for Version {
    type Err = RegistryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| RegistryError::InvalidVersion {
            text: text.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = text.split('.').collect();
        let [year, month, day, n] = parts[..] else {
            return Err(invalid("expected YYYY.MM.DD.N"));
        };
        let widths_ok = year.len() == 4 && month.len() == 2 && day.len() == 2;
        let digits_ok = [year, month, day, n]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !widths_ok || !digits_ok || n.starts_with('0') {
            return Err(invalid("expected YYYY.MM.DD.N"));
        }
        let number = |p: &str| p.parse::<u32>().map_err(|_| invalid("number out of range"));
        let (year, month, day) = (number(year)?, number(month)?, number(day)?);
        let date = i16::try_from(year)
            .ok()
            .zip(i8::try_from(month).ok().zip(i8::try_from(day).ok()))
            .and_then(|(y, (m, d))| Date::new(y, m, d).ok())
            .ok_or_else(|| invalid("no such date"))?;
        Self::new(date, number(n)?)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn orders_counters_numerically_and_days_first() {
        assert!(v("2026.11.25.10") > v("2026.11.25.9"));
        assert!(v("2026.11.26.1") > v("2026.11.25.99"));
        assert!(v("2027.01.01.1") > v("2026.12.31.5"));
        let mut list = [v("2026.11.25.10"), v("2026.11.25.2"), v("2026.11.24.30")];
        list.sort();
        let names: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["2026.11.24.30", "2026.11.25.2", "2026.11.25.10"]);
    }

    #[test]
    fn parses_and_prints_the_same_text() {
        for text in ["2026.11.25.1", "2026.01.05.42", "1999.12.31.1000"] {
            assert_eq!(v(text).to_string(), text);
        }
    }

    #[test]
    fn rejects_malformed_names() {
        for text in [
            "2026.11.25",
            "2026.11.25.0",
            "2026.11.25.01",
            "2026.1.25.1",
            "2026.02.30.1",
            "2026.11.25.x",
            "26.11.25.1",
            "2026.11.25.1.1",
            "",
        ] {
            let err = text.parse::<Version>().unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("invalid image version `{text}`")),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn next_counts_up_within_the_utc_day() {
        let now = at("2026-11-25T23:30:00-02:00"); // 01:30 UTC on the 26th
        assert_eq!(Version::next(now, &[]).unwrap(), v("2026.11.26.1"));
        let existing = [v("2026.11.26.1"), v("2026.11.26.9"), v("2026.11.26.3")];
        assert_eq!(Version::next(now, &existing).unwrap(), v("2026.11.26.10"));
        let yesterday = [v("2026.11.25.7")];
        assert_eq!(Version::next(now, &yesterday).unwrap(), v("2026.11.26.1"));
    }

    #[test]
    fn next_never_sorts_before_an_existing_version() {
        let now = at("2026-11-25T10:00:00Z");
        let existing = [v("2026.11.27.2"), v("2026.11.25.4")];
        assert_eq!(Version::next(now, &existing).unwrap(), v("2026.11.27.3"));
    }
}
