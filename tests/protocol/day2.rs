//! Day 2, reconcile by reconcile: a spec edit becomes exactly the one call it needs, recorded
//! in the status before it is sent; console edits are reported or corrected per policy and
//! not fought forever; restart-class changes wait for the policy; a reimage happens exactly
//! once even when the operator dies around its call.

use std::time::Duration;

use serde_json::json;

use crate::crash::{CrashSwitch, When};
use crate::driver::{Crashed, Process, World, condition_reason, is_ready};
use crate::fake_cloud::Timing;

const MODIFY: &str = "ModifyInstancesAttribute";

async fn ready_world(prefix: &str, spec: serde_json::Value) -> (World, Process, String) {
    let world = World::new(prefix, Timing::default(), spec).await;
    let process = world.process(CrashSwitch::never()).await;
    process.until_ready(&world).await.unwrap();
    let id = world
        .get()
        .await
        .unwrap()
        .status
        .unwrap()
        .instance_id
        .unwrap();
    (world, process, id)
}

/// What DescribeInstances shows of `id` now.
fn described(world: &World, id: &str) -> tencent_cloud::types::Instance {
    world
        .cloud
        .live()
        .into_iter()
        .find(|i| i.instance_id == id)
        .expect("the instance exists")
}

/// `times` more resync periods, a minute apart: a sweep of the instances followed in bulk
/// (which triggers the resource when its instance changed), then a reconcile.
async fn settle(world: &World, process: &Process, times: usize) {
    for _ in 0..times {
        world.clock.advance(Duration::from_secs(60));
        process.sweep().await;
        process.step(world).await.unwrap();
    }
}

fn condition(world_object: &cvm_operator::api::CvmInstance, type_: &str) -> (String, String) {
    let c = world_object
        .status
        .as_ref()
        .and_then(|s| s.condition(type_))
        .unwrap_or_else(|| panic!("no {type_} condition"));
    (c.status.clone(), c.reason.clone())
}

#[tokio::test]
async fn a_renamed_spec_is_one_call_recorded_before_it_is_sent() {
    let (world, process, id) = ready_world("d2-rename", json!({"instanceName": "web"})).await;
    let calls_at_ready = world.cloud.calls().len();
    settle(&world, &process, 2).await;
    assert_eq!(world.cloud.changes_of(MODIFY), 0, "nothing to change");

    world
        .patch_spec(json!({"instanceName": "web-renamed"}))
        .await;
    process.step(&world).await.unwrap();
    let object = world.get().await.unwrap();
    let status = object.status.clone().unwrap();
    let operation = status.operation.expect("recorded");
    assert_eq!(operation.action, MODIFY);
    assert_eq!(operation.field, "instanceName");
    assert!(operation.request_id.is_some(), "its answer recorded too");
    assert_eq!(
        condition_reason(&object, "Reconciling").as_deref(),
        Some("Updating")
    );
    assert_eq!(world.cloud.changes_of(MODIFY), 1);

    process.until_ready(&world).await.unwrap();
    let status = world.get().await.unwrap().status.unwrap();
    assert_eq!(
        status.observed.unwrap().instance_name.as_deref(),
        Some("web-renamed")
    );
    assert_eq!(
        described(&world, &id).instance_name.as_deref(),
        Some("web-renamed")
    );
    settle(&world, &process, 3).await;
    assert_eq!(world.cloud.changes_of(MODIFY), 1, "exactly one call");
    assert!(world.cloud.calls().len() > calls_at_ready);
}

#[tokio::test]
async fn a_console_edit_is_reported_by_default_and_corrected_when_asked_until_contested() {
    let (world, process, id) = ready_world(
        "d2-drift",
        json!({"network": {"securityGroupIds": ["sg-aaaaaaaa", "sg-bbbbbbbb"]}}),
    )
    .await;
    world.cloud.console_edit(&id, |i| {
        i.security_group_ids = vec!["sg-bbbbbbbb".into(), "sg-aaaaaaaa".into()]
    });
    // The bulk sweep notices the change (no call of its own per instance).
    process.sweep().await;
    process.step(&world).await.unwrap();
    let object = world.get().await.unwrap();
    assert_eq!(
        condition(&object, "Drifted"),
        ("True".into(), "Drifted".into())
    );
    assert!(is_ready(&object), "reported, the instance still serves");
    assert_eq!(world.cloud.changes_of(MODIFY), 0, "Report: no write");

    world
        .patch_spec(json!({"updatePolicy": {"drift": "Correct"}}))
        .await;
    process.until_ready(&world).await.unwrap();
    settle(&world, &process, 2).await;
    assert_eq!(world.cloud.changes_of(MODIFY), 1, "corrected once");
    let object = world.get().await.unwrap();
    assert_eq!(condition(&object, "Drifted").0, "False");

    // Someone keeps changing it back: after three corrections the operator stops.
    for _ in 0..4 {
        world
            .cloud
            .console_edit(&id, |i| i.security_group_ids = vec!["sg-cccccccc".into()]);
        settle(&world, &process, 3).await;
    }
    let object = world.get().await.unwrap();
    assert_eq!(
        condition(&object, "Drifted"),
        ("True".into(), "Contested".into())
    );
    assert_eq!(
        world.cloud.changes_of(MODIFY),
        3,
        "three corrections, then none"
    );
}

#[tokio::test]
async fn restart_class_changes_wait_for_the_policy_then_share_one_stop() {
    let (world, process, _) = ready_world("d2-restart", json!({})).await;
    world
        .patch_spec(json!({"instanceType": "S5.LARGE8", "login": {"keyIds": ["skey-bbbbbbbb"]}}))
        .await;
    process
        .until_stalled(&world, "RestartRequired")
        .await
        .unwrap();
    settle(&world, &process, 2).await;
    assert_eq!(world.cloud.changes_of("StopInstances"), 0, "restart: Never");
    let status = world.get().await.unwrap().status.unwrap();
    let pending: Vec<String> = status
        .pending_changes
        .unwrap()
        .into_iter()
        .map(|p| p.field)
        .collect();
    assert!(pending.contains(&"instanceType".to_string()), "{pending:?}");

    world
        .patch_spec(json!({"updatePolicy": {"restart": "IfNeeded"}}))
        .await;
    process.until_ready(&world).await.unwrap();
    settle(&world, &process, 2).await;
    assert_eq!(
        world.cloud.changes_of("StopInstances"),
        1,
        "one stop window"
    );
    assert_eq!(world.cloud.changes_of("ResetInstancesType"), 1);
    assert_eq!(world.cloud.changes_of("DisassociateInstancesKeyPairs"), 1);
    assert_eq!(world.cloud.changes_of("AssociateInstancesKeyPairs"), 1);
    assert_eq!(
        world.cloud.changes_of("StartInstances"),
        0,
        "the type change starts it again"
    );
    let observed = world.get().await.unwrap().status.unwrap().observed.unwrap();
    assert_eq!(observed.instance_type.as_deref(), Some("S5.LARGE8"));
    assert_eq!(observed.key_ids, vec!["skey-bbbbbbbb".to_string()]);
    assert_eq!(observed.instance_state.as_deref(), Some("RUNNING"));
}

#[tokio::test]
async fn power_state_stops_and_starts_the_instance_once_each() {
    let (world, process, _) = ready_world("d2-power", json!({})).await;
    world.patch_spec(json!({"powerState": "Stopped"})).await;
    process.until_ready(&world).await.unwrap();
    let object = world.get().await.unwrap();
    assert_eq!(
        condition_reason(&object, "Ready").as_deref(),
        Some("InstanceStopped")
    );
    assert_eq!(
        object.status.unwrap().instance_state.as_deref(),
        Some("STOPPED")
    );
    settle(&world, &process, 2).await;
    assert_eq!(world.cloud.changes_of("StopInstances"), 1);

    world.patch_spec(json!({"powerState": "Running"})).await;
    process.until_ready(&world).await.unwrap();
    settle(&world, &process, 2).await;
    let object = world.get().await.unwrap();
    assert_eq!(
        condition_reason(&object, "Ready").as_deref(),
        Some("InstanceRunning")
    );
    assert_eq!(world.cloud.changes_of("StartInstances"), 1);
    assert_eq!(world.cloud.changes_of("StopInstances"), 1);
}

/// The operator dies at the reimage's call, before it is sent or after it took effect; a
/// fresh process finishes the update. Either way exactly one ResetInstance.
async fn reimage_with_crash(when: When) {
    let (world, process, id) = ready_world("d2-reimage", json!({})).await;
    drop(process);
    world
        .patch_spec(json!({"imageId": "img-new00000", "updatePolicy": {"reimage": "Allow"}}))
        .await;
    // Effect 1 of the new process: the operation recorded in status; 2: ResetInstance.
    let dying = world.process(CrashSwitch::at(2, when)).await;
    assert!(matches!(dying.until_ready(&world).await, Err(Crashed)));
    eprintln!(
        "effects {:?} calls {:?}",
        dying.effect_log(),
        world.cloud.calls()
    );
    assert_eq!(
        world
            .get()
            .await
            .unwrap()
            .status
            .unwrap()
            .operation
            .unwrap()
            .action,
        "ResetInstance",
        "recorded before the call"
    );

    let fresh = world.process(CrashSwitch::never()).await;
    // Unsent calls are made again only once the record is old enough to tell.
    world.clock.advance(Duration::from_secs(150));
    fresh.until_ready(&world).await.unwrap();
    settle(&world, &fresh, 3).await;
    assert_eq!(
        world.cloud.changes_of("ResetInstance"),
        1,
        "{when:?}: exactly one reimage"
    );
    assert_eq!(
        described(&world, &id).image_id.as_deref(),
        Some("img-new00000")
    );
}

#[tokio::test]
async fn a_reimage_happens_once_when_the_operator_dies_after_sending_it() {
    reimage_with_crash(When::After).await;
}

#[tokio::test]
async fn a_reimage_recorded_but_never_sent_is_sent_once() {
    reimage_with_crash(When::Before).await;
}

/// A reimage recorded but never sent (the process died before the call, or the request was
/// lost): a fresh process says the update is under way, not Ready, while the record settles,
/// then makes the call once. After an earlier reimage the instance's latest operation is a
/// ResetInstance too, but under the RequestId it had when the call was recorded: that one is
/// not taken for the lost call.
async fn unsent_reimage(earlier_reimage: bool) {
    let (world, process, id) = ready_world("d2-unsent", json!({})).await;
    world
        .patch_spec(json!({"updatePolicy": {"reimage": "Allow"}}))
        .await;
    if earlier_reimage {
        world.patch_spec(json!({"imageId": "img-new00000"})).await;
    }
    process.until_ready(&world).await.unwrap();
    let before = world.cloud.changes_of("ResetInstance");
    drop(process);

    world.patch_spec(json!({"imageId": "img-new11111"})).await;
    let dying = world.process(CrashSwitch::at(2, When::Before)).await;
    assert!(matches!(dying.until_ready(&world).await, Err(Crashed)));
    let fresh = world.process(CrashSwitch::never()).await;
    fresh.step(&world).await.unwrap();
    let object = world.get().await.unwrap();
    assert!(!is_ready(&object), "not Ready while the reimage is unsent");
    assert_eq!(
        condition(&object, "Reconciling"),
        ("True".to_string(), "Updating".to_string())
    );
    // Minutes pass: the record settles, the change is made, and only once.
    settle(&world, &fresh, 3).await;
    fresh.until_ready(&world).await.unwrap();
    settle(&world, &fresh, 3).await;
    assert_eq!(world.cloud.changes_of("ResetInstance"), before + 1);
    assert_eq!(
        described(&world, &id).image_id.as_deref(),
        Some("img-new11111")
    );
}

#[tokio::test]
async fn an_unsent_reimage_is_reported_under_way_and_made_once_it_settled() {
    unsent_reimage(false).await;
}

#[tokio::test]
async fn an_unsent_reimage_is_not_mistaken_for_the_earlier_one() {
    unsent_reimage(true).await;
}
