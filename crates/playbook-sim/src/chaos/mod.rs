//! The simulated Chaos Mesh v2.8.1: a controller for PodChaos, NetworkChaos and StressChaos with the real status, events and effects, and the Schedule controllers that spawn them.
//!
//! # Layout
//! - `controller`: the controller-manager's common pipeline ([`ChaosMesh`]).
//! - `kinds`: the three kinds, read through the typed specs of [`playbook_model::chaosmesh`].
//! - `select`: feeds the store's pods and nodes to [`playbook_model::selector`] (Chaos Mesh's
//!   selectors and modes). `record`: records, conditions, Kubernetes Events.
//! - `pod`, `stress`: the effects on pods; [`effects`]: the annotations they write (the
//!   contract with the kubelet/metrics model), pod-failure's pause image and its probes.
//! - [`daemon`]: which nodes run a chaos-daemon (taints), and the error where none does.
//! - [`schedule`]: the `Schedule` controllers (cron, active, gc); [`cron`]: its cron parser.
//! - `network`: [`NetFaults`], the tc/iptables rules where Chaos Mesh puts them, and the
//!   per-packet and per-exchange (TCP) queries the traffic model makes.
//!
//! Not modelled: the `Workflow` kind (accepted by the API, never run: its status stays empty),
//! and every other Chaos Mesh kind (IOChaos, DNSChaos, HTTPChaos, TimeChaos...).

mod controller;
pub mod cron;
pub mod daemon;
pub mod effects;
mod kinds;
mod network;
mod pod;
mod record;
pub mod schedule;
mod select;
mod stress;

pub use controller::{ACTION_LATENCY, ChaosMesh};
pub use network::{Exchange, Exchanged, GaveUp, NetEffect, NetFaults, Packet, network_effect};
pub use select::{candidates, filter_by_mode, select_pods};

use super::world::Controller;

/// The Chaos Mesh controllers, to run after the core ones.
pub fn controllers() -> Vec<Box<dyn Controller>> {
    vec![
        Box::new(ChaosMesh::default()),
        Box::new(schedule::Schedules),
    ]
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_net;
#[cfg(test)]
mod tests_pods;
#[cfg(test)]
mod tests_schedule;
