//! What GitOps tools make of a `CvmInstance` in each state the operator puts it in:
//! kstatus (Flux, `helm --wait`) and docs/argocd-health.lua run as Argo CD runs it, both
//! computed by tools/gitops-health from objects read back from the real API server.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use cvm_operator::api::{AWAITING_OPERATOR, CvmInstance, CvmInstanceStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::env::{REPO, TestEnv, kubectl_ok, run, sim_config, web};
use crate::support::{binaries, wait_for};

/// The pay-as-you-go example, followed through its whole life.
const WEB: &str = "web-1";
/// The same example with an instance type that is sold out, hence Stalled.
const STALLED: &str = "web-stalled";
const SOLD_OUT_TYPE: &str = "S5.LARGE8";
pub(crate) const ARGO_CD_SCRIPT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/docs/argocd-health.lua");

#[derive(Deserialize, Debug)]
pub(crate) struct Verdict {
    pub status: String,
    pub message: String,
}

/// One object as tools/gitops-health judged it.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Report {
    pub kstatus: Verdict,
    pub argocd: Verdict,
    pub argocd_script: Verdict,
}

/// Runs tools/gitops-health with an Argo CD health script on `objects`.
pub(crate) fn gitops_health(objects: &[Value], script: &str, extra: &[&str]) -> Vec<Report> {
    let binary = binaries::gitops_health().unwrap_or_else(|e| panic!("gitops-health: {e}"));
    let mut child = Command::new(&binary)
        .args(["--argocd-script", script])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", binary.display()));
    let input = serde_json::to_vec(objects).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "gitops-health failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reports: Vec<Report> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reports.len(), objects.len());
    reports
}

/// The cells of `kubectl get cvm NAME -o wide` by column header ("" when empty). kubectl
/// aligns every cell under the start of its header.
fn printer_columns(env: &TestEnv, name: &str) -> Vec<(String, String)> {
    let table = kubectl_ok(env.kubectl().args(["get", "cvm", name, "-o", "wide"]));
    let mut lines = table.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap();
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|&(i, c)| c != ' ' && (i == 0 || header.as_bytes()[i - 1] == b' '))
        .map(|(i, _)| i)
        .collect();
    let cell = |line: &str, n: usize| {
        let end = starts.get(n + 1).map_or(line.len(), |&e| e.min(line.len()));
        line.get(starts[n]..end).unwrap_or("").trim().to_string()
    };
    (0..starts.len())
        .map(|n| (cell(header, n), cell(row, n)))
        .collect()
}

fn column(columns: &[(String, String)], header: &str) -> String {
    columns
        .iter()
        .find(|(h, _)| h == header)
        .map(|(_, c)| c.clone())
        .unwrap_or_else(|| panic!("no column {header} in {columns:?}"))
}

#[tokio::test]
async fn kstatus_and_argo_cd_read_every_state_of_a_cvm_instance() {
    let mut config = sim_config();
    // Long enough for the test to read the resource while its instance is PENDING.
    config["timing"]["pendingSeconds"] = json!(6.0);
    let env = TestEnv::without_operator("gitops", config, true).await;
    env.sim
        .admin
        .set_capacity("ap-guangzhou-3", SOLD_OUT_TYPE, Some(0))
        .await
        .unwrap();
    env.apply_file(&format!("{REPO}/examples/pay-as-you-go.yaml"));
    env.apply_yaml_ok(&web(STALLED).replace(
        "instanceType: S5.MEDIUM2",
        &format!("instanceType: {SOLD_OUT_TYPE}"),
    ));

    // No operator is running: the API server shows the CRD's default status, which the
    // printer columns and `kubectl wait --for=condition=Ready` ignore.
    let created = env.get(WEB).await;
    assert_eq!(created.status, Some(CvmInstanceStatus::awaiting_operator()));
    let columns = printer_columns(&env, WEB);
    for header in ["STATE", "READY", "INSTANCE-ID", "REASON"] {
        assert_eq!(column(&columns, header), "", "{columns:?}");
    }
    let wait = run(env.kubectl().args([
        "wait",
        "--for=condition=Ready",
        "--timeout=1s",
        &format!("cvm/{WEB}"),
    ]));
    assert!(
        !wait.status.success(),
        "the placeholder satisfied kubectl wait"
    );

    let env = env.with_operator(false, &[]);
    let api = env.api();
    let pending = wait_for(
        "web-1 to report its instance PENDING",
        Duration::from_secs(30),
        || async {
            let obj = api.get_opt(WEB).await.ok()??;
            let state = obj.status.as_ref()?.instance_state.as_deref();
            (state == Some("PENDING")).then_some(obj)
        },
    )
    .await;
    assert_replaces_placeholder(&pending);
    let stalled = env
        .wait_reason(
            STALLED,
            "ResourceInsufficient_SpecifiedInstanceType",
            Duration::from_secs(30),
        )
        .await;
    assert_replaces_placeholder(&stalled);

    env.wait_ready(WEB, 90);
    let ready = env.get(WEB).await;
    let columns = printer_columns(&env, WEB);
    assert_eq!(column(&columns, "READY"), "True", "{columns:?}");
    assert_eq!(column(&columns, "STATE"), "RUNNING", "{columns:?}");

    // A spec change: the API server answers with the new generation, which the operator
    // cannot have observed yet; then the operator catches up.
    let secret = std::fs::read_to_string(format!("{REPO}/examples/credentials-secret.yaml"))
        .unwrap()
        .replace("name: tencentcloud", "name: tencentcloud-copy");
    env.apply_yaml_ok(&secret);
    let changed = api
        .patch(
            WEB,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"credentialsSecretRef": {"name": "tencentcloud-copy"}}})),
        )
        .await
        .unwrap();
    let observed = changed.status.as_ref().unwrap().observed_generation;
    assert!(observed < changed.metadata.generation, "{observed:?}");
    wait_for(
        "web-1 Ready at its new generation",
        Duration::from_secs(30),
        || async {
            let obj = api.get(WEB).await.ok()?;
            let status = obj.status.as_ref()?;
            (status.observed_generation == obj.metadata.generation && status.is_ready())
                .then_some(())
        },
    )
    .await;

    // Deletion: the finalizer holds the resource, so the API server answers with it.
    let deleting = api
        .delete(WEB, &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .expect("the finalizer holds web-1");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    env.wait_gone(WEB, Duration::from_secs(60)).await;

    // What kstatus made of a new resource before the CRD had a status default.
    let mut without_default = serde_json::to_value(&created).unwrap();
    without_default.as_object_mut().unwrap().remove("status");

    let states: [(&str, Value, &str, &str); 7] = [
        (
            "no status (no CRD default)",
            without_default,
            "Current",
            "Progressing",
        ),
        (
            "just created",
            json_of(&created),
            "InProgress",
            "Progressing",
        ),
        (
            "instance PENDING",
            json_of(&pending),
            "InProgress",
            "Progressing",
        ),
        ("Ready", json_of(&ready), "Current", "Healthy"),
        ("Stalled", json_of(&stalled), "Failed", "Degraded"),
        (
            "spec not yet observed",
            json_of(&changed),
            "InProgress",
            "Progressing",
        ),
        (
            "being deleted",
            json_of(&deleting),
            "Terminating",
            "Progressing",
        ),
    ];
    let objects: Vec<Value> = states.iter().map(|s| s.1.clone()).collect();
    let reports = gitops_health(&objects, ARGO_CD_SCRIPT, &[]);
    for (state, report) in states.iter().zip(&reports) {
        // Shown with --nocapture: the figures in docs/gitops.md.
        eprintln!(
            "{:<28} kstatus {:<11} {:?} | Argo CD {:<11} {:?}",
            state.0,
            report.kstatus.status,
            report.kstatus.message,
            report.argocd.status,
            report.argocd.message
        );
    }
    let seen: Vec<(&str, &str, &str)> = states
        .iter()
        .zip(&reports)
        .map(|(s, r)| (s.0, r.kstatus.status.as_str(), r.argocd.status.as_str()))
        .collect();
    let expected: Vec<(&str, &str, &str)> = states.iter().map(|s| (s.0, s.2, s.3)).collect();
    assert_eq!(seen, expected, "{reports:#?}");

    let [_, created, pending, ready, stalled, changed, deleting] = &reports[..] else {
        unreachable!()
    };
    assert!(
        created
            .kstatus
            .message
            .contains("has not reconciled this resource"),
        "{created:?}"
    );
    assert!(
        created.argocd.message.starts_with(AWAITING_OPERATOR),
        "{created:?}"
    );
    assert!(pending.argocd.message.contains("PENDING"), "{pending:?}");
    assert!(ready.argocd.message.contains("RUNNING"), "{ready:?}");
    for text in [&stalled.kstatus.message, &stalled.argocd.message] {
        assert!(
            text.contains("ResourceInsufficient.SpecifiedInstanceType"),
            "{stalled:?}"
        );
    }
    assert!(
        changed.kstatus.message.contains("generation"),
        "{changed:?}"
    );
    assert!(
        changed.argocd.message.contains("latest spec"),
        "{changed:?}"
    );
    // Argo CD decides a resource being deleted before it runs any health script (which
    // would wait too: setting deletionTimestamp bumps the generation).
    assert_eq!(deleting.argocd.message, "Pending deletion");
    assert_eq!(
        deleting.argocd_script.message,
        "Waiting for the operator to observe the latest spec"
    );
}

fn json_of(obj: &CvmInstance) -> Value {
    serde_json::to_value(obj).unwrap()
}

/// The operator's first status write leaves nothing of the API server's placeholder: its
/// three conditions, at the current generation, with transition times of their own.
fn assert_replaces_placeholder(obj: &CvmInstance) {
    let status = obj.status.as_ref().unwrap();
    assert_eq!(status.observed_generation, obj.metadata.generation);
    let conditions = status.conditions.as_deref().unwrap();
    let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(types, ["Ready", "Reconciling", "Stalled"], "{conditions:?}");
    for c in conditions {
        assert_ne!(c.reason, AWAITING_OPERATOR, "{c:?}");
        assert_eq!(c.observed_generation, obj.metadata.generation, "{c:?}");
        assert!(c.last_transition_time.0 > Timestamp::UNIX_EPOCH, "{c:?}");
    }
}

#[test]
fn gitops_health_runs_scripts_in_argo_cds_sandbox() {
    let object = json!({
        "apiVersion": "cvm-operator.io/v1alpha1",
        "kind": "CvmInstance",
        "metadata": {"name": "x", "namespace": "y", "generation": 1},
    });
    let script = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        script.path(),
        "if string.find('ab', 'b') then return {status = 'Healthy', message = 'ok'} end",
    )
    .unwrap();
    let path = script.path().to_str().unwrap();
    // Custom scripts get no string library unless useOpenLibs is set.
    let sandboxed = &gitops_health(std::slice::from_ref(&object), path, &[])[0];
    assert_eq!(sandboxed.argocd.status, "Unknown", "{sandboxed:?}");
    assert!(
        sandboxed
            .argocd
            .message
            .contains("attempt to index a non-table object(nil) with key 'find'"),
        "{sandboxed:?}"
    );
    let open = &gitops_health(&[object], path, &["--open-libs"])[0];
    assert_eq!(open.argocd.status, "Healthy", "{open:?}");
}
