//! etcd, kube-apiserver and kube-controller-manager started from the binaries built by
//! tools/build-control-plane.sh.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};

use super::binaries;
use super::controller_manager;
use super::pki::{CertificateAuthority, ServiceAccountSigningKey};
use super::process::{ManagedProcess, free_loopback_ports};

/// How long the whole control plane may take to become ready. A few seconds on an idle
/// machine; contended 2-core CI runners have been seen to need over 30 s.
const STARTUP_BUDGET: Duration = Duration::from_secs(120);
const LOG_TAIL_LINES: usize = 80;

pub struct ControlPlane {
    bin_dir: PathBuf,
    work_dir: PathBuf,
    server_url: String,
    ca: CertificateAuthority,
    admin_kubeconfig: PathBuf,
    kubeconfigs: Mutex<HashMap<(String, Vec<String>), PathBuf>>,
    etcd: ManagedProcess,
    apiserver: ManagedProcess,
    /// Started once kube-apiserver is ready; `None` only until then.
    controller_manager: Option<ManagedProcess>,
    controller_manager_url: String,
    pub(super) startup_time: Duration,
    controller_manager_startup_time: Duration,
}

impl ControlPlane {
    /// Starts etcd and kube-apiserver under `work_dir` and waits until `/readyz` passes,
    /// then kube-controller-manager, and waits until its `/healthz` passes.
    /// On failure the processes are stopped and the error carries their log tails.
    pub(super) fn start(work_dir: PathBuf) -> Result<ControlPlane, String> {
        let started = Instant::now();
        let bin_dir = binaries::bin_dir()?;
        let pki_dir = work_dir.join("pki");
        fs::create_dir_all(&pki_dir).map_err(|e| format!("create {}: {e}", pki_dir.display()))?;

        let ca = CertificateAuthority::new("cvm-operator-test-ca");
        let serving = ca.issue_server("localhost", &["localhost", "127.0.0.1"]);
        let controller_manager_serving =
            ca.issue_server("kube-controller-manager", &["localhost", "127.0.0.1"]);
        let sa_key = ServiceAccountSigningKey::generate();
        let files = [
            ("ca.crt", ca.cert_pem()),
            ("apiserver.crt", &serving.cert_pem),
            ("apiserver.key", &serving.key_pem),
            (
                "controller-manager.crt",
                &controller_manager_serving.cert_pem,
            ),
            (
                "controller-manager.key",
                &controller_manager_serving.key_pem,
            ),
            ("sa.key", &sa_key.private_key_pem),
            ("sa.pub", &sa_key.public_key_pem),
        ];
        for (name, content) in files {
            write_private(&pki_dir.join(name), content)?;
        }

        let [
            etcd_port,
            etcd_peer_port,
            apiserver_port,
            controller_manager_port,
        ] = free_loopback_ports::<4>();
        let etcd_url = format!("http://127.0.0.1:{etcd_port}");
        let etcd_peer_url = format!("http://127.0.0.1:{etcd_peer_port}");
        let server_url = format!("https://127.0.0.1:{apiserver_port}");

        let mut etcd_command = Command::new(bin_dir.join("etcd"));
        etcd_command.args([
            "--name=default".to_string(),
            format!("--data-dir={}", work_dir.join("etcd-data").display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={etcd_peer_url}"),
            format!("--initial-advertise-peer-urls={etcd_peer_url}"),
            format!("--initial-cluster=default={etcd_peer_url}"),
            // Test data is thrown away; fsync only costs time.
            "--unsafe-no-fsync=true".to_string(),
            "--log-level=warn".to_string(),
        ]);
        let etcd = ManagedProcess::spawn("etcd", etcd_command, work_dir.join("etcd.log"))
            .map_err(|e| format!("start {}/etcd: {e}", bin_dir.display()))?;

        let pki = |name: &str| pki_dir.join(name).display().to_string();
        let mut apiserver_command = Command::new(bin_dir.join("kube-apiserver"));
        apiserver_command.args([
            format!("--etcd-servers={etcd_url}"),
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={apiserver_port}"),
            format!("--cert-dir={}", work_dir.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", pki("apiserver.crt")),
            format!("--tls-private-key-file={}", pki("apiserver.key")),
            format!("--client-ca-file={}", pki("ca.crt")),
            "--authorization-mode=RBAC".to_string(),
            format!("--service-account-issuer={server_url}"),
            format!("--service-account-key-file={}", pki("sa.pub")),
            format!("--service-account-signing-key-file={}", pki("sa.key")),
            "--service-cluster-ip-range=10.0.0.0/24".to_string(),
            "--allow-privileged=true".to_string(),
            // kube-controller-manager creates each namespace's default ServiceAccount, but
            // only a moment after the namespace: the admission plugin would reject a Pod
            // created in that moment, and no test needs what the plugin adds.
            "--disable-admission-plugins=ServiceAccount".to_string(),
        ]);
        let apiserver = ManagedProcess::spawn(
            "kube-apiserver",
            apiserver_command,
            work_dir.join("kube-apiserver.log"),
        )
        .map_err(|e| {
            etcd.kill();
            format!("start {}/kube-apiserver: {e}", bin_dir.display())
        })?;

        let mut control_plane = ControlPlane {
            admin_kubeconfig: PathBuf::new(),
            bin_dir,
            work_dir,
            server_url,
            ca,
            kubeconfigs: Mutex::new(HashMap::new()),
            etcd,
            apiserver,
            controller_manager: None,
            controller_manager_url: format!("https://127.0.0.1:{controller_manager_port}"),
            startup_time: Duration::ZERO,
            controller_manager_startup_time: Duration::ZERO,
        };
        let deadline = started + STARTUP_BUDGET;
        let etcd_health = format!("{etcd_url}/health");
        // Anonymous requests may read /readyz (system:public-info-viewer); it turns green
        // only after etcd is reachable and RBAC's bootstrap roles exist.
        let apiserver_ready = format!("{}/readyz", control_plane.server_url);
        let result = wait_until_healthy(
            &[
                (&control_plane.etcd, &etcd_health),
                (&control_plane.apiserver, &apiserver_ready),
            ],
            control_plane.ca.cert_pem(),
            deadline,
        )
        .and_then(|()| {
            control_plane.admin_kubeconfig =
                control_plane.kubeconfig_for("admin", &["system:masters"]);
            control_plane.start_controller_manager(controller_manager_port, deadline)
        });
        if let Err(error) = result {
            let logs = control_plane.log_tails();
            control_plane.stop();
            return Err(format!("{error}\n{logs}"));
        }
        control_plane.startup_time = started.elapsed();
        Ok(control_plane)
    }

    /// Grants kube-controller-manager's user its controllers' roles, starts it, and waits
    /// until its `/healthz` passes.
    fn start_controller_manager(&mut self, port: u16, deadline: Instant) -> Result<(), String> {
        let started = Instant::now();
        let bindings = self.work_dir.join("controller-manager-rbac.json");
        write_private(&bindings, &controller_manager::role_bindings())?;
        let output = self
            .kubectl()
            .arg("apply")
            .arg("--filename")
            .arg(&bindings)
            .output()
            .map_err(|e| format!("run kubectl: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "bind the controllers' roles to {}: {}",
                controller_manager::USER,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let pki_dir = self.work_dir.join("pki");
        let kubeconfig = self.kubeconfig_for(controller_manager::USER, &[]);
        let files = controller_manager::Files {
            kubeconfig: &kubeconfig,
            serving_cert: &pki_dir.join("controller-manager.crt"),
            serving_key: &pki_dir.join("controller-manager.key"),
        };
        let command = controller_manager::command(&self.bin_dir, &files, port);
        let process = ManagedProcess::spawn(
            "kube-controller-manager",
            command,
            self.work_dir.join("kube-controller-manager.log"),
        )
        .map_err(|e| {
            format!(
                "start {}/kube-controller-manager: {e}",
                self.bin_dir.display()
            )
        })?;
        // /healthz is always allowed, so no credentials are needed.
        let healthz = format!("{}/healthz", self.controller_manager_url);
        let process: &ManagedProcess = self.controller_manager.insert(process);
        wait_until_healthy(&[(process, &healthz)], self.ca.cert_pem(), deadline)?;
        self.controller_manager_startup_time = started.elapsed();
        Ok(())
    }

    /// Whether kube-controller-manager's garbage collector has observed the object `uid`
    /// through its watch. It learns of new resource types (a CRD) only on its periodic
    /// discovery, every 30 s, and acts on ownerReferences and deletions only of objects it
    /// has observed, so a test of its behaviour waits for this first.
    pub async fn garbage_collector_has_observed(&self, uid: &str) -> bool {
        let http = https_client(self.ca.cert_pem()).expect("HTTP client");
        let url = format!(
            "{}{}?uid={uid}",
            self.controller_manager_url,
            controller_manager::graph_path()
        );
        match http.get(&url).send().await {
            Ok(response) if response.status().is_success() => {
                let dot = response.text().await.unwrap_or_default();
                controller_manager::graph_has_observed(&dot, uid)
            }
            _ => false,
        }
    }

    pub fn admin_kubeconfig(&self) -> &Path {
        &self.admin_kubeconfig
    }

    /// A client acting as cluster admin (group `system:masters`, which bypasses RBAC).
    pub async fn admin_client(&self) -> kube::Client {
        self.client_for(&self.admin_kubeconfig).await
    }

    /// A kubeconfig authenticating as `user` in `groups` with a client certificate
    /// (at most two groups). Written once per identity and reused.
    pub fn kubeconfig_for(&self, user: &str, groups: &[&str]) -> PathBuf {
        let key = (
            user.to_string(),
            groups.iter().map(|g| g.to_string()).collect(),
        );
        let mut cache = self
            .kubeconfigs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(path) = cache.get(&key) {
            return path.clone();
        }
        let dir = self.work_dir.join("kubeconfigs");
        fs::create_dir_all(&dir).expect("create kubeconfig directory");
        let path = dir.join(format!("{}-{}.kubeconfig", file_safe(user), cache.len()));
        let identity = self.ca.issue_client(user, groups);
        let kubeconfig = kubeconfig_json(
            &self.server_url,
            self.ca.cert_pem(),
            &identity.cert_pem,
            &identity.key_pem,
        );
        write_private(&path, &kubeconfig).expect("write kubeconfig");
        cache.insert(key, path.clone());
        path
    }

    /// A kubeconfig that authenticates exactly as the ServiceAccount `namespace/name` would:
    /// user `system:serviceaccount:<ns>:<name>`, groups `system:serviceaccounts` and
    /// `system:serviceaccounts:<ns>`. The ServiceAccount object need not exist.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        self.kubeconfig_for(
            &format!("system:serviceaccount:{namespace}:{name}"),
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{namespace}"),
            ],
        )
    }

    /// A fresh client for `kubeconfig`. Clients are bound to the tokio runtime that made
    /// them, so each test builds its own.
    pub async fn client_for(&self, kubeconfig: &Path) -> kube::Client {
        super::install_crypto_provider();
        let kubeconfig = Kubeconfig::read_from(kubeconfig)
            .unwrap_or_else(|e| panic!("read kubeconfig {}: {e}", kubeconfig.display()));
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .expect("kubeconfig to client config");
        kube::Client::try_from(config).expect("build kube client")
    }

    /// `kubectl` with `KUBECONFIG` set to the admin kubeconfig.
    pub fn kubectl(&self) -> Command {
        let mut command = Command::new(self.bin_dir.join("kubectl"));
        command.env("KUBECONFIG", &self.admin_kubeconfig);
        command
    }

    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The CA that signed the API server's certificate (what a Pod finds in its
    /// ServiceAccount volume as ca.crt).
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// Prints the tail of every control plane process's log to stderr.
    pub fn dump_logs(&self) {
        eprintln!("{}", self.log_tails());
    }

    fn log_tails(&self) -> String {
        let mut out = format!("control plane in {}\n", self.work_dir.display());
        for process in self.processes() {
            let state = match process.exit_status() {
                Some(status) => format!("exited: {status}"),
                None => format!("running as pid {}", process.pid()),
            };
            out += &format!(
                "----- {} ({state}), last {LOG_TAIL_LINES} lines of {} -----\n{}\n",
                process.name,
                process.log_path.display(),
                process.log_tail(LOG_TAIL_LINES)
            );
        }
        out
    }

    /// Stops every process and removes the working directory (best effort).
    pub(super) fn stop(&self) {
        self.stop_keeping_files();
        let _ = fs::remove_dir_all(&self.work_dir);
    }

    pub(super) fn stop_keeping_files(&self) {
        // Clients first, so none of them logs the others' disappearance as an error.
        for process in self.processes().rev() {
            process.kill();
        }
    }

    /// In start order: etcd, kube-apiserver, kube-controller-manager (once started).
    fn processes(&self) -> impl DoubleEndedIterator<Item = &ManagedProcess> {
        [
            Some(&self.etcd),
            Some(&self.apiserver),
            self.controller_manager.as_ref(),
        ]
        .into_iter()
        .flatten()
    }

    pub fn work_dir(&self) -> &Path {
        &self.work_dir
    }

    /// How long the whole control plane took to become ready.
    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }

    /// The part of `startup_time` spent starting kube-controller-manager, after
    /// kube-apiserver was ready.
    pub fn controller_manager_startup_time(&self) -> Duration {
        self.controller_manager_startup_time
    }
}

/// Polls each process's health URL in turn until it answers 2xx over TLS verified against
/// `ca_pem`; fails early if the process exits, and at `deadline`.
fn wait_until_healthy(
    checks: &[(&ManagedProcess, &str)],
    ca_pem: &str,
    deadline: Instant,
) -> Result<(), String> {
    let http = https_client(ca_pem)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    runtime.block_on(async {
        for (process, url) in checks {
            poll_until_ok(&http, process, url, deadline).await?;
        }
        Ok(())
    })
}

/// An HTTPS client that trusts only the test CA (every control plane component serves with
/// a certificate it signed).
fn https_client(ca_pem: &str) -> Result<reqwest::Client, String> {
    super::install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes())
        .map_err(|e| format!("CA certificate: {e}"))?;
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

async fn poll_until_ok(
    http: &reqwest::Client,
    process: &ManagedProcess,
    url: &str,
    deadline: Instant,
) -> Result<(), String> {
    loop {
        if let Some(status) = process.exit_status() {
            return Err(format!(
                "{} exited ({status}) before {url} was OK",
                process.name
            ));
        }
        let last = match http.get(url).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                format!("{status}: {}", response.text().await.unwrap_or_default())
            }
            Err(error) => error.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!(
                "{} not ready: {url} still failing after the {}s budget; last answer: {last}",
                process.name,
                STARTUP_BUDGET.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A kubeconfig in JSON, which kubectl and kube-rs read like YAML.
fn kubeconfig_json(server: &str, ca_pem: &str, cert_pem: &str, key_pem: &str) -> String {
    use base64::Engine;
    let b64 = |pem: &str| base64::engine::general_purpose::STANDARD.encode(pem);
    let kubeconfig = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cvm-operator-test", "cluster": {
            "server": server,
            "certificate-authority-data": b64(ca_pem),
        }}],
        "users": [{"name": "cvm-operator-test", "user": {
            "client-certificate-data": b64(cert_pem),
            "client-key-data": b64(key_pem),
        }}],
        "contexts": [{"name": "cvm-operator-test", "context": {
            "cluster": "cvm-operator-test",
            "user": "cvm-operator-test",
        }}],
        "current-context": "cvm-operator-test",
    });
    serde_json::to_string_pretty(&kubeconfig).expect("serialize kubeconfig")
}

fn write_private(path: &Path, content: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(content.as_bytes()))
        .map_err(|e| format!("write {}: {e}", path.display()))
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
