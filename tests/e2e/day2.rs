//! Day 2 against the simulator: a Ready instance costs no writes; each spec edit becomes the
//! calls it needs and nothing more; a console edit is reported, or corrected when asked;
//! stopping without charging releases the public IP and starting brings a new one; a
//! restart-class change waits for the update policy.

use std::time::Duration;

use serde_json::{Value, json};

use crate::env::{TestEnv, kubectl_ok, web};
use crate::gitops::{ARGO_CD_SCRIPT, gitops_health};
use crate::support::wait_for;
use cvm_operator::api::CvmInstance;

pub(crate) const MUTATING: &[&str] = &[
    "ModifyInstancesAttribute",
    "ModifyResourceTags",
    "StartInstances",
    "StopInstances",
    "ResetInstancesType",
    "ResetInstance",
    "ResetInstancesPassword",
    "RunInstances",
    "TerminateInstances",
    "RebootInstances",
    "ResetInstancesInternetMaxBandwidth",
    "ModifyInstancesProject",
    "ResizeInstanceDisks",
    "AssociateInstancesKeyPairs",
    "DisassociateInstancesKeyPairs",
    "TagResources",
    "UnTagResources",
];

pub(crate) const NAME: &str = "day2";

pub(crate) fn patch(env: &TestEnv, spec: Value) {
    env.patch_spec(NAME, spec);
}

/// Waits until the resource is Ready for its current generation and `check` holds.
pub(crate) async fn until(
    env: &TestEnv,
    what: &str,
    check: impl Fn(&CvmInstance) -> bool,
) -> CvmInstance {
    let api = env.api();
    wait_for(what, Duration::from_secs(60), || {
        let api = api.clone();
        let check = &check;
        async move {
            let obj = api.get_opt(NAME).await.ok()??;
            let status = obj.status.as_ref()?;
            let current = status.observed_generation == obj.metadata.generation;
            (current && check(&obj)).then_some(obj)
        }
    })
    .await
}

fn observed(obj: &CvmInstance) -> cvm_operator::api::ObservedInstance {
    let status = obj.status.clone().unwrap_or_default();
    status.observed.unwrap_or_default()
}

pub(crate) fn ready(obj: &CvmInstance) -> bool {
    obj.status.as_ref().is_some_and(|s| s.is_ready())
}

pub(crate) fn condition(obj: &CvmInstance, type_: &str) -> Option<(String, String)> {
    let c = obj.status.as_ref()?.condition(type_)?;
    Some((c.status.clone(), c.reason.clone()))
}

async fn in_sim(env: &TestEnv, id: &str) -> cvm_sim::admin_client::SimInstance {
    let instances = env.sim.instances().await;
    instances
        .into_iter()
        .find(|i| i.instance_id == id)
        .expect("the instance in the simulator")
}

pub(crate) async fn mutating_calls(env: &TestEnv) -> Vec<(String, u64)> {
    let mut calls = Vec::new();
    for action in MUTATING {
        calls.push((action.to_string(), env.sim.calls(action).await));
    }
    calls
}

#[tokio::test]
async fn edits_make_exactly_their_calls_and_console_edits_are_reported_or_corrected() {
    let env = TestEnv::start("day2-edits").await;
    env.apply_yaml_ok(&web(NAME));
    env.wait_ready(NAME, 90);
    let id = env.get(NAME).await.status.unwrap().instance_id.unwrap();

    // Nothing to change: three sweeps (one DescribeInstances each, every resync period of
    // 2 s) pass without a single write.
    let before = mutating_calls(&env).await;
    let sweeps = env.sim.calls("DescribeInstances").await;
    wait_for("three sweeps", Duration::from_secs(30), || async {
        (env.sim.calls("DescribeInstances").await >= sweeps + 3).then_some(())
    })
    .await;
    assert_eq!(
        mutating_calls(&env).await,
        before,
        "no writes in steady state"
    );

    // In place, one call each.
    patch(&env, json!({"instanceName": "day2-renamed"}));
    until(&env, "the rename", |o| {
        ready(o) && observed(o).instance_name.as_deref() == Some("day2-renamed")
    })
    .await;
    assert_eq!(env.sim.calls("ModifyInstancesAttribute").await, 1);

    patch(&env, json!({"tags": {"team": "web", "cost-center": "42"}}));
    until(&env, "the new tag", |o| {
        ready(o) && observed(o).tags.get("cost-center").map(String::as_str) == Some("42")
    })
    .await;
    assert_eq!(env.sim.calls("ModifyResourceTags").await, 1);
    let instance = in_sim(&env, &id).await;
    assert!(
        instance
            .tags
            .iter()
            .any(|t| t.key == "cost-center" && t.value == "42")
    );
    assert!(
        instance.tags.iter().any(|t| t.key == "cvm-operator.io/uid"),
        "the operator's own tags stay"
    );

    // A console edit: reported (the default), not written back.
    env.sim
        .admin
        .mutate(&id, &json!({"instanceName": "renamed-in-console"}))
        .await
        .unwrap();
    let drifted = until(&env, "Drifted", |o| {
        condition(o, "Drifted").is_some_and(|(s, _)| s == "True")
    })
    .await;
    assert!(
        ready(&drifted),
        "drift is reported; the instance still serves"
    );
    assert_eq!(
        env.sim.calls("ModifyInstancesAttribute").await,
        1,
        "Report: no write"
    );

    // Asked to correct: set back, once.
    patch(&env, json!({"updatePolicy": {"drift": "Correct"}}));
    until(&env, "the correction", |o| {
        ready(o) && condition(o, "Drifted").is_some_and(|(s, _)| s == "False")
    })
    .await;
    assert_eq!(env.sim.calls("ModifyInstancesAttribute").await, 2);
    let instance = in_sim(&env, &id).await;
    assert_eq!(instance.instance_name, "day2-renamed");

    // While an operation runs on the instance (here someone else's, held by the simulator),
    // the resource is Reconciling: GitOps tools show it in progress, then healthy again.
    env.sim.admin.hold_operation(&id).await.unwrap();
    let updating = until(&env, "Updating", |o| {
        condition(o, "Reconciling") == Some(("True".into(), "Updating".into()))
    })
    .await;
    env.sim.admin.complete_operation(&id).await.unwrap();
    let healthy = until(&env, "Ready after the operation", ready).await;

    // Restart-class with restarts not allowed (the default): waits, no stop.
    patch(&env, json!({"instanceType": "S5.LARGE8"}));
    let stalled = until(&env, "RestartRequired", |o| {
        condition(o, "Stalled") == Some(("True".into(), "RestartRequired".into()))
    })
    .await;
    assert_eq!(env.sim.calls("StopInstances").await, 0);
    let stalled_object = stalled.clone();
    assert_eq!(
        stalled.status.unwrap().pending_changes.unwrap()[0].field,
        "instanceType"
    );
    let events = env.event_reasons();
    assert!(events.contains("DriftCorrected"), "{events}");

    // What Flux (kstatus) and Argo CD make of an update (docs/gitops.md).
    let objects: Vec<Value> = [&drifted, &updating, &healthy, &stalled_object]
        .iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .collect();
    let reports = gitops_health(&objects, ARGO_CD_SCRIPT, &[]);
    let seen: Vec<(&str, &str)> = reports
        .iter()
        .map(|r| (r.kstatus.status.as_str(), r.argocd.status.as_str()))
        .collect();
    for (state, report) in [
        "drifted (Report)",
        "updating",
        "updated",
        "restart required",
    ]
    .iter()
    .zip(&reports)
    {
        eprintln!(
            "{state:<18} kstatus {:<11} {:?} | Argo CD {:<11} {:?}",
            report.kstatus.status,
            report.kstatus.message,
            report.argocd.status,
            report.argocd.message
        );
    }
    assert_eq!(
        seen,
        [
            ("Current", "Healthy"),
            ("InProgress", "Progressing"),
            ("Current", "Healthy"),
            ("Failed", "Degraded"),
        ]
    );
    assert!(
        reports[3].argocd.message.contains("RestartRequired"),
        "{:?}",
        reports[3]
    );
}

#[tokio::test]
async fn stopping_without_charging_releases_the_public_ip_and_starting_brings_a_new_one() {
    let env = TestEnv::start("day2-power").await;
    env.apply_yaml_ok(&web(NAME));
    env.wait_ready(NAME, 90);
    let first_ip = env
        .get(NAME)
        .await
        .status
        .unwrap()
        .public_ip_addresses
        .unwrap();

    patch(
        &env,
        json!({"powerState": "Stopped", "stoppedMode": "StopCharging"}),
    );
    let stopped = until(&env, "STOPPED", |o| {
        ready(o) && o.status.as_ref().unwrap().instance_state.as_deref() == Some("STOPPED")
    })
    .await;
    let status = stopped.status.unwrap();
    assert_eq!(
        status.public_ip_addresses, None,
        "released with STOP_CHARGING"
    );
    let ready_condition = status.condition("Ready").unwrap();
    assert!(
        ready_condition
            .message
            .contains("public IP is released and starting it assigns a new one"),
        "the status says the address will change: {ready_condition:?}"
    );
    assert_eq!(
        status.observed.unwrap().stop_charging_mode.as_deref(),
        Some("STOP_CHARGING")
    );
    assert_eq!(env.sim.calls("StopInstances").await, 1);
    let column = kubectl_ok(
        env.kubectl()
            .args(["get", &format!("cvm/{NAME}"), "--no-headers"]),
    );
    assert!(column.contains("STOPPED"), "{column}");

    patch(
        &env,
        json!({"powerState": "Running", "stoppedMode": "KeepCharging"}),
    );
    let running = until(&env, "RUNNING with a public IP", |o| {
        ready(o)
            && o.status.as_ref().unwrap().instance_state.as_deref() == Some("RUNNING")
            && o.status.as_ref().unwrap().public_ip_addresses.is_some()
    })
    .await;
    let new_ip = running.status.unwrap().public_ip_addresses.unwrap();
    assert_ne!(
        new_ip, first_ip,
        "a new public IP after a STOP_CHARGING stop"
    );
    assert_eq!(env.sim.calls("StartInstances").await, 1);
    assert_eq!(env.sim.calls("StopInstances").await, 1);
}

/// The calls made since `before`, per mutating action, where they changed.
async fn calls_since(env: &TestEnv, before: &[(String, u64)]) -> Vec<(String, u64)> {
    let now = mutating_calls(env).await;
    now.iter()
        .zip(before)
        .filter(|((_, n), (_, b))| n != b)
        .map(|((action, n), (_, b))| (action.clone(), n - b))
        .collect()
}

/// Applies `spec` and waits until it is Ready with `check`; then exactly one call of
/// `action` was made, and no other mutating call.
async fn edit_is_one_call(
    env: &TestEnv,
    spec: Value,
    action: &str,
    check: impl Fn(&CvmInstance) -> bool,
) {
    let before = mutating_calls(env).await;
    patch(env, spec.clone());
    until(env, &format!("{spec} applied"), |o| ready(o) && check(o)).await;
    assert_eq!(
        calls_since(env, &before).await,
        vec![(action.to_string(), 1)],
        "{spec}: exactly one {action}"
    );
}

#[tokio::test]
async fn every_in_place_field_is_one_call_and_a_field_fought_over_ends_contested() {
    let env = TestEnv::start("day2-fields").await;
    env.apply_yaml_ok(&web(NAME));
    env.wait_ready(NAME, 90);
    let id = env.get(NAME).await.status.unwrap().instance_id.unwrap();

    // Security groups are an ordered list: a new one first is a new priority order.
    let groups = ["sg-1a2b3c4d", "sg-5t6u7v8w"];
    edit_is_one_call(
        &env,
        json!({"network": {"securityGroupIds": groups}}),
        "ModifyInstancesAttribute",
        |o| observed(o).security_group_ids == groups,
    )
    .await;
    assert_eq!(in_sim(&env, &id).await.security_group_ids, groups);

    edit_is_one_call(
        &env,
        json!({"network": {"publicIp": {"maxBandwidthOutMbps": 20}}}),
        "ResetInstancesInternetMaxBandwidth",
        |o| observed(o).internet_max_bandwidth_out == Some(20),
    )
    .await;
    edit_is_one_call(
        &env,
        json!({"projectId": 1001}),
        "ModifyInstancesProject",
        |o| observed(o).project_id == Some(1001),
    )
    .await;
    // Both disks grown in one edit: one ResizeInstanceDisks carries the system disk and the
    // data disks together.
    let before = mutating_calls(&env).await;
    patch(
        &env,
        json!({"systemDisk": {"sizeGiB": 80}, "dataDisks": [{"type": "CLOUD_SSD", "sizeGiB": 200, "deleteWithInstance": true}]}),
    );
    until(&env, "both disks grown", |o| {
        ready(o) && observed(o).system_disk_size == Some(80) && observed(o).data_disk_sizes == [200]
    })
    .await;
    assert_eq!(
        calls_since(&env, &before).await,
        vec![("ResizeInstanceDisks".to_string(), 1)]
    );
    // kubectl reads the same status (the object as stored, not a cache of the test's own).
    let printed = kubectl_ok(env.kubectl().args([
        "get",
        "cvminstance",
        NAME,
        "-o",
        "jsonpath={.status.observed.securityGroupIds} {.status.observed.projectId}",
    ]));
    assert_eq!(printed.trim(), r#"["sg-1a2b3c4d","sg-5t6u7v8w"] 1001"#);

    // A person who renames the instance in the console again and again: corrected three
    // times, then left alone and reported Contested, without another write.
    // (An omitted instanceName is not compared: the operator's default fills it.)
    let name = "day2-fields";
    patch(
        &env,
        json!({"instanceName": name, "updatePolicy": {"drift": "Correct"}}),
    );
    until(&env, "the name", |o| {
        ready(o) && observed(o).instance_name.as_deref() == Some(name)
    })
    .await;
    let corrections = env.sim.calls("ModifyInstancesAttribute").await;
    for round in 1..=3u64 {
        env.sim
            .admin
            .mutate(&id, &json!({"instanceName": format!("console-{round}")}))
            .await
            .unwrap();
        wait_for("the correction", Duration::from_secs(60), || async {
            let corrected = env.sim.calls("ModifyInstancesAttribute").await == corrections + round
                && in_sim(&env, &id).await.instance_name == name;
            corrected.then_some(())
        })
        .await;
    }
    env.sim
        .admin
        .mutate(&id, &json!({"instanceName": "console-4"}))
        .await
        .unwrap();
    // Ready again once the console's own operation has finished: the instance still serves.
    until(&env, "Contested and Ready", |o| {
        ready(o) && condition(o, "Drifted") == Some(("True".into(), "Contested".into()))
    })
    .await;
    // Several sweeps later the person's name stands and nothing was written.
    let sweeps = env.sim.calls("DescribeInstances").await;
    wait_for("three more sweeps", Duration::from_secs(30), || async {
        (env.sim.calls("DescribeInstances").await >= sweeps + 3).then_some(())
    })
    .await;
    assert_eq!(
        env.sim.calls("ModifyInstancesAttribute").await,
        corrections + 3
    );
    assert_eq!(in_sim(&env, &id).await.instance_name, "console-4");
    let events = env.event_reasons();
    assert!(events.contains("DriftCorrected"), "{events}");
}
