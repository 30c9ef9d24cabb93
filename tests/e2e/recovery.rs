//! Recovery: spot reclaim, launch failure, and an operator killed mid-create.

use std::time::Duration;

use crate::env::{Operator, REPO, TestEnv};
use crate::support::wait_for;

fn example(file: &str) -> String {
    format!("{REPO}/examples/{file}")
}

#[tokio::test]
async fn reclaimed_spot_instance_is_replaced_and_status_follows() {
    let env = TestEnv::start("reclaim").await;
    env.apply_file(&example("spot.yaml"));
    env.wait_ready("batch-1", 90);
    let obj = env.get("batch-1").await;
    let uid = obj.metadata.uid.clone().unwrap();
    let old_id = obj.status.unwrap().instance_id.unwrap();

    env.sim.admin.reclaim(&old_id).await.unwrap();
    let api = env.api();
    let new_status = wait_for(
        "a replacement instance to be Ready",
        Duration::from_secs(90),
        || {
            let api = api.clone();
            let old_id = old_id.clone();
            async move {
                let status = api.get("batch-1").await.ok()?.status?;
                let id = status.instance_id.clone()?;
                (id != old_id && status.is_ready()).then_some(status)
            }
        },
    )
    .await;
    assert_eq!(new_status.attempt, Some(1));
    assert_eq!(new_status.client_token, Some(format!("cvmop-{uid}-1")));
    let live: Vec<_> = env
        .sim
        .instances_of(&uid)
        .await
        .into_iter()
        .filter(|i| i.instance_state != "TERMINATING")
        .collect();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(Some(&live[0].instance_id), new_status.instance_id.as_ref());
    assert_eq!(
        new_status.private_ip_addresses.as_ref(),
        Some(&live[0].private_ip_addresses)
    );
    let events = env.event_reasons();
    assert!(
        events.contains("InstanceVanished") || events.contains("InstanceTerminating"),
        "{events}"
    );
}

#[tokio::test]
async fn launch_failure_is_stalled_with_the_cloud_message() {
    let env = TestEnv::start("launch-failed").await;
    env.sim
        .admin
        .launch_failures(1, "the image is incompatible with the instance type")
        .await
        .unwrap();
    env.apply_file(&example("spot.yaml"));
    let obj = env
        .wait_reason("batch-1", "LaunchFailed", Duration::from_secs(60))
        .await;
    let status = obj.status.unwrap();
    assert_eq!(status.instance_state.as_deref(), Some("LAUNCH_FAILED"));
    let stalled = status.condition("Stalled").unwrap();
    assert_eq!(stalled.status, "True");
    assert!(
        stalled.message.contains("the image is incompatible"),
        "{}",
        stalled.message
    );
    // Not retried until the spec changes: still exactly one instance.
    assert_eq!(env.sim.calls("RunInstances").await, 1);
}

#[tokio::test]
async fn operator_killed_after_run_instances_still_ends_with_exactly_one_instance() {
    let env = TestEnv::start("crash").await;
    // RunInstances creates the instance at once, but its answer takes 4 s to arrive:
    // the operator is killed inside that window, before it can record the ID.
    env.sim.delay_next_answer("RunInstances", 4000).await;
    env.apply_file(&example("pay-as-you-go.yaml"));
    let api = env.api();
    let uid = wait_for("the resource to get a UID", Duration::from_secs(10), || {
        let api = api.clone();
        async move { api.get("web-1").await.ok()?.metadata.uid }
    })
    .await;
    let sim = &env.sim;
    wait_for(
        "the simulator to create the instance",
        Duration::from_secs(30),
        || {
            let uid = uid.clone();
            async move { (!sim.instances_of(&uid).await.is_empty()).then_some(()) }
        },
    )
    .await;
    let operator = env.operator.as_ref().unwrap();
    operator.kill();
    let status = env.get("web-1").await.status.unwrap();
    assert_eq!(
        status.instance_id, None,
        "the kill must land before the ID is written"
    );
    assert!(
        status.client_token.is_some(),
        "the token must be persisted before RunInstances"
    );

    let restarted = Operator::start_named(
        &env.dir,
        "operator-restarted",
        &env.sim.endpoint,
        &env.namespace,
        false,
        &[],
    );
    env.wait_ready("web-1", 90);
    let instances = env.sim.instances_of(&uid).await;
    assert_eq!(
        instances.len(),
        1,
        "exactly one instance after the crash: {instances:?}"
    );
    let status = env.get("web-1").await.status.unwrap();
    assert_eq!(status.instance_id.as_ref(), Some(&instances[0].instance_id));
    let events = env.event_reasons();
    assert!(
        events.contains("InstanceAdopted"),
        "the restarted operator adopts, it does not create: {events}"
    );
    drop(restarted);
}
