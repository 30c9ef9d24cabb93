//! CvmInstanceSet end to end: the example set of 3 is one RunInstances call and 3 adopted,
//! owned children; `kubectl scale` grows it by one batch and shrinks it with batched
//! terminations; an HPA can target it and read its scale; a child deleted by hand is
//! replaced; deleting the set terminates every machine (garbage collection of the children).

use std::time::Duration;

use kube::Api;
use kube::api::DeleteParams;

use crate::env::{REPO, TestEnv, kubectl_ok};
use crate::support::wait_for;
use cvm_operator::api::{CvmInstance, CvmInstanceSet};

const SET: &str = "workers";
const LABEL: &str = "cvm-operator.io/instance-set=workers";

fn example() -> String {
    std::fs::read_to_string(format!("{REPO}/examples/instance-set.yaml")).unwrap()
}

async fn children(env: &TestEnv) -> Vec<CvmInstance> {
    let api: Api<CvmInstance> = Api::namespaced(env.client.clone(), &env.namespace);
    api.list(&kube::api::ListParams::default().labels(LABEL))
        .await
        .unwrap()
        .items
}

/// Waits until the set is Ready with `n` Ready children and no launch in flight.
async fn ready_with(env: &TestEnv, n: i32) -> CvmInstanceSet {
    let sets: Api<CvmInstanceSet> = Api::namespaced(env.client.clone(), &env.namespace);
    wait_for(
        &format!("{SET} Ready with {n}"),
        Duration::from_secs(90),
        || async {
            let set = sets.get(SET).await.ok()?;
            let status = set.status.as_ref()?;
            let ready = status.condition("Ready")?.status == "True";
            let settled = status.observed_generation == set.metadata.generation;
            (ready && settled && status.ready_replicas == n && status.replicas == n).then_some(set)
        },
    )
    .await
}

/// Instances of the sim that are not terminated (or on their way).
async fn running(env: &TestEnv) -> usize {
    env.sim
        .instances()
        .await
        .iter()
        .filter(|i| !matches!(i.instance_state.as_str(), "TERMINATING" | "TERMINATED"))
        .count()
}

fn scale(env: &TestEnv, replicas: u32) {
    kubectl_ok(env.kubectl().args([
        "scale",
        &format!("cvmset/{SET}"),
        &format!("--replicas={replicas}"),
    ]));
}

#[tokio::test]
async fn a_set_scales_in_batches_is_driven_by_scale_and_cleans_up_after_itself() {
    let env = TestEnv::start("set").await;
    env.apply_yaml_ok(&example());

    // Three machines, one call; each child adopts its machine and is owned by the set.
    let set = ready_with(&env, 3).await;
    assert_eq!(env.sim.calls("RunInstances").await, 1, "one batch of 3");
    assert_eq!(running(&env).await, 3);
    let kids = children(&env).await;
    assert_eq!(kids.len(), 3);
    let uid = set.metadata.uid.clone().unwrap();
    for kid in &kids {
        let owner = &kid.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.uid, uid);
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
        let id = kid.spec.instance_id.as_deref().unwrap();
        assert_eq!(
            kid.metadata.name.as_deref().unwrap(),
            format!("{SET}-{}", &id[4..])
        );
    }
    let status = set.status.unwrap();
    assert_eq!(status.spot_replicas, 3);
    assert_eq!(status.selector.as_deref(), Some(LABEL));
    assert!(status.launches.is_empty(), "{:?}", status.launches);
    // No claim per child: the set's tag made them its own.
    assert_eq!(env.sim.calls("ModifyResourceTags").await, 0);
    assert_eq!(env.sim.calls("TagResources").await, 0);

    // kubectl scale: one more batch, of 2.
    scale(&env, 5);
    ready_with(&env, 5).await;
    assert_eq!(env.sim.calls("RunInstances").await, 2);
    assert_eq!(running(&env).await, 5);

    // Down to 1: children deleted, their machines terminated in batches.
    scale(&env, 1);
    ready_with(&env, 1).await;
    wait_for("4 machines terminated", Duration::from_secs(60), || async {
        (running(&env).await == 1).then_some(())
    })
    .await;
    wait_for("4 children gone", Duration::from_secs(60), || async {
        (children(&env).await.len() == 1).then_some(())
    })
    .await;
    let terminations = env.sim.calls("TerminateInstances").await;
    assert!(
        (1..=2).contains(&terminations),
        "4 terminations in {terminations} calls"
    );

    // An HPA may target the set; the scale subresource reads back with the selector.
    env.apply_yaml_ok(&format!(
        r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {SET}
spec:
  scaleTargetRef: {{apiVersion: cvm-operator.io/v1alpha1, kind: CvmInstanceSet, name: {SET}}}
  minReplicas: 1
  maxReplicas: 10
  metrics:
    - type: External
      external:
        metric: {{name: queue_depth}}
        target: {{type: AverageValue, averageValue: "30"}}
"#
    ));
    let raw = kubectl_ok(env.kubectl().args([
        "get",
        "--raw",
        &format!(
            "/apis/cvm-operator.io/v1alpha1/namespaces/{}/cvminstancesets/{SET}/scale",
            env.namespace
        ),
    ]));
    let scale_json: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(scale_json["kind"], "Scale");
    assert_eq!(scale_json["spec"]["replicas"], 1);
    assert_eq!(scale_json["status"]["replicas"], 1);
    assert_eq!(scale_json["status"]["selector"], LABEL);

    // A child deleted by hand: its machine terminated, a new one launched in its place.
    let lost = children(&env).await[0].metadata.name.clone().unwrap();
    let api: Api<CvmInstance> = Api::namespaced(env.client.clone(), &env.namespace);
    api.delete(&lost, &DeleteParams::default()).await.unwrap();
    wait_for("a replacement child", Duration::from_secs(90), || async {
        let kids = children(&env).await;
        let replaced = kids.len() == 1 && kids[0].metadata.name.as_deref() != Some(&lost);
        replaced.then_some(())
    })
    .await;
    ready_with(&env, 1).await;
    assert_eq!(env.sim.calls("RunInstances").await, 3);

    // Deleting the set: every child goes (garbage collection), every machine terminated.
    let sets: Api<CvmInstanceSet> = Api::namespaced(env.client.clone(), &env.namespace);
    sets.delete(SET, &DeleteParams::default()).await.unwrap();
    wait_for(
        "the set and its children gone",
        Duration::from_secs(90),
        || async {
            let gone = sets.get_opt(SET).await.ok()?.is_none() && children(&env).await.is_empty();
            gone.then_some(())
        },
    )
    .await;
    assert_eq!(running(&env).await, 0, "no machine left running");
}
