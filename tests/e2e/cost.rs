//! Cost in plain sight: a pay-as-you-go and a spot instance show the simulator's hourly
//! prices in their status and in `kubectl get cvm`, `/metrics` sums them by namespace and
//! billing mode, and what stops being billed (stopped without charging, deleted) leaves both.
//! However many reconciles there are, prices cost one DescribeZoneInstanceConfigInfos per
//! charge type per cache period.

use std::time::Duration;

use serde_json::json;

use crate::env::{REPO, TestEnv, kubectl_ok, sim_config, web};
use crate::operations::{http_url, sample, scrape};
use crate::support::wait_for;

const PAYGO: &str = "paygo";
const SPOT: &str = "spot";
/// pricing.rs: S5.MEDIUM2 = 2 × 0.06 + 2 × 0.03; SA2.MEDIUM4 = 2 × 0.05 + 4 × 0.025, spot 20 %.
const PAYGO_PRICE: &str = "0.1800";
const SPOT_PRICE: &str = "0.0400";

fn spot(name: &str) -> String {
    std::fs::read_to_string(format!("{REPO}/examples/spot.yaml"))
        .unwrap()
        .replace("name: batch-1", &format!("name: {name}"))
}

async fn price_becomes(env: &TestEnv, name: &str, expected: Option<&str>) {
    let api = env.api();
    wait_for(
        &format!("{name} to show hourly price {expected:?}"),
        Duration::from_secs(60),
        || {
            let api = api.clone();
            async move {
                let obj = api.get_opt(name).await.ok()??;
                let price = obj.status?.hourly_price;
                (price.as_deref() == expected).then_some(())
            }
        },
    )
    .await
}

async fn spend_becomes(env: &TestEnv, base: &str, billing: &str, expected: f64) {
    let series = format!(
        "cvm_operator_hourly_spend{{namespace=\"{}\",billing=\"{billing}\"}}",
        env.namespace
    );
    wait_for(
        &format!("{series} to be {expected}"),
        Duration::from_secs(30),
        || async {
            let value = sample(&scrape(base).await, &series)?;
            ((value - expected).abs() < 1e-9).then_some(())
        },
    )
    .await
}

#[tokio::test]
async fn instances_show_their_hourly_price_and_metrics_sum_the_spend() {
    let env = TestEnv::start("cost").await;
    env.apply_yaml_ok(&web(PAYGO));
    env.apply_yaml_ok(&spot(SPOT));
    env.wait_ready(PAYGO, 90);
    env.wait_ready(SPOT, 90);
    price_becomes(&env, PAYGO, Some(PAYGO_PRICE)).await;
    price_becomes(&env, SPOT, Some(SPOT_PRICE)).await;

    // What a person sees.
    let table = kubectl_ok(env.kubectl().args(["get", "cvm"]));
    let header = table.lines().next().unwrap_or_default();
    assert!(header.contains("PRICE/H"), "{table}");
    for (name, price) in [(PAYGO, PAYGO_PRICE), (SPOT, SPOT_PRICE)] {
        let row = table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no row {name} in\n{table}"));
        assert!(row.contains(price), "{row}");
    }

    let operator = env.operator.as_ref().expect("operator");
    let base = http_url(operator).await;
    spend_becomes(&env, &base, "PayAsYouGo", 0.18).await;
    spend_becomes(&env, &base, "Spot", 0.04).await;

    // Stopped without charging: no price, no spend; the spot one still counts.
    kubectl_ok(env.kubectl().args([
        "patch",
        &format!("cvm/{PAYGO}"),
        "--type",
        "merge",
        "-p",
        &json!({"spec": {"powerState": "Stopped", "stoppedMode": "StopCharging"}}).to_string(),
    ]));
    price_becomes(&env, PAYGO, None).await;
    spend_becomes(&env, &base, "PayAsYouGo", 0.0).await;
    spend_becomes(&env, &base, "Spot", 0.04).await;

    kubectl_ok(env.kubectl().args(["delete", "cvm", SPOT, "--wait=false"]));
    env.wait_gone(SPOT, Duration::from_secs(60)).await;
    spend_becomes(&env, &base, "Spot", 0.0).await;

    // Dozens of reconciles, one price list per charge type (the cache period is 5 min).
    let calls = env.sim.outcomes("DescribeZoneInstanceConfigInfos").await;
    assert_eq!(
        calls.values().sum::<u64>(),
        2,
        "one call per charge type: {calls:?}"
    );
}

/// Without the permission to read prices (CAM refuses DescribeZoneInstanceConfigInfos), an
/// instance still becomes Ready, just without a price, and the refused call is not repeated
/// by every reconcile.
#[tokio::test]
async fn instances_without_prices_still_become_ready() {
    let mut config = sim_config();
    config["faults"] = json!([{
        "action": "DescribeZoneInstanceConfigInfos",
        "code": "UnauthorizedOperation",
        "message": "no permission for cvm:DescribeZoneInstanceConfigInfos",
        "rate": 1.0
    }]);
    let env = TestEnv::start_with("cost-refused", config, true).await;
    env.apply_yaml_ok(&web(PAYGO));
    env.wait_ready(PAYGO, 90);
    let status = env.get(PAYGO).await.status.unwrap();
    assert_eq!(status.instance_state.as_deref(), Some("RUNNING"));
    assert_eq!(status.hourly_price, None);
    let calls = env.sim.outcomes("DescribeZoneInstanceConfigInfos").await;
    assert_eq!(
        calls.get("UnauthorizedOperation").copied(),
        Some(1),
        "one refused call per pause, not one per reconcile: {calls:?}"
    );
    let base = http_url(env.operator.as_ref().expect("operator")).await;
    let series = format!(
        "cvm_operator_hourly_spend{{namespace=\"{}\",billing=\"PayAsYouGo\"}}",
        env.namespace
    );
    assert_eq!(
        sample(&scrape(&base).await, &series),
        None,
        "no price, no spend"
    );
}
