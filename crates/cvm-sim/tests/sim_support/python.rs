//! The official Tencent Cloud Python tools, pinned, in one virtualenv under
//! ~/.cache/cvm-operator/ that the tests create when it is missing (python3 with venv, and
//! PyPI): the SDK (`tencentcloud-sdk-python-common`, `tencentcloud-sdk-python-cvm`) and the
//! CLI `tccli`, which depends on the whole `tencentcloud-sdk-python` (about 650 MB
//! installed, about 75 s to install on the 2-core machine).
//!
//! The directory name is the cache key: change it whenever a pin changes.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const PACKAGES: &[&str] = &[
    "tencentcloud-sdk-python-common==3.1.195",
    "tencentcloud-sdk-python-cvm==3.1.178",
    "tccli==3.1.189.1",
    // tccli asks for `tencentcloud-sdk-python>=3.1.189`; pinned so a new release cannot
    // change what the tests run. Its `common` and `cvm` files are byte-identical to the
    // two packages above.
    "tencentcloud-sdk-python==3.1.195",
];
const VENV_NAME: &str = "venv-sdk3.1.195-cvm3.1.178-tccli3.1.189.1";

pub fn venv_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("cvm-operator").join(VENV_NAME)
}

/// The venv's `bin/<name>`, creating the venv first if needed.
pub fn venv_bin(name: &str) -> PathBuf {
    ensure_venv(&venv_dir()).join("bin").join(name)
}

fn run_checked(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Creates the virtualenv next to its final place and renames it in, so a half-made one
/// is never used, and two test runs racing for it both end with a complete one.
fn ensure_venv(dir: &Path) -> PathBuf {
    if dir.join("bin").join("tccli").exists() {
        return dir.to_path_buf();
    }
    let parent = dir.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let staging = parent.join(format!("{VENV_NAME}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    run_checked(
        Command::new("python3").arg("-m").arg("venv").arg(&staging),
        "python3 -m venv",
    );
    run_checked(
        Command::new(staging.join("bin").join("python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PACKAGES),
        "pip install the Tencent Cloud Python SDK and tccli",
    );
    // venv scripts name their interpreter by absolute path: fix them up for the final place.
    retarget_scripts(&staging, dir);
    if std::fs::rename(&staging, dir).is_err() {
        // Another run won the race; use its venv.
        let _ = std::fs::remove_dir_all(&staging);
    }
    dir.to_path_buf()
}

/// Rewrites the `#!<staging>/bin/python` lines of the venv's scripts to the final path.
fn retarget_scripts(staging: &Path, dir: &Path) {
    let (from, to) = (staging.display().to_string(), dir.display().to_string());
    for entry in std::fs::read_dir(staging.join("bin")).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // the python binaries and symlinks to them
        };
        if text.contains(&from) {
            std::fs::write(&path, text.replace(&from, &to)).unwrap();
        }
    }
}
