//! `metrics::` — what a playbook measures: calls to a Service through the API server's proxy
//! with latency statistics (and golden requests that check the answer, time to serving), a
//! workload's own `/metrics` as numbers, pod CPU and memory from metrics.k8s.io, and Prometheus queries
//! against a real Prometheus (`--prometheus URL` or `PLAYBOOK_PROMETHEUS`).

use http_body_util::BodyExt;
use kube::api::{Api, DynamicObject, ListParams};
use rhai::{Array, Dynamic, Map, NativeCallContext};
use serde_json::Value;

use crate::host::cluster::{api_error, to_dynamic};
use crate::host::{RhaiResultOf, error, session};
use crate::session::Session;

/// Latency statistics over a set of calls, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub count: usize,
    pub ok: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Stats {
    /// Statistics of `latencies` (of every call that got an answer) with `ok` successes.
    pub fn of(latencies: &[f64], ok: usize) -> Stats {
        let mut v = latencies.to_vec();
        v.sort_by(f64::total_cmp);
        // Nearest-rank percentiles, as load testers report them.
        let pct = |p: f64| {
            if v.is_empty() {
                0.0
            } else {
                let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
                v[rank.clamp(1, v.len()) - 1]
            }
        };
        Stats {
            count: latencies.len(),
            ok,
            p50: pct(50.0),
            p90: pct(90.0),
            p99: pct(99.0),
            max: v.last().copied().unwrap_or(0.0),
            mean: if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            },
        }
    }
}

/// A Kubernetes CPU quantity ("250m", "1", "1500000n") in millicores (0 when malformed).
pub fn cpu_millis(q: &str) -> f64 {
    playbook_model::units::quantity(q).unwrap_or(0.0) * 1000.0
}

/// A Kubernetes memory quantity ("300Mi", "1Gi", "500M", bytes) in MiB (0 when malformed).
pub fn memory_mib(q: &str) -> f64 {
    playbook_model::units::quantity(q).unwrap_or(0.0) / (1024.0 * 1024.0)
}

/// One call through the API server's service proxy: the answer's text for a 2xx answer.
pub(crate) fn call(s: &Session, path: &str, body: Option<&[u8]>) -> Result<String, String> {
    let builder = http::Request::builder().uri(path);
    let req = match body {
        Some(b) => builder
            .method("POST")
            .header("content-type", "application/json")
            .body(b.to_vec()),
        None => builder.method("GET").body(Vec::new()),
    }
    .map_err(|e| e.to_string())?;
    s.rt.block_on(async {
        let res = s
            .target
            .client
            .send(req.map(kube::client::Body::from))
            .await
            .map_err(|e| e.to_string())?;
        let code = res.status();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if code.is_client_error() || code.is_server_error() {
            Err(failed_answer(code.as_u16(), &text))
        } else {
            Ok(text)
        }
    })
}

/// A failed answer as a playbook reads it: the HTTP code and the Kubernetes Status message, or
/// the workload's own error body (e.g. KServe's `{"error": "Model ... is not ready."}`, which
/// kube-rs would read as an empty Status), cut at 200 characters.
fn failed_answer(code: u16, body: &str) -> String {
    let status = serde_json::from_str::<Value>(body)
        .ok()
        .filter(|v| v["kind"] == "Status")
        .and_then(|v| v["message"].as_str().map(str::to_string));
    let message = status.unwrap_or_else(|| body.trim().chars().take(200).collect());
    format!("{code} {message}")
}

/// The service-proxy URL of `path` on `service` in `ns`.
pub(crate) fn proxy_url(ns: &str, service: &str, path: &str) -> String {
    format!(
        "/api/v1/namespaces/{ns}/services/{service}/proxy/{}",
        path.trim_start_matches('/')
    )
}

fn probe_impl(
    ctx: &NativeCallContext,
    ns: &str,
    service: &str,
    path: &str,
    count: i64,
    body: Option<Vec<u8>>,
    golden: Option<&Value>,
) -> RhaiResultOf<Map> {
    let s = session(ctx)?;
    if !(1..=10_000).contains(&count) {
        return Err(error(
            ctx,
            format!("metrics::probe: count must be 1..10000, not {count}"),
        ));
    }
    let url = proxy_url(ns, service, path);
    let mut latencies = Vec::with_capacity(count as usize);
    let (mut ok, mut wrong, mut last_error, mut last_wrong) = (0, 0, String::new(), String::new());
    for _ in 0..count {
        if let Some(r) = s.stop.check() {
            return Err(crate::host::expect::terminated(r, ctx.call_position()));
        }
        let t0 = s.now();
        let result = call(&s, &url, body.as_deref());
        latencies.push(s.now().duration_since(t0).as_secs_f64() * 1000.0);
        match (result, golden) {
            (Ok(answer), Some(expected)) => match super::answers::check(expected, &answer) {
                Ok(()) => ok += 1,
                Err(why) => {
                    wrong += 1;
                    last_wrong = why;
                }
            },
            (Ok(_), None) => ok += 1,
            (Err(e), _) => last_error = e,
        }
    }
    let st = Stats::of(&latencies, ok);
    let mut m = Map::new();
    m.insert("count".into(), (st.count as i64).into());
    m.insert("ok".into(), (st.ok as i64).into());
    m.insert("wrong".into(), (wrong as i64).into());
    m.insert("errors".into(), ((st.count - st.ok - wrong) as i64).into());
    m.insert(
        "success_rate".into(),
        (st.ok as f64 / st.count.max(1) as f64).into(),
    );
    for (k, v) in [
        ("p50", st.p50),
        ("p90", st.p90),
        ("p99", st.p99),
        ("max", st.max),
        ("mean", st.mean),
    ] {
        m.insert(k.into(), v.into());
    }
    m.insert("last_error".into(), last_error.into());
    if golden.is_some() {
        m.insert("last_wrong".into(), last_wrong.into());
    }
    crate::session::sample_map(
        &s,
        "probe",
        &format!("{ns}/{service}/{}", path.trim_start_matches('/')),
        &m,
    );
    Ok(m)
}

/// GET `path` from a Service through the proxy, parsed as the Prometheus text format.
fn scrape_impl(
    ctx: &NativeCallContext,
    ns: &str,
    service: &str,
    path: &str,
) -> RhaiResultOf<std::collections::BTreeMap<String, f64>> {
    let s = session(ctx)?;
    let text = call(&s, &proxy_url(ns, service, path), None).map_err(|e| {
        error(
            ctx,
            format!("scraping {path} from service {ns}/{service}: {e}"),
        )
    })?;
    super::exposition::parse(&text).map_err(|e| {
        error(
            ctx,
            format!("{path} of service {ns}/{service} is not in the Prometheus text format: {e}"),
        )
    })
}

/// GET `path` from the Prometheus at `--prometheus`; the JSON answer's `data`.
fn prometheus_get(
    ctx: &NativeCallContext,
    s: &Session,
    path: &str,
    params: &[(&str, String)],
) -> RhaiResultOf<Value> {
    let base = s.prometheus.as_deref().ok_or_else(|| {
        error(
            ctx,
            "no Prometheus configured: pass --prometheus URL or set PLAYBOOK_PROMETHEUS",
        )
    })?;
    let query = serde_urlencoded::to_string(params).map_err(|e| error(ctx, e.to_string()))?;
    let url = format!("{}{path}?{query}", base.trim_end_matches('/'));
    let uri: http::Uri = url
        .parse()
        .map_err(|e| error(ctx, format!("Prometheus URL {url:?}: {e}")))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let answer = s.rt.block_on(async {
        let res = client.get(uri).await.map_err(|e| e.to_string())?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, body))
    });
    let (status, body) = answer.map_err(|e| error(ctx, format!("Prometheus at {base}: {e}")))?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| {
        error(
            ctx,
            format!("Prometheus answered {status} with a body that is not JSON: {e}"),
        )
    })?;
    if v["status"] != "success" {
        return Err(error(
            ctx,
            format!(
                "Prometheus: {} ({})",
                v["error"].as_str().unwrap_or("query failed"),
                v["errorType"].as_str().unwrap_or("?")
            ),
        ));
    }
    Ok(v["data"].clone())
}

/// A Prometheus sample value ("1.5", "NaN") as a float.
fn sample(v: &Value) -> f64 {
    v.get(1)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// A PromQL instant query: each series as a map with `metric` and `value`.
fn instant(ctx: &NativeCallContext, query: &str) -> RhaiResultOf<Array> {
    let s = session(ctx)?;
    let data = prometheus_get(ctx, &s, "/api/v1/query", &[("query", query.to_string())])?;
    let series = match data["resultType"].as_str() {
        Some("vector") => data["result"].as_array().cloned().unwrap_or_default(),
        Some("scalar") => vec![serde_json::json!({ "metric": {}, "value": data["result"] })],
        other => {
            return Err(error(
                ctx,
                format!(
                    "Prometheus returned a {other:?} result; use an instant vector or scalar query"
                ),
            ));
        }
    };
    series
        .iter()
        .map(|x| {
            let mut m = Map::new();
            m.insert("metric".into(), to_dynamic(ctx, &x["metric"])?);
            m.insert("value".into(), sample(&x["value"]).into());
            Ok(m.into())
        })
        .collect()
}

/// What each string argument of these functions names (see [`Arg`](super::Arg)).
pub(crate) const ARGUMENTS: &[(&str, &[super::Arg])] = {
    use super::Arg::*;
    &[
        ("probe", &[Namespace, Service, Other]),
        ("probe_post", &[Namespace, Service, Other]),
        ("pod_usage", &[Namespace, Labels]),
        ("golden", &[Namespace, Service]),
        ("time_to_serving", &[Namespace, Service, Other, Other]),
        ("scrape", &[Namespace, Service, Other]),
        ("scraped", &[Namespace, Service, Other, Other]),
    ]
};

#[rhai::export_module]
pub mod api {
    use super::*;

    /// Calls a Service `count` times through the API server's proxy (GET `path`) and returns
    /// latency statistics in milliseconds (p50, p90, p99, max, mean), count, ok, success_rate
    /// and last_error. `service` is `name` or `name:port`.
    ///
    /// ```rhai
    /// let s = metrics::probe("mlflow", "mlflow:5000", "/health", 50);
    /// record("mlflow_p99_ms", s.p99);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn probe(
        ctx: NativeCallContext,
        namespace: &str,
        service: &str,
        path: &str,
        count: i64,
    ) -> RhaiResultOf<Map> {
        probe_impl(&ctx, namespace, service, path, count, None, None)
    }

    /// Like `probe`, but POSTs `body` (a map, sent as JSON) — e.g. a KServe v1 predict request.
    ///
    /// ```rhai
    /// let s = metrics::probe("kserve-inference", "sklearn-iris-predictor:80", "/v1/models/sklearn-iris:predict", 20,
    ///     #{ instances: [[6.8, 2.8, 4.8, 1.4]] });
    /// ```
    #[rhai_fn(name = "probe", return_raw)]
    pub fn probe_post(
        ctx: NativeCallContext,
        namespace: &str,
        service: &str,
        path: &str,
        count: i64,
        body: Map,
    ) -> RhaiResultOf<Map> {
        let json: Value = rhai::serde::from_dynamic(&Dynamic::from_map(body))?;
        probe_impl(
            &ctx,
            namespace,
            service,
            path,
            count,
            Some(json.to_string().into_bytes()),
            None,
        )
    }

    /// Sends a golden request `count` times — `#{ path, body, expect }`: the answer must hold
    /// `expect` (maps by the keys it names, arrays element by element, numbers as numbers);
    /// without `body` it is a GET — and returns `probe`'s statistics where `ok` counts correct
    /// answers, `wrong` the 2xx answers that were wrong or empty, `errors` the failed calls
    /// (ok + wrong + errors = count), with `last_wrong` and `last_error` saying what was seen.
    ///
    /// ```rhai
    /// let g = #{ path: "/v1/models/sklearn-iris:predict", body: #{ instances: [[5.1, 3.5, 1.4, 0.2]] },
    ///            expect: #{ predictions: [0] } };
    /// let r = metrics::golden("kserve-inference", "sklearn-iris-predictor:80", g, 20);
    /// if r.wrong > 0 { fail(`wrong answers: ${r.last_wrong}`); }
    /// ```
    #[rhai_fn(return_raw)]
    pub fn golden(
        ctx: NativeCallContext,
        namespace: &str,
        service: &str,
        golden: Map,
        count: i64,
    ) -> RhaiResultOf<Map> {
        let g = super::super::answers::golden(&ctx, &golden)?;
        probe_impl(
            &ctx,
            namespace,
            service,
            &g.path,
            count,
            g.body.clone(),
            Some(&g.expect),
        )
    }

    /// Time to serving, apart from time to Ready: first waits (at most `disrupted_within`)
    /// until the golden request (as for `metrics::golden`) stops getting its answer — the
    /// disruption; none seen makes the playbook inconclusive — then, from that moment (at most
    /// `within`), polls until the first correct answer. Returns a map: serving_ms (to the first
    /// correct answer), ready_ms (to the first moment the Service was Ready: it had endpoints,
    /// each a live Ready pod; -1 if never), failed_while_ready (answers failed or wrong while it
    /// was: Ready that was not serving), last_failure. No correct answer within `within` fails the playbook with the
    /// figures.
    ///
    /// ```rhai
    /// let t = metrics::time_to_serving("kserve-inference", "sklearn-iris-predictor:80", g, "15s", "3m");
    /// record("serving_ms", t.serving_ms);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn time_to_serving(
        ctx: NativeCallContext,
        namespace: &str,
        service: &str,
        golden: Map,
        disrupted_within: &str,
        within: &str,
    ) -> RhaiResultOf<Map> {
        let g = super::super::answers::golden(&ctx, &golden)?;
        super::super::answers::time_to_serving(
            &ctx,
            namespace,
            service,
            &g,
            disrupted_within,
            within,
        )
    }

    /// A workload's own metrics, read through the API server's service proxy (GET `path`,
    /// usually "/metrics") in the Prometheus text format: a map of series → number. Unlabelled
    /// series are keyed by their name, labelled ones as `name{a="x",b="y"}` (labels sorted);
    /// NaN and ±Inf are numbers too. A missing series is `()`: use `metrics::scraped` for one
    /// that must be there.
    ///
    /// ```rhai
    /// let m = metrics::scrape("training", "finetune:metrics", "/metrics");
    /// let lost = m.training_step - m.training_checkpoint_step;
    /// ```
    #[rhai_fn(return_raw)]
    pub fn scrape(
        ctx: NativeCallContext,
        namespace: &str,
        service: &str,
        path: &str,
    ) -> RhaiResultOf<Map> {
        let series = scrape_impl(&ctx, namespace, service, path)?;
        Ok(series
            .into_iter()
            .map(|(k, v)| (k.into(), Dynamic::from(v)))
            .collect())
    }

    /// One series of a workload's own metrics (as `metrics::scrape` reads them); an error
    /// naming the series it does expose when `name` is not among them.
    ///
    /// ```rhai
    /// let step = metrics::scraped("training", "finetune:metrics", "/metrics", "training_step");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn scraped(
        ctx: NativeCallContext,
        namespace: &str,
        service: &str,
        path: &str,
        name: &str,
    ) -> RhaiResultOf<f64> {
        let series = scrape_impl(&ctx, namespace, service, path)?;
        series.get(name).copied().ok_or_else(|| {
            let names: Vec<&str> = series.keys().map(String::as_str).take(20).collect();
            error(
                &ctx,
                format!(
                    "{namespace}/{service}{path} exposes no series {name:?} (it exposes: {})",
                    names.join(", ")
                ),
            )
        })
    }

    /// CPU and memory of the pods in `namespace` matching `selector`, from metrics.k8s.io: each a
    /// map with name, cpu_m (millicores) and memory_mib.
    ///
    /// ```rhai
    /// let hot = metrics::pod_usage("training", "app=trainer").filter(|p| p.cpu_m > 800.0);
    /// ```
    #[rhai_fn(return_raw)]
    pub fn pod_usage(
        ctx: NativeCallContext,
        namespace: &str,
        selector: &str,
    ) -> RhaiResultOf<Array> {
        let s = session(&ctx)?;
        let ar = crate::connection::api_resource("metrics.k8s.io", "v1beta1", "PodMetrics", "pods");
        let api: Api<DynamicObject> = Api::namespaced_with(s.target.client.clone(), namespace, &ar);
        let list =
            s.rt.block_on(api.list(&ListParams::default().labels(selector)))
                .map_err(|e| api_error(&ctx, &format!("reading pod metrics in {namespace}"), e))?;
        let mut out = Array::new();
        for item in list.items {
            let containers = item.data["containers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let sum = |key: &str, parse: fn(&str) -> f64| -> f64 {
                containers
                    .iter()
                    .map(|c| parse(c["usage"][key].as_str().unwrap_or("0")))
                    .sum()
            };
            let mut m = Map::new();
            m.insert("name".into(), item.metadata.name.unwrap_or_default().into());
            m.insert("cpu_m".into(), sum("cpu", cpu_millis).into());
            m.insert("memory_mib".into(), sum("memory", memory_mib).into());
            out.push(m.into());
        }
        Ok(out)
    }

    /// A PromQL instant query: each series a map with `metric` (its labels) and `value`.
    ///
    /// ```rhai
    /// let up = metrics::prometheus("up{job=\"mlflow\"}");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn prometheus(ctx: NativeCallContext, query: &str) -> RhaiResultOf<Array> {
        instant(&ctx, query)
    }

    /// A PromQL query that must give one number (the first series' value); an error if it gives none.
    ///
    /// ```rhai
    /// let rate = metrics::prometheus_value("sum(rate(http_requests_total{code=~\"5..\"}[1m]))");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn prometheus_value(ctx: NativeCallContext, query: &str) -> RhaiResultOf<f64> {
        let series = instant(&ctx, query)?;
        series
            .first()
            .and_then(|m| m.clone().try_cast::<Map>())
            .and_then(|m| m.get("value").and_then(|v| v.as_float().ok()))
            .ok_or_else(|| {
                error(
                    &ctx,
                    format!("Prometheus query {query:?} returned no series"),
                )
            })
    }

    /// A PromQL range query over the last `window` with resolution `step`: each series a map with
    /// `metric` and `values` (an array of [seconds_ago, value]).
    ///
    /// ```rhai
    /// let cpu = metrics::prometheus_range("rate(container_cpu_usage_seconds_total[1m])", "10m", "30s");
    /// ```
    #[rhai_fn(return_raw)]
    pub fn prometheus_range(
        ctx: NativeCallContext,
        query: &str,
        window: &str,
        step: &str,
    ) -> RhaiResultOf<Array> {
        let s = session(&ctx)?;
        let window = crate::host::expect::duration_arg(&ctx, "prometheus_range window", window)?;
        let step = crate::host::expect::duration_arg(&ctx, "prometheus_range step", step)?;
        let end = jiff::Timestamp::now();
        let start = end - jiff::SignedDuration::try_from(window).unwrap_or_default();
        let data = prometheus_get(
            &ctx,
            &s,
            "/api/v1/query_range",
            &[
                ("query", query.to_string()),
                (
                    "start",
                    format!("{:.3}", start.as_millisecond() as f64 / 1000.0),
                ),
                (
                    "end",
                    format!("{:.3}", end.as_millisecond() as f64 / 1000.0),
                ),
                ("step", format!("{}", step.as_secs_f64())),
            ],
        )?;
        let now_s = end.as_millisecond() as f64 / 1000.0;
        let series = data["result"].as_array().cloned().unwrap_or_default();
        series
            .iter()
            .map(|x| {
                let values: Array = x["values"]
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .map(|p| {
                                let ago = now_s - p[0].as_f64().unwrap_or(now_s);
                                Dynamic::from_array(vec![ago.into(), sample(p).into()])
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut m = Map::new();
                m.insert("metric".into(), to_dynamic(&ctx, &x["metric"])?);
                m.insert("values".into(), values.into());
                Ok(m.into())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_answer_says_its_code_and_what_the_server_said() {
        assert_eq!(
            failed_answer(503, r#"{"error":"Model with name m is not ready."}"#),
            r#"503 {"error":"Model with name m is not ready."}"#
        );
        let status = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"no endpoints available for service \"x\"","code":503}"#;
        assert_eq!(
            failed_answer(503, status),
            r#"503 no endpoints available for service "x""#
        );
        assert_eq!(failed_answer(502, &"x".repeat(500)).len(), 204);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Stats::of(&v, 100);
        assert_eq!((s.p50, s.p90, s.p99, s.max), (50.0, 90.0, 99.0, 100.0));
        assert!((s.mean - 50.5).abs() < 1e-9);
        assert_eq!(Stats::of(&[], 0).p99, 0.0);
    }

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(cpu_millis("250m"), 250.0);
        assert_eq!(cpu_millis("2"), 2000.0);
        assert_eq!(cpu_millis("1500000n"), 1.5);
        assert_eq!(memory_mib("300Mi"), 300.0);
        assert_eq!(memory_mib("1Gi"), 1024.0);
        assert_eq!(memory_mib("1048576"), 1.0);
    }
}
