//! What a run tells others besides its files: the JSON summary (for `--notify` webhooks and
//! the `--summary-configmap` ConfigMap), the Prometheus Pushgateway exposition of each
//! playbook (`--pushgateway`), and the small bounded HTTP sender and ConfigMap writer that
//! deliver them. None of them changes a verdict: a failed delivery is said on standard error.

use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::{PlaybookReport, RunReport, Status};

/// How long one webhook post or Pushgateway push may take, connection included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The key of the summary in the ConfigMap `--summary-configmap` writes.
pub const SUMMARY_KEY: &str = "summary.json";

/// The largest report a ConfigMap holds whole; a larger one is written as its summary
/// (a ConfigMap holds at most 1 MiB, `MaxSecretSize` in pkg/apis/core/validation).
pub const WHOLE_REPORT_LIMIT: usize = 512 * 1024;

/// The run's summary: the JSON report without each playbook's series, timeline and log
/// (what a person or a webhook reads: verdicts, errors, expectations, faults, records).
pub fn summary(run: &RunReport) -> Value {
    let mut v = serde_json::to_value(run).unwrap_or(Value::Null);
    if let Some(pbs) = v.get_mut("playbooks").and_then(Value::as_array_mut) {
        for pb in pbs {
            if let Some(pb) = pb.as_object_mut() {
                for heavy in ["series", "events", "log"] {
                    pb.remove(heavy);
                }
            }
        }
    }
    v
}

/// What `--summary-configmap` stores under [`SUMMARY_KEY`]: the whole JSON report when it is
/// at most [`WHOLE_REPORT_LIMIT`], else its [`summary`].
pub fn configmap_text(run: &RunReport) -> String {
    let whole = super::json::render(run);
    if whole.len() <= WHOLE_REPORT_LIMIT {
        return whole;
    }
    let mut text = serde_json::to_string_pretty(&summary(run)).unwrap_or_default();
    text.push('\n');
    text
}

/// The webhook payload of `--notify`: the [`summary`] with a `text` field that Slack and
/// Mattermost incoming webhooks display.
pub fn notification(run: &RunReport) -> Value {
    let mut v = summary(run);
    if let Some(m) = v.as_object_mut() {
        m.insert("text".into(), Value::String(notification_text(run)));
    }
    v
}

/// The displayed text: the batch's verdict, then a line per playbook with its verdict, why,
/// and its key figures (the numeric records).
pub fn notification_text(run: &RunReport) -> String {
    let mut out = format!(
        "playbook run {}: {} ({} playbook(s), {}, target {})",
        run.run_id,
        run.status.word(),
        run.playbooks.len(),
        super::seconds(run.wall_s),
        run.target.description
    );
    for pb in &run.playbooks {
        let mark = match pb.status {
            Status::Passed | Status::DryRun => "✅",
            Status::Skipped => "⏭",
            _ => "❌",
        };
        out.push_str(&format!("\n{mark} {}: {}", pb.name, pb.status.word()));
        let why = pb
            .error
            .as_ref()
            .map(|e| e.message.lines().next().unwrap_or_default().to_string())
            .or_else(|| pb.skip_reason.clone())
            .or_else(|| pb.inconclusive.first().cloned());
        if let Some(why) = why {
            out.push_str(&format!(" — {why}"));
        }
        let figures: Vec<String> = numbers(pb)
            .into_iter()
            .map(|(k, x)| format!("{k}={}", super::figure(&json!(x))))
            .collect();
        if !figures.is_empty() {
            out.push_str(&format!(" ({})", figures.join(", ")));
        }
    }
    out
}

/// A playbook's numeric records: numbers as their key, a map's numbers as `key.field`.
pub fn numbers(pb: &PlaybookReport) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (k, v) in pb.records.iter() {
        match v {
            Value::Object(m) => out.extend(m.iter().filter_map(|(f, v)| {
                Some((format!("{k}.{f}"), v.as_f64().filter(|x| x.is_finite())?))
            })),
            v => out.extend(v.as_f64().filter(|x| x.is_finite()).map(|x| (k.clone(), x))),
        }
    }
    out
}

/// The Pushgateway group of a playbook: `job` `playbook`, `instance` the playbook's name
/// (base64url-encoded in the path, as the Pushgateway documents for values with `/`), so each
/// playbook's metrics replace only its own previous push.
pub fn pushgateway_url(base: &str, playbook: &str) -> String {
    format!(
        "{}/metrics/job/playbook/instance@base64/{}",
        base.trim_end_matches('/'),
        base64url(playbook.as_bytes())
    )
}

/// A playbook's metrics in the Prometheus text exposition format (version 0.0.4), each with
/// the `playbook` and `run_id` labels: `playbook_passed`, `playbook_verdict{verdict}`,
/// `playbook_duration_seconds`, and `playbook_record{record}` per numeric record.
pub fn exposition(run_id: &str, pb: &PlaybookReport) -> String {
    let labels = format!(
        "playbook=\"{}\",run_id=\"{}\"",
        escape_label(&pb.name),
        escape_label(run_id)
    );
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: Vec<(String, f64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for (extra, value) in samples {
            out.push_str(&format!("{name}{{{labels}{extra}}} {}\n", sample(value)));
        }
    };
    let passed = matches!(pb.status, Status::Passed);
    family(
        "playbook_passed",
        "1 if the playbook passed, 0 otherwise.",
        vec![(String::new(), if passed { 1.0 } else { 0.0 })],
    );
    family(
        "playbook_verdict",
        "The playbook's verdict, as a label (value 1).",
        vec![(
            format!(",verdict=\"{}\"", escape_label(&status_label(pb.status))),
            1.0,
        )],
    );
    family(
        "playbook_duration_seconds",
        "Wall-clock seconds the playbook took, cleanup included.",
        vec![(String::new(), pb.wall_s)],
    );
    let records: Vec<(String, f64)> = numbers(pb)
        .into_iter()
        .map(|(k, x)| (format!(",record=\"{}\"", escape_label(&k)), x))
        .collect();
    if !records.is_empty() {
        family(
            "playbook_record",
            "Each numeric record(\"name\", number) of the playbook, by name.",
            records,
        );
    }
    out
}

/// `passed`, `cleanup_incomplete`, ... (the JSON report's spelling).
fn status_label(s: Status) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| s.word().replace(' ', "_"))
}

/// A sample value as the text format writes it (`+Inf`, `NaN`, Go's float formatting).
fn sample(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{x}")
    }
}

/// A label value escaped as the text format requires: backslash, double quote, line feed.
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// RFC 4648 base64url with padding (what the Pushgateway decodes after `@base64`).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Sends `body` to `url` with `method` within [`SEND_TIMEOUT`] (http or https); `Err` says the
/// HTTP status and the start of the answer, or the error.
pub async fn send(
    method: &str,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL {url:?}: {e}"))?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("no TLS root certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, http_body_util::Full<bytes::Bytes>>(https);
    let req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(
            http::header::USER_AGENT,
            concat!("playbook/", env!("CARGO_PKG_VERSION")),
        )
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let answer = tokio::time::timeout(SEND_TIMEOUT, async {
        let res = client.request(req).await.map_err(|e| {
            // The whole chain: "client error (Connect): tcp connect error: Connection refused".
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                let more = s.to_string();
                if !text.contains(&more) {
                    text.push_str(&format!(": {more}"));
                }
                source = s.source();
            }
            text
        })?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<_, String>((status, body))
    })
    .await
    .map_err(|_| format!("no answer within {}s", SEND_TIMEOUT.as_secs()))??;
    let (status, body) = answer;
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    let mut cut = text.len().min(200);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Err(if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", &text[..cut])
    })
}

/// Creates the ConfigMap `namespace/name` holding `text` under [`SUMMARY_KEY`], or replaces
/// its data; labelled as playbook's, with the run id.
pub async fn write_configmap(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    run_id: &str,
    text: &str,
) -> Result<(), String> {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let mut cm = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(
                [
                    (
                        "app.kubernetes.io/managed-by".to_string(),
                        "playbook".to_string(),
                    ),
                    ("playbook.dev/run-id".to_string(), run_id.to_string()),
                ]
                .into(),
            ),
            ..Default::default()
        },
        data: Some([(SUMMARY_KEY.to_string(), text.to_string())].into()),
        ..Default::default()
    };
    let what = format!("ConfigMap {namespace}/{name}");
    let describe = |e: kube::Error| match e {
        kube::Error::Api(s) => format!("{what}: {} {}", s.code, s.message),
        e => format!("{what}: {e}"),
    };
    // A conflict (someone changed it between the read and the write) is tried again once.
    for attempt in 0..2 {
        match api.get_opt(name).await.map_err(describe)? {
            None => match api.create(&PostParams::default(), &cm).await {
                Ok(_) => return Ok(()),
                Err(kube::Error::Api(s)) if s.code == 409 && attempt == 0 => continue,
                Err(e) => return Err(describe(e)),
            },
            Some(old) => {
                cm.metadata.resource_version = old.metadata.resource_version;
                match api.replace(name, &PostParams::default(), &cm).await {
                    Ok(_) => return Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 && attempt == 0 => continue,
                    Err(e) => return Err(describe(e)),
                }
            }
        }
    }
    Err(format!(
        "{what}: changed by someone else while it was written"
    ))
}

/// `NAMESPACE/NAME` of `--summary-configmap`, checked as the API server would.
pub fn parse_configmap(s: &str) -> Result<(String, String), String> {
    let (ns, name) = s
        .split_once('/')
        .ok_or_else(|| format!("expected NAMESPACE/NAME, got {s:?}"))?;
    let dns = |what: &str, v: &str, max: usize| {
        let ok = !v.is_empty()
            && v.len() <= max
            && v.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && v.as_bytes()[0].is_ascii_alphanumeric()
            && v.as_bytes()[v.len() - 1].is_ascii_alphanumeric();
        if ok {
            Ok(v.to_string())
        } else {
            Err(format!(
                "{what} {v:?} is not a valid name (lowercase letters, digits, '-' and '.', at most {max} characters)"
            ))
        }
    };
    Ok((dns("namespace", ns, 63)?, dns("ConfigMap name", name, 253)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_pads_as_rfc_4648_says() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg==");
        assert_eq!(base64url(b"fo"), "Zm8=");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(
            base64url(b"playbooks/pod-failure.rhai"),
            "cGxheWJvb2tzL3BvZC1mYWlsdXJlLnJoYWk="
        );
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8=");
    }

    #[test]
    fn labels_are_escaped_and_values_spelled_as_the_text_format_does() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(sample(f64::INFINITY), "+Inf");
        assert_eq!(sample(1.5), "1.5");
        assert_eq!(sample(12000.0), "12000");
    }

    #[test]
    fn configmap_names_are_checked() {
        assert_eq!(
            parse_configmap("chaos/pb-summary").unwrap(),
            ("chaos".into(), "pb-summary".into())
        );
        assert!(parse_configmap("chaos").is_err());
        assert!(parse_configmap("Chaos/x").is_err());
        assert!(parse_configmap("chaos/").is_err());
    }
}
