//! Least privilege for Secrets (docs/operations.md): in the per-namespace mode the operator
//! reads Secrets only where a RoleBinding opts the namespace in, and says which permission
//! it lacks elsewhere. Both renderings of the mode, the Helm chart's and the kustomize
//! component's, are applied and the operator runs under them with the real RBAC. The
//! cluster-wide mode is deploy/'s default, under which every other e2e test runs.

use std::path::PathBuf;
use std::time::Duration;

use crate::env::{Operator, REPO, TestEnv, kubectl_ok, sim_config};
use crate::support::{self, tools};

/// An operator identity whose RBAC came from one of the two renderings.
struct ScopedIdentity {
    namespace: String,
    service_account: String,
    secret_reader: String,
}

#[tokio::test]
async fn helm_namespaces_mode_reads_secrets_only_where_opted_in() {
    let (_, home) = support::namespace_with_deploy("secrets-helm").await;
    let opted = TestEnv::without_operator("secrets-helm-opted", sim_config(), true).await;
    let release = home.clone();
    let manifest = tools::helm_template(&[
        &release,
        "--namespace",
        &home,
        "--set",
        "secrets.access=namespaces",
        "--set",
        &format!("secrets.namespaces={{{}}}", opted.namespace),
    ]);
    assert!(
        !manifest.contains(&format!(
            "kind: ClusterRoleBinding\nmetadata:\n  name: {release}-cvm-operator-secret-reader"
        )),
        "no cluster-wide Secret access in this mode:\n{manifest}"
    );
    let identity = ScopedIdentity {
        service_account: format!("{release}-cvm-operator"),
        secret_reader: format!("{release}-cvm-operator-secret-reader"),
        namespace: home,
    };
    check_scoped_mode(&identity, &tools::rbac_documents(&manifest), opted).await;
}

#[tokio::test]
async fn kustomize_component_reads_secrets_only_where_opted_in() {
    let (_, home) = support::namespace_with_deploy("secrets-kustomize").await;
    let cp = support::control_plane();
    // An overlay of deploy/ with the component, under names of its own so that it does not
    // touch the cluster-wide install the other tests run under.
    let overlay = cp.work_dir().join(format!("overlay-{home}"));
    std::fs::create_dir_all(&overlay).unwrap();
    // kustomize takes only relative paths: up to / from the overlay, then down to the repo.
    let up = "../".repeat(overlay.components().count() - 1);
    let repo = format!("{up}{}", REPO.trim_start_matches('/'));
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!(
            "resources: [{repo}/deploy]\ncomponents: [{repo}/deploy/components/secrets-per-namespace]\n\
             namespace: {home}\nnamePrefix: {home}-\n"
        ),
    )
    .unwrap();
    let manifest = kubectl_ok(cp.kubectl().arg("kustomize").arg(&overlay));
    assert!(
        manifest.contains(&format!("name: {home}-cvm-operator-secret-reader")),
        "the secret-reader ClusterRole stays:\n{manifest}"
    );
    assert_eq!(
        manifest.matches("kind: ClusterRoleBinding").count(),
        1,
        "only the operator's own ClusterRoleBinding, not the Secrets one:\n{manifest}"
    );
    let opted = TestEnv::without_operator("secrets-kustomize-opted", sim_config(), true).await;
    let identity = ScopedIdentity {
        service_account: format!("{home}-cvm-operator"),
        secret_reader: format!("{home}-cvm-operator-secret-reader"),
        namespace: home,
    };
    opt_in(&identity, &opted.namespace);
    check_scoped_mode(&identity, &tools::rbac_documents(&manifest), opted).await;
}

/// Applies `rbac`, then runs one operator per namespace as `identity`: in `opted` (already
/// opted in) the resource becomes Ready; in a second namespace it is Stalled naming the
/// missing permission until that namespace opts in too.
async fn check_scoped_mode(identity: &ScopedIdentity, rbac: &str, mut opted: TestEnv) {
    let cp = support::control_plane();
    let rbac_file = cp
        .work_dir()
        .join(format!("rbac-{}.yaml", identity.namespace));
    std::fs::write(&rbac_file, rbac).unwrap();
    kubectl_ok(cp.kubectl().args(["apply", "-f"]).arg(&rbac_file));
    let kubeconfig: PathBuf =
        cp.service_account_kubeconfig(&identity.namespace, &identity.service_account);

    let mut closed = TestEnv::without_operator("secrets-closed", sim_config(), true).await;
    for env in [&mut opted, &mut closed] {
        env.operator = Some(Operator::start_as(
            &env.dir,
            "operator",
            &kubeconfig,
            &env.sim.endpoint,
            &env.namespace,
            false,
            &[],
        ));
        env.apply_file(&format!("{REPO}/examples/pay-as-you-go.yaml"));
    }

    opted.wait_ready("web-1", 90);
    let stalled = closed
        .wait_reason(
            "web-1",
            "CredentialsSecretForbidden",
            Duration::from_secs(60),
        )
        .await;
    let ready = stalled.status.unwrap().condition("Ready").unwrap().clone();
    let user = format!(
        "system:serviceaccount:{}:{}",
        identity.namespace, identity.service_account
    );
    for needle in [
        format!("may not read Secret {}/tencentcloud", closed.namespace),
        format!("User \"{user}\" cannot get resource \"secrets\""),
        format!("`get` on `secrets` in namespace {}", closed.namespace),
    ] {
        assert!(
            ready.message.contains(&needle),
            "the condition names the missing permission ({needle}): {}",
            ready.message
        );
    }
    assert!(
        closed.sim.instances().await.is_empty(),
        "nothing is created without credentials"
    );

    opt_in(identity, &closed.namespace);
    closed.wait_ready("web-1", 90);
}

/// What a namespace owner does to opt in: a RoleBinding to the secret-reader ClusterRole.
fn opt_in(identity: &ScopedIdentity, namespace: &str) {
    kubectl_ok(support::control_plane().kubectl().args([
        "create",
        "rolebinding",
        "cvm-operator-secret-reader",
        "-n",
        namespace,
        &format!("--clusterrole={}", identity.secret_reader),
        &format!(
            "--serviceaccount={}:{}",
            identity.namespace, identity.service_account
        ),
    ]));
}
