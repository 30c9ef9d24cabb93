//! Test harness: a real etcd + kube-apiserver + kube-controller-manager for integration tests.
//!
//! ```ignore
//! mod support;
//!
//! #[tokio::test]
//! async fn something() {
//!     let control_plane = support::control_plane();
//!     let client = control_plane.admin_client().await;
//!     let namespace = support::new_namespace(&client, "something").await;
//!     // ...
//! }
//! ```
//!
//! One control plane serves the whole test binary: it starts on first use and stops when
//! the binary exits (also on a crash: the children get SIGKILL through PR_SET_PDEATHSIG).
//! Tests isolate themselves with a namespace each. Any panic in a test binary that started
//! the control plane prints the tails of its processes' logs.
//!
//! kube-controller-manager runs the garbage collector and the namespace controller, so
//! ownerReferences are acted on and deleted namespaces go away, as in a real cluster.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod binaries;
mod control_plane;
mod controller_manager;
mod pki;
pub mod process;
pub mod tools;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use control_plane::ControlPlane;

/// Set to keep the control plane's directory (certificates, data, logs) after the run.
pub const KEEP_DIR_ENV: &str = "CVM_OPERATOR_KEEP_CONTROL_PLANE";

const WORK_DIR_PREFIX: &str = "cvm-operator-cp-";

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

/// The control plane of this test binary, started on first call.
/// Panics, with the processes' logs, if it cannot start.
pub fn control_plane() -> &'static ControlPlane {
    let started = CONTROL_PLANE.get_or_init(|| {
        // Startup blocks on its own small runtime; a separate thread keeps that legal when
        // the caller is itself inside a #[tokio::test] runtime.
        let result = std::thread::spawn(|| {
            let work_dir = new_work_dir()?;
            ControlPlane::start(work_dir.clone()).inspect_err(|_| {
                let _ = std::fs::remove_dir_all(&work_dir);
            })
        })
        .join()
        .unwrap_or_else(|_| Err("control plane startup panicked".to_string()));
        if let Ok(control_plane) = &result {
            eprintln!(
                "control plane ready in {:.1}s ({:.1}s of it kube-controller-manager) at {} \
                 (binaries: {})",
                control_plane.startup_time.as_secs_f64(),
                control_plane
                    .controller_manager_startup_time()
                    .as_secs_f64(),
                control_plane.server_url(),
                control_plane.bin_dir().display()
            );
            stop_at_exit();
            dump_logs_on_panic();
        }
        result
    });
    match started {
        Ok(control_plane) => control_plane,
        Err(error) => panic!("the test control plane could not start: {error}"),
    }
}

/// Creates a namespace named after `prefix`, unique within this control plane, and
/// returns its name. Namespaces are not deleted after tests: the control plane's
/// directory is thrown away, and deleting them would only add load.
pub async fn new_namespace(client: &kube::Client, prefix: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, ObjectMeta, PostParams};

    static SEQUENCE: AtomicU32 = AtomicU32::new(0);
    let label: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let name = format!(
        "{}-{}-{}",
        label.trim_matches('-'),
        SEQUENCE.fetch_add(1, Ordering::Relaxed),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .unwrap_or_else(|e| panic!("create namespace {name}: {e}"));
    name
}

/// Calls `check` every 200 ms until it returns `Some`, and returns that value.
/// Panics after `timeout`, naming `what` (the panic also prints the control plane's logs).
pub async fn wait_for<F, Fut, T>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// deploy/ installed, an admin client and a fresh namespace: how most tests begin.
pub async fn namespace_with_deploy(prefix: &str) -> (kube::Client, String) {
    install_deploy();
    let client = control_plane().admin_client().await;
    let namespace = new_namespace(&client, prefix).await;
    (client, namespace)
}

/// Runs a command (kubectl) and panics with its output unless it succeeds; returns stdout.
pub fn kubectl_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Applies deploy/ (namespace, CRD, RBAC, Deployment) once per process and waits for the CRD
/// to be Established.
pub fn install_deploy() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let cp = control_plane();
        let deploy = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy");
        kubectl_ok(cp.kubectl().args(["apply", "-k", deploy]));
        kubectl_ok(cp.kubectl().args([
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/cvminstances.cvm-operator.io",
            "crd/cvminstancesets.cvm-operator.io",
        ]));
    });
}

/// kube and reqwest use rustls without a default crypto provider; pick ring once.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A fresh directory for certificates, etcd data and logs: in /dev/shm when available,
/// since etcd is much faster on tmpfs.
fn new_work_dir() -> Result<PathBuf, String> {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() && tempfile::tempdir_in(shm).is_ok() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    remove_abandoned_work_dirs(&base);
    tempfile::Builder::new()
        .prefix(&format!("{WORK_DIR_PREFIX}{}-", std::process::id()))
        .tempdir_in(&base)
        .map(|dir| dir.keep())
        .map_err(|e| format!("create a work directory in {}: {e}", base.display()))
}

/// Removes directories left by test binaries that died without cleaning up (SIGKILL).
fn remove_abandoned_work_dirs(base: &Path) {
    for dir in abandoned_entries(base, WORK_DIR_PREFIX) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The entries of `dir` named `<prefix><pid>-...` whose process no longer exists: what a
/// test binary killed before its cleanup left behind.
pub fn abandoned_entries(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(prefix))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<libc::pid_t>().ok())
            else {
                return false;
            };
            // SAFETY: signal 0 only checks whether the process exists.
            let alive = unsafe { libc::kill(pid, 0) } == 0
                || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
            !alive
        })
        .map(|entry| entry.path())
        .collect()
}

/// Statics are never dropped, so the control plane stops from an atexit handler, which
/// runs when the test harness returns from main or calls exit().
fn stop_at_exit() {
    extern "C" fn stop() {
        if let Some(Ok(control_plane)) = CONTROL_PLANE.get() {
            if std::env::var_os(KEEP_DIR_ENV).is_some() {
                control_plane.stop_keeping_files();
            } else {
                control_plane.stop();
            }
        }
    }
    // SAFETY: registers a plain extern "C" function; failure only means no cleanup.
    unsafe { libc::atexit(stop) };
}

/// Every panic in this test binary (failed assertion, wait_for deadline) also prints the
/// control plane's log tails; libtest captures them into the failing test's output.
fn dump_logs_on_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        if let Some(Ok(control_plane)) = CONTROL_PLANE.get() {
            control_plane.dump_logs();
        }
    }));
}
