//! The value syntaxes of Kubernetes objects and Chaos Mesh specs: Go durations, byte sizes,
//! percentages and Kubernetes quantities (playbooks' own durations are parsed by the product).

use std::time::Duration;

/// Parses a Go `time.ParseDuration` string ("90ms", "1.5s", "100us", "1m30s", "0"), as the
/// real controller reads `duration` and `latency`.
pub fn go_duration(text: &str) -> Result<Duration, String> {
    let secs = go_duration_secs(text)?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("time: invalid duration \"{text}\""))
}

/// [`go_duration`] as a number of seconds.
pub fn go_duration_secs(text: &str) -> Result<f64, String> {
    let err = || format!("time: invalid duration \"{text}\"");
    let s = text.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(0.0);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(err());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let value: f64 = rest[..n].parse().map_err(|_| err())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += value * scale;
        rest = &rest[u..];
    }
    Ok(total)
}

/// Parses a memory size as Chaos Mesh's memory stressor takes it: `"256MB"`, `"1GiB"`,
/// `"512k"`, `"1024"` (bytes). Decimal units (KB, MB, GB, TB) are powers of 1000, binary ones
/// (KiB, MiB, GiB, TiB) powers of 1024. Percentages are handled by the caller.
pub fn byte_size(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    let value: f64 = num
        .parse()
        .map_err(|_| format!("invalid size \"{text}\""))?;
    let mult: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024f64.powi(2),
        "gi" | "gib" => 1024f64.powi(3),
        "ti" | "tib" => 1024f64.powi(4),
        _ => return Err(format!("invalid size \"{text}\": unknown unit \"{unit}\"")),
    };
    Ok((value * mult) as u64)
}

/// Parses a Kubernetes quantity ("500m", "2", "1Gi", "512Mi", "1e9", "1.5") into base units
/// (cores for CPU, bytes for memory). `None` when malformed.
pub fn quantity(text: &str) -> Option<f64> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(s.len());
    let (num, suffix) = (&s[..split], &s[split..]);
    let value: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    let r = value * mult;
    r.is_finite().then_some(r)
}

/// A percentage or probability as Chaos Mesh writes it (`"25"`, `"0.5"`), as a fraction in [0, 1].
pub fn percent(text: &str) -> Result<f64, String> {
    let v: f64 = text
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing \"{text}\": invalid syntax"))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(format!("percentage {text} is out of range [0, 100]"));
    }
    Ok(v / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("90ms"), Ok(Duration::from_millis(90)));
        assert_eq!(go_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(go_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(go_duration("0"), Ok(Duration::ZERO));
        assert!(go_duration("10").is_err());
        assert!(go_duration("x").is_err());
        assert!(go_duration("-1s").is_err());
    }

    #[test]
    fn sizes_and_quantities() {
        assert_eq!(byte_size("256MB"), Ok(256_000_000));
        assert_eq!(byte_size("1GiB"), Ok(1 << 30));
        assert_eq!(byte_size("10GB"), Ok(10_000_000_000));
        assert!(byte_size("12XB").is_err());
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("512Mi"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert_eq!(quantity("abc"), None);
        assert_eq!(percent("25"), Ok(0.25));
        assert!(percent("150").is_err());
    }
}
