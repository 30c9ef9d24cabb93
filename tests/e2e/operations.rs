//! Running in a cluster: two replicas with leader election on a real Lease (as the
//! ServiceAccount, so the Lease RBAC in deploy/ is exercised), hand-over on SIGKILL and on
//! SIGTERM, and the /metrics, /healthz and /readyz endpoints.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use serde_json::Value;

use crate::env::{Operator, TestEnv, sim_config, web};
use crate::support::wait_for;

/// Where the operator keeps its Lease (the default without POD_NAMESPACE), and where
/// deploy/rbac.yaml lets it.
const LEASE_NAMESPACE: &str = "cvm-operator";
/// `LeaseSettings::new`: the standby waits this long after the last renewal it saw.
const LEASE_DURATION: Duration = Duration::from_secs(15);

/// Each test has its own Lease, since each runs its own operators.
fn leader_args(lease: &str) -> Vec<String> {
    [
        "--leader-election",
        "--lease-name",
        lease,
        "--http-addr",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn start(env: &TestEnv, name: &str, args: &[String]) -> Operator {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Operator::start_named(
        &env.dir,
        name,
        &env.sim.endpoint,
        &env.namespace,
        false,
        &args,
    )
}

async fn holder(leases: &Api<Lease>, lease: &str) -> Option<String> {
    leases
        .get_opt(lease)
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

async fn wait_holder(leases: &Api<Lease>, lease: &str, timeout: Duration) -> String {
    wait_for(
        &format!("lease {lease} to have a holder"),
        timeout,
        || async { holder(leases, lease).await },
    )
    .await
}

async fn wait_holder_is(leases: &Api<Lease>, lease: &str, who: &str, timeout: Duration) {
    wait_for(&format!("{who} to hold lease {lease}"), timeout, || async {
        (holder(leases, lease).await.as_deref() == Some(who)).then_some(())
    })
    .await
}

pub(crate) async fn http_url(op: &Operator) -> String {
    wait_for(
        &format!("{} to log its HTTP address", op.identity),
        Duration::from_secs(30),
        || async { op.http_url() },
    )
    .await
}

/// GET `url`: status, content type and body.
async fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, response.text().await.unwrap())
}

/// The value of one series, e.g. `cvm_operator_leader` or `x_total{a="b"}`.
pub(crate) fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

pub(crate) async fn scrape(base: &str) -> String {
    let (status, content_type, body) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    body
}

/// Prints every operator's log when a test fails, since the test env only knows one.
struct LogsOnPanic<'a>(Vec<&'a Operator>);

impl Drop for LogsOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for op in &self.0 {
                let log = op.log();
                let lines: Vec<&str> = log.lines().collect();
                eprintln!(
                    "----- {} -----\n{}",
                    op.identity,
                    lines[lines.len().saturating_sub(60)..].join("\n")
                );
            }
        }
    }
}

#[tokio::test]
async fn two_replicas_only_the_leader_acts_and_the_standby_takes_over_when_it_dies() {
    let env = TestEnv::without_operator("ha", sim_config(), true).await;
    let lease = format!("ha-{}", env.namespace);
    let args = leader_args(&lease);
    let a = start(&env, "a", &args);
    let b = start(&env, "b", &args);
    let _logs = LogsOnPanic(vec![&a, &b]);
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), LEASE_NAMESPACE);

    let first = wait_holder(&leases, &lease, Duration::from_secs(30)).await;
    let (leader, standby) = if first == a.identity {
        (&a, &b)
    } else {
        (&b, &a)
    };
    assert_eq!(first, leader.identity);

    env.apply_yaml_ok(&web("web-1"));
    env.wait_ready("web-1", 90);

    // Only the leader reconciled; the standby still waits, reports ready, and says so.
    assert!(
        leader.log().contains("cvminstance=\"web-1\""),
        "{}",
        leader.log()
    );
    assert!(!standby.log().contains("cvminstance="), "{}", standby.log());
    assert!(standby.log().contains("standing by"), "{}", standby.log());
    let leader_metrics = scrape(&http_url(leader).await).await;
    let standby_url = http_url(standby).await;
    let standby_metrics = scrape(&standby_url).await;
    assert_eq!(sample(&leader_metrics, "cvm_operator_leader"), Some(1.0));
    assert_eq!(sample(&standby_metrics, "cvm_operator_leader"), Some(0.0));
    assert_eq!(
        sample(
            &standby_metrics,
            "cvm_operator_reconciles_total{result=\"success\"}"
        ),
        None,
        "{standby_metrics}"
    );
    let (status, _, body) = get(&format!("{standby_url}/readyz")).await;
    assert_eq!((status, body.as_str()), (200, "ready (standby)\n"));

    // The leader dies without a word; the standby takes over once the lease runs out.
    leader.kill();
    let killed = Instant::now();
    wait_holder_is(&leases, &lease, &standby.identity, Duration::from_secs(40)).await;
    let took = killed.elapsed();
    eprintln!("takeover after SIGKILL of the leader: {took:?}");
    // The standby counts the lease from the last renewal it saw (at most one 2 s poll after
    // it happened), then needs one more poll.
    assert!(
        took <= LEASE_DURATION + Duration::from_secs(6),
        "took {took:?}"
    );

    // The new leader works: a new resource becomes Ready, and nothing was created twice.
    env.apply_yaml_ok(&web("web-2"));
    env.wait_ready("web-2", 90);
    assert!(standby.log().contains("cvminstance=\"web-2\""));
    for name in ["web-1", "web-2"] {
        let uid = env.get(name).await.metadata.uid.unwrap();
        let instances = env.sim.instances_of(&uid).await;
        assert_eq!(instances.len(), 1, "{name}: {instances:?}");
    }
    assert_eq!(env.sim.calls("RunInstances").await, 2);
    let standby_metrics = scrape(&standby_url).await;
    assert_eq!(sample(&standby_metrics, "cvm_operator_leader"), Some(1.0));
}

#[tokio::test]
async fn sigterm_hands_the_lease_to_the_standby_at_once() {
    let env = TestEnv::without_operator("handover", sim_config(), true).await;
    let lease = format!("handover-{}", env.namespace);
    let args = leader_args(&lease);
    let a = start(&env, "a", &args);
    let leases: Api<Lease> = Api::namespaced(env.client.clone(), LEASE_NAMESPACE);
    wait_holder_is(&leases, &lease, &a.identity, Duration::from_secs(30)).await;
    let b = start(&env, "b", &args);
    let _logs = LogsOnPanic(vec![&a, &b]);
    env.apply_yaml_ok(&web("web-1"));
    env.wait_ready("web-1", 90);
    wait_for("b to stand by", Duration::from_secs(30), || async {
        b.log().contains("standing by").then_some(())
    })
    .await;

    let stopping = Instant::now();
    let status = a.terminate(Duration::from_secs(20));
    assert_eq!(status, "exit status: 0", "{}", a.log());
    assert!(a.log().contains("released the lease"), "{}", a.log());
    wait_holder_is(&leases, &lease, &b.identity, Duration::from_secs(30)).await;
    let took = stopping.elapsed();
    eprintln!("hand-over after SIGTERM of the leader: {took:?}");
    // Released, not expired: one standby poll (2 s), well inside the lease duration.
    assert!(took < Duration::from_secs(8), "took {took:?}");

    env.apply_yaml_ok(&web("web-2"));
    env.wait_ready("web-2", 90);
    assert!(b.log().contains("cvminstance=\"web-2\""));
    assert_eq!(env.sim.calls("RunInstances").await, 2);
}

#[tokio::test]
async fn metrics_probes_and_json_logs_report_real_content() {
    let env = TestEnv::without_operator("metrics", sim_config(), true).await;
    let lease = format!("metrics-{}", env.namespace);
    let mut args = leader_args(&lease);
    args.extend(["--log-format".to_string(), "json".to_string()]);
    let op = start(&env, "operator", &args);
    let _logs = LogsOnPanic(vec![&op]);
    let base = http_url(&op).await;

    let (status, _, body) = get(&format!("{base}/healthz")).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    wait_for("/readyz to answer 200", Duration::from_secs(30), || async {
        (get(&format!("{base}/readyz")).await.0 == 200).then_some(())
    })
    .await;
    let (_, _, body) = get(&format!("{base}/readyz")).await;
    assert_eq!(body, "ready\n", "the leader is ready once its watch synced");

    env.apply_yaml_ok(&web("web-1"));
    env.wait_ready("web-1", 90);
    let id = env.get("web-1").await.status.unwrap().instance_id.unwrap();

    let metrics = scrape(&base).await;
    let value = |series: &str| sample(&metrics, series);
    assert!(
        value("cvm_operator_reconciles_total{result=\"success\"}").unwrap_or(0.0) >= 1.0,
        "{metrics}"
    );
    assert!(value("cvm_operator_reconcile_duration_seconds_count").unwrap_or(0.0) >= 1.0);
    assert_eq!(
        value("cvm_operator_cloud_api_calls_total{action=\"RunInstances\",outcome=\"Success\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert!(
        value(
            "cvm_operator_cloud_api_calls_total{action=\"DescribeInstances\",outcome=\"Success\"}"
        )
        .unwrap_or(0.0)
            >= 1.0
    );
    assert_eq!(
        value("cvm_operator_instances{state=\"RUNNING\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(value("cvm_operator_leader"), Some(1.0));
    assert_eq!(value("cvm_operator_watch_synced"), Some(1.0));

    // Every log line is JSON; those of the reconcile carry the resource and, once created,
    // the instance ID.
    let log = op.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let in_reconcile: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["name"] == "reconcile")
        .collect();
    assert!(!in_reconcile.is_empty(), "{log}");
    for line in &in_reconcile {
        assert_eq!(line["span"]["namespace"], env.namespace.as_str(), "{line}");
        assert_eq!(line["span"]["cvminstance"], "web-1", "{line}");
    }
    let created = in_reconcile
        .iter()
        .find(|l| {
            l["fields"]["message"] == "instance created" || l["message"] == "instance created"
        })
        .unwrap_or_else(|| panic!("no 'instance created' line in {log}"));
    assert_eq!(created["span"]["instance_id"], id.as_str(), "{created}");
}
