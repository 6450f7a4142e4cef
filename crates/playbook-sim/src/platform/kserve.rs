//! The KServe controller (RawDeployment mode): an InferenceService's predictor Deployment, Service and HPA, and its real status shape.
//!
//! For every InferenceService it creates, owned by it, the Deployment and Service
//! `<name>-predictor` (pods labelled `app: isvc.<name>-predictor`, `component: predictor`,
//! `serving.kserve.io/inferenceservice: <name>`; see [`objects::predictor`]) and, when
//! `maxReplicas > minReplicas`, an autoscaling/v2 HPA on CPU (`scaleTarget`%).
//!
//! Its status follows kserve v0.20:
//! - `PredictorReady` is the predictor Deployment's `Available` condition copied (status,
//!   reason, message; pkg/apis/serving/v1beta1/inference_service_status.go
//!   `PropagateRawStatus`/`getDeploymentCondition`); absent while the Deployment has none.
//!   Progressing and ReplicaFailure reach it only through `Available`, as upstream.
//! - `IngressReady` is False ("Predictor ingress not created") until `PredictorReady` is True,
//!   then True (reconcilers/ingress/kube_ingress_reconciler.go `createRawIngress`), and the
//!   `url` is set then.
//! - `Ready` is True only when both are (the living condition set of
//!   inference_service_status.go), else False with the first false one's reason.
//! - `modelStatus` as `PropagateModelStatus`: Pending with no pods; Loaded with the copies
//!   once Ready; FailedToLoad when the kserve-container is in CrashLoopBackOff or exited
//!   with an error; else the target state Pending (the active one stays Loaded).
//!
//! It reacts to the InferenceService and to its Deployment (`Owns(&appsv1.Deployment{})` in
//! pkg/controller/v1beta1/inferenceservice/controller.go), after its [`Lag`].

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::objects;
use super::scenario::Figures;
use crate::controllers::reconcile::{Action, Reconcile};
use crate::controllers::util::{Key, condition, deleting, s, ts};
use crate::resources::{Res, res};
use crate::selector::LabelSelector;
use crate::world::{Ctx, Lag};

const ISVC: &str = "inferenceservices.serving.kserve.io";
const DEPLOY: &str = "deployments.apps";
const HPA: &str = "horizontalpodautoscalers.autoscaling";

/// The KServe controller. See the module doc.
pub struct KServe {
    figures: Figures,
}

/// What one reconcile of an InferenceService reads.
struct Seen {
    isvc: Arc<Value>,
    ns: String,
    name: String,
    pred: String,
    deployment: Option<Arc<Value>>,
    pods: Vec<Arc<Value>>,
}

/// A condition as knative's `apis.Condition` renders it (sorted by type when written).
fn knative_condition(
    old: &Value,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: &str,
) -> Value {
    let prev = old
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == type_));
    let same = prev.is_some_and(|c| {
        c["status"] == status
            && c["reason"].as_str().unwrap_or("") == reason
            && c["message"].as_str().unwrap_or("") == message
    });
    let ltt = match prev {
        Some(c) if same => c["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let mut c = json!({"type": type_, "status": status, "lastTransitionTime": ltt});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    c
}

impl KServe {
    /// A controller that uses `figures` for what the InferenceService does not say.
    pub fn new(figures: Figures) -> Self {
        KServe { figures }
    }

    /// Gather: the InferenceService, creating what it owns when missing (the raw
    /// reconciler's Deployment, Service and HPA reconcilers).
    fn gather(&self, ctx: &mut Ctx<'_>, key: &Key) -> Option<Seen> {
        let isvc = ctx.get(ISVC, &key.namespace, &key.name)?;
        if deleting(&isvc) {
            return None;
        }
        let (ns, name) = (key.namespace.clone(), key.name.clone());
        let pred = format!("{name}-predictor");
        let deployment = match ctx.get(DEPLOY, &ns, &pred) {
            Some(d) => Some(d),
            None => ctx
                .create(DEPLOY, objects::predictor(&isvc, &self.figures))
                .ok(),
        };
        self.own_service_and_hpa(ctx, &isvc, &ns, &name, &pred);
        let sel = LabelSelector::from_json(
            &json!({"matchLabels": {"app": objects::raw_app_label(&pred)}}),
        )
        .unwrap_or_default();
        let pods = ctx.list_selected("pods", Some(&ns), &sel);
        Some(Seen {
            isvc,
            ns,
            name,
            pred,
            deployment,
            pods,
        })
    }

    fn own_service_and_hpa(
        &self,
        ctx: &mut Ctx<'_>,
        isvc: &Value,
        ns: &str,
        name: &str,
        pred: &str,
    ) {
        let owner = json!([{"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "name": name, "uid": isvc["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true}]);
        let labels = json!({"serving.kserve.io/inferenceservice": name, "component": "predictor",
            "app": objects::raw_app_label(pred)});
        if ctx.get("services", ns, pred).is_none() {
            // reconcilers/service/service_reconciler.go `createService`.
            let svc = json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": pred, "namespace": ns, "ownerReferences": owner.clone(), "labels": labels.clone()},
                "spec": {"type": "ClusterIP", "selector": {"app": objects::raw_app_label(pred)},
                    "ports": [{"name": pred, "port": objects::PREDICTOR_PORT,
                        "targetPort": objects::CONTAINER_PORT, "protocol": "TCP"}]}});
            let _ = ctx.create("services", svc);
        }
        let min = isvc["spec"]["predictor"]["minReplicas"]
            .as_i64()
            .unwrap_or(1);
        let max = isvc["spec"]["predictor"]["maxReplicas"]
            .as_i64()
            .unwrap_or(min);
        if max > min && ctx.get(HPA, ns, pred).is_none() {
            // reconcilers/hpa/hpa_reconciler.go: no `behavior`, so the HPA takes the legacy path.
            let target = isvc["spec"]["predictor"]["scaleTarget"]
                .as_i64()
                .unwrap_or(80);
            let hpa = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": pred, "namespace": ns, "ownerReferences": owner, "labels": labels},
                "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": pred},
                    "minReplicas": min, "maxReplicas": max,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": target}}}]}});
            let _ = ctx.create(HPA, hpa);
        }
    }

    /// Decide: the status the InferenceService should have.
    fn decide(seen: &Seen, now: &str) -> Value {
        let old = &seen.isvc["status"];
        let old_conds = &old["conditions"];
        let available = seen
            .deployment
            .as_deref()
            .and_then(|d| condition(d, "Available"));
        let mut conds = Vec::new();
        // PredictorReady: the Deployment's Available, as is (absent: Unknown, as initialized).
        let (p_status, p_reason, p_msg) = match available {
            Some(c) => (
                s(c, "/status").to_string(),
                s(c, "/reason").to_string(),
                s(c, "/message").to_string(),
            ),
            None => ("Unknown".to_string(), String::new(), String::new()),
        };
        let pred_ready = p_status == "True";
        let (i_status, i_reason) = if pred_ready {
            ("True", "")
        } else {
            ("False", "Predictor ingress not created")
        };
        conds.push(knative_condition(
            old_conds,
            "IngressReady",
            i_status,
            i_reason,
            "",
            now,
        ));
        let (pr_reason, pr_msg) = if pred_ready {
            ("", "")
        } else {
            (p_reason.as_str(), p_msg.as_str())
        };
        conds.push(knative_condition(
            old_conds,
            "PredictorReady",
            &p_status,
            pr_reason,
            pr_msg,
            now,
        ));
        let (r_status, r_reason, r_msg) = if pred_ready {
            ("True", "", "")
        } else if p_status == "Unknown" {
            ("Unknown", "", "")
        } else {
            ("False", pr_reason, pr_msg)
        };
        conds.push(knative_condition(
            old_conds, "Ready", r_status, r_reason, r_msg, now,
        ));
        let ready = r_status == "True";
        let (ns, name, pred) = (&seen.ns, &seen.name, &seen.pred);
        let mut status = Map::new();
        status.insert(
            "address".into(),
            json!({"url": format!("http://{pred}.{ns}.svc.cluster.local")}),
        );
        status.insert("components".into(), json!({"predictor": {}}));
        status.insert("conditions".into(), json!(conds));
        status.insert("deploymentMode".into(), json!("RawDeployment"));
        status.insert("modelStatus".into(), Self::model_status(seen, ready));
        status.insert(
            "observedGeneration".into(),
            seen.deployment
                .as_deref()
                .and_then(|d| d.pointer("/status/observedGeneration"))
                .cloned()
                .unwrap_or(json!(0)),
        );
        if ready || old.get("url").is_some_and(Value::is_string) {
            status.insert(
                "url".into(),
                json!(format!("http://{name}-{ns}.example.com")),
            );
        }
        Value::Object(status)
    }

    /// `PropagateModelStatus` (inference_service_status.go) for a raw deployment.
    fn model_status(seen: &Seen, ready: bool) -> Value {
        let old = &seen.isvc["status"]["modelStatus"];
        let copies = seen.pods.len();
        let active = old.pointer("/states/activeModelState").cloned();
        let with_active = |target: &str| {
            let mut st = json!({"targetModelState": target});
            if let Some(a) = active.clone().filter(|a| a.is_string()) {
                st["activeModelState"] = a;
            }
            st
        };
        if copies == 0 {
            return json!({"states": with_active("Pending"), "transitionStatus": "InProgress"});
        }
        if ready {
            return json!({"copies": {"failedCopies": 0, "totalCopies": copies},
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                "transitionStatus": "UpToDate"});
        }
        let cs = seen.pods[0]
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|c| c["name"] == "kserve-container"));
        let failure = cs.and_then(|c| {
            let term = &c["state"]["terminated"];
            if term["reason"] == "Error" {
                Some((term["message"].clone(), term["exitCode"].clone()))
            } else if c["state"]["waiting"]["reason"] == "CrashLoopBackOff" {
                let last = &c["lastState"]["terminated"];
                Some((last["message"].clone(), last["exitCode"].clone()))
            } else {
                None
            }
        });
        let mut ms = json!({"states": with_active("Pending"), "transitionStatus": "InProgress"});
        if let Some(info) = old.get("lastFailureInfo") {
            ms["lastFailureInfo"] = info.clone();
        }
        if let Some((message, code)) = failure {
            ms["states"] = with_active("FailedToLoad");
            ms["transitionStatus"] = json!("BlockedByFailedLoad");
            let mut info = json!({"reason": "ModelLoadFailed", "exitCode": code});
            if message.is_string() {
                info["message"] = message;
            }
            ms["lastFailureInfo"] = info;
        }
        ms
    }

    /// Write status: only when it changed.
    fn write(ctx: &mut Ctx<'_>, seen: &Seen, status: Value) {
        if seen.isvc.get("status") == Some(&status) {
            return;
        }
        let mut o = (*seen.isvc).clone();
        o["status"] = status;
        o["metadata"]["resourceVersion"] = json!("");
        let _ = ctx.update_status(ISVC, o);
    }
}

impl Reconcile for KServe {
    const NAME: &'static str = "kserve";
    const PRIMARY: Res = res::INFERENCE_SERVICES;
    const KIND: &'static str = "InferenceService";
    const OWNS: &'static [Res] = &[res::DEPLOYMENTS];
    const WATCHES: &'static [&'static str] = &[ISVC, DEPLOY];

    // kserve pkg/controller/v1beta1/inferenceservice/controller.go: controller-runtime,
    // `Owns(&appsv1.Deployment{})` enqueues the InferenceService when its Deployment changes.
    fn lag(&self) -> Lag {
        Lag::millis(50, 300)
    }

    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &Key) -> Action {
        let Some(seen) = self.gather(ctx, key) else {
            return Action::await_change();
        };
        let status = Self::decide(&seen, &ts(ctx.now()));
        Self::write(ctx, &seen, status);
        Action::await_change()
    }
}
