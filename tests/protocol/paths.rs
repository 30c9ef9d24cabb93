//! The protocol's branches one by one, with time moved by hand: grace periods expire exactly
//! when they should, recoveries make exactly the calls they should.

use std::time::Duration;

use serde_json::json;
use tencent_cloud::error::CloudError;

use crate::crash::{CrashSwitch, When};
use crate::driver::{Crashed, World, condition_reason, is_ready, uid};
use crate::fake_cloud::Timing;

fn api_error(action: &str, code: &str) -> CloudError {
    CloudError::Api {
        action: action.into(),
        code: code.into(),
        message: "scripted".into(),
        request_id: "req-scripted".into(),
    }
}

/// Reconciles until the status records an instance ID; returns it.
async fn until_instance_id(world: &World, process: &crate::driver::Process) -> String {
    process
        .drive(world, "an instance ID", |o| {
            o.and_then(|o| o.status.as_ref())
                .is_some_and(|s| s.instance_id.is_some())
        })
        .await
        .expect("no crash");
    let object = world.get().await.unwrap();
    object.status.unwrap().instance_id.unwrap()
}

#[tokio::test]
async fn an_instance_slow_to_appear_is_awaited_for_appear_grace_then_replaced() {
    let world = World::new("appear", Timing::default(), json!({})).await;
    let process = world.process(CrashSwitch::never()).await;
    let first = until_instance_id(&world, &process).await;
    // DescribeInstances does not know the new instance yet.
    world.cloud.set_hidden(&first, true);

    process.step(&world).await.unwrap();
    let object = world.get().await.unwrap();
    assert_eq!(
        condition_reason(&object, "Reconciling").as_deref(),
        Some("Provisioning")
    );
    world.clock.advance(Duration::from_secs(240));
    process.step(&world).await.unwrap();
    assert_eq!(
        world.cloud.calls_of("RunInstances"),
        1,
        "still within appear_grace"
    );
    assert_eq!(
        world.get().await.unwrap().status.unwrap().instance_id,
        Some(first.clone())
    );

    // Past the five minutes: counted as vanished, a new attempt with a new token.
    world.clock.advance(Duration::from_secs(61));
    process.until_ready(&world).await.unwrap();
    let status = world.get().await.unwrap().status.unwrap();
    assert_eq!(status.attempt, Some(1));
    assert!(status.client_token.unwrap().ends_with("-1"));
    assert_ne!(status.instance_id, Some(first));
    assert_eq!(world.cloud.calls_of("RunInstances"), 2);
}

#[tokio::test]
async fn deletion_waits_tag_grace_for_an_instance_whose_id_was_never_recorded() {
    let timing = Timing {
        tag_delay: Duration::from_secs(30),
        ..Timing::default()
    };
    let world = World::new("tag-grace", timing, json!({})).await;
    // RunInstances took effect, but the answer (the ID) never reached the status.
    let first = world.process(crash_after_run_instances().await).await;
    assert!(matches!(first.until_ready(&world).await, Err(Crashed)));
    assert_eq!(world.cloud.launched(), 1);
    world.delete().await;

    let fresh = world.process(CrashSwitch::never()).await;
    fresh.step(&world).await.unwrap();
    let object = world.get().await.expect("the finalizer holds the resource");
    assert_eq!(
        condition_reason(&object, "Reconciling").as_deref(),
        Some("ConfirmingNoInstance"),
        "the tag lookup is empty, but a creation may be on its way"
    );
    assert_eq!(world.cloud.live().len(), 1);
    fresh.until_gone(&world).await.unwrap();
    assert!(
        world.cloud.live().is_empty(),
        "found by tag within tag_grace and terminated"
    );
    assert_eq!(world.cloud.calls_of("TerminateInstances"), 1);
}

/// A switch that crashes right after RunInstances takes effect, its answer lost. Which effect
/// that is comes from a probe run in a world of its own.
async fn crash_after_run_instances() -> CrashSwitch {
    let probe_world = World::new("probe", Timing::default(), json!({})).await;
    let probe = probe_world.process(CrashSwitch::never()).await;
    until_instance_id(&probe_world, &probe).await;
    let n = probe
        .effect_log()
        .iter()
        .position(|e| e == "RunInstances")
        .expect("RunInstances is an effect")
        + 1;
    CrashSwitch::at(n, When::After)
}

#[tokio::test]
async fn a_reclaimed_instance_is_replaced_with_a_new_attempt() {
    let world = World::new("reclaim", Timing::default(), json!({})).await;
    let process = world.process(CrashSwitch::never()).await;
    process.until_ready(&world).await.unwrap();
    let first = world.instance_id().await;

    world.cloud.reclaim(&first);
    // The sweeper notices and triggers the resource's reconcile, which replaces the instance.
    process.sweep().await;
    process.step(&world).await.unwrap();
    let object = world.get().await.unwrap();
    assert_eq!(
        condition_reason(&object, "Reconciling").as_deref(),
        Some("InstanceVanished")
    );
    process.until_ready(&world).await.unwrap();
    let object = world.get().await.unwrap();
    let status = object.status.clone().unwrap();
    assert_ne!(status.instance_id.as_deref(), Some(first.as_str()));
    assert_eq!(status.attempt, Some(1));
    let live = world.cloud.live();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].tag("cvm-operator.io/attempt"), Some("1"));
    assert_eq!(
        live[0].tag("cvm-operator.io/uid"),
        Some(uid(&object).as_str())
    );
}

#[tokio::test]
async fn a_failed_launch_stalls_until_the_spec_changes() {
    let world = World::new(
        "launch-failed",
        Timing::default(),
        json!({"deletionPolicy": "Delete"}),
    )
    .await;
    let process = world.process(CrashSwitch::never()).await;
    let first = until_instance_id(&world, &process).await;
    world.cloud.fail_launch(&first);
    process.until_stalled(&world, "LaunchFailed").await.unwrap();
    for _ in 0..5 {
        world.clock.advance(Duration::from_secs(600));
        process.step(&world).await.unwrap();
    }
    assert_eq!(
        world.cloud.calls_of("RunInstances"),
        1,
        "no retry without a spec change"
    );

    world.patch_spec(json!({"deletionPolicy": "Orphan"})).await;
    process.until_ready(&world).await.unwrap();
    assert_eq!(world.cloud.calls_of("RunInstances"), 2);
    assert_eq!(
        world.cloud.live().len(),
        1,
        "the failed instance was terminated"
    );
}

#[tokio::test]
async fn a_quota_error_stalls_with_its_code_and_recovers_when_the_quota_returns() {
    let world = World::new("quota", Timing::default(), json!({})).await;
    world.cloud.fail_next(
        "RunInstances",
        api_error("RunInstances", "LimitExceeded.InstanceQuota"),
    );
    let process = world.process(CrashSwitch::never()).await;
    process
        .until_stalled(&world, "LimitExceeded_InstanceQuota")
        .await
        .unwrap();
    assert_eq!(world.cloud.launched(), 0);
    process.until_ready(&world).await.unwrap();
    assert_eq!(world.cloud.launched(), 1);
    let status = world.get().await.unwrap().status.unwrap();
    assert!(
        status.client_token.unwrap().ends_with("-0"),
        "the same attempt, the same token"
    );
}

#[tokio::test]
async fn orphan_leaves_the_instance_and_never_terminates() {
    let world = World::new(
        "orphan",
        Timing::default(),
        json!({"deletionPolicy": "Orphan"}),
    )
    .await;
    let process = world.process(CrashSwitch::never()).await;
    process.until_ready(&world).await.unwrap();
    assert!(is_ready(&world.get().await.unwrap()));
    world.delete().await;
    process.until_gone(&world).await.unwrap();
    assert_eq!(world.cloud.live().len(), 1);
    assert_eq!(world.cloud.calls_of("TerminateInstances"), 0);
}
