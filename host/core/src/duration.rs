//! Durations as people write them: `48h`, `30m`, `7d`, `1h30m`, `45s`.

/// Seconds of a duration written as one or more `<number><unit>` parts, units `d`, `h`,
/// `m` and `s` in that order (`1h30m`); at least one second, at most ten years.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let wrong = || {
        format!(
            "{text:?} is not a duration: write a number and a unit (d, h, m, s), such as \
             48h, 30m, 7d or 1h30m"
        )
    };
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut last_unit = 0usize;
    let units = [('d', 86_400i64), ('h', 3_600), ('m', 60), ('s', 1)];
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let place = units.iter().position(|(u, _)| *u == c).ok_or_else(wrong)?;
        if number.is_empty() || number.len() > 9 || place < last_unit {
            return Err(wrong());
        }
        let n: i64 = number.parse().map_err(|_| wrong())?;
        total = total.saturating_add(n.saturating_mul(units[place].1));
        number.clear();
        last_unit = place + 1;
    }
    if !number.is_empty() || last_unit == 0 {
        return Err(wrong());
    }
    if total < 1 {
        return Err(format!("{text:?} is shorter than a second"));
    }
    if total > 10 * 365 * 86_400 {
        return Err(format!("{text:?} is longer than ten years"));
    }
    Ok(total)
}

/// A number of seconds the way [`parse_duration`] reads it, largest units first
/// (`172800` is `2d`, `5400` is `1h30m`; negative is `0s`).
pub fn format_duration(seconds: i64) -> String {
    if seconds <= 0 {
        return "0s".into();
    }
    let mut rest = seconds;
    let mut out = String::new();
    for (unit, size) in [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(parse_duration("48h"), Ok(172_800));
        assert_eq!(parse_duration("1h30m"), Ok(5_400));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration(" 20s "), Ok(20));
        for wrong in [
            "",
            "h",
            "10",
            "1x",
            "30m1h",
            "-5s",
            "1.5h",
            "0s",
            "9999999999d",
        ] {
            assert!(parse_duration(wrong).is_err(), "{wrong:?} was accepted");
        }
        assert!(parse_duration("2 days").unwrap_err().contains("48h"));
    }

    #[test]
    fn durations_print_as_they_are_read() {
        for s in [1, 59, 60, 3_661, 5_400, 172_800, 200_000] {
            assert_eq!(parse_duration(&format_duration(s)), Ok(s));
        }
        assert_eq!(format_duration(5_400), "1h30m");
        assert_eq!(format_duration(-3), "0s");
    }
}
