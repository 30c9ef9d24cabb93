//! containerd + runc from Debian's packages (tools/fetch-container-runtime.sh), private to
//! one test and driven with crictl: the CRI calls a kubelet makes.
//!
//! Isolation, so that the machine is left as it was:
//! - every path containerd, its shims and runc use is under the test's directory; the one
//!   containerd 1.6 hard-codes (/run/containerd/s, shim sockets) is hidden by running
//!   containerd in its own mount namespace with a private tmpfs on /run;
//! - that namespace also keeps the containers' overlay mounts off the host's mount table;
//! - containerd is PID 1 of its own PID namespace (unshare --kill-child): killing it kills
//!   every shim and container, also when the test binary dies (PR_SET_PDEATHSIG);
//! - the containers' cgroups go under a cgroup of the test's own (cgroups.rs), removed after;
//! - `restrict_oom_score_adj`: this machine lacks CAP_SYS_RESOURCE, so the shim must not try
//!   to lower oom_score_adj; no sysctl or machine-wide setting is written.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cgroups::TestCgroup;
use crate::support::kubectl_ok;
use crate::support::process::ManagedProcess;
use crate::support::tools::{REPO, go_tools, script_result};

pub struct Containerd {
    pub dir: PathBuf,
    socket: PathBuf,
    bin: PathBuf,
    process: Option<ManagedProcess>,
    pub cgroup: TestCgroup,
    /// Host paths containerd or mount(8) would create if the isolation failed, and whether
    /// each existed before the start.
    watched: Vec<(PathBuf, bool)>,
}

impl Containerd {
    /// Starts containerd and imports the docker-archives `images` into its k8s.io namespace.
    pub fn start(images: &[&Path]) -> Containerd {
        let bin = PathBuf::from(script_result(&mut Command::new(format!(
            "{REPO}/tools/fetch-container-runtime.sh"
        ))));
        // Short: unix socket paths are limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("cvm-ctrd-")
            .tempdir_in("/tmp")
            .unwrap()
            .keep();
        let watched = [
            "/run/containerd",
            "/run/mount",
            "/var/lib/containerd",
            "/opt/containerd",
            "/etc/containerd",
        ]
        .iter()
        .map(|p| (PathBuf::from(p), Path::new(p).exists()))
        .collect();
        let cgroup = TestCgroup::new(&dir.file_name().unwrap().to_string_lossy()[9..]);
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        std::fs::write(&config, config_toml(&dir, &bin)).unwrap();
        let mut command = Command::new("unshare");
        command
            .args([
                "--mount",
                "--propagation",
                "private",
                "--pid",
                "--fork",
                "--kill-child=SIGKILL",
                "--mount-proc",
                "sh",
                "-c",
                // -n: no /run/mount/utab on the host.
                "mount -n -t tmpfs -o mode=0755 tmpfs /run && exec \"$0\" --config \"$1\"",
            ])
            .arg(bin.join("containerd"))
            .arg(&config)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            );
        let process = ManagedProcess::spawn("containerd", command, dir.join("containerd.log"))
            .expect("start containerd");
        let mut containerd = Containerd {
            dir,
            socket,
            bin,
            process: Some(process),
            cgroup,
            watched,
        };
        containerd.wait_until_serving();
        for image in images {
            kubectl_ok(
                Command::new(containerd.bin.join("ctr"))
                    .arg("--address")
                    .arg(&containerd.socket)
                    .args(["-n", "k8s.io", "images", "import"])
                    .arg(image),
            );
        }
        containerd
    }

    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.socket.exists()
                && self
                    .crictl()
                    .arg("version")
                    .output()
                    .is_ok_and(|o| o.status.success())
            {
                return;
            }
            let process = self.process.as_ref().unwrap();
            if let Some(status) = process.exit_status() {
                panic!("containerd exited ({status}):\n{}", process.log_tail(40));
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not serve:\n{}",
                process.log_tail(40)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn crictl(&self) -> Command {
        let endpoint = format!("unix://{}", self.socket.display());
        let mut cmd = Command::new(go_tools().join("crictl"));
        cmd.args([
            "--config",
            "/dev/null",
            "--timeout",
            "60s",
            "-r",
            &endpoint,
            "-i",
            &endpoint,
        ]);
        cmd
    }

    /// RunPodSandbox, CreateContainer, StartContainer; returns (sandbox ID, container ID).
    pub fn run_pod(&self, name: &str, sandbox: &Value, container: &Value) -> (String, String) {
        let sandbox_file = self.dir.join(format!("{name}-sandbox.json"));
        let container_file = self.dir.join(format!("{name}-container.json"));
        std::fs::write(&sandbox_file, sandbox.to_string()).unwrap();
        std::fs::write(&container_file, container.to_string()).unwrap();
        let pod = kubectl_ok(self.crictl().arg("runp").arg(&sandbox_file))
            .trim()
            .to_string();
        let id = kubectl_ok(
            self.crictl()
                .arg("create")
                .arg(&pod)
                .arg(&container_file)
                .arg(&sandbox_file),
        )
        .trim()
        .to_string();
        kubectl_ok(self.crictl().args(["start", &id]));
        (pod, id)
    }

    /// `crictl inspect` of a container.
    pub fn inspect(&self, id: &str) -> Value {
        serde_json::from_str(&kubectl_ok(self.crictl().args(["inspect", id]))).unwrap()
    }

    /// The container's log (what `kubectl logs` shows).
    pub fn logs(&self, id: &str) -> String {
        let out = self.crictl().args(["logs", id]).output();
        out.map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
    }

    /// StopContainer with the grace period (SIGTERM, then SIGKILL), as the kubelet does on
    /// Pod deletion; then the sandbox goes. Returns the container's exit code.
    pub fn stop_pod(&self, pod: &str, id: &str, grace_seconds: u64) -> i64 {
        kubectl_ok(
            self.crictl()
                .args(["stop", "--timeout", &grace_seconds.to_string(), id]),
        );
        let exit_code = self.inspect(id)["status"]["exitCode"]
            .as_i64()
            .unwrap_or(-1);
        kubectl_ok(self.crictl().args(["rm", id]));
        kubectl_ok(self.crictl().args(["stopp", pod]));
        kubectl_ok(self.crictl().args(["rmp", pod]));
        exit_code
    }

    /// Stops everything and removes every trace; returns what could not be removed or was
    /// created outside the test's own directory and cgroup (empty when clean).
    pub fn shut_down(&mut self) -> Vec<String> {
        let Some(process) = self.process.take() else {
            return Vec::new();
        };
        // Sandboxes first, as the kubelet would; killing the namespace's PID 1 then ends
        // whatever is left (shims, containers), mounts included.
        if let Ok(out) = self.crictl().args(["pods", "-q"]).output() {
            for pod in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self.crictl().args(["stopp", pod]).output();
                let _ = self.crictl().args(["rmp", pod]).output();
            }
        }
        process.kill();
        let mut left = self.cgroup.remove();
        let dir = self.dir.display().to_string();
        // The namespace's processes get SIGKILL with containerd; give the kernel a moment
        // to reap them before calling any of them left over.
        let deadline = Instant::now() + Duration::from_secs(20);
        while !processes_mentioning(&dir).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        left.extend(processes_mentioning(&dir));
        left.extend(
            std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(&dir))
                .map(|l| format!("mount: {l}")),
        );
        for (path, existed) in &self.watched {
            if !existed && path.exists() {
                left.push(format!("{} was created", path.display()));
            }
        }
        if left.is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        left
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let left = self.shut_down();
        if !left.is_empty() {
            eprintln!("containerd test left behind: {left:?}");
        }
    }
}

fn processes_mentioning(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(text) {
            found.push(format!(
                "process {}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

fn config_toml(dir: &Path, bin: &Path) -> String {
    let d = dir.display();
    let b = bin.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  # This machine lacks CAP_SYS_RESOURCE: without this every sandbox fails to start.
  restrict_oom_score_adj = true
  # tools/image/build-pause-image.sh builds it under this name; registry.k8s.io is not used.
  sandbox_image = "registry.k8s.io/pause:3.10"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{b}/runc"
        Root = "{d}/runc"
  # Pods use the host network (no CNI): see pod_spec.rs.
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni-bin"
    conf_dir = "{d}/cni"
"#
    )
}

/// The pause image's docker-archive, built once per test binary.
pub fn pause_image() -> PathBuf {
    static PAUSE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PAUSE
        .get_or_init(|| {
            let out = crate::image::target_dir().join("image/pause.tar");
            std::fs::create_dir_all(out.parent().unwrap()).unwrap();
            PathBuf::from(script_result(
                Command::new(format!("{REPO}/tools/image/build-pause-image.sh")).arg(&out),
            ))
        })
        .clone()
}
