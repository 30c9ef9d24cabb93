//! Steady-state observation of Ready instances in bulk.
//!
//! A Ready resource does not poll its own instance. It is registered here instead, and once
//! per resync period one pass asks DescribeInstances about every registered instance of a
//! client, 100 IDs a call. Only resources whose instance changed (state, IPs, or gone) are
//! reconciled. With N Ready instances that is ceil(N/100) calls per period, where per-object
//! timers would make N.
//!
//! Kind-agnostic: an owner is any object (a CvmInstance, later a set of them) and may
//! register many instances; a change in any of them triggers the owner, through the trigger
//! stream of the owner's kind ([`Sweeper::triggers`]).

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::DynamicObject;
use kube::runtime::reflector::ObjectRef;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::cloud::Cloud;
use tencent_cloud::client::MAX_IDS_PER_CALL;
use tencent_cloud::types::Instance;

/// What one owner registered: its client and the instances it follows.
struct Registration {
    client: Arc<dyn Cloud>,
    /// Usually one; a vector, not a map: at fleet scale every owner's map would cost more
    /// than its entries.
    instances: Vec<Followed>,
}

struct Followed {
    instance_id: String,
    fingerprint: Fingerprint,
    /// When the instance was last seen as `fingerprint` (registration or a sweep).
    confirmed: Instant,
}

/// What a sweep compares: a change in any of these needs a reconcile. Besides the state
/// and addresses, every field a spec governs, so an edit in the console (a renamed instance,
/// swapped security groups, a stopped instance) is seen within one resync period at no extra
/// call. Kept as a hash: the sweeper holds one per instance, at fleet scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint(u64);

impl Fingerprint {
    fn of(instance: &Instance) -> Self {
        let mut hasher = std::hash::DefaultHasher::new();
        let i = instance;
        i.instance_state.hash(&mut hasher);
        i.private_ip_addresses.hash(&mut hasher);
        i.public_ip_addresses.hash(&mut hasher);
        i.instance_name.hash(&mut hasher);
        i.instance_type.hash(&mut hasher);
        i.image_id.hash(&mut hasher);
        i.security_group_ids.hash(&mut hasher);
        for tag in &i.tags {
            (&tag.key, &tag.value).hash(&mut hasher);
        }
        i.internet_accessible
            .as_ref()
            .and_then(|a| a.internet_max_bandwidth_out)
            .hash(&mut hasher);
        i.placement
            .as_ref()
            .and_then(|p| p.project_id)
            .hash(&mut hasher);
        i.login_settings
            .as_ref()
            .map(|l| &l.key_ids)
            .hash(&mut hasher);
        i.stop_charging_mode.hash(&mut hasher);
        i.latest_operation_request_id.hash(&mut hasher);
        i.latest_operation_state.hash(&mut hasher);
        Self(hasher.finish())
    }
}

/// The object that registered instances, of any kind.
pub type Owner = ObjectRef<DynamicObject>;

/// `object` as an [`Owner`].
pub fn owner_of<K: Resource<DynamicType = ()>>(object: &K) -> Owner {
    ObjectRef::from(object).erase()
}

/// Kind (group and kind) of an owner, which picks the trigger stream.
type KindKey = (String, String);

fn kind_key(owner: &Owner) -> KindKey {
    (owner.dyntype.group.clone(), owner.dyntype.kind.clone())
}

pub struct Sweeper {
    /// Every registration, by owner. The owner is shared with each pass's list of what to
    /// ask (one `Arc` per owner, not a copy of its name and kind per pass).
    entries: Mutex<HashMap<Arc<Owner>, Registration>>,
    /// One trigger channel per owner kind, made by [`Sweeper::triggers`].
    triggers: Mutex<HashMap<KindKey, mpsc::UnboundedSender<Owner>>>,
}

impl Sweeper {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            entries: Mutex::new(HashMap::new()),
            triggers: Mutex::new(HashMap::new()),
        })
    }

    /// The owners of kind `K` the sweeper wants reconciled; one stream per kind (a second
    /// call replaces the first).
    pub fn triggers<K: Resource<DynamicType = ()>>(
        &self,
    ) -> impl Stream<Item = ObjectRef<K>> + Send + 'static {
        let (tx, mut rx) = mpsc::unbounded_channel::<Owner>();
        let key = (K::group(&()).into_owned(), K::kind(&()).into_owned());
        self.triggers
            .lock()
            .expect("sweeper poisoned")
            .insert(key, tx);
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).map(|owner| {
            let object = ObjectRef::<K>::new(&owner.name);
            match owner.namespace {
                Some(namespace) => object.within(&namespace),
                None => object,
            }
        })
    }

    /// Follows `instances` for `owner`, in place of what it registered before (an owner
    /// that moved on to a new instance is not triggered by the old one going away).
    pub fn register(&self, owner: Owner, client: Arc<dyn Cloud>, instances: &[Instance]) {
        let now = Instant::now();
        let instances = instances
            .iter()
            .map(|instance| Followed {
                instance_id: instance.instance_id.clone(),
                fingerprint: Fingerprint::of(instance),
                confirmed: now,
            })
            .collect();
        self.entries
            .lock()
            .expect("sweeper poisoned")
            .insert(Arc::new(owner), Registration { client, instances });
    }

    /// Stops following every instance of `owner`.
    pub fn unregister(&self, owner: &Owner) {
        self.entries.lock().expect("sweeper poisoned").remove(owner);
    }

    /// Whether `owner` registered `instance_id` and it was seen unchanged within `max_age`.
    pub fn vouches_for(&self, owner: &Owner, instance_id: &str, max_age: Duration) -> bool {
        self.entries
            .lock()
            .expect("sweeper poisoned")
            .get(owner)
            .and_then(|r| r.instances.iter().find(|f| f.instance_id == instance_id))
            .is_some_and(|f| f.confirmed.elapsed() <= max_age)
    }

    /// Registered instances, of all owners.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .expect("sweeper poisoned")
            .values()
            .map(|r| r.instances.len())
            .sum()
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

    /// One pass over all registered instances, one DescribeInstances call (100 IDs) at a
    /// time: only one call's instances are held at once, however many are followed (at
    /// 10,000 instances, holding them all was the largest allocation of a pass).
    pub async fn sweep(&self) {
        for (client, members) in self.groups() {
            for chunk in members.chunks(MAX_IDS_PER_CALL) {
                self.sweep_call(client.as_ref(), chunk).await;
            }
        }
    }

    /// Asks about `members` in one call; triggers the owners of what changed or is gone,
    /// confirms the rest.
    async fn sweep_call(&self, client: &dyn Cloud, members: &[Member]) {
        let ids: Vec<String> = members.iter().map(|m| m.instance_id.clone()).collect();
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
                for member in members {
                    self.trigger(&member.owner);
                }
                return;
            }
        };
        let by_id: HashMap<&str, &Instance> =
            found.iter().map(|i| (i.instance_id.as_str(), i)).collect();
        let mut unchanged = Vec::with_capacity(members.len());
        for member in members {
            let changed = by_id
                .get(member.instance_id.as_str())
                .is_none_or(|i| Fingerprint::of(i) != member.fingerprint);
            if changed {
                debug!(instance_id = %member.instance_id, "instance changed since last sweep");
                self.trigger(&member.owner);
            } else {
                unchanged.push((member.owner.as_ref(), member.instance_id.as_str()));
            }
        }
        self.confirm(&unchanged, swept_at);
    }

    /// Records that these instances were seen unchanged by the call sent at `at`.
    fn confirm(&self, seen: &[(&Owner, &str)], at: Instant) {
        let mut entries = self.entries.lock().expect("sweeper poisoned");
        for (owner, id) in seen {
            // An instance the owner no longer registers (it moved on) is not confirmed.
            let followed = entries
                .get_mut(*owner)
                .and_then(|r| r.instances.iter_mut().find(|f| f.instance_id == *id));
            if let Some(followed) = followed {
                followed.confirmed = followed.confirmed.max(at);
            }
        }
    }

    fn trigger(&self, owner: &Owner) {
        // A triggered owner polls on its own until it is Ready and registers again.
        self.unregister(owner);
        let key = kind_key(owner);
        let triggers = self.triggers.lock().expect("sweeper poisoned");
        match triggers.get(&key) {
            Some(tx) => {
                let _ = tx.send(owner.clone());
            }
            None => debug!(kind = %key.1, "no controller takes triggers for this kind"),
        }
    }

    /// What a pass asks about, grouped by client (credentials and region).
    fn groups(&self) -> Vec<(Arc<dyn Cloud>, Vec<Member>)> {
        let entries = self.entries.lock().expect("sweeper poisoned");
        // Keyed by the client's address, without the vtable part of the fat pointer.
        let mut groups: HashMap<*const (), (Arc<dyn Cloud>, Vec<Member>)> = HashMap::new();
        for (owner, registration) in entries.iter() {
            let group = &mut groups
                .entry(Arc::as_ptr(&registration.client).cast::<()>())
                .or_insert_with(|| (registration.client.clone(), Vec::new()))
                .1;
            group.extend(registration.instances.iter().map(|f| Member {
                owner: owner.clone(),
                instance_id: f.instance_id.clone(),
                fingerprint: f.fingerprint,
            }));
        }
        groups.into_values().collect()
    }
}

/// One instance a pass asks about, and who follows it.
struct Member {
    owner: Arc<Owner>,
    instance_id: String,
    fingerprint: Fingerprint,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CvmInstance;
    use crate::cloud::{Clouds, TencentClouds};
    use crate::cloud::{Modification, Offering};
    use futures::FutureExt;
    use futures::future::BoxFuture;
    use tencent_cloud::config::ClientConfig;
    use tencent_cloud::credentials::Credentials;
    use tencent_cloud::error::CloudError;
    use tencent_cloud::pool::ClientPool;
    use tencent_cloud::types::RunInstancesRequest;

    fn client() -> Arc<dyn Cloud> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pool = ClientPool::new(ClientConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        })
        .unwrap();
        TencentClouds::new(pool).get(&Credentials::new("AKID1", "k1"), "ap-guangzhou")
    }

    fn instance(id: &str) -> Instance {
        Instance {
            instance_id: id.into(),
            instance_state: "RUNNING".into(),
            ..Default::default()
        }
    }

    fn web_1() -> Owner {
        ObjectRef::<CvmInstance>::new("web-1")
            .within("team-a")
            .erase()
    }

    #[tokio::test]
    async fn vouches_only_for_the_registered_instance_while_fresh() {
        let sweeper = Sweeper::new();
        let object = web_1();
        let minute = Duration::from_secs(60);
        assert!(!sweeper.vouches_for(&object, "ins-1", minute));

        sweeper.register(object.clone(), client(), &[instance("ins-1")]);
        assert!(sweeper.vouches_for(&object, "ins-1", minute));
        assert!(!sweeper.vouches_for(&object, "ins-2", minute));
        assert!(!sweeper.vouches_for(&object, "ins-1", Duration::ZERO));

        sweeper.unregister(&object);
        assert!(!sweeper.vouches_for(&object, "ins-1", minute));
    }

    #[tokio::test]
    async fn confirming_a_replaced_registration_does_not_refresh_it() {
        let sweeper = Sweeper::new();
        let object = web_1();
        sweeper.register(object.clone(), client(), &[instance("ins-1")]);
        sweeper.register(object.clone(), client(), &[instance("ins-2")]);
        let confirmed = |id: &str| {
            sweeper.entries.lock().unwrap()[&object]
                .instances
                .iter()
                .find(|f| f.instance_id == id)
                .map(|f| f.confirmed)
        };
        assert_eq!(
            confirmed("ins-1"),
            None,
            "a new registration replaces the old set"
        );
        let registered = confirmed("ins-2").unwrap();
        // A sweep that saw the previous instance must not vouch for the new one.
        sweeper.confirm(&[(&object, "ins-1")], registered + Duration::from_secs(5));
        assert_eq!(confirmed("ins-2"), Some(registered));
        sweeper.confirm(&[(&object, "ins-2")], registered + Duration::from_secs(5));
        assert!(confirmed("ins-2").unwrap() > registered);
    }

    #[tokio::test]
    async fn one_owner_follows_many_instances_and_is_triggered_on_its_kind() {
        let sweeper = Sweeper::new();
        let mut triggers = Box::pin(sweeper.triggers::<CvmInstance>());
        let object = web_1();
        sweeper.register(
            object.clone(),
            client(),
            &[instance("ins-1"), instance("ins-2")],
        );
        assert_eq!(sweeper.len(), 2);
        assert!(sweeper.vouches_for(&object, "ins-1", Duration::from_secs(60)));
        assert!(sweeper.vouches_for(&object, "ins-2", Duration::from_secs(60)));

        sweeper.trigger(&object);
        let triggered = triggers.next().await.unwrap();
        assert_eq!(
            triggered,
            ObjectRef::<CvmInstance>::new("web-1").within("team-a")
        );
        assert!(sweeper.is_empty(), "a triggered owner stops being followed");
    }

    /// Answers DescribeInstances from `instances`, recording the IDs of each call; the
    /// second call fails whole.
    struct DescribeOnly {
        instances: Vec<Instance>,
        calls: Mutex<Vec<Vec<String>>>,
    }

    impl Cloud for DescribeOnly {
        fn describe_instances<'a>(
            &'a self,
            ids: &'a [String],
        ) -> BoxFuture<'a, Result<Vec<Instance>, CloudError>> {
            let mut calls = self.calls.lock().unwrap();
            calls.push(ids.to_vec());
            let refused = calls.len() == 2;
            let found = self
                .instances
                .iter()
                .filter(|i| ids.contains(&i.instance_id))
                .cloned()
                .collect();
            Box::pin(async move {
                if refused {
                    return Err(CloudError::Api {
                        action: "DescribeInstances".into(),
                        code: "InternalError".into(),
                        message: "try again".into(),
                        request_id: "r".into(),
                    });
                }
                Ok(found)
            })
        }
        fn run_instances<'a>(
            &'a self,
            _: &'a RunInstancesRequest,
        ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
            unreachable!("sweeps describe only")
        }
        fn describe_instance<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<Instance>, CloudError>> {
            unreachable!("sweeps describe only")
        }
        fn find_instances_by_tag<'a>(
            &'a self,
            _: &'a str,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Vec<Instance>, CloudError>> {
            unreachable!("sweeps describe only")
        }
        fn terminate_instances<'a>(
            &'a self,
            _: &'a [tencent_cloud::types::ToTerminate],
        ) -> BoxFuture<'a, Result<(), CloudError>> {
            unreachable!("sweeps describe only")
        }
        fn change_instance<'a>(
            &'a self,
            _: &'a str,
            _: &'a Modification,
        ) -> BoxFuture<'a, Result<Option<String>, CloudError>> {
            unreachable!("sweeps describe only")
        }
        fn zone_offerings<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Vec<Offering>, CloudError>> {
            unreachable!("sweeps describe only")
        }
    }

    #[tokio::test]
    async fn a_pass_asks_100_ids_a_call_and_a_failed_call_triggers_only_its_own() {
        let id = |n: usize| format!("ins-{n:03}");
        let owner = |n: usize| {
            ObjectRef::<CvmInstance>::new(&format!("child-{n:03}"))
                .within("team-a")
                .erase()
        };
        // 250 followed; one stopped in the console, one gone, and the second call fails.
        let mut now: Vec<Instance> = (0..250).map(|n| instance(&id(n))).collect();
        now[7].instance_state = "STOPPED".into();
        now.retain(|i| i.instance_id != id(42));
        let cloud = Arc::new(DescribeOnly {
            instances: now,
            calls: Mutex::new(Vec::new()),
        });
        let sweeper = Sweeper::new();
        let mut triggers = Box::pin(sweeper.triggers::<CvmInstance>());
        for n in 0..250 {
            let client: Arc<dyn Cloud> = cloud.clone();
            sweeper.register(owner(n), client, &[instance(&id(n))]);
        }

        sweeper.sweep().await;

        let calls = cloud.calls.lock().unwrap().clone();
        let mut sizes: Vec<usize> = calls.iter().map(Vec::len).collect();
        sizes.sort_unstable();
        assert_eq!(
            sizes,
            [50, 100, 100],
            "ceil(250/100) calls of at most 100 IDs"
        );
        let mut triggered = std::collections::BTreeSet::new();
        while let Some(Some(object)) = triggers.next().now_or_never() {
            triggered.insert(object.name);
        }
        // The failed call's members find out for themselves; of the others, only the
        // stopped and the gone one.
        let child = |id: &str| format!("child-{}", &id["ins-".len()..]);
        let mut expected: std::collections::BTreeSet<String> =
            calls[1].iter().map(|id| child(id)).collect();
        expected.extend([child(&id(7)), child(&id(42))]);
        assert_eq!(triggered, expected);
        assert_eq!(
            sweeper.len(),
            250 - expected.len(),
            "the triggered stop being followed"
        );
        let confirmed = (0..250)
            .find(|&n| !expected.contains(&child(&id(n))))
            .unwrap();
        assert!(sweeper.vouches_for(&owner(confirmed), &id(confirmed), Duration::from_secs(60)));
    }

    #[test]
    fn console_edits_of_governed_fields_change_the_fingerprint() {
        let before = instance("ins-1");
        let same = Fingerprint::of(&before.clone());
        assert_eq!(Fingerprint::of(&before), same);
        let edits: [fn(&mut Instance); 6] = [
            |i| i.instance_name = Some("renamed".into()),
            |i| i.security_group_ids = vec!["sg-2".into(), "sg-1".into()],
            |i| i.instance_type = Some("S5.LARGE8".into()),
            |i| i.instance_state = "STOPPED".into(),
            |i| {
                i.tags.push(tencent_cloud::types::Tag {
                    key: "team".into(),
                    value: "b".into(),
                })
            },
            |i| i.latest_operation_state = Some("OPERATING".into()),
        ];
        for edit in edits {
            let mut edited = before.clone();
            edit(&mut edited);
            assert_ne!(Fingerprint::of(&edited), same, "{edited:?}");
        }
        // Order is priority for security groups: a reorder is a change too.
        let mut one = before.clone();
        one.security_group_ids = vec!["sg-1".into(), "sg-2".into()];
        let mut other = before;
        other.security_group_ids = vec!["sg-2".into(), "sg-1".into()];
        assert_ne!(Fingerprint::of(&one), Fingerprint::of(&other));
    }
}
