//! Password rotation from the Secret: the operator never watches Secrets, so a new password
//! is found when the resource reads its Secret again (every reconcile, and once a resync
//! period while Ready). It is a restart-class change: with restarts forbidden it waits and
//! says so; allowed, it is one stop window with one ResetInstancesPassword. The password
//! reaches neither status, Events nor the log; the status keeps only a salted digest.

use serde_json::json;

use crate::day2::{NAME, condition, mutating_calls, patch, ready, until};
use crate::env::{TestEnv, kubectl_ok, web};
use cvm_operator::api::CvmInstance;

const FIRST: &str = "Pw-first-e2e-7Qz!";
const SECOND: &str = "Pw-second-e2e-3Kx?";

fn password_secret(password: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: login}}\nstringData: {{password: \"{password}\"}}\n"
    )
}

fn password_hash(obj: &CvmInstance) -> Option<String> {
    obj.status.as_ref()?.password_hash.clone()
}

#[tokio::test]
async fn a_new_password_in_the_secret_is_one_stop_window_and_one_reset_only_when_allowed() {
    let env = TestEnv::start("day2-password").await;
    env.apply_yaml_ok(&password_secret(FIRST));
    env.apply_yaml_ok(&web(NAME).replace(
        "keyIds: [skey-3x4y5z6a]",
        "passwordSecretRef: {name: login}",
    ));
    env.wait_ready(NAME, 90);
    let created = env.get(NAME).await;
    let first_hash = password_hash(&created).expect("the digest of the password created with");
    assert_eq!(first_hash.len(), 64, "{first_hash}");

    // Restarts not allowed (the default): the new password waits, and the status says why.
    let before = mutating_calls(&env).await;
    env.apply_yaml_ok(&password_secret(SECOND));
    let waiting = until(&env, "RestartRequired for the password", |o| {
        condition(o, "Stalled") == Some(("True".into(), "RestartRequired".into()))
    })
    .await;
    let pending = waiting.status.clone().unwrap().pending_changes.unwrap();
    assert_eq!(pending[0].field, "login.passwordSecretRef");
    assert_eq!(password_hash(&waiting), Some(first_hash.clone()));
    assert_eq!(
        mutating_calls(&env).await,
        before,
        "no call without a restart allowed"
    );

    // Allowed: one stop, one reset, one start; the new digest recorded; Ready again.
    patch(&env, json!({"updatePolicy": {"restart": "IfNeeded"}}));
    let reset = until(&env, "the new password applied", |o| {
        ready(o)
            && o.status.as_ref().unwrap().instance_state.as_deref() == Some("RUNNING")
            && password_hash(o).is_some_and(|h| h != first_hash)
    })
    .await;
    assert_eq!(env.sim.calls("StopInstances").await, 1);
    assert_eq!(env.sim.calls("ResetInstancesPassword").await, 1);
    assert_eq!(env.sim.calls("StartInstances").await, 1);
    assert!(reset.status.unwrap().pending_changes.is_none());

    // Nothing more: the same Secret read again each resync is no change.
    let settled = mutating_calls(&env).await;
    let sweeps = env.sim.calls("DescribeInstances").await;
    crate::support::wait_for("two sweeps", std::time::Duration::from_secs(30), || async {
        (env.sim.calls("DescribeInstances").await >= sweeps + 2).then_some(())
    })
    .await;
    assert_eq!(mutating_calls(&env).await, settled);

    let everything = kubectl_ok(env.kubectl().args(["get", "cvm,events", "-o", "yaml"]));
    for password in [FIRST, SECOND] {
        assert!(
            !everything.contains(password),
            "a password in status or Events"
        );
        let log = env.operator.as_ref().unwrap().log();
        assert!(!log.contains(password), "a password in the operator's log");
    }
    let events = env.event_reasons();
    assert!(events.contains("UpdatingInstance"), "{events}");
}
