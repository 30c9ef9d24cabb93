//! The CVM client against `cvm-sim` over real HTTP on loopback.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cvm_sim::config::{AccountConfig, DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Timing};
use cvm_sim::faults::FaultSpec;
use cvm_sim::{Server, ServerHandle, SimAdmin, SimConfig};
use tencent_cloud::modify::{
    DiskSize, InstanceAttribute, ResetInstanceRequest, ResizeInstanceDisksRequest, StopType,
    StoppedMode,
};
use tencent_cloud::types::{
    Instance, InstanceMarketOptions, InternetAccessible, LoginSettings, Placement,
    RunInstancesRequest, SpotOptions, Tag, TagSpecification, ToTerminate,
};
use tencent_cloud::{ApiObserver, ClientConfig, ClientPool, Credentials, CvmClient, ErrorClass};

const REGION: &str = "ap-guangzhou";
const UID_TAG: &str = "cvm-operator.io/uid";
const POSTPAID: &str = "POSTPAID_BY_HOUR";

struct Sim {
    endpoint: String,
    admin: SimAdmin,
    handle: ServerHandle,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

async fn start_sim(config: SimConfig) -> Sim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (addr, handle) = Server::bind(config, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("cvm-sim binds");
    let endpoint = format!("http://{addr}");
    Sim {
        admin: SimAdmin::new(endpoint.clone()),
        endpoint,
        handle,
    }
}

/// A simulator whose instances boot and go in fractions of a second.
async fn start_fast_sim() -> Sim {
    start_sim(SimConfig {
        timing: fast_timing(),
        ..Default::default()
    })
    .await
}

fn fast_timing() -> Timing {
    Timing {
        pending_seconds: 0.3,
        public_ip_delay_seconds: 0.2,
        terminating_seconds: 0.3,
        operation_seconds: 0.0,
    }
}

fn sim_credentials() -> Credentials {
    Credentials::new(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY)
}

fn client_config(sim: &Sim) -> ClientConfig {
    ClientConfig {
        endpoint: Some(sim.endpoint.clone()),
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
        ..Default::default()
    }
}

fn client(config: ClientConfig) -> Arc<CvmClient> {
    ClientPool::new(config)
        .unwrap()
        .get(&sim_credentials(), REGION)
}

fn run_request(uid: &str) -> RunInstancesRequest {
    RunInstancesRequest {
        instance_charge_type: Some("POSTPAID_BY_HOUR".into()),
        placement: Placement {
            zone: "ap-guangzhou-3".into(),
            ..Default::default()
        },
        instance_type: Some("S5.MEDIUM2".into()),
        image_id: "img-eb30mz89".into(),
        internet_accessible: Some(InternetAccessible {
            internet_charge_type: Some("TRAFFIC_POSTPAID_BY_HOUR".into()),
            internet_max_bandwidth_out: Some(10),
            public_ip_assigned: Some(true),
        }),
        instance_count: Some(1),
        client_token: Some(format!("cvmop-{uid}-0")),
        tag_specification: vec![TagSpecification {
            resource_type: "instance".into(),
            tags: vec![Tag::new(UID_TAG, uid)],
        }],
        ..Default::default()
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or fails after `limit`.
async fn eventually<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, String)>>,
    waits: Mutex<Vec<Duration>>,
}

impl ApiObserver for Recorder {
    fn api_call(&self, action: &str, outcome: &str, _elapsed: Duration) {
        self.calls
            .lock()
            .unwrap()
            .push((action.into(), outcome.into()));
    }
    fn rate_limit_wait(&self, _action: &str, waited: Duration) {
        self.waits.lock().unwrap().push(waited);
    }
}

impl Recorder {
    fn count(&self, action: &str, outcome: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(a, o)| a == action && o == outcome)
            .count()
    }
}

#[tokio::test]
async fn lifecycle_run_describe_find_terminate() {
    let sim = start_fast_sim().await;
    let client = client(client_config(&sim));

    let ids = client
        .run_instances(&run_request("uid-life"))
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    let id = ids[0].clone();
    assert!(id.starts_with("ins-"), "{id}");

    let running = eventually(
        Duration::from_secs(10),
        "RUNNING with a public IP",
        || async {
            let instance = client.describe_instance(&id).await.unwrap()?;
            (instance.instance_state == "RUNNING" && !instance.public_ip_addresses.is_empty())
                .then_some(instance)
        },
    )
    .await;
    assert!(!running.private_ip_addresses.is_empty());
    assert_eq!(running.tag(UID_TAG), Some("uid-life"));

    let found = client
        .find_instances_by_tag(UID_TAG, "uid-life")
        .await
        .unwrap();
    assert_eq!(
        found
            .iter()
            .map(|i| i.instance_id.as_str())
            .collect::<Vec<_>>(),
        vec![id.as_str()]
    );
    assert!(
        client
            .find_instances_by_tag(UID_TAG, "nobody")
            .await
            .unwrap()
            .is_empty()
    );

    // The same ClientToken returns the same instance rather than a second one.
    assert_eq!(
        client
            .run_instances(&run_request("uid-life"))
            .await
            .unwrap(),
        vec![id.clone()]
    );

    client.terminate_instance(&id, POSTPAID).await.unwrap();
    // Terminating again while it is on its way out counts as done.
    client.terminate_instance(&id, POSTPAID).await.unwrap();
    eventually(
        Duration::from_secs(10),
        "the instance to vanish",
        || async {
            client
                .describe_instance(&id)
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    // And once it is gone, too.
    client.terminate_instance(&id, POSTPAID).await.unwrap();
    assert!(
        sim.admin
            .instances()
            .await
            .unwrap()
            .iter()
            .all(|i| i.instance_id != id)
    );
}

#[tokio::test]
async fn spot_request_is_accepted_with_string_max_price() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(client_config(&sim));
    let mut request = run_request("uid-spot");
    request.instance_charge_type = Some("SPOTPAID".into());
    request.instance_market_options = Some(InstanceMarketOptions {
        market_type: "spot".into(),
        spot_options: SpotOptions {
            max_price: "10.5".into(),
            spot_instance_type: Some("one-time".into()),
        },
    });
    let ids = client.run_instances(&request).await.unwrap();
    let listed = sim.admin.instances().await.unwrap();
    let instance = listed.iter().find(|i| i.instance_id == ids[0]).unwrap();
    assert_eq!(instance.instance_charge_type, "SPOTPAID");
    assert_eq!(instance.client_token.as_deref(), Some("cvmop-uid-spot-0"));
}

#[tokio::test]
async fn spot_request_without_a_bid_is_accepted_at_the_market_price() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(client_config(&sim));
    let mut request = run_request("uid-spot-market");
    request.instance_charge_type = Some("SPOTPAID".into());
    request.instance_market_options = None;
    let ids = client.run_instances(&request).await.unwrap();
    assert_eq!(ids.len(), 1);
    let listed = sim.admin.instances().await.unwrap();
    let instance = listed.iter().find(|i| i.instance_id == ids[0]).unwrap();
    assert_eq!(instance.instance_charge_type, "SPOTPAID");
}

#[tokio::test]
async fn the_tag_service_reads_instance_tags_signed_for_its_own_scope() {
    let sim = start_sim(SimConfig::default()).await;
    let pool = ClientPool::new(client_config(&sim)).unwrap();
    let cvm = pool.get(&sim_credentials(), REGION);
    let mut request = run_request("uid-tagged");
    request.instance_count = Some(60);
    request.tag_specification[0]
        .tags
        .push(Tag::new("team", "web"));
    let mut ids = cvm.run_instances(&request).await.unwrap();
    ids.push("ins-00000000".into());

    sim.admin.reset_counters().await.unwrap();
    let tags = pool
        .tags(&sim_credentials(), REGION)
        .instance_tags(&ids)
        .await
        .unwrap();
    assert_eq!(tags.len(), 60, "every instance, and not the unknown one");
    for id in &ids[..60] {
        assert_eq!(tags[id].get("team").map(String::as_str), Some("web"));
        assert_eq!(
            tags[id].get(UID_TAG).map(String::as_str),
            Some("uid-tagged")
        );
    }
    // 61 IDs in chunks of 50 and 11, two tags each: 100 tags in two pages of 50, then 20.
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(
        counters.get("DescribeResourceTagsByResourceIds", "Success"),
        3,
        "{counters:?}"
    );
}

#[tokio::test]
async fn wrong_key_is_a_credentials_error_with_request_id() {
    let sim = start_sim(SimConfig::default()).await;
    let pool = ClientPool::new(client_config(&sim)).unwrap();
    let client = pool.get(&Credentials::new(DEFAULT_SECRET_ID, "not-the-key"), REGION);
    let err = client.describe_instance("ins-abcdefgh").await.unwrap_err();
    assert_eq!(err.code(), "AuthFailure.SignatureFailure");
    assert_eq!(err.class(), ErrorClass::Credentials);
    assert!(err.needs_person());
    assert!(!err.request_id().unwrap_or("").is_empty());
    assert!(!err.to_string().contains("not-the-key"));
}

#[tokio::test]
async fn session_token_is_sent_as_x_tc_token() {
    let account = AccountConfig {
        secret_id: "AKIDtemporary00000000000000000000000".into(),
        secret_key: "temporarykey".into(),
        token: Some("sts-session-token".into()),
        ..Default::default()
    };
    let sim = start_sim(SimConfig {
        accounts: vec![account],
        ..Default::default()
    })
    .await;
    let pool = ClientPool::new(client_config(&sim)).unwrap();
    let base = Credentials::new("AKIDtemporary00000000000000000000000", "temporarykey");
    let with_token = pool.get(&base.clone().with_token("sts-session-token"), REGION);
    assert_eq!(
        with_token.describe_instance("ins-abcdefgh").await.unwrap(),
        None
    );
    let without = pool.get(&base, REGION);
    let err = without.describe_instance("ins-abcdefgh").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Credentials, "{err}");
}

#[tokio::test]
async fn concurrent_lookups_are_batched_into_calls_of_100() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(client_config(&sim));
    let mut request = run_request("uid-batch");
    request.instance_count = Some(30);
    let ids = client.run_instances(&request).await.unwrap();
    assert_eq!(ids.len(), 30);
    // 250 lookups: the 30 real IDs and 220 unknown ones.
    let mut wanted: Vec<String> = ids.clone();
    wanted.extend((0..220).map(|i| format!("ins-{i:08}")));
    sim.admin.reset_counters().await.unwrap();

    let results =
        futures::future::join_all(wanted.iter().map(|id| client.describe_instance(id))).await;
    for (id, result) in wanted.iter().zip(results) {
        let found = result.unwrap();
        assert_eq!(found.is_some(), ids.contains(id), "{id}");
        if let Some(instance) = found {
            assert_eq!(&instance.instance_id, id);
        }
    }
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(
        counters.get("DescribeInstances", "Success"),
        3,
        "{counters:?}"
    );
}

#[tokio::test]
async fn batching_off_sends_one_call_per_lookup() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(ClientConfig {
        batching: false,
        ..client_config(&sim)
    });
    let wanted: Vec<String> = (0..20).map(|i| format!("ins-{i:08}")).collect();
    let results =
        futures::future::join_all(wanted.iter().map(|id| client.describe_instance(id))).await;
    assert!(results.into_iter().all(|r| r.unwrap().is_none()));
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(
        counters.get("DescribeInstances", "Success"),
        20,
        "{counters:?}"
    );
}

#[tokio::test]
async fn tag_lookups_share_calls_five_values_each() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(client_config(&sim));
    let mut ids = HashMap::new();
    for n in 0..3 {
        let uid = format!("uid-tag-{n}");
        ids.insert(
            uid.clone(),
            client.run_instances(&run_request(&uid)).await.unwrap()[0].clone(),
        );
    }
    sim.admin.reset_counters().await.unwrap();
    let uids: Vec<String> = (0..10).map(|n| format!("uid-tag-{n}")).collect();
    let results = futures::future::join_all(
        uids.iter()
            .map(|uid| client.find_instances_by_tag(UID_TAG, uid)),
    )
    .await;
    for (uid, result) in uids.iter().zip(results) {
        let found: Vec<String> = result.unwrap().into_iter().map(|i| i.instance_id).collect();
        let want: Vec<String> = ids.get(uid).cloned().into_iter().collect();
        assert_eq!(found, want, "{uid}");
    }
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(
        counters.get("DescribeInstances", "Success"),
        2,
        "{counters:?}"
    );
}

#[tokio::test]
async fn batched_termination_skips_instances_already_gone() {
    let sim = start_fast_sim().await;
    let client = client(client_config(&sim));
    let mut request = run_request("uid-term");
    request.instance_count = Some(40);
    let ids = client.run_instances(&request).await.unwrap();
    eventually(Duration::from_secs(10), "all RUNNING", || async {
        let all = client.describe_instances(&ids).await.unwrap();
        all.iter()
            .all(|i| i.instance_state == "RUNNING")
            .then_some(())
    })
    .await;
    // One is already on its way out; one never existed.
    client.terminate_instance(&ids[0], POSTPAID).await.unwrap();
    let mut targets = ids.clone();
    targets.push("ins-00000000".into());
    sim.admin.reset_counters().await.unwrap();
    let results = futures::future::join_all(
        targets
            .iter()
            .map(|id| client.terminate_instance(id, POSTPAID)),
    )
    .await;
    for (id, result) in targets.iter().zip(results) {
        result.unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    let counters = sim.admin.counters().await.unwrap();
    let calls: u64 = counters
        .calls
        .get("TerminateInstances")
        .map_or(0, |m| m.values().sum());
    // Halving isolates the two refusals: far fewer calls than one per instance.
    assert!(calls < targets.len() as u64, "{counters:?}");
    wait_all_gone(&client, &ids).await;
}

/// Waits until DescribeInstances knows none of `ids`.
async fn wait_all_gone(client: &CvmClient, ids: &[String]) {
    eventually(Duration::from_secs(10), "all gone", || async {
        client
            .describe_instances(ids)
            .await
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
}

/// Launches `count` RUNNING instances of the charge type; returns them as described.
async fn running_instances(
    client: &CvmClient,
    uid: &str,
    charge_type: &str,
    count: i64,
) -> Vec<tencent_cloud::types::Instance> {
    let mut request = run_request(uid);
    request.instance_charge_type = Some(charge_type.into());
    request.instance_count = Some(count);
    let ids = client.run_instances(&request).await.unwrap();
    eventually(Duration::from_secs(10), "all RUNNING", || async {
        let all = client.describe_instances(&ids).await.unwrap();
        (all.len() == ids.len() && all.iter().all(|i| i.instance_state == "RUNNING")).then_some(all)
    })
    .await
}

/// Exactly two TerminateInstances calls (pay-as-you-go, spot), none refused.
async fn assert_one_successful_call_per_charge_type(sim: &Sim) {
    let counters = sim.admin.counters().await.unwrap();
    let outcomes = counters
        .calls
        .get("TerminateInstances")
        .cloned()
        .unwrap_or_default();
    assert_eq!(outcomes.get("Success"), Some(&2), "{outcomes:?}");
    assert_eq!(outcomes.len(), 1, "refused calls: {outcomes:?}");
}

#[tokio::test]
async fn concurrent_terminations_of_mixed_charge_types_are_never_refused() {
    let sim = start_fast_sim().await;
    let client = client(client_config(&sim));
    let postpaid = running_instances(&client, "uid-mixed-p", POSTPAID, 30).await;
    let spot = running_instances(&client, "uid-mixed-s", "SPOTPAID", 30).await;
    sim.admin.reset_counters().await.unwrap();

    // One deletion per instance, all at once and interleaved, as concurrent reconciles do.
    let all: Vec<_> = postpaid
        .iter()
        .zip(&spot)
        .flat_map(|(p, s)| [p, s])
        .collect();
    let singles = futures::future::join_all(all.iter().step_by(2).map(|i| {
        client.terminate_instance(&i.instance_id, i.instance_charge_type.as_deref().unwrap())
    }));
    let rest: Vec<_> = all
        .iter()
        .skip(1)
        .step_by(2)
        .map(|i| ToTerminate::from(*i))
        .collect();
    let (singles, rest) = futures::join!(singles, client.terminate_instances(&rest));
    for result in singles {
        result.unwrap();
    }
    rest.unwrap();

    // One call per charge type: the interleaved requests were batched apart.
    assert_one_successful_call_per_charge_type(&sim).await;
    let ids: Vec<String> = all.iter().map(|i| i.instance_id.clone()).collect();
    wait_all_gone(&client, &ids).await;
}

#[tokio::test]
async fn unbatched_termination_of_mixed_charge_types_is_split_by_charge_type() {
    let sim = start_fast_sim().await;
    let client = client(ClientConfig {
        batching: false,
        ..client_config(&sim)
    });
    let mut instances = running_instances(&client, "uid-unbatched-p", POSTPAID, 3).await;
    instances.extend(running_instances(&client, "uid-unbatched-s", "SPOTPAID", 3).await);
    sim.admin.reset_counters().await.unwrap();
    let doomed: Vec<ToTerminate> = instances.iter().map(ToTerminate::from).collect();
    client.terminate_instances(&doomed).await.unwrap();
    assert_one_successful_call_per_charge_type(&sim).await;
}

#[tokio::test]
async fn transient_errors_are_retried_with_the_same_client_token() {
    let sim = start_sim(SimConfig::default()).await;
    let recorder = Arc::new(Recorder::default());
    let client = client(ClientConfig {
        observer: Some(recorder.clone()),
        ..client_config(&sim)
    });
    sim.admin
        .add_fault(&FaultSpec {
            action: Some("RunInstances".into()),
            code: Some("InternalError".into()),
            message: None,
            rate: 1.0,
            count: Some(2),
            latency_ms: None,
            drop_connection: false,
            response_delay_ms: None,
        })
        .await
        .unwrap();
    let ids = client
        .run_instances(&run_request("uid-retry"))
        .await
        .unwrap();
    assert_eq!(ids.len(), 1);
    assert_eq!(recorder.count("RunInstances", "InternalError"), 2);
    assert_eq!(recorder.count("RunInstances", "Success"), 1);
    let owned: Vec<_> = sim
        .admin
        .instances()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.client_token.as_deref() == Some("cvmop-uid-retry-0"))
        .collect();
    assert_eq!(owned.len(), 1);
}

#[tokio::test]
async fn run_instances_without_token_is_not_retried_after_internal_error() {
    let sim = start_sim(SimConfig::default()).await;
    let client = client(client_config(&sim));
    sim.admin
        .add_fault(&FaultSpec {
            action: Some("RunInstances".into()),
            code: Some("InternalError".into()),
            message: None,
            rate: 1.0,
            count: Some(1),
            latency_ms: None,
            drop_connection: false,
            response_delay_ms: None,
        })
        .await
        .unwrap();
    let mut request = run_request("uid-no-token");
    request.client_token = None;
    let err = client.run_instances(&request).await.unwrap_err();
    assert_eq!(err.code(), "InternalError");
    assert_eq!(
        sim.admin
            .counters()
            .await
            .unwrap()
            .get("RunInstances", "InternalError"),
        1
    );
}

#[tokio::test]
async fn dropped_connection_is_a_retried_network_error() {
    let sim = start_sim(SimConfig::default()).await;
    let recorder = Arc::new(Recorder::default());
    let client = client(ClientConfig {
        observer: Some(recorder.clone()),
        ..client_config(&sim)
    });
    sim.admin
        .add_fault(&FaultSpec {
            action: Some("DescribeInstances".into()),
            code: None,
            message: None,
            rate: 1.0,
            count: Some(1),
            latency_ms: None,
            drop_connection: true,
            response_delay_ms: None,
        })
        .await
        .unwrap();
    assert_eq!(
        client.describe_instance("ins-abcdefgh").await.unwrap(),
        None
    );
    assert_eq!(
        recorder.count("DescribeInstances", "ClientError.NetworkError"),
        1
    );
}

#[tokio::test]
async fn client_limits_keep_the_server_from_throttling() {
    let sim = start_sim(SimConfig::default()).await;
    let recorder = Arc::new(Recorder::default());
    // Batching off so that every lookup is its own call: 90 calls against 40/s.
    let client = client(ClientConfig {
        batching: false,
        observer: Some(recorder.clone()),
        ..client_config(&sim)
    });
    let started = std::time::Instant::now();
    let ids: Vec<String> = (0..90).map(|i| format!("ins-{i:08}")).collect();
    let results =
        futures::future::join_all(ids.iter().map(|id| client.describe_instance(id))).await;
    assert!(results.into_iter().all(|r| r.unwrap().is_none()));
    let elapsed = started.elapsed();
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(
        counters.get("DescribeInstances", "RequestLimitExceeded"),
        0,
        "{counters:?}"
    );
    assert_eq!(counters.get("DescribeInstances", "Success"), 90);
    // 90 calls at 40 per 1.05 s need two full windows after the first burst.
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(!recorder.waits.lock().unwrap().is_empty());
}

#[tokio::test]
async fn server_throttling_is_retried_after_a_pause() {
    let sim = start_sim(SimConfig::default()).await;
    let recorder = Arc::new(Recorder::default());
    let client = client(ClientConfig {
        observer: Some(recorder.clone()),
        ..client_config(&sim)
    });
    // Someone else uses the account's quota: the server allows 2/s, we believe 40/s.
    sim.admin
        .set_rate_limits(&HashMap::from([("DescribeInstances".to_string(), 2)]))
        .await
        .unwrap();
    let ids: Vec<String> = (0..6).map(|i| format!("ins-{i:08}")).collect();
    let results = futures::future::join_all(
        ids.iter()
            .map(|id| client.describe_instances(std::slice::from_ref(id))),
    )
    .await;
    assert!(results.into_iter().all(|r| r.unwrap().is_empty()));
    let throttled = recorder.count("DescribeInstances", "RequestLimitExceeded");
    assert!(
        throttled >= 1,
        "the server should have throttled some calls"
    );
    assert_eq!(recorder.count("DescribeInstances", "Success"), 6);
}

/// Describes `id` until its latest operation is `request_id` and has ended.
async fn settled(client: &CvmClient, id: &str, request_id: &str) -> Instance {
    eventually(Duration::from_secs(5), "the operation to end", || async {
        client.describe_instance(id).await.unwrap().filter(|i| {
            i.latest_operation_request_id.as_deref() == Some(request_id)
                && i.latest_operation_state.as_deref() == Some("SUCCESS")
        })
    })
    .await
}

#[tokio::test]
async fn day2_methods_change_the_instance_and_return_its_request_id() {
    let sim = start_fast_sim().await;
    let pool = ClientPool::new(client_config(&sim)).unwrap();
    let client = pool.get(&sim_credentials(), REGION);
    let id = client
        .run_instances(&run_request("uid-day2"))
        .await
        .unwrap()[0]
        .clone();
    let ids = vec![id.clone()];
    let first_ip = eventually(Duration::from_secs(5), "a public IP", || async {
        let i = client.describe_instance(&id).await.unwrap()?;
        i.public_ip_addresses.first().cloned()
    })
    .await;

    let rid = client
        .modify_instances_attribute(&ids, &InstanceAttribute::Name("web-2".into()))
        .await
        .unwrap();
    assert_eq!(
        settled(&client, &id, &rid).await.instance_name.as_deref(),
        Some("web-2")
    );
    let groups = vec!["sg-22222222".to_string(), "sg-11111111".to_string()];
    let rid = client
        .modify_instances_attribute(&ids, &InstanceAttribute::SecurityGroups(groups.clone()))
        .await
        .unwrap();
    assert_eq!(settled(&client, &id, &rid).await.security_group_ids, groups);
    let rid = client
        .modify_instances_attribute(
            &ids,
            &InstanceAttribute::HostName {
                name: "web-2".into(),
                auto_reboot: false,
            },
        )
        .await
        .unwrap();
    settled(&client, &id, &rid).await;
    let rid = client
        .reset_instances_internet_max_bandwidth(&ids, 25)
        .await
        .unwrap();
    let shown = settled(&client, &id, &rid).await;
    assert_eq!(
        shown
            .internet_accessible
            .unwrap()
            .internet_max_bandwidth_out,
        Some(25)
    );
    let rid = client.modify_instances_project(&ids, 3).await.unwrap();
    let shown = settled(&client, &id, &rid).await;
    assert_eq!(shown.placement.unwrap().project_id, Some(3));
    let rid = client
        .resize_instance_disks(&ResizeInstanceDisksRequest {
            instance_id: id.clone(),
            system_disk: Some(DiskSize {
                disk_id: None,
                disk_size: 100,
            }),
            resize_online: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    let shown = settled(&client, &id, &rid).await;
    assert_eq!(shown.system_disk.unwrap().disk_size, Some(100));

    let keys = vec!["skey-11111111".to_string()];
    let refused = client
        .associate_instances_key_pairs(&ids, &keys, false)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "UnsupportedOperation.InstanceStateRunning");
    assert!(
        refused.needs_person(),
        "a stop window or ForceStop is missing"
    );
    let rid = client
        .associate_instances_key_pairs(&ids, &keys, true)
        .await
        .unwrap();
    let shown = settled(&client, &id, &rid).await;
    assert_eq!(shown.login_settings.unwrap().key_ids, keys);
    let rid = client
        .disassociate_instances_key_pairs(&ids, &keys, true)
        .await
        .unwrap();
    let shown = settled(&client, &id, &rid).await;
    assert!(shown.login_settings.unwrap_or_default().key_ids.is_empty());
    let rid = client
        .reset_instances_password(&ids, &"Qcloud@Day2pass".into(), None, true)
        .await
        .unwrap();
    settled(&client, &id, &rid).await;
    let rid = client
        .reset_instances_type(&id, "S5.LARGE8", true)
        .await
        .unwrap();
    let shown = settled(&client, &id, &rid).await;
    assert_eq!(shown.instance_type.as_deref(), Some("S5.LARGE8"));
    assert_eq!(shown.instance_state, "RUNNING");
    let rid = client
        .reset_instance(&ResetInstanceRequest {
            instance_id: id.clone(),
            image_id: Some("img-22222222".into()),
            login_settings: Some(LoginSettings {
                key_ids: keys.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let shown = settled(&client, &id, &rid).await;
    assert_eq!(shown.image_id.as_deref(), Some("img-22222222"));
    assert_eq!(sim.admin.reimage_count(&id).await.unwrap(), 1);
    let rid = client
        .reboot_instances(&ids, StopType::SoftFirst)
        .await
        .unwrap();
    settled(&client, &id, &rid).await;

    let rid = client
        .stop_instances(&ids, StopType::Soft, StoppedMode::StopCharging)
        .await
        .unwrap();
    let shown = settled(&client, &id, &rid).await;
    assert_eq!(shown.instance_state, "STOPPED");
    assert_eq!(shown.stop_charging_mode.as_deref(), Some("STOP_CHARGING"));
    assert!(shown.public_ip_addresses.is_empty());
    let refused = client
        .modify_instances_attribute(&ids, &InstanceAttribute::Name("x".into()))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        "UnsupportedOperation.StoppedModeStopCharging"
    );
    assert!(refused.needs_person(), "start it first");
    let rid = client.start_instances(&ids).await.unwrap();
    let shown = settled(&client, &id, &rid).await;
    assert_eq!(shown.instance_state, "RUNNING");
    assert_ne!(shown.public_ip_addresses.first(), Some(&first_ip));
    assert!(!shown.public_ip_addresses.is_empty());

    // An operation in progress is "retry later", and modify calls are not retried here.
    sim.admin.hold_operation(&id).await.unwrap();
    let busy = client
        .modify_instances_attribute(&ids, &InstanceAttribute::Name("y".into()))
        .await
        .unwrap_err();
    assert_eq!(busy.code(), "OperationDenied.InstanceOperationInProgress");
    assert!(busy.is_retryable());
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(
        counters.get(
            "ModifyInstancesAttribute",
            "OperationDenied.InstanceOperationInProgress"
        ),
        1,
        "one attempt: the caller decides from the latest operation"
    );
    for action in [
        "StartInstances",
        "StopInstances",
        "RebootInstances",
        "ResetInstancesType",
        "ResetInstance",
        "ResetInstancesPassword",
        "DisassociateInstancesKeyPairs",
        "ResetInstancesInternetMaxBandwidth",
        "ModifyInstancesProject",
        "ResizeInstanceDisks",
    ] {
        assert_eq!(counters.get(action, "Success"), 1, "{action}");
    }
    assert_eq!(counters.get("ModifyInstancesAttribute", "Success"), 3);
    assert_eq!(counters.get("AssociateInstancesKeyPairs", "Success"), 1);
}

#[tokio::test]
async fn tag_client_changes_only_the_keys_it_names() {
    let sim = start_fast_sim().await;
    let pool = ClientPool::new(client_config(&sim)).unwrap();
    let cvm = pool.get(&sim_credentials(), REGION);
    let tags = pool.tags(&sim_credentials(), REGION);
    let mut request = run_request("uid-tags");
    request.tag_specification[0]
        .tags
        .push(Tag::new("foreign", "keep"));
    let id = cvm.run_instances(&request).await.unwrap()[0].clone();

    // 12 keys to set take two calls of at most 10.
    let replace: std::collections::BTreeMap<String, String> = (0..12)
        .map(|i| (format!("k{i:02}"), format!("v{i}")))
        .collect();
    tags.modify_instance_tags(&id, &replace, &[]).await.unwrap();
    tags.modify_instance_tags(&id, &Default::default(), &["k00".to_string()])
        .await
        .unwrap();
    let read = tags.instance_tags(std::slice::from_ref(&id)).await.unwrap();
    let mine = &read[&id];
    assert_eq!(
        mine.len(),
        1 + 1 + 11,
        "uid, foreign and k01..k11: {mine:?}"
    );
    assert_eq!(mine.get("foreign").map(String::as_str), Some("keep"));
    assert!(!mine.contains_key("k00"));
    let described = cvm.describe_instance(&id).await.unwrap().unwrap();
    assert_eq!(
        described.tag("k11"),
        Some("v11"),
        "DescribeInstances shows it too"
    );
    let found = cvm.find_instances_by_tag("k05", "v5").await.unwrap();
    assert_eq!(found.len(), 1);
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(counters.get("ModifyResourceTags", "Success"), 3);

    // Many instances at once: 12 instances take two TagResources and two UnTagResources calls.
    let mut many = run_request("uid-many");
    many.instance_count = Some(12);
    let ids = cvm.run_instances(&many).await.unwrap();
    let team: std::collections::BTreeMap<String, String> =
        [("team".to_string(), "web".to_string())].into();
    tags.tag_instances(&ids, &team).await.unwrap();
    assert_eq!(
        cvm.find_instances_by_tag("team", "web")
            .await
            .unwrap()
            .len(),
        12
    );
    tags.untag_instances(&ids, &["team".to_string()])
        .await
        .unwrap();
    assert!(
        cvm.find_instances_by_tag("team", "web")
            .await
            .unwrap()
            .is_empty()
    );
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(counters.get("TagResources", "Success"), 2);
    assert_eq!(counters.get("UnTagResources", "Success"), 2);

    let reserved = tags
        .modify_instance_tags(
            &id,
            &[("qcloud:x".to_string(), "v".to_string())].into(),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(reserved.code(), "InvalidParameter.ReservedTagKey");
    assert!(reserved.needs_person());
}
