//! Benchmark of the simulated MLOps platform: creating a Sim (installed and warmed up to steady
//! state) and simulating one virtual hour in process. Run: `cargo bench --bench platform`.

use std::time::Instant;

use jiff::SignedDuration;
use playbook_sim::platform::Scenario;
use playbook_sim::{ClockMode, Sim, SimConfig};

fn main() {
    for scenario in [Scenario::Mlops, Scenario::MlopsFragile] {
        let config = SimConfig {
            seed: 1,
            clock: ClockMode::Virtual,
            scenario,
            ..Default::default()
        };
        // The first Sim of a process also parses the embedded CRDs it validates against.
        let t = Instant::now();
        let sim = Sim::new(config);
        let first = t.elapsed();
        let n = 5;
        let t = Instant::now();
        for seed in 0..n {
            let _ = Sim::new(SimConfig { seed, ..config });
        }
        let create = t.elapsed() / n as u32;
        let t = Instant::now();
        sim.advance_by(SignedDuration::from_secs(3600));
        let hour = t.elapsed();
        let events = sim.lock().store().resource_version();
        println!(
            "{:<14} first Sim::new {:>8.1} ms | Sim::new {:>7.1} ms | one virtual hour {:>7.1} ms ({events} resource versions)",
            scenario.name(),
            first.as_secs_f64() * 1e3,
            create.as_secs_f64() * 1e3,
            hour.as_secs_f64() * 1e3,
        );
    }
}
