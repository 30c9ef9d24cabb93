//! The official CLI, `tccli` (PyPI, pinned in tests/sim_support/python.rs), against
//! `cvm-sim --tls`, with the steps docs/cvm-sim.md gives a person: start the simulator with
//! `--tls-cert-out`, make the venv's CA bundle trust that certificate, configure a
//! `cvm-sim` profile, then RunInstances, DescribeInstances, DescribeZones and
//! TerminateInstances.
//!
//! tccli hands the Python SDK no CA option, and the SDK passes `verify=certifi.where()` to
//! requests, which therefore ignores `REQUESTS_CA_BUNDLE` and `SSL_CERT_FILE`: the only
//! bundle it reads is certifi's `cacert.pem`. The docs append the certificate to that file
//! in the person's own venv; this test must not change the shared cached venv, so it
//! appends to a copy of the certifi package put first on `PYTHONPATH`, which is the same
//! file as far as tccli can tell.

#[allow(dead_code)]
#[path = "../../../tests/support/process.rs"]
mod process;
mod sim_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cvm_sim::config::{DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY};
use process::ManagedProcess;
use serde_json::{Value, json};
use sim_support::python;

/// cvm-sim as a person starts it, stopped when the test ends however it ends.
struct SimProcess(ManagedProcess);

impl Drop for SimProcess {
    fn drop(&mut self) {
        self.0.kill();
    }
}

fn start_sim(dir: &Path) -> (SimProcess, String, PathBuf) {
    let certificate = dir.join("cvm-sim.pem");
    // Instant launches and terminations, so the test needs no waiting between the steps.
    let config = dir.join("sim.json");
    let timing = json!({"timing": {"pendingSeconds": 0, "publicIpDelaySeconds": 0, "terminatingSeconds": 0}});
    std::fs::write(&config, timing.to_string()).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_cvm-sim"));
    command
        .arg("--tls")
        .arg("--tls-cert-out")
        .arg(&certificate)
        .arg("--config")
        .arg(&config);
    let sim = SimProcess(ManagedProcess::spawn("cvm-sim", command, dir.join("sim.log")).unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    let endpoint = loop {
        let log = std::fs::read_to_string(&sim.0.log_path).unwrap_or_default();
        if let Some(endpoint) = log
            .lines()
            .find_map(|l| l.strip_prefix("CVM_SIM_ENDPOINT=https://"))
        {
            break endpoint.to_string();
        }
        assert!(
            Instant::now() < deadline && sim.0.exit_status().is_none(),
            "cvm-sim did not print its endpoint:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(certificate.exists(), "--tls-cert-out wrote no certificate");
    (sim, endpoint, certificate)
}

/// What `cat cvm-sim.pem >> "$(python -m certifi)"` does, on a private copy of certifi.
fn trust(dir: &Path, certificate: &Path) -> PathBuf {
    let python = python::venv_bin("python");
    let output = Command::new(&python)
        .args([
            "-c",
            "import certifi, os; print(os.path.dirname(certifi.__file__))",
        ])
        .output()
        .unwrap();
    let package = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
    let overlay = dir.join("python-path");
    let copy = overlay.join("certifi");
    std::fs::create_dir_all(&copy).unwrap();
    for entry in std::fs::read_dir(&package).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
        }
    }
    let mut bundle = std::fs::read_to_string(copy.join("cacert.pem")).unwrap();
    bundle.push_str(&std::fs::read_to_string(certificate).unwrap());
    std::fs::write(copy.join("cacert.pem"), bundle).unwrap();
    overlay
}

struct Tccli {
    bin: PathBuf,
    home: PathBuf,
    python_path: Option<PathBuf>,
}

impl Tccli {
    /// Runs tccli with its configuration in the test's own HOME (never the user's ~/.tccli).
    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env("HOME", &self.home)
            .env_remove("TENCENTCLOUD_SECRET_ID")
            .env_remove("TENCENTCLOUD_SECRET_KEY")
            .env_remove("TENCENTCLOUD_REGION")
            .env_remove("PYTHONPATH");
        if let Some(path) = &self.python_path {
            command.env("PYTHONPATH", path);
        }
        command.output().expect("tccli runs")
    }

    /// Runs a `cvm` action with the `cvm-sim` profile and returns its JSON output.
    fn cvm(&self, action: &str, params: &[&str]) -> Value {
        let mut args = vec!["cvm", action, "--profile", "cvm-sim"];
        args.extend_from_slice(params);
        let output = self.run(&args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "tccli cvm {action} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{action}: {e}: {stdout}"))
    }
}

#[test]
fn tccli_drives_the_simulator_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim, endpoint, certificate) = start_sim(dir.path());
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut tccli = Tccli {
        bin: python::venv_bin("tccli"),
        home,
        python_path: None,
    };

    let configure = tccli.run(&[
        "configure",
        "set",
        "secretId",
        DEFAULT_SECRET_ID,
        "secretKey",
        DEFAULT_SECRET_KEY,
        "region",
        "ap-guangzhou",
        "cvm.endpoint",
        &endpoint,
        "--profile",
        "cvm-sim",
    ]);
    assert!(configure.status.success(), "{configure:?}");

    // Before trusting the certificate: tccli refuses the simulator (the issue's symptom).
    let untrusted = tccli.run(&["cvm", "DescribeZones", "--profile", "cvm-sim"]);
    assert!(!untrusted.status.success());
    let message = String::from_utf8_lossy(&untrusted.stdout).to_string()
        + &String::from_utf8_lossy(&untrusted.stderr);
    assert!(message.contains("CERTIFICATE_VERIFY_FAILED"), "{message}");

    tccli.python_path = Some(trust(dir.path(), &certificate));

    let zones = tccli.cvm("DescribeZones", &[]);
    assert_eq!(zones["TotalCount"], 6, "{zones}");
    let three = zones["ZoneSet"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["Zone"] == "ap-guangzhou-3")
        .expect("ap-guangzhou-3 listed");
    assert_eq!(
        three,
        &json!({"Zone": "ap-guangzhou-3", "ZoneName": "广州三区", "ZoneId": "100003", "ZoneState": "AVAILABLE"})
    );

    let run = tccli.cvm(
        "RunInstances",
        &[
            "--Placement",
            r#"{"Zone": "ap-guangzhou-3"}"#,
            "--ImageId",
            "img-eb30mz89",
            "--InstanceType",
            "S5.MEDIUM2",
            "--InstanceCount",
            "2",
            "--InstanceName",
            "tccli-{R:1}",
            "--ClientToken",
            "tccli-test-1",
        ],
    );
    let ids: Vec<String> = run["InstanceIdSet"]
        .as_array()
        .unwrap_or_else(|| panic!("{run}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{run}");
    let ids_json = serde_json::to_string(&ids).unwrap();

    let described = tccli.cvm("DescribeInstances", &["--InstanceIds", &ids_json]);
    assert_eq!(described["TotalCount"], 2, "{described}");
    let mut names: Vec<&str> = described["InstanceSet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["InstanceName"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["tccli-1", "tccli-2"]);
    for instance in described["InstanceSet"].as_array().unwrap() {
        assert_eq!(instance["Placement"]["Zone"], "ap-guangzhou-3");
        assert_eq!(instance["InstanceState"], "RUNNING");
    }

    let terminated = tccli.cvm("TerminateInstances", &["--InstanceIds", &ids_json]);
    assert!(terminated["RequestId"].is_string(), "{terminated}");
    let after = tccli.cvm("DescribeInstances", &["--InstanceIds", &ids_json]);
    assert_eq!(
        after["TotalCount"], 0,
        "terminated instances are gone: {after}"
    );
}
