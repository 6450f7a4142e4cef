//! The one duration parser: "100ms", "30s", "1m30s", "2h", as playbooks, options and Chaos Mesh write them.

use std::time::Duration;

/// The longest duration accepted anywhere (`--timeout`, a fault's `duration`, waits): Go's
/// largest `time.Duration` in whole hours (2562047h, about 292 years), the most a Chaos Mesh
/// `duration` can say; clock arithmetic (timestamps up to the year 9999) cannot overflow.
pub const LONGEST: Duration = Duration::from_secs(2_562_047 * 3600);

/// Parses a duration written as one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h`
/// (Go's `time.ParseDuration` forms that Chaos Mesh accepts, without fractions or `us`/`ns`),
/// of at most [`LONGEST`].
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration: write it like \"30s\", \"1m30s\" or \"100ms\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number at {rest:?} (write it like \"30s\", \"1m30s\" or \"100ms\")"
            ));
        }
        let too_long = || {
            format!(
                "duration {text:?} is longer than the longest accepted, {} (about 292 years)",
                format(LONGEST)
            )
        };
        let n: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: missing unit after {n} (use ms, s, m or h)"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ));
            }
        };
        total = total.saturating_add(part);
        if total > LONGEST {
            return Err(too_long());
        }
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Formats a duration the way [`parse`] reads it, shortest form first ("1m30s", "250ms").
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let (h, m, s, rest_ms) = (
        ms / 3_600_000,
        (ms / 60_000) % 60,
        (ms / 1000) % 60,
        ms % 1000,
    );
    let mut out = String::new();
    if h > 0 {
        out += &format!("{h}h");
    }
    if m > 0 {
        out += &format!("{m}m");
    }
    if s > 0 {
        out += &format!("{s}s");
    }
    if rest_ms > 0 {
        out += &format!("{rest_ms}ms");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_playbooks_use() {
        assert_eq!(parse("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse(" 1h1m1s1ms "), Ok(Duration::from_millis(3_661_001)));
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("30").unwrap_err().contains("missing unit"));
        assert!(parse("3d").unwrap_err().contains("unknown unit \"d\""));
        assert!(parse("s").unwrap_err().contains("expected a number"));
        assert!(parse("1.5s").unwrap_err().contains("unknown unit"));
        for huge in [
            "99999999999999999h",
            "2562048h",
            "99999999999999999999999s",
            "2562047h1ms",
        ] {
            let e = parse(huge).unwrap_err();
            assert!(e.contains("longest accepted, 2562047h"), "{huge}: {e}");
        }
        assert_eq!(parse("2562047h"), Ok(LONGEST));
    }

    #[test]
    fn formats_what_it_parses() {
        for s in ["100ms", "30s", "1m30s", "2h", "1h1m1s1ms"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
        assert_eq!(format(Duration::ZERO), "0s");
    }
}
