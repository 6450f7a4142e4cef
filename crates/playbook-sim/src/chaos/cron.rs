//! Cron schedules as Chaos Mesh parses them (`api/v1alpha1/schedule_types.go` `StandardCronParser`: robfig/cron v3 with an optional seconds field, the five standard fields and descriptors), and their next run after an instant (UTC).
//!
//! Accepted: `*`, `?`, numbers, names (`JAN`-`DEC`, `SUN`-`SAT`), ranges `a-b`, steps `/n`,
//! lists `a,b`; `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`,
//! `@hourly`, `@every <go duration>` (at least 1 s, rounded to the second); a leading
//! `TZ=`/`CRON_TZ=` is accepted only for UTC. Day of month and day of week combine as in
//! robfig's `dayMatches`: when either is `*` both must match, else either may.

use jiff::civil::{Date, DateTime};
use jiff::{SignedDuration, Timestamp, tz::TimeZone};

use playbook_model::units;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Cron {
    /// `@every`: a constant delay, whole seconds.
    Every(i64),
    /// The fields.
    Fields(Fields),
}

/// The six fields as bit sets; `dom_star`/`dow_star` when given as `*` or `?`.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields {
    sec: u64,
    min: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    dom_star: bool,
    dow_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn field(
    text: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
    name_base: u32,
) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                Some(
                    s.parse::<u32>()
                        .map_err(|_| format!("failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax"))?,
                ),
            ),
            None => (part, None),
        };
        let num = |t: &str| -> Result<u32, String> {
            let low = t.to_ascii_lowercase();
            if let Some(i) = names.iter().position(|n| *n == low) {
                return Ok(i as u32 + name_base);
            }
            t.parse::<u32>().map_err(|_| {
                format!(
                    "failed to parse int from {t}: strconv.Atoi: parsing \"{t}\": invalid syntax"
                )
            })
        };
        let (start, end) = if range == "*" || range == "?" {
            if step.is_none() {
                star = true;
            }
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (num(a)?, num(b)?)
        } else {
            let a = num(range)?;
            (a, if step.is_some() { hi } else { a })
        };
        if start < lo {
            return Err(format!(
                "beginning of range ({start}) below minimum ({lo}): {part}"
            ));
        }
        if end > hi {
            return Err(format!("end of range ({end}) above maximum ({hi}): {part}"));
        }
        if start > end {
            return Err(format!(
                "beginning of range ({start}) beyond end of range ({end}): {part}"
            ));
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

/// Parses a schedule (`spec.schedule` of a Chaos Mesh Schedule).
pub fn parse(spec: &str) -> Result<Cron, String> {
    let mut spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    if let Some(rest) = spec
        .strip_prefix("TZ=")
        .or_else(|| spec.strip_prefix("CRON_TZ="))
    {
        let (tz, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if tz != "UTC" && tz != "Etc/UTC" {
            return Err(format!(
                "provided bad location {tz}: the simulator runs in UTC only"
            ));
        }
        spec = rest.trim();
    }
    if let Some(d) = spec.strip_prefix("@every ") {
        let secs = units::go_duration_secs(d.trim())
            .map_err(|e| format!("failed to parse duration {spec}: {e}"))?;
        return Ok(Cron::Every((secs.round() as i64).max(1)));
    }
    let spec = match spec {
        "@yearly" | "@annually" => "0 0 0 1 1 *",
        "@monthly" => "0 0 0 1 * *",
        "@weekly" => "0 0 0 * * 0",
        "@daily" | "@midnight" => "0 0 0 * * *",
        "@hourly" => "0 0 * * * *",
        s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
        s => s,
    };
    let mut fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() == 5 {
        fields.insert(0, "0");
    }
    if fields.len() != 6 {
        return Err(format!(
            "expected 5 to 6 fields, found {}: [{}]",
            spec.split_whitespace().count(),
            spec.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    let (sec, _) = field(fields[0], 0, 59, &[], 0)?;
    let (min, _) = field(fields[1], 0, 59, &[], 0)?;
    let (hour, _) = field(fields[2], 0, 23, &[], 0)?;
    let (dom, dom_star) = field(fields[3], 1, 31, &[], 0)?;
    let (month, _) = field(fields[4], 1, 12, &MONTHS, 1)?;
    let (mut dow, dow_star) = field(fields[5], 0, 7, &DAYS, 0)?;
    if dow & (1 << 7) != 0 {
        dow |= 1;
    }
    Ok(Cron::Fields(Fields {
        sec,
        min,
        hour,
        dom,
        month,
        dow,
        dom_star,
        dow_star,
    }))
}

fn has(bits: u64, v: i8) -> bool {
    v >= 0 && bits & (1u64 << v) != 0
}

impl Cron {
    /// The first activation strictly after `t` (None when there is none within five years).
    pub fn next(&self, t: Timestamp) -> Option<Timestamp> {
        let f = match self {
            Cron::Every(s) => {
                let whole = Timestamp::from_second(t.as_second()).ok()?;
                return whole.checked_add(SignedDuration::from_secs(*s)).ok();
            }
            Cron::Fields(f) => f,
        };
        let utc = TimeZone::UTC;
        let start = Timestamp::from_second(t.as_second() + 1).ok()?;
        let mut d: DateTime = start.to_zoned(utc.clone()).datetime();
        let limit = d.year() + 5;
        let day_ok = |d: &DateTime| {
            let wd = d.weekday().to_sunday_zero_offset();
            let a = has(f.dom, d.day());
            let b = has(f.dow, wd);
            if f.dom_star || f.dow_star {
                a && b
            } else {
                a || b
            }
        };
        let at = |date: Date, h: i8, m: i8, s: i8| date.at(h, m, s, 0);
        loop {
            if d.year() > limit {
                return None;
            }
            if !has(f.month, d.month()) {
                let first = Date::new(d.year(), d.month(), 1).ok()?;
                d = at(
                    first.checked_add(jiff::Span::new().months(1)).ok()?,
                    0,
                    0,
                    0,
                );
                continue;
            }
            if !day_ok(&d) {
                d = at(d.date().tomorrow().ok()?, 0, 0, 0);
                continue;
            }
            if !has(f.hour, d.hour()) {
                d = at(d.date(), d.hour(), 0, 0)
                    .checked_add(SignedDuration::from_hours(1))
                    .ok()?;
                continue;
            }
            if !has(f.min, d.minute()) {
                d = at(d.date(), d.hour(), d.minute(), 0)
                    .checked_add(SignedDuration::from_mins(1))
                    .ok()?;
                continue;
            }
            if !has(f.sec, d.second()) {
                d = d.checked_add(SignedDuration::from_secs(1)).ok()?;
                continue;
            }
            return d.to_zoned(utc).ok().map(|z| z.timestamp());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("ts")
    }

    /// robfig/cron v3 `parser.go` and `spec.go` (the parser Chaos Mesh's Schedule uses).
    #[test]
    fn standard_fields_descriptors_and_every() {
        let t = ts("2026-01-01T10:07:30Z");
        let next = |s: &str| parse(s).expect(s).next(t).expect("next").to_string();
        assert_eq!(next("*/5 * * * *"), "2026-01-01T10:10:00Z");
        assert_eq!(next("0 12 * * *"), "2026-01-01T12:00:00Z");
        assert_eq!(next("*/20 * * * * *"), "2026-01-01T10:07:40Z");
        assert_eq!(next("@hourly"), "2026-01-01T11:00:00Z");
        assert_eq!(next("@every 1m"), "2026-01-01T10:08:30Z");
        assert_eq!(next("@every 90s"), "2026-01-01T10:09:00Z");
        // 2026-01-01 is a Thursday: the next Monday is the 5th.
        assert_eq!(next("0 9 * * MON"), "2026-01-05T09:00:00Z");
        // Both day fields restricted: either matches (the 2nd, a Friday, by dom).
        assert_eq!(next("0 0 2 * MON"), "2026-01-02T00:00:00Z");
        assert_eq!(next("0 0 1 FEB *"), "2026-02-01T00:00:00Z");
        assert!(
            parse("* * *")
                .unwrap_err()
                .starts_with("expected 5 to 6 fields")
        );
        assert!(parse("61 * * * *").unwrap_err().contains("above maximum"));
        assert!(parse("@often").is_err());
    }
}
