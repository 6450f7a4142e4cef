//! Golden requests, behind `metrics::`: a request with the answer it must get (the iris
//! classes), so a probe tells a correct answer from a wrong or empty one, and "time to serving"
//! (from a disruption to the first correct answer) is measured apart from time to Ready.

use rhai::{Dynamic, Map, NativeCallContext};
use serde_json::Value;

use crate::host::metrics::{call, proxy_url};
use crate::host::{RhaiResultOf, error, failure, session};
use crate::session::{Expectation, Phase, Status};

/// A golden request: where it goes, what it sends, what it must get back.
pub(crate) struct Golden {
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub expect: Value,
}

/// Reads `#{ path, body, expect }` (body optional: absent, the request is a GET).
pub(crate) fn golden(ctx: &NativeCallContext, m: &Map) -> RhaiResultOf<Golden> {
    if let Some(k) = m
        .keys()
        .find(|k| !matches!(k.as_str(), "path" | "body" | "expect"))
    {
        return Err(error(
            ctx,
            format!("golden request: unknown key `{k}` (path, body, expect)"),
        ));
    }
    let path = m
        .get("path")
        .and_then(|p| p.clone().into_string().ok())
        .ok_or_else(|| error(ctx, "golden request: `path` (a string) is missing"))?;
    let expect = m.get("expect").ok_or_else(|| {
        error(
            ctx,
            "golden request: `expect` (the answer it must get) is missing",
        )
    })?;
    let expect: Value = rhai::serde::from_dynamic(expect)?;
    let body = match m.get("body") {
        None => None,
        Some(b) => {
            let v: Value = rhai::serde::from_dynamic(b)?;
            Some(v.to_string().into_bytes())
        }
    };
    Ok(Golden { path, body, expect })
}

/// Whether `got` answers `expected`: maps by the keys `expected` names (others ignored),
/// arrays element by element, numbers as numbers (1 and 1.0 alike), the rest exactly.
fn matches(expected: &Value, got: &Value) -> bool {
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => e
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|x| matches(v, x))),
        (Value::Array(e), Value::Array(g)) => {
            e.len() == g.len() && e.iter().zip(g).all(|(a, b)| matches(a, b))
        }
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            (a - b).abs() <= 1e-9 * a.abs().max(1.0)
        }
        (e, g) => e == g,
    }
}

/// A 2xx answer checked against the expected one; `Err` says what was wrong with it.
pub(crate) fn check(expected: &Value, answer: &str) -> Result<(), String> {
    let shown: String = answer.chars().take(200).collect();
    if answer.trim().is_empty() {
        return Err("an empty answer".into());
    }
    let got: Value =
        serde_json::from_str(answer).map_err(|_| format!("an answer that is not JSON: {shown}"))?;
    if matches(expected, &got) {
        Ok(())
    } else {
        Err(format!("answered {shown}, expected {expected}"))
    }
}

/// Whether Service `service` (`name` or `name:port`) in `ns` is Ready as traffic sees it: (some
/// ready endpoint is a live Ready pod, every one is). An endpoint of a pod just killed and not
/// yet withdrawn is not a Ready pod answering: while there is one, a failed answer may be its.
fn ready_pods_behind(
    ctx: &NativeCallContext,
    s: &crate::session::Session,
    ns: &str,
    service: &str,
) -> RhaiResultOf<(bool, bool)> {
    let name = service.split(':').next().unwrap_or(service);
    let ar = crate::connection::api_resource("", "v1", "Endpoints", "endpoints");
    let ep =
        s.rt.block_on(s.target.get_opt(&ar, Some(ns), name))
            .map_err(|e| {
                crate::host::cluster::api_error(ctx, &format!("reading endpoints {ns}/{name}"), e)
            })?;
    let Some(ep) = ep else {
        return Ok((false, false));
    };
    let addresses: Vec<Value> = ep.data["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
        .collect();
    let pods = crate::host::cluster::list_pods(ctx, s, ns, "")?;
    let live_ready = |a: &Value| {
        let pod = a.pointer("/targetRef/name").and_then(Value::as_str);
        pods.iter().any(|p| {
            let v = crate::host::cluster::pod_summary(p);
            Some(v["name"].as_str().unwrap_or_default()) == pod
                && v["ready"] == true
                && v["deleting"] == false
        })
    };
    let any = addresses.iter().any(live_ready);
    Ok((any, any && addresses.iter().all(live_ready)))
}

/// `metrics::time_to_serving`: waits (at most `disrupted_within`) until the golden request
/// does not get its answer — the disruption — then times, from that moment (at most `within`),
/// the first time the Service is Ready (its endpoints all live Ready pods) and the first correct
/// answer, counting the answers that failed or were wrong while it was.
pub(crate) fn time_to_serving(
    ctx: &NativeCallContext,
    ns: &str,
    service: &str,
    golden: &Golden,
    disrupted_within: &str,
    within: &str,
) -> RhaiResultOf<Map> {
    let s = session(ctx)?;
    let bound = crate::host::expect::duration_arg(
        ctx,
        "time_to_serving disruption bound",
        disrupted_within,
    )?;
    let timeout = crate::host::expect::duration_arg(ctx, "time_to_serving timeout", within)?;
    let name = format!("first correct answer from {ns}/{service}");
    if s.dry_run {
        (s.output)(crate::session::Line::Print(format!(
            "dry run: would time \"{name}\""
        )));
        let mut m = Map::new();
        for k in ["ready_ms", "serving_ms", "failed_while_ready"] {
            m.insert(k.into(), Dynamic::from(0.0));
        }
        return Ok(m);
    }
    let pos = ctx.call_position();
    let url = proxy_url(ns, service, &golden.path);
    let ask = || call(&s, &url, golden.body.as_deref()).and_then(|a| check(&golden.expect, &a));
    let what = format!("time_to_serving \"{name}\": the disruption");
    let (seen, to_disruption, held) =
        crate::host::expect::wait_for(&s, &s.stop, &what, bound, Some(ctx), || {
            Ok(match ask() {
                Ok(()) => crate::host::expect::Observation {
                    ok: false,
                    observed: "correct answers".into(),
                },
                Err(why) => crate::host::expect::Observation {
                    ok: true,
                    observed: why,
                },
            })
        })?;
    if !seen {
        s.phase(Phase::Running);
        let message = format!(
            "time to serving \"{name}\": the disruption was never observed within {} (every answer was correct); a time to serving read now would not start from the fault",
            crate::duration::format(bound)
        );
        crate::host::expect::report(
            &s,
            Expectation {
                name,
                kind: "time_to_serving".into(),
                timeout_ms: timeout.as_millis() as u64,
                status: Status::Inconclusive,
                took_ms: to_disruption.unsigned_abs().as_millis() as u64,
                observed: format!("no disruption: {held}"),
                at: crate::host::expect::at(ctx),
            },
        );
        s.record().inconclusive.push(message.clone());
        return Err(crate::outcome::inconclusive(message, pos));
    }
    let start = s.now();
    let (mut ready_ms, mut failed_while_ready, mut last_failure) = (-1.0, 0_i64, held.clone());
    let what = format!("time_to_serving \"{name}\"");
    let (ok, took, _) =
        crate::host::expect::wait_for(&s, &s.stop, &what, timeout, Some(ctx), || {
            let (ready, only_ready) = ready_pods_behind(ctx, &s, ns, service)?;
            let since = s.now().duration_since(start).as_secs_f64() * 1000.0;
            let answer = ask();
            // A correct answer came from a pod traffic was sent to: Ready by then at the latest.
            if (ready || answer.is_ok()) && ready_ms < 0.0 {
                ready_ms = since;
            }
            if let Err(why) = &answer {
                last_failure = why.clone();
                if only_ready {
                    failed_while_ready += 1;
                }
            }
            Ok(crate::host::expect::Observation {
                ok: answer.is_ok(),
                observed: format!("ready: {ready}, last failure: {last_failure}"),
            })
        })?;
    s.phase(Phase::Running);
    let serving_ms = took.as_secs_f64() * 1000.0;
    let mut m = Map::new();
    m.insert("ready_ms".into(), ready_ms.into());
    m.insert(
        "serving_ms".into(),
        if ok { serving_ms } else { -1.0 }.into(),
    );
    m.insert("failed_while_ready".into(), failed_while_ready.into());
    m.insert("last_failure".into(), last_failure.clone().into());
    crate::session::sample_map(&s, "serving", &format!("{ns}/{service}"), &m);
    let observed = format!(
        "ready after {ready_ms:.0} ms, {failed_while_ready} failed or wrong answer(s) while ready, last failure: {last_failure}"
    );
    crate::host::expect::report(
        &s,
        Expectation {
            name: name.clone(),
            kind: "time_to_serving".into(),
            timeout_ms: timeout.as_millis() as u64,
            status: if ok { Status::Passed } else { Status::Failed },
            took_ms: took.unsigned_abs().as_millis() as u64,
            observed: observed.clone(),
            at: crate::host::expect::at(ctx),
        },
    );
    if ok {
        Ok(m)
    } else {
        Err(failure(
            format!(
                "\"{name}\": no correct answer within {} of the disruption: {observed}",
                crate::duration::format(timeout)
            ),
            pos,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_match_by_the_keys_expected_and_numbers_as_numbers() {
        let e = json!({ "predictions": [1, 1] });
        assert!(check(&e, r#"{"predictions":[1.0,1],"model":"x"}"#).is_ok());
        let wrong = check(&e, r#"{"predictions":[1,2]}"#).unwrap_err();
        assert!(
            wrong.contains("answered") && wrong.contains("[1,2]"),
            "{wrong}"
        );
        assert!(check(&e, r#"{"predictions":[1]}"#).is_err());
        assert!(
            check(
                &e,
                r#"{"error":"Model with name sklearn-iris is not ready."}"#
            )
            .is_err()
        );
        assert_eq!(check(&e, "  ").unwrap_err(), "an empty answer");
        assert!(check(&e, "<html>").unwrap_err().contains("not JSON"));
        assert!(check(&json!("ok"), r#""ok""#).is_ok());
    }
}
