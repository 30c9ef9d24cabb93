//! How kube-controller-manager runs beside the test kube-apiserver: which controllers, as
//! which user, serving health where.
//!
//! Without it, ownerReferences are never acted on and a deleted namespace stays Terminating
//! forever; with it, both behave as in a real cluster, so tests can prove what the operator
//! does when the garbage collector or the namespace controller deletes its objects.

use std::path::Path;
use std::process::Command;

/// The user kube-controller-manager authenticates as. The default RBAC binds it to the
/// ClusterRole of the same name, which lets it read everything but not delete.
pub const USER: &str = "system:kube-controller-manager";

/// The controllers the tests need, and nothing that would create objects nobody asked for:
/// - `garbagecollector`: ownerReferences, background and foreground deletion.
/// - `namespace`: deleting a namespace deletes its contents, then the namespace.
/// - `serviceaccount`: every namespace gets its `default` ServiceAccount, as in any cluster.
///   It is one informer and one create per namespace.
///
/// Left out: `serviceaccount-token` (legacy token Secrets; the tests get tokens from the
/// TokenRequest API or use client certificates), and the workload controllers (deployment,
/// replicaset, job, ...): without a scheduler or kubelet, the Pods they would make from
/// deploy/'s Deployment could never run and would only add load.
pub const CONTROLLERS: &[&str] = &["garbagecollector", "namespace", "serviceaccount"];

/// The ClusterRoles each controller gets in a real cluster, where kube-controller-manager
/// runs every controller as its own ServiceAccount (`--use-service-account-credentials`).
/// Here they are bound to `USER` instead, which spares the token machinery and keeps the
/// same permissions.
pub const CONTROLLER_ROLES: &[&str] = &[
    "system:controller:generic-garbage-collector",
    "system:controller:namespace-controller",
    "system:controller:service-account-controller",
];

/// ClusterRoleBindings of `CONTROLLER_ROLES` to `USER`, as a JSON List for `kubectl apply`.
pub fn role_bindings() -> String {
    let items: Vec<serde_json::Value> = CONTROLLER_ROLES
        .iter()
        .map(|role| {
            serde_json::json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": format!("cvm-operator-test:{}", role.trim_start_matches("system:"))},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
            })
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string()
}

/// Files kube-controller-manager reads.
pub struct Files<'a> {
    pub kubeconfig: &'a Path,
    pub serving_cert: &'a Path,
    pub serving_key: &'a Path,
}

pub fn command(bin_dir: &Path, files: &Files<'_>, secure_port: u16) -> Command {
    let mut command = Command::new(bin_dir.join("kube-controller-manager"));
    command.args([
        format!("--kubeconfig={}", files.kubeconfig.display()),
        format!("--controllers={}", CONTROLLERS.join(",")),
        "--use-service-account-credentials=false".to_string(),
        // One instance per test binary: nothing to elect, and no Lease writes every 2 s.
        "--leader-elect=false".to_string(),
        "--bind-address=127.0.0.1".to_string(),
        format!("--secure-port={secure_port}"),
        // Signed by the test CA, so its /healthz is checked with the same verified client
        // as kube-apiserver's.
        format!("--tls-cert-file={}", files.serving_cert.display()),
        format!("--tls-private-key-file={}", files.serving_key.display()),
    ]);
    command
}
