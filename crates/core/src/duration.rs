//! Whole-second durations as people write them in annotations and read them in messages.

/// Now, in whole seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `72h`, `3d`, `90m`, `45s`, `2w`, or plain seconds → seconds.
pub fn parse_secs(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration like 72h or 3d"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (s, m, h, d, w)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{s:?}: too long"))
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
        assert!(parse_secs("soon").is_err());
        assert!(parse_secs("3y").is_err());
        assert!(parse_secs("99999999999999999w").is_err());
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
