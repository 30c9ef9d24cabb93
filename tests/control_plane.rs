//! Smoke tests of the test control plane itself: if these fail, every end-to-end test
//! would fail for reasons unrelated to the operator.

mod support;

use std::time::Duration;

use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).expect("valid test object")
}

#[tokio::test]
async fn apiserver_is_ready_and_kubectl_talks_to_it() {
    let control_plane = support::control_plane();

    let readyz = control_plane
        .kubectl()
        .args(["get", "--raw", "/readyz"])
        .output()
        .expect("run kubectl");
    assert!(
        readyz.status.success(),
        "kubectl get --raw /readyz: {readyz:?}"
    );
    assert_eq!(String::from_utf8_lossy(&readyz.stdout).trim(), "ok");

    let version = control_plane
        .kubectl()
        .args(["version", "--output=json"])
        .output()
        .expect("run kubectl");
    assert!(version.status.success(), "kubectl version: {version:?}");
    let version: serde_json::Value = serde_json::from_slice(&version.stdout).expect("JSON");
    let client = version["clientVersion"]["gitVersion"]
        .as_str()
        .unwrap_or("");
    let server = version["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap_or("");
    // The build stamps the release into both binaries; unstamped ones say v0.0.0-master.
    assert!(server.starts_with("v1."), "server version {server:?}");
    assert_eq!(
        client, server,
        "kubectl and kube-apiserver come from one release"
    );
    assert!(control_plane.startup_time() < Duration::from_secs(120));
}

#[tokio::test]
async fn namespaces_are_created_unique_and_active() {
    let client = support::control_plane().admin_client().await;

    let first = support::new_namespace(&client, "Smoke_Test").await;
    let second = support::new_namespace(&client, "Smoke_Test").await;
    assert_ne!(first, second);
    assert!(first.starts_with("smoke-test-"), "{first}");

    let namespace = Api::<Namespace>::all(client)
        .get(&first)
        .await
        .expect("get");
    let phase = namespace.status.and_then(|status| status.phase);
    assert_eq!(phase.as_deref(), Some("Active"));
}

/// kube-controller-manager at work: a namespace gets its `default` ServiceAccount, a
/// ConfigMap whose owner is deleted is collected, and a deleted namespace goes away.
#[tokio::test]
async fn controller_manager_collects_garbage_and_deletes_namespaces() {
    let control_plane = support::control_plane();
    let client = control_plane.admin_client().await;
    let namespace = support::new_namespace(&client, "controller-manager").await;

    let service_accounts = Api::<ServiceAccount>::namespaced(client.clone(), &namespace);
    support::wait_for("the default ServiceAccount", WAIT, || async {
        service_accounts.get_opt("default").await.ok()?
    })
    .await;

    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &namespace);
    let owner = config_maps
        .create(
            &PostParams::default(),
            &from_json(json!({"metadata": {"name": "owner"}})),
        )
        .await
        .expect("create owner");
    let dependent: ConfigMap = from_json(
        json!({"metadata": {"name": "dependent", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid,
        }]}}),
    );
    config_maps
        .create(&PostParams::default(), &dependent)
        .await
        .expect("create dependent");
    config_maps
        .delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");
    support::wait_for(
        "the garbage collector to delete the dependent",
        WAIT,
        || async {
            config_maps
                .get_opt("dependent")
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;

    let namespaces = Api::<Namespace>::all(client);
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .expect("delete namespace");
    support::wait_for("the namespace to be gone", WAIT, || async {
        namespaces
            .get_opt(&namespace)
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn service_account_identity_carries_the_standard_groups() {
    let control_plane = support::control_plane();
    let kubeconfig = control_plane.service_account_kubeconfig("team-a", "operator");
    let client = control_plane.client_for(&kubeconfig).await;

    let review: SelfSubjectReview = from_json(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"
    }));
    let review = Api::<SelfSubjectReview>::all(client)
        .create(&PostParams::default(), &review)
        .await
        .expect("SelfSubjectReview");
    let user = review.status.and_then(|s| s.user_info).expect("user info");
    assert_eq!(
        user.username.as_deref(),
        Some("system:serviceaccount:team-a:operator")
    );
    let groups = user.groups.unwrap_or_default();
    for group in [
        "system:serviceaccounts",
        "system:serviceaccounts:team-a",
        "system:authenticated",
    ] {
        assert!(
            groups.iter().any(|g| g == group),
            "{group} missing from {groups:?}"
        );
    }
    assert_eq!(
        control_plane.service_account_kubeconfig("team-a", "operator"),
        kubeconfig,
        "kubeconfigs are cached per identity"
    );
}

#[tokio::test]
async fn rbac_denies_a_service_account_until_it_is_bound() {
    let control_plane = support::control_plane();
    let admin = control_plane.admin_client().await;
    let namespace = support::new_namespace(&admin, "rbac").await;
    let other_namespace = support::new_namespace(&admin, "rbac-other").await;
    let reader = control_plane
        .client_for(&control_plane.service_account_kubeconfig(&namespace, "reader"))
        .await;

    let pods_in = |ns: &str| Api::<Pod>::namespaced(reader.clone(), ns);
    let denied = pods_in(&namespace).list(&ListParams::default()).await;
    assert!(
        matches!(&denied, Err(kube::Error::Api(status)) if status.code == 403),
        "an unbound ServiceAccount must be forbidden, got {denied:?}"
    );

    let role_name = format!("{namespace}-pod-reader");
    let role: ClusterRole = from_json(json!({
        "metadata": {"name": role_name},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]
    }));
    Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
        .expect("create ClusterRole");
    let binding: RoleBinding = from_json(json!({
        "metadata": {"name": "reader-reads-pods", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}]
    }));
    Api::<RoleBinding>::namespaced(admin.clone(), &namespace)
        .create(&PostParams::default(), &binding)
        .await
        .expect("create RoleBinding");

    // The RBAC authorizer reads bindings from an informer, so the grant lands shortly after.
    support::wait_for("the RoleBinding to let reader list pods", WAIT, || async {
        pods_in(&namespace).list(&ListParams::default()).await.ok()
    })
    .await;

    let elsewhere = pods_in(&other_namespace).list(&ListParams::default()).await;
    assert!(
        matches!(&elsewhere, Err(kube::Error::Api(status)) if status.code == 403),
        "a RoleBinding must not grant access in another namespace, got {elsewhere:?}"
    );
}

#[tokio::test]
async fn a_custom_resource_definition_becomes_established_and_servable() {
    let control_plane = support::control_plane();
    let admin = control_plane.admin_client().await;
    let namespace = support::new_namespace(&admin, "crd").await;

    let crd: CustomResourceDefinition = from_json(json!({
        "metadata": {"name": "widgets.smoke.cvm-operator.io"},
        "spec": {
            "group": "smoke.cvm-operator.io",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}}
                }}}
            }]
        }
    }));
    let crds = Api::<CustomResourceDefinition>::all(admin);
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create CRD");

    support::wait_for("the Widget CRD to be Established", WAIT, || async {
        let crd = crds.get("widgets.smoke.cvm-operator.io").await.ok()?;
        let conditions = crd.status?.conditions?;
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;

    let widget = r#"{"apiVersion":"smoke.cvm-operator.io/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":0}}"#;
    let rejected = apply_stdin(control_plane, &namespace, widget);
    assert!(!rejected.status.success(), "size 0 violates minimum 1");
    assert!(
        String::from_utf8_lossy(&rejected.stderr).contains("spec.size"),
        "rejection names the field: {rejected:?}"
    );
    let accepted = apply_stdin(
        control_plane,
        &namespace,
        &widget.replace("\"size\":0", "\"size\":3"),
    );
    assert!(accepted.status.success(), "valid widget: {accepted:?}");

    let listed = control_plane
        .kubectl()
        .args(["get", "widgets", "-n", &namespace, "-o", "name"])
        .output()
        .expect("run kubectl");
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "widget.smoke.cvm-operator.io/w"
    );
}

fn apply_stdin(
    control_plane: &support::ControlPlane,
    namespace: &str,
    manifest: &str,
) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = control_plane
        .kubectl()
        .args(["apply", "-n", namespace, "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(manifest.as_bytes())
        .expect("write manifest");
    child.wait_with_output().expect("kubectl output")
}
