//! Watches: newline-delimited JSON events from a resourceVersion, with replay, bookmarks,
//! `timeoutSeconds`, selector-aware event types, and 410 `Expired` when history is gone.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::super::Sim;
use super::super::error::ApiError;
use super::super::resources::ResId;
use super::super::selector::{FieldSelector, LabelSelector};
use super::super::store::{EventKind, WatchEvent};
use super::verbs::Kind;
use super::{Req, Target};

/// How often a watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);

struct Filter {
    res: ResId,
    ns: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    table: bool,
    include: Option<String>,
    kind: Kind,
    sim: Sim,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    fn encode(&self, kind: &str, obj: &Arc<Value>, now: Timestamp) -> Bytes {
        let object = if self.table {
            self.kind
                .table(std::slice::from_ref(obj), now, self.include.as_deref())
        } else {
            (*self.kind.out(obj)).clone()
        };
        line(kind, &object)
    }

    /// A bookmark at `rv` in the request's version.
    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let def = &self.kind.def;
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            &json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta}),
        )
    }

    /// The line this watcher gets for `ev`, if any.
    fn line(&self, ev: &WatchEvent, now: Timestamp) -> Option<Bytes> {
        if ev.resource != self.res || self.ns.as_deref().is_some_and(|n| n != ev.namespace) {
            return None;
        }
        let plain = self.labels.is_empty()
            && self.fields == FieldSelector::default()
            && !self.table
            && self.kind.conv.is_none();
        if plain {
            return Some(ev.line());
        }
        let parse = |b: &Bytes| serde_json::from_slice::<Value>(b).unwrap_or(Value::Null);
        let object = ev.object();
        let now_match = self.matches(&object);
        let old_match = ev
            .old_slim
            .as_ref()
            .is_some_and(|o| self.matches(&parse(o)));
        let kind = match ev.kind {
            EventKind::Added if now_match => "ADDED",
            EventKind::Modified if now_match && old_match => "MODIFIED",
            EventKind::Modified if now_match => "ADDED",
            EventKind::Modified if old_match => "DELETED",
            EventKind::Deleted if old_match || now_match => "DELETED",
            _ => return None,
        };
        if !self.table && self.kind.conv.is_none() && kind == ev.kind.as_str() {
            return Some(ev.line());
        }
        Some(self.encode(kind, &object, now))
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

struct State {
    pending: VecDeque<Bytes>,
    rx: broadcast::Receiver<Arc<WatchEvent>>,
    filter: Filter,
    done: bool,
    deadline: Option<tokio::time::Instant>,
    bookmarks: Option<tokio::time::Interval>,
    last_rv: u64,
}

/// Serves `?watch=1` on a resource.
pub(crate) fn serve(sim: &Sim, r: &Req, t: &Target, k: &Kind) -> Result<Response, ApiError> {
    let labels = LabelSelector::parse(r.q("labelSelector").unwrap_or(""))?;
    let fields = FieldSelector::parse(r.q("fieldSelector").unwrap_or(""))?;
    let timeout = match r.q("timeoutSeconds") {
        Some(s) if !s.is_empty() => Some(
            s.parse::<u64>()
                .map_err(|_| ApiError::bad_request("invalid timeoutSeconds"))?,
        ),
        _ => None,
    };
    let rv_param = r.q("resourceVersion").unwrap_or("");
    let want_bookmarks = r.q_bool("allowWatchBookmarks");
    let send_initial = r.q_bool("sendInitialEvents");
    let filter = Filter {
        res: t.res,
        ns: t.ns.clone(),
        labels,
        fields,
        table: r.wants_table(),
        include: r.q("includeObject").map(str::to_string),
        kind: k.clone(),
        sim: sim.clone(),
    };
    let mut pending = VecDeque::new();
    let mut done = false;
    let w = sim.lock();
    let rx = w.store().subscribe();
    let head = w.store().resource_version();
    let now = w.now();
    if rv_param.is_empty() || rv_param == "0" || send_initial {
        for obj in w
            .store()
            .list(t.res, t.ns.as_deref(), &filter.labels, &filter.fields)
        {
            pending.push_back(filter.encode("ADDED", &obj, now));
        }
        if send_initial && want_bookmarks {
            pending.push_back(filter.bookmark(head, true));
        }
    } else {
        let rv: u64 = rv_param
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv_param}")))?;
        match w.store().watch_since(rv) {
            Ok(events) => {
                for ev in events {
                    if let Some(l) = filter.line(ev, now) {
                        pending.push_back(l);
                    }
                }
            }
            Err(compacted) => {
                let status = ApiError::new(
                    super::super::Reason::Expired,
                    format!("too old resource version: {rv} ({compacted})"),
                )
                .status();
                pending.push_back(line("ERROR", &status));
                done = true;
            }
        }
    }
    drop(w);
    let st = State {
        pending,
        rx,
        filter,
        done,
        deadline: timeout.map(|s| tokio::time::Instant::now() + Duration::from_secs(s)),
        bookmarks: want_bookmarks.then(|| {
            tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY)
        }),
        last_rv: head,
    };
    let stream = futures::stream::unfold(st, next);
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

async fn next(mut st: State) -> Option<(Result<Bytes, Infallible>, State)> {
    loop {
        if let Some(b) = st.pending.pop_front() {
            return Some((Ok(b), st));
        }
        if st.done {
            return None;
        }
        let deadline = st.deadline;
        let got = tokio::select! {
            _ = async { if let Some(d) = deadline { tokio::time::sleep_until(d).await } }, if deadline.is_some() => return None,
            _ = async { if let Some(b) = st.bookmarks.as_mut() { b.tick().await; } }, if st.bookmarks.is_some() => {
                let bm = st.filter.bookmark(st.last_rv, false);
                st.pending.push_back(bm);
                continue;
            }
            r = st.rx.recv() => r,
        };
        match got {
            Ok(ev) => {
                st.last_rv = ev.rv;
                let now = if st.filter.table {
                    st.filter.sim.lock().now()
                } else {
                    Timestamp::UNIX_EPOCH
                };
                if let Some(l) = st.filter.line(&ev, now) {
                    return Some((Ok(l), st));
                }
            }
            // A watcher that fell behind ends; its client re-watches from its last resourceVersion.
            Err(_) => return None,
        }
    }
}
