//! Cloud and configuration failures: honest Stalled conditions, then Ready once fixed.

use std::time::Duration;

use cvm_sim::faults::FaultSpec;
use serde_json::json;

use crate::env::{REPO, SECRET_ID, SECRET_KEY, TestEnv, kubectl_ok, sim_config};

const PAYG: &str = "web-1";

fn example(file: &str) -> String {
    format!("{REPO}/examples/{file}")
}

#[tokio::test]
async fn missing_credentials_stall_naming_the_secret_then_recover() {
    let env = TestEnv::start_with("no-credentials", sim_config(), false).await;
    env.apply_file(&example("pay-as-you-go.yaml"));
    let obj = env
        .wait_reason(PAYG, "CredentialsSecretNotFound", Duration::from_secs(30))
        .await;
    let status = obj.status.unwrap();
    let stalled = status.condition("Stalled").unwrap();
    assert_eq!(stalled.status, "True");
    assert!(
        stalled
            .message
            .contains(&format!("{}/tencentcloud", env.namespace)),
        "{}",
        stalled.message
    );
    assert_eq!(env.sim.calls("RunInstances").await, 0);

    // A Secret without the key: the message names the key.
    let out = env.apply_yaml(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: tencentcloud}\nstringData: {secretId: AKIDsimulator0000000000000000000000}\n",
    );
    assert!(out.status.success());
    let obj = env
        .wait_reason(PAYG, "CredentialsKeyMissing", Duration::from_secs(30))
        .await;
    assert!(
        obj.status
            .unwrap()
            .condition("Ready")
            .unwrap()
            .message
            .contains("secretKey")
    );

    env.apply_file(&example("credentials-secret.yaml"));
    env.wait_ready(PAYG, 90);

    // No secret value may leak into status or Events.
    let everything =
        crate::env::kubectl_ok(env.kubectl().args(["get", "cvm,events", "-o", "yaml"]));
    assert!(!everything.contains(SECRET_KEY));
    let log = env.operator.as_ref().unwrap().log();
    assert!(
        log.contains("RunInstances"),
        "debug logging is on, so the log shows API calls"
    );
    assert!(
        !log.contains(SECRET_KEY),
        "the secret key reached the operator's log"
    );
}

#[tokio::test]
async fn login_password_from_a_secret_never_leaks() {
    const PASSWORD: &str = "Pw-for-e2e-9f3k!";
    let env = TestEnv::start("password").await;
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: login}}\nstringData: {{password: \"{PASSWORD}\"}}\n"
    );
    assert!(env.apply_yaml(&secret).status.success());
    let yaml = std::fs::read_to_string(example("spot.yaml"))
        .unwrap()
        .replace(
            "keyIds: [skey-3x4y5z6a]",
            "passwordSecretRef: {name: login}",
        );
    let out = env.apply_yaml(&yaml);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.wait_ready("batch-1", 90);

    let everything =
        crate::env::kubectl_ok(env.kubectl().args(["get", "cvm,events", "-o", "yaml"]));
    assert!(
        !everything.contains(PASSWORD),
        "the password reached status or Events"
    );
    let log = env.operator.as_ref().unwrap().log();
    assert!(
        !log.contains(PASSWORD),
        "the password reached the operator's log"
    );
    assert!(
        !log.contains(SECRET_KEY),
        "the secret key reached the operator's log"
    );
}

#[tokio::test]
async fn default_credentials_are_used_without_a_secret_ref() {
    let env = TestEnv::without_operator("default-credentials", sim_config(), false)
        .await
        .with_operator(true, &[]);
    let yaml = std::fs::read_to_string(example("spot.yaml"))
        .unwrap()
        .replace("  credentialsSecretRef:\n    name: tencentcloud\n", "");
    assert!(env.apply_yaml(&yaml).status.success());
    env.wait_ready("batch-1", 90);
    let instances = env.sim.instances().await;
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].secret_id, SECRET_ID);
}

#[tokio::test]
async fn insufficient_balance_stalls_with_the_tencent_code_then_recovers() {
    let mut config = sim_config();
    config["accounts"][0]["balance"] = json!(0.0);
    let env = TestEnv::start_with("balance", config, true).await;
    env.apply_file(&example("pay-as-you-go.yaml"));
    let obj = env
        .wait_reason(
            PAYG,
            "InvalidAccount_InsufficientBalance",
            Duration::from_secs(30),
        )
        .await;
    let status = obj.status.unwrap();
    assert_eq!(status.condition("Stalled").unwrap().status, "True");
    let message = &status.condition("Ready").unwrap().message;
    assert!(
        message.contains("InvalidAccount.InsufficientBalance") && message.contains("RequestId"),
        "{message}"
    );
    let events = env.event_reasons();
    assert!(
        events.contains("InvalidAccount_InsufficientBalance"),
        "{events}"
    );

    env.sim.admin.set_balance(SECRET_ID, 1000.0).await.unwrap();
    env.wait_ready(PAYG, 90);
    assert_eq!(env.sim.instances().await.len(), 1);
}

#[tokio::test]
async fn sold_out_capacity_stalls_then_recovers_when_capacity_returns() {
    let env = TestEnv::start("sold-out").await;
    env.sim
        .admin
        .set_capacity("ap-guangzhou-3", "S5.MEDIUM2", Some(0))
        .await
        .unwrap();
    env.apply_file(&example("pay-as-you-go.yaml"));
    let obj = env
        .wait_reason(
            PAYG,
            "ResourceInsufficient_SpecifiedInstanceType",
            Duration::from_secs(30),
        )
        .await;
    assert_eq!(
        obj.status.unwrap().condition("Stalled").unwrap().status,
        "True"
    );
    // A slow retry, not a storm: a few attempts in this time at most.
    let attempts = env.sim.calls("RunInstances").await;
    assert!(
        attempts <= 6,
        "{attempts} RunInstances calls while sold out"
    );

    env.sim
        .admin
        .set_capacity("ap-guangzhou-3", "S5.MEDIUM2", None)
        .await
        .unwrap();
    env.wait_ready(PAYG, 90);
}

#[tokio::test]
async fn rate_limits_and_internal_errors_still_converge_without_a_storm() {
    let env = TestEnv::start("flaky").await;
    for action in ["RunInstances", "DescribeInstances"] {
        env.sim
            .admin
            .add_fault(&FaultSpec {
                action: Some(action.to_string()),
                code: Some("InternalError".to_string()),
                message: Some("injected".to_string()),
                rate: 0.4,
                count: None,
                latency_ms: None,
                drop_connection: false,
                response_delay_ms: None,
            })
            .await
            .unwrap();
    }
    let limits = [
        ("RunInstances".to_string(), 2u32),
        ("DescribeInstances".to_string(), 5),
    ]
    .into_iter()
    .collect();
    env.sim.admin.set_rate_limits(&limits).await.unwrap();

    let template = std::fs::read_to_string(example("spot.yaml")).unwrap();
    let names: Vec<String> = (0..6).map(|i| format!("flaky-{i}")).collect();
    for name in &names {
        let out = env.apply_yaml(&template.replace("name: batch-1", &format!("name: {name}")));
        assert!(out.status.success());
    }
    for name in &names {
        env.wait_ready(name, 120);
    }
    let instances = env.sim.instances().await;
    assert_eq!(
        instances.len(),
        names.len(),
        "exactly one instance per resource"
    );
    let counters = env.sim.admin.counters().await.unwrap();
    let run = &counters.calls["RunInstances"];
    let total_run: u64 = run.values().sum();
    assert!(total_run <= 40, "retry storm: {run:?}");
    let limited: u64 = counters
        .calls
        .values()
        .filter_map(|o| o.get("RequestLimitExceeded"))
        .sum();
    assert!(limited <= 30, "too many RequestLimitExceeded: {counters:?}");
}

/// The simulator knows Tencent's public regions and zones: a region it does not serve and a
/// zone of another region end Stalled with the Tencent code (a person must fix the spec),
/// nothing is created, and both resources can still be deleted.
#[tokio::test]
async fn unknown_region_or_zone_stalls_with_the_tencent_code() {
    let env = TestEnv::start("catalogue").await;
    let yaml = std::fs::read_to_string(example("pay-as-you-go.yaml")).unwrap();
    let placed = |name: &str, region: &str, zone: &str| {
        yaml.replace("name: web-1", &format!("name: {name}"))
            .replace("region: ap-guangzhou", &format!("region: {region}"))
            .replace("zone: ap-guangzhou-3", &format!("zone: {zone}"))
    };
    // ap-shanghai-fsi-2 starts with `ap-shanghai-`, so admission lets it through; it is a
    // zone of the financial region ap-shanghai-fsi, not of ap-shanghai.
    let cases = [
        (
            placed("nowhere", "xx-nowhere", "xx-nowhere-1"),
            "nowhere",
            "UnsupportedRegion",
        ),
        (
            placed("other-region-zone", "ap-shanghai", "ap-shanghai-fsi-2"),
            "other-region-zone",
            "InvalidZone.MismatchRegion",
        ),
    ];
    for (manifest, _, _) in &cases {
        let out = env.apply_yaml(manifest);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (_, name, code) in &cases {
        let reason = code.replace('.', "_");
        let obj = env
            .wait_reason(name, &reason, Duration::from_secs(30))
            .await;
        let status = obj.status.unwrap();
        assert_eq!(
            status.condition("Stalled").unwrap().status,
            "True",
            "{name}"
        );
        assert_eq!(status.condition("Ready").unwrap().status, "False", "{name}");
        let message = &status.condition("Ready").unwrap().message;
        assert!(
            message.contains(code) && message.contains("RequestId"),
            "{name}: {message}"
        );
        assert!(status.instance_id.is_none(), "{name}");
    }
    assert!(env.sim.instances().await.is_empty());
    let counters = env.sim.admin.counters().await.unwrap();
    assert!(counters.get("RunInstances", "UnsupportedRegion") >= 1);
    assert!(counters.get("RunInstances", "InvalidZone.MismatchRegion") >= 1);
    // Stalled means a slow retry, not a storm.
    let attempts = env.sim.calls("RunInstances").await;
    assert!(attempts <= 6, "{attempts} RunInstances calls");

    for (_, name, _) in &cases {
        kubectl_ok(env.kubectl().args(["delete", "cvm", name, "--wait=false"]));
    }
    for (_, name, _) in &cases {
        env.wait_gone(name, Duration::from_secs(30)).await;
    }
    // The unsupported region is let go at once, saying why.
    assert!(env.event_reasons().contains("RegionUnsupported"));
}
