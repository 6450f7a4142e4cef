//! The contract between the simulated Chaos Mesh and the rest of the simulator: every pod annotation the chaos effects write, and what it means.
//!
//! The chaos controller never changes a pod's use or readiness itself: it marks the pod, and the
//! kubelet/metrics model reads the marks (pod-failure needs none: the pause image is in the
//! pod's spec, as on a real cluster). Network faults change no object at all: the traffic
//! model asks [`super::NetFaults`] (see `network.rs`) for every simulated packet.
//!
//! Marks are set when a record is injected and removed when the last chaos needing them
//! recovers (pause, end of `duration`, deletion).

/// Extra CPU the StressChaos experiments injected in a pod burn, in millicores, as a decimal
/// string (e.g. `"1800"`). The sum over every injected StressChaos on the pod; each one's share
/// is `workers x load% x 1000m`, capped by the stressed container's CPU limit (stress-ng runs
/// inside the container's cgroup). The kubelet/metrics model adds it to the pod's base use
/// (metrics.k8s.io, the HPA) and should cap the total at the limit. Absent: no stress.
pub const STRESS_CPU: &str = "sim.playbook.dev/stress-cpu";

/// Extra memory (working set) the StressChaos experiments injected in a pod hold, in bytes, as
/// a decimal string, rewritten as memStress' memory grows (see `stress.rs`).
/// `stressors.memory.size` is the total of all its workers (Chaos Mesh's memStress semantics);
/// `"50%"` is of the node's memory. The kubelet model adds it to the container's working set
/// and OOMKills the container (reason `OOMKilled`, exit code 137) when the total passes its
/// memory limit; the stress dies with the container.
pub const STRESS_MEMORY: &str = "sim.playbook.dev/stress-memory";

/// The container(s) the stress runs in, comma-separated, sorted (`"app"`, or `"app,sidecar"`):
/// the memory of [`STRESS_MEMORY`] lands in the first of them (the one to OOMKill).
pub const STRESS_CONTAINERS: &str = "sim.playbook.dev/stress-containers";

/// Set by PodChaos `container-kill`: `"<container>@<RFC 3339 timestamp>"` (several containers
/// of one pod killed at the same instant: entries joined by `,`). The kubelet model restarts the
/// named container once per new value: `restartCount + 1`, `lastState.terminated` with reason
/// `Error` and exit code 137, not ready until it has started again.
pub const CONTAINER_KILL: &str = "sim.playbook.dev/container-kill";

/// The image Chaos Mesh swaps into the containers of a `pod-failure` pod (its default
/// `PodFailurePauseImage`). A `pod-failure` writes no other mark: as on a real cluster
/// (`controllers/chaosimpl/podchaos/podfailure/impl.go`) the kubelet restarts the container
/// with this image, which runs and serves nothing, so what follows is the probes' doing (see
/// [`pause_container`]) and callers get their connections refused (see [`refuses_connections`]).
pub const PAUSE_IMAGE: &str = "gcr.io/google-containers/pause:latest";

/// What the kubelet's probes make of a container that runs [`PAUSE_IMAGE`] (the pause process
/// answers no HTTP, TCP, gRPC or exec probe), per `pkg/kubelet/prober` of Kubernetes v1.32
/// with the API defaults (`periodSeconds` 10, `failureThreshold` 3, `initialDelaySeconds` 0):
/// - `ready`: true only without a `readinessProbe` and without a `startupProbe` (then the pod
///   is Ready and stays in its Services' endpoints while refusing every connection);
/// - `killed_after`: with a `livenessProbe` (or a `startupProbe`), the time after the
///   container's start at which the kubelet kills it for failing the probe
///   (`initialDelaySeconds + failureThreshold x periodSeconds`), after which it restarts (with
///   the pause image again while the chaos lasts, so with the crash-loop back-off).
pub fn pause_container(container: &serde_json::Value) -> (bool, Option<jiff::SignedDuration>) {
    let probe = |k: &str| container.get(k).filter(|p| p.is_object());
    let ready = probe("readinessProbe").is_none() && probe("startupProbe").is_none();
    let fails = |p: &serde_json::Value| {
        let n = |k: &str, d: i64| p.get(k).and_then(serde_json::Value::as_i64).unwrap_or(d);
        let (delay, period, threshold) = (
            n("initialDelaySeconds", 0).max(0),
            n("periodSeconds", 10).max(1),
            n("failureThreshold", 3).max(1),
        );
        jiff::SignedDuration::from_secs(delay + threshold * period)
    };
    let killed_after = [probe("startupProbe"), probe("livenessProbe")]
        .into_iter()
        .flatten()
        .map(fails)
        .min();
    (ready, killed_after)
}

/// True when a container of `pod` runs [`PAUSE_IMAGE`]: nothing listens, so a connection to the
/// pod is refused at once (a TCP RST), Ready or not.
pub fn refuses_connections(pod: &serde_json::Value) -> bool {
    pod.pointer("/status/containerStatuses")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("image").and_then(serde_json::Value::as_str) == Some(PAUSE_IMAGE)
                    && c.pointer("/state/running").is_some()
            })
        })
}

/// The finalizer every chaos object gets (Chaos Mesh's `chaos-mesh/records`).
pub const FINALIZER: &str = "chaos-mesh/records";

/// The annotation that pauses an experiment when `"true"`.
pub const PAUSE_ANNOTATION: &str = "experiment.chaos-mesh.org/pause";

/// The annotation that makes the controller drop its finalizer at once when `"forced"`.
pub const CLEAN_FINALIZER_ANNOTATION: &str = "chaos-mesh.chaos-mesh.org/cleanFinalizer";

/// The pod annotation in which Chaos Mesh keeps a container's original image during a
/// `pod-failure` (its `annotation.GenKeyForImage`): `chaos-mesh-<chaos>-pod-failure-<container>-normal-image`
/// (`-init-` for init containers), or just `<container>-normal` when that is over 63 characters.
pub fn pod_failure_image_key(chaos: &str, container: &str, init: bool) -> String {
    let container = format!("{container}-{}", if init { "init" } else { "normal" });
    let key = format!("chaos-mesh-{chaos}-pod-failure-{container}-image");
    if key.len() > 63 { container } else { key }
}
