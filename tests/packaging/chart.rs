//! The Helm chart: lint, schema, CRD, defaults equal to deploy/, a server dry run, and
//! install / upgrade / uninstall against the test's kube-apiserver.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::tools::{REPO, helm, helm_template};
use crate::support::{self, kubectl_ok};

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/cvm-operator");

/// The objects of a multi-document manifest, as JSON (kubectl does the YAML).
pub fn objects(manifest: &str, dir: &Path) -> Vec<Value> {
    std::fs::create_dir_all(dir).unwrap();
    let file = dir.join(format!("manifest-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, manifest).unwrap();
    let json = kubectl_ok(
        support::control_plane()
            .kubectl()
            .args(["create", "--dry-run=client", "-o", "json", "-f"])
            .arg(&file),
    );
    // One JSON document per object, one after the other.
    serde_json::Deserializer::from_str(&json)
        .into_iter::<Value>()
        .map(|object| object.expect("kubectl's JSON"))
        .collect()
}

pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn scratch() -> std::path::PathBuf {
    support::control_plane().work_dir().join("chart-tests")
}

fn failing(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(!out.status.success(), "{cmd:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn helm_lint_strict_passes_in_both_secrets_modes() {
    kubectl_ok(helm().args(["lint", "--strict", CHART]));
    kubectl_ok(helm().args([
        "lint",
        "--strict",
        CHART,
        "--set",
        "secrets.access=namespaces",
        "--set",
        "secrets.namespaces={team-a,team-b}",
    ]));
}

#[test]
fn the_schema_refuses_unknown_keys_and_wrong_values() {
    for (set, expected) in [
        ("replicas=2", "additional properties 'replicas' not allowed"),
        ("image.tagg=1.0", "additional properties 'tagg' not allowed"),
        (
            "secrets.acess=cluster",
            "additional properties 'acess' not allowed",
        ),
        (
            "secrets.access=everywhere",
            "value must be one of 'cluster', 'namespaces'",
        ),
        ("logFormat=xml", "value must be one of 'text', 'json'"),
        ("replicaCount=0", "minimum"),
        ("image.digest=latest", "does not match pattern"),
    ] {
        let stderr = failing(helm().args(["template", "t", CHART, "--set", set]));
        assert!(
            stderr.contains(expected),
            "--set {set}: {expected:?} in\n{stderr}"
        );
    }
}

#[test]
fn the_chart_crd_is_byte_identical_to_cvm_operator_crd() {
    let generated = kubectl_ok(Command::new(env!("CARGO_BIN_EXE_cvm-operator")).arg("crd"));
    let in_chart: Vec<String> = ["cvminstances", "cvminstancesets"]
        .iter()
        .map(|plural| {
            std::fs::read_to_string(format!("{CHART}/crds/{plural}.cvm-operator.io.yaml")).unwrap()
        })
        .collect();
    assert!(
        in_chart.join("---\n") == generated,
        "charts/cvm-operator/crds drifted: cargo run -- crd --out-dir charts/cvm-operator/crds"
    );
    // Helm renders no CRD among the templates: crds/ is the only copy (README "CRD policy").
    let templates = helm_template(&["t"]);
    assert!(!templates.contains("kind: CustomResourceDefinition"));
    let with_crds = helm_template(&["t", "--include-crds"]);
    assert_eq!(
        with_crds.matches("kind: CustomResourceDefinition").count(),
        2
    );
}

#[test]
fn the_chart_defaults_equal_deploy() {
    let dir = scratch();
    let deploy = objects(
        &kubectl_ok(
            support::control_plane()
                .kubectl()
                .args(["kustomize", &format!("{REPO}/deploy")]),
        ),
        &dir,
    );
    let chart = objects(
        &helm_template(&["cvm-operator", "--namespace", "cvm-operator"]),
        &dir,
    );
    let pod =
        |objects: &[Value]| find(objects, "Deployment", "cvm-operator")["spec"]["template"].clone();
    let (deploy_pod, chart_pod) = (pod(&deploy), pod(&chart));
    for field in [
        "/spec/serviceAccountName",
        "/spec/securityContext",
        "/spec/terminationGracePeriodSeconds",
        "/spec/automountServiceAccountToken",
        "/spec/containers/0/image",
        "/spec/containers/0/args",
        "/spec/containers/0/env",
        "/spec/containers/0/ports",
        "/spec/containers/0/livenessProbe",
        "/spec/containers/0/readinessProbe",
        "/spec/containers/0/resources",
        "/spec/containers/0/securityContext",
        "/metadata/annotations",
    ] {
        assert_eq!(
            chart_pod.pointer(field),
            deploy_pod.pointer(field),
            "{field} differs between the chart and deploy/"
        );
    }
    let replicas = |o: &[Value]| find(o, "Deployment", "cvm-operator")["spec"]["replicas"].clone();
    assert_eq!(replicas(&chart), replicas(&deploy));
    let pdb = |o: &[Value]| {
        find(o, "PodDisruptionBudget", "cvm-operator")["spec"]["maxUnavailable"].clone()
    };
    assert_eq!(pdb(&chart), pdb(&deploy));
    let ports = |o: &[Value]| find(o, "Service", "cvm-operator-metrics")["spec"]["ports"].clone();
    assert_eq!(ports(&chart), ports(&deploy));
    for (kind, name) in [
        ("ClusterRole", "cvm-operator"),
        ("ClusterRole", "cvm-operator-secret-reader"),
        ("Role", "cvm-operator-leader-election"),
    ] {
        assert_eq!(
            find(&chart, kind, name)["rules"],
            find(&deploy, kind, name)["rules"],
            "{kind} {name}: the same least-privilege rules"
        );
    }
    for (kind, name) in [
        ("ClusterRoleBinding", "cvm-operator"),
        ("ClusterRoleBinding", "cvm-operator-secret-reader"),
        ("RoleBinding", "cvm-operator-leader-election"),
    ] {
        for field in ["roleRef", "subjects"] {
            assert_eq!(
                find(&chart, kind, name)[field],
                find(&deploy, kind, name)[field]
            );
        }
    }
}

#[tokio::test]
async fn helm_template_passes_a_server_side_dry_run() {
    let (_, namespace) = support::namespace_with_deploy("chart-dry-run").await;
    let cp = support::control_plane();
    for extra in [
        &[][..],
        &[
            "--set",
            "secrets.access=namespaces",
            "--set",
            &format!("secrets.namespaces={{{namespace}}}"),
        ][..],
    ] {
        let mut args = vec!["dry", "--namespace", namespace.as_str(), "--include-crds"];
        args.extend_from_slice(extra);
        let manifest = helm_template(&args);
        let file = scratch().join(format!("dry-run-{}.yaml", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(scratch()).unwrap();
        std::fs::write(&file, &manifest).unwrap();
        let out = kubectl_ok(
            cp.kubectl()
                .args(["apply", "--dry-run=server", "-f"])
                .arg(&file),
        );
        for object in [
            "deployment.apps/dry-cvm-operator",
            "poddisruptionbudget.policy/dry-cvm-operator",
            "clusterrole.rbac.authorization.k8s.io/dry-cvm-operator-secret-reader",
        ] {
            assert!(
                out.contains(&format!("{object} created (server dry run)")),
                "{object} in\n{out}"
            );
        }
    }
    // The API server validates what the schema passes through: a bad quantity is refused.
    let manifest = helm_template(&[
        "dry",
        "--namespace",
        &namespace,
        "--set-json",
        r#"resources={"requests":{"cpu":"lots"}}"#,
    ]);
    let file = scratch().join("dry-run-bad.yaml");
    std::fs::write(&file, manifest).unwrap();
    let stderr = failing(
        cp.kubectl()
            .args(["apply", "--dry-run=server", "-f"])
            .arg(&file),
    );
    assert!(
        stderr.contains("quantities must match the regular expression"),
        "{stderr}"
    );
}

#[tokio::test]
async fn helm_install_upgrade_and_uninstall_against_the_api_server() {
    let (_, namespace) = support::namespace_with_deploy("chart-release").await;
    let cp = support::control_plane();
    let release = "release-test";
    let get = |kind: &str, name: &str| {
        cp.kubectl()
            .args([
                "get",
                kind,
                name,
                "-n",
                &namespace,
                "-o",
                "json",
                "--ignore-not-found",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap()
    };
    let deployment = format!("{release}-cvm-operator");
    let upgrade = |sets: &[&str]| {
        let mut cmd = helm();
        cmd.args(["upgrade", release, CHART, "--namespace", &namespace]);
        for set in sets {
            cmd.args(["--set", set]);
        }
        cmd
    };

    let out = kubectl_ok(helm().args(["install", release, CHART, "--namespace", &namespace]));
    assert!(out.contains("STATUS: deployed"), "{out}");
    let installed: Value = serde_json::from_str(&get("deployment", &deployment)).unwrap();
    assert_eq!(installed["spec"]["replicas"], 2);
    assert!(!get("clusterrolebinding", &format!("{deployment}-secret-reader")).is_empty());

    // Upgrade to the per-namespace Secrets mode with three replicas.
    let out = kubectl_ok(&mut upgrade(&[
        "replicaCount=3",
        "secrets.access=namespaces",
        &format!("secrets.namespaces={{{namespace}}}"),
    ]));
    assert!(out.contains("REVISION: 2"), "{out}");
    let upgraded: Value = serde_json::from_str(&get("deployment", &deployment)).unwrap();
    assert_eq!(upgraded["spec"]["replicas"], 3);
    assert!(
        get("clusterrolebinding", &format!("{deployment}-secret-reader")).is_empty(),
        "no cluster-wide Secret access after the upgrade"
    );
    assert!(!get("rolebinding", &format!("{deployment}-secret-reader")).is_empty());

    // A bad value is refused and the release stays at revision 2.
    failing(&mut upgrade(&["replicas=1"]));
    let history =
        kubectl_ok(helm().args(["history", release, "--namespace", &namespace, "-o", "json"]));
    let history: Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");

    kubectl_ok(helm().args(["uninstall", release, "--namespace", &namespace, "--wait"]));
    assert!(
        get("deployment", &deployment).is_empty(),
        "the Deployment is gone"
    );
    assert!(
        get("clusterrole", &deployment).is_empty(),
        "the ClusterRole is gone"
    );
    // crds/ is never deleted by Helm (README "CRD policy").
    assert!(!get("crd", "cvminstances.cvm-operator.io").is_empty());
}
