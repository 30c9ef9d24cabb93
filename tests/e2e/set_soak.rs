//! kill -9 soak of a CvmInstanceSet: the operator is SIGKILLed at random moments while the
//! set scales up and down in batches, and restarted each time. Whatever the moments, the set
//! ends each round with exactly its replicas: every running machine has one child, nothing
//! was launched twice (every instance the simulator ever held is counted), nothing leaks.
//!
//! The moments come from a seed printed at the start; `CVM_SOAK_SEED=<seed>` replays a run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::env::{Operator, TestEnv};
use crate::instance_set::{children, example, ready_with, running, scale};
use crate::support::wait_for;
use cvm_sim::faults::FaultSpec;

/// xorshift64*: enough to spread kill moments; reproducible from the printed seed.
struct Moments(u64);

impl Moments {
    fn from_env_or_clock() -> Moments {
        let seed = std::env::var("CVM_SOAK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("set soak: CVM_SOAK_SEED={seed}");
        Moments(seed)
    }

    fn below(&mut self, bound_ms: u64) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        Duration::from_millis(self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound_ms)
    }
}

/// Every instance the simulator holds, recorded every 100 ms until dropped: an instance
/// lives at least its 1 s of PENDING, so none is missed.
struct Census {
    seen: Arc<Mutex<BTreeMap<String, Option<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Census {
    fn start(env: &TestEnv) -> Census {
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let admin = env.sim.admin.clone();
        let into = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(instances) = admin.instances().await {
                    let mut seen = into.lock().unwrap();
                    for i in instances {
                        seen.entry(i.instance_id).or_insert(i.client_token);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Census { seen, task }
    }

    fn launched(&self) -> BTreeMap<String, Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Census {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Each round's running machines are exactly its children's, one child each.
async fn exactly(env: &TestEnv, replicas: usize) {
    wait_for(
        &format!("exactly {replicas} machines running"),
        Duration::from_secs(60),
        || async { (running(env).await == replicas).then_some(()) },
    )
    .await;
    let live: BTreeSet<String> = env
        .sim
        .instances()
        .await
        .into_iter()
        .filter(|i| !matches!(i.instance_state.as_str(), "TERMINATING" | "TERMINATED"))
        .map(|i| i.instance_id)
        .collect();
    let kids = children(env).await;
    let adopted: BTreeSet<String> = kids
        .iter()
        .filter(|k| k.metadata.deletion_timestamp.is_none())
        .filter_map(|k| k.spec.instance_id.clone())
        .collect();
    assert_eq!(
        adopted, live,
        "every running machine has its child, no more"
    );
}

#[tokio::test]
async fn a_set_killed_at_random_moments_ends_with_exactly_its_replicas_and_no_leak() {
    let mut env = TestEnv::start("set-soak").await;
    let mut moments = Moments::from_env_or_clock();
    let census = Census::start(&env);
    // Each RunInstances is handled at once but answered 400 ms later: a kill in that window
    // leaves a launch recorded and unanswered, the case the write-ahead record is for.
    env.sim
        .admin
        .add_fault(&FaultSpec {
            action: Some("RunInstances".to_string()),
            code: None,
            message: None,
            rate: 1.0,
            count: None,
            latency_ms: None,
            drop_connection: false,
            response_delay_ms: Some(400),
        })
        .await
        .unwrap();
    // Ten per call, so growing by 30 is three launches to be killed in.
    env.apply_yaml_ok(
        &example()
            .replace("  replicas: 3", "  replicas: 10")
            .replace("maxPerCall: 100", "maxPerCall: 10"),
    );
    ready_with(&env, 10).await;

    let mut kills = 0;
    let mut grown = 10;
    let mut replicas = 10;
    for target in [40, 15, 30, 5] {
        if target > replicas {
            grown += target - replicas;
        }
        replicas = target;
        scale(&env, replicas as u32);
        for _ in 0..2 {
            // Not a wait for anything: the moment of the kill, drawn from the seed.
            tokio::time::sleep(moments.below(2_500)).await;
            env.operator.as_ref().unwrap().kill();
            kills += 1;
            env.operator = Some(Operator::start_named(
                &env.dir,
                &format!("operator-{kills}"),
                &env.sim.endpoint,
                &env.namespace,
                false,
                &[],
            ));
        }
        ready_with(&env, replicas as i32).await;
        exactly(&env, replicas).await;
    }

    let launched = census.launched();
    assert_eq!(
        launched.len(),
        grown,
        "one machine per replica ever asked for, none twice ({kills} kills): {launched:?}"
    );
    let mut per_token: BTreeMap<Option<String>, usize> = BTreeMap::new();
    for token in launched.values() {
        *per_token.entry(token.clone()).or_default() += 1;
    }
    assert!(
        per_token
            .iter()
            .all(|(token, n)| token.is_some() && *n <= 10),
        "every machine from a recorded launch of at most 10: {per_token:?}"
    );
}
