//! Where the etcd, kube-apiserver and kubectl binaries come from.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Points at a directory holding `etcd`, `kube-apiserver` and `kubectl`; tools/test.sh
/// sets it so test binaries skip even the cache check.
pub const BIN_DIR_ENV: &str = "CVM_OPERATOR_CONTROL_PLANE_BIN";

/// The bin directory from `CVM_OPERATOR_CONTROL_PLANE_BIN`, or else from
/// tools/build-control-plane.sh (which only builds when its cache is empty).
pub fn bin_dir() -> Result<PathBuf, String> {
    let dir = match std::env::var_os(BIN_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => build_with_script()?,
    };
    for binary in ["etcd", "kube-apiserver", "kubectl"] {
        if !dir.join(binary).is_file() {
            return Err(format!("{} has no {binary}", dir.display()));
        }
    }
    Ok(dir)
}

fn build_with_script() -> Result<PathBuf, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tools/build-control-plane.sh");
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
        .ok_or_else(|| format!("{} printed no bin directory", script.display()))
}
