//! The Prometheus text exposition format (version 0.0.4), read into numbers: what
//! `metrics::scrape` returns from a workload's own `/metrics`. Follows the format's rules
//! (prometheus/common `expfmt/text_parse.go`): `#` lines are comments (HELP and TYPE included),
//! a sample is `name{label="value",...} value [timestamp]`, label values escape `\\`, `\"` and
//! `\n`, and values may be `NaN`, `+Inf` or `-Inf`.

use std::collections::BTreeMap;

/// Every sample of `text`: unlabelled ones keyed by their name, labelled ones by
/// `name{a="x",b="y"}` (labels sorted by name, values escaped as exposed). A line that is not a
/// sample, or a series exposed twice, is an error naming its line.
pub fn parse(text: &str) -> Result<BTreeMap<String, f64>, String> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = sample(line).map_err(|e| format!("line {}: {e}: {raw:?}", i + 1))?;
        if out.insert(key.clone(), value).is_some() {
            return Err(format!("line {}: series {key} exposed twice", i + 1));
        }
    }
    Ok(out)
}

/// A metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (labels without `:`).
fn name_len(s: &str, colon: bool) -> usize {
    s.char_indices()
        .take_while(|&(i, c)| {
            c.is_ascii_alphabetic()
                || c == '_'
                || (colon && c == ':')
                || (i > 0 && c.is_ascii_digit())
        })
        .count()
}

/// One sample line: its key and value.
fn sample(line: &str) -> Result<(String, f64), String> {
    let n = name_len(line, true);
    if n == 0 {
        return Err("no metric name".into());
    }
    let name = &line[..n];
    let mut rest = line[n..].trim_start();
    let mut labels: Vec<(String, String)> = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let l = name_len(rest, false);
            if l == 0 {
                return Err("a label without a name".into());
            }
            let label = rest[..l].to_string();
            rest = rest[l..].trim_start();
            rest = rest
                .strip_prefix('=')
                .ok_or_else(|| format!("label {label} without '='"))?
                .trim_start();
            rest = rest
                .strip_prefix('"')
                .ok_or_else(|| format!("label {label}'s value is not quoted"))?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        _ => return Err(format!("label {label}: a bad escape")),
                    },
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label {label}'s value is not closed")),
                }
            };
            rest = rest[end + 1..].trim_start();
            if labels.iter().any(|(k, _)| *k == label) {
                return Err(format!("label {label} given twice"));
            }
            labels.push((label, value));
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
            } else if !rest.starts_with('}') {
                return Err("labels not separated by ','".into());
            }
        }
    }
    let mut fields = rest.split_whitespace();
    let text = fields.next().ok_or("no value")?;
    let value = number(text).ok_or_else(|| format!("value {text:?} is not a number"))?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("timestamp {ts:?} is not an integer"))?;
    }
    if fields.next().is_some() {
        return Err("text after the timestamp".into());
    }
    if labels.is_empty() {
        return Ok((name.to_string(), value));
    }
    labels.sort();
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{escaped}\"")
        })
        .collect();
    Ok((format!("{name}{{{}}}", inner.join(",")), value))
}

/// A sample value: a float as Go's `strconv.ParseFloat` reads it, `NaN`, `+Inf`, `-Inf`.
fn number(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        t if t
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') =>
        {
            None
        }
        t => t.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_labels_and_special_values() {
        let text = "# HELP training_step The step.\n# TYPE training_step gauge\ntraining_step 1200\n\
                    training_samples_per_second 83.5 1712000000000\n\
                    http_requests_total{path=\"/a,b\",code=\"200\"} 7\n\
                    odd{msg=\"say \\\"hi\\\"\\n\\\\\"} NaN\n\
                    up{job=\"x\"} +Inf\ndown -Inf\nsci 1.5e3\n";
        let m = parse(text).unwrap();
        assert_eq!(m["training_step"], 1200.0);
        assert_eq!(m["training_samples_per_second"], 83.5);
        assert_eq!(m["http_requests_total{code=\"200\",path=\"/a,b\"}"], 7.0);
        assert!(m["odd{msg=\"say \\\"hi\\\"\\n\\\\\"}"].is_nan());
        assert_eq!(m["up{job=\"x\"}"], f64::INFINITY);
        assert_eq!(m["down"], f64::NEG_INFINITY);
        assert_eq!(m["sci"], 1500.0);
    }

    #[test]
    fn malformed_lines_name_their_line() {
        for (text, why) in [
            ("ok 1\nbad\n", "line 2: no value"),
            ("x{a=1} 2", "not quoted"),
            ("x{a=\"1\" b=\"2\"} 2", "separated"),
            ("x{a=\"1\"} two", "not a number"),
            ("x 1\nx 2", "exposed twice"),
            ("x{a=\"1} 2", "not closed"),
            ("{a=\"1\"} 2", "no metric name"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }
}
