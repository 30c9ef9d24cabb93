//! An object the operator cannot read, because the cluster's CRD is newer than the operator
//! (here `status.attempt` became a string), is reported on the object, and the watch goes on
//! for every other object. The controller runs in-process against its own real API server:
//! this test changes the CRD, so it has a control plane of its own.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use cvm_operator::cloud::TencentClouds;
use cvm_operator::controller::events::EventPublisher;
use cvm_operator::controller::sweep::Sweeper;
use cvm_operator::controller::{self, Context, Settings};
use support::kubectl_ok;
use tencent_cloud::config::ClientConfig;
use tencent_cloud::pool::ClientPool;

const CRD: &str = "crd/cvminstances.cvm-operator.io";

/// `jsonpath` of the Stalled condition's `field` of CvmInstance `name`, read with kubectl (the
/// typed client could not read the unreadable one either).
fn stalled(namespace: &str, name: &str, field: &str) -> String {
    kubectl_ok(support::control_plane().kubectl().args([
        "-n",
        namespace,
        "get",
        "cvm",
        name,
        "-o",
        &format!(r#"jsonpath={{.status.conditions[?(@.type=="Stalled")].{field}}}"#),
    ]))
}

/// Waits for CvmInstance `name` to be Stalled; the reason.
async fn stalled_reason(namespace: &str, name: &str) -> String {
    support::wait_for(
        &format!("{name} to be Stalled"),
        Duration::from_secs(30),
        || async {
            let reason = stalled(namespace, name, "reason");
            (!reason.is_empty()).then_some(reason)
        },
    )
    .await
}

#[tokio::test]
async fn an_unreadable_object_is_reported_and_the_others_carry_on() {
    support::install_deploy();
    let cp = support::control_plane();
    let kube = cp.admin_client().await;
    let namespace = support::new_namespace(&kube, "drift").await;

    // A newer schema in the cluster: status.attempt is a string there.
    kubectl_ok(cp.kubectl().args([
        "patch",
        CRD,
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/versions/0/schema/openAPIV3Schema/properties/status/properties/attempt","value":{"type":"string"}}]"#,
    ]));
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    for file in ["pay-as-you-go.yaml", "spot.yaml"] {
        kubectl_ok(cp.kubectl().args([
            "-n",
            &namespace,
            "apply",
            "-f",
            &format!("{examples}/{file}"),
        ]));
    }
    kubectl_ok(cp.kubectl().args([
        "-n",
        &namespace,
        "patch",
        "cvm",
        "batch-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"attempt":"many"}}"#,
    ]));

    // The operator: no credentials Secret in the namespace, so the readable resource stalls
    // on that, which shows it was reconciled; no cloud call is ever made.
    let clouds = ClientPool::new(ClientConfig {
        endpoint: Some("http://127.0.0.1:9".into()),
        ..ClientConfig::default()
    })
    .unwrap();
    let sweeper = Sweeper::new();
    let triggers = sweeper.triggers::<cvm_operator::api::CvmInstance>();
    let events = EventPublisher::new(kube.clone(), "schema-drift-test".into());
    let ctx = Arc::new(Context::new(
        kube,
        events,
        Arc::new(TencentClouds::new(clouds)),
        Settings::default(),
        sweeper,
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn({
        let namespace = namespace.clone();
        async move {
            controller::run(ctx, triggers, Some(&namespace), 4, async {
                let _ = stopped.await;
            })
            .await;
        }
    });

    assert_eq!(
        stalled_reason(&namespace, "web-1").await,
        "CredentialsSecretNotFound",
        "the readable resource was reconciled"
    );
    assert_eq!(stalled_reason(&namespace, "batch-1").await, "InvalidObject");
    let message = stalled(&namespace, "batch-1", "message");
    assert!(
        message.contains("Expected i32") && !message.contains("many"),
        "the message says what is wrong, without the value: {message}"
    );
    let events = kubectl_ok(cp.kubectl().args([
        "-n",
        &namespace,
        "get",
        "events",
        "-o",
        "jsonpath={.items[*].reason}",
    ]));
    assert!(events.contains("InvalidObject"), "{events}");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), operator)
        .await
        .expect("the controller stops")
        .unwrap();
}
