//! The KServe controller (RawDeployment mode): an InferenceService's predictor Deployment, Service and HPA, and its real status shape.
//!
//! For every InferenceService it creates, owned by it, the Deployment and Service
//! `<name>-predictor` and, when `maxReplicas > minReplicas`, an autoscaling/v2 HPA on CPU
//! (`scaleTarget`%). Its status follows the predictor Deployment's `Available` condition:
//! `PredictorReady`, `IngressReady` and `Ready` conditions, `url`, `address.url`,
//! `components.predictor`, `modelStatus`, `deploymentMode`, `observedGeneration`.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::objects;
use super::scenario::Figures;
use crate::controllers::util::{Key, condition, deleting, key_of, s, set_condition};
use crate::world::{Controller, Ctx, Lag};

const ISVC: &str = "inferenceservices.serving.kserve.io";
const DEPLOY: &str = "deployments.apps";

/// The KServe controller. See the module doc.
pub struct KServe {
    figures: Figures,
}

impl KServe {
    /// A controller that uses `figures` for what the InferenceService does not say.
    pub fn new(figures: Figures) -> Self {
        KServe { figures }
    }

    fn sync(&self, ctx: &mut Ctx<'_>, key: &Key) {
        let Some(isvc) = ctx.get(ISVC, &key.0, &key.1) else {
            return;
        };
        if deleting(&isvc) {
            return;
        }
        let (ns, name) = (key.0.as_str(), key.1.as_str());
        let pred = format!("{name}-predictor");
        let owner = json!([{"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "name": name, "uid": isvc["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]);
        let min = isvc["spec"]["predictor"]["minReplicas"]
            .as_i64()
            .unwrap_or(1);
        let max = isvc["spec"]["predictor"]["maxReplicas"]
            .as_i64()
            .unwrap_or(min);
        let dep = match ctx.get(DEPLOY, ns, &pred) {
            Some(d) => Some(d),
            None => ctx
                .create(DEPLOY, objects::predictor(&isvc, &self.figures))
                .ok(),
        };
        if ctx.get("services", ns, &pred).is_none() {
            let svc = json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": pred, "namespace": ns, "ownerReferences": owner.clone(),
                    "labels": {"serving.kserve.io/inferenceservice": name, "app": pred, "component": "predictor"}},
                "spec": {"type": "ClusterIP", "selector": {"app": pred},
                    "ports": [{"name": "http", "port": objects::PREDICTOR_PORT,
                        "targetPort": objects::CONTAINER_PORT, "protocol": "TCP"}]}});
            let _ = ctx.create("services", svc);
        }
        let hpa_res = "horizontalpodautoscalers.autoscaling";
        if max > min && ctx.get(hpa_res, ns, &pred).is_none() {
            let target = isvc["spec"]["predictor"]["scaleTarget"]
                .as_i64()
                .unwrap_or(80);
            let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": pred, "namespace": ns, "ownerReferences": owner,
                    "labels": {"serving.kserve.io/inferenceservice": name, "app": pred, "component": "predictor"}},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": pred},
                    "minReplicas": min, "maxReplicas": max,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": target}}}]}});
            let _ = ctx.create(hpa_res, hpa);
        }
        let now = ctx.now();
        let available = dep.as_deref().and_then(|d| condition(d, "Available"));
        let ready = available.is_some_and(|c| c["status"] == "True");
        let ready_replicas = dep
            .as_deref()
            .and_then(|d| d.pointer("/status/readyReplicas"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let mut conds: Vec<Value> = isvc
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let (reason, msg) = if ready {
            ("", String::new())
        } else {
            let m = available
                .map(|c| s(c, "/message").to_string())
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "Deployment does not have minimum availability.".into());
            ("MinimumReplicasUnavailable", m)
        };
        let st = if ready { "True" } else { "False" };
        set_condition(&mut conds, "IngressReady", "True", "", "", now, false);
        set_condition(&mut conds, "PredictorReady", st, reason, &msg, now, false);
        set_condition(&mut conds, "Ready", st, reason, &msg, now, false);
        let url = format!("http://{name}-{ns}.example.com");
        let status = json!({
            "address": {"url": format!("http://{pred}.{ns}.svc.cluster.local")},
            "components": {"predictor": {"url": format!("http://{pred}-{ns}.example.com")}},
            "conditions": conds,
            "deploymentMode": "RawDeployment",
            "modelStatus": {
                "copies": {"failedCopies": 0, "totalCopies": ready_replicas},
                "states": {"activeModelState": if ready_replicas > 0 { "Loaded" } else { "Pending" },
                    "targetModelState": "Loaded"},
                "transitionStatus": if ready { "UpToDate" } else { "InProgress" }},
            "observedGeneration": isvc["metadata"]["generation"],
            "url": url,
        });
        if isvc.get("status") != Some(&status) {
            let mut o = (*isvc).clone();
            o["status"] = status;
            o["metadata"]["resourceVersion"] = json!("");
            let _ = ctx.update_status(ISVC, o);
        }
    }
}

impl Controller for KServe {
    fn name(&self) -> &'static str {
        "kserve"
    }
    // kserve pkg/controller/v1beta1/inferenceservice/controller.go: controller-runtime,
    // `Owns(&appsv1.Deployment{})` enqueues the InferenceService when its Deployment changes.
    fn lag(&self) -> Lag {
        Lag::millis(50, 300)
    }
    fn watches(&self) -> &'static [&'static str] {
        &[ISVC, DEPLOY]
    }
    fn reconcile(&mut self, ctx: &mut Ctx<'_>) {
        let mut todo: BTreeSet<Key> = BTreeSet::new();
        if ctx.resync() {
            todo.extend(ctx.list(ISVC, None).iter().map(|o| key_of(o)));
        }
        for e in ctx.changed(ISVC) {
            todo.insert((e.namespace.clone(), e.name.clone()));
        }
        let deps: Vec<Key> = ctx
            .changed(DEPLOY)
            .filter_map(|e| {
                let n = e.name.strip_suffix("-predictor")?;
                Some((e.namespace.clone(), n.to_string()))
            })
            .collect();
        todo.extend(deps);
        for key in todo {
            self.sync(ctx, &key);
        }
    }
}
