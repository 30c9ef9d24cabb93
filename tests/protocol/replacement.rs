//! Replacement (`updatePolicy.replace: Recreate`) at every crash point: the operator dies at
//! each effect of a zone change, before it is sent and after it took effect; a fresh process
//! takes over. Whatever the point, the old instance is terminated and exactly one new one is
//! launched (never two, never none), and the resource ends Ready on it.

use std::time::Duration;

use serde_json::json;

use crate::crash::{CrashSwitch, When};
use crate::driver::{Crashed, World};
use crate::fake_cloud::Timing;

const NEW_ZONE: &str = "ap-guangzhou-4";

/// A Ready instance in the old zone, then the zone edited; returns the old instance's ID.
async fn moved_world() -> (World, String) {
    let world = World::new(
        "replace",
        Timing::default(),
        json!({"updatePolicy": {"replace": "Recreate"}}),
    )
    .await;
    let settled = world.process(CrashSwitch::never()).await;
    settled.until_ready(&world).await.unwrap();
    let old = world.instance_id().await;
    world.patch_spec(json!({"zone": NEW_ZONE})).await;
    (world, old)
}

/// The replacement with a process that crashes at `crash` (if it comes), then a fresh one.
/// Returns how many effects the first process made.
async fn replacement_with_crash(crash: Option<(usize, When)>) -> usize {
    let (world, old) = moved_world().await;
    let first = world
        .process(match crash {
            Some((n, when)) => CrashSwitch::at(n, when),
            None => CrashSwitch::never(),
        })
        .await;
    let effects = match first.until_ready(&world).await {
        Ok(()) => {
            assert!(
                crash.is_none_or(|(n, _)| n > first.effects()),
                "{crash:?} never came"
            );
            if crash.is_none() {
                eprintln!(
                    "the effects of a clean replacement: {:?}",
                    first.effect_log()
                );
            }
            first.effects()
        }
        Err(Crashed) => {
            let fresh = world.process(CrashSwitch::never()).await;
            fresh
                .until_ready(&world)
                .await
                .unwrap_or_else(|_| panic!("the fresh process crashed"));
            first.effects()
        }
    };
    // Settled: later passes (a resync each, and an unrelated edit that makes a plan again)
    // replace nothing more.
    let after = world.process(CrashSwitch::never()).await;
    world.patch_spec(json!({"instanceName": "renamed"})).await;
    after.until_ready(&world).await.unwrap();
    for _ in 0..3 {
        world.clock.advance(Duration::from_secs(60));
        after.sweep().await;
        after.step(&world).await.unwrap();
    }
    let status = world.get().await.unwrap().status.unwrap();
    let live = world.cloud.live();
    assert_eq!(
        live.len(),
        1,
        "{crash:?}: one instance at the end: {live:?}"
    );
    let new = &live[0];
    assert_ne!(new.instance_id, old, "{crash:?}: the old instance is gone");
    assert_eq!(
        new.placement.as_ref().map(|p| p.zone.as_str()),
        Some(NEW_ZONE),
        "{crash:?}"
    );
    assert_eq!(
        status.instance_id.as_deref(),
        Some(new.instance_id.as_str())
    );
    assert_eq!(
        world.cloud.launched(),
        2,
        "{crash:?}: exactly one new instance launched: {:?}",
        world.cloud.calls()
    );
    effects
}

#[tokio::test]
async fn a_replacement_crashed_at_any_point_terminates_the_old_and_launches_one_new() {
    let total = replacement_with_crash(None).await;
    // TerminateInstances, the new attempt recorded, its token, RunInstances, its ID, Ready.
    assert!(total >= 5, "a clean replacement made only {total} effects");
    for n in 1..=total {
        for when in [When::Before, When::After] {
            let made = replacement_with_crash(Some((n, when))).await;
            assert!(made >= n, "crash point {n} {when:?} was never reached");
        }
    }
    eprintln!(
        "crash points covered: {total} effects x before/after = {}",
        total * 2
    );
}
