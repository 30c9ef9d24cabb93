//! Drives cvm-sim with the official Tencent Cloud Python SDK (tencentcloud-sdk-python-common
//! and tencentcloud-sdk-python-cvm from PyPI, pinned), installed into a throwaway virtualenv
//! under ~/.cache/cvm-operator/ that this test creates when it is missing.

mod sim_support;

use std::path::{Path, PathBuf};

use cvm_operator::sim::config::{DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY};
use sim_support::*;
use tokio::process::Command;

const SDK_COMMON: &str = "tencentcloud-sdk-python-common==3.1.195";
const SDK_CVM: &str = "tencentcloud-sdk-python-cvm==3.1.178";
const VENV_NAME: &str = "venv-3.1.178";

fn venv_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("cvm-operator").join(VENV_NAME)
}

async fn run_checked(command: &mut Command, what: &str) {
    let output = command
        .output()
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Creates the virtualenv next to its final place and renames it in, so a half-made one
/// is never used.
async fn ensure_venv(dir: &Path) -> PathBuf {
    let python = dir.join("bin").join("python");
    if python.exists() {
        return python;
    }
    let parent = dir.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let staging = parent.join(format!("{VENV_NAME}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    run_checked(
        Command::new("python3").arg("-m").arg("venv").arg(&staging),
        "python3 -m venv",
    )
    .await;
    run_checked(
        Command::new(staging.join("bin").join("python"))
            .args(["-m", "pip", "install", "--quiet", SDK_COMMON, SDK_CVM]),
        "pip install tencentcloud-sdk-python",
    )
    .await;
    if std::fs::rename(&staging, dir).is_err() {
        // Another run won the race; use its venv.
        let _ = std::fs::remove_dir_all(&staging);
    }
    python
}

#[tokio::test]
async fn official_python_sdk_works_against_the_simulator() {
    let python = ensure_venv(&venv_dir()).await;
    let sim = start(fast_config()).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_check.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(sim.addr.to_string())
        .arg(DEFAULT_SECRET_ID)
        .arg(DEFAULT_SECRET_KEY)
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "SDK checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "run ok",
        "describe ok",
        "client token ok",
        "wrong key refused AuthFailure.SignatureFailure",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(counters.get("RunInstances", "Success"), 2);
    assert_eq!(
        counters.get("DescribeInstances", "AuthFailure.SignatureFailure"),
        1
    );
    assert_eq!(sim.admin.instances().await.unwrap().len(), 2);
}
