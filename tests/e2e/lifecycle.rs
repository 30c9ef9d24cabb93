//! The happy path: examples become Ready with IDs and IPs, and deletion cleans up.

use std::time::Duration;

use crate::env::{REPO, TestEnv, kubectl_ok};
use crate::support;

#[tokio::test]
async fn deploy_applies_with_server_dry_run_and_crd_is_established() {
    crate::env::install_deploy();
    let cp = support::control_plane();
    let out = kubectl_ok(cp.kubectl().args([
        "apply",
        "-k",
        &format!("{REPO}/deploy"),
        "--dry-run=server",
    ]));
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/cvminstances.cvm-operator.io"),
        "{out}"
    );
    assert!(out.contains("deployment.apps/cvm-operator"), "{out}");
    let established = kubectl_ok(cp.kubectl().args([
        "get",
        "crd/cvminstances.cvm-operator.io",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
    ]));
    assert_eq!(established, "True");
}

#[tokio::test]
async fn examples_become_ready_with_ids_and_ips_and_deletion_terminates_them() {
    let env = TestEnv::start("examples").await;
    env.apply_file(&format!("{REPO}/examples/pay-as-you-go.yaml"));
    env.apply_file(&format!("{REPO}/examples/spot.yaml"));
    // A spot instance without a bid: the API's fixed-discount price.
    env.apply_file(&format!("{REPO}/examples/spot-market-price.yaml"));
    env.wait_ready("web-1", 90);
    env.wait_ready("batch-1", 90);
    env.wait_ready("batch-2", 90);

    for (name, charge, wants_public_ip) in [
        ("web-1", "POSTPAID_BY_HOUR", true),
        ("batch-1", "SPOTPAID", false),
        ("batch-2", "SPOTPAID", false),
    ] {
        let obj = env.get(name).await;
        let uid = obj.metadata.uid.clone().unwrap();
        let status = obj.status.clone().unwrap();
        let id = status.instance_id.clone().expect("instanceId in status");
        let instances = env.sim.instances_of(&uid).await;
        assert_eq!(
            instances.len(),
            1,
            "exactly one instance for {name}: {instances:?}"
        );
        let instance = &instances[0];
        assert_eq!(instance.instance_id, id);
        assert_eq!(instance.instance_state, "RUNNING");
        assert_eq!(instance.instance_charge_type, charge);
        assert_eq!(status.instance_state.as_deref(), Some("RUNNING"));
        assert_eq!(
            status.private_ip_addresses.as_ref(),
            Some(&instance.private_ip_addresses)
        );
        assert!(!instance.private_ip_addresses.is_empty());
        if wants_public_ip {
            assert!(!instance.public_ip_addresses.is_empty());
            assert_eq!(
                status.public_ip_addresses.as_ref(),
                Some(&instance.public_ip_addresses)
            );
        } else {
            assert!(instance.public_ip_addresses.is_empty());
            assert_eq!(status.public_ip_addresses, None);
        }
        assert_eq!(status.observed_generation, obj.metadata.generation);
        assert_eq!(
            status.client_token.as_deref(),
            Some(format!("cvmop-{uid}-0").as_str())
        );
        for (type_, expected) in [
            ("Ready", "True"),
            ("Reconciling", "False"),
            ("Stalled", "False"),
        ] {
            assert_eq!(
                status.condition(type_).map(|c| c.status.as_str()),
                Some(expected),
                "{name} {type_}"
            );
        }

        let table = kubectl_ok(env.kubectl().args(["get", "cvm", name, "-o", "wide"]));
        assert!(table.contains(&id), "{table}");
        assert!(table.contains(&instance.private_ip_addresses[0]), "{table}");
        assert!(
            table.contains("RUNNING") && table.contains("True"),
            "{table}"
        );
        if wants_public_ip {
            assert!(table.contains(&instance.public_ip_addresses[0]), "{table}");
        }
    }
    let events = env.event_reasons();
    let log = env.operator.as_ref().unwrap().log();
    assert!(
        !log.contains("could not publish Event"),
        "an Event was refused"
    );
    assert!(events.contains("InstanceCreated"), "{events}");
    assert!(events.contains("InstanceRunning"), "{events}");

    let names = ["web-1", "batch-1", "batch-2"];
    let mut uids = Vec::new();
    for name in names {
        uids.push(env.get(name).await.metadata.uid.unwrap());
    }
    kubectl_ok(
        env.kubectl()
            .args(["delete", "cvm", "--wait=false"])
            .args(names),
    );
    for name in names {
        env.wait_gone(name, Duration::from_secs(60)).await;
    }
    // The finalizer is released only once the instance is gone: no polling needed here.
    for uid in uids {
        let left = env.sim.instances_of(&uid).await;
        assert!(left.is_empty(), "instance left behind: {left:?}");
    }
    // Pay-as-you-go and spot instances deleted together: TerminateInstances refuses a call
    // that mixes charge types, so none may be refused.
    env.sim.assert_terminations_succeeded(2).await;
}

#[tokio::test]
async fn orphan_policy_leaves_the_instance_running() {
    let env = TestEnv::start("orphan").await;
    let yaml = std::fs::read_to_string(format!("{REPO}/examples/spot.yaml"))
        .unwrap()
        .replace("name: batch-1", "name: kept")
        + "  deletionPolicy: Orphan\n";
    let out = env.apply_yaml(&yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.wait_ready("kept", 90);
    let obj = env.get("kept").await;
    let id = obj.status.unwrap().instance_id.unwrap();

    kubectl_ok(
        env.kubectl()
            .args(["delete", "cvm", "kept", "--wait=false"]),
    );
    env.wait_gone("kept", Duration::from_secs(60)).await;
    let instances = env.sim.instances().await;
    let kept = instances
        .iter()
        .find(|i| i.instance_id == id)
        .expect("orphaned instance still exists");
    assert_eq!(kept.instance_state, "RUNNING");
    assert_eq!(env.sim.calls("TerminateInstances").await, 0);
}
