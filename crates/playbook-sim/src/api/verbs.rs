//! The verbs on resources: get, list, create, update, patch, delete, deletecollection, and the
//! status, scale, log and proxy subresources.

use std::io::Write;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::error::{ApiError, Reason};
use super::super::patch;
use super::super::resources::{Conversion, ResourceDef};
use super::super::selector::{FieldSelector, LabelSelector};
use super::super::store::{DeleteOptions, Page, Propagation, meta_str, set_meta};
use super::super::{Sim, World};
use super::admission::{self, Directive, Source};
use super::conversion;
use super::subresources::{evict, exec, log, proxy, scale};
use super::{Req, Target, json as json_resp, json_bytes, table, watch};
use playbook_model::crds::{self, CrdHandle};

/// The kind a request addresses: as its group-version serves it, as it is stored, and the
/// conversion between the two (None when the request names the storage version).
#[derive(Clone)]
pub(crate) struct Kind {
    /// As served: names, verbs, `apiVersion` of what the client sends and gets.
    pub def: ResourceDef,
    /// As stored: what tables, the store and its validation work on.
    pub stored: ResourceDef,
    pub conv: Option<Conversion>,
}

impl Kind {
    pub(crate) fn of(sim: &Sim, t: &Target) -> Kind {
        let w = sim.lock();
        let reg = w.store().registry();
        let stored = reg.def(t.res).clone();
        match t.view.map(|v| reg.view(v)) {
            Some(v) => Kind {
                def: v.def.clone(),
                stored,
                conv: Some(v.conversion),
            },
            None => Kind {
                def: stored.clone(),
                stored,
                conv: None,
            },
        }
    }

    /// A stored object as the request's version has it.
    pub(crate) fn out(&self, obj: &Arc<Value>) -> Arc<Value> {
        match self.conv {
            Some(c) => Arc::new(conversion::to_view(c, obj)),
            None => obj.clone(),
        }
    }

    /// An object in the request's version as it is stored.
    fn to_storage(&self, obj: Value) -> Result<Value, ApiError> {
        match self.conv {
            Some(c) if obj.is_object() => conversion::to_storage(c, &obj),
            _ => Ok(obj),
        }
    }

    /// A table of stored objects: columns from the stored kind (upstream prints the internal
    /// object), full row objects in the request's version.
    pub(crate) fn table(
        &self,
        objs: &[Arc<Value>],
        now: jiff::Timestamp,
        include: Option<&str>,
    ) -> Value {
        let mut t = table::render(&self.stored, objs, now, include, None);
        if let Some(c) = self.conv
            && include == Some("Object")
            && let Some(rows) = t.get_mut("rows").and_then(Value::as_array_mut)
        {
            for row in rows {
                if let Some(o) = row.get_mut("object") {
                    *o = conversion::to_view(c, o);
                }
            }
        }
        t
    }
}

pub(crate) async fn serve(sim: &Sim, r: Req, t: Target) -> Result<Response, ApiError> {
    let k = Kind::of(sim, &t);
    let def = k.def.clone();
    if def.namespaced && t.name.is_some() && t.ns.is_none() {
        return Err(ApiError::no_resource());
    }
    if def.group == "apiextensions.k8s.io" {
        sim.lock().materialize_crds();
    }
    if let Some(d) = r.q("dryRun")
        && !d.is_empty()
        && d != "All"
    {
        return Err(ApiError::bad_request(format!(
            "Invalid dry run value: {d}: supported values: \"All\""
        )));
    }
    let verb_ok = |v: &str| {
        if def.has_verb(v) {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed())
        }
    };
    let name = t.name.clone().unwrap_or_default();
    let ns = t.ns.clone().unwrap_or_default();
    match (t.sub.as_deref(), &r.method, t.name.is_some()) {
        (Some("proxy"), _, true) if def.group.is_empty() && def.kind == "Service" => {
            proxy(sim, r, &t).await
        }
        (Some("log"), &Method::GET, true) if def.log => log(sim, &r, &t),
        (Some("exec" | "attach" | "portforward"), &Method::GET | &Method::POST, true)
            if def.log =>
        {
            exec(sim, &r, &t)
        }
        (Some("status"), &Method::GET, true) if def.status => get(sim, &r, &t, &k),
        (Some("status"), &Method::PUT, true) if def.status => update(sim, &r, &t, &k, true),
        (Some("status"), &Method::PATCH, true) if def.status => patch_obj(sim, &r, &t, &k, true),
        (Some("scale"), m, true) if def.scale => scale(sim, &r, &t, &def, m),
        (Some("eviction"), &Method::POST, true) if def.group.is_empty() && def.kind == "Pod" => {
            evict(sim, &r, &t)
        }
        (Some(_), _, _) => Err(ApiError::no_resource()),
        (None, &Method::GET, false) if r.q_bool("watch") => {
            verb_ok("watch")?;
            watch::serve(sim, &r, &t, &k)
        }
        (None, &Method::GET, false) => {
            verb_ok("list")?;
            list(sim, &r, &t, &k)
        }
        (None, &Method::GET, true) => {
            verb_ok("get")?;
            get(sim, &r, &t, &k)
        }
        (None, &Method::POST, false) => {
            verb_ok("create")?;
            create(sim, &r, &t, &k)
        }
        (None, &Method::PUT, true) => {
            verb_ok("update")?;
            update(sim, &r, &t, &k, false)
        }
        (None, &Method::PATCH, true) => {
            verb_ok("patch")?;
            patch_obj(sim, &r, &t, &k, false)
        }
        (None, &Method::DELETE, true) => {
            verb_ok("delete")?;
            let opts = delete_options(&r)?;
            let obj = mutate(sim, &r, |w| w.store_mut().delete(t.res, &ns, &name, &opts))?;
            Ok(object_response(StatusCode::OK, &r, &k, &obj, sim))
        }
        (None, &Method::DELETE, false) => {
            verb_ok("deletecollection")?;
            let opts = delete_options(&r)?;
            let (labels, fields) = selectors(&r)?;
            let deleted = mutate(sim, &r, |w| {
                let items = w.store().list(t.res, t.ns.as_deref(), &labels, &fields);
                let mut out = Vec::new();
                for o in items {
                    if let Ok(d) = w.store_mut().delete(
                        t.res,
                        meta_str(&o, "namespace"),
                        meta_str(&o, "name"),
                        &opts,
                    ) {
                        out.push(d);
                    }
                }
                let rv = w.store().resource_version();
                Page {
                    items: out,
                    continue_token: None,
                    resource_version: rv,
                }
            });
            Ok(list_response(&k, &deleted))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// Runs a mutation on the world, as a dry run when the request says `dryRun=All`.
pub(crate) fn mutate<R>(sim: &Sim, r: &Req, f: impl FnOnce(&mut World) -> R) -> R {
    let dry = r.q("dryRun") == Some("All");
    sim.with_world(|w| {
        w.store_mut().set_dry_run(dry);
        w.store_mut().set_admission(true);
        let out = f(w);
        w.store_mut().set_admission(false);
        w.store_mut().set_dry_run(false);
        out
    })
}

/// Parses a request body: JSON, or YAML when the content type says so (or JSON fails).
pub(crate) fn parse_body(r: &Req) -> Result<Value, ApiError> {
    if r.body.is_empty() {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    if r.content_type.contains("protobuf") || r.content_type.contains("cbor") {
        return Err(ApiError::new(
            Reason::UnsupportedMediaType,
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {})",
                r.content_type
            ),
        ));
    }
    if !r.content_type.contains("yaml")
        && let Ok(v) = serde_json::from_slice::<Value>(&r.body)
    {
        return Ok(v);
    }
    let text =
        std::str::from_utf8(&r.body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text).map_err(|e| {
        ApiError::bad_request(format!(
            "the body of the request was in an unknown format: {e}"
        ))
    })
}

fn selectors(r: &Req) -> Result<(LabelSelector, FieldSelector), ApiError> {
    Ok((
        LabelSelector::parse(r.q("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.message))?,
        FieldSelector::parse(r.q("fieldSelector").unwrap_or(""))?,
    ))
}

fn delete_options(r: &Req) -> Result<DeleteOptions, ApiError> {
    let body: Value = if r.body.is_empty() {
        json!({})
    } else {
        parse_body(r)?
    };
    let prop = r
        .q("propagationPolicy")
        .or_else(|| body.get("propagationPolicy").and_then(Value::as_str));
    let propagation = match prop {
        None | Some("") | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(p) => {
            return Err(ApiError::bad_request(format!(
                "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
            )));
        }
    };
    let propagation = if body.get("orphanDependents") == Some(&json!(true)) {
        Propagation::Orphan
    } else {
        propagation
    };
    let grace = match r.q("gracePeriodSeconds") {
        Some(g) => Some(
            g.parse::<i64>()
                .map_err(|_| ApiError::bad_request("invalid gracePeriodSeconds"))?,
        ),
        None => body.get("gracePeriodSeconds").and_then(Value::as_i64),
    };
    let pre = body.get("preconditions");
    Ok(DeleteOptions {
        propagation,
        grace_period_seconds: grace,
        uid: pre
            .and_then(|p| p.get("uid"))
            .and_then(Value::as_str)
            .map(str::to_string),
        resource_version: pre
            .and_then(|p| p.get("resourceVersion"))
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// One object, or a one-row Table when asked.
fn object_response(code: StatusCode, r: &Req, k: &Kind, obj: &Arc<Value>, sim: &Sim) -> Response {
    if r.wants_table() {
        let now = sim.lock().now();
        let t = k.table(std::slice::from_ref(obj), now, r.q("includeObject"));
        return json_resp(code, &t);
    }
    json_bytes(code, serde_json::to_vec(&*k.out(obj)).unwrap_or_default())
}

fn get(sim: &Sim, r: &Req, t: &Target, k: &Kind) -> Result<Response, ApiError> {
    let def = &k.def;
    let name = t.name.as_deref().unwrap_or_default();
    let obj = sim
        .lock()
        .store()
        .get(t.res, t.ns.as_deref().unwrap_or_default(), name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&def.key(), name))?;
    Ok(object_response(StatusCode::OK, r, k, &obj, sim))
}

fn list(sim: &Sim, r: &Req, t: &Target, k: &Kind) -> Result<Response, ApiError> {
    let (labels, fields) = selectors(r)?;
    let limit = match r.q("limit") {
        Some(l) if !l.is_empty() => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request("invalid limit"))?,
        ),
        _ => None,
    };
    let (page, now) = {
        let w = sim.lock();
        (
            w.store().list_page(
                t.res,
                t.ns.as_deref(),
                &labels,
                &fields,
                limit,
                r.q("continue"),
            )?,
            w.now(),
        )
    };
    if r.wants_table() {
        let mut tbl = k.table(&page.items, now, r.q("includeObject"));
        tbl["metadata"] = json!({"resourceVersion": page.resource_version.to_string()});
        if let Some(c) = &page.continue_token {
            tbl["metadata"]["continue"] = json!(c);
        }
        return Ok(json_resp(StatusCode::OK, &tbl));
    }
    Ok(list_response(k, &page))
}

pub(crate) fn list_response(k: &Kind, page: &Page) -> Response {
    let def = &k.def;
    let mut out: Vec<u8> = Vec::with_capacity(256 + page.items.len() * 1024);
    let cont = page
        .continue_token
        .as_ref()
        .map(|c| format!(",\"continue\":\"{c}\""))
        .unwrap_or_default();
    let _ = write!(
        out,
        "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{}\"{cont}}},\"items\":[",
        def.kind,
        def.api_version(),
        page.resource_version
    );
    for (i, item) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, &*k.out(item));
    }
    out.extend_from_slice(b"]}");
    json_bytes(StatusCode::OK, out)
}

/// Registers the kind of a CRD object written through the API.
fn register_crd(w: &mut World, obj: &Value) {
    if w.store().is_dry_run() {
        return;
    }
    if let Ok(sum) = crds::summarize(obj) {
        let handle = Arc::new(CrdHandle::object_value(obj.clone()));
        w.store_mut().registry_mut().add_crd(&sum, handle);
        w.store_mut().sync_registry();
    }
}

/// Whether the CRD of a custom kind is being deleted (controllers/crd.rs empties it).
fn crd_terminating(w: &World, def: &ResourceDef) -> bool {
    let crd = format!("{}.{}", def.plural, def.group);
    w.store()
        .registry()
        .id(crate::resources::res::CRDS)
        .and_then(|id| w.store().get(id, "", &crd))
        .is_some_and(|o| o.pointer("/metadata/deletionTimestamp").is_some())
}

fn crd_status(obj: &mut Value, now: &str) {
    let names = obj.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let versions: Vec<Value> = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.get("name").cloned()).collect())
        .unwrap_or_default();
    obj["status"] = json!({
        "acceptedNames": names,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": versions,
    });
}

fn create(sim: &Sim, r: &Req, t: &Target, k: &Kind) -> Result<Response, ApiError> {
    let def = &k.def;
    let mut body = parse_body(r)?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format",
        ));
    }
    let directive = Directive::of(r, "CreateOptions")?;
    let mut warnings = Vec::new();
    admission::decode(def, &mut body, Source::Body, directive, None, &mut warnings)?;
    if def.group == "events.k8s.io" {
        // pkg/apis/core/validation/events.go ValidateEventCreate: events.k8s.io/v1 is strict.
        let errs = super::validation::event_v1_create(&body);
        if !errs.is_empty() {
            let name = body["metadata"]["name"].as_str().unwrap_or_default();
            return Err(ApiError::invalid(&def.kind, "", name, &errs));
        }
    }
    let mut body = k.to_storage(body)?;
    let is_crd = def.kind == "CustomResourceDefinition";
    let obj = mutate(sim, r, |w| {
        if is_crd {
            let now = Timestamp(w.now()).to_string();
            crd_status(&mut body, &now);
        }
        if def.is_custom() && crd_terminating(w, def) {
            // customresource_handler.go: no new instances while the CRD is being emptied.
            return Err(ApiError::new(
                Reason::MethodNotAllowed,
                "create not allowed while custom resource definition is terminating",
            ));
        }
        let obj = w
            .store_mut()
            .create(t.res, t.ns.as_deref().unwrap_or_default(), body, is_crd)?;
        if is_crd {
            register_crd(w, &obj);
        }
        Ok::<_, ApiError>(obj)
    })?;
    Ok(with_warnings(
        object_response(StatusCode::CREATED, r, k, &obj, sim),
        &warnings,
    ))
}

/// Adds a `Warning` header per warning (apiserver/pkg/endpoints/handlers: `warning.AddWarning`).
pub(crate) fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in admission::warning_headers(warnings) {
        if let Ok(v) = axum::http::HeaderValue::try_from(w) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

fn update(sim: &Sim, r: &Req, t: &Target, k: &Kind, status: bool) -> Result<Response, ApiError> {
    let def = &k.def;
    let mut body = parse_body(r)?;
    let directive = Directive::of(r, "UpdateOptions")?;
    let mut warnings = Vec::new();
    if body.is_object() {
        admission::decode(def, &mut body, Source::Body, directive, None, &mut warnings)?;
    }
    let body = k.to_storage(body)?;
    let name = t.name.as_deref().unwrap_or_default();
    let obj = mutate(sim, r, |w| {
        let o = w.store_mut().update(
            t.res,
            t.ns.as_deref().unwrap_or_default(),
            name,
            body,
            status,
        )?;
        if def.kind == "CustomResourceDefinition" && !status {
            register_crd(w, &o);
        }
        Ok::<_, ApiError>(o)
    })?;
    Ok(with_warnings(
        object_response(StatusCode::OK, r, k, &obj, sim),
        &warnings,
    ))
}

fn unsupported_patch(ct: &str) -> ApiError {
    ApiError::new(
        Reason::UnsupportedMediaType,
        format!(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {ct})"
        ),
    )
}

/// Applies the request's patch (by content type) to `cur`.
pub(crate) fn apply_patch(r: &Req, def: &ResourceDef, cur: &mut Value) -> Result<(), ApiError> {
    let ct = r.content_type.split(';').next().unwrap_or("").trim();
    match ct {
        "application/merge-patch+json" => patch::merge(cur, &parse_body(r)?),
        "application/strategic-merge-patch+json" if !def.is_custom() => {
            patch::strategic(cur, &parse_body(r)?)
        }
        "application/json-patch+json" => patch::json(cur, &parse_body(r)?)?,
        "application/apply-patch+yaml" => patch::apply(cur, &parse_body(r)?, def.is_custom()),
        other => return Err(unsupported_patch(other)),
    }
    Ok(())
}

fn patch_obj(sim: &Sim, r: &Req, t: &Target, k: &Kind, status: bool) -> Result<Response, ApiError> {
    let def = &k.def;
    let name = t.name.as_deref().unwrap_or_default();
    let ns = t.ns.as_deref().unwrap_or_default();
    let is_apply = r.content_type.starts_with("application/apply-patch");
    if is_apply && r.q("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "PATCH, fieldManager is required for apply requests",
        ));
    }
    let directive = Directive::of(r, "PatchOptions")?;
    let mut warnings = Vec::new();
    let ct = r.content_type.split(';').next().unwrap_or("").trim();
    let source = match ct {
        "application/strategic-merge-patch+json" => Source::Strategic,
        "application/apply-patch+yaml" => Source::Apply,
        _ => Source::JsonPatch,
    };
    let patch_body = if is_apply || source == Source::Strategic {
        Some(parse_body(r)?)
    } else {
        None
    };
    if is_apply
        && !def.is_custom()
        && let Some(mut config) = patch_body
            .clone()
            .filter(|c| c.is_object() && c.get("metadata").is_none_or(Value::is_object))
    {
        // The apply configuration is converted to the kind's typed form (fieldmanager).
        set_meta(&mut config, "name", json!(name));
        if def.namespaced {
            set_meta(&mut config, "namespace", json!(ns));
        }
        admission::decode(
            def,
            &mut config,
            Source::Apply,
            directive,
            None,
            &mut Vec::new(),
        )?;
    }
    let (code, obj) = mutate(sim, r, |w| {
        let cur = w.store().get(t.res, ns, name).cloned();
        let Some(cur) = cur else {
            if is_apply && !status {
                let mut body = parse_body(r)?;
                if !body.is_object() {
                    return Err(ApiError::bad_request(
                        "the body of the request was in an unknown format",
                    ));
                }
                if body.get("metadata").is_some_and(|m| !m.is_object()) {
                    return Err(ApiError::bad_request("metadata must be an object"));
                }
                admission::decode(
                    def,
                    &mut body,
                    Source::Apply,
                    directive,
                    None,
                    &mut warnings,
                )?;
                set_meta(&mut body, "name", json!(name));
                let body = k.to_storage(body)?;
                let o = w.store_mut().create(t.res, ns, body, false)?;
                return Ok((StatusCode::CREATED, o));
            }
            return Err(ApiError::not_found(&def.key(), name));
        };
        // The patch applies to the object in the request's version (handlers/patch.go).
        let mut v = (*k.out(&cur)).clone();
        apply_patch(r, def, &mut v)?;
        if !v.get("metadata").is_some_and(Value::is_object) {
            return Err(ApiError::bad_request("metadata must be an object"));
        }
        admission::decode(
            def,
            &mut v,
            source,
            directive,
            patch_body.as_ref(),
            &mut warnings,
        )?;
        let mut v = k.to_storage(v)?;
        if is_apply {
            // Apply carries no resourceVersion precondition unless the config sets one.
            let applied_rv = parse_body(r)?.pointer("/metadata/resourceVersion").cloned();
            set_meta(&mut v, "resourceVersion", applied_rv.unwrap_or(json!("")));
        }
        let o = w.store_mut().update(t.res, ns, name, v, status)?;
        if def.kind == "CustomResourceDefinition" && !status {
            register_crd(w, &o);
        }
        Ok((StatusCode::OK, o))
    })?;
    Ok(with_warnings(
        object_response(code, r, k, &obj, sim),
        &warnings,
    ))
}

/// RFC 3339 at whole seconds, as Kubernetes timestamps are.
pub(crate) struct Timestamp(pub jiff::Timestamp);

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = jiff::Timestamp::from_second(self.0.as_second()).unwrap_or(self.0);
        write!(f, "{t}")
    }
}
