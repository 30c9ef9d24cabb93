//! The processes one benchmark run needs: a cvm-sim and a release-built cvm-operator,
//! next to the shared control plane.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cvm_sim::admin_client::SimAdmin;
use serde_json::{Value, json};

use crate::proc_stats::{self, ProcStats};
use crate::support::{self, process::ManagedProcess, wait_for};

/// The simulator's default account; the operator gets it as its default credentials.
pub const SECRET_ID: &str = "AKIDsimulator0000000000000000000000";
pub const SECRET_KEY: &str = "simulatorsecretkey000000000000000";

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// How the simulated cloud behaves in a run.
#[derive(Debug, Clone, Copy)]
pub struct Cloud {
    pub run_instances_rate: u32,
    pub describe_instances_rate: u32,
    pub terminate_instances_rate: u32,
    pub pending_seconds: f64,
    pub public_ip_delay_seconds: f64,
    pub terminating_seconds: f64,
}

impl Cloud {
    /// Tencent's documented limits and a realistic boot.
    pub const REAL: Cloud = Cloud {
        run_instances_rate: 10,
        describe_instances_rate: 40,
        terminate_instances_rate: 10,
        pending_seconds: 10.0,
        public_ip_delay_seconds: 5.0,
        terminating_seconds: 5.0,
    };

    /// Until a CvmInstance with a public IP can be Ready: boot, then the IP.
    pub fn boot_delay(&self) -> Duration {
        Duration::from_secs_f64(self.pending_seconds + self.public_ip_delay_seconds)
    }

    /// The physical limit for `n` instances: RunInstances at its rate, then the boot.
    pub fn physical_limit(&self, n: usize) -> Duration {
        Duration::from_secs_f64(n as f64 / f64::from(self.run_instances_rate)) + self.boot_delay()
    }

    fn sim_config(&self) -> Value {
        json!({
            "accounts": [{
                "secretId": SECRET_ID,
                "secretKey": SECRET_KEY,
                "balance": 1.0e9,
                "instanceQuota": 1_000_000,
                "spotQuota": 1_000_000
            }],
            "timing": {
                "pendingSeconds": self.pending_seconds,
                "publicIpDelaySeconds": self.public_ip_delay_seconds,
                "terminatingSeconds": self.terminating_seconds
            },
            "rateLimits": {
                "RunInstances": self.run_instances_rate,
                "DescribeInstances": self.describe_instances_rate,
                "DescribeInstancesStatus": self.describe_instances_rate,
                "TerminateInstances": self.terminate_instances_rate
            }
        })
    }
}

pub use crate::support::install_deploy;

pub struct Sim {
    process: ManagedProcess,
    pub admin: SimAdmin,
    pub endpoint: String,
}

impl Sim {
    pub async fn start(dir: &Path, cloud: &Cloud) -> Sim {
        let config_path = dir.join("sim.json");
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&cloud.sim_config()).unwrap(),
        )
        .unwrap();
        let mut cmd = Command::new(crate::support::binaries::cvm_sim());
        cmd.arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "warn");
        let process = ManagedProcess::spawn("cvm-sim", cmd, dir.join("sim.log")).unwrap();
        let endpoint = wait_for_log_line(&process.log_path, "CVM_SIM_ENDPOINT=").await;
        Sim {
            admin: SimAdmin::new(endpoint.clone()),
            endpoint,
            process,
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.process.kill();
    }
}

pub struct Operator {
    process: ManagedProcess,
}

impl Operator {
    /// The release-built operator as the ServiceAccount from deploy/, watching `namespace`,
    /// with the simulator account as its default credentials.
    pub async fn start(
        dir: &Path,
        sim: &Sim,
        namespace: &str,
        args: &[String],
        env: &[String],
    ) -> Operator {
        let cp = support::control_plane();
        let kubeconfig = cp.service_account_kubeconfig("cvm-operator", "cvm-operator");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cvm-operator"));
        cmd.arg("run")
            .args(["--endpoint", &sim.endpoint, "--watch-namespace", namespace])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "warn")
            .env("TENCENTCLOUD_SECRET_ID", SECRET_ID)
            .env("TENCENTCLOUD_SECRET_KEY", SECRET_KEY)
            .env_remove("TENCENTCLOUD_SESSION_TOKEN");
        for pair in env {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("--operator-env takes KEY=VALUE, not {pair}"));
            cmd.env(key, value);
        }
        let process = ManagedProcess::spawn("cvm-operator", cmd, dir.join("operator.log")).unwrap();
        // Not waited for: its start-up (well under a second) counts in the time to Ready.
        Operator { process }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn stats(&self) -> ProcStats {
        proc_stats::read(self.pid()).unwrap_or_else(|| {
            panic!(
                "the operator exited ({:?}):\n{}",
                self.process.exit_status(),
                self.process.log_tail(40)
            )
        })
    }

    pub fn log_path(&self) -> PathBuf {
        self.process.log_path.clone()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.process.terminate(Duration::from_secs(10));
    }
}

async fn wait_for_log_line(log: &Path, prefix: &str) -> String {
    let log = log.to_path_buf();
    wait_for(
        &format!("{prefix} in {}", log.display()),
        Duration::from_secs(20),
        || {
            let log = log.clone();
            async move {
                let text = std::fs::read_to_string(&log).ok()?;
                text.lines()
                    .find_map(|l| l.strip_prefix(prefix))
                    .map(str::to_string)
            }
        },
    )
    .await
}
