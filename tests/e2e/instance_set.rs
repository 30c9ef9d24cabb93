//! CvmInstanceSet end to end: the example set of 3 is one RunInstances call and 3 adopted,
//! owned children; `kubectl scale` grows it by one batch and shrinks it with batched
//! terminations; an HPA can target it and read its scale; a child deleted by hand, or whose
//! machine was reclaimed, is replaced; deleting the set terminates every machine (garbage
//! collection of the children).
//! A sold-out offering sends the launch to the next one in the same pass; no spot at all
//! falls back to pay-as-you-go, and back to spot, surge first, when spot returns. A
//! Balanced set spreads across its zones and shrinks the most crowded first.

use std::time::Duration;

use kube::Api;
use kube::api::DeleteParams;

use crate::env::{Operator, REPO, SECRET_ID, TestEnv, kubectl_ok};
use crate::support::wait_for;
use cvm_operator::api::{CvmInstance, CvmInstanceSet};
use cvm_sim::faults::FaultSpec;

pub(crate) const SET: &str = "workers";
const LABEL: &str = "cvm-operator.io/instance-set=workers";

pub(crate) fn example() -> String {
    std::fs::read_to_string(format!("{REPO}/examples/instance-set.yaml")).unwrap()
}

pub(crate) async fn children(env: &TestEnv) -> Vec<CvmInstance> {
    let api: Api<CvmInstance> = Api::namespaced(env.client.clone(), &env.namespace);
    api.list(&kube::api::ListParams::default().labels(LABEL))
        .await
        .unwrap()
        .items
}

/// Waits until the set is Ready with `n` Ready children and no launch in flight.
pub(crate) async fn ready_with(env: &TestEnv, n: i32) -> CvmInstanceSet {
    let sets: Api<CvmInstanceSet> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_for(
        &format!("{SET} Ready with {n}"),
        Duration::from_secs(90),
        || async {
            let set = sets.get(SET).await.ok()?;
            let status = set.status.as_ref()?;
            let ready = status.condition("Ready")?.status == "True";
            let settled = status.observed_generation == set.metadata.generation;
            (ready && settled && status.ready_replicas == n && status.replicas == n).then_some(set)
        },
    )
    .await
}

/// Instances of the sim that are not terminated (or on their way).
pub(crate) async fn running(env: &TestEnv) -> usize {
    env.sim
        .instances()
        .await
        .iter()
        .filter(|i| !matches!(i.instance_state.as_str(), "TERMINATING" | "TERMINATED"))
        .count()
}

pub(crate) fn scale(env: &TestEnv, replicas: u32) {
    kubectl_ok(env.kubectl().args([
        "scale",
        &format!("cvmset/{SET}"),
        &format!("--replicas={replicas}"),
    ]));
}

#[tokio::test]
async fn a_set_scales_in_batches_is_driven_by_scale_and_cleans_up_after_itself() {
    let env = TestEnv::start("set").await;
    env.apply_yaml_ok(&example());

    // Three machines, one call; each child adopts its machine and is owned by the set.
    let set = ready_with(&env, 3).await;
    assert_eq!(env.sim.calls("RunInstances").await, 1, "one batch of 3");
    assert_eq!(running(&env).await, 3);
    let kids = children(&env).await;
    assert_eq!(kids.len(), 3);
    let uid = set.metadata.uid.clone().unwrap();
    for kid in &kids {
        let owner = &kid.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.uid, uid);
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
        let id = kid.spec.instance_id.as_deref().unwrap();
        assert_eq!(
            kid.metadata.name.as_deref().unwrap(),
            format!("{SET}-{}", &id[4..])
        );
    }
    let status = set.status.unwrap();
    assert_eq!(status.spot_replicas, 3);
    assert_eq!(status.selector.as_deref(), Some(LABEL));
    assert!(status.launches.is_empty(), "{:?}", status.launches);
    // What the set costs: its children's prices together (3 spot SA2.MEDIUM4 at the
    // simulator's 0.04 an hour), also in `kubectl get cvmset`.
    wait_for(
        "the set's hourly price",
        Duration::from_secs(30),
        || async {
            let prices: Vec<f64> = children(&env)
                .await
                .iter()
                .filter_map(|kid| kid.status.as_ref()?.hourly_price.as_deref()?.parse().ok())
                .collect();
            let total = format!("{:.4}", prices.iter().sum::<f64>());
            let shown = set_status(&env).await.hourly_price;
            (prices.len() == 3 && shown.as_deref() == Some(total.as_str())).then_some(())
        },
    )
    .await;
    assert_eq!(
        set_status(&env).await.hourly_price.as_deref(),
        Some("0.1200")
    );
    let table = kubectl_ok(env.kubectl().args(["get", "cvmset", SET]));
    assert!(
        table.contains("PRICE/H") && table.contains("0.1200"),
        "{table}"
    );
    // No claim per child: the set's tag made them its own.
    assert_eq!(env.sim.calls("ModifyResourceTags").await, 0);
    assert_eq!(env.sim.calls("TagResources").await, 0);

    // kubectl scale: one more batch, of 2.
    scale(&env, 5);
    ready_with(&env, 5).await;
    assert_eq!(env.sim.calls("RunInstances").await, 2);
    assert_eq!(running(&env).await, 5);

    // Down to 1: children deleted, their machines terminated in batches.
    scale(&env, 1);
    ready_with(&env, 1).await;
    wait_for("4 machines terminated", Duration::from_secs(60), || async {
        (running(&env).await == 1).then_some(())
    })
    .await;
    wait_for("4 children gone", Duration::from_secs(60), || async {
        (children(&env).await.len() == 1).then_some(())
    })
    .await;
    let terminations = env.sim.calls("TerminateInstances").await;
    assert!(
        (1..=2).contains(&terminations),
        "4 terminations in {terminations} calls"
    );

    // An HPA may target the set; the scale subresource reads back with the selector.
    env.apply_yaml_ok(&format!(
        r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {SET}
spec:
  scaleTargetRef: {{apiVersion: cvm-operator.io/v1alpha1, kind: CvmInstanceSet, name: {SET}}}
  minReplicas: 1
  maxReplicas: 10
  metrics:
    - type: External
      external:
        metric: {{name: queue_depth}}
        target: {{type: AverageValue, averageValue: "30"}}
"#
    ));
    let raw = kubectl_ok(env.kubectl().args([
        "get",
        "--raw",
        &format!(
            "/apis/cvm-operator.io/v1alpha1/namespaces/{}/cvminstancesets/{SET}/scale",
            env.namespace
        ),
    ]));
    let scale_json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(scale_json["kind"], "Scale");
    assert_eq!(scale_json["spec"]["replicas"], 1);
    assert_eq!(scale_json["status"]["replicas"], 1);
    assert_eq!(scale_json["status"]["selector"], LABEL);

    // A child deleted by hand: its machine terminated, a new one launched in its place.
    let lost = children(&env).await[0].metadata.name.clone().unwrap();
    let api: Api<CvmInstance> = Api::namespaced(env.client.clone(), &env.namespace);
    api.delete(&lost, &DeleteParams::default()).await.unwrap();
    wait_for("a replacement child", Duration::from_secs(90), || async {
        let kids = children(&env).await;
        let replaced = kids.len() == 1 && kids[0].metadata.name.as_deref() != Some(&lost);
        replaced.then_some(())
    })
    .await;
    ready_with(&env, 1).await;
    assert_eq!(env.sim.calls("RunInstances").await, 3);

    // A machine reclaimed (spot) or terminated outside: its child cannot launch another,
    // so the set replaces the child.
    let reclaimed = children(&env).await[0].clone();
    let id = reclaimed.spec.instance_id.clone().unwrap();
    env.sim.admin.reclaim(&id).await.unwrap();
    wait_for(
        "the reclaimed machine replaced",
        Duration::from_secs(90),
        || async {
            let kids = children(&env).await;
            let replaced = kids.len() == 1 && kids[0].metadata.name != reclaimed.metadata.name;
            replaced.then_some(())
        },
    )
    .await;
    ready_with(&env, 1).await;
    assert_eq!(env.sim.calls("RunInstances").await, 4);

    // Deleting the set: every child goes (garbage collection), every machine terminated.
    let sets: Api<CvmInstanceSet> = Api::namespaced(env.client.clone(), &env.namespace);
    sets.delete(SET, &DeleteParams::default()).await.unwrap();
    wait_for(
        "the set and its children gone",
        Duration::from_secs(90),
        || async {
            let gone = sets.get_opt(SET).await.ok()?.is_none() && children(&env).await.is_empty();
            gone.then_some(())
        },
    )
    .await;
    assert_eq!(running(&env).await, 0, "no machine left running");
}

async fn set_status(env: &TestEnv) -> cvm_operator::api::CvmInstanceSetStatus {
    let sets: Api<CvmInstanceSet> = Api::namespaced(env.client.clone(), &env.namespace);
    sets.get(SET).await.unwrap().status.unwrap_or_default()
}

/// The first offering of the example (spot SA2.MEDIUM4 in ap-guangzhou-3) has no stock.
async fn sell_out_first_offering(env: &TestEnv) {
    env.sim
        .admin
        .set_capacity("ap-guangzhou-3", "SA2.MEDIUM4", Some(0))
        .await
        .unwrap();
}

/// Every child of the example set runs in the next offering after the sold-out first one.
async fn assert_all_in_the_next_offering(env: &TestEnv) {
    for kid in children(env).await {
        assert_eq!(
            kid.spec.zone, "ap-guangzhou-4",
            "the next offering: the next subnet"
        );
        assert_eq!(kid.spec.instance_type, "SA2.MEDIUM4");
    }
}

/// For docs/performance.md (the fallback row); boot here is 1 s + 1 s for the IP.
fn report_fallback_seconds(how: &str, started: std::time::Instant) {
    eprintln!(
        "sold-out first offering, told by {how}: all Ready from the next one {:.1} s after the apply",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn a_sold_out_offering_in_the_stock_data_is_never_tried() {
    let env = TestEnv::start("set-stock").await;
    // DescribeZoneInstanceConfigInfos says the first offering has no stock (WithoutStock).
    sell_out_first_offering(&env).await;
    let started = std::time::Instant::now();
    env.apply_yaml_ok(&example());
    ready_with(&env, 3).await;
    report_fallback_seconds("the stock data", started);
    assert_all_in_the_next_offering(&env).await;
    let outcomes = env.sim.outcomes("RunInstances").await;
    assert_eq!(outcomes.get("Success"), Some(&1), "{outcomes:?}");
    assert_eq!(
        outcomes.values().sum::<u64>(),
        1,
        "no call refused: {outcomes:?}"
    );
}

#[tokio::test]
async fn capacity_optimized_launches_where_the_stock_is_deepest() {
    let env = TestEnv::start("set-capacity").await;
    // The first offering has 5 machines left (UnderStock in DescribeZoneInstanceConfigInfos):
    // enough for the 3, and Priority would take it; CapacityOptimized takes the next one,
    // which has plenty (EnoughStock).
    env.sim
        .admin
        .set_capacity("ap-guangzhou-3", "SA2.MEDIUM4", Some(5))
        .await
        .unwrap();
    env.apply_yaml_ok(&example().replace(
        "allocationStrategy: Priority",
        "allocationStrategy: CapacityOptimized",
    ));
    ready_with(&env, 3).await;
    assert_all_in_the_next_offering(&env).await;
    let outcomes = env.sim.outcomes("RunInstances").await;
    assert_eq!(outcomes.get("Success"), Some(&1), "{outcomes:?}");
    assert_eq!(
        outcomes.values().sum::<u64>(),
        1,
        "none refused: {outcomes:?}"
    );
}

#[tokio::test]
async fn a_sold_out_offering_sends_the_launch_to_the_next_one_in_the_same_pass() {
    let env = TestEnv::start("set-soldout").await;
    // The first offering has no stock and the stock data cannot tell
    // (DescribeZoneInstanceConfigInfos fails, as stale data would): RunInstances' refusal is
    // what moves the launch on.
    sell_out_first_offering(&env).await;
    env.sim
        .admin
        .add_fault(&FaultSpec {
            action: Some("DescribeZoneInstanceConfigInfos".to_string()),
            code: Some("InternalError".to_string()),
            message: Some("injected".to_string()),
            rate: 1.0,
            count: None,
            latency_ms: None,
            drop_connection: false,
            response_delay_ms: None,
        })
        .await
        .unwrap();
    let started = std::time::Instant::now();
    env.apply_yaml_ok(&example());
    ready_with(&env, 3).await;
    report_fallback_seconds("RunInstances' refusal", started);
    assert_all_in_the_next_offering(&env).await;
    // One refused call, one that launched all three.
    let outcomes = env.sim.outcomes("RunInstances").await;
    assert_eq!(outcomes.get("Success"), Some(&1), "{outcomes:?}");
    assert_eq!(outcomes.values().sum::<u64>(), 2, "{outcomes:?}");
    let status = set_status(&env).await;
    let sold_out = status
        .offerings
        .iter()
        .find(|o| o.zone == "ap-guangzhou-3" && o.instance_type == "SA2.MEDIUM4")
        .expect("the sold-out offering is shown");
    assert!(sold_out.unavailable_until.is_some(), "{sold_out:?}");
    assert!(
        sold_out
            .last_error
            .as_deref()
            .is_some_and(|code| code.contains("Insufficient")),
        "{sold_out:?}"
    );
    let used = status
        .offerings
        .iter()
        .find(|o| o.zone == "ap-guangzhou-4")
        .expect("the offering in use is shown");
    assert_eq!((used.replicas, used.ready), (3, 3));
    assert!(env.event_reasons().contains("OfferingUnavailable"));
}

/// Children per zone, those being deleted left out (the set has let them go).
async fn per_zone(env: &TestEnv) -> std::collections::BTreeMap<String, usize> {
    let mut zones = std::collections::BTreeMap::new();
    for kid in children(env).await {
        if kid.metadata.deletion_timestamp.is_some() {
            continue;
        }
        *zones.entry(kid.spec.zone.clone()).or_default() += 1;
    }
    zones
}

fn zones(pairs: &[(&str, usize)]) -> std::collections::BTreeMap<String, usize> {
    pairs.iter().map(|(z, n)| (z.to_string(), *n)).collect()
}

#[tokio::test]
async fn a_balanced_set_spreads_across_zones_and_shrinks_the_most_crowded_first() {
    let env = TestEnv::start("set-balanced").await;
    env.apply_yaml_ok(
        &example()
            .replace("replicas: 3", "replicas: 4")
            .replace("zoneBalance: Priority", "zoneBalance: Balanced"),
    );
    ready_with(&env, 4).await;
    assert_eq!(
        per_zone(&env).await,
        zones(&[("ap-guangzhou-3", 2), ("ap-guangzhou-4", 2)])
    );
    // One call per zone.
    let outcomes = env.sim.outcomes("RunInstances").await;
    assert_eq!(outcomes.get("Success"), Some(&2), "{outcomes:?}");

    // The second zone has nothing left of either type: its share goes to the first.
    for instance_type in ["SA2.MEDIUM4", "S5.MEDIUM4"] {
        env.sim
            .admin
            .set_capacity("ap-guangzhou-4", instance_type, Some(0))
            .await
            .unwrap();
    }
    scale(&env, 6);
    ready_with(&env, 6).await;
    assert_eq!(
        per_zone(&env).await,
        zones(&[("ap-guangzhou-3", 4), ("ap-guangzhou-4", 2)])
    );

    // Shrinking takes from the crowded zone until they are level, then from each.
    scale(&env, 2);
    ready_with(&env, 2).await;
    assert_eq!(
        per_zone(&env).await,
        zones(&[("ap-guangzhou-3", 1), ("ap-guangzhou-4", 1)])
    );
    wait_for(
        "the removed machines terminated",
        Duration::from_secs(60),
        || async { (running(&env).await == 2).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn without_spot_the_set_falls_back_to_pay_as_you_go_and_returns_to_spot_surge_first() {
    let env = TestEnv::start("set-fallback").await;
    env.sim
        .admin
        .set_quota(SECRET_ID, None, Some(0))
        .await
        .unwrap();
    let quick = example()
        .replace(
            "unavailableOfferingSeconds: 180",
            "unavailableOfferingSeconds: 2",
        )
        .replace("after: 5m", "after: 1s");
    env.apply_yaml_ok(&quick);

    // No spot anywhere: pay-as-you-go in its place, labelled, and the set says so.
    ready_with(&env, 3).await;
    let status = set_status(&env).await;
    assert_eq!(
        (
            status.fallback_replicas,
            status.on_demand_replicas,
            status.spot_replicas
        ),
        (3, 3, 0)
    );
    let degraded = status.condition("CapacityDegraded").unwrap();
    assert_eq!(degraded.status, "True");
    for kid in children(&env).await {
        assert_eq!(
            kid.spec.billing.mode,
            cvm_operator::api::BillingMode::PayAsYouGo
        );
        assert_eq!(
            kid.metadata.labels.as_ref().unwrap()["cvm-operator.io/fallback"],
            "true"
        );
    }
    assert!(env.event_reasons().contains("SpotFallback"));

    // Spot is back: spot replacements first, the fallback machines only once they are
    // Ready; never fewer than 3 Ready on the way.
    env.sim
        .admin
        .set_quota(SECRET_ID, None, Some(100))
        .await
        .unwrap();
    wait_for("back on spot", Duration::from_secs(90), || async {
        let status = set_status(&env).await;
        assert!(
            status.ready_replicas >= 3,
            "fewer than 3 Ready while reverting: {status:?}"
        );
        assert!(
            running(&env).await >= 3,
            "fewer than 3 machines while reverting"
        );
        let back = status.spot_replicas == 3
            && status.fallback_replicas == 0
            && status.replicas == 3
            && status.ready_replicas == 3;
        back.then_some(())
    })
    .await;
    let status = set_status(&env).await;
    assert_eq!(
        status.condition("CapacityDegraded").unwrap().status,
        "False"
    );
    assert!(env.event_reasons().contains("RevertedToSpot"));
    wait_for(
        "the fallback machines terminated",
        Duration::from_secs(60),
        || async { (running(&env).await == 3).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn invalid_sets_are_refused_at_admission_naming_the_field() {
    let env = TestEnv::without_operator("set-invalid", crate::env::sim_config(), false).await;
    let rows = [
        (
            "      instanceId: ins-abcd1234\n      region: ap-guangzhou",
            "spec.template.spec.instanceId",
        ),
        ("    maxPerCall: 100", "spec.launch.maxPerCall"),
        ("  replicas: 3", "spec.replicas"),
        (
            "        mode: Spot\n",
            "spec.template.spec.updatePolicy.replace: Recreate is not supported in a set",
        ),
        ("    maxSurge: 1", "spec.rollout.maxSurge"),
        ("    strategy: Manual", "spec.rollout.strategy"),
    ];
    let broken = [
        example().replace("      region: ap-guangzhou", rows[0].0),
        example().replace(rows[1].0, "    maxPerCall: 101"),
        example().replace(rows[2].0, "  replicas: -1"),
        example().replace(
            rows[3].0,
            "        mode: Spot\n      updatePolicy: {replace: Recreate}\n",
        ),
        example().replace(rows[4].0, "    maxSurge: 0"),
        example().replace(rows[5].0, "    strategy: Rolling"),
    ];
    for (yaml, (_, field)) in broken.iter().zip(rows) {
        let out = env.apply_yaml(yaml);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{field} accepted");
        assert!(stderr.contains(field), "{field} not named: {stderr}");
    }
}

#[tokio::test]
async fn an_operator_killed_during_a_batch_ends_with_exactly_the_replicas_and_no_leak() {
    let env = TestEnv::start("set-kill").await;
    // The first batch is launched at once but its answer takes 4 s: the operator is killed
    // inside that window, with the launch recorded and its IDs not.
    env.sim.delay_next_answer("RunInstances", 4000).await;
    let thirty = example()
        .replace("  replicas: 3", "  replicas: 30")
        .replace("maxPerCall: 100", "maxPerCall: 10");
    env.apply_yaml_ok(&thirty);
    wait_for(
        "the first batch launched",
        Duration::from_secs(30),
        || async { (env.sim.instances().await.len() == 10).then_some(()) },
    )
    .await;
    env.operator.as_ref().unwrap().kill();
    let status = set_status(&env).await;
    assert!(
        status
            .launches
            .iter()
            .any(|l| l.phase == cvm_operator::api::LaunchPhase::Pending),
        "the kill must land with the launch recorded and unanswered: {:?}",
        status.launches
    );

    let restarted = Operator::start_named(
        &env.dir,
        "operator-restarted",
        &env.sim.endpoint,
        &env.namespace,
        false,
        &[],
    );
    ready_with(&env, 30).await;
    let instances = env.sim.instances().await;
    assert_eq!(
        instances.len(),
        30,
        "exactly the replicas, nothing launched twice"
    );
    let tokens: std::collections::BTreeSet<_> = instances
        .iter()
        .filter_map(|i| i.client_token.clone())
        .collect();
    assert_eq!(tokens.len(), 3, "three batches of ten: {tokens:?}");
    assert_eq!(children(&env).await.len(), 30);
    drop(restarted);
}

/// The example with `edit` applied to its template's spec lines.
fn example_with(edit: &[(&str, &str)]) -> String {
    let mut yaml = example();
    for (from, to) in edit {
        assert!(yaml.contains(from), "the example has no {from:?}");
        yaml = yaml.replace(from, to);
    }
    yaml
}

/// The resourceVersion of every child, by name: any write moves it.
async fn versions(env: &TestEnv) -> std::collections::BTreeMap<String, String> {
    children(env)
        .await
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.unwrap(),
                c.metadata.resource_version.unwrap(),
            )
        })
        .collect()
}

/// What a patch by the set would change on every child, by name: its generation (the spec)
/// and its labels and annotations. Not the resourceVersion, which the child's own status
/// writes move (an earlier change's operation settling, say).
async fn shapes(env: &TestEnv) -> std::collections::BTreeMap<String, String> {
    children(env)
        .await
        .into_iter()
        .map(|c| {
            let m = c.metadata;
            let shape = format!(
                "generation {:?} labels {:?} annotations {:?}",
                m.generation, m.labels, m.annotations
            );
            (m.name.unwrap(), shape)
        })
        .collect()
}

/// Waits until the operator's sweeper has described the machines `sweeps` more times: that
/// many resync periods went by with the operator looking.
async fn wait_sweeps(env: &TestEnv, sweeps: u64) {
    let before = env.sim.calls("DescribeInstances").await;
    wait_for(
        &format!("{sweeps} more sweeps"),
        Duration::from_secs(60),
        || async { (env.sim.calls("DescribeInstances").await >= before + sweeps).then_some(()) },
    )
    .await;
}

const TAGS: (&str, &str) = (
    "        workload: batch\n      credentialsSecretRef",
    "        workload: batch\n        env: prod\n      credentialsSecretRef",
);
const GROUPS: (&str, &str) = (
    "        subnetId: subnet-7q8r9s0t\n      login",
    "        subnetId: subnet-7q8r9s0t\n        securityGroupIds: [sg-5t6u7v8w, sg-00000002]\n      login",
);
const DATA_DISK: (&str, &str) = (
    "      billing:\n        mode: Spot\n",
    "      billing:\n        mode: Spot\n      dataDisks: [{type: CLOUD_SSD, sizeGiB: 100}]\n",
);

#[tokio::test]
async fn template_changes_reach_running_machines_in_place_or_mark_them_out_of_date() {
    let env = TestEnv::start("set-template").await;
    env.apply_yaml_ok(&example());
    let set = ready_with(&env, 3).await;
    let status = set.status.unwrap();
    assert_eq!(status.updated_replicas, 3);
    let first_hash = status.template_hash.clone().unwrap();
    for kid in children(&env).await {
        assert_eq!(
            kid.metadata.annotations.unwrap()["cvm-operator.io/template-hash"],
            first_hash
        );
    }

    // Steady state: nothing to carry, so no write to any child over several resync periods
    // (the sweeper keeps describing them meanwhile).
    let steady = versions(&env).await;
    wait_sweeps(&env, 3).await;
    assert_eq!(
        versions(&env).await,
        steady,
        "a steady set wrote to its children"
    );

    // One apply: a tag and two security groups. Every child follows, and so does every
    // machine, in place: one tag call and one attribute call each, nothing launched or
    // terminated.
    env.apply_yaml_ok(&example_with(&[TAGS, GROUPS]));
    wait_for(
        "every machine with the new tag and groups",
        Duration::from_secs(90),
        || async {
            let instances = env.sim.instances().await;
            let done = instances.len() == 3
                && instances.iter().all(|i| {
                    i.tags.iter().any(|t| t.key == "env" && t.value == "prod")
                        && i.security_group_ids == ["sg-5t6u7v8w", "sg-00000002"]
                });
            done.then_some(())
        },
    )
    .await;
    let set = ready_with(&env, 3).await;
    let status = set.status.unwrap();
    assert_eq!(status.updated_replicas, 3);
    let second_hash = status.template_hash.clone().unwrap();
    assert_ne!(second_hash, first_hash);
    for kid in children(&env).await {
        assert_eq!(kid.spec.tags.as_ref().unwrap()["env"], "prod");
        assert_eq!(
            kid.spec.network.as_ref().unwrap().security_group_ids,
            Some(vec!["sg-5t6u7v8w".to_string(), "sg-00000002".to_string()])
        );
        assert_eq!(
            kid.metadata.annotations.as_ref().unwrap()["cvm-operator.io/template-hash"],
            second_hash
        );
    }
    assert_eq!(env.sim.calls("ModifyResourceTags").await, 3);
    assert_eq!(env.sim.calls("ModifyInstancesAttribute").await, 3);
    assert_eq!(env.sim.calls("RunInstances").await, 1);
    assert_eq!(env.sim.calls("TerminateInstances").await, 0);
    assert_eq!(env.sim.calls("StopInstances").await, 0);

    // A data disk added: no running machine can take it. No child is written, all three
    // are out of date, and the set says why.
    let before = shapes(&env).await;
    env.apply_yaml_ok(&example_with(&[TAGS, GROUPS, DATA_DISK]));
    let sets: Api<CvmInstanceSet> = Api::namespaced(env.client.clone(), &env.namespace);
    let status = wait_for("all three out of date", Duration::from_secs(60), || async {
        let set = sets.get(SET).await.ok()?;
        let status = set.status?;
        let seen = status.observed_generation == set.metadata.generation;
        (seen && status.updated_replicas == 0).then_some(status)
    })
    .await;
    let outdated = status.condition("OutOfDate").unwrap();
    assert_eq!(outdated.status, "True");
    assert!(outdated.message.contains("dataDisks"), "{outdated:?}");
    assert_eq!(status.condition("Ready").unwrap().status, "True");
    wait_sweeps(&env, 2).await;
    assert_eq!(shapes(&env).await, before, "no child patched");
    let table = kubectl_ok(env.kubectl().args(["get", "cvmset", SET]));
    assert!(table.contains("UP-TO-DATE"), "{table}");

    // A child deleted by hand is replaced from the current template (with the disk)...
    let api: Api<CvmInstance> = Api::namespaced(env.client.clone(), &env.namespace);
    let gone = before.keys().next().unwrap().clone();
    api.delete(&gone, &DeleteParams::default()).await.unwrap();
    wait_for(
        "a replacement, up to date",
        Duration::from_secs(90),
        || async {
            let set = sets.get(SET).await.ok()?;
            let status = set.status?;
            let kids = children(&env).await;
            let done = status.updated_replicas == 1
                && status.ready_replicas == 3
                && kids.len() == 3
                && kids
                    .iter()
                    .all(|k| k.metadata.name.as_deref() != Some(gone.as_str()));
            done.then_some(())
        },
    )
    .await;
    let fresh: Vec<String> = children(&env)
        .await
        .into_iter()
        .filter(|k| !before.contains_key(k.metadata.name.as_deref().unwrap()))
        .map(|k| {
            assert_eq!(k.spec.data_disks.as_ref().map(Vec::len), Some(1));
            k.metadata.name.unwrap()
        })
        .collect();
    assert_eq!(fresh.len(), 1);

    // ...and a scale-down of one removes an out-of-date machine, not that newest one (the
    // example's order is Newest).
    scale(&env, 2);
    ready_with(&env, 2).await;
    wait_for("one child gone", Duration::from_secs(60), || async {
        (children(&env).await.len() == 2).then_some(())
    })
    .await;
    let kept: Vec<String> = children(&env)
        .await
        .into_iter()
        .map(|k| k.metadata.name.unwrap())
        .collect();
    assert!(
        kept.contains(&fresh[0]),
        "the up-to-date machine was removed: {kept:?}"
    );
    assert_eq!(set_status(&env).await.updated_replicas, 1);

    // A Surge rollout replaces the last out-of-date machine: its replacement launched on
    // top of the replicas, the old one removed once the new one is Ready; the set never has
    // fewer than 2 Ready machines on the way.
    let runs = env.sim.calls("RunInstances").await;
    let terminations = env.sim.calls("TerminateInstances").await;
    kubectl_ok(env.kubectl().args([
        "patch",
        "cvmset",
        SET,
        "--type=merge",
        "-p",
        r#"{"spec":{"rollout":{"strategy":"Surge","maxSurge":1}}}"#,
    ]));
    let fewest_ready = std::cell::Cell::new(i32::MAX);
    let rolling_seen = std::cell::Cell::new(false);
    wait_for("the rollout done", Duration::from_secs(90), || {
        let sets = sets.clone();
        let (fewest, seen) = (&fewest_ready, &rolling_seen);
        async move {
            let set = sets.get(SET).await.ok()?;
            let status = set.status?;
            fewest.set(fewest.get().min(status.ready_replicas));
            let rolling = status
                .condition("Reconciling")
                .is_some_and(|c| c.status == "True" && c.reason == "RollingOut");
            seen.set(seen.get() || rolling);
            let done = status.observed_generation == set.metadata.generation
                && status.updated_replicas == 2
                && status.ready_replicas == 2
                && status.replicas == 2
                && status.condition("Ready")?.status == "True";
            done.then_some(())
        }
    })
    .await;
    let fewest_ready = fewest_ready.get();
    assert!(
        fewest_ready >= 2,
        "a rollout dropped to {fewest_ready} Ready"
    );
    assert!(rolling_seen.get(), "Reconciling/RollingOut while it runs");
    wait_for("the old child gone", Duration::from_secs(60), || async {
        (children(&env).await.len() == 2).then_some(())
    })
    .await;
    for kid in children(&env).await {
        assert_eq!(kid.spec.data_disks.as_ref().map(Vec::len), Some(1));
    }
    assert_eq!(env.sim.calls("RunInstances").await, runs + 1);
    assert_eq!(env.sim.calls("TerminateInstances").await, terminations + 1);
    assert_eq!(running(&env).await, 2);
    let outdated = set_status(&env).await.condition("OutOfDate").cloned();
    assert_eq!(outdated.map(|c| c.status).as_deref(), Some("False"));
}

#[tokio::test]
async fn several_sets_scaled_to_zero_together_terminate_in_one_call_each() {
    // Three sets of 40 (120 children) scaled to zero in one command: each set terminates its
    // victims in one call before deleting them, and no child terminates its instance again
    // (a TerminateInstances naming a TERMINATING instance is refused whole).
    const SETS: [&str; 3] = ["alpha", "beta", "gamma"];
    let env = TestEnv::start("set-many-down").await;
    for name in SETS {
        env.apply_yaml_ok(
            &example()
                .replace("  name: workers", &format!("  name: {name}"))
                .replace("  replicas: 3", "  replicas: 40"),
        );
    }
    let sets: Api<CvmInstanceSet> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_for(
        "three sets of 40 Ready",
        Duration::from_secs(120),
        || async {
            let mut ready = 0;
            for name in SETS {
                let status = sets.get(name).await.ok()?.status?;
                if status.condition("Ready")?.status == "True" && status.ready_replicas == 40 {
                    ready += 1;
                }
            }
            (ready == SETS.len()).then_some(())
        },
    )
    .await;
    assert_eq!(running(&env).await, 120);
    assert_eq!(env.sim.calls("TerminateInstances").await, 0);

    let started = std::time::Instant::now();
    let mut scale = env.kubectl();
    scale.arg("scale").arg("--replicas=0");
    for name in SETS {
        scale.arg(format!("cvmset/{name}"));
    }
    kubectl_ok(&mut scale);
    let all: Api<CvmInstance> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_for(
        "every child gone and every machine terminated",
        Duration::from_secs(120),
        || async {
            let kids = all.list(&Default::default()).await.ok()?.items;
            (kids.is_empty() && running(&env).await == 0).then_some(())
        },
    )
    .await;
    eprintln!(
        "3 sets of 40 scaled to 0 together: every child gone {:.1} s after the scale",
        started.elapsed().as_secs_f64()
    );
    let outcomes = env.sim.outcomes("TerminateInstances").await;
    let calls: u64 = outcomes.values().sum();
    assert_eq!(
        outcomes.get("Success").copied().unwrap_or_default(),
        calls,
        "no TerminateInstances refused: {outcomes:?}"
    );
    assert!(
        (1..=3).contains(&calls),
        "one call per set at most (all spot): {outcomes:?}"
    );
    for name in SETS {
        let set = sets.get(name).await.unwrap();
        let status = set.status.unwrap_or_default();
        assert!(
            status.removal.is_none(),
            "{name}: the removal record is cleared once the children are deleted: {:?}",
            status.removal
        );
        assert_eq!(status.replicas, 0);
    }
    // The children's milestones are told by their sets, once each: 120 children made no
    // Normal Event of their own (each would be an API write on the way to Ready or gone).
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), &env.namespace);
    let events = events.list(&Default::default()).await.unwrap().items;
    let told = |kind: &str, type_: &str, reason: Option<&str>| {
        events
            .iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some(kind))
            .filter(|e| e.type_.as_deref() == Some(type_))
            .filter(|e| reason.is_none() || e.reason.as_deref() == reason)
            .count()
    };
    assert_eq!(
        told("CvmInstance", "Normal", None),
        0,
        "no child tells its own Ready, adoption or termination"
    );
    assert!(told("CvmInstanceSet", "Normal", Some("Ready")) >= SETS.len());
    assert_eq!(
        told("CvmInstanceSet", "Normal", Some("ScaledDown")),
        SETS.len()
    );
}
