//! What every set's writes to its children share. A bound on how many are in flight at once
//! across all sets: ten sets scaling together would otherwise send 320 at once, and the API
//! server refuses what is over its `--max-mutating-requests-inflight` (200 by default) with
//! 429. And the children created moments ago: the shared cache shows a new child only once
//! its watch event arrives, and creating it again is a POST the API server refuses (409)
//! after doing most of a write's work.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Child writes in flight at once, across all sets.
const IN_FLIGHT: usize = 64;
/// How long a created child is taken as existing without the cache showing it.
const CREATED_MEMORY: SignedDuration = SignedDuration::from_secs(30);

pub struct ChildWrites {
    permits: Semaphore,
    /// `namespace/name` of each child created, with when.
    created: Mutex<HashMap<String, Timestamp>>,
}

impl Default for ChildWrites {
    fn default() -> Self {
        Self {
            permits: Semaphore::new(IN_FLIGHT),
            created: Mutex::new(HashMap::new()),
        }
    }
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
        let created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        created
            .get(key)
            .is_some_and(|at| now.duration_since(*at) < CREATED_MEMORY)
    }

    /// Remembers that `key` was created at `now`; forgets what is older than the memory.
    pub fn note_created(&self, key: String, now: Timestamp) {
        let mut created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        created.retain(|_, at| now.duration_since(*at) < CREATED_MEMORY);
        created.insert(key, now);
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
}
