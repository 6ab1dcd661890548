//! What the collector keeps per container and of the host between cycles:
//! metadata it publishes, open files, the latest reading and the rate base
//! before it, limits, load average, and the retry state of a vanished cgroup.

use super::exposition;
use super::files::{ReadBuf, Src};
use super::open::{HostFiles, Opened, SpecDirs, Target};
use super::outlyer::Values;
use super::pidscan::PidCounts;
use super::read::read_spec;
use super::reading::*;
use super::tasks::{update_load, TaskCache};
use crate::registry::ContainerInfo;
use std::time::Instant;

/// What the collector keeps of a container's Docker metadata: only what it
/// reads or publishes (the registry holds the rest).
pub(super) struct Tracked {
    pub id: Box<str>,
    /// Virtual-agent fingerprint, the Outlyer view's key.
    pub fingerprint: Box<str>,
    /// `State.StartedAt`, Unix seconds (0.0 unknown).
    pub started_at: f64,
    pub pid: u32,
    own_netns: bool,
    cgroup_parent: Box<str>,
    /// The exact cgroup path from the container's source (may be empty).
    cgroup_hint: Box<str>,
    /// Prometheus label text after the `id` label (which is the cgroup path,
    /// known once resolved): `image="…",name="…",container_label_…`.
    pub label_rest: Box<str>,
    /// The cgroup path (the `id` label), once resolved.
    pub cgroup_path: Option<Box<str>>,
    /// Handles on the directories of the limit files, which are re-read
    /// rarely and so hold no open file between reads.
    spec_dirs: SpecDirs,
    /// Per-cycle files, indexed by `open::f`.
    pub files: Vec<Src>,
    pub cur: Reading,
    /// Per-interface, per-device and TCP-state rows of `cur`.
    pub detail: Detail,
    pub prev: RateBase,
    pub spec: Spec,
    /// Exponential load averages: 10 s, 1, 5, 15 min.
    pub load: [f64; 4],
    pub tasks: TaskCache,
    /// Foreign PID namespace only: what this cycle's scan of the host's
    /// processes found for the container (see `pidscan`).
    pub pids: Option<PidCounts>,
    /// The latest cycle produced a reading (series are published).
    pub ok: bool,
    /// The cgroup vanished; re-resolve before reading again.
    pub gone: bool,
    /// The cycle from which a vanished cgroup is looked for again.
    pub retry_at: u64,
    /// Failed resolves in a row.
    pub retries: u32,
    pub last_seen: f64,
}

/// The host's files, its latest two readings and the values derived from them.
pub(super) struct HostState {
    pub files: HostFiles,
    pub cur: HostReading,
    pub prev: HostReading,
    pub values: Values,
}

/// `container_label_<key>` with every byte outside `[a-zA-Z0-9_]` turned into `_`.
fn sanitize_label_name(key: &str) -> String {
    let mut s = String::from("container_label_");
    s.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    s
}

fn build_labels(info: &ContainerInfo) -> Box<str> {
    use crate::registry::{K8S_CONTAINER_NAME, K8S_NAMESPACE, K8S_POD_NAME};
    let mut s = String::with_capacity(128);
    if info.kubelet_labels {
        // As cAdvisor inside the kubelet: these (and `id`), no label per label.
        let get = |k: &str| info.label(k).unwrap_or("");
        exposition::label(&mut s, "container", get(K8S_CONTAINER_NAME));
        s.push(',');
        exposition::label(&mut s, "image", &info.image);
        s.push(',');
        exposition::label(&mut s, "name", &info.id);
        s.push(',');
        exposition::label(&mut s, "namespace", get(K8S_NAMESPACE));
        s.push(',');
        exposition::label(&mut s, "pod", get(K8S_POD_NAME));
        return s.into_boxed_str();
    }
    exposition::label(&mut s, "image", &info.image);
    s.push(',');
    exposition::label(&mut s, "name", &info.name);
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in &info.labels {
        let name = sanitize_label_name(k);
        // Two keys may sanitize alike (`a.b`, `a-b`): a family cannot repeat a label name.
        if seen.contains(&name) {
            continue;
        }
        s.push(',');
        exposition::label(&mut s, &name, v);
        seen.push(name);
    }
    s.into_boxed_str()
}

impl Tracked {
    pub(super) fn new(info: &ContainerInfo) -> Tracked {
        Tracked {
            id: info.id.as_str().into(),
            fingerprint: info.fingerprint.as_str().into(),
            started_at: info.started_at,
            pid: info.pid,
            own_netns: info.has_own_netns(),
            cgroup_parent: info.cgroup_parent.as_str().into(),
            cgroup_hint: info.cgroup.as_str().into(),
            label_rest: build_labels(info),
            cgroup_path: None,
            spec_dirs: SpecDirs::default(),
            files: Vec::new(),
            cur: Reading::default(),
            detail: Detail::default(),
            prev: RateBase::default(),
            spec: Spec::default(),
            load: [0.0; 4],
            tasks: TaskCache::default(),
            pids: None,
            ok: false,
            gone: true,
            retry_at: 0,
            retries: 0,
            last_seen: 0.0,
        }
    }

    /// Takes new metadata; true when the cgroup must be resolved again (a new process).
    pub(super) fn update(&mut self, info: &ContainerInfo) -> bool {
        let moved = self.pid != info.pid
            || self.own_netns != info.has_own_netns()
            || *self.cgroup_parent != *info.cgroup_parent
            || *self.cgroup_hint != *info.cgroup;
        self.fingerprint = info.fingerprint.as_str().into();
        self.started_at = info.started_at;
        self.pid = info.pid;
        self.own_netns = info.has_own_netns();
        self.cgroup_parent = info.cgroup_parent.as_str().into();
        self.cgroup_hint = info.cgroup.as_str().into();
        self.label_rest = build_labels(info);
        moved
    }

    pub(super) fn short_id(&self) -> &str {
        crate::registry::short_id(&self.id)
    }

    /// What opening its files needs.
    pub(super) fn target(&self) -> Target<'_> {
        Target {
            id: &self.id,
            pid: self.pid,
            cgroup: &self.cgroup_hint,
            cgroup_parent: &self.cgroup_parent,
            own_netns: self.own_netns,
        }
    }

    /// Resolve the cgroup again before the next read, at once.
    pub(super) fn restart(&mut self) {
        self.gone = true;
        self.retry_at = 0;
    }

    /// Takes freshly opened files: load average and task fds start over.
    pub(super) fn opened(&mut self, o: Opened) {
        self.files = o.files;
        self.spec_dirs = o.spec_dirs;
        self.cgroup_path = Some(o.cgroup_path);
        self.gone = false;
        self.load = [0.0; 4];
        self.tasks = TaskCache::default();
    }

    /// The cgroup was not found: no `id` label, no limits; the next try
    /// waits twice as many cycles each time, up to 32.
    pub(super) fn not_found(&mut self, cycle: u64) {
        self.cgroup_path = None;
        self.spec_dirs = SpecDirs::default();
        self.retries = self.retries.saturating_add(1);
        self.retry_at = cycle + (1u64 << self.retries.min(5));
        self.ok = false;
    }

    /// Re-reads the limits (none before the cgroup is resolved).
    pub(super) fn refresh_spec(&mut self, buf: &mut ReadBuf, v2: bool, memory: bool) {
        if self.cgroup_path.is_some() {
            self.spec = read_spec(&self.spec_dirs, buf, v2, memory);
        }
    }

    /// Takes this cycle's reading: the previous one becomes the rate base,
    /// the load average moves on.
    pub(super) fn record(&mut self, r: Reading, now: Instant, unix_secs: f64) {
        update_load(&mut self.load, r.runnable, self.cur.at, now);
        self.prev = RateBase::of(&self.cur);
        self.cur = r;
        self.ok = true;
        self.retries = 0;
        self.last_seen = unix_secs;
    }

    /// The cgroup vanished: drop it cleanly this cycle, re-resolve next
    /// cycle; if it vanishes again before a single reading (no file could
    /// be read: every open hit the open-files reserve, or the cgroup flaps),
    /// each further try waits twice as many cycles, up to 32.
    pub(super) fn vanished(&mut self, cycle: u64) {
        if self.ok {
            self.retries = 0;
        } else {
            self.retries = self.retries.saturating_add(1);
        }
        self.ok = false;
        self.gone = true;
        self.retry_at = cycle + (1u64 << self.retries.min(5));
        self.cur = Reading::default();
        self.detail = Detail::default();
        self.prev = RateBase::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_sanitized_and_deduplicated() {
        let info = ContainerInfo {
            name: "web".into(),
            image: "img:1".into(),
            labels: vec![
                ("a.b".into(), "1".into()),
                ("a-b".into(), "2".into()),
                ("q".into(), "say \"hi\"\\\n".into()),
            ],
            ..ContainerInfo::default()
        };
        let l = build_labels(&info);
        assert_eq!(
            &*l,
            "image=\"img:1\",name=\"web\",container_label_a_b=\"1\",container_label_q=\"say \\\"hi\\\"\\\\\\n\""
        );
    }

    #[test]
    fn a_container_never_read_backs_off_one_that_was_read_retries_at_once() {
        let mut t = Tracked::new(&ContainerInfo::default());
        let mut waits = Vec::new();
        let mut cycle = 10;
        for _ in 0..7 {
            t.vanished(cycle);
            waits.push(t.retry_at - cycle);
            cycle = t.retry_at;
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 32, 32]);
        t.record(Reading::default(), Instant::now(), 1.0);
        t.vanished(cycle);
        assert_eq!(t.retry_at, cycle + 1, "it had a reading: the next cycle");
    }
}
