//! Drives cvm-sim with the official Tencent Cloud Python SDK (tencentcloud-sdk-python-common
//! and tencentcloud-sdk-python-cvm from PyPI, pinned in tests/sim_support/python.rs), in the
//! cached virtualenv that test helper creates when it is missing.

mod sim_support;

use std::path::Path;

use cvm_sim::config::{DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY};
use sim_support::*;
use tokio::process::Command;

#[tokio::test]
async fn official_python_sdk_works_against_the_simulator() {
    let python = python::venv_bin("python");
    let sim = start(fast_config()).await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/sdk_check.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(sim.addr.to_string())
        .arg(DEFAULT_SECRET_ID)
        .arg(DEFAULT_SECRET_KEY)
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "SDK checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "regions ok 19",
        "zones ok",
        "offerings ok Standard S5 0.036 InvalidFilter",
        "unknown region refused UnsupportedRegion",
        "run ok",
        "describe ok",
        "client token ok",
        "wrong key refused AuthFailure.SignatureFailure",
        "modify attribute ok",
        "stop ok",
        "reset type ok",
        "start ok",
        "tags ok",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    let counters = sim.admin.counters().await.unwrap();
    assert_eq!(counters.get("RunInstances", "Success"), 2);
    assert_eq!(counters.get("DescribeRegions", "Success"), 1);
    assert_eq!(counters.get("DescribeZones", "Success"), 2);
    assert_eq!(counters.get("DescribeZones", "UnsupportedRegion"), 1);
    assert_eq!(
        counters.get("DescribeZoneInstanceConfigInfos", "Success"),
        1
    );
    assert_eq!(
        counters.get("DescribeZoneInstanceConfigInfos", "InvalidFilter"),
        1
    );
    assert_eq!(
        counters.get("DescribeInstances", "AuthFailure.SignatureFailure"),
        1
    );
    for (action, calls) in [
        ("ModifyInstancesAttribute", 1),
        ("StopInstances", 2),
        ("ResetInstancesType", 1),
        ("StartInstances", 1),
        ("ModifyResourceTags", 1),
        ("TagResources", 1),
        ("UnTagResources", 1),
        ("DescribeResourceTagsByResourceIds", 1),
    ] {
        assert_eq!(counters.get(action, "Success"), calls, "{action}");
    }
    assert_eq!(
        counters.get("ModifyInstancesAttribute", "InvalidParameter"),
        1
    );
    assert_eq!(
        counters.get("ModifyResourceTags", "InvalidParameter.ReservedTagKey"),
        1
    );
    assert_eq!(sim.admin.instances().await.unwrap().len(), 2);
}
