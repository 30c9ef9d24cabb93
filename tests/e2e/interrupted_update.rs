//! An operator killed (SIGKILL) in the middle of a day-2 update: the simulator has accepted
//! the call and started its operation, the answer is still on the way, and the operation is
//! still running when a new operator starts. That operator must wait for it and finish the
//! update without making the call again: no second type change, no second reimage, no reboot.

use std::time::Duration;

use cvm_sim::admin_client::SimInstance;
use cvm_sim::faults::FaultSpec;
use serde_json::{Value, json};

use crate::env::{Operator, TestEnv, sim_config, web};
use crate::support::wait_for;

const NAME: &str = "interrupted";

/// The next call of `action` takes effect at once, but its answer takes a minute: long
/// enough that the operator is always killed before it arrives.
async fn delay_answer(env: &TestEnv, action: &str) {
    add_fault(env, action, None, Some(60_000)).await;
}

async fn add_fault(
    env: &TestEnv,
    action: &str,
    latency_ms: Option<u64>,
    response_delay_ms: Option<u64>,
) {
    env.sim
        .admin
        .add_fault(&FaultSpec {
            action: Some(action.to_string()),
            code: None,
            message: None,
            rate: 1.0,
            count: Some(1),
            latency_ms,
            drop_connection: false,
            response_delay_ms,
        })
        .await
        .unwrap();
}

fn patch(env: &TestEnv, spec: Value) {
    env.patch_spec(NAME, spec);
}

/// A world whose operations take long enough to be held before they end by themselves.
async fn start(name: &str) -> TestEnv {
    let mut config = sim_config();
    config["timing"]["operationSeconds"] = json!(5.0);
    TestEnv::start_with(name, config, true).await
}

async fn in_sim(env: &TestEnv, id: &str) -> Option<SimInstance> {
    let instances = env.sim.instances().await;
    instances.into_iter().find(|i| i.instance_id == id)
}

/// Waits until the simulator has accepted `action` on the instance (its answer is held
/// back), holds the operation it started so that it is still running when the operator
/// restarts, and returns the instance as it is then.
async fn until_accepted_and_held(env: &TestEnv, id: &str, action: &str) -> SimInstance {
    let instance = wait_for(
        &format!("the simulator to accept {action}"),
        Duration::from_secs(90),
        || async {
            let instance = in_sim(env, id).await?;
            (instance.latest_operation.as_deref() == Some(action)).then_some(instance)
        },
    )
    .await;
    env.sim.admin.hold_operation(id).await.unwrap();
    instance
}

/// The restarted operator saw the operation it does not know the answer to, and waits.
async fn until_waiting_for(env: &TestEnv, action: &str) {
    let api = env.api();
    let waiting = format!("waiting for {action} to finish");
    wait_for(&waiting.clone(), Duration::from_secs(60), || {
        let api = api.clone();
        let waiting = waiting.clone();
        async move {
            let status = api.get_opt(NAME).await.ok()??.status?;
            let ready = status.condition("Ready")?;
            ready.message.contains(&waiting).then_some(())
        }
    })
    .await;
}

/// SIGKILL while the answer is on the way, checked against the status: the operator
/// recorded the call before sending it, and never learned its RequestId.
async fn kill_mid_call(env: &TestEnv, action: &str) {
    env.operator.as_ref().unwrap().kill();
    let status = env.get(NAME).await.status.unwrap();
    let operation = status
        .operation
        .expect("the call is recorded before it is sent");
    assert_eq!(operation.action, action);
    assert_eq!(
        operation.request_id, None,
        "the kill must land before the answer"
    );
}

fn restart(env: &TestEnv, extra: &[&str]) -> Operator {
    Operator::start_named(
        &env.dir,
        "operator-restarted",
        &env.sim.endpoint,
        &env.namespace,
        false,
        extra,
    )
}

/// Ready for the current generation, and `check` holds.
async fn until_updated(
    env: &TestEnv,
    what: &str,
    check: impl Fn(&cvm_operator::api::CvmInstanceStatus) -> bool,
) -> cvm_operator::api::CvmInstanceStatus {
    let api = env.api();
    wait_for(what, Duration::from_secs(90), || {
        let api = api.clone();
        let check = &check;
        async move {
            let obj = api.get_opt(NAME).await.ok()??;
            let status = obj.status?;
            let current = status.observed_generation == obj.metadata.generation;
            (current && status.is_ready() && check(&status)).then_some(status)
        }
    })
    .await
}

/// Ready and running the new image, and the operator has seen a few sweeps since.
async fn until_reimaged(env: &TestEnv) -> cvm_operator::api::CvmInstanceStatus {
    let status = until_updated(env, "the new image, running", |s| {
        s.instance_state.as_deref() == Some("RUNNING")
            && s.observed
                .as_ref()
                .and_then(|o| o.image_id.as_deref())
                .is_some_and(|image| image == "img-new00000")
    })
    .await;
    several_sweeps(env).await;
    status
}

/// Some resyncs (2 s each) later: time for a wrong second call to show in the counters.
async fn several_sweeps(env: &TestEnv) {
    let sweeps = env.sim.calls("DescribeInstances").await;
    wait_for("three more sweeps", Duration::from_secs(30), || async {
        (env.sim.calls("DescribeInstances").await >= sweeps + 3).then_some(())
    })
    .await;
}

async fn ready_instance(env: &TestEnv) -> String {
    env.apply_yaml_ok(&web(NAME));
    env.wait_ready(NAME, 90);
    env.get(NAME).await.status.unwrap().instance_id.unwrap()
}

#[tokio::test]
async fn operator_killed_during_a_type_change_applies_it_exactly_once() {
    let env = start("interrupted-type").await;
    let id = ready_instance(&env).await;
    delay_answer(&env, "ResetInstancesType").await;

    // Two restart-class changes: one stop window, the host name inside it, the type last
    // (ResetInstancesType starts the instance again).
    patch(
        &env,
        json!({
            "instanceType": "S5.LARGE8",
            "hostName": "interrupted-2",
            "updatePolicy": {"restart": "IfNeeded"},
        }),
    );
    let at_kill = until_accepted_and_held(&env, &id, "ResetInstancesType").await;
    kill_mid_call(&env, "ResetInstancesType").await;
    let restarted = restart(&env, &[]);
    until_waiting_for(&env, "ResetInstancesType").await;
    several_sweeps(&env).await;
    // The simulator counts a call when it answers, and the killed call's answer is a minute
    // away: any count here is a second call.
    assert_eq!(
        env.sim.calls("ResetInstancesType").await,
        0,
        "not sent again"
    );
    assert_eq!(env.sim.calls("StopInstances").await, 1);
    env.sim.admin.complete_operation(&id).await.unwrap();

    let status = until_updated(&env, "the new type, running", |s| {
        let observed = s.observed.clone().unwrap_or_default();
        observed.instance_type.as_deref() == Some("S5.LARGE8")
            && s.instance_state.as_deref() == Some("RUNNING")
    })
    .await;
    several_sweeps(&env).await;

    let instance = in_sim(&env, &id).await.unwrap();
    assert_eq!(instance.instance_type, "S5.LARGE8");
    assert_eq!(instance.instance_state, "RUNNING");
    assert_eq!(
        instance.latest_operation_request_id, at_kill.latest_operation_request_id,
        "nothing was done to the instance after the interrupted type change"
    );
    assert_eq!(env.sim.calls("StopInstances").await, 1, "one stop window");
    assert_eq!(
        env.sim.calls("ModifyInstancesAttribute").await,
        1,
        "the host name"
    );
    // The killed call is counted once its held answer is due, if at all.
    assert!(env.sim.calls("ResetInstancesType").await <= 1);
    assert_eq!(
        env.sim.calls("StartInstances").await,
        0,
        "the type change starts it"
    );
    assert_eq!(env.sim.calls("RebootInstances").await, 0);
    assert!(
        status.pending_changes.unwrap_or_default().is_empty(),
        "nothing left to do"
    );
    drop(restarted);
}

#[tokio::test]
async fn operator_killed_during_a_reimage_reinstalls_exactly_once() {
    let env = start("interrupted-reimage").await;
    let id = ready_instance(&env).await;
    delay_answer(&env, "ResetInstance").await;

    patch(
        &env,
        json!({"imageId": "img-new00000", "updatePolicy": {"reimage": "Allow"}}),
    );
    let at_kill = until_accepted_and_held(&env, &id, "ResetInstance").await;
    assert_eq!(at_kill.reimage_count, 1);
    kill_mid_call(&env, "ResetInstance").await;
    let restarted = restart(&env, &[]);
    until_waiting_for(&env, "ResetInstance").await;
    several_sweeps(&env).await;
    assert_eq!(env.sim.calls("ResetInstance").await, 0, "not sent again");
    assert_eq!(env.sim.admin.reimage_count(&id).await.unwrap(), 1);
    env.sim.admin.complete_operation(&id).await.unwrap();

    let status = until_reimaged(&env).await;

    let instance = in_sim(&env, &id).await.unwrap();
    assert_eq!(instance.image_id, "img-new00000");
    assert_eq!(
        env.sim.admin.reimage_count(&id).await.unwrap(),
        1,
        "exactly one reinstall"
    );
    assert_eq!(
        instance.latest_operation_request_id,
        at_kill.latest_operation_request_id
    );
    assert!(env.sim.calls("ResetInstance").await <= 1);
    assert_eq!(env.sim.calls("RebootInstances").await, 0);
    assert_eq!(env.sim.calls("StopInstances").await, 0);
    assert!(status.pending_changes.unwrap_or_default().is_empty());
    drop(restarted);
}

/// Killed right after the reimage was recorded, while its request is still on the way (the
/// simulator holds it 5 s before handling it): whether it ever takes effect depends on what
/// the server does with a request whose client is gone. Either way the restarted operator
/// reimages exactly once: it waits for the record to settle (15 s here, 120 s by default),
/// and makes the call only if the instance never showed it.
#[tokio::test]
async fn operator_killed_before_a_reimage_arrived_reinstalls_exactly_once() {
    let env = start("unsent-reimage").await;
    let id = ready_instance(&env).await;
    add_fault(&env, "ResetInstance", Some(5_000), None).await;

    patch(
        &env,
        json!({"imageId": "img-new00000", "updatePolicy": {"reimage": "Allow"}}),
    );
    let api = env.api();
    wait_for(
        "the reimage to be recorded",
        Duration::from_secs(60),
        || {
            let api = api.clone();
            async move {
                let operation = api.get(NAME).await.ok()?.status?.operation?;
                (operation.action == "ResetInstance").then_some(())
            }
        },
    )
    .await;
    kill_mid_call(&env, "ResetInstance").await;
    assert_eq!(
        env.sim.admin.reimage_count(&id).await.unwrap(),
        0,
        "killed before the simulator handled the request"
    );
    let restarted = restart(&env, &["--operation-settle-seconds", "15"]);

    let status = until_reimaged(&env).await;
    let resent = restarted.log().contains("action=\"ResetInstance\"");
    eprintln!("the restarted operator sent ResetInstance itself: {resent}");

    assert_eq!(
        env.sim.admin.reimage_count(&id).await.unwrap(),
        1,
        "exactly one reinstall"
    );
    assert_eq!(env.sim.calls("ResetInstance").await, 1);
    assert_eq!(in_sim(&env, &id).await.unwrap().image_id, "img-new00000");
    assert!(status.pending_changes.unwrap_or_default().is_empty());
    drop(restarted);
}
