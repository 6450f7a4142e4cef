//! The journal of one run on disk: every object is written here *before* it is created (then
//! with its uid once created) and marked when removed, every workload the run scaled with the
//! replicas to put back, and who wrote it (host, pid and that process's start time) and for
//! which cluster, so `playbook cleanup` can find what a killed run left behind — and leave a
//! live run, or another cluster, alone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ObjectRef;
use super::ledger::{Restore, Uncordon};

/// One run's journal file: `<state dir>/journal/<run id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Journal {
    pub run_id: String,
    pub pid: u32,
    pub started: String,
    /// The kubeconfig context the run used (absent: in-cluster or the current context).
    pub context: Option<String>,
    /// The machine the run ran on.
    #[serde(default)]
    pub host: Option<String>,
    /// When the run's process started (clock ticks since boot, `/proc/PID/stat`): with `pid`
    /// and `host`, tells a live run from a dead one whose pid was reused.
    #[serde(default)]
    pub pid_start: Option<u64>,
    /// The cluster the run talked to: the uid of its `kube-system` namespace.
    #[serde(default)]
    pub cluster: Option<String>,
    pub objects: Vec<Entry>,
    /// Workloads the run scaled, and the replicas to put back.
    #[serde(default)]
    pub restores: Vec<RestoreEntry>,
    /// Nodes the run cordoned, to uncordon.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncordons: Vec<UncordonEntry>,
    #[serde(skip)]
    path: PathBuf,
}

/// A workload to scale back, `pending` until it was.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RestoreEntry {
    pub restore: Restore,
    /// `pending` or `done`.
    pub state: String,
}

/// A node to uncordon, `pending` until it was.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UncordonEntry {
    pub uncordon: Uncordon,
    /// `pending` or `done`.
    pub state: String,
}

/// An object the run meant to create.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    pub object: ObjectRef,
    pub state: EntryState,
}

/// Where an object of the journal stands (written as `intended`, `created`, `removed`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// Written before the create: the object may or may not exist.
    Intended,
    /// The cluster accepted the create.
    Created,
    /// Removed (or its create failed): nothing left to clean up.
    Removed,
}

/// The state folder: `--state-dir`, else `$XDG_STATE_HOME/playbook`, else `~/.local/state/playbook`.
pub fn state_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os("XDG_STATE_HOME") {
        Some(x) if !x.is_empty() => PathBuf::from(x).join("playbook"),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
            .join(".local/state/playbook"),
    }
}

impl Journal {
    /// A new, empty journal for `run_id` under `state_dir` (written on the first object).
    pub fn new(state_dir: &Path, run_id: &str, context: Option<String>) -> Self {
        Journal {
            run_id: run_id.to_string(),
            pid: std::process::id(),
            started: jiff::Timestamp::now().to_string(),
            context,
            host: hostname(),
            pid_start: process_start(std::process::id()),
            cluster: None,
            objects: Vec::new(),
            restores: Vec::new(),
            uncordons: Vec::new(),
            path: state_dir.join("journal").join(format!("{run_id}.json")),
        }
    }

    /// Every journal in `state_dir`, oldest first; unreadable files are reported, not fatal.
    pub fn all(state_dir: &Path) -> (Vec<Journal>, Vec<String>) {
        let dir = state_dir.join("journal");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let (mut good, mut bad) = (Vec::new(), Vec::new());
        for p in paths {
            match Journal::load(&p) {
                Ok(j) => good.push(j),
                Err(e) => bad.push(e),
            }
        }
        (good, bad)
    }

    /// Reads one journal file.
    pub fn load(path: &Path) -> Result<Journal, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read journal {}: {e}", path.display()))?;
        let mut j: Journal = serde_json::from_str(&text)
            .map_err(|e| format!("journal {} is damaged: {e}", path.display()))?;
        j.path = path.to_path_buf();
        Ok(j)
    }

    /// Records the state of `object` and writes the file (atomically: write, then rename).
    pub fn mark(&mut self, object: &ObjectRef, state: EntryState) -> std::io::Result<()> {
        match self.objects.iter_mut().find(|e| e.object == *object) {
            Some(e) => e.state = state,
            None => self.objects.push(Entry {
                object: object.clone(),
                state,
            }),
        }
        self.write()
    }

    /// The object written as intended got its uid when created.
    pub fn created(&mut self, intended: &ObjectRef, uid: Option<String>) -> std::io::Result<()> {
        if let Some(e) = self.objects.iter_mut().find(|e| e.object == *intended) {
            e.object.uid = uid;
            e.state = EntryState::Created;
        }
        self.write()
    }

    /// Drops the entry of an object that was never created (its create failed).
    pub fn forget(&mut self, object: &ObjectRef) -> std::io::Result<()> {
        if let Some(at) = self.objects.iter().rposition(|e| e.object == *object) {
            self.objects.remove(at);
        }
        self.write()
    }

    /// Records a workload to scale back (`pending`) or scaled back (`done`).
    pub fn mark_restore(&mut self, restore: &Restore, state: &str) -> std::io::Result<()> {
        match self.restores.iter_mut().find(|e| e.restore == *restore) {
            Some(e) => e.state = state.to_string(),
            None => self.restores.push(RestoreEntry {
                restore: restore.clone(),
                state: state.to_string(),
            }),
        }
        self.write()
    }

    /// Workloads not yet scaled back.
    pub fn pending_restores(&self) -> impl Iterator<Item = &Restore> {
        self.restores
            .iter()
            .filter(|e| e.state != "done")
            .map(|e| &e.restore)
    }

    /// Records a node to uncordon (`pending`) or uncordoned (`done`).
    pub fn mark_uncordon(&mut self, u: &Uncordon, state: &str) -> std::io::Result<()> {
        match self.uncordons.iter_mut().find(|e| e.uncordon == *u) {
            Some(e) => e.state = state.to_string(),
            None => self.uncordons.push(UncordonEntry {
                uncordon: u.clone(),
                state: state.to_string(),
            }),
        }
        self.write()
    }

    /// Nodes not yet uncordoned.
    pub fn pending_uncordons(&self) -> impl Iterator<Item = &Uncordon> {
        self.uncordons
            .iter()
            .filter(|e| e.state != "done")
            .map(|e| &e.uncordon)
    }

    /// Whether nothing the journal names is left to undo.
    pub fn settled(&self) -> bool {
        self.pending().next().is_none()
            && self.pending_restores().next().is_none()
            && self.pending_uncordons().next().is_none()
    }

    /// Whether the run that wrote this journal is still running on this machine.
    pub fn alive(&self) -> bool {
        if self.host.is_some() && self.host != hostname() {
            return false;
        }
        if !Path::new(&format!("/proc/{}", self.pid)).exists() {
            return false;
        }
        match (self.pid_start, process_start(self.pid)) {
            (Some(a), Some(b)) => a == b,
            // No start time to compare: the pid is in use, so say alive (--force overrides).
            _ => true,
        }
    }

    /// Objects not yet removed.
    pub fn pending(&self) -> impl Iterator<Item = &ObjectRef> {
        self.objects
            .iter()
            .filter(|e| e.state != EntryState::Removed)
            .map(|e| &e.object)
    }

    fn write(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        crate::files::write_safely(
            &self.path,
            &serde_json::to_vec_pretty(self).unwrap_or_default(),
        )
    }

    /// Deletes the file: the run left nothing behind.
    pub fn finish(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// This machine's name.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
}

/// When process `pid` started, in clock ticks since boot (field 22 of `/proc/PID/stat`).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_before_create_and_gone_when_finished() {
        let dir = std::env::temp_dir().join(format!("pb-journal-{}", std::process::id()));
        let obj = ObjectRef::new("chaos-mesh.org/v1alpha1", "PodChaos", Some("ns"), "pb-kill");
        let mut j = Journal::new(&dir, "pb-1", Some("ctx".into()));
        j.mark(&obj, EntryState::Intended).unwrap();
        let (all, bad) = Journal::all(&dir);
        assert!(bad.is_empty());
        assert_eq!(all[0].pending().collect::<Vec<_>>(), vec![&obj]);
        j.mark(&obj, EntryState::Removed).unwrap();
        assert_eq!(Journal::all(&dir).0[0].pending().count(), 0);
        assert!(j.alive(), "this process is alive");
        j.pid_start = j.pid_start.map(|t| t + 1);
        assert!(!j.alive(), "a reused pid is not the run");
        j.finish().unwrap();
        j.finish().unwrap();
        assert!(Journal::all(&dir).0.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_created_object_is_written_as_created_and_still_pending() {
        let dir = std::env::temp_dir().join(format!("pb-journal-created-{}", std::process::id()));
        let obj = ObjectRef::new("chaos-mesh.org/v1alpha1", "PodChaos", Some("ns"), "pb-kill");
        let mut j = Journal::new(&dir, "pb-2", None);
        j.mark(&obj, EntryState::Intended).unwrap();
        j.mark(&obj, EntryState::Created).unwrap();
        let text = std::fs::read_to_string(dir.join("journal/pb-2.json")).unwrap();
        assert!(text.contains("\"state\": \"created\""), "{text}");
        let (all, _) = Journal::all(&dir);
        assert_eq!(all[0].objects[0].state, EntryState::Created);
        assert_eq!(all[0].pending().collect::<Vec<_>>(), vec![&obj]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
