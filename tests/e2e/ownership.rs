//! What Kubernetes' own controllers (kube-controller-manager in the test control plane) do
//! to CvmInstances: the namespace controller deletes them with their namespace, and the
//! garbage collector deletes them with their owner and deletes what they own. Every path
//! ends with the operator terminating the instance before the resource goes. Every resource
//! here names the credentials Secret of its namespace, which the operator holds (finalizer
//! `cvm-operator.io/credentials-in-use`) until the last resource naming it has let go.

use std::time::Duration;

use cvm_operator::api::CREDENTIALS_IN_USE;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

use crate::env::{TestEnv, kubectl_ok, web};
use crate::support::{self, wait_for};

/// Ready from the simulator's 1 s boot, with room for a loaded 2-core machine.
const READY_SECS: u32 = 90;
/// The garbage collector finds a new resource type (the CRD) on its discovery, every 30 s.
const GARBAGE_COLLECTOR_SEES: Duration = Duration::from_secs(90);
const DELETION: Duration = Duration::from_secs(90);

/// The instance the operator launched for resource `uid` was terminated: the simulator no
/// longer lists it and TerminateInstances succeeded, never refused.
async fn assert_terminated(env: &TestEnv, uid: &str) {
    let left = env.sim.instances_of(uid).await;
    assert!(left.is_empty(), "instance left behind: {left:?}");
    env.sim.assert_terminations_succeeded(1).await;
}

/// Waits until `later` is gone, and asserts that `first` was gone by then: the order in
/// which the garbage collector must delete an owner and its dependent.
async fn wait_gone_in_order<F, L>(first: (&Api<F>, &str), later: (&Api<L>, &str))
where
    F: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    L: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let ((first_api, first_name), (later_api, later_name)) = (first, later);
    wait_for(&format!("{later_name} to be gone"), DELETION, || async {
        if later_api.get_opt(later_name).await.ok()?.is_some() {
            return None;
        }
        let first = first_api.get_opt(first_name).await.expect("get");
        assert!(first.is_none(), "{later_name} went before {first_name}");
        Some(())
    })
    .await;
}

async fn wait_observed_by_garbage_collector(what: &str, uid: &str) {
    let control_plane = support::control_plane();
    wait_for(
        &format!("the garbage collector to observe {what}"),
        GARBAGE_COLLECTOR_SEES,
        || async move {
            control_plane
                .garbage_collector_has_observed(uid)
                .await
                .then_some(())
        },
    )
    .await;
}

/// Waits until resource `name` is Ready, and returns its UID.
async fn ready_instance(env: &TestEnv, name: &str) -> String {
    env.wait_ready(name, READY_SECS);
    env.get(name).await.metadata.uid.expect("uid")
}

/// The credentials Secret every resource here names (examples/credentials-secret.yaml).
const SECRET: &str = "tencentcloud";

fn secrets(env: &TestEnv) -> Api<Secret> {
    Api::namespaced(env.client.clone(), &env.namespace)
}

/// Whether the credentials Secret exists and carries the operator's in-use finalizer.
async fn secret_held(env: &TestEnv) -> bool {
    let secret = secrets(env).get_opt(SECRET).await.expect("get Secret");
    secret.is_some_and(|s| {
        s.metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == CREDENTIALS_IN_USE)
    })
}

#[tokio::test]
async fn deleting_the_namespace_terminates_its_instance_and_the_namespace_goes() {
    let env = TestEnv::start("namespace-deletion").await;
    env.apply_yaml_ok(&web("doomed"));
    let uid = ready_instance(&env, "doomed").await;
    // The namespace controller deletes the Secret alongside the CvmInstance; held, it stays
    // until the operator no longer needs it to terminate the instance.
    assert!(secret_held(&env).await, "the Secret is held while in use");

    let namespaces = Api::<Namespace>::all(env.client.clone());
    namespaces
        .delete(&env.namespace, &DeleteParams::default())
        .await
        .expect("delete namespace");
    wait_for("the namespace to be gone", DELETION, || async {
        namespaces
            .get_opt(&env.namespace)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
    // The finalizer held the namespace until the instance was gone.
    assert_terminated(&env, &uid).await;
    let left = env.sim.instances().await;
    assert!(left.is_empty(), "nothing leaks: {left:?}");
}

#[tokio::test]
async fn a_secret_in_use_is_deleted_only_once_no_instance_needs_it() {
    let mut env = TestEnv::start("secret-in-use").await;
    env.apply_yaml_ok(&web("first"));
    env.apply_yaml_ok(&web("second"));
    let first = ready_instance(&env, "first").await;
    let second = ready_instance(&env, "second").await;
    assert!(secret_held(&env).await, "the Secret is held while in use");

    let secrets = secrets(&env);
    secrets
        .delete(SECRET, &DeleteParams::default())
        .await
        .expect("delete the Secret");
    // A fresh operator reconciles both resources at once, reads the Secret being deleted and
    // says so; the Secret still holds the credentials and the instances stay managed.
    drop(env.operator.take());
    let env = env.with_operator(false, &[]);
    wait_for("the CredentialsSecretDeleting Event", DELETION, || async {
        env.event_reasons()
            .contains("CredentialsSecretDeleting")
            .then_some(())
    })
    .await;
    let terminating = secrets
        .get(SECRET)
        .await
        .expect("the Secret stays while in use");
    assert!(terminating.metadata.deletion_timestamp.is_some());

    // The first resource goes; the second still needs the Secret.
    kubectl_ok(
        env.kubectl()
            .args(["delete", "cvm", "first", "--wait=false"]),
    );
    env.wait_gone("first", DELETION).await;
    assert!(
        secret_held(&env).await,
        "the Secret is kept for the resource that still names it"
    );
    assert!(env.sim.instances_of(&first).await.is_empty());

    // The last one lets go of it, and only then is it deleted.
    kubectl_ok(
        env.kubectl()
            .args(["delete", "cvm", "second", "--wait=false"]),
    );
    // The Secret is let go just before the resource's own finalizer (it cannot be after:
    // the resource would be gone), so it may vanish a moment before the resource; what must
    // hold is that its instance was terminated by then.
    wait_for("the Secret to be gone", DELETION, || async {
        secrets.get_opt(SECRET).await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(
        env.sim.instances_of(&second).await.is_empty(),
        "the Secret went while the instance it signs for still ran"
    );
    env.wait_gone("second", DELETION).await;
    env.sim.assert_terminations_succeeded(2).await;
}

#[tokio::test]
async fn what_an_instance_owns_is_collected_once_it_is_gone() {
    let env = TestEnv::start("owned-by-instance").await;
    env.apply_yaml_ok(&web("owner"));
    let uid = ready_instance(&env, "owner").await;

    let config_maps = Api::<ConfigMap>::namespaced(env.client.clone(), &env.namespace);
    let settings: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "owner-settings", "ownerReferences": [{
            "apiVersion": "cvm-operator.io/v1alpha1", "kind": "CvmInstance",
            "name": "owner", "uid": uid, "controller": true, "blockOwnerDeletion": true,
        }]},
        "data": {"role": "web"},
    }))
    .unwrap();
    let settings = config_maps
        .create(&PostParams::default(), &settings)
        .await
        .expect("create the owned ConfigMap");
    wait_observed_by_garbage_collector("the CvmInstance", &uid).await;
    wait_observed_by_garbage_collector("the ConfigMap", &settings.metadata.uid.unwrap()).await;

    kubectl_ok(
        env.kubectl()
            .args(["delete", "cvm", "owner", "--wait=false"]),
    );
    // Background deletion: the dependent goes only after its owner is gone, and the owner
    // only after the operator saw its instance terminated.
    wait_gone_in_order((&env.api(), "owner"), (&config_maps, "owner-settings")).await;
    assert_terminated(&env, &uid).await;
}

#[tokio::test]
async fn foreground_deletion_of_an_owner_waits_for_the_instance_it_owns() {
    let mut env = TestEnv::start("owner-foreground").await;
    let config_maps = Api::<ConfigMap>::namespaced(env.client.clone(), &env.namespace);
    let owner: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "fleet"}, "data": {"size": "1"}}))
            .unwrap();
    let owner = config_maps
        .create(&PostParams::default(), &owner)
        .await
        .expect("create the owner ConfigMap");
    let owner_uid = owner.metadata.uid.unwrap();
    let owned = web("member").replace(
        "metadata:\n  name: member\n",
        &format!(
            "metadata:\n  name: member\n  ownerReferences:\n    - apiVersion: v1\n      \
             kind: ConfigMap\n      name: fleet\n      uid: {owner_uid}\n      \
             blockOwnerDeletion: true\n"
        ),
    );
    env.apply_yaml_ok(&owned);
    let uid = ready_instance(&env, "member").await;
    wait_observed_by_garbage_collector("the CvmInstance", &uid).await;

    // With the operator stopped, nothing can release the CvmInstance's finalizer: what the
    // owner does meanwhile is the garbage collector's doing alone.
    drop(env.operator.take());
    config_maps
        .delete("fleet", &DeleteParams::foreground())
        .await
        .expect("delete the owner in the foreground");
    let api = env.api();
    wait_for(
        "the garbage collector to delete the owned CvmInstance",
        DELETION,
        || async {
            let member = api.get_opt("member").await.ok()??;
            member.metadata.deletion_timestamp.map(|_| ())
        },
    )
    .await;
    let waiting = config_maps
        .get_opt("fleet")
        .await
        .expect("get owner")
        .expect("the owner waits for the CvmInstance it owns");
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert!(
        waiting
            .metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == "foregroundDeletion"),
        "foreground deletion holds the owner with its finalizer"
    );
    let instance = env.sim.instances_of(&uid).await;
    assert_eq!(
        instance.first().map(|i| i.instance_state.as_str()),
        Some("RUNNING"),
        "nothing terminated the instance while the operator was stopped"
    );

    // A fresh operator finds the CvmInstance being deleted and finishes the job.
    let env = env.with_operator(false, &[]);
    wait_gone_in_order((&api, "member"), (&config_maps, "fleet")).await;
    assert_terminated(&env, &uid).await;
}
