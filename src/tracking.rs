//! Applies what sources report ([`Change`]) to everything that follows the
//! running containers: the registry decides whether a container is tracked
//! at all, the collector opens or drops its files, the uploader registers or
//! deregisters its virtual agent.

use std::path::Path;
use std::time::Instant;

use crate::info;
use crate::metrics::Collector;
use crate::registry::{ContainerInfo, Registry};
use crate::source::{Change, Update};
use crate::upload::{processes_of_pids, Uploader};

/// What follows the set of tracked containers.
pub struct Followers<'a> {
    pub registry: &'a mut Registry,
    pub collector: &'a mut Collector,
    pub uploader: Option<&'a mut Uploader>,
    /// Where the host's `/proc` is (for the process lists uploaded).
    pub rootfs: &'a Path,
}

impl Followers<'_> {
    /// One change from a source. `unix` is the wall clock (the start time
    /// of a container's first reading).
    pub fn apply(&mut self, change: Change, now: Instant, unix: f64) {
        match change {
            Change::Added(info) => self.added(*info, now, unix),
            Change::Updated { id, update } => {
                let Some(c) = self.registry.get_mut(&id) else {
                    return;
                };
                match update {
                    Update::Name(name) => {
                        info!("renamed {} to {name}", c.name);
                        c.name = name;
                    }
                    Update::Paused(paused) => c.paused = paused,
                }
                let updated = c.clone();
                self.collector.update_info(&updated);
            }
            Change::Removed { id, why } => {
                self.registry.forget_excluded(&id);
                self.untrack(&id, why, now);
            }
        }
    }

    fn added(&mut self, info: ContainerInfo, now: Instant, unix: f64) {
        if let Some(why) = self.registry.exclusion(&info) {
            if self.registry.mark_excluded(&info.id) {
                info!("not tracking {} ({}): {why}", info.name, info.short_id());
            }
            // Seeing the agent's own container may have taught its pod.
            for member in self.registry.own_pod_members() {
                self.registry.mark_excluded(&member);
                self.untrack(&member, "in the agent's own pod", now);
            }
            return;
        }
        match self.registry.get(&info.id) {
            Some(old) if old.pid == info.pid => self.collector.update_info(&info),
            Some(old) => {
                info!(
                    "{} ({}) restarted: pid {} -> {}",
                    info.name,
                    info.short_id(),
                    old.pid,
                    info.pid
                );
                self.collector.untrack(&info.id);
                self.collector.track(&info, now, unix);
            }
            None => {
                info!(
                    "tracking {} ({}, image {}, pid {}, finger {})",
                    info.name,
                    info.short_id(),
                    info.image,
                    info.pid,
                    info.fingerprint
                );
                self.collector.track(&info, now, unix);
            }
        }
        if let Some(u) = self.uploader.as_deref_mut() {
            let processes =
                processes_of_pids(self.rootfs, &self.collector.container_pids(&info.id));
            u.container_started(&info, processes, now);
        }
        self.registry.insert(info);
    }

    fn untrack(&mut self, id: &str, why: &str, now: Instant) {
        if let Some(info) = self.registry.remove(id) {
            info!("untracking {} ({}): {why}", info.name, info.short_id());
            self.collector.untrack(id);
            if let Some(u) = self.uploader.as_deref_mut() {
                u.container_stopped(id, &info.fingerprint, now);
            }
        }
    }
}
