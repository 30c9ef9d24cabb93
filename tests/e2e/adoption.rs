//! Adoption of an instance that already exists, by `spec.instanceId`: observing it writes
//! nothing; managing it claims it with the resource's UID tag and changes only what differs;
//! no other resource, in this namespace or another, can take it over; deleting the resource
//! leaves the instance running unless told otherwise.

use std::time::Duration;

use serde_json::json;

use crate::env::{Operator, REPO, SECRET_ID, TestEnv, kubectl_ok};
use crate::support::{self, wait_for};
use cvm_operator::api::CvmInstance;

const ACTIONS_THAT_WRITE: &[&str] = &[
    "RunInstances",
    "ModifyInstancesAttribute",
    "ModifyResourceTags",
    "StopInstances",
    "StartInstances",
    "TerminateInstances",
];

fn adopting(name: &str, id: &str, extra: &str) -> String {
    format!(
        r#"apiVersion: cvm-operator.io/v1alpha1
kind: CvmInstance
metadata:
  name: {name}
spec:
  region: ap-guangzhou
  zone: ap-guangzhou-3
  instanceType: S5.MEDIUM2
  imageId: img-eb30mz89
  billing: {{mode: PayAsYouGo}}
  instanceName: adopted-by-git
  instanceId: {id}
{extra}"#
    )
}

async fn writes(env: &TestEnv) -> u64 {
    let mut total = 0;
    for action in ACTIONS_THAT_WRITE {
        total += env.sim.calls(action).await;
    }
    total
}

async fn stalled_with(api: &kube::Api<CvmInstance>, name: &str, reason: &str) -> CvmInstance {
    wait_for(
        &format!("{name} Stalled {reason}"),
        Duration::from_secs(60),
        || async {
            let obj = api.get_opt(name).await.ok()??;
            let stalled = obj.status.as_ref()?.condition("Stalled")?.clone();
            (stalled.status == "True" && stalled.reason == reason).then_some(obj)
        },
    )
    .await
}

#[tokio::test]
async fn an_existing_instance_is_observed_then_managed_and_never_taken_over_by_another() {
    let env = TestEnv::start("adopt").await;
    let id = env
        .sim
        .admin
        .create_instance(
            SECRET_ID,
            &json!({
                "Placement": {"Zone": "ap-guangzhou-3"},
                "InstanceType": "S5.MEDIUM2",
                "ImageId": "img-eb30mz89",
                "InstanceChargeType": "POSTPAID_BY_HOUR",
                "InstanceName": "made-by-hand"
            }),
            false,
        )
        .await
        .unwrap();
    let before = writes(&env).await;

    // Observe only: Ready, the differences reported, not one write.
    env.apply_yaml_ok(&adopting(
        "found",
        &id,
        "  managementPolicy: ObserveOnly\n  credentialsSecretRef: {name: tencentcloud}\n",
    ));
    env.wait_ready("found", 60);
    let observed = env.get("found").await.status.unwrap();
    assert_eq!(observed.instance_id.as_deref(), Some(id.as_str()));
    let drift = observed.drift.expect("the differences are reported");
    assert!(
        drift.fields.contains(&"instanceName".to_string()),
        "{drift:?}"
    );
    assert_eq!(writes(&env).await, before, "observing writes nothing");

    // Manage: the claim (one tag call) and only the difference (one rename).
    kubectl_ok(env.kubectl().args([
        "patch",
        "cvm/found",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"managementPolicy":"Manage"}}"#,
    ]));
    let api = env.api();
    wait_for("the rename", Duration::from_secs(60), || async {
        let instance = env
            .sim
            .instances()
            .await
            .into_iter()
            .find(|i| i.instance_id == id)?;
        (instance.instance_name == "adopted-by-git").then_some(())
    })
    .await;
    env.wait_ready("found", 60);
    assert_eq!(env.sim.calls("RunInstances").await, 0, "never RunInstances");
    assert_eq!(env.sim.calls("ModifyInstancesAttribute").await, 1);
    assert_eq!(env.sim.calls("ModifyResourceTags").await, 1, "the claim");
    let uid = env.get("found").await.metadata.uid.unwrap();
    assert_eq!(
        env.sim.instances_of(&uid).await.len(),
        1,
        "tagged with its UID"
    );
    let after_manage = writes(&env).await;

    // A second resource here, and one in another namespace with its own credentials, both
    // naming the same instance: refused, nothing written.
    env.apply_yaml_ok(&adopting(
        "thief",
        &id,
        "  credentialsSecretRef: {name: tencentcloud}\n",
    ));
    let refused = stalled_with(&api, "thief", "AdoptionConflict").await;
    let message = refused
        .status
        .unwrap()
        .condition("Stalled")
        .unwrap()
        .message
        .clone();
    assert!(message.contains(&id), "{message}");

    let client = support::control_plane().admin_client().await;
    let other = support::new_namespace(&client, "adopt-other").await;
    kubectl_ok(
        env.kubectl()
            .args(["apply", "-n", &other, "-f"])
            .arg(format!("{REPO}/examples/credentials-secret.yaml")),
    );
    let _other_team = Operator::start_named(
        &env.dir,
        "other-team",
        &env.sim.endpoint,
        &other,
        false,
        &[],
    );
    let yaml = adopting(
        "borrowed",
        &id,
        "  credentialsSecretRef: {name: tencentcloud}\n",
    );
    let path = env.dir.join("borrowed.yaml");
    std::fs::write(&path, yaml).unwrap();
    kubectl_ok(env.kubectl().args(["apply", "-n", &other, "-f"]).arg(&path));
    let other_api: kube::Api<CvmInstance> = kube::Api::namespaced(client.clone(), &other);
    stalled_with(&other_api, "borrowed", "AdoptionConflict").await;

    // Without credentials of its own (the operator's defaults): refused before any call.
    let yaml = adopting("no-secret", &id, "");
    env.apply_yaml_ok(&yaml);
    stalled_with(&api, "no-secret", "AdoptionNeedsOwnCredentials").await;
    assert_eq!(writes(&env).await, after_manage, "refusals write nothing");

    // Deleting the adopted resource (no deletionPolicy) leaves the instance running.
    kubectl_ok(env.kubectl().args(["delete", "cvm/found", "--wait=true"]));
    let instance = env
        .sim
        .instances()
        .await
        .into_iter()
        .find(|i| i.instance_id == id)
        .unwrap();
    assert_eq!(instance.instance_state, "RUNNING");
    assert_eq!(env.sim.calls("TerminateInstances").await, 0);
}
