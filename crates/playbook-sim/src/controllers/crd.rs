//! The CustomResourceDefinition finalizer: a CRD being deleted first loses every object of its
//! kind, then goes; only then does the API server stop serving the kind.
//!
//! Follows apiextensions-apiserver v1.32: deleting a CRD adds the finalizer
//! `customresourcecleanup.apiextensions.k8s.io` and the condition `Terminating`
//! (`InstanceDeletionPending`; `pkg/registry/customresourcedefinition/etcd.go` `Delete`, done in
//! `api/verbs.rs`); `pkg/controller/finalizer/crd_finalizer.go` then sets `Terminating`
//! (`InstanceDeletionInProgress`), deletes every instance through the normal delete path (so
//! their own finalizers, such as Chaos Mesh's `chaos-mesh/records`, still run), checks every
//! 5 s until none is left, sets `InstanceDeletionCompleted` and removes its finalizer. The
//! store then removes the CRD and withdraws the kind (`Registry::withdraw`): discovery no
//! longer lists it and requests for it answer 404, as `customresource_handler.go` does once the
//! CRD is gone. While the CRD is terminating, creating an instance answers 405 "create not
//! allowed while custom resource definition is terminating" (`api/verbs.rs`).

use jiff::SignedDuration;
use serde_json::{Value, json};

use super::reconcile::{Action, ObjectKey, Reconcile};
use super::util::{deleting, s, set_condition, write_status};
use crate::resources::{Res, res};
use crate::store::finalizers;
use crate::world::{Ctx, Lag};

/// The finalizer the API server puts on a CRD being deleted.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// How often the finalizer checks whether the instances are gone (crd_finalizer.go polls
/// every 5 s).
const RECHECK: SignedDuration = SignedDuration::from_secs(5);

/// Empties and then releases CRDs being deleted. See the module doc.
#[derive(Default)]
pub struct CrdFinalizer;

/// Sets the `Terminating` condition of `crd` (in place).
pub fn set_terminating(
    crd: &mut Value,
    status: &str,
    reason: &str,
    message: &str,
    now: jiff::Timestamp,
) {
    let mut conds = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    set_condition(
        &mut conds,
        "Terminating",
        status,
        reason,
        message,
        now,
        false,
    );
    if !crd.get("status").is_some_and(Value::is_object) {
        crd["status"] = json!({});
    }
    crd["status"]["conditions"] = Value::Array(conds);
}

impl Reconcile for CrdFinalizer {
    const NAME: &'static str = "crd-finalizer";
    const PRIMARY: Res = res::CRDS;
    const KIND: &'static str = "CustomResourceDefinition";
    const OWNS: &'static [Res] = &[];
    const WATCHES: &'static [&'static str] = &["customresourcedefinitions.apiextensions.k8s.io"];

    fn lag(&self) -> Lag {
        Lag::millis(10, 100)
    }

    fn sync(&mut self, ctx: &mut Ctx<'_>, key: &ObjectKey) -> Action {
        let Some(crd) = ctx.get(res::CRDS, "", &key.name) else {
            return Action::await_change();
        };
        if !deleting(&crd) || !finalizers(&crd).iter().any(|f| f == CLEANUP_FINALIZER) {
            return Action::await_change();
        }
        let now = ctx.now();
        let mut status = json!({"status": crd.get("status").cloned().unwrap_or(json!({}))});
        set_terminating(
            &mut status,
            "True",
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            now,
        );
        write_status(ctx, res::CRDS, &crd, status["status"].clone());
        let kind = format!(
            "{}.{}",
            s(&crd, "/spec/names/plural"),
            s(&crd, "/spec/group")
        );
        let remaining: Vec<Value> = match ctx.store().registry().lookup(&kind) {
            Some(_) => ctx
                .list(kind.as_str(), None)
                .iter()
                .map(|o| (**o).clone())
                .collect(),
            None => Vec::new(),
        };
        if !remaining.is_empty() {
            for o in remaining.iter().filter(|o| !deleting(o)) {
                let _ = ctx.delete(
                    kind.as_str(),
                    s(o, "/metadata/namespace"),
                    s(o, "/metadata/name"),
                );
            }
            return Action::requeue(ctx, RECHECK);
        }
        let Some(cur) = ctx.get(res::CRDS, "", &key.name) else {
            return Action::await_change();
        };
        let mut done = (*cur).clone();
        set_terminating(
            &mut done,
            "False",
            "InstanceDeletionCompleted",
            "removed all instances",
            now,
        );
        let fins: Vec<String> = finalizers(&done)
            .into_iter()
            .filter(|f| f != CLEANUP_FINALIZER)
            .collect();
        done["metadata"]["finalizers"] = json!(fins);
        done["metadata"]["resourceVersion"] = json!("");
        // The finalizer leaves with the status update, as crd_finalizer.go does it (UpdateStatus).
        let _ = ctx.update(res::CRDS, done);
        Action::await_change()
    }
}
