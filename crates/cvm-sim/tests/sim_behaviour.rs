//! cvm-sim over real HTTP: lifecycle timing, balance, quotas, capacity, rate limits,
//! every fault type and the admin endpoints.

mod sim_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cvm_sim::config::{CapacityEntry, DEFAULT_SECRET_ID, StockPool, Timing, default_rate_limits};
use cvm_sim::faults::FaultSpec;
use serde_json::{Value, json};
use sim_support::*;

fn fault(action: &str) -> FaultSpec {
    FaultSpec {
        action: Some(action.into()),
        code: None,
        message: None,
        rate: 1.0,
        count: None,
        latency_ms: None,
        drop_connection: false,
        response_delay_ms: None,
    }
}

#[tokio::test]
async fn lifecycle_follows_the_configured_timing() {
    let mut config = fast_config();
    config.timing = Timing {
        pending_seconds: 0.6,
        public_ip_delay_seconds: 0.6,
        terminating_seconds: 0.6,
        operation_seconds: 0.0,
    };
    let sim = start(config).await;
    let client = Client::new(&sim);
    let started = Instant::now();
    let ids = run(
        &client,
        json!({"InternetAccessible": {"InternetMaxBandwidthOut": 5}}),
    )
    .await;
    let id = &ids[0];
    let pending = describe_ids(&client, &ids).await["InstanceSet"][0].clone();
    assert_eq!(pending["InstanceState"], "PENDING");
    assert_eq!(pending["LatestOperationState"], "OPERATING");
    assert!(
        pending["PrivateIpAddresses"][0]
            .as_str()
            .unwrap()
            .starts_with("10.")
    );
    assert_eq!(pending["PublicIpAddresses"], Value::Null);

    let running = wait_for(&client, id, Duration::from_secs(5), state_is("RUNNING"))
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "not before pendingSeconds"
    );
    assert_eq!(running["LatestOperationState"], "SUCCESS");
    let with_ip = wait_for(&client, id, Duration::from_secs(5), |i| {
        i.is_some_and(|i| i["PublicIpAddresses"].is_array())
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(1150),
        "public IP after RUNNING + delay"
    );
    assert!(
        with_ip["PublicIpAddresses"][0]
            .as_str()
            .unwrap()
            .starts_with("198.1")
    );

    let terminated = client
        .call("TerminateInstances", json!({"InstanceIds": [id]}))
        .await;
    assert!(error_code(&terminated).is_none());
    wait_for(&client, id, Duration::from_secs(5), |i| i.is_none()).await;
    assert!(sim.admin.instances().await.unwrap().is_empty());
    let again = client
        .call("TerminateInstances", json!({"InstanceIds": [id]}))
        .await;
    expect_error(&again, "InvalidInstanceId.NotFound");
}

#[tokio::test]
async fn pending_instances_cannot_be_terminated_and_no_bandwidth_means_no_public_ip() {
    let mut config = fast_config();
    config.timing.pending_seconds = 30.0;
    let sim = start(config).await;
    let client = Client::new(&sim);
    let ids = run(&client, json!({})).await;
    expect_error(
        &client
            .call("TerminateInstances", json!({"InstanceIds": ids}))
            .await,
        "UnsupportedOperation.InstanceStatePending",
    );
    sim.admin
        .set_timing(Timing {
            pending_seconds: 0.0,
            public_ip_delay_seconds: 0.0,
            terminating_seconds: 0.0,
            operation_seconds: 0.0,
        })
        .await
        .unwrap();
    let fast = run(&client, json!({})).await;
    let running = wait_for(
        &client,
        &fast[0],
        Duration::from_secs(5),
        state_is("RUNNING"),
    )
    .await
    .unwrap();
    assert_eq!(running["PublicIpAddresses"], Value::Null);
}

#[tokio::test]
async fn balance_quota_and_capacity_give_the_real_codes() {
    let mut config = fast_config();
    config.accounts[0].balance = 1.0;
    config.accounts[0].instance_quota = 3;
    config.accounts[0].spot_quota = 1;
    let sim = start(config).await;
    let client = Client::new(&sim);

    // S5.MEDIUM2 costs 0.18/h: one hour of 5 instances is 0.90, of 6 is 1.08 > 1.0.
    sim.admin
        .set_quota(DEFAULT_SECRET_ID, Some(100), None)
        .await
        .unwrap();
    expect_error(
        &client
            .call("RunInstances", run_body(json!({"InstanceCount": 6})))
            .await,
        "InvalidAccount.InsufficientBalance",
    );
    let five = run(&client, json!({"InstanceCount": 5})).await;
    assert_eq!(five.len(), 5);
    expect_error(
        &client.call("RunInstances", run_body(json!({}))).await,
        "InvalidAccount.InsufficientBalance",
    );
    sim.admin
        .set_balance(DEFAULT_SECRET_ID, 1000.0)
        .await
        .unwrap();
    run(&client, json!({})).await;

    sim.admin
        .set_quota(DEFAULT_SECRET_ID, Some(6), None)
        .await
        .unwrap();
    expect_error(
        &client.call("RunInstances", run_body(json!({}))).await,
        "LimitExceeded.InstanceQuota",
    );
    sim.admin
        .set_quota(DEFAULT_SECRET_ID, Some(100), None)
        .await
        .unwrap();

    let spot = json!({
        "InstanceChargeType": "SPOTPAID",
        "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"MaxPrice": "0.08", "SpotInstanceType": "one-time"}}
    });
    run(&client, spot.clone()).await;
    expect_error(
        &client.call("RunInstances", run_body(spot.clone())).await,
        "LimitExceeded.SpotQuota",
    );
    sim.admin
        .set_quota(DEFAULT_SECRET_ID, None, Some(10))
        .await
        .unwrap();

    sim.admin
        .set_capacity(ZONE, "S5.MEDIUM2", Some(0))
        .await
        .unwrap();
    expect_error(
        &client.call("RunInstances", run_body(json!({}))).await,
        "ResourceInsufficient.SpecifiedInstanceType",
    );
    expect_error(
        &client.call("RunInstances", run_body(spot.clone())).await,
        "InvalidParameterValue.InsufficientOffering",
    );
    // Other types and zones are not affected.
    run(&client, json!({"InstanceType": "S5.LARGE8"})).await;
    sim.admin
        .set_capacity(ZONE, "S5.MEDIUM2", Some(2))
        .await
        .unwrap();
    expect_error(
        &client
            .call("RunInstances", run_body(json!({"InstanceCount": 3})))
            .await,
        "ResourceInsufficient.SpecifiedInstanceType",
    );
    let best_effort = run(&client, json!({"InstanceCount": 3, "MinCount": 1})).await;
    assert_eq!(best_effort.len(), 2, "MinCount launches what is in stock");
    sim.admin
        .set_capacity(ZONE, "S5.MEDIUM2", None)
        .await
        .unwrap();
    run(&client, json!({"InstanceCount": 3})).await;

    assert!(sim.admin.set_balance("AKIDnobody", 1.0).await.is_err());
}

fn spot_capacity(available: Option<u32>) -> CapacityEntry {
    CapacityEntry {
        zone: ZONE.into(),
        instance_type: "S5.MEDIUM2".into(),
        charge_type: Some(StockPool::Spot),
        available,
    }
}

#[tokio::test]
async fn spot_sells_out_and_returns_while_pay_as_you_go_remains() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    let spot = json!({"InstanceChargeType": "SPOTPAID"});

    sim.admin
        .set_capacity_entry(&spot_capacity(Some(0)))
        .await
        .unwrap();
    expect_error(
        &client.call("RunInstances", run_body(spot.clone())).await,
        "InvalidParameterValue.InsufficientOffering",
    );
    run(&client, json!({"InstanceCount": 2})).await;

    // Some spot back: launches draw it down, and the rest of the batch is refused.
    sim.admin
        .set_capacity_entry(&spot_capacity(Some(2)))
        .await
        .unwrap();
    let mut three = spot.clone();
    three["InstanceCount"] = json!(3);
    three["MinCount"] = json!(1);
    assert_eq!(
        run(&client, three).await.len(),
        2,
        "MinCount takes what spot has"
    );
    expect_error(
        &client.call("RunInstances", run_body(spot.clone())).await,
        "InvalidParameterValue.InsufficientOffering",
    );
    run(&client, json!({})).await;

    sim.admin
        .set_capacity_entry(&spot_capacity(None))
        .await
        .unwrap();
    run(&client, spot).await;
    assert_eq!(sim.admin.instances().await.unwrap().len(), 6);
    // A malformed pool is refused by the admin API.
    let refused = reqwest::Client::new()
        .post(format!("{}/_sim/capacity", sim.endpoint))
        .body(r#"{"zone":"ap-guangzhou-3","instanceType":"S5.MEDIUM2","chargeType":"PREPAID","available":0}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}

/// Fires `n` concurrent calls; returns (successes, limited, seconds the burst took).
async fn burst(client: &Client, action: &str, body: Value, n: usize) -> (usize, usize, f64) {
    let started = Instant::now();
    let answers =
        futures::future::join_all((0..n).map(|_| client.call(action, body.clone()))).await;
    let elapsed = started.elapsed().as_secs_f64();
    let limited = answers
        .iter()
        .filter(|r| error_code(r) == Some("RequestLimitExceeded"))
        .count();
    let ok = answers.iter().filter(|r| error_code(r).is_none()).count();
    (ok, limited, elapsed)
}

/// A token bucket of `rate`/s starting full lets through at most `rate` + refills.
fn assert_within_bucket(rate: f64, ok: usize, limited: usize, n: usize, elapsed: f64) {
    assert_eq!(ok + limited, n, "only successes and RequestLimitExceeded");
    let ceiling = rate + (rate * elapsed).ceil() + 1.0;
    assert!(
        ok as f64 >= rate.min(n as f64),
        "{ok} passed, the first {rate} must"
    );
    assert!(
        (ok as f64) <= ceiling,
        "{ok} passed in {elapsed:.2}s at {rate}/s"
    );
    assert!(
        limited > 0,
        "a burst of {n} in {elapsed:.2}s must be limited"
    );
}

#[tokio::test]
async fn rate_limits_answer_request_limit_exceeded_per_action() {
    let mut config = fast_config();
    config.rate_limits = HashMap::from([
        ("RunInstances".to_string(), 10),
        ("DescribeInstances".to_string(), 40),
        (
            "DescribeZoneInstanceConfigInfos".to_string(),
            default_rate_limits()["DescribeZoneInstanceConfigInfos"],
        ),
    ]);
    let sim = start(config).await;
    let client = Client::new(&sim);

    let (ok, limited, elapsed) = burst(&client, "DescribeInstances", json!({}), 200).await;
    assert_within_bucket(40.0, ok, limited, 200, elapsed);
    let (run_ok, run_limited, run_elapsed) =
        burst(&client, "RunInstances", run_body(json!({})), 50).await;
    assert_within_bucket(10.0, run_ok, run_limited, 50, run_elapsed);
    let (offer_ok, offer_limited, offer_elapsed) =
        burst(&client, "DescribeZoneInstanceConfigInfos", json!({}), 120).await;
    assert_within_bucket(40.0, offer_ok, offer_limited, 120, offer_elapsed);

    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(
        counters.get("DescribeInstances", "RequestLimitExceeded"),
        limited as u64
    );
    assert_eq!(counters.get("DescribeInstances", "Success"), ok as u64);
    assert_eq!(counters.get("RunInstances", "Success"), run_ok as u64);
    assert_eq!(
        counters.get("DescribeZoneInstanceConfigInfos", "RequestLimitExceeded"),
        offer_limited as u64
    );

    sim.admin
        .set_rate_limits(&HashMap::from([("DescribeInstances".to_string(), 0)]))
        .await
        .unwrap();
    let (ok, limited, _) = burst(&client, "DescribeInstances", json!({}), 100).await;
    assert_eq!((ok, limited), (100, 0));
}

#[tokio::test]
async fn injected_errors_latency_and_dropped_connections() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);

    let mut error = fault("RunInstances");
    error.code = Some("InternalError".into());
    error.message = Some("boom".into());
    error.count = Some(2);
    sim.admin.add_fault(&error).await.unwrap();
    for _ in 0..2 {
        let response = client.call("RunInstances", run_body(json!({}))).await;
        expect_error(&response, "InternalError");
        assert_eq!(response["Error"]["Message"], "boom");
    }
    run(&client, json!({})).await;
    // The fault was only for RunInstances.
    assert!(error_code(&client.call("DescribeInstances", json!({})).await).is_none());

    let mut latency = fault("DescribeInstances");
    latency.latency_ms = Some(300);
    latency.count = Some(1);
    sim.admin.add_fault(&latency).await.unwrap();
    let t = Instant::now();
    client.call("DescribeInstances", json!({})).await;
    assert!(t.elapsed() >= Duration::from_millis(300));

    let mut drop = fault("DescribeInstances");
    drop.drop_connection = true;
    sim.admin.add_fault(&drop).await.unwrap();
    let sent = client
        .send("DescribeInstances", json!({}), Tweaks::default())
        .await;
    assert!(sent.is_err(), "the connection is closed without an answer");
    sim.admin.clear_faults().await.unwrap();
    assert!(error_code(&client.call("DescribeInstances", json!({})).await).is_none());

    // Invalid faults are refused.
    let mut bad = fault("RunInstances");
    bad.rate = 2.0;
    bad.code = Some("InternalError".into());
    assert!(sim.admin.add_fault(&bad).await.is_err());

    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(counters.get("RunInstances", "InternalError"), 2);
    assert_eq!(counters.get("RunInstances", "Success"), 1);
    sim.admin.reset_counters().await.unwrap();
    assert!(sim.admin.counters().await.unwrap().calls.is_empty());
}

#[tokio::test]
async fn response_delay_takes_effect_before_the_answer_arrives() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    let mut delay = fault("RunInstances");
    delay.response_delay_ms = Some(1500);
    delay.count = Some(1);
    sim.admin.add_fault(&delay).await.unwrap();

    let started = Instant::now();
    let call = tokio::spawn(async move { run(&client, json!({})).await });
    // The instance exists while the answer is still held back.
    let admin = sim.admin.clone();
    let seen = wait_for_instances(&admin, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "created only after the delay"
    );
    let ids = call.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert_eq!(ids, seen);
}

async fn wait_for_instances(admin: &cvm_sim::SimAdmin, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let ids: Vec<String> = admin
            .instances()
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.instance_id)
            .collect();
        if !ids.is_empty() {
            return ids;
        }
        assert!(Instant::now() < deadline, "no instance appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn faults_from_the_config_file_apply_at_start() {
    let mut config = fast_config();
    let mut error = fault("TerminateInstances");
    error.code = Some("InternalError".into());
    config.faults = vec![error];
    let sim = start(config).await;
    let client = Client::new(&sim);
    let ids = run(&client, json!({})).await;
    wait_for(
        &client,
        &ids[0],
        Duration::from_secs(5),
        state_is("RUNNING"),
    )
    .await;
    expect_error(
        &client
            .call("TerminateInstances", json!({"InstanceIds": ids}))
            .await,
        "InternalError",
    );
}

#[tokio::test]
async fn launch_failures_and_spot_reclaim() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    sim.admin
        .launch_failures(1, "no host available")
        .await
        .unwrap();
    let failed = run(&client, json!({})).await;
    let ok = run(&client, json!({})).await;
    let instance = wait_for(
        &client,
        &failed[0],
        Duration::from_secs(5),
        state_is("LAUNCH_FAILED"),
    )
    .await
    .unwrap();
    assert_eq!(instance["LatestOperationState"], "FAILED");
    assert_eq!(instance["LatestOperationErrorMsg"], "no host available");
    wait_for(&client, &ok[0], Duration::from_secs(5), state_is("RUNNING")).await;
    let listed = sim.admin.instances().await.unwrap();
    let failed_entry = listed.iter().find(|i| i.instance_id == failed[0]).unwrap();
    assert_eq!(
        failed_entry.latest_operation_error_msg.as_deref(),
        Some("no host available")
    );
    // A failed launch can be cleaned up.
    let cleaned = client
        .call("TerminateInstances", json!({"InstanceIds": failed}))
        .await;
    assert!(error_code(&cleaned).is_none(), "{cleaned}");

    sim.admin
        .set_timing(Timing {
            pending_seconds: 0.0,
            public_ip_delay_seconds: 0.0,
            terminating_seconds: 0.5,
            operation_seconds: 0.0,
        })
        .await
        .unwrap();
    let spot = run(
        &client,
        json!({"InstanceChargeType": "SPOTPAID", "InstanceMarketOptions": {"MarketType": "spot", "SpotOptions": {"MaxPrice": "1"}}}),
    )
    .await;
    wait_for(
        &client,
        &spot[0],
        Duration::from_secs(5),
        state_is("RUNNING"),
    )
    .await;
    sim.admin.reclaim(&spot[0]).await.unwrap();
    let reclaimed = describe_ids(&client, &spot).await;
    assert_eq!(reclaimed["InstanceSet"][0]["InstanceState"], "TERMINATING");
    wait_for(&client, &spot[0], Duration::from_secs(5), |i| i.is_none()).await;
    let err = sim.admin.reclaim("ins-zzzzzzzz").await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

#[tokio::test]
async fn admin_instances_list_the_contract_fields() {
    let sim = start(fast_config()).await;
    sim.admin.healthz().await.unwrap();
    let client = Client::new(&sim);
    run(
        &client,
        json!({
            "ClientToken": "tok-1",
            "InternetAccessible": {"InternetMaxBandwidthOut": 1},
            "TagSpecification": [{"ResourceType": "instance", "Tags": [{"Key": "k", "Value": "v"}]}]
        }),
    )
    .await;
    let raw: Value = reqwest::get(format!("{}/_sim/instances", sim.endpoint))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = &raw["instances"][0];
    for field in [
        "InstanceId",
        "InstanceState",
        "Zone",
        "InstanceType",
        "InstanceChargeType",
        "PrivateIpAddresses",
        "PublicIpAddresses",
        "Tags",
        "ClientToken",
        "SecretId",
        "LatestOperationErrorMsg",
    ] {
        assert!(entry.get(field).is_some(), "{field} missing in {entry}");
    }
    assert_eq!(entry["ClientToken"], "tok-1");
    assert_eq!(entry["SecretId"], DEFAULT_SECRET_ID);
    assert_eq!(entry["Tags"], json!([{"Key": "k", "Value": "v"}]));
    assert_eq!(entry["InstanceState"], "RUNNING");
    assert_eq!(entry["PublicIpAddresses"].as_array().unwrap().len(), 1);

    let bad = reqwest::Client::new()
        .post(format!("{}/_sim/capacity", sim.endpoint))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.unwrap();
    assert!(body["error"].is_string());
}

async fn rename(client: &Client, id: &str, name: &str) -> Value {
    client
        .call(
            "ModifyInstancesAttribute",
            json!({"InstanceIds": [id], "InstanceName": name}),
        )
        .await
}

#[tokio::test]
async fn operations_last_operation_seconds_one_at_a_time_and_can_be_held_or_failed() {
    let mut config = fast_config();
    config.timing.operation_seconds = 0.4;
    let sim = start(config).await;
    let client = Client::new(&sim);
    let id = run(&client, json!({"InstanceName": "old"})).await.remove(0);
    wait_for(&client, &id, Duration::from_secs(5), state_is("RUNNING")).await;

    let started = Instant::now();
    let first = rename(&client, &id, "new").await;
    let operating = describe_one(&client, &id).await;
    assert_eq!(operating["LatestOperationState"], "OPERATING");
    assert_eq!(operating["LatestOperationRequestId"], first["RequestId"]);
    assert_eq!(operating["InstanceName"], "old", "applied when it ends");
    let second = rename(&client, &id, "other").await;
    assert_eq!(
        error_code(&second),
        Some("OperationDenied.InstanceOperationInProgress")
    );
    let done = wait_for(&client, &id, Duration::from_secs(5), |i| {
        i.is_some_and(|i| i["LatestOperationState"] == "SUCCESS")
    })
    .await
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(350));
    assert_eq!(done["InstanceName"], "new");

    // A held operation outlasts operationSeconds, then ends when released.
    let held = rename(&client, &id, "held").await;
    sim.admin.hold_operation(&id).await.unwrap();
    let deadline = Instant::now() + Duration::from_millis(900);
    while Instant::now() < deadline {
        let shown = describe_one(&client, &id).await;
        assert_eq!(shown["LatestOperationState"], "OPERATING");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim.admin.complete_operation(&id).await.unwrap();
    let shown = describe_one(&client, &id).await;
    assert_eq!(shown["LatestOperationState"], "SUCCESS");
    assert_eq!(shown["LatestOperationRequestId"], held["RequestId"]);
    assert_eq!(shown["InstanceName"], "held");

    // A failed one changes nothing and says why.
    let reboot = client
        .call("RebootInstances", json!({"InstanceIds": [id]}))
        .await;
    assert!(error_code(&reboot).is_none(), "{reboot}");
    assert_eq!(
        describe_one(&client, &id).await["InstanceState"],
        "REBOOTING"
    );
    sim.admin.fail_operation(&id, "host fault").await.unwrap();
    let failed = describe_one(&client, &id).await;
    assert_eq!(failed["LatestOperationState"], "FAILED");
    assert_eq!(failed["LatestOperationErrorMsg"], "host fault");
    assert_eq!(failed["InstanceState"], "RUNNING");
    assert!(
        sim.admin.complete_operation(&id).await.is_err(),
        "nothing in progress"
    );

    // Someone else's operation (held without one of ours) blocks ours too.
    sim.admin.hold_operation(&id).await.unwrap();
    let blocked = rename(&client, &id, "blocked").await;
    assert_eq!(
        error_code(&blocked),
        Some("OperationDenied.InstanceOperationInProgress")
    );
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(counters.get("ModifyInstancesAttribute", "Success"), 2);
    assert_eq!(
        counters.get(
            "ModifyInstancesAttribute",
            "OperationDenied.InstanceOperationInProgress"
        ),
        2
    );
    assert_eq!(counters.get("RebootInstances", "Success"), 1);
}

#[tokio::test]
async fn console_edits_and_pre_existing_instances() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    let id = sim
        .admin
        .create_instance(
            DEFAULT_SECRET_ID,
            &json!({"InstanceName": "legacy", "SecurityGroupIds": ["sg-11111111"],
                    "InternetAccessible": {"InternetMaxBandwidthOut": 5},
                    "TagSpecification": [{"ResourceType": "instance",
                                          "Tags": [{"Key": "team", "Value": "a"}]}]}),
            false,
        )
        .await
        .unwrap();
    let shown = describe_one(&client, &id).await;
    assert_eq!(shown["InstanceState"], "RUNNING", "{shown}");
    assert_eq!(shown["InstanceName"], "legacy");
    assert!(shown["PublicIpAddresses"][0].is_string(), "{shown}");
    let foreign_launch = shown["LatestOperationRequestId"]
        .as_str()
        .unwrap()
        .to_string();

    let request_id = sim
        .admin
        .mutate(
            &id,
            &json!({"instanceName": "edited", "securityGroupIds": ["sg-22222222", "sg-11111111"],
                    "state": "STOPPED"}),
        )
        .await
        .unwrap()
        .expect("a console edit leaves a request id");
    assert_ne!(request_id, foreign_launch);
    let edited = describe_one(&client, &id).await;
    assert_eq!(edited["InstanceName"], "edited");
    assert_eq!(
        edited["SecurityGroupIds"],
        json!(["sg-22222222", "sg-11111111"])
    );
    assert_eq!(edited["InstanceState"], "STOPPED");
    assert_eq!(edited["LatestOperationRequestId"], request_id.as_str());
    assert_eq!(edited["LatestOperationState"], "SUCCESS");

    let tags_only = sim
        .admin
        .mutate(&id, &json!({"tags": [{"Key": "team", "Value": "b"}]}))
        .await
        .unwrap();
    assert_eq!(tags_only, None, "tags change through the Tag service");
    let found = client
        .call(
            "DescribeInstances",
            json!({"Filters": [{"Name": "tag:team", "Values": ["b"]}]}),
        )
        .await;
    assert_eq!(found["InstanceSet"][0]["InstanceId"], id.as_str());

    let stopped = sim
        .admin
        .create_instance(DEFAULT_SECRET_ID, &json!({}), true)
        .await
        .unwrap();
    let shown = describe_one(&client, &stopped).await;
    assert_eq!(shown["InstanceState"], "STOPPED");
    assert_eq!(shown["StopChargingMode"], "KEEP_CHARGING");
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(
        counters.get("RunInstances", "Success"),
        0,
        "admin creations are not API calls"
    );
}

#[tokio::test]
async fn reimages_are_counted_and_take_effect_before_a_delayed_answer() {
    let sim = start(fast_config()).await;
    let client = Client::new(&sim);
    let id = run(&client, json!({})).await.remove(0);
    wait_for(&client, &id, Duration::from_secs(5), state_is("RUNNING")).await;
    let mut delay = fault("ResetInstance");
    delay.response_delay_ms = Some(5_000);
    delay.count = Some(1);
    sim.admin.add_fault(&delay).await.unwrap();

    let impatient = Client {
        http: reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
        ..client.clone()
    };
    let lost = impatient
        .send(
            "ResetInstance",
            json!({"InstanceId": id, "ImageId": "img-11111111",
                   "LoginSettings": {"KeyIds": ["skey-11111111"]}}),
            Tweaks::default(),
        )
        .await;
    assert!(lost.is_err(), "the caller gave up before the answer");
    assert_eq!(sim.admin.reimage_count(&id).await.unwrap(), 1);
    let shown = wait_for(&client, &id, Duration::from_secs(5), |i| {
        i.is_some_and(|i| i["LatestOperationState"] == "SUCCESS")
    })
    .await
    .unwrap();
    assert_eq!(shown["LatestOperation"], "ResetInstance");
    assert_eq!(shown["ImageId"], "img-11111111");
    assert_eq!(shown["LoginSettings"]["KeyIds"], json!(["skey-11111111"]));

    // ResetInstance is not idempotent: a retry reinstalls again.
    let again = client
        .call("ResetInstance", json!({"InstanceId": id}))
        .await;
    assert!(error_code(&again).is_none(), "{again}");
    assert_eq!(sim.admin.reimage_count(&id).await.unwrap(), 2);
}
