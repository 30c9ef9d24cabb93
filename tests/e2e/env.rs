//! One isolated world per test: a namespace, its own cvm-sim, and its own operator running
//! as the `cvm-operator` ServiceAccount (RBAC from deploy/) and watching only that namespace.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use cvm_operator::api::CvmInstance;
use cvm_sim::admin_client::{SimAdmin, SimInstance};
use kube::Api;
use serde_json::{Value, json};

use crate::support::{self, process::ManagedProcess, wait_for};

/// The simulator's default account, also in examples/credentials-secret.yaml.
pub const SECRET_ID: &str = "AKIDsimulator0000000000000000000000";
pub const SECRET_KEY: &str = "simulatorsecretkey000000000000000";

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

pub use crate::support::{install_deploy, kubectl_ok};

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// A cvm-sim process with its admin client.
pub struct Sim {
    process: ManagedProcess,
    pub endpoint: String,
    pub admin: SimAdmin,
}

impl Sim {
    pub async fn start(dir: &Path, config: Value) -> Sim {
        let config_path = dir.join("sim.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let mut cmd = Command::new(crate::support::binaries::cvm_sim());
        cmd.arg("--config").arg(&config_path);
        let process = ManagedProcess::spawn("cvm-sim", cmd, dir.join("sim.log")).unwrap();
        let log = process.log_path.clone();
        let endpoint = wait_for(
            "cvm-sim to print its endpoint",
            Duration::from_secs(20),
            || {
                let log = log.clone();
                async move {
                    let text = std::fs::read_to_string(&log).ok()?;
                    text.lines()
                        .find_map(|l| l.strip_prefix("CVM_SIM_ENDPOINT="))
                        .map(str::to_string)
                }
            },
        )
        .await;
        let admin = SimAdmin::new(endpoint.clone());
        Sim {
            process,
            endpoint,
            admin,
        }
    }

    pub async fn instances(&self) -> Vec<SimInstance> {
        self.admin.instances().await.expect("sim admin: instances")
    }

    /// Instances tagged for the resource with this UID.
    pub async fn instances_of(&self, uid: &str) -> Vec<SimInstance> {
        self.instances()
            .await
            .into_iter()
            .filter(|i| {
                i.tags
                    .iter()
                    .any(|t| t.key == "cvm-operator.io/uid" && t.value == uid)
            })
            .collect()
    }

    /// At least `at_least` TerminateInstances calls succeeded, and none was refused.
    pub async fn assert_terminations_succeeded(&self, at_least: u64) {
        let terminations = self.outcomes("TerminateInstances").await;
        assert!(
            terminations.get("Success").copied().unwrap_or(0) >= at_least,
            "fewer than {at_least} successful TerminateInstances: {terminations:?}"
        );
        assert!(
            terminations.keys().all(|outcome| outcome == "Success"),
            "refused TerminateInstances calls: {terminations:?}"
        );
    }

    /// The next call of `action` takes effect at once, but its answer arrives `ms` later:
    /// a window to kill the operator in, with the call made and its answer not yet seen.
    pub async fn delay_next_answer(&self, action: &str, ms: u64) {
        self.admin
            .add_fault(&cvm_sim::faults::FaultSpec {
                action: Some(action.to_string()),
                code: None,
                message: None,
                rate: 1.0,
                count: Some(1),
                latency_ms: None,
                drop_connection: false,
                response_delay_ms: Some(ms),
            })
            .await
            .expect("sim admin: fault");
    }

    pub async fn calls(&self, action: &str) -> u64 {
        self.outcomes(action).await.values().sum()
    }

    /// Calls of `action` by outcome: `Success` or the error code.
    pub async fn outcomes(&self, action: &str) -> std::collections::BTreeMap<String, u64> {
        let counters = self.admin.counters().await.expect("sim admin: counters");
        counters.calls.get(action).cloned().unwrap_or_default()
    }
}

/// Settings that make the operator react in test time rather than production time.
pub const FAST_OPERATOR_ARGS: &[&str] = &[
    "--resync-seconds",
    "2",
    "--poll-min-seconds",
    "0.3",
    "--poll-max-seconds",
    "1",
    "--slow-retry-seconds",
    "1",
    "--slow-retry-max-seconds",
    "2",
    "--tag-grace-seconds",
    "2",
];

/// A cvm-operator process running as the ServiceAccount from deploy/.
pub struct Operator {
    process: ManagedProcess,
    /// Its `POD_NAME`, hence its identity in a leader-election Lease.
    pub identity: String,
}

impl Operator {
    pub fn start(
        dir: &Path,
        sim_endpoint: &str,
        namespace: &str,
        default_credentials: bool,
        extra: &[&str],
    ) -> Operator {
        Self::start_named(
            dir,
            "operator",
            sim_endpoint,
            namespace,
            default_credentials,
            extra,
        )
    }

    pub fn start_named(
        dir: &Path,
        name: &str,
        sim_endpoint: &str,
        namespace: &str,
        default_credentials: bool,
        extra: &[&str],
    ) -> Operator {
        let kubeconfig =
            support::control_plane().service_account_kubeconfig("cvm-operator", "cvm-operator");
        Self::start_as(
            dir,
            name,
            &kubeconfig,
            sim_endpoint,
            namespace,
            default_credentials,
            extra,
        )
    }

    /// An operator authenticating with `kubeconfig` (another identity than deploy/'s).
    pub fn start_as(
        dir: &Path,
        name: &str,
        kubeconfig: &Path,
        sim_endpoint: &str,
        namespace: &str,
        default_credentials: bool,
        extra: &[&str],
    ) -> Operator {
        let identity = format!("{namespace}-{name}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cvm-operator"));
        cmd.arg("run")
            .args(["--endpoint", sim_endpoint, "--watch-namespace", namespace])
            .args(FAST_OPERATOR_ARGS)
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,cvm_operator=debug,tencent_cloud=debug")
            .env("POD_NAME", &identity)
            .env_remove("TENCENTCLOUD_SECRET_ID")
            .env_remove("TENCENTCLOUD_SECRET_KEY")
            .env_remove("TENCENTCLOUD_SESSION_TOKEN");
        if default_credentials {
            cmd.env("TENCENTCLOUD_SECRET_ID", SECRET_ID)
                .env("TENCENTCLOUD_SECRET_KEY", SECRET_KEY);
        }
        if !extra.contains(&"--http-addr") {
            // Tests run in parallel: each operator serves on a free port of its own.
            cmd.args(["--http-addr", "127.0.0.1:0"]);
        }
        let process = ManagedProcess::spawn(name, cmd, dir.join(format!("{name}.log"))).unwrap();
        Operator { process, identity }
    }

    /// SIGKILL: no chance to finish anything, as in a node crash or OOM kill.
    pub fn kill(&self) {
        self.process.kill();
    }

    /// SIGTERM, as Kubernetes stops a Pod (SIGKILL after `grace`); returns the exit status.
    pub fn terminate(&self, grace: Duration) -> String {
        self.process.terminate(grace);
        self.process
            .exit_status()
            .unwrap_or_else(|| "still running".to_string())
    }

    /// The base URL of its HTTP server, once it logged the address it bound
    /// (start it with `--http-addr 127.0.0.1:0`).
    pub fn http_url(&self) -> Option<String> {
        let log = self.log();
        let at = log.find("http_addr")?;
        let addr: String = log[at..]
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
            .collect();
        Some(format!("http://{addr}"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.process.log_path).unwrap_or_default()
    }
}

/// The pay-as-you-go example (`web-1`) under another name.
pub fn web(name: &str) -> String {
    std::fs::read_to_string(format!("{REPO}/examples/pay-as-you-go.yaml"))
        .unwrap()
        .replace("name: web-1", &format!("name: {name}"))
        .replace("hostName: web-1", &format!("hostName: {name}"))
}

/// The sim config most tests use: quick lifecycle, real rate limits.
pub fn sim_config() -> Value {
    json!({
        "accounts": [{"secretId": SECRET_ID, "secretKey": SECRET_KEY, "balance": 1000000.0}],
        "timing": {"pendingSeconds": 1.0, "publicIpDelaySeconds": 1.0, "terminatingSeconds": 1.0}
    })
}

pub struct TestEnv {
    pub namespace: String,
    pub client: kube::Client,
    pub sim: Sim,
    pub operator: Option<Operator>,
    pub dir: PathBuf,
}

impl TestEnv {
    /// A namespace with the example credentials Secret, a sim and a running operator.
    pub async fn start(name: &str) -> TestEnv {
        Self::start_with(name, sim_config(), true).await
    }

    pub async fn start_with(name: &str, sim_config: Value, with_secret: bool) -> TestEnv {
        let env = Self::without_operator(name, sim_config, with_secret).await;
        env.with_operator(false, &[])
    }

    pub async fn without_operator(name: &str, sim_config: Value, with_secret: bool) -> TestEnv {
        install_deploy();
        let cp = support::control_plane();
        let client = cp.admin_client().await;
        let namespace = support::new_namespace(&client, name).await;
        let dir = cp.work_dir().join(format!("e2e-{namespace}"));
        std::fs::create_dir_all(&dir).unwrap();
        let sim = Sim::start(&dir, sim_config).await;
        let env = TestEnv {
            namespace,
            client,
            sim,
            operator: None,
            dir,
        };
        if with_secret {
            env.apply_file(&format!("{REPO}/examples/credentials-secret.yaml"));
        }
        env
    }

    pub fn with_operator(mut self, default_credentials: bool, extra: &[&str]) -> TestEnv {
        self.operator = Some(Operator::start(
            &self.dir,
            &self.sim.endpoint,
            &self.namespace,
            default_credentials,
            extra,
        ));
        self
    }

    pub fn api(&self) -> Api<CvmInstance> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// kubectl as admin in this namespace.
    pub fn kubectl(&self) -> Command {
        let mut cmd = support::control_plane().kubectl();
        cmd.args(["-n", &self.namespace]);
        cmd
    }

    pub fn apply_file(&self, path: &str) -> String {
        kubectl_ok(self.kubectl().args(["apply", "-f", path]))
    }

    /// `kubectl apply` of a manifest given as text; returns the command's output.
    pub fn apply_yaml(&self, yaml: &str) -> Output {
        let path = self.dir.join(format!("manifest-{}.yaml", rand_suffix()));
        std::fs::write(&path, yaml).unwrap();
        run(self.kubectl().args(["apply", "-f"]).arg(&path))
    }

    /// `kubectl apply` of a manifest given as text, which must succeed.
    pub fn apply_yaml_ok(&self, yaml: &str) {
        let out = self.apply_yaml(yaml);
        assert!(
            out.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `kubectl patch` of the resource's spec (a merge patch), as a GitOps sync would.
    pub fn patch_spec(&self, name: &str, spec: Value) {
        kubectl_ok(self.kubectl().args([
            "patch",
            &format!("cvm/{name}"),
            "--type",
            "merge",
            "-p",
            &json!({ "spec": spec }).to_string(),
        ]));
    }

    /// `kubectl wait --for=condition=Ready` on one resource, as a user would.
    pub fn wait_ready(&self, name: &str, timeout_secs: u32) {
        kubectl_ok(self.kubectl().args([
            "wait",
            "--for=condition=Ready",
            &format!("--timeout={timeout_secs}s"),
            &format!("cvm/{name}"),
        ]));
    }

    pub async fn get(&self, name: &str) -> CvmInstance {
        self.api().get(name).await.expect("get CvmInstance")
    }

    /// Waits until the resource's Ready condition has `reason` and returns the resource.
    pub async fn wait_reason(&self, name: &str, reason: &str, timeout: Duration) -> CvmInstance {
        let api = self.api();
        wait_for(&format!("{name} to have reason {reason}"), timeout, || {
            let api = api.clone();
            async move {
                let obj = api.get_opt(name).await.ok()??;
                let ready = obj.status.as_ref()?.condition("Ready")?.clone();
                (ready.reason == reason).then_some(obj)
            }
        })
        .await
    }

    /// The reasons of all Events in the namespace, space-separated.
    pub fn event_reasons(&self) -> String {
        kubectl_ok(
            self.kubectl()
                .args(["get", "events", "-o", "jsonpath={.items[*].reason}"]),
        )
    }

    pub async fn wait_gone(&self, name: &str, timeout: Duration) {
        let api = self.api();
        wait_for(&format!("{name} to be deleted"), timeout, || {
            let api = api.clone();
            async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.process.terminate(Duration::from_secs(5));
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.process.kill();
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(op) = &self.operator {
                eprintln!(
                    "----- operator log ({}) -----\n{}",
                    self.namespace,
                    tail(&op.log(), 80)
                );
            }
            eprintln!(
                "----- cvm-sim log ({}) -----\n{}",
                self.namespace,
                self.sim.process.log_tail(40)
            );
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
