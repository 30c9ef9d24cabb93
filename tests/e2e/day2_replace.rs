//! Replacement against the simulator: with `updatePolicy.replace: Recreate`, a field no API
//! changes (the zone, which DescribeInstances shows; userData, which it does not) makes the
//! operator terminate the instance and launch exactly one new one, with a new attempt and
//! token; an Event says Replacing. Without the opt-in, admission refuses such edits
//! (tests/e2e/validation.rs).

use serde_json::json;

use crate::day2::{NAME, patch, ready, until};
use crate::env::{TestEnv, web};
use cvm_operator::api::CvmInstance;

fn instance_id(obj: &CvmInstance) -> Option<String> {
    obj.status.as_ref()?.instance_id.clone()
}

/// The instance `id` in the simulator is gone or on its way.
async fn terminated(env: &TestEnv, id: &str) -> bool {
    env.sim
        .instances()
        .await
        .iter()
        .find(|i| i.instance_id == id)
        .is_none_or(|i| matches!(i.instance_state.as_str(), "TERMINATING" | "SHUTDOWN"))
}

#[tokio::test]
async fn a_field_no_api_changes_replaces_the_instance_once_when_recreate_is_allowed() {
    let env = TestEnv::start("day2-replace").await;
    env.apply_yaml_ok(&web(NAME).replace(
        "  deletionPolicy: Delete\n",
        "  deletionPolicy: Delete\n  updatePolicy: {replace: Recreate}\n",
    ));
    env.wait_ready(NAME, 90);
    let first = instance_id(&env.get(NAME).await).unwrap();

    // The zone: seen in DescribeInstances.
    patch(&env, json!({"zone": "ap-guangzhou-4"}));
    let moved = until(&env, "Ready on a new instance", |o| {
        ready(o) && instance_id(o).is_some_and(|id| id != first)
    })
    .await;
    let second = instance_id(&moved).unwrap();
    assert!(terminated(&env, &first).await, "the old instance goes");
    let new = env.sim.instances().await;
    let new = new.iter().find(|i| i.instance_id == second).unwrap();
    assert_eq!(new.zone, "ap-guangzhou-4");
    assert_eq!(env.sim.calls("TerminateInstances").await, 1);
    assert_eq!(
        env.sim.calls("RunInstances").await,
        2,
        "exactly one new instance"
    );
    let status = moved.status.unwrap();
    assert_eq!(status.attempt, Some(1), "a new attempt, with its own token");
    let events = env.event_reasons();
    assert!(events.contains("Replacing"), "{events}");

    // userData: DescribeInstances does not show it; the record of what the instance was
    // created with does.
    patch(
        &env,
        json!({"userData": "#!/bin/sh\necho replaced > /etc/motd\n"}),
    );
    let replaced = until(&env, "Ready on a third instance", |o| {
        ready(o) && instance_id(o).is_some_and(|id| id != second)
    })
    .await;
    assert!(terminated(&env, &second).await);
    assert_eq!(env.sim.calls("TerminateInstances").await, 2);
    assert_eq!(env.sim.calls("RunInstances").await, 3);
    assert_eq!(replaced.status.unwrap().attempt, Some(2));
}
