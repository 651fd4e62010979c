//! Whole-second durations as people write them in annotations and read them in messages.

/// Now, in whole seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

use std::fmt;

use crate::error::{Error, Result};

/// What is wrong with a duration text ([`Error::InvalidDuration`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DurationProblem {
    /// No whole number of units in front.
    NotANumber,
    /// A unit other than `s`, `m`, `h`, `d`, `w`.
    UnknownUnit(String),
    /// More seconds than a `u64` holds.
    TooLong,
}

impl fmt::Display for DurationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationProblem::NotANumber => f.write_str("expected a duration like 72h or 3d"),
            DurationProblem::UnknownUnit(unit) => {
                write!(f, "unknown unit {unit:?} (s, m, h, d, w)")
            }
            DurationProblem::TooLong => f.write_str("too long"),
        }
    }
}

/// `72h`, `3d`, `90m`, `45s`, `2w`, or plain seconds → seconds.
pub fn parse_secs(s: &str) -> Result<u64> {
    let s = s.trim();
    let invalid = |problem| Error::InvalidDuration {
        input: s.to_string(),
        problem,
    };
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| invalid(DurationProblem::NotANumber))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(invalid(DurationProblem::UnknownUnit(unit.to_string()))),
    };
    n.checked_mul(mult)
        .ok_or_else(|| invalid(DurationProblem::TooLong))
}

/// Seconds → `2d 3h`, `5h 20m`, `45m`, `59s` (the two largest units).
pub fn human(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m"),
        (0, h, 0) => format!("{h}h"),
        (0, h, m) => format!("{h}h {m}m"),
        (d, 0, _) => format!("{d}d"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        assert_eq!(parse_secs("72h").unwrap(), 72 * 3600);
        assert_eq!(parse_secs("3d").unwrap(), 3 * 86_400);
        assert_eq!(parse_secs("90").unwrap(), 90);
        // The messages are what people read in annotations' errors: unchanged.
        let msg = |s: &str| parse_secs(s).unwrap_err().to_string();
        assert_eq!(msg("soon"), r#""soon": expected a duration like 72h or 3d"#);
        assert_eq!(msg(" 3y "), r#""3y": unknown unit "y" (s, m, h, d, w)"#);
        assert_eq!(
            msg("99999999999999999w"),
            r#""99999999999999999w": too long"#
        );
        assert!(matches!(
            parse_secs("3y"),
            Err(Error::InvalidDuration { problem: DurationProblem::UnknownUnit(u), .. }) if u == "y"
        ));
        assert_eq!(human(90_000), "1d 1h");
        assert_eq!(human(59), "59s");
        assert_eq!(human(3 * 86_400), "3d");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,30}|[0-9]{1,22}[smhdw]") {
            let _ = parse_secs(&s);
        }

        #[test]
        fn human_round_trips_whole_units(n in 1u64..10_000, unit in prop::sample::select(vec![("m", 60u64), ("h", 3600), ("d", 86_400)])) {
            let secs = n * unit.1;
            prop_assert_eq!(parse_secs(&format!("{n}{}", unit.0)).unwrap(), secs);
        }
    }
}
