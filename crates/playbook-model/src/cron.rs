//! Cron schedules as a CronJob's `spec.schedule` takes them: the standard five fields or a
//! descriptor, checked the way the API server checks them (pkg/apis/batch/validation/
//! validation.go validateScheduleFormat, which calls robfig/cron/v3 ParseStandard: parser.go
//! Parse, getField, getRange, parseIntOrName, mustParseInt, parseDescriptor), with its
//! messages, so `playbook deploy` and the simulator refuse the same schedules with the same
//! words. Only the check: nothing here computes when a schedule fires.

/// One field's bounds and names (robfig/cron/v3 spec.go).
struct Bounds {
    min: i64,
    max: i64,
    names: &'static [(&'static str, i64)],
}

/// A field without names.
const fn numeric(min: i64, max: i64) -> Bounds {
    Bounds {
        min,
        max,
        names: &[],
    }
}

const MINUTES: Bounds = numeric(0, 59);
const HOURS: Bounds = numeric(0, 23);
const DOM: Bounds = numeric(1, 31);
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Checks a CronJob schedule; the error is the API server's detail for `spec.schedule`.
pub fn check(schedule: &str) -> Result<(), String> {
    parse_standard(schedule)?;
    // validateScheduleFormat on create: a time zone goes in spec.timeZone.
    if schedule.contains("TZ") {
        return Err("cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into());
    }
    Ok(())
}

/// robfig/cron/v3 ParseStandard: minute, hour, day of month, month, day of week, or a
/// descriptor.
fn parse_standard(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    // A leading time zone (parser.go Parse): its name is looked up; the rest is the schedule.
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let i = spec
            .find(' ')
            .ok_or_else(|| "missing schedule after time zone".to_string())?;
        spec = spec[i..].trim();
    }
    if spec.starts_with('@') {
        return descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (field, bounds) in fields.iter().zip([&MINUTES, &HOURS, &DOM, &MONTHS, &DOW]) {
        for expr in field.split(',') {
            range(expr, bounds)?;
        }
    }
    Ok(())
}

/// parser.go parseDescriptor.
fn descriptor(spec: &str) -> Result<(), String> {
    match spec {
        "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" => {
            Ok(())
        }
        s if s.starts_with("@every ") => {
            let d = &s["@every ".len()..];
            go_duration(d).map_err(|e| format!("failed to parse duration {s}: {e}"))
        }
        s => Err(format!("unrecognized descriptor: {s}")),
    }
}

/// Whether `s` is a Go duration (time.ParseDuration): `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`.
fn go_duration(s: &str) -> Result<(), String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    let mut rest = s.strip_prefix(['-', '+']).unwrap_or(s);
    if rest == "0" {
        return Ok(());
    }
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(bad());
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(*u))
            .max_by_key(|u| u.len())
            .ok_or_else(|| {
                if rest.is_empty() {
                    format!("time: missing unit in duration \"{s}\"")
                } else {
                    let unit: String = rest.chars().take_while(|c| !c.is_ascii_digit()).collect();
                    format!("time: unknown unit \"{unit}\" in duration \"{s}\"")
                }
            })?;
        rest = &rest[unit.len()..];
    }
    Ok(())
}

/// parser.go getRange: `*`, `?`, `N`, `N-M`, each optionally `/STEP`.
fn range(expr: &str, b: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (b.min, b.max)
    } else {
        let start = int_or_name(low_and_high[0], b.names)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => int_or_name(low_and_high[1], b.names)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            // "N/step" means "N-max/step".
            if single {
                end = b.max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

fn int_or_name(expr: &str, names: &[(&str, i64)]) -> Result<i64, String> {
    let lower = expr.to_ascii_lowercase();
    match names.iter().find(|(n, _)| *n == lower) {
        Some((_, v)) => Ok(*v),
        None => must_parse_int(expr),
    }
}

/// parser.go mustParseInt (strconv.Atoi's wording).
fn must_parse_int(expr: &str) -> Result<i64, String> {
    let n: i64 = expr.parse().map_err(|_| {
        format!("failed to parse int from {expr}: strconv.Atoi: parsing \"{expr}\": invalid syntax")
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn standard_schedules_and_descriptors_pass() {
        for s in [
            "0 3 * * 1",
            "*/15 * * * *",
            "0 0 1,15 * *",
            "30 2 * jan-mar mon-fri",
            "0 9-17/2 * * ?",
            "5/10 * * * *",
            "@weekly",
            "@every 1h30m",
        ] {
            assert_eq!(check(s), Ok(()), "{s}");
        }
    }

    #[test]
    fn bad_schedules_get_the_api_servers_words() {
        let cases = [
            ("", "empty spec string"),
            ("0 3 * *", "expected exactly 5 fields, found 4: [0 3 * *]"),
            (
                "0 3 * * * *",
                "expected exactly 5 fields, found 6: [0 3 * * * *]",
            ),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            (
                "* 5-2 * * *",
                "beginning of range (5) beyond end of range (2): 5-2",
            ),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "*/0 * * * *",
                "step of range should be a positive number: */0",
            ),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("1/2/3 * * * *", "too many slashes: 1/2/3"),
            ("@fortnightly", "unrecognized descriptor: @fortnightly"),
            (
                "x * * * *",
                "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax",
            ),
            (
                "CRON_TZ=UTC 0 3 * * *",
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ),
        ];
        for (s, want) in cases {
            assert_eq!(check(s), Err(want.to_string()), "{s:?}");
        }
        assert!(check("@every 1y").unwrap_err().contains("unknown unit"));
    }
}
