//! The image, run under containerd + runc with the Pod spec of deploy/ and then of the
//! Helm chart: /readyz and /healthz answer, the Lease is taken under the Pod's name, a
//! CvmInstance becomes Ready against cvm-sim, as uid 65532 with no capabilities, no new
//! privileges, seccomp and a read-only root; and afterwards nothing is left on the machine.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serde_json::Value;

use crate::chart;
use crate::containerd::{Containerd, pause_image};
use crate::env::{SECRET_KEY, Sim, sim_config};
use crate::image;
use crate::pod_spec::{self, PodContext};
use crate::support::process::free_loopback_ports;
use crate::support::tools::{self, REPO};
use crate::support::{self, kubectl_ok, wait_for};

/// The Deployment of a rendered manifest, as JSON.
fn deployment_of(manifest: &str, dir: &Path) -> Value {
    chart::objects(manifest, dir)
        .into_iter()
        .find(|o| o["kind"] == "Deployment")
        .expect("a Deployment in the manifest")
}

/// A Deployment's Pod and the identity it runs as.
struct PodUnderTest<'a> {
    deployment: &'a Value,
    workload_namespace: &'a str,
    resource_name: &'a str,
    lease_name: &'a str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_runs_under_containerd_with_the_pod_specs_of_deploy_and_the_chart() {
    let image = image::built();
    let pause = pause_image();
    support::install_deploy();
    let cp = support::control_plane();
    let client = cp.admin_client().await;
    let mut runtime = Containerd::start(&[&image.dir.join("image.tar"), &pause]);

    let workloads = support::new_namespace(&client, "runtime-workloads").await;
    let sim = Sim::start(&runtime.dir, sim_config()).await;
    kubectl_ok(
        cp.kubectl()
            .args(["apply", "-n", &workloads, "-f"])
            .arg(format!("{REPO}/examples/credentials-secret.yaml")),
    );

    // 1. deploy/, as `kubectl apply -k deploy/` installs it (install_deploy did).
    let rendered = kubectl_ok(cp.kubectl().args(["kustomize", &format!("{REPO}/deploy")]));
    let from_deploy = deployment_of(&rendered, &runtime.dir);
    // 2. The chart's Deployment, with its RBAC applied (release `runtime`).
    let chart_namespace = support::new_namespace(&client, "runtime-chart").await;
    let manifest = tools::helm_template(&["runtime", "--namespace", &chart_namespace]);
    let rbac = runtime.dir.join("chart-rbac.yaml");
    std::fs::write(&rbac, tools::rbac_documents(&manifest)).unwrap();
    kubectl_ok(cp.kubectl().args(["apply", "-f"]).arg(&rbac));
    let from_chart = deployment_of(&manifest, &runtime.dir);

    for (deployment, resource_name, lease_name) in [
        (&from_deploy, "web-1", "cvm-operator"),
        (&from_chart, "web-2", "runtime-cvm-operator"),
    ] {
        let pod = PodUnderTest {
            deployment,
            workload_namespace: &workloads,
            resource_name,
            lease_name,
        };
        run_and_check(&runtime, &sim, pod).await;
    }

    drop(sim);
    let left = runtime.shut_down();
    assert!(left.is_empty(), "the machine is left as it was: {left:?}");
}

async fn run_and_check(runtime: &Containerd, sim: &Sim, pod: PodUnderTest<'_>) {
    let cp = support::control_plane();
    let client = cp.admin_client().await;
    let deployment = pod.deployment;
    let namespace = deployment["metadata"]["namespace"]
        .as_str()
        .expect("namespace");
    let template = &deployment["spec"]["template"];
    let spec = &template["spec"];
    let container = &spec["containers"][0];
    let service_account = spec["serviceAccountName"].as_str().unwrap();
    let pod_name = format!(
        "{}-{}",
        deployment["metadata"]["name"].as_str().unwrap(),
        &uuid::Uuid::new_v4().simple().to_string()[..5]
    );
    let uid = uuid::Uuid::new_v4().to_string();

    // The projected ServiceAccount volume: a real token from the TokenRequest API.
    let pod_dir = runtime.dir.join(&pod_name);
    let sa_dir = pod_dir.join("serviceaccount");
    std::fs::create_dir_all(&sa_dir).unwrap();
    let token =
        kubectl_ok(
            cp.kubectl()
                .args(["create", "token", service_account, "-n", namespace]),
        );
    for (file, content) in [
        ("token", token.trim()),
        ("ca.crt", cp.ca_pem()),
        ("namespace", namespace),
    ] {
        std::fs::write(sa_dir.join(file), content).unwrap();
    }
    let etc_hosts = pod_dir.join("etc-hosts");
    std::fs::write(&etc_hosts, std::fs::read("/etc/hosts").unwrap_or_default()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    for path in [&pod_dir, &sa_dir] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    let secrets = secret_env(&client, namespace, container).await;
    let url = reqwest::Url::parse(cp.server_url()).unwrap();
    let [http_port] = free_loopback_ports::<1>();
    let extra_args = vec!["--endpoint".to_string(), sim.endpoint.clone()];
    let ctx = PodContext {
        name: &pod_name,
        namespace,
        uid: &uid,
        api_host: url.host_str().unwrap(),
        api_port: url.port().unwrap(),
        http_port,
        service_account_dir: &sa_dir,
        etc_hosts: &etc_hosts,
        log_dir: &pod_dir.join("logs"),
        cgroup_parent: &runtime.cgroup.path,
        secrets: &secrets,
        extra_args: &extra_args,
    };
    let (sandbox, id) = runtime.run_pod(
        &pod_name,
        &pod_spec::sandbox_config(template, &ctx),
        &pod_spec::container_config(template, &ctx),
    );
    let _log_on_panic = LogOnPanic { runtime, id: &id };
    let timeout = Duration::from_secs(90);

    // The probes, as the kubelet runs them.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for probe in ["readinessProbe", "livenessProbe"] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["port"], "http", "{probe} uses the named port");
        let url = format!(
            "http://127.0.0.1:{http_port}{}",
            get["path"].as_str().unwrap()
        );
        let http = http.clone();
        wait_for(&format!("{probe} {url}"), timeout, || {
            let http = http.clone();
            let url = url.clone();
            async move {
                let response = http.get(&url).send().await.ok()?;
                (response.status() == 200).then_some(())
            }
        })
        .await;
    }

    // Leader election under the Pod's name (downward API), in the Pod's namespace.
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let holder = wait_for("the Lease", timeout, || {
        let leases = leases.clone();
        async move {
            let lease = leases.get_opt(pod.lease_name).await.ok()??;
            lease.spec?.holder_identity
        }
    })
    .await;
    assert_eq!(holder, pod_name, "the Lease is held under POD_NAME");

    // The process, as the runtime started it.
    let pids = runtime.cgroup.pids(&id);
    assert_eq!(pids.len(), 1, "one process in the container: {pids:?}");
    let status = std::fs::read_to_string(format!("/proc/{}/status", pids[0])).unwrap();
    for expected in [
        "Uid:\t65532\t65532\t65532\t65532",
        "Gid:\t65532\t65532\t65532\t65532",
        "CapEff:\t0000000000000000",
        "NoNewPrivs:\t1",
        "Seccomp:\t2",
    ] {
        assert!(status.contains(expected), "{expected:?} in\n{status}");
    }
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", pids[0])).unwrap();
    let root = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("a root mount");
    let options = root.split(' ').nth(5).unwrap();
    assert!(
        options.split(',').any(|o| o == "ro"),
        "read-only root: {root}"
    );

    // A CvmInstance reconciled against the simulator, with the credentials Secret.
    let example = std::fs::read_to_string(format!("{REPO}/examples/pay-as-you-go.yaml"))
        .unwrap()
        .replace("name: web-1", &format!("name: {}", pod.resource_name));
    let file = pod_dir.join("instance.yaml");
    std::fs::write(&file, example).unwrap();
    kubectl_ok(
        cp.kubectl()
            .args(["apply", "-n", pod.workload_namespace, "-f"])
            .arg(&file),
    );
    let wait = cp
        .kubectl()
        .args([
            "wait",
            "-n",
            pod.workload_namespace,
            "--for=condition=Ready",
            "--timeout=120s",
            &format!("cvm/{}", pod.resource_name),
        ])
        .output()
        .unwrap();
    assert!(
        wait.status.success(),
        "{} Ready: {}",
        pod.resource_name,
        String::from_utf8_lossy(&wait.stderr),
    );
    let log = runtime.logs(&id);
    assert!(!log.contains(SECRET_KEY), "no secret in the log");

    // Pod deletion: SIGTERM, the grace period, a clean exit.
    let grace = spec["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    let exit_code = runtime.stop_pod(&sandbox, &id, grace);
    assert_eq!(exit_code, 0, "a clean shutdown on SIGTERM:\n{log}");
}

/// The Secret values the container's env names, read as the kubelet reads them.
async fn secret_env(
    client: &kube::Client,
    namespace: &str,
    container: &Value,
) -> BTreeMap<(String, String), String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut out = BTreeMap::new();
    for var in container["env"].as_array().cloned().unwrap_or_default() {
        let r = &var["valueFrom"]["secretKeyRef"];
        let (Some(name), Some(key)) = (r["name"].as_str(), r["key"].as_str()) else {
            continue;
        };
        let secret = secrets.get_opt(name).await.unwrap();
        if let Some(value) = secret.and_then(|s| s.data?.get(key).cloned()) {
            out.insert(
                (name.to_string(), key.to_string()),
                String::from_utf8(value.0).unwrap(),
            );
        }
    }
    out
}

/// Prints the container's log when the test fails while it runs.
struct LogOnPanic<'a> {
    runtime: &'a Containerd,
    id: &'a str,
}

impl Drop for LogOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- container {} log -----\n{}",
                self.id,
                self.runtime.logs(self.id)
            );
        }
    }
}
