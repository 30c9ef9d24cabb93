//! Every crash point of a resource's life: the operator dies at each effect of create, observe
//! and delete, once before the effect is sent and once after it took effect but before the
//! answer arrived; a fresh process takes over. Whatever the point, the cloud ends with
//! exactly one instance launched, a Ready resource, and after deletion nothing left.

use crate::crash::{CrashSwitch, When};
use crate::driver::{Crashed, Process, World, is_ready, uid};
use crate::fake_cloud::Timing;

/// Create until Ready (checking there is exactly one instance), delete, then until gone.
/// Safe to run again by a fresh process after a crash: each phase starts where things are.
async fn life(world: &World, process: &Process) -> Result<(), Crashed> {
    process.until_ready(world).await?;
    if let Some(object) = world.get().await
        && object.metadata.deletion_timestamp.is_none()
    {
        assert!(is_ready(&object));
        let live = world.cloud.live();
        assert_eq!(live.len(), 1, "one instance at Ready: {live:?}");
        let status = object.status.clone().unwrap();
        assert_eq!(
            status.instance_id.as_deref(),
            Some(live[0].instance_id.as_str())
        );
        assert_eq!(
            live[0].tag("cvm-operator.io/uid"),
            Some(uid(&object).as_str())
        );
        world.delete().await;
    }
    process.until_gone(world).await
}

/// The whole life with a process that crashes at `crash` (if it comes), then a fresh one.
/// Returns how many effects the first process made.
async fn life_with_crash(crash: Option<(usize, When)>) -> usize {
    let world = World::new("crash", Timing::default(), serde_json::json!({})).await;
    let first = world
        .process(match crash {
            Some((n, when)) => CrashSwitch::at(n, when),
            None => CrashSwitch::never(),
        })
        .await;
    let effects = match life(&world, &first).await {
        Ok(()) => {
            assert!(
                crash.is_none_or(|(n, _)| n > first.effects()),
                "{crash:?} never came"
            );
            if crash.is_none() {
                eprintln!("the effects of a clean life: {:?}", first.effect_log());
            }
            first.effects()
        }
        Err(Crashed) => {
            let fresh = world.process(CrashSwitch::never()).await;
            life(&world, &fresh)
                .await
                .unwrap_or_else(|_| panic!("the fresh process crashed"));
            first.effects()
        }
    };
    assert!(
        world.get().await.is_none(),
        "{crash:?}: the resource is gone"
    );
    assert_eq!(
        world.cloud.launched(),
        1,
        "{crash:?}: exactly one instance ever launched"
    );
    assert!(
        world.cloud.live().is_empty(),
        "{crash:?}: nothing left running"
    );
    effects
}

#[tokio::test]
async fn every_crash_point_ends_with_one_instance_and_no_leak() {
    let total = life_with_crash(None).await;
    // Finalizer, token, ID, Ready, RunInstances, TerminateInstances, finalizer removal at least.
    assert!(total >= 7, "a clean life made only {total} effects");
    for n in 1..=total {
        for when in [When::Before, When::After] {
            let made = life_with_crash(Some((n, when))).await;
            assert!(made >= n, "crash point {n} {when:?} was never reached");
        }
    }
    eprintln!(
        "crash points covered: {total} effects x before/after = {}",
        total * 2
    );
}
