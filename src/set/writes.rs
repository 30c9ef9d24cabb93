//! What every set's writes to its children share. A bound on how many are in flight at once
//! across all sets: ten sets scaling together would otherwise send 320 at once, and the API
//! server refuses what is over its `--max-mutating-requests-inflight` (200 by default) with
//! 429. And the children created moments ago: the shared cache shows a new child only once
//! its watch event arrives, and creating it again is a POST the API server refuses (409)
//! after doing most of a write's work. And the children a set is removing: it terminates
//! their machines while it deletes them, and with thousands to delete a child may see its
//! machine gone first; knowing it is being removed, it writes nothing (no Stalled status,
//! no Warning) and waits for its deletion. A child whose deletion comes first waits for
//! its set's calls (`set_terminating`) rather than make its own.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Child writes in flight at once, across all sets.
const IN_FLIGHT: usize = 64;
/// How long a created child is taken as existing without the cache showing it.
const CREATED_MEMORY: SignedDuration = SignedDuration::from_secs(30);
/// How long a child noted as being removed is taken as such (its deletion follows within
/// seconds; the memory only bounds the map).
const REMOVING_MEMORY: SignedDuration = SignedDuration::from_secs(600);
/// How long a set's TerminateInstances for a removed child is taken as in flight: the call
/// returns within seconds; the memory only bounds one that never does (the child then
/// terminates its machine itself).
const TERMINATING_MEMORY: SignedDuration = SignedDuration::from_secs(60);

pub struct ChildWrites {
    permits: Semaphore,
    /// `namespace/name` of each child created, with when.
    created: Mutex<HashMap<String, Timestamp>>,
    /// `namespace/name` of each child a set is removing, with when it was recorded.
    removing: Mutex<HashMap<String, Timestamp>>,
    /// `namespace/name` of each removed child whose machine its set's TerminateInstances
    /// names while that call is in flight, with when it began.
    terminating: Mutex<HashMap<String, Timestamp>>,
}

impl Default for ChildWrites {
    fn default() -> Self {
        Self {
            permits: Semaphore::new(IN_FLIGHT),
            created: Mutex::new(HashMap::new()),
            removing: Mutex::new(HashMap::new()),
            terminating: Mutex::new(HashMap::new()),
        }
    }
}

/// Whether `key` was noted less than `memory` before `now`.
fn noted(
    map: &Mutex<HashMap<String, Timestamp>>,
    key: &str,
    now: Timestamp,
    memory: SignedDuration,
) -> bool {
    let map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.get(key)
        .is_some_and(|at| now.duration_since(*at) < memory)
}

/// Notes `keys` at `now`, forgetting what is older than `memory`.
fn note(
    map: &Mutex<HashMap<String, Timestamp>>,
    keys: impl IntoIterator<Item = String>,
    now: Timestamp,
    memory: SignedDuration,
) {
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    map.retain(|_, at| now.duration_since(*at) < memory);
    map.extend(keys.into_iter().map(|k| (k, now)));
}

impl ChildWrites {
    /// Waits for a turn to write; the write is made while the permit lives.
    pub async fn permit(&self) -> SemaphorePermit<'_> {
        self.permits
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// Whether `key` was created less than `CREATED_MEMORY` before `now`.
    pub fn recently_created(&self, key: &str, now: Timestamp) -> bool {
        noted(&self.created, key, now, CREATED_MEMORY)
    }

    /// Remembers that `key` was created at `now`.
    pub fn note_created(&self, key: String, now: Timestamp) {
        note(&self.created, [key], now, CREATED_MEMORY);
    }

    /// Whether a set recorded `key` as a child it removes.
    pub fn being_removed(&self, key: &str, now: Timestamp) -> bool {
        noted(&self.removing, key, now, REMOVING_MEMORY)
    }

    /// Remembers that a set removes `keys` (written in its `status.removal` first).
    pub fn note_removing(&self, keys: impl IntoIterator<Item = String>, now: Timestamp) {
        note(&self.removing, keys, now, REMOVING_MEMORY);
    }

    /// Whether `key`'s set is terminating its machine right now: the set deletes its
    /// children while its TerminateInstances calls are under way, and a child deleted
    /// first waits for them rather than send a call of its own.
    pub fn set_terminating(&self, key: &str, now: Timestamp) -> bool {
        noted(&self.terminating, key, now, TERMINATING_MEMORY)
    }

    /// Remembers that a set's TerminateInstances for `keys`' machines begins at `now`.
    pub fn note_terminating(&self, keys: impl IntoIterator<Item = String>, now: Timestamp) {
        note(&self.terminating, keys, now, TERMINATING_MEMORY);
    }

    /// The set's TerminateInstances for `keys`' machines returned (accepted or not).
    pub fn done_terminating<'a>(&self, keys: impl IntoIterator<Item = &'a String>) {
        let mut map = self.terminating.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_child_is_remembered_for_a_while_then_forgotten() {
        let writes = ChildWrites::default();
        let t0 = Timestamp::UNIX_EPOCH;
        assert!(!writes.recently_created("ns/a", t0));
        writes.note_created("ns/a".into(), t0);
        assert!(writes.recently_created("ns/a", t0 + SignedDuration::from_secs(29)));
        assert!(!writes.recently_created("ns/a", t0 + SignedDuration::from_secs(30)));
        assert!(!writes.recently_created("ns/b", t0));
        // Old entries go when something new is noted.
        writes.note_created("ns/b".into(), t0 + SignedDuration::from_secs(60));
        assert_eq!(writes.created.lock().unwrap().len(), 1);
    }

    #[test]
    fn children_being_removed_are_known_until_the_memory_ends() {
        let writes = ChildWrites::default();
        let t0 = Timestamp::UNIX_EPOCH;
        writes.note_removing(["ns/a".to_string(), "ns/b".to_string()], t0);
        assert!(writes.being_removed("ns/a", t0 + SignedDuration::from_secs(599)));
        assert!(!writes.being_removed("ns/a", t0 + SignedDuration::from_secs(600)));
        assert!(!writes.being_removed("ns/c", t0));
        assert!(
            !writes.recently_created("ns/a", t0),
            "two separate memories"
        );
    }

    #[test]
    fn a_set_terminating_is_known_until_its_call_returns_or_a_minute_passes() {
        let writes = ChildWrites::default();
        let t0 = Timestamp::UNIX_EPOCH;
        let keys = ["ns/a".to_string(), "ns/b".to_string()];
        writes.note_terminating(keys.clone(), t0);
        assert!(writes.set_terminating("ns/a", t0 + SignedDuration::from_secs(59)));
        assert!(!writes.set_terminating("ns/a", t0 + SignedDuration::from_secs(60)));
        assert!(!writes.set_terminating("ns/c", t0));
        assert!(
            !writes.being_removed("ns/a", t0),
            "separate from the removal"
        );
        writes.done_terminating(&keys[..1]);
        assert!(!writes.set_terminating("ns/a", t0));
        assert!(writes.set_terminating("ns/b", t0));
    }
}
