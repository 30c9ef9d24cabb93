//! The packaging tools (crane, crictl, helm) built by tools/build-go-tools.sh, and helm
//! pointed at the test control plane.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// Runs a repository script and returns the last line it printed (its result), panicking
/// with its output if it fails.
pub fn script_result(cmd: &mut Command) -> String {
    let out = super::kubectl_ok(cmd.current_dir(REPO));
    out.lines().last().unwrap_or_default().trim().to_string()
}

/// The directory with crane, crictl and helm (built on first use, then cached).
pub fn go_tools() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        PathBuf::from(script_result(&mut Command::new(format!(
            "{REPO}/tools/build-go-tools.sh"
        ))))
    })
}

/// `helm` with the admin kubeconfig and its own config, cache and data directories, so
/// that nothing of the user's Helm setup is read or written.
pub fn helm() -> Command {
    let cp = super::control_plane();
    let home = cp.work_dir().join("helm");
    let mut cmd = Command::new(go_tools().join("helm"));
    cmd.env("KUBECONFIG", cp.admin_kubeconfig())
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .current_dir(REPO);
    cmd
}

/// `helm template` output of the chart with `args` (release name, --set ...), no cluster.
pub fn helm_template(args: &[&str]) -> String {
    let chart = format!("{REPO}/charts/cvm-operator");
    super::kubectl_ok(helm().args(["template"]).args(args).arg(chart))
}

/// Only the ServiceAccount and RBAC objects of a multi-document manifest.
pub fn rbac_documents(manifest: &str) -> String {
    const KINDS: [&str; 5] = [
        "kind: ServiceAccount",
        "kind: ClusterRole\n",
        "kind: ClusterRoleBinding",
        "kind: Role\n",
        "kind: RoleBinding",
    ];
    manifest
        .split("\n---")
        .filter(|doc| KINDS.iter().any(|kind| doc.contains(kind)))
        .collect::<Vec<_>>()
        .join("\n---")
}
