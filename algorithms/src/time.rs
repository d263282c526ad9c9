//! Virtual time: instants and durations as integer microseconds.
//!
//! Durations are written the humane way in scenario files and parsed here:
//!
//! ```
//! use conclave_algorithms::time::Duration;
//! assert_eq!("250ms".parse::<Duration>().unwrap(), Duration::from_millis(250));
//! assert_eq!("1.5s".parse::<Duration>().unwrap(), Duration::from_millis(1500));
//! assert_eq!(Duration::from_millis(1500).to_string(), "1.5s");
//! ```

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Add, Sub};
use std::str::FromStr;

/// A point in virtual time, in microseconds since the start of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub u64);

/// A span of virtual time, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub u64);

impl Time {
    pub const ZERO: Time = Time(0);

    pub fn as_micros(self) -> u64 {
        self.0
    }

    /// The time elapsed since `earlier`, zero if `earlier` is later.
    pub fn since(self, earlier: Time) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    pub const ZERO: Duration = Duration(0);

    pub const fn from_micros(us: u64) -> Self {
        Duration(us)
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms * 1_000)
    }
    pub const fn from_secs(s: u64) -> Self {
        Duration(s * 1_000_000)
    }
    pub fn as_micros(self) -> u64 {
        self.0
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        Time(self.0.saturating_add(d.0))
    }
}

impl Add for Duration {
    type Output = Duration;
    fn add(self, d: Duration) -> Duration {
        Duration(self.0.saturating_add(d.0))
    }
}

impl Sub for Time {
    type Output = Duration;
    fn sub(self, t: Time) -> Duration {
        self.since(t)
    }
}

/// Why a duration string did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError(String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

impl FromStr for Duration {
    type Err = DurationError;

    /// Parses `"<number><unit>"` with unit `us`, `ms`, `s`, `m` or `h`; the number may have a
    /// fractional part ("1.5s") but must not be negative or finer than a microsecond.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            DurationError(format!(
                "invalid duration {s:?}: {why} (write e.g. \"250ms\", \"5s\", \"1.5m\")"
            ))
        };
        let s_trim = s.trim();
        if s_trim.starts_with('-') {
            return Err(bad("durations cannot be negative"));
        }
        let split = s_trim
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad("missing unit"))?;
        let (num, unit) = s_trim.split_at(split);
        let scale: u64 = match unit.trim() {
            "us" | "µs" => 1,
            "ms" => 1_000,
            "s" => 1_000_000,
            "m" | "min" => 60_000_000,
            "h" => 3_600_000_000,
            _ => return Err(bad("unknown unit, expected us, ms, s, m or h")),
        };
        if num.is_empty() {
            return Err(bad("missing number"));
        }
        let (int, frac) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if frac.contains('.') || (int.is_empty() && frac.is_empty()) {
            return Err(bad("malformed number"));
        }
        let int: u64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| bad("number too large"))?
        };
        let mut us = int.checked_mul(scale).ok_or_else(|| bad("too large"))?;
        // Fractional digits: each digit is worth scale / 10^k microseconds.
        let mut place = scale;
        for d in frac.bytes() {
            let digit = u64::from(d - b'0');
            if !place.is_multiple_of(10) {
                if digit != 0 {
                    return Err(bad("finer than one microsecond"));
                }
                continue;
            }
            place /= 10;
            us = us
                .checked_add(digit * place)
                .ok_or_else(|| bad("too large"))?;
        }
        Ok(Duration(us))
    }
}

/// Formats microseconds with the largest unit that keeps it exact up to three decimals.
fn fmt_micros(us: u64, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if us == 0 {
        return f.write_str("0s");
    }
    let (scale, unit) = if us >= 1_000_000 {
        (1_000_000, "s")
    } else if us >= 1_000 {
        (1_000, "ms")
    } else {
        (1, "us")
    };
    let whole = us / scale;
    let rest = us % scale;
    if rest == 0 {
        return write!(f, "{whole}{unit}");
    }
    let digits = match scale {
        1_000_000 => 6,
        _ => 3,
    };
    let frac = format!("{rest:0digits$}");
    write!(f, "{whole}.{}{unit}", frac.trim_end_matches('0'))
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_micros(self.0, f)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_micros(self.0, f)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"250ms\" or \"5s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_fractions() {
        let p = |s: &str| s.parse::<Duration>().map(|d| d.0);
        assert_eq!(p("250ms"), Ok(250_000));
        assert_eq!(p("5s"), Ok(5_000_000));
        assert_eq!(p("1.5s"), Ok(1_500_000));
        assert_eq!(p("0.001ms"), Ok(1));
        assert_eq!(p("2m"), Ok(120_000_000));
        assert_eq!(p("7us"), Ok(7));
        assert!(p("-5s").unwrap_err().0.contains("negative"));
        assert!(p("5").unwrap_err().0.contains("missing unit"));
        assert!(p("5 parsecs").unwrap_err().0.contains("unknown unit"));
        assert!(p("0.5us").unwrap_err().0.contains("microsecond"));
        assert!(p("1.2.3s").is_err());
        assert!(p("s").is_err());
    }

    #[test]
    fn display_round_trips() {
        for us in [
            0, 1, 999, 1_000, 1_500, 250_000, 1_000_000, 1_234_567, 60_000_000,
        ] {
            let d = Duration(us);
            assert_eq!(d.to_string().parse::<Duration>(), Ok(d), "{d}");
        }
        assert_eq!(Duration::from_millis(250).to_string(), "250ms");
    }
}
