//! Where the test tools come from: the control plane (etcd, kube-apiserver,
//! kube-controller-manager, kubectl) and gitops-health, each built from Go modules by a
//! script in tools/ that caches its output.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Points at a directory holding `etcd`, `kube-apiserver`, `kube-controller-manager` and
/// `kubectl`; tools/test.sh sets it so test binaries skip even the cache check.
pub const BIN_DIR_ENV: &str = "CVM_OPERATOR_CONTROL_PLANE_BIN";

/// Points at the gitops-health binary; tools/test.sh sets it.
pub const GITOPS_HEALTH_ENV: &str = "CVM_OPERATOR_GITOPS_HEALTH";

/// The bin directory from `CVM_OPERATOR_CONTROL_PLANE_BIN`, or else from
/// tools/build-control-plane.sh (which only builds when its cache is empty).
pub fn bin_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os(BIN_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => build_with_script("tools/build-control-plane.sh")?,
    };
    for binary in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kubectl",
    ] {
        if !dir.join(binary).is_file() {
            return Err(format!("{} has no {binary}", dir.display()));
        }
    }
    Ok(dir)
}

/// tools/gitops-health (kstatus and Argo CD's Lua engine), from `CVM_OPERATOR_GITOPS_HEALTH`
/// or else from tools/build-gitops-health.sh.
pub fn gitops_health() -> Result<PathBuf, String> {
    let binary = match std::env::var_os(GITOPS_HEALTH_ENV) {
        Some(path) => PathBuf::from(path),
        None => build_with_script("tools/build-gitops-health.sh")?,
    };
    if !binary.is_file() {
        return Err(format!("{} does not exist", binary.display()));
    }
    Ok(binary)
}

/// Runs a build script of the repository and returns the path it prints last.
fn build_with_script(relative: &str) -> Result<PathBuf, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative);
    // The script's progress goes to stderr, which a first build needs people to see.
    let output = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(format!("{} failed: {}", script.display(), output.status));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .last()
        .map(|line| PathBuf::from(line.trim()))
        .ok_or_else(|| format!("{} printed no path", script.display()))
}

/// Points at a cvm-sim binary, overriding the one found next to the test binary.
pub const CVM_SIM_ENV: &str = "CVM_SIM_BIN";

/// The cvm-sim binary. The simulator is a crate of its own, so cargo gives this package no
/// `CARGO_BIN_EXE_cvm-sim`; `cargo test` of the workspace builds it (the simulator's own
/// tests need it) into the profile directory that holds this binary's `deps/`.
pub fn cvm_sim() -> PathBuf {
    if let Some(path) = std::env::var_os(CVM_SIM_ENV) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in <target>/<profile>/deps");
    let binary = profile_dir.join(format!("cvm-sim{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.is_file(),
        "{} does not exist: build it with `cargo build -p cvm-sim` (same profile), \
         run the whole workspace's tests (`cargo test`), or set {CVM_SIM_ENV}",
        binary.display()
    );
    binary
}
