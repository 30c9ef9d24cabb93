//! What every reconcile shares: clients, the Event publisher, settings, per-object backoff.

use crate::set::writes::ChildWrites;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::runtime::reflector::Store;
use rand::Rng;

use super::Watched;
use super::events::EventPublisher;
use super::sweep::Sweeper;
use crate::cloud::{Clock, Clouds, OfferingCache, SystemClock};
use crate::metrics::Metrics;
use tencent_cloud::credentials::Credentials;

/// Tunables of the controller; the defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Period of the bulk sweep that observes Ready instances (see `sweep`).
    pub resync: Duration,
    /// First retry after an error a person must fix; doubles up to `slow_retry_max`.
    pub slow_retry: Duration,
    pub slow_retry_max: Duration,
    /// Polling while an instance is on its way.
    pub poll_min: Duration,
    pub poll_max: Duration,
    /// The poll of a set's child while its machine boots or terminates (its Describe calls
    /// are batched with its siblings').
    pub set_child_poll: Duration,
    /// How long to keep looking for an instance whose creation may have been sent but whose
    /// ID was never recorded, before a deleted resource lets go (Tencent attaches tags
    /// asynchronously, so a fresh instance may not be found by tag at once).
    pub tag_grace: Duration,
    /// How long a recorded instance may be missing from DescribeInstances before it counts as
    /// vanished, if it was never seen (new instances can lag in DescribeInstances).
    pub appear_grace: Duration,
    /// How long a recorded call without an answer may take to show on the instance before it
    /// counts as never sent and is made (`update::without_unsent_operation`).
    pub operation_settle: Duration,
    /// Credentials for resources without `credentialsSecretRef`; `None` disables them.
    pub default_credentials: Option<Credentials>,
    /// How long offerings (stock and prices) are reused before DescribeZoneInstanceConfigInfos
    /// is called again (Karpenter refreshes every 5 min, TKE's provider every 10).
    pub offerings_period: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(300),
            slow_retry: Duration::from_secs(30),
            slow_retry_max: Duration::from_secs(300),
            poll_min: Duration::from_secs(3),
            poll_max: Duration::from_secs(30),
            set_child_poll: Duration::from_secs(1),
            tag_grace: Duration::from_secs(60),
            appear_grace: Duration::from_secs(300),
            operation_settle: super::update::OPERATION_SETTLE,
            default_credentials: None,
            offerings_period: Duration::from_secs(300),
        }
    }
}

pub struct Context {
    pub kube: kube::Client,
    pub events: EventPublisher,
    pub clouds: Arc<dyn Clouds>,
    /// What grace periods and condition times are measured with.
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    pub sweeper: Arc<Sweeper>,
    pub metrics: Arc<Metrics>,
    /// The shared cache of CvmInstances, to find the others naming a credentials Secret
    /// before letting go of it; without it (tests) every such question goes to the API server.
    pub instances: Option<Store<Watched>>,
    /// Stock and prices per (cloud, charge type), shared by sets and instances.
    pub offerings: OfferingCache,
    /// What all sets' writes to their children share (a bound in flight, recent creations).
    pub child_writes: ChildWrites,
    /// Consecutive failures per resource UID, for exponential backoff of retries.
    failures: Mutex<HashMap<String, u32>>,
    /// Resource UIDs already told (by an Event) that their credentials Secret is being
    /// deleted: Events are published on transitions only.
    told_secret_deleting: Mutex<HashSet<String>>,
}

impl Context {
    pub fn new(
        kube: kube::Client,
        events: EventPublisher,
        clouds: Arc<dyn Clouds>,
        settings: Settings,
        sweeper: Arc<Sweeper>,
    ) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        Self {
            kube,
            events,
            clouds,
            offerings: OfferingCache::new(settings.offerings_period, clock.clone()),
            clock,
            settings,
            sweeper,
            metrics: Arc::new(Metrics::default()),
            instances: None,
            child_writes: ChildWrites::default(),
            failures: Mutex::new(HashMap::new()),
            told_secret_deleting: Mutex::new(HashSet::new()),
        }
    }

    /// Reads the other CvmInstances from the controller's shared cache.
    pub fn with_instances(mut self, cache: Store<Watched>) -> Self {
        self.instances = Some(cache);
        self
    }

    /// Whether `uid` has not been told yet that its credentials Secret is being deleted;
    /// the first call says yes, the next ones no, until [`Context::forget`].
    pub fn first_told_secret_deleting(&self, uid: &str) -> bool {
        self.told_secret_deleting
            .lock()
            .expect("told map poisoned")
            .insert(uid.to_string())
    }

    /// Measures time with `clock` instead of the system clock (tests move it by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.offerings = OfferingCache::new(self.settings.offerings_period, clock.clone());
        self.clock = clock;
        self
    }

    /// Reports into `metrics` (exported ones) instead of a private, unexported set.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Records one more failure for `uid` and returns the delay before the next try:
    /// `base · 2^(n-1)`, capped, with ±20 % jitter so that many stalled resources do not
    /// retry in lockstep.
    pub fn backoff(&self, uid: &str, base: Duration, max: Duration) -> Duration {
        let n = {
            let mut failures = self.failures.lock().expect("backoff map poisoned");
            let n = failures.entry(uid.to_string()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        jitter(exponential(base, max, n))
    }

    pub fn reset_backoff(&self, uid: &str) {
        self.failures
            .lock()
            .expect("backoff map poisoned")
            .remove(uid);
    }

    /// Drops what is kept about `uid`, a resource that is letting go.
    pub fn forget(&self, uid: &str) {
        self.reset_backoff(uid);
        self.told_secret_deleting
            .lock()
            .expect("told map poisoned")
            .remove(uid);
    }
}

pub fn exponential(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    base.saturating_mul(factor).min(max)
}

fn jitter(d: Duration) -> Duration {
    d.mul_f64(rand::rng().random_range(0.8..1.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_and_caps() {
        let s = Duration::from_secs;
        assert_eq!(exponential(s(2), s(60), 1), s(2));
        assert_eq!(exponential(s(2), s(60), 2), s(4));
        assert_eq!(exponential(s(2), s(60), 4), s(16));
        assert_eq!(exponential(s(2), s(60), 10), s(60));
        assert_eq!(exponential(s(2), s(60), u32::MAX), s(60));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..100 {
            let d = jitter(Duration::from_secs(10));
            assert!(d >= Duration::from_secs(8) && d <= Duration::from_secs(12));
        }
    }
}
