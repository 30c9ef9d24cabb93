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

/// The controllers the tests need, by their canonical names (`garbagecollector` and the
/// like are aliases; the debug graph is mounted under the canonical name), and nothing that
/// would create objects nobody asked for:
/// - `garbage-collector-controller`: ownerReferences, background and foreground deletion.
/// - `namespace-controller`: deleting a namespace deletes its contents, then the namespace.
/// - `serviceaccount-controller`: every namespace gets its `default` ServiceAccount, as in
///   any cluster. It is one informer and one create per namespace.
///
/// Left out: `serviceaccount-token-controller` (legacy token Secrets; the tests get tokens
/// from the TokenRequest API or use client certificates), and the workload controllers
/// (deployment, replicaset, job, ...): without a scheduler or kubelet, the Pods they would
/// make from deploy/'s Deployment could never run and would only add load.
pub const CONTROLLERS: &[&str] = &[
    GARBAGE_COLLECTOR,
    "namespace-controller",
    "serviceaccount-controller",
];

const GARBAGE_COLLECTOR: &str = "garbage-collector-controller";

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
        // One instance per test binary: nothing to elect, and no Lease to keep renewing.
        "--leader-elect=false".to_string(),
        "--bind-address=127.0.0.1".to_string(),
        format!("--secure-port={secure_port}"),
        // Signed by the test CA, so its /healthz is checked with the same verified client
        // as kube-apiserver's.
        format!("--tls-cert-file={}", files.serving_cert.display()),
        format!("--tls-private-key-file={}", files.serving_key.display()),
        // No authorization webhook is configured, so only these paths answer; the
        // garbage collector's graph tells tests when it has seen an object.
        format!(
            "--authorization-always-allow-paths=/healthz,{}",
            graph_path()
        ),
    ]);
    command
}

/// The garbage collector's dependency graph in DOT, for `?uid=` and that object's owners
/// (kube-controller-manager mounts it under the controller's name).
pub fn graph_path() -> String {
    format!("/debug/controllers/{GARBAGE_COLLECTOR}/graph")
}

/// Whether the garbage collector's graph (as served at `graph_path()`) holds the object `uid`
/// as observed through its watch, not only as a "virtual" owner some dependent named. Only
/// then does it act on that object's deletion and on its ownerReferences.
pub fn graph_has_observed(dot: &str, uid: &str) -> bool {
    // Each vertex is `  "<uid>" [` followed by `key="value"` lines and `  ];`.
    let opening = format!("\"{uid}\" [");
    dot.split_once(&opening)
        .and_then(|(_, rest)| rest.split_once("];"))
        .is_some_and(|(attributes, _)| attributes.contains("virtual=\"false\""))
}
