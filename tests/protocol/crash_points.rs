//! Every crash point of a resource's life: the operator dies at each effect of create, observe
//! and delete, once before the effect is sent and once after it took effect but before the
//! answer arrived; a fresh process takes over. Whatever the point, the cloud ends with
//! exactly one instance launched, a Ready resource, and after deletion nothing left.

use crate::crash::{CrashSwitch, When};
use crate::driver::{Crashed, Process, SECRET, World, is_ready, uid};
use crate::fake_cloud::Timing;

/// Create until Ready (checking there is exactly one instance), delete, then until gone.
/// Safe to run again by a fresh process after a crash: each phase starts where things are.
/// With a credentials Secret, the Secret is deleted right after the resource, as the
/// namespace controller does.
async fn life(world: &World, process: &Process, secret: bool) -> Result<(), Crashed> {
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
        if secret {
            world
                .secrets
                .delete(SECRET, &Default::default())
                .await
                .expect("delete the credentials Secret");
        }
    }
    process.until_gone(world).await
}

/// The whole life with a process that crashes at `crash` (if it comes), then a fresh one.
/// Returns how many effects the first process made.
async fn life_with_crash(crash: Option<(usize, When)>, secret: bool) -> usize {
    let world = if secret {
        World::with_credentials_secret("crash-secret", Timing::default()).await
    } else {
        World::new("crash", Timing::default(), serde_json::json!({})).await
    };
    let first = world
        .process(match crash {
            Some((n, when)) => CrashSwitch::at(n, when),
            None => CrashSwitch::never(),
        })
        .await;
    let effects = match life(&world, &first, secret).await {
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
            life(&world, &fresh, secret)
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
    if secret {
        let left = world
            .secrets
            .get_opt(SECRET)
            .await
            .expect("read the Secret");
        assert!(left.is_none(), "{crash:?}: the Secret was let go: {left:?}");
    }
    effects
}

/// Every crash point of [`life_with_crash`], before and after each effect; returns the
/// number of effects of a clean life.
async fn every_crash_point(secret: bool) -> usize {
    let total = life_with_crash(None, secret).await;
    for n in 1..=total {
        for when in [When::Before, When::After] {
            let made = life_with_crash(Some((n, when)), secret).await;
            assert!(made >= n, "crash point {n} {when:?} was never reached");
        }
    }
    eprintln!(
        "crash points covered: {total} effects x before/after = {}",
        total * 2
    );
    total
}

#[tokio::test]
async fn every_crash_point_ends_with_one_instance_and_no_leak() {
    let total = every_crash_point(false).await;
    // Finalizer, token, ID, Ready, RunInstances, TerminateInstances, finalizer removal at least.
    assert!(total >= 7, "a clean life made only {total} effects");
}

/// The namespace-deletion case: the credentials Secret is deleted with the resource. A crash
/// at any point, including between the Secret's release and the resource's own finalizer,
/// still ends with the instance terminated, the resource gone and the Secret gone.
#[tokio::test]
async fn every_crash_point_with_the_credentials_secret_deleted_alongside() {
    let total = every_crash_point(true).await;
    // As above, plus holding the Secret, recording the release and releasing the Secret.
    assert!(total >= 10, "a clean life made only {total} effects");
}
