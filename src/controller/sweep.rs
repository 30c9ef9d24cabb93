//! Steady-state observation of Ready instances in bulk.
//!
//! A Ready resource does not poll its own instance. It is registered here instead, and once
//! per resync period one pass asks DescribeInstances about every registered instance of a
//! client, 100 IDs a call. Only resources whose instance changed (state, IPs, or gone) are
//! reconciled. With N Ready instances that is ceil(N/100) calls per period, where per-object
//! timers would make N.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::Stream;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::api::CvmInstance;
use crate::cloud::Cloud;
use tencent_cloud::types::Instance;

struct Entry {
    client: Arc<dyn Cloud>,
    instance_id: String,
    fingerprint: Fingerprint,
    /// When the instance was last seen as `fingerprint` (registration or a sweep).
    confirmed: Instant,
}

/// What a sweep compares: a change in any of these needs a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    state: String,
    private_ips: Vec<String>,
    public_ips: Vec<String>,
}

impl Fingerprint {
    fn of(instance: &Instance) -> Self {
        Self {
            state: instance.instance_state.clone(),
            private_ips: instance.private_ip_addresses.clone(),
            public_ips: instance.public_ip_addresses.clone(),
        }
    }
}

pub struct Sweeper {
    entries: Mutex<HashMap<ObjectRef<CvmInstance>, Entry>>,
    triggers: mpsc::UnboundedSender<ObjectRef<CvmInstance>>,
}

impl Sweeper {
    /// The sweeper and the stream of resources it wants reconciled.
    pub fn new() -> (
        Arc<Self>,
        impl Stream<Item = ObjectRef<CvmInstance>> + Send + 'static,
    ) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sweeper = Arc::new(Self {
            entries: Mutex::new(HashMap::new()),
            triggers: tx,
        });
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        (sweeper, stream)
    }

    pub fn register(
        &self,
        object: ObjectRef<CvmInstance>,
        client: Arc<dyn Cloud>,
        instance: &Instance,
    ) {
        let entry = Entry {
            client,
            instance_id: instance.instance_id.clone(),
            fingerprint: Fingerprint::of(instance),
            confirmed: Instant::now(),
        };
        self.entries
            .lock()
            .expect("sweeper poisoned")
            .insert(object, entry);
    }

    pub fn unregister(&self, object: &ObjectRef<CvmInstance>) {
        self.entries
            .lock()
            .expect("sweeper poisoned")
            .remove(object);
    }

    /// Whether `object` is registered for `instance_id` and was seen unchanged within `max_age`.
    pub fn vouches_for(
        &self,
        object: &ObjectRef<CvmInstance>,
        instance_id: &str,
        max_age: Duration,
    ) -> bool {
        self.entries
            .lock()
            .expect("sweeper poisoned")
            .get(object)
            .is_some_and(|e| e.instance_id == instance_id && e.confirmed.elapsed() <= max_age)
    }

    pub fn len(&self) -> usize {
        self.entries.lock().expect("sweeper poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sweeps every `period` until the process ends.
    pub async fn run(self: Arc<Self>, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            self.sweep().await;
        }
    }

    /// One pass over all registered instances.
    pub async fn sweep(&self) {
        for (client, members) in self.groups() {
            let ids: Vec<String> = members.iter().map(|(_, id, _)| id.clone()).collect();
            let swept_at = Instant::now();
            let found = match client.describe_instances(&ids).await {
                Ok(found) => found,
                Err(e) => {
                    // The resources find out for themselves, with their own backoff.
                    warn!(
                        code = e.code(),
                        count = ids.len(),
                        "sweep failed; reconciling each"
                    );
                    for (object, _, _) in members {
                        self.trigger(object);
                    }
                    continue;
                }
            };
            let by_id: HashMap<&str, &Instance> =
                found.iter().map(|i| (i.instance_id.as_str(), i)).collect();
            let mut unchanged = Vec::with_capacity(members.len());
            for (object, id, fingerprint) in members {
                let changed = by_id
                    .get(id.as_str())
                    .is_none_or(|i| Fingerprint::of(i) != fingerprint);
                if changed {
                    debug!(instance_id = %id, "instance changed since last sweep");
                    self.trigger(object);
                } else {
                    unchanged.push((object, id));
                }
            }
            self.confirm(&unchanged, swept_at);
        }
    }

    /// Records that these instances were seen unchanged by the call sent at `at`.
    fn confirm(&self, seen: &[(ObjectRef<CvmInstance>, String)], at: Instant) {
        let mut entries = self.entries.lock().expect("sweeper poisoned");
        for (object, id) in seen {
            // A resource registered again meanwhile (another instance) is not confirmed.
            if let Some(entry) = entries.get_mut(object)
                && entry.instance_id == *id
            {
                entry.confirmed = entry.confirmed.max(at);
            }
        }
    }

    fn trigger(&self, object: ObjectRef<CvmInstance>) {
        // A triggered resource polls on its own until it is Ready and registers again.
        self.unregister(&object);
        let _ = self.triggers.send(object);
    }

    #[allow(clippy::type_complexity)]
    fn groups(
        &self,
    ) -> Vec<(
        Arc<dyn Cloud>,
        Vec<(ObjectRef<CvmInstance>, String, Fingerprint)>,
    )> {
        let entries = self.entries.lock().expect("sweeper poisoned");
        // One group per client (per credentials and region): keyed by the client's address,
        // without the vtable part of the fat pointer.
        let mut groups: HashMap<*const (), (Arc<dyn Cloud>, Vec<_>)> = HashMap::new();
        for (object, entry) in entries.iter() {
            groups
                .entry(Arc::as_ptr(&entry.client).cast::<()>())
                .or_insert_with(|| (entry.client.clone(), Vec::new()))
                .1
                .push((
                    object.clone(),
                    entry.instance_id.clone(),
                    entry.fingerprint.clone(),
                ));
        }
        groups.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tencent_cloud::config::ClientConfig;
    use tencent_cloud::credentials::Credentials;
    use tencent_cloud::pool::ClientPool;

    fn client() -> Arc<dyn Cloud> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pool = ClientPool::new(ClientConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        })
        .unwrap();
        pool.get(&Credentials::new("AKID1", "k1"), "ap-guangzhou")
    }

    fn instance(id: &str) -> Instance {
        Instance {
            instance_id: id.into(),
            instance_state: "RUNNING".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn vouches_only_for_the_registered_instance_while_fresh() {
        let (sweeper, _triggers) = Sweeper::new();
        let object = ObjectRef::<CvmInstance>::new("web-1").within("team-a");
        let minute = Duration::from_secs(60);
        assert!(!sweeper.vouches_for(&object, "ins-1", minute));

        sweeper.register(object.clone(), client(), &instance("ins-1"));
        assert!(sweeper.vouches_for(&object, "ins-1", minute));
        assert!(!sweeper.vouches_for(&object, "ins-2", minute));
        assert!(!sweeper.vouches_for(&object, "ins-1", Duration::ZERO));

        sweeper.unregister(&object);
        assert!(!sweeper.vouches_for(&object, "ins-1", minute));
    }

    #[tokio::test]
    async fn confirming_a_replaced_registration_does_not_refresh_it() {
        let (sweeper, _triggers) = Sweeper::new();
        let object = ObjectRef::<CvmInstance>::new("web-1").within("team-a");
        sweeper.register(object.clone(), client(), &instance("ins-2"));
        let registered = sweeper.entries.lock().unwrap()[&object].confirmed;
        // A sweep that saw the previous instance must not vouch for the new one.
        sweeper.confirm(
            &[(object.clone(), "ins-1".to_string())],
            registered + Duration::from_secs(5),
        );
        assert_eq!(
            sweeper.entries.lock().unwrap()[&object].confirmed,
            registered
        );
        sweeper.confirm(
            &[(object.clone(), "ins-2".to_string())],
            registered + Duration::from_secs(5),
        );
        assert!(sweeper.entries.lock().unwrap()[&object].confirmed > registered);
    }
}
