//! Every crash point of a set's batch launch: the operator dies at each effect (the launch
//! record, RunInstances, the IDs recorded, each child created, each child's own writes),
//! once before it is sent and once after it took effect but before the answer arrived; a
//! fresh process takes over. Whatever the point, the cloud ends with exactly the requested
//! machines launched (no second batch, no leak) and a Ready set of adopted children.

use std::sync::Arc;

use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use cvm_operator::api::{CvmInstanceSet, LaunchPhase};
use cvm_operator::controller;
use cvm_operator::set::reconcile;

use crate::crash::{CrashSwitch, When};
use crate::driver::{Crashed, Process, STEP, World, is_ready, machine_spec};
use crate::fake_cloud::Timing;

const SET: &str = "workers";
const REPLICAS: i32 = 3;
/// Passes (the set, then each child) a launch may take before the test gives up.
const MAX_PASSES: usize = 60;

async fn world() -> (World, Api<CvmInstanceSet>) {
    let world = World::bare("set-crash", Timing::default()).await;
    let sets: Api<CvmInstanceSet> =
        Api::namespaced(world.api.clone().into_client(), namespace(&world));
    let set: CvmInstanceSet = serde_json::from_value(json!({
        "apiVersion": "cvm-operator.io/v1alpha1",
        "kind": "CvmInstanceSet",
        "metadata": {"name": SET},
        "spec": {
            "replicas": REPLICAS,
            "template": {"spec": machine_spec()}
        }
    }))
    .expect("a valid CvmInstanceSet");
    sets.create(&PostParams::default(), &set)
        .await
        .expect("create the set");
    (world, sets)
}

fn namespace(world: &World) -> &str {
    world.api.namespace().expect("a namespaced Api")
}

/// One pass: the set, then every child, as the API server has them now.
async fn pass(world: &World, process: &Process, sets: &Api<CvmInstanceSet>) -> Result<(), Crashed> {
    let ctx = process.context();
    if let Some(set) = sets.get_opt(SET).await.expect("read the set") {
        let result = reconcile::reconcile(Arc::new(set), ctx.clone()).await;
        if process.crashed() {
            return Err(Crashed);
        }
        result.unwrap_or_else(|e| panic!("set reconcile failed without a crash: {e}"));
    }
    let children = world
        .api
        .list(&ListParams::default())
        .await
        .expect("list the children")
        .items;
    for child in children {
        let result = controller::reconcile(Arc::new(child), ctx.clone()).await;
        if process.crashed() {
            return Err(Crashed);
        }
        result.unwrap_or_else(|e| panic!("child reconcile failed without a crash: {e}"));
    }
    Ok(())
}

async fn complete_at(world: &World, sets: &Api<CvmInstanceSet>, replicas: i32) -> bool {
    let Some(set) = sets.get_opt(SET).await.expect("read the set") else {
        return false;
    };
    let Some(status) = set.status.as_ref() else {
        return false;
    };
    let children = world.api.list(&ListParams::default()).await.unwrap().items;
    status
        .condition("Ready")
        .is_some_and(|c| c.status == "True")
        && status.observed_generation == set.metadata.generation
        && status.launches.is_empty()
        && children.len() == replicas as usize
        && children.iter().all(is_ready)
}

async fn until_complete(
    world: &World,
    process: &Process,
    sets: &Api<CvmInstanceSet>,
) -> Result<(), Crashed> {
    until_complete_at(world, process, sets, REPLICAS).await
}

async fn until_complete_at(
    world: &World,
    process: &Process,
    sets: &Api<CvmInstanceSet>,
    replicas: i32,
) -> Result<(), Crashed> {
    for _ in 0..MAX_PASSES {
        if complete_at(world, sets, replicas).await {
            return Ok(());
        }
        pass(world, process, sets).await?;
        world.clock.advance(STEP);
    }
    let set = sets.get_opt(SET).await.unwrap();
    panic!(
        "the set never completed: status {:?}; cloud calls {:?}",
        set.and_then(|s| s.status),
        world.cloud.calls()
    );
}

/// A set of 3 launched by a process that crashes at `crash` (if it comes), then finished by a
/// fresh one; how many effects the first one made.
async fn launch_with_crash(crash: Option<(usize, When)>) -> usize {
    let (world, sets) = world().await;
    let first = world
        .process(match crash {
            Some((n, when)) => CrashSwitch::at(n, when),
            None => CrashSwitch::never(),
        })
        .await;
    let effects = match until_complete(&world, &first, &sets).await {
        Ok(()) => {
            if crash.is_none() {
                eprintln!("the effects of a clean launch: {:?}", first.effect_log());
            }
            first.effects()
        }
        Err(Crashed) => {
            let fresh = world.process(CrashSwitch::never()).await;
            until_complete(&world, &fresh, &sets)
                .await
                .unwrap_or_else(|_| panic!("the fresh process crashed"));
            first.effects()
        }
    };
    assert_eq!(
        world.cloud.launched(),
        REPLICAS as u64,
        "{crash:?}: exactly the requested machines ever launched"
    );
    assert_eq!(
        world.cloud.live().len(),
        REPLICAS as usize,
        "{crash:?}: no leak"
    );
    let status = sets.get(SET).await.unwrap().status.unwrap();
    assert!(
        status
            .launches
            .iter()
            .all(|l| l.phase != LaunchPhase::Pending),
        "{crash:?}"
    );
    effects
}

#[tokio::test]
async fn every_crash_point_of_a_batch_launch_ends_with_exactly_the_replicas() {
    let total = every_crash_point(launch_with_crash).await;
    // The record, RunInstances, the IDs, three children, and each child's own writes.
    assert!(total >= 6, "a clean launch made only {total} effects");
}

/// A complete set of 3 scaled to 1 by a process that crashes at `crash` (if it comes), then
/// finished by a fresh one; how many effects the scaling process made. The set records its
/// victims in its status (the intent), terminates them in one call, then deletes them; a
/// crash in between leaves a record the next reconcile finishes, never a victim counted as
/// a replica or replaced as lost.
async fn scale_down_with_crash(crash: Option<(usize, When)>) -> usize {
    const TO: i32 = 1;
    let (world, sets) = world().await;
    let setup = world.process(CrashSwitch::never()).await;
    until_complete(&world, &setup, &sets)
        .await
        .unwrap_or_else(|_| panic!("the launch crashed"));
    let terminations_before = world.cloud.calls_of("TerminateInstances");
    sets.patch(
        SET,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": TO}})),
    )
    .await
    .expect("scale the set");
    let first = world
        .process(match crash {
            Some((n, when)) => CrashSwitch::at(n, when),
            None => CrashSwitch::never(),
        })
        .await;
    if until_complete_at(&world, &first, &sets, TO).await.is_err() {
        let fresh = world.process(CrashSwitch::never()).await;
        until_complete_at(&world, &fresh, &sets, TO)
            .await
            .unwrap_or_else(|_| panic!("the fresh process crashed"));
    } else if crash.is_none() {
        let log = first.effect_log();
        eprintln!("the effects of a clean scale-down: {log:?}");
        let at = |effect: &str| log.iter().position(|e| e.starts_with(effect));
        let terminated = at("TerminateInstances").expect("a TerminateInstances call");
        assert!(
            at("PUT").is_some_and(|recorded| recorded < terminated),
            "the removal is recorded before anything is terminated: {log:?}"
        );
        assert!(
            at("DELETE").is_some_and(|deleted| terminated < deleted),
            "terminated before deleted, so no finalizer waits on the set: {log:?}"
        );
    }
    // Crash or not: the victims end in one call (a removal resumed after the call describes
    // them first and finds nothing left to terminate), and no finalizer terminates again.
    assert_eq!(
        world.cloud.calls_of("TerminateInstances") - terminations_before,
        1,
        "{crash:?}: the set terminates both victims in one call; their finalizers only follow them: {:?}",
        world.cloud.calls()
    );
    assert_eq!(
        world.cloud.launched(),
        REPLICAS as u64,
        "{crash:?}: nothing launched again"
    );
    assert_eq!(
        world.cloud.live().len(),
        TO as usize,
        "{crash:?}: every victim terminated, the survivor untouched"
    );
    first.effects()
}

#[tokio::test]
async fn every_crash_point_of_a_scale_down_terminates_every_victim() {
    let total = every_crash_point(scale_down_with_crash).await;
    // Two children deleted, one TerminateInstances, each finalizer released.
    assert!(total >= 5, "a clean scale-down made only {total} effects");
}

/// Runs `scenario` clean, then crashing before and after each effect the clean run made;
/// how many effects that was.
async fn every_crash_point<F, Fut>(scenario: F) -> usize
where
    F: Fn(Option<(usize, When)>) -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let total = scenario(None).await;
    for n in 1..=total {
        for when in [When::Before, When::After] {
            let made = scenario(Some((n, when))).await;
            assert!(made >= n, "crash point {n} {when:?} was never reached");
        }
    }
    eprintln!(
        "crash points covered: {total} effects x before/after = {}",
        total * 2
    );
    total
}
