//! Tests of the platform: steady state, the five seed experiments on both variants, determinism.

use std::time::Instant;

use jiff::SignedDuration;
use serde_json::Value;

use super::Scenario;
use crate::sim::{ClockMode, Sim, SimConfig};

fn sim(scenario: Scenario, seed: u64) -> Sim {
    Sim::new(SimConfig {
        seed,
        clock: ClockMode::Virtual,
        scenario,
    })
}

fn get(sim: &Sim, res: &str, ns: &str, name: &str) -> Option<Value> {
    let w = sim.lock();
    let id = w.store().registry().lookup(res)?;
    w.store().get(id, ns, name).map(|v| (**v).clone())
}

fn cond(obj: &Value, t: &str) -> String {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().find(|c| c["type"] == t))
        .and_then(|c| c["status"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[test]
fn starts_in_steady_state() {
    let t = Instant::now();
    let s = sim(Scenario::Mlops, 1);
    eprintln!("created in {:?}", t.elapsed());
    let isvc = get(
        &s,
        "inferenceservices.serving.kserve.io",
        "kserve-inference",
        "sklearn-iris",
    )
    .expect("isvc");
    assert_eq!(cond(&isvc, "Ready"), "True", "{isvc:#}");
    let _ = SignedDuration::ZERO;
}
